"""In-memory Koji model (the "database") of the simulated hub, loaded from real RPMs.

Tables keep the real column names (``build.pkg_id``, ``rpminfo.payloadhash``,
versioned rows with ``create_event``/``revoke_event``/``active``...), so the hub
semantics in :mod:`.hubcore` read like the real SQL and the ``kojihub.db`` stand-in
can run simple queries against them.  :class:`State` adds setup helpers for tests
(users, hosts, tags, targets, imports, tagging, task driving); hub *behaviour* lives
in :mod:`.hubcore` and is shared with the HTTP server and the ``kojihub`` stand-in.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pickle
import random
import shutil
import string
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union

import koji
import koji.plugin
import koji.policy
import koji.xmlrpcplus
from koji.context import context

from . import hubcore

#: the hub's built-in policies (kojihub/kojixmlrpc.py ``_default_policies``)
DEFAULT_POLICIES = {
    'build_rpm': 'all :: allow',
    'build_from_srpm': 'has_perm admin :: allow\n'
                       'all :: deny Only admin can do this via default policy',
    'build_from_repo_id': 'has_perm admin :: allow\n'
                          'all :: deny Only admin can do this via default policy',
    'build_from_scm': 'has_perm admin :: allow\n'
                      'all :: deny Only admin can do this via default policy',
    'package_list': 'has_perm admin :: allow\nhas_perm tag :: allow\n'
                    'all :: deny Only admin/tag can do this via default policy',
    'channel': 'has req_channel :: req\nis_child_task :: parent\nall :: use default',
    'vm': 'has_perm admin win-admin :: allow\n'
          'all :: deny Only admin/win-admin can do this via default policy',
    'cg_import': 'all :: allow',
    'volume': 'all :: DEFAULT',
    'priority': 'all :: stay',
    'draft_promotion': 'has_perm draft-promoter :: allow\nis_build_owner :: allow\n'
                       'all :: deny Only draft-promoter and build owner can do this via '
                       'default policy',
}

#: permissions and channels a fresh Koji database has (schemas/schema.sql)
DEFAULT_PERMISSIONS = ('admin', 'appliance', 'dist-repo', 'host', 'image', 'image-import',
                       'livecd', 'maven-import', 'repo', 'sign', 'tag', 'target', 'win-admin',
                       'win-import', 'draft-promoter')
DEFAULT_CHANNELS = ('default', 'createrepo', 'maven', 'livecd', 'appliance', 'vm', 'image',
                    'livemedia')

BuildRef = Union[int, str, dict]
_MISSING = object()


class DB:
    """All mutable hub data; deep-copied for call rollback (snapshot/restore)."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = {}
        self.events: dict[int, dict] = {}
        self.users: dict[int, dict] = {}
        self.user_krb_principals: list[dict] = []
        self.permissions: dict[int, dict] = {}
        self.user_perms: list[dict] = []
        self.user_groups: list[dict] = []
        self.package: dict[int, dict] = {}
        self.tag: dict[int, dict] = {}
        self.tag_config: list[dict] = []
        self.tag_extra: list[dict] = []
        self.tag_inheritance: list[dict] = []
        self.tag_packages: list[dict] = []
        self.tag_package_owners: list[dict] = []
        self.tag_listing: list[dict] = []
        self.tag_listing_by_tag: dict[int, list[dict]] = {}
        self.build: dict[int, dict] = {}
        self.build_nvr: dict[tuple, int] = {}
        self.build_types: dict[int, set] = {}
        self.rpminfo: dict[int, dict] = {}
        self.rpm_by_build: dict[int, list[int]] = {}
        self.rpm_nvra: dict[tuple, list[int]] = {}
        self.build_target: dict[int, dict] = {}
        self.build_target_config: list[dict] = []
        self.channels: dict[int, dict] = {}
        self.host: dict[int, dict] = {}
        self.host_config: list[dict] = []
        self.host_channels: list[dict] = []
        self.task: dict[int, dict] = {}
        self.sessions: dict[int, dict] = {}
        self.volume = {0: {'id': 0, 'name': 'DEFAULT'}}
        self.external_repo = {0: {'id': 0, 'name': 'INTERNAL'}}
        self.btype = {1: {'id': 1, 'name': 'rpm'}, 2: {'id': 2, 'name': 'maven'},
                      3: {'id': 3, 'name': 'win'}, 4: {'id': 4, 'name': 'image'}}
        self.content_generator: dict[int, dict] = {}

    #: indexes derived from the tables (rebuilt, never copied)
    DERIVED = ('build_nvr', 'rpm_by_build', 'rpm_nvra', 'tag_listing_by_tag')

    def copy(self) -> DB:
        """Row-level copy (rows hold only immutable values), much cheaper than
        deepcopy on big states; indexes are rebuilt."""
        new = DB.__new__(DB)
        for name, value in vars(self).items():
            if name in self.DERIVED:
                continue
            if isinstance(value, dict):
                value = {k: (set(v) if isinstance(v, set) else
                             dict(v) if isinstance(v, dict) else v) for k, v in value.items()}
            elif isinstance(value, list):
                value = [dict(r) for r in value]
            setattr(new, name, value)
        new.reindex()
        return new

    def reindex(self) -> None:
        self.build_nvr = {(self.package[r['pkg_id']]['name'], r['version'], r['release']):
                          r['id'] for r in self.build.values()}
        self.rpm_by_build = {}
        self.rpm_nvra = {}
        for rid in sorted(self.rpminfo):
            r = self.rpminfo[rid]
            self.rpm_by_build.setdefault(r['build_id'], []).append(rid)
            self.rpm_nvra.setdefault((r['name'], r['version'], r['release'], r['arch']),
                                     []).append(rid)
        self.tag_listing_by_tag = {}
        for r in self.tag_listing:
            self.tag_listing_by_tag.setdefault(r['tag_id'], []).append(r)


class State:
    """An in-memory Koji hub database plus the files under ``topdir``.

    ``topdir`` follows Koji's layout (``packages/<n>/<v>/<r>/<arch>/<nvra>.rpm``,
    ``work/tasks/<id % 10000>/<id>/``) and is what the server publishes at
    ``/kojifiles``.  All methods take ``self.lock`` (re-entrant).
    """

    def __init__(self, topdir: Optional[str] = None, *, admin: str = 'kojiadmin',
                 admin_password: Optional[str] = None) -> None:
        self._own_topdir = topdir is None
        self.topdir = os.path.abspath(topdir or tempfile.mkdtemp(prefix='hubsim-'))
        os.makedirs(os.path.join(self.topdir, 'work'), exist_ok=True)
        self.pathinfo = koji.PathInfo(self.topdir)
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time
        self.db = DB()
        self.admin = admin
        #: every make_task() call: {'method', 'arglist', 'opts'} as passed in
        self.make_task_calls: list[dict] = []
        #: host.refuseTask() calls
        self.refusals: list[dict] = []
        #: method -> callable(taskinfo with decoded 'request') run by State.run_autorun
        self.autorun: dict[str, Callable[[dict], Any]] = {}
        #: raise instead of letting BaseTaskHandler.wait() pause forever (see taskWait)
        self.strict_wait = True
        self.policy_text: dict[str, str] = dict(DEFAULT_POLICIES)
        #: extra modules scanned for policy tests (a hub plugin), as Plugins= does
        self.policy_modules: list[Any] = []
        self._policy_cache: Optional[tuple] = None
        self._hdr_cache: dict[tuple, Any] = {}
        #: number of rpm headers actually read from disk (imports + getRPMDeps etc.)
        self.header_reads = 0
        with self.using():
            for name in DEFAULT_PERMISSIONS:
                self._add_perm(name)
            for name in DEFAULT_CHANNELS:
                self.add_channel(name)
            self.add_user(admin, perms=['admin'], password=admin_password)

    # ------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def using(self) -> Iterator[State]:
        """Run hub code against this State (takes the lock, sets the context state)."""
        with self.lock:
            prev = getattr(context, 'hubsim_state', _MISSING)
            context.hubsim_state = self
            try:
                yield self
            finally:
                if prev is _MISSING:
                    del context.hubsim_state
                else:
                    context.hubsim_state = prev

    def nextval(self, table: str) -> int:
        with self.lock:
            value = self.db.seq.get(table, 0) + 1
            self.db.seq[table] = value
            return value

    def new_event(self) -> int:
        with self.lock:
            ev = self.nextval('events')
            self.db.events[ev] = {'id': ev, 'time': datetime.datetime.fromtimestamp(
                self.clock(), datetime.timezone.utc)}
            return ev

    def last_event(self) -> int:
        return max(self.db.events) if self.db.events else 0

    def snapshot(self) -> DB:
        """Copy of the data, for rolling a failed call back (State.restore)."""
        with self.lock:
            return self.db.copy()

    def restore(self, snap: DB) -> None:
        with self.lock:
            self.db = snap

    @contextlib.contextmanager
    def atomic(self) -> Iterator[State]:
        """using() plus rollback of the data if the block raises (a hub transaction)."""
        with self.using():
            snap = self.snapshot()
            try:
                yield self
            except BaseException:
                self.restore(snap)
                raise

    @property
    def opts(self) -> dict:
        return hubcore.hub_opts(self)

    def header_fields(self, path: str, fields: list[str]) -> dict:
        """koji.get_header_fields() with a header cache keyed on (path, mtime, size)."""
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        with self.lock:
            hdr = self._hdr_cache.pop(key, None)
            if hdr is None:
                hdr = koji.get_rpm_header(path)
                self.header_reads += 1
            self._hdr_cache[key] = hdr  # most recently used last
            while len(self._hdr_cache) > 256:
                del self._hdr_cache[next(iter(self._hdr_cache))]
        return koji.get_header_fields(hdr, fields)

    # ------------------------------------------------------------------ policy
    def set_policy(self, name: str, text: Optional[str]) -> None:
        """Set (or with None remove) a hub policy, in hub.conf [policy] syntax."""
        with self.lock:
            if text is None:
                self.policy_text.pop(name, None)
            else:
                self.policy_text[name] = text
            self._policy_cache = None

    def add_policy_module(self, module: Any) -> None:
        """Make a (hub plugin) module's BaseSimpleTest classes usable in policies."""
        with self.lock:
            if module not in self.policy_modules:
                self.policy_modules.append(module)
            self._policy_cache = None

    def policy(self) -> dict:
        """{name: koji.policy.SimpleRuleSet}, built like kojixmlrpc.get_policy()."""
        with self.lock:
            key = (tuple(sorted(self.policy_text.items())),
                   tuple(id(m) for m in self.policy_modules))
            if self._policy_cache and self._policy_cache[0] == key:
                return self._policy_cache[1]
            alltests = [koji.policy.findSimpleTests([vars(hubcore), vars(koji.policy)])]
            alltests += [koji.policy.findSimpleTests(vars(m)) for m in self.policy_modules]
            rulesets = {}
            for pname, text in self.policy_text.items():
                merged = {}
                for tests in alltests:
                    for name, test in tests.items():
                        restrict = getattr(test, 'policy', None)
                        if restrict is not None:
                            if isinstance(restrict, str) and pname != restrict:
                                continue
                            if not isinstance(restrict, str) and pname not in restrict:
                                continue
                        merged[name] = test
                rulesets[pname] = koji.policy.SimpleRuleSet(text.splitlines(), merged)
            self._policy_cache = (key, rulesets)
            return rulesets

    # ------------------------------------------------------------------ users
    def _add_perm(self, name: str, description: Optional[str] = None) -> int:
        for p in self.db.permissions.values():
            if p['name'] == name:
                return p['id']
        pid = self.nextval('permissions')
        self.db.permissions[pid] = {'id': pid, 'name': name, 'description': description}
        return pid

    def _user(self, user: Union[int, str, None]) -> dict:
        with self.using():
            return hubcore.get_user(self.admin if user is None else user, strict=True)

    def add_user(self, name: str, perms: Iterable[str] = (), *, password: Optional[str] = None,
                 usertype: str = 'NORMAL', status: str = 'NORMAL',
                 krb_principal: Optional[str] = None, groups: Iterable[str] = ()) -> dict:
        """Create a user (``usertype`` NORMAL, HOST or GROUP) and grant ``perms``."""
        with self.using():
            if hubcore.get_user(name) is not None:
                raise koji.GenericError('hubsim: user %s exists' % name)
            uid = self.nextval('users')
            self.db.users[uid] = {'id': uid, 'name': name, 'password': password,
                                  'status': koji.USER_STATUS[status],
                                  'usertype': koji.USERTYPES[usertype]}
            if krb_principal:
                self.db.user_krb_principals.append({'user_id': uid,
                                                    'krb_principal': krb_principal})
            self.grant(name, *perms)
            for g in groups:
                gid = hubcore.get_user(g, strict=True)['id']
                hubcore._vinsert('user_groups', {'user_id': uid, 'group_id': gid},
                                 user_id=uid)
            return hubcore.get_user(uid)

    def add_group(self, name: str, perms: Iterable[str] = (),
                  members: Iterable[str] = ()) -> dict:
        group = self.add_user(name, perms, usertype='GROUP')
        with self.using():
            for m in members:
                hubcore._vinsert('user_groups', {'user_id': self._user(m)['id'],
                                                 'group_id': group['id']}, user_id=group['id'])
        return group

    def grant(self, user: Union[int, str], *perms: str) -> None:
        """Grant permissions (created on the fly, like ``grant-permission --new``)."""
        with self.using():
            uid = self._user(user)['id']
            have = set(hubcore.get_user_perms(uid, with_groups=False))
            for perm in perms:
                if perm not in have:
                    hubcore._vinsert('user_perms', {'user_id': uid,
                                                    'perm_id': self._add_perm(perm)},
                                     user_id=uid)

    def revoke(self, user: Union[int, str], *perms: str) -> None:
        with self.using():
            uid = self._user(user)['id']
            for perm in perms:
                pid = hubcore.get_perm_id(perm, strict=True)
                hubcore._vrevoke('user_perms', {'user_id': uid, 'perm_id': pid}, user_id=uid)

    def add_channel(self, name: str, *, enabled: bool = True,
                    description: Optional[str] = None) -> dict:
        with self.lock:
            for c in self.db.channels.values():
                if c['name'] == name:
                    return dict(c)
            cid = self.nextval('channels')
            self.db.channels[cid] = {'id': cid, 'name': name, 'description': description,
                                     'enabled': enabled, 'comment': None}
            return dict(self.db.channels[cid])

    def add_host(self, name: str, *, arches: str = 'x86_64',
                 channels: Iterable[str] = ('default',), capacity: float = 2.0,
                 enabled: bool = True, ready: bool = True) -> dict:
        """A builder host: a HOST-type user of the same name plus host/channel rows."""
        with self.using():
            user = self.add_user(name, usertype='HOST')
            hid = self.nextval('host')
            self.db.host[hid] = {'id': hid, 'user_id': user['id'], 'name': name,
                                 'update_time': None, 'task_load': 0.0, 'ready': ready}
            hubcore._vinsert('host_config', {'host_id': hid, 'arches': arches,
                                             'capacity': capacity, 'description': None,
                                             'comment': None, 'enabled': enabled},
                             user_id=user['id'])
            for ch in channels:
                cid = self.add_channel(ch)['id']
                hubcore._vinsert('host_channels', {'host_id': hid, 'channel_id': cid},
                                 user_id=user['id'])
            return hubcore.get_host(hid)

    # ------------------------------------------------------------------ tags
    def add_tag(self, name: str, *, parents: Iterable[str] = (), arches: Optional[str] = None,
                perm: Optional[str] = None, locked: bool = False,
                extra: Optional[dict] = None, maven_support: bool = False,
                maven_include_all: bool = False) -> dict:
        """Create a tag; ``parents`` are linked in order with priorities 0, 10, 20..."""
        with self.using():
            if hubcore.get_tag_id(name) is not None:
                raise koji.GenericError('hubsim: tag %s exists' % name)
            tid = self.nextval('tag')
            self.db.tag[tid] = {'id': tid, 'name': name}
            perm_id = self._add_perm(perm) if perm else None
            hubcore._vinsert('tag_config', {'tag_id': tid, 'arches': arches, 'perm_id': perm_id,
                                            'locked': locked, 'maven_support': maven_support,
                                            'maven_include_all': maven_include_all})
            for key, value in (extra or {}).items():
                hubcore._vinsert('tag_extra', {'tag_id': tid, 'key': key,
                                               'value': json.dumps(value)})
            for parent in parents:
                self.add_inheritance(name, parent)
            return hubcore.get_tag(tid)

    def add_inheritance(self, tag: Union[int, str], parent: Union[int, str], *,
                        priority: Optional[int] = None, maxdepth: Optional[int] = None,
                        intransitive: bool = False, noconfig: bool = False,
                        pkg_filter: str = '') -> None:
        with self.using():
            tid = hubcore.get_tag_id(tag, strict=True)
            pid = hubcore.get_tag_id(parent, strict=True)
            current = hubcore.readInheritanceData(tid)
            if priority is None:
                priority = max((link['priority'] for link in current), default=-10) + 10
            hubcore._vrevoke('tag_inheritance', {'tag_id': tid, 'parent_id': pid})
            hubcore._vinsert('tag_inheritance', {
                'tag_id': tid, 'parent_id': pid, 'priority': priority, 'maxdepth': maxdepth,
                'intransitive': intransitive, 'noconfig': noconfig, 'pkg_filter': pkg_filter})

    def remove_inheritance(self, tag: Union[int, str], parent: Union[int, str]) -> None:
        with self.using():
            hubcore._vrevoke('tag_inheritance', {'tag_id': hubcore.get_tag_id(tag, strict=True),
                                                 'parent_id': hubcore.get_tag_id(parent,
                                                                                 strict=True)})

    def set_tag_extra(self, tag: Union[int, str], key: str, value: Any) -> None:
        with self.using():
            tid = hubcore.get_tag_id(tag, strict=True)
            hubcore._vrevoke('tag_extra', {'tag_id': tid, 'key': key})
            hubcore._vinsert('tag_extra', {'tag_id': tid, 'key': key,
                                           'value': json.dumps(value)})

    def add_package(self, tag: Union[int, str], package: str, *,
                    owner: Union[int, str, None] = None, block: bool = False,
                    extra_arches: Optional[str] = None) -> None:
        """Add (or block) a package in a tag's package list (fires PackageListChange)."""
        with self.using():
            owner_id = self._user(owner)['id']
            hubcore._direct_pkglist_add(tag, package, owner_id, block, extra_arches,
                                        True, False)

    def add_target(self, name: str, build_tag: Union[int, str],
                   dest_tag: Union[int, str]) -> dict:
        with self.using():
            tid = self.nextval('build_target')
            self.db.build_target[tid] = {'id': tid, 'name': name}
            hubcore._vinsert('build_target_config', {
                'build_target_id': tid, 'build_tag': hubcore.get_tag_id(build_tag, strict=True),
                'dest_tag': hubcore.get_tag_id(dest_tag, strict=True)})
            return hubcore.get_build_target(tid)

    # ------------------------------------------------------------------ builds
    def _ensure_task(self, task_id: Union[int, bool, None], owner_id: int, method: str,
                     arglist: list) -> Optional[int]:
        """Link to a task row, creating a CLOSED one (at that id if free) if needed."""
        if task_id is None or task_id is False:
            return None
        if task_id is not True and task_id in self.db.task:
            return task_id
        if task_id is True:
            task_id = self.nextval('task')
        else:
            self.db.seq['task'] = max(self.db.seq.get('task', 0), task_id)
        now = datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc)
        self.db.task[task_id] = {
            'id': task_id, 'state': koji.TASK_STATES['CLOSED'], 'create_time': now,
            'start_time': now, 'completion_time': now,
            'channel_id': hubcore.get_channel_id('default'), 'host_id': None, 'parent': None,
            'label': None, 'waiting': None, 'awaited': None, 'owner': owner_id,
            'method': method, 'request': hubcore._task_dumps_request(method, arglist),
            'result': koji.xmlrpcplus.dumps((None,), methodresponse=1, allow_none=1),
            'arch': 'noarch', 'priority': koji.PRIO_DEFAULT, 'weight': 1.0}
        return task_id

    def add_build(self, nvr: str, *, epoch: Optional[int] = None,
                  owner: Union[int, str, None] = None, state: str = 'COMPLETE',
                  draft: bool = False, source: Optional[str] = None,
                  task_id: Union[int, bool, None] = None, extra: Optional[dict] = None,
                  tag: Optional[str] = None) -> dict:
        """A build row without rpms (e.g. a FAILED or BUILDING build)."""
        with self.using():
            data = koji.parse_NVR(nvr)
            owner_id = self._user(owner)['id']
            bdata = {'name': data['name'], 'version': data['version'],
                     'release': data['release'], 'epoch': epoch, 'owner': owner_id,
                     'state': koji.BUILD_STATES[state], 'draft': draft, 'source': source,
                     'task_id': self._ensure_task(task_id, owner_id, 'build',
                                                  [source or nvr, None, {}])}
            if extra is not None:
                bdata['extra'] = extra
            bid = hubcore.new_build(bdata)
            if tag:
                self.tag_build(tag, bid)
            return hubcore.get_build(bid)

    def _read_rpm(self, path: str) -> dict:
        try:
            hdr = koji.get_rpm_header(path)
        except Exception as e:
            raise koji.GenericError('hubsim: cannot read rpm header of %s: %s' % (path, e)) \
                from None
        self.header_reads += 1
        info = koji.get_header_fields(hdr, ['name', 'version', 'release', 'epoch', 'arch',
                                            'sourcepackage', 'sourcerpm', 'buildtime'])
        info['payloadhash'] = koji.hex_string(koji.get_header_field(hdr, 'sigmd5'))
        if info['sourcepackage'] == 1:
            info['arch'] = 'src'
        return info

    def import_rpms(self, paths: Iterable[Union[str, os.PathLike]],
                    owner: Union[int, str, None] = None, *, source: Optional[str] = None,
                    task_id: Union[int, bool, None] = None, extra: Optional[dict] = None,
                    draft: bool = False, state: str = 'COMPLETE', tag: Optional[str] = None,
                    callbacks: bool = True, link: bool = False) -> list[dict]:
        """Import real rpm files the way ``koji import`` groups them.

        Binary rpms join the build named by their SOURCERPM header (a ``.src.rpm``
        names its own build); an existing non-draft build of that NVR gets the rpms
        added.  Files are copied (``link=True``: hard-linked) to
        ``packages/<n>/<v>/<r>/<arch>/<nvra>.rpm``.  With ``callbacks`` the hub
        callbacks of a completed build task run in the real order: BuildStateChange
        (None->BUILDING), preImport(type='build'), BuildStateChange (BUILDING->state),
        pre/postImport(type='rpm') per rpm (srpm first), postImport(type='build').
        ``task_id=True`` creates a CLOSED ``build`` task for each new build.
        Returns the get_build() dicts in import order.
        """
        owner = self.admin if owner is None else owner
        infos = []
        for p in paths:
            path = os.path.abspath(os.fspath(p))
            infos.append((path, self._read_rpm(path)))
        groups: dict[str, list] = {}
        for path, info in infos:
            if info['sourcepackage'] == 1:
                key = '%(name)s-%(version)s-%(release)s.src.rpm' % info
            else:
                key = info['sourcerpm']
            groups.setdefault(key, []).append((path, info))
        result = []
        with self.atomic():
            for srpm_name, members in groups.items():
                members.sort(key=lambda m: m[1]['arch'] != 'src')
                result.append(self._import_group(srpm_name, members, owner, source, task_id,
                                                 extra, draft, state, callbacks, link))
                if tag:
                    self.tag_build(tag, result[-1]['id'])
            return [hubcore.get_build(b['id']) for b in result]

    def _import_group(self, srpm_name, members, owner, source, task_id, extra, draft, state,
                      callbacks, link) -> dict:
        nvra = koji.parse_NVRA(srpm_name)
        epoch = members[0][1]['epoch']
        owner_id = self._user(owner)['id']
        final_state = koji.BUILD_STATES[state]
        run = koji.plugin.run_callbacks if callbacks else (lambda *a, **k: None)
        existing = None if draft else hubcore.get_build(
            {'name': nvra['name'], 'version': nvra['version'], 'release': nvra['release']})
        if existing is None:
            bdata = {'name': nvra['name'], 'version': nvra['version'],
                     'release': nvra['release'], 'epoch': epoch, 'owner': owner_id,
                     'state': koji.BUILD_STATES['BUILDING'], 'draft': draft, 'source': source,
                     'task_id': self._ensure_task(task_id, owner_id, 'build',
                                                  [source or srpm_name, None, {}])}
            if extra is not None:
                bdata['extra'] = extra
            build_id = hubcore.new_build(bdata) if callbacks else self._quiet_new_build(bdata)
        else:
            build_id = existing['id']
        binfo = hubcore.get_build(build_id, strict=True)
        work = self.pathinfo.work()
        dests = []
        for _path, info in members:
            dests.append(os.path.join(self.pathinfo.build(binfo), self.pathinfo.rpm(info)))
        relpaths = [os.path.relpath(d, work) for d in dests]
        srpm_rel = relpaths[0] if members[0][1]['arch'] == 'src' else None
        bin_rels = [r for r, (_p, i) in zip(relpaths, members) if i['arch'] != 'src']
        if existing is None:
            run('preImport', type='build', srpm=srpm_rel, rpms=bin_rels, brmap={},
                task_id=binfo['task_id'], build_id=build_id, build=None, logs=None)
            if final_state != binfo['state']:
                run('preBuildStateChange', attribute='state', old=binfo['state'],
                    new=final_state, info=binfo)
                row = self.db.build[build_id]
                row['state'] = final_state
                if final_state != koji.BUILD_STATES['BUILDING']:
                    row['completion_time'] = datetime.datetime.fromtimestamp(
                        self.clock(), datetime.timezone.utc)
                binfo = hubcore.get_build(build_id, strict=True)
                run('postBuildStateChange', attribute='state', old=koji.BUILD_STATES['BUILDING'],
                    new=final_state, info=binfo)
        for (path, info), dest in zip(members, dests):
            key = (info['name'], info['version'], info['release'], info['arch'])
            if not draft and any(not self.db.rpminfo[i]['draft']
                                 for i in self.db.rpm_nvra.get(key, ())):
                raise koji.GenericError('hubsim: rpm already imported: %s-%s-%s.%s' % key)
            rpminfo = dict(info)
            rpminfo['draft'] = bool(draft)
            rpminfo['id'] = self.nextval('rpminfo')
            rpminfo['build_id'] = build_id
            rpminfo['size'] = os.path.getsize(path)
            rpminfo['buildroot_id'] = None
            rpminfo['external_repo_id'] = 0
            run('preImport', type='rpm', rpm=rpminfo, build=binfo, filepath=dest,
                fileinfo=None)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.exists(dest):
                os.unlink(dest)
            if link:
                try:
                    os.link(path, dest)
                except OSError:
                    shutil.copyfile(path, dest)
            else:
                shutil.copyfile(path, dest)
            row = {k: rpminfo[k] for k in ('id', 'build_id', 'buildroot_id', 'name', 'version',
                                           'release', 'epoch', 'arch', 'draft',
                                           'external_repo_id', 'payloadhash', 'size',
                                           'buildtime')}
            row['metadata_only'] = False
            row['extra'] = None
            self.db.rpminfo[row['id']] = row
            self.db.rpm_by_build.setdefault(build_id, []).append(row['id'])
            self.db.rpm_nvra.setdefault(key, []).append(row['id'])
            self.db.build_types.setdefault(build_id, set()).add('rpm')
            run('postImport', type='rpm', rpm=rpminfo, build=binfo, filepath=dest,
                fileinfo=None)
        if existing is None:
            run('postImport', type='build', srpm=srpm_rel, rpms=bin_rels, brmap={},
                task_id=binfo['task_id'], build_id=build_id,
                build=hubcore.get_build(build_id), logs=None)
        return hubcore.get_build(build_id)

    def _quiet_new_build(self, bdata: dict) -> int:
        saved = {k: list(v) for k, v in koji.plugin.callbacks.items()
                 if k in ('preBuildStateChange', 'postBuildStateChange')}
        try:
            for k in saved:
                koji.plugin.callbacks[k][:] = []
            return hubcore.new_build(bdata)
        finally:
            for k, v in saved.items():
                koji.plugin.callbacks[k][:] = v

    def import_dir(self, directory: str, **kwargs) -> list[dict]:
        """import_rpms() on every ``*.rpm`` below ``directory`` (sorted)."""
        paths = []
        for root, _dirs, files in os.walk(directory):
            paths += [os.path.join(root, f) for f in files if f.endswith('.rpm')]
        return self.import_rpms(sorted(paths), **kwargs)

    def set_build_state(self, build: BuildRef, state: str) -> dict:
        """Change a build's state, running pre/postBuildStateChange like the hub."""
        with self.atomic():
            binfo = hubcore.get_build(build, strict=True)
            new = koji.BUILD_STATES[state]
            koji.plugin.run_callbacks('preBuildStateChange', attribute='state',
                                      old=binfo['state'], new=new, info=binfo)
            row = self.db.build[binfo['id']]
            row['state'] = new
            if new != koji.BUILD_STATES['BUILDING'] and row['completion_time'] is None:
                row['completion_time'] = datetime.datetime.fromtimestamp(
                    self.clock(), datetime.timezone.utc)
            after = hubcore.get_build(binfo['id'])
            koji.plugin.run_callbacks('postBuildStateChange', attribute='state',
                                      old=binfo['state'], new=new, info=after)
            return after

    def set_build_extra(self, build: BuildRef, extra: Optional[dict]) -> dict:
        """Replace build.extra (the hub has no API for it; plugins write the row)."""
        with self.using():
            binfo = hubcore.get_build(build, strict=True)
            self.db.build[binfo['id']]['extra'] = None if extra is None else json.dumps(extra)
            return hubcore.get_build(binfo['id'])

    def tag_build(self, tag: Union[int, str], build: BuildRef, *,
                  user: Union[int, str, None] = None, force: bool = False,
                  add_package: bool = True) -> int:
        """Tag directly (no policy, pre/postTag run); returns the tagging event id.

        ``add_package`` first adds the package to the tag's list (owner: build owner)
        when it is not listed, since untagged-package listings are ignored by Koji."""
        with self.atomic():
            tinfo = hubcore.get_tag(tag, strict=True)
            binfo = hubcore.get_build(build, strict=True)
            if add_package:
                pkgs = hubcore.readPackageList(tinfo['id'], pkgID=binfo['package_id'],
                                               inherit=True, with_owners=False)
                if binfo['package_id'] not in pkgs:
                    self.add_package(tinfo['id'], binfo['name'], owner=binfo['owner_id'])
            uinfo = self._user(user)
            hubcore._direct_tag_build(tinfo, binfo, uinfo, force=force)
            return self.last_event()

    def untag_build(self, tag: Union[int, str], build: BuildRef, *,
                    user: Union[int, str, None] = None, strict: bool = True) -> int:
        with self.atomic():
            hubcore._direct_untag_build(hubcore.get_tag(tag, strict=True),
                                        hubcore.get_build(build, strict=True),
                                        self._user(user), strict=strict)
            return self.last_event()

    def rpm_file(self, rpm: Union[int, str, dict]) -> str:
        """Absolute path of an imported rpm under topdir."""
        with self.using():
            rinfo = hubcore.get_rpm(rpm, strict=True)
            return hubcore.rpm_path(rinfo, hubcore.get_build(rinfo['build_id']))

    # ------------------------------------------------------------------ sessions
    def new_session(self, user: Union[int, str], *, exclusive: Optional[bool] = None,
                    master: Optional[int] = None,
                    authtype: int = koji.AUTHTYPES['NORMAL']) -> dict:
        """Create a login session; returns the sinfo a ClientSession.setSession() takes.

        ``user`` is a user or host name (or id); host sessions are exclusive by
        default (kojid calls exclusiveSession right after logging in)."""
        with self.using():
            uinfo = self._user(user)
            if exclusive is None:
                exclusive = uinfo['usertype'] == koji.USERTYPES['HOST'] and master is None
            sid = self.nextval('sessions')
            alnum = string.ascii_letters + string.digits
            key = '%s-%s' % (uinfo['id'], ''.join(random.choice(alnum) for _ in range(19)))
            self.db.sessions[sid] = {'id': sid, 'user_id': uinfo['id'], 'key': key,
                                     'authtype': authtype, 'exclusive': exclusive or None,
                                     'master': master, 'expired': False, 'closed': False,
                                     'callnum': None, 'hostip': '-'}
            return {'session-id': sid, 'session-key': key, 'header-auth': True}

    # ------------------------------------------------------------------ tasks
    def make_task(self, method: str, arglist: list, **opts) -> int:
        """kojihub.make_task(); top-level tasks default to ``owner=self.admin``."""
        with self.using():
            if 'parent' not in opts:
                opts.setdefault('owner', self.admin)
            return hubcore.make_task(method, list(arglist), **opts)

    def open_task(self, task_id: int, host: Union[int, str]) -> dict:
        """FREE/ASSIGNED -> OPEN on ``host`` (what kojid's takeTask does)."""
        with self.using():
            hid = hubcore.get_host(host, strict=True)['id']
            info = hubcore.Task(task_id).open(hid)
            if info is None:
                raise koji.GenericError('hubsim: cannot open task %s' % task_id)
            return info

    def close_task(self, task_id: int, result: Any = None) -> None:
        """Finish a task with ``result`` (XML-RPC encoded as kojid does)."""
        with self.using():
            hubcore.Task(task_id).close(
                koji.xmlrpcplus.dumps((result,), methodresponse=1, allow_none=1))

    def fail_task(self, task_id: int, error: Union[str, BaseException]) -> None:
        """Fail a task with a Fault (code of a GenericError subclass, else 1)."""
        code = getattr(error, 'faultCode', 1)
        with self.using():
            hubcore.Task(task_id).fail(koji.xmlrpcplus.dumps(
                koji.xmlrpcplus.Fault(code, str(error))))

    def cancel_task(self, task_id: int) -> None:
        with self.using():
            hubcore.Task(task_id).cancel()

    def task_info(self, task_id: int, request: bool = False) -> Optional[dict]:
        with self.using():
            return hubcore.Task(task_id).getInfo(strict=False, request=request)

    def task_children(self, task_id: int, request: bool = False) -> list[dict]:
        with self.using():
            return hubcore.Task(task_id).getChildren(request=request)

    def task_result(self, task_id: int, raise_fault: bool = True) -> Any:
        with self.using():
            return hubcore.Task(task_id).getResult(raise_fault=raise_fault)

    def tasks(self, method: Optional[str] = None) -> list[dict]:
        """All tasks (optionally of one method), with decoded request, oldest first."""
        with self.using():
            return [hubcore.Task(t).getInfo(request=True) for t in sorted(self.db.task)
                    if method is None or self.db.task[t]['method'] == method]

    def run_autorun(self, parent: Optional[int] = None) -> list[int]:
        """Run ``self.autorun[method]`` for unfinished tasks (children of ``parent``).

        The callable gets the task info (with decoded ``request``); its return value
        closes the task, an exception fails it.  Returns the task ids it ran."""
        ran = []
        with self.using():
            todo = [t for t in sorted(self.db.task.values(), key=lambda r: r['id'])
                    if (parent is None or t['parent'] == parent)
                    and t['state'] in (koji.TASK_STATES['FREE'], koji.TASK_STATES['ASSIGNED'])
                    and t['method'] in self.autorun]
            for row in todo:
                info = hubcore.Task(row['id']).getInfo(request=True)
                row['state'] = koji.TASK_STATES['OPEN']
                row['start_time'] = datetime.datetime.fromtimestamp(self.clock(),
                                                                    datetime.timezone.utc)
                try:
                    result = self.autorun[row['method']](info)
                except Exception as e:
                    self.fail_task(row['id'], e if isinstance(e, koji.GenericError)
                                   else ''.join(traceback.format_exception_only(type(e), e)))
                else:
                    self.close_task(row['id'], result)
                ran.append(row['id'])
        return ran

    def check_wait_deadlock(self, parent: int, unfinished: list[int]) -> None:
        """Raise when a waiting task would sleep forever: no awaited child is OPEN
        (being run by some builder thread) and nothing else will run them."""
        rows = [self.db.task[t] for t in unfinished]
        if any(r['state'] == koji.TASK_STATES['OPEN'] for r in rows):
            return
        raise koji.GenericError(
            'hubsim: task %s waits on subtasks %s that nothing will run; finish them '
            '(State.close_task/fail_task), register State.autorun[method], or set '
            'State.strict_wait = False' % (parent, unfinished))

    def run_tag_task(self, task_id: int) -> None:
        """Run a ``tagBuild`` task at once as its owner (what kojid + host.tagBuild do)."""
        row = self.db.task[task_id]
        tag_id, build_id, force, fromtag = koji.xmlrpcplus.loads(row['request'])[0][:4]
        row['state'] = koji.TASK_STATES['OPEN']
        row['start_time'] = datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc)
        snap = self.snapshot()
        try:
            hubcore._host_tag_build(row['owner'], tag_id, build_id, force, fromtag)
        except Exception as e:
            self.restore(snap)
            self.fail_task(task_id, e)
        else:
            self.close_task(task_id, None)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str) -> None:
        """Pickle the data (not the files: they stay in ``topdir``)."""
        tables = {k: v for k, v in vars(self.db).items() if k not in DB.DERIVED}
        with self.lock, open(path, 'wb') as fo:
            pickle.dump({'tables': tables, 'topdir': self.topdir, 'admin': self.admin,
                         'policy_text': self.policy_text}, fo)

    @classmethod
    def load(cls, path: str) -> State:
        with open(path, 'rb') as fo:
            data = pickle.load(fo)
        st = cls(data['topdir'], admin=data['admin'])
        st.db = DB.__new__(DB)
        vars(st.db).update(data['tables'])
        st.db.reindex()
        st.policy_text = data['policy_text']
        return st

    @classmethod
    def from_spec(cls, spec: dict, base: str = '.') -> State:
        """Build a State from a JSON scenario::

            {"topdir": null, "users": [{"name": "alice", "perms": ["tag"],
             "password": "alice"}], "hosts": [{"name": "builder1"}],
             "tags": [{"name": "el9-build", "parents": []}],
             "targets": [{"name": "el9", "build_tag": "el9-build", "dest_tag": "el9"}],
             "imports": [{"paths": ["rpms/*.rpm"], "owner": "alice", "tag": "el9"}],
             "policy": {"tag": "all :: allow"}}
        """
        import glob
        st = cls(spec.get('topdir'), admin=spec.get('admin', 'kojiadmin'),
                 admin_password=spec.get('admin_password'))
        for u in spec.get('users', ()):
            u = dict(u)
            st.add_user(u.pop('name'), **u)
        for h in spec.get('hosts', ()):
            h = dict(h)
            st.add_host(h.pop('name'), **h)
        for t in spec.get('tags', ()):
            t = dict(t)
            st.add_tag(t.pop('name'), **t)
        for t in spec.get('targets', ()):
            st.add_target(t['name'], t['build_tag'], t['dest_tag'])
        for name, text in spec.get('policy', {}).items():
            st.set_policy(name, text)
        for imp in spec.get('imports', ()):
            imp = dict(imp)
            paths = []
            for pat in imp.pop('paths'):
                paths += sorted(glob.glob(os.path.join(base, pat)))
            st.import_rpms(paths, **imp)
        return st

    def cleanup(self) -> None:
        """Remove a topdir this State created itself."""
        if self._own_topdir:
            shutil.rmtree(self.topdir, ignore_errors=True)
