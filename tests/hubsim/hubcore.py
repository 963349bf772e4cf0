"""Hub-side semantics of the simulated Koji hub, over an in-memory :class:`State`.

Every public function here has the exact signature of its namesake in Koji's
``kojihub/kojihub.py`` (github koji-project/koji, master at commit
2083513aab6ed193215efebb21823d905e02f339, 2025-07-02); bodies are re-implementations
over ``State.db`` that follow the real SQL (same keys, same ordering, same error
classes and messages where a caller could notice).  The same code serves the HTTP
hub (:mod:`.server`) and the in-process ``kojihub`` stand-in, so a plugin sees one
behaviour whichever way it is exercised.

State lookup: ``koji.context.context.hubsim_state`` (set per request by the server),
else the process default set with :func:`set_default_state` (the stand-in's
``kojihub.STATE = state``).

Known differences from a real hub (deliberate, to keep tests simple and fast):

* only rpm builds: no archives/maven/win/image, buildroots, repos, signatures
  (``queryRPMSigs`` -> []), content generators (``listBuilds(cgID=...)`` -> []);
* sessions never expire, no callnum (SequenceError) or client-IP checks, no SSL or
  Kerberos login (password ``login`` and pre-made sessions only);
* ``tagBuild`` creates the ``tagBuild`` task and runs it at once (CLOSED, or FAILED
  with the fault) instead of waiting for a builder;
* ``host.taskWait`` first runs ``State.autorun`` handlers for awaited children and,
  with ``State.strict_wait``, raises instead of letting ``BaseTaskHandler.wait()``
  sleep forever on children nobody runs;
* in-process (stand-in) calls are not transactions (use ``State.atomic()``), take no
  lock, and every write makes its own event; over HTTP one call = one event and a
  failing call (or multicall entry) is rolled back.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import fnmatch
import json
import logging
import os
import re
from typing import Any, Optional

import koji
import koji.plugin
import koji.policy
import koji.tasks
import koji.util
import koji.xmlrpcplus
from koji.context import context

logger = logging.getLogger('koji.hub')

NUMERIC_TYPES = (int, float)
HUB_COMMIT = '2083513aab6ed193215efebb21823d905e02f339'

_DEFAULT: dict[str, Any] = {'state': None}


def set_default_state(state: Any) -> None:
    """Make ``state`` the one used when no request context names one."""
    _DEFAULT['state'] = state


def get_default_state() -> Any:
    return _DEFAULT['state']


def current_state() -> Any:
    """The State serving this thread's call (request context first, then default)."""
    st = getattr(context, 'hubsim_state', None) or _DEFAULT['state']
    if st is None:
        raise koji.GenericError('hubsim: no State set (kojihub.STATE = state)')
    return st


def _db():
    return current_state().db


def _now() -> datetime.datetime:
    return datetime.datetime.fromtimestamp(current_state().clock(), datetime.timezone.utc)


def _ts(value: Optional[datetime.datetime]) -> Optional[float]:
    return None if value is None else value.timestamp()


def _sorted(d: dict) -> dict:
    """Real rows come back with aliases in sorted order (QueryProcessor sorts them)."""
    return dict(sorted(d.items()))


def _event() -> int:
    """Event id of the current call: one per hub call, as the real get_event()."""
    if getattr(context, 'hubsim_in_call', False):
        ev = getattr(context, 'event_id', None)
        if ev is not None:
            return ev
    ev = current_state().new_event()
    if getattr(context, 'hubsim_in_call', False):
        context.event_id = ev
    _mark_write()
    return ev


def _mark_write() -> None:
    context.commit_pending = True


def _active(row: dict, event: Optional[int]) -> bool:
    """eventCondition(): active now, or live at ``event``."""
    if event is None:
        return row['revoke_event'] is None
    if not isinstance(event, int):
        raise koji.GenericError("Invalid event: %r" % event)
    return row['create_event'] <= event and (row['revoke_event'] is None
                                             or event < row['revoke_event'])


def _user_id_or_none() -> Optional[int]:
    sess = getattr(context, 'session', None)
    return getattr(sess, 'user_id', None) if sess is not None else None


def _vinsert(table: str, data: dict, user_id: Optional[int] = None) -> dict:
    row = dict(data)
    row['create_event'] = _event()
    row['creator_id'] = user_id if user_id is not None else _user_id_or_none()
    row['revoke_event'] = None
    row['revoker_id'] = None
    row['active'] = True
    getattr(_db(), table).append(row)
    return row


def _vrevoke(table: str, match: dict, user_id: Optional[int] = None) -> int:
    count = 0
    ev = None
    for row in getattr(_db(), table):
        if row['active'] and all(row[k] == v for k, v in match.items()):
            if ev is None:
                ev = _event()
            row['revoke_event'] = ev
            row['revoker_id'] = user_id if user_id is not None else _user_id_or_none()
            row['active'] = None
            count += 1
    return count


def parse_json(value, desc=None, errstr=None):
    if value is None:
        return value
    try:
        return koji.fixEncodingRecurse(json.loads(value))
    except Exception:
        if errstr is None:
            errstr = "Invalid json data for %s" % desc if desc else "Invalid json data"
        raise koji.GenericError("%s: %r" % (errstr, value)) from None


def convert_value(value, cast=None, message=None,
                  exc_type=koji.ParameterError, none_allowed=False, check_only=False):
    """Cast to another type with tailored exception (copied from kojihub)."""
    if value is None:
        if not none_allowed:
            raise exc_type(message or f"Invalid type, expected type {cast}")
        else:
            return value
    if check_only:
        if not isinstance(value, cast):
            raise exc_type(message or f"Invalid type for value '{value}': {type(value)}, "
                           f"expected type {cast}")
    else:
        try:
            value = cast(value)
        except (ValueError, TypeError):
            raise exc_type(message or f"Invalid type for value '{value}': {type(value)}, "
                           f"expected type {cast}") from None
    return value


def _apply_query_opts(rows, queryOpts, as_list_ok=True):
    """QueryProcessor's opts (order with several ``-field`` terms, offset, limit,
    countOnly, asList in sorted-alias order) applied to a list of dicts."""
    rows = list(rows)
    opts = queryOpts or {}
    if opts.get('countOnly'):
        return len(rows)
    order = opts.get('order')
    if order:
        for term in reversed(order.split(',')):
            rev = term.startswith('-')
            key = term[1:] if rev else term
            if rows and key not in rows[0]:
                raise koji.GenericError('Invalid order: ' + key)
            rows.sort(key=lambda r, k=key: (r[k] is None, r[k]), reverse=rev)
    if opts.get('offset'):
        rows = rows[opts['offset']:]
    if opts.get('limit'):
        rows = rows[:opts['limit']]
    if as_list_ok and opts.get('asList'):
        rows = [[r[k] for k in sorted(r)] for r in rows]
    return rows


def _gen(rows):
    """Rows as a generator: what QueryProcessor.iterate() hands back (and what the
    XML-RPC marshaller accepts)."""
    yield from rows


def _applyQueryOpts(results, queryOpts):
    """kojihub.db._applyQueryOpts (single order term, no asList)."""
    if queryOpts is None:
        queryOpts = {}
    if queryOpts.get('order'):
        order = queryOpts['order']
        reverse = False
        if order.startswith('-'):
            order = order[1:]
            reverse = True
        results.sort(key=lambda o: o[order], reverse=reverse)
    if queryOpts.get('offset'):
        results = results[queryOpts['offset']:]
    if queryOpts.get('limit'):
        results = results[:queryOpts['limit']]
    if queryOpts.get('countOnly'):
        return len(results)
    return results


# --------------------------------------------------------------------------- lookups

_NAMED_TABLES = ('tag', 'package', 'channels', 'permissions', 'build_target', 'volume',
                 'external_repo', 'btype', 'content_generator', 'host', 'users')


def name_or_id_clause(table, info):
    """Validate ``info`` the way kojihub.name_or_id_clause does; return ('id'|'name', v)."""
    if isinstance(info, dict):
        if 'id' in info:
            info = convert_value(info['id'], cast=int,
                                 message=fr"Invalid name or id value: {info}")
        elif 'name' in info:
            info = info['name']
        else:
            raise koji.ParameterError(fr'Invalid name or id value: {info}')
    if isinstance(info, int):
        return 'id', info
    elif isinstance(info, str):
        return 'name', info
    raise koji.ParameterError(fr"Invalid name or id value: {info}")


def lookup_name(table, info, strict=False, create=False):
    """Find the id and name in the table associated with info."""
    if table not in _NAMED_TABLES:
        raise koji.GenericError('hubsim: lookup_name on unsupported table %s' % table)
    key, value = name_or_id_clause(table, info)
    rows = getattr(_db(), table)
    found = None
    if key == 'id':
        row = rows.get(value)
        if row is not None:
            found = row
    else:
        for row in rows.values():
            if row['name'] == value:
                found = row
                break
    if found is not None:
        return {'id': found['id'], 'name': found['name']}
    elif strict:
        raise koji.GenericError('No such entry in table %s: %s' % (table, info))
    elif create:
        if not isinstance(info, str):
            raise koji.GenericError('Name must be a string')
        new_id = current_state().nextval(table)
        rows[new_id] = {'id': new_id, 'name': info}
        _mark_write()
        return {'id': new_id, 'name': info}
    return None


def get_id(table, info, strict=False, create=False):
    data = lookup_name(table, info, strict, create)
    return None if data is None else data['id']


def get_tag_id(info, strict=False, create=False):
    return get_id('tag', info, strict, create)


def lookup_tag(info, strict=False, create=False):
    return lookup_name('tag', info, strict, create)


def get_perm_id(info, strict=False, create=False):
    return get_id('permissions', info, strict, create)


def lookup_perm(info, strict=False, create=False):
    return lookup_name('permissions', info, strict, create)


def get_package_id(info, strict=False, create=False):
    return get_id('package', info, strict, create)


def lookup_package(info, strict=False, create=False):
    return lookup_name('package', info, strict, create)


def get_channel_id(info, strict=False, create=False):
    return get_id('channels', info, strict, create)


def lookup_channel(info, strict=False, create=False):
    return lookup_name('channels', info, strict, create)


def get_build_target_id(info, strict=False, create=False):
    return get_id('build_target', info, strict, create)


def lookup_build_target(info, strict=False, create=False):
    return lookup_name('build_target', info, strict, create)


# --------------------------------------------------------------------------- users

def get_user_groups(user_id):
    """{group_id: group_name} for the user's active group memberships."""
    db = _db()
    groups = {}
    for row in db.user_groups:
        if row['active'] and row['user_id'] == user_id:
            g = db.users.get(row['group_id'])
            if g and g['usertype'] == koji.USERTYPES['GROUP']:
                groups[g['id']] = g['name']
    return groups


def get_user_perms(user_id, with_groups=True, inheritance_data=False):
    """Permission names of a user, including those granted to its groups."""
    if inheritance_data and not with_groups:
        raise koji.ParameterError("inheritance option implies with_groups")
    db = _db()
    perms: dict[str, list] = {}
    for row in db.user_perms:
        if row['active'] and row['user_id'] == user_id:
            perms[db.permissions[row['perm_id']]['name']] = [None]
    if with_groups:
        for gid, gname in get_user_groups(user_id).items():
            for row in db.user_perms:
                if row['active'] and row['user_id'] == gid:
                    name = db.permissions[row['perm_id']]['name']
                    if inheritance_data:
                        perms.setdefault(name, []).append(gname)
                    else:
                        perms.setdefault(name, [])
    if inheritance_data:
        return perms
    return list(perms.keys())


def list_user_krb_principals(user_info=None):
    uid = user_info if isinstance(user_info, int) else get_user(user_info, strict=True)['id']
    return [r['krb_principal'] for r in _db().user_krb_principals if r['user_id'] == uid]


def get_user(userInfo=None, strict=False, krb_princs=True, groups=False):
    """Return information about a user (id, name, status, usertype [, krb_principals])."""
    db = _db()
    if userInfo is None:
        userInfo = _user_id_or_none()
        if userInfo is None:
            raise koji.GenericError("No user provided")
    if isinstance(userInfo, dict):
        data = userInfo
    elif isinstance(userInfo, int):
        data = {'id': userInfo}
    elif isinstance(userInfo, str):
        data = {'info': userInfo}
    else:
        raise koji.GenericError('Invalid type for userInfo: %s' % type(userInfo))
    princs: dict[int, list[str]] = {}
    for r in db.user_krb_principals:
        princs.setdefault(r['user_id'], []).append(r['krb_principal'])
    candidates = list(db.users.values())
    if data.get('info'):
        info = data['info']
        candidates = [u for u in candidates
                      if u['name'] == info or info in princs.get(u['id'], [])]
    else:
        uid = data.get('id')
        if uid is not None:
            if not isinstance(uid, int):
                raise koji.GenericError('Invalid type for userid: %s' % type(uid))
            candidates = [u for u in candidates if u['id'] == uid]
        username = data.get('name')
        if username:
            if not isinstance(username, str):
                raise koji.GenericError('Invalid type for username: %s' % type(username))
            candidates = [u for u in candidates if u['name'] == username]
        krb = data.get('krb_principal')
        if krb:
            if not isinstance(krb, str):
                raise koji.GenericError('Invalid type for krb_principal: %s' % type(krb))
            candidates = [u for u in candidates if krb in princs.get(u['id'], [])]
    if len(candidates) > 1:
        raise koji.GenericError('multiple rows returned for a single row query')
    if not candidates:
        if strict:
            raise koji.GenericError("No such user: %r" % userInfo)
        return None
    u = candidates[0]
    user = {'id': u['id'], 'name': u['name'], 'status': u['status'],
            'usertype': u['usertype']}
    if krb_princs:
        user['krb_principals'] = list(princs.get(u['id'], []))
    if groups:
        user['groups'] = list(get_user_groups(u['id']).values())
    return user


# --------------------------------------------------------------------------- builds

def _build_base(row: dict) -> dict:
    db = _db()
    pkg = db.package[row['pkg_id']]
    owner = db.users[row['owner']]
    promoter = db.users.get(row['promoter']) if row['promoter'] is not None else None
    ev = db.events[row['create_event']]
    vol = db.volume[row['volume_id']]
    return {
        'build_id': row['id'], 'version': row['version'], 'release': row['release'],
        'epoch': row['epoch'], 'draft': row['draft'], 'state': row['state'],
        'completion_time': row['completion_time'], 'promotion_time': row['promotion_time'],
        'start_time': row['start_time'], 'task_id': row['task_id'],
        'creation_event_id': ev['id'], 'creation_time': ev['time'],
        'package_id': pkg['id'], 'package_name': pkg['name'], 'name': pkg['name'],
        'volume_id': vol['id'], 'volume_name': vol['name'],
        'nvr': '%s-%s-%s' % (pkg['name'], row['version'], row['release']),
        'owner_id': owner['id'], 'owner_name': owner['name'],
        'promoter_id': promoter['id'] if promoter else None,
        'promoter_name': promoter['name'] if promoter else None,
    }


def _build_times(row: dict, base: dict) -> None:
    base['creation_ts'] = _ts(base['creation_time'])
    base['start_ts'] = _ts(row['start_time'])
    base['completion_ts'] = _ts(row['completion_time'])
    base['promotion_ts'] = _ts(row['promotion_time'])


def find_build_id(X, strict=False):
    """Build id for an int id, an NVR string or a dict with name/version/release."""
    if isinstance(X, int):
        return X
    elif isinstance(X, str):
        data = koji.parse_NVR(X)
    elif isinstance(X, dict):
        data = X
    else:
        raise koji.GenericError("Invalid type for argument: %r" % type(X))
    if not ('name' in data and 'version' in data and 'release' in data):
        raise koji.GenericError('did not provide name, version, and release')
    r = _db().build_nvr.get((data['name'], data['version'], data['release']))
    if not r:
        if strict:
            raise koji.GenericError('No such build: %r' % X)
        return None
    return r


def get_build(buildInfo, strict=False):
    """Return information about a build (same keys as the real getBuild)."""
    buildID = find_build_id(buildInfo, strict=strict)
    if buildID is None:
        return None
    row = _db().build.get(buildID)
    if row is None:
        if strict:
            raise koji.GenericError('No such build: %s' % buildInfo)
        return None
    result = _build_base(row)
    _build_times(row, result)
    result['id'] = row['id']
    result['cg_id'] = row['cg_id']
    result['source'] = row['source']
    result['extra'] = parse_json(row['extra'], errstr='Invalid extra data')
    result = _sorted(result)
    if result['cg_id']:
        result['cg_name'] = lookup_name('content_generator', result['cg_id'], strict=True)['name']
    else:
        result['cg_name'] = None
    return result


def get_build_type(buildInfo, strict=False):
    """{btype: typeinfo}; hubsim builds are only ever of type 'rpm'."""
    binfo = get_build(buildInfo, strict=strict)
    if not binfo:
        return None
    return {bt: None for bt in sorted(_db().build_types.get(binfo['id'], ()))}


def get_next_release(build_info, incr=1):
    """Next release for name/version (newest non-draft BUILDING/COMPLETE/DELETED build)."""
    incr = convert_value(incr, cast=int, message='incr parameter must be an integer')
    states = (koji.BUILD_STATES['COMPLETE'], koji.BUILD_STATES['DELETED'],
              koji.BUILD_STATES['BUILDING'])
    db = _db()
    best = None
    for row in db.build.values():
        if (db.package[row['pkg_id']]['name'] == build_info['name']
                and row['version'] == build_info['version'] and row['state'] in states
                and not row['draft'] and (best is None or row['id'] > best['id'])):
            best = row
    release = best['release'] if best else None
    if not release:
        release = str(incr)
    elif release.isdigit():
        release = str(int(release) + incr)
    elif len(release.split('.')) == 2 and release.split('.')[0].isdigit():
        r_split = release.split('.')
        r_split[0] = str(int(r_split[0]) + incr)
        release = '.'.join(r_split)
    elif len(release.split('.')) == 3 and release.split('.')[2].isdigit():
        r_split = release.split('.')
        r_split[2] = str(int(r_split[2]) + incr)
        release = '.'.join(r_split)
    else:
        raise koji.BuildError('Unable to increment release value: %s' % release)
    return release


def new_build(data, strict=False):
    """Insert a new build row (draft builds get release '<release>,draft_<id>')."""
    st = current_state()
    db = st.db
    data = data.copy()
    if 'pkg_id' in data:
        data['name'] = lookup_package(data['pkg_id'], strict=True)['name']
    else:
        name = data.get('name')
        if not name:
            raise koji.GenericError("No name or package id provided for build")
        data['pkg_id'] = lookup_package(name, create=True)['id']
    if data.get('owner'):
        data['owner'] = get_user(data['owner'], strict=True)['id']
    for f in ('version', 'release', 'epoch'):
        if f not in data:
            raise koji.GenericError("No %s value for build" % f)
    if 'extra' in data:
        try:
            data['extra'] = json.dumps(data['extra'])
        except Exception:
            raise koji.GenericError("No such build extra data: %(extra)r" % data) from None
    else:
        data['extra'] = None
    if 'draft' in data:
        data['draft'] = bool(data['draft'])
    now = _now()
    data.setdefault('state', koji.BUILD_STATES['COMPLETE'])
    data.setdefault('start_time', now)
    data.setdefault('completion_time', now)
    if data['state'] == koji.BUILD_STATES['BUILDING']:
        data['completion_time'] = None
    data.setdefault('source', None)
    data.setdefault('owner', _user_id_or_none())
    data.setdefault('task_id', None)
    data.setdefault('volume_id', 0)
    data.setdefault('draft', False)
    old_binfo = get_build(data)
    if old_binfo:
        old_str = '%(nvr)s (id=%(id)s)' % old_binfo
        if data['draft']:
            raise koji.GenericError(f'Target build already exists: {old_str}')
        elif strict:
            raise koji.GenericError(f'Existing build found: {old_str}')
        raise koji.GenericError(f'hubsim: recycling builds is not supported: {old_str}')
    koji.plugin.run_callbacks('preBuildStateChange', attribute='state', old=None,
                              new=data['state'], info=data)
    data['id'] = st.nextval('build')
    if data.get('draft'):
        data['release'] = koji.gen_draft_release(data['release'], data['id'])
    row = {'id': data['id'], 'pkg_id': data['pkg_id'], 'version': data['version'],
           'release': data['release'], 'epoch': data['epoch'], 'draft': data['draft'],
           'source': data['source'], 'create_event': _event(),
           'start_time': data['start_time'], 'completion_time': data['completion_time'],
           'promotion_time': None, 'state': data['state'], 'task_id': data['task_id'],
           'owner': data['owner'], 'promoter': None, 'cg_id': data.get('cg_id'),
           'extra': data['extra'], 'volume_id': data['volume_id']}
    db.build[row['id']] = row
    db.build_nvr[(data['name'], row['version'], row['release'])] = row['id']
    new_binfo = get_build(data['id'], strict=True)
    koji.plugin.run_callbacks('postBuildStateChange', attribute='state', old=None,
                              new=data['state'], info=new_binfo)
    return data['id']


# --------------------------------------------------------------------------- rpms

def _rpm_row(row: dict, nvr: bool = False) -> dict:
    db = _db()
    d = {k: row[k] for k in ('id', 'build_id', 'buildroot_id', 'name', 'version', 'release',
                             'epoch', 'arch', 'draft', 'external_repo_id', 'payloadhash',
                             'size', 'buildtime', 'metadata_only')}
    d['external_repo_name'] = db.external_repo[row['external_repo_id']]['name']
    d['extra'] = parse_json(row['extra'], desc='rpm extra')
    if nvr:
        d['nvr'] = '%s-%s-%s' % (row['name'], row['version'], row['release'])
    return _sorted(d)


def _get_rpms(data):
    db = _db()
    if 'id' in data:
        row = db.rpminfo.get(data['id'])
        rows = [row] if row else []
    else:
        key = (data['name'], data['version'], data['release'], data['arch'])
        rows = [db.rpminfo[i] for i in db.rpm_nvra.get(key, ())]
    if 'location' in data:
        data['external_repo_id'] = get_id('external_repo', data['location'], strict=True)
        rows = [r for r in rows if r['external_repo_id'] == data['external_repo_id']]
    return [_rpm_row(r) for r in rows]


def get_rpm(rpminfo, strict=False, multi=False):
    """Information about one rpm (id, N-V-R.A, N-V-R.A@location or dict)."""
    if isinstance(rpminfo, int):
        data = {'id': rpminfo}
    elif isinstance(rpminfo, str):
        try:
            data = {'id': int(rpminfo)}
        except ValueError:
            data = koji.parse_NVRA(rpminfo)
    elif isinstance(rpminfo, dict):
        data = rpminfo.copy()
    else:
        raise koji.GenericError("Invalid type for rpminfo: %r" % type(rpminfo))
    rpms = _get_rpms(data)
    if multi:
        return rpms
    if not rpms:
        if strict:
            raise koji.GenericError("No such rpm: %r" % data)
        return None
    elif len(rpms) == 1:
        return rpms[0]
    nondraft = draft = external = None
    for rinfo in rpms:
        if rinfo['external_repo_id']:
            if external is None or rinfo['id'] > external['id']:
                external = rinfo
        elif rinfo['draft']:
            if draft is None or rinfo['id'] > draft['id']:
                draft = rinfo
        else:
            if nondraft:
                raise koji.GenericError("Multiple nondraft rpm matches for: %r" % data)
            nondraft = rinfo
    return nondraft or draft or external


def list_rpms(buildID=None, buildrootID=None, imageID=None, componentBuildrootID=None,
              hostID=None, arches=None, queryOpts=None, draft=None):
    """List rpms (by build, buildroot, arches, draft); images/hosts have none here."""
    db = _db()
    if imageID is not None or componentBuildrootID is not None or hostID is not None:
        return _apply_query_opts([], queryOpts)
    if buildID is not None:
        rows = [db.rpminfo[i] for i in db.rpm_by_build.get(buildID, ())]
    else:
        rows = list(db.rpminfo.values())
    if buildrootID is not None:
        rows = [r for r in rows if r['buildroot_id'] == buildrootID]
    if arches is not None:
        if isinstance(arches, (list, tuple)):
            rows = [r for r in rows if r['arch'] in arches]
        elif isinstance(arches, str):
            rows = [r for r in rows if r['arch'] == arches]
        else:
            raise koji.GenericError('Invalid type for "arches" parameter: %s' % type(arches))
    if draft is not None:
        rows = [r for r in rows if bool(r['draft']) == bool(draft)]
    rows.sort(key=lambda r: r['id'])
    return _apply_query_opts([_rpm_row(r, nvr=True) for r in rows], queryOpts)


def rpm_path(rpminfo: dict, buildinfo: dict) -> str:
    """Path of the unsigned copy under the State's topdir (koji.pathinfo layout)."""
    pi = current_state().pathinfo
    return os.path.join(pi.build(buildinfo), pi.rpm(rpminfo))


# --------------------------------------------------------------------------- tags

def _tag_config(tag_id, event):
    for row in _db().tag_config:
        if row['tag_id'] == tag_id and _active(row, event):
            return row
    return None


def get_tag_extra(tagInfo, event=None, blocked=False):
    """Tag extra (no inheritance), values JSON-decoded."""
    result = {}
    for h in _db().tag_extra:
        if h['tag_id'] != tagInfo['id'] or not _active(h, event):
            continue
        if not blocked and h['value'] is None:
            continue
        value = h['value']
        if value is not None:
            value = parse_json(value, errstr="No such tag extra data: %s" % h['key'])
        if blocked:
            result[h['key']] = (value is None, value)
        else:
            result[h['key']] = value
    return result


def get_tag(tagInfo, strict=False, event=None, blocked=False):
    """Tag information by name or id (keys as the real getTag)."""
    db = _db()
    key, value = name_or_id_clause('tag', tagInfo)
    tag = None
    if key == 'id':
        tag = db.tag.get(value)
    else:
        for t in db.tag.values():
            if t['name'] == value:
                tag = t
                break
    if event == "auto":
        event = None
        if tag is not None:
            rows = [r for r in db.tag_config if r['tag_id'] == tag['id']]
            if rows:
                last = max(rows, key=lambda r: r['create_event'])
                if last['revoke_event'] is not None:
                    event = last['revoke_event'] - 1
    cfg = _tag_config(tag['id'], event) if tag is not None else None
    if cfg is None:
        if strict:
            raise koji.GenericError("No such tagInfo: %r" % tagInfo)
        return None
    perm = db.permissions.get(cfg['perm_id']) if cfg['perm_id'] is not None else None
    result = {'id': tag['id'], 'name': tag['name'], 'perm_id': cfg['perm_id'],
              'perm': perm['name'] if perm else None, 'arches': cfg['arches'],
              'locked': cfg['locked'], 'maven_support': cfg['maven_support'],
              'maven_include_all': cfg['maven_include_all']}
    result = _sorted(result)
    result['extra'] = get_tag_extra(result, event, blocked=blocked)
    if event is not None:
        result['query_event'] = event
    return result


def list_tags(build=None, package=None, perms=True, queryOpts=None, pattern=None):
    """Tags (optionally those a build is tagged in, or that list a package)."""
    if build is not None and package is not None:
        raise koji.GenericError('only one of build and package may be specified')
    db = _db()
    tag_ids = None
    pkg_rows = {}
    if build is not None:
        buildinfo = get_build(build)
        if not buildinfo:
            raise koji.GenericError('No such build: %s' % build)
        tag_ids = {r['tag_id'] for r in db.tag_listing
                   if r['active'] and r['build_id'] == buildinfo['id']}
    elif package is not None:
        packageinfo = lookup_package(package)
        if not packageinfo:
            raise koji.GenericError('No such package: %s' % package)
        for r in db.tag_packages:
            if r['active'] and r['package_id'] == packageinfo['id']:
                pkg_rows[r['tag_id']] = r
        tag_ids = set(pkg_rows)
    out = []
    for cfg in db.tag_config:
        if not cfg['active'] or (tag_ids is not None and cfg['tag_id'] not in tag_ids):
            continue
        tag = db.tag[cfg['tag_id']]
        if pattern is not None and not fnmatch.fnmatchcase(tag['name'].lower(),
                                                           pattern.lower()):
            continue
        d = {'id': tag['id'], 'name': tag['name'], 'arches': cfg['arches'],
             'locked': cfg['locked'], 'maven_support': cfg['maven_support'],
             'maven_include_all': cfg['maven_include_all']}
        if perms:
            perm = db.permissions.get(cfg['perm_id']) if cfg['perm_id'] is not None else None
            d['perm_id'] = cfg['perm_id']
            d['perm'] = perm['name'] if perm else None
        if package is not None:
            r = pkg_rows[tag['id']]
            owner = _pkg_owner(tag['id'], r['package_id'], None)
            d['owner_id'] = owner
            d['owner_name'] = db.users[owner]['name'] if owner is not None else None
            d['blocked'] = r['blocked']
            d['extra_arches'] = r['extra_arches']
        out.append(_sorted(d))
    out.sort(key=lambda d: d['id'])
    return _gen(_apply_query_opts(out, queryOpts))


def readInheritanceData(tag_id, event=None):
    db = _db()
    data = []
    for row in db.tag_inheritance:
        if row['tag_id'] == tag_id and _active(row, event):
            data.append({'parent_id': row['parent_id'], 'name': db.tag[row['parent_id']]['name'],
                         'priority': row['priority'], 'maxdepth': row['maxdepth'],
                         'intransitive': row['intransitive'], 'noconfig': row['noconfig'],
                         'pkg_filter': row['pkg_filter'], 'child_id': tag_id})
    data.sort(key=lambda d: d['priority'])
    return data


def readDescendantsData(tag_id, event=None):
    db = _db()
    data = []
    for row in db.tag_inheritance:
        if row['parent_id'] == tag_id and _active(row, event):
            data.append({'tag_id': row['tag_id'], 'parent_id': row['parent_id'],
                         'name': db.tag[row['tag_id']]['name'], 'priority': row['priority'],
                         'maxdepth': row['maxdepth'], 'intransitive': row['intransitive'],
                         'noconfig': row['noconfig'], 'pkg_filter': row['pkg_filter']})
    data.sort(key=lambda d: d['priority'])
    return data


def readFullInheritance(tag_id, event=None, reverse=False):
    """Returns a list representing the full, ordered inheritance from tag"""
    order: list = []
    readFullInheritanceRecurse(tag_id, event, order, {}, {}, 0, None, False, [], reverse)
    return order


def readFullInheritanceRecurse(tag_id, event, order, top, hist, currdepth, maxdepth, noconfig,
                               pfilter, reverse):
    # algorithm copied from kojihub (pure data walk)
    if maxdepth is not None and maxdepth < 1:
        return
    currdepth += 1
    top = top.copy()
    top[tag_id] = 1
    node = readDescendantsData(tag_id, event) if reverse else readInheritanceData(tag_id, event)
    for link in node:
        id = link['tag_id'] if reverse else link['parent_id']
        if id in top:
            continue
        if link['intransitive'] and len(top) > 1 and not reverse:
            continue
        if reverse:
            if link['maxdepth'] is not None and link['maxdepth'] < currdepth - 1:
                continue
            nextdepth = None
        else:
            nextdepth = link['maxdepth']
            if nextdepth is None:
                if maxdepth is not None:
                    nextdepth = maxdepth - 1
            elif maxdepth is not None:
                nextdepth = min(nextdepth, maxdepth) - 1
        link['nextdepth'] = nextdepth
        link['currdepth'] = currdepth
        if link['noconfig']:
            noconfig = True
        filter = list(pfilter)
        pattern = link['pkg_filter']
        if pattern:
            filter.append(pattern)
        link['filter'] = filter
        if id in hist:
            rescan = True
            for previous in hist[id]:
                sufficient = True
                lastdepth = previous['nextdepth']
                if nextdepth is None:
                    if lastdepth is not None:
                        sufficient = False
                elif lastdepth is not None and lastdepth < nextdepth:
                    sufficient = False
                if previous['noconfig'] and not noconfig:
                    sufficient = False
                if len(previous['filter']) > 0:
                    sufficient = False
                if sufficient:
                    rescan = False
            if not rescan:
                continue
        else:
            hist[id] = []
        hist[id].append(link)
        order.append(link)
        if link['intransitive'] and reverse:
            continue
        readFullInheritanceRecurse(id, event, order, top, hist, currdepth, nextdepth, noconfig,
                                   filter, reverse)


def _pkg_owner(tag_id, pkg_id, event):
    for row in _db().tag_package_owners:
        if row['tag_id'] == tag_id and row['package_id'] == pkg_id and _active(row, event):
            return row['owner']
    return None


def readPackageList(tagID=None, userID=None, pkgID=None, event=None, inherit=False,
                    with_dups=False, with_owners=True, with_blocked=True):
    """Package list of a tag (optionally inherited), keyed by package id."""
    if tagID is None and userID is None and pkgID is None:
        raise koji.GenericError('tag,user, and/or pkg must be specified')
    if userID is not None and not with_owners:
        raise koji.GenericError("userID and with_owners=False can't be used together")
    db = _db()

    def query(tid):
        out = []
        for row in db.tag_packages:
            if not _active(row, event):
                continue
            if tid is not None and row['tag_id'] != tid:
                continue
            pkg = db.package[row['package_id']]
            if pkgID is not None:
                if isinstance(pkgID, int):
                    if pkg['id'] != pkgID:
                        continue
                elif pkg['name'] != pkgID:
                    continue
            if not with_blocked and row['blocked']:
                continue
            p = {'package_id': pkg['id'], 'package_name': pkg['name'],
                 'tag_id': row['tag_id'], 'tag_name': db.tag[row['tag_id']]['name'],
                 'extra_arches': row['extra_arches'], 'blocked': row['blocked']}
            if with_owners:
                owner = _pkg_owner(row['tag_id'], pkg['id'], event)
                if owner is None:
                    continue  # inner join on tag_package_owners
                if userID is not None and owner != userID:
                    continue
                p['owner_id'] = owner
                p['owner_name'] = db.users[owner]['name']
            out.append(_sorted(p))
        return out

    packages: dict = {}
    for p in query(tagID):
        if with_dups:
            packages.setdefault(p['package_id'], []).append(p)
        else:
            packages[p['package_id']] = p
    if tagID is None or not inherit:
        return packages
    re_cache: dict = {}
    for link in readFullInheritance(tagID, event):
        re_list = []
        for pat in link['filter']:
            prog = re_cache.get(pat)
            if prog is None:
                prog = re_cache[pat] = re.compile(pat)
            re_list.append(prog)
        for p in query(link['parent_id']):
            pkgid = p['package_id']
            if not with_dups and pkgid in packages:
                continue
            if any(prog.match(p['package_name']) is None for prog in re_list):
                continue
            if with_dups:
                packages.setdefault(pkgid, []).append(p)
            else:
                packages[pkgid] = p
    return packages


def readTaggedBuilds(tag, event=None, inherit=False, latest=False, package=None, owner=None,
                     type=None, extra=False, draft=None):
    """Builds tagged in ``tag`` (an int id): most recently tagged first per tag;
    ``latest`` keeps the first N per package; only COMPLETE builds whose package is
    listed (and not blocked) in the tag's inherited package list."""
    if not isinstance(tag, int):
        raise koji.GenericError('hubsim: readTaggedBuilds needs an int tag id, got %r' % (tag,))
    if not isinstance(latest, NUMERIC_TYPES):
        latest = bool(latest)
    db = _db()
    taglist = [tag]
    if inherit:
        taglist += [link['parent_id'] for link in readFullInheritance(tag, event)]
    packages = readPackageList(tagID=tag, event=event, inherit=True, pkgID=package,
                               with_owners=False)
    if (type not in (None, 'rpm', 'maven', 'win', 'image')
            and lookup_name('btype', type, strict=False) is None):
        raise koji.GenericError('unsupported build type: %s' % type)
    st_complete = koji.BUILD_STATES['COMPLETE']
    builds = []
    seen: dict = {}
    for tagid in taglist:
        rows = []
        for tl in db.tag_listing_by_tag.get(tagid, ()):
            if not _active(tl, event):
                continue
            b = db.build[tl['build_id']]
            if b['state'] != st_complete:
                continue
            if type is not None and type not in db.build_types.get(b['id'], ()):
                continue
            if draft is not None and bool(b['draft']) != bool(draft):
                continue
            rows.append((tl, b))
        rows.sort(key=lambda x: (x[0]['create_event'], x[1]['id']), reverse=True)
        tname = db.tag[tagid]['name']
        for tl, b in rows:
            base = _build_base(b)
            if package and base['package_name'] != package:
                continue
            if owner and base['owner_name'] != owner:
                continue
            pinfo = packages.get(base['package_id'])
            if pinfo is None or pinfo['blocked']:
                continue
            pkgid = base['package_id']
            if latest:
                if (latest is True and pkgid in seen) or seen.get(pkgid, 0) >= latest:
                    continue
                seen[pkgid] = seen.get(pkgid, 0) + 1
            base['id'] = b['id']
            base['tag_id'] = tagid
            base['tag_name'] = tname
            base['create_event'] = tl['create_event']
            if extra:
                base['extra'] = parse_json(b['extra'], errstr='Invalid extra data')
            builds.append(_sorted(base))
    return builds


def readTaggedRPMS(tag, package=None, arch=None, event=None, inherit=False, latest=True,
                   rpmsigs=False, owner=None, type=None, extra=True, draft=None):
    """[rpms generator, builds] for a tag, rpms restricted to the selected builds."""
    builds = readTaggedBuilds(tag, event=event, inherit=inherit, latest=latest,
                              package=package, owner=owner, type=type, draft=draft)
    build_idx = {b['build_id']: b for b in builds}
    taglist = [tag]
    if inherit:
        taglist += [link['parent_id'] for link in readFullInheritance(tag, event)]
    if arch and not isinstance(arch, (str, list, tuple)):
        raise koji.GenericError('Invalid type for arch option: %s' % type(arch))
    db = _db()
    fields = ('name', 'version', 'release', 'arch', 'id', 'epoch', 'draft', 'payloadhash',
              'size', 'buildtime', 'buildroot_id', 'build_id', 'metadata_only')

    def _iter_rpms():
        tags_seen = set()
        for tagid in taglist:
            if tagid in tags_seen:
                continue
            tags_seen.add(tagid)
            build_ids = [tl['build_id'] for tl in db.tag_listing_by_tag.get(tagid, ())
                         if _active(tl, event)]
            for bid in build_ids:
                build = build_idx.get(bid)
                if build is None or build['tag_id'] != tagid:
                    continue
                for rid in db.rpm_by_build.get(bid, ()):
                    r = db.rpminfo[rid]
                    if arch:
                        if isinstance(arch, str) and r['arch'] != arch:
                            continue
                        if isinstance(arch, (list, tuple)) and r['arch'] not in arch:
                            continue
                    if draft is not None and bool(r['draft']) != bool(draft):
                        continue
                    d = {k: r[k] for k in fields}
                    if extra:
                        d['extra'] = parse_json(r['extra'], desc='rpm extra')
                    if rpmsigs:
                        d['sigkey'] = None
                    yield _sorted(d)
    return [_iter_rpms(), builds]


def get_build_targets(info=None, event=None, buildTagID=None, destTagID=None, queryOpts=None):
    """Build targets (id, name, build_tag(_name), dest_tag(_name))."""
    db = _db()
    key = value = None
    if info:
        key, value = name_or_id_clause('build_target', info)
    if buildTagID is not None and isinstance(buildTagID, (str, dict)):
        buildTagID = get_tag_id(buildTagID)
    if destTagID is not None and isinstance(destTagID, (str, dict)):
        destTagID = get_tag_id(destTagID)
    out = []
    for cfg in db.build_target_config:
        if not _active(cfg, event):
            continue
        t = db.build_target[cfg['build_target_id']]
        if key is not None and t[key] != value:
            continue
        if buildTagID is not None and cfg['build_tag'] != buildTagID:
            continue
        if destTagID is not None and cfg['dest_tag'] != destTagID:
            continue
        out.append(_sorted({'id': t['id'], 'build_tag': cfg['build_tag'],
                            'dest_tag': cfg['dest_tag'], 'name': t['name'],
                            'build_tag_name': db.tag[cfg['build_tag']]['name'],
                            'dest_tag_name': db.tag[cfg['dest_tag']]['name']}))
    return _apply_query_opts(out, queryOpts)


def get_build_target(info, event=None, strict=False):
    """Return the build target with the given name or ID."""
    targets = get_build_targets(info=info, event=event)
    if len(targets) == 1:
        return targets[0]
    elif strict:
        raise koji.GenericError('No such build target: %s' % info)
    return None


# --------------------------------------------------------------------------- tagging

def check_tag_access(tag_id, user_id=None):
    """(access, override, reason) for tagging into tag_id (lock and perm checks)."""
    if user_id is None:
        user_id = _user_id_or_none()
    if user_id is None:
        raise koji.GenericError("a user_id is required")
    user_id = convert_value(user_id, cast=int)
    perms = get_user_perms(user_id)
    override = 'admin' in perms
    tag = get_tag(tag_id, strict=True)
    if tag['locked']:
        return (False, override, "tag is locked")
    if tag['perm_id']:
        needed_perm = lookup_perm(tag['perm_id'], strict=True)['name']
        if needed_perm not in perms:
            return (False, override, "tag requires %s permission" % needed_perm)
    return (True, override, "")


def assert_tag_access(tag_id, user_id=None, force=False):
    access, override, reason = check_tag_access(tag_id, user_id)
    if not access and not (override and force):
        raise koji.ActionNotAllowed(reason)


def _direct_tag_build(tag, build, user, force=False):
    """Directly tag a build. No access check or value lookup."""
    koji.plugin.run_callbacks('preTag', tag=tag, build=build, user=user, force=force)
    nvr = "%(name)s-%(version)s-%(release)s" % build
    db = _db()
    if build['state'] != koji.BUILD_STATES['COMPLETE']:
        state = koji.BUILD_STATES[build['state']]
        raise koji.TagError("build %s not complete: state %s" % (nvr, state))
    tagged = any(r['active'] and r['build_id'] == build['id']
                 for r in db.tag_listing_by_tag.get(tag['id'], ()))
    if tagged:
        if not force:
            raise koji.TagError("build %s already tagged (%s)" % (nvr, tag['name']))
        _vrevoke('tag_listing', {'tag_id': tag['id'], 'build_id': build['id']},
                 user_id=user['id'])
    row = _vinsert('tag_listing', {'tag_id': tag['id'], 'build_id': build['id']},
                   user_id=user['id'])
    db.tag_listing_by_tag.setdefault(tag['id'], []).append(row)
    koji.plugin.run_callbacks('postTag', tag=tag, build=build, user=user, force=force)


def _tag_build(tag, build, user_id=None, force=False):
    tag = get_tag(tag, strict=True)
    build = get_build(build, strict=True)
    user = get_user(user_id or _user_id_or_none(), strict=True)
    assert_tag_access(tag['id'], user_id=user_id, force=force)
    return _direct_tag_build(tag, build, user, force)


def _direct_untag_build(tag, build, user, strict=True, force=False):
    """Directly untag a build. No access check or value lookup."""
    koji.plugin.run_callbacks(
        'preUntag', tag=tag, build=build, user=user, force=force, strict=strict)
    count = _vrevoke('tag_listing', {'tag_id': tag['id'], 'build_id': build['id']},
                     user_id=user['id'])
    if count == 0 and strict:
        nvr = "%(name)s-%(version)s-%(release)s" % build
        raise koji.TagError("build %s not in tag %s" % (nvr, tag['name']))
    koji.plugin.run_callbacks(
        'postUntag', tag=tag, build=build, user=user, force=force, strict=strict)


def _untag_build(tag, build, user_id=None, strict=True, force=False):
    tag = get_tag(tag, strict=True)
    build = get_build(build, strict=True)
    user = get_user(user_id or _user_id_or_none(), strict=True)
    assert_tag_access(tag['id'], user_id=user_id, force=force)
    return _direct_untag_build(tag, build, user, strict, force)


def _direct_pkglist_add(taginfo, pkginfo, owner, block, extra_arches, force, update,
                        policy=False):
    """Add a package to a tag's list (no policy unless ``policy``); simplified."""
    tag = get_tag(taginfo, strict=True)
    pkg = lookup_package(pkginfo, strict=False)
    if not pkg and not isinstance(pkginfo, str):
        raise koji.GenericError("No such package: %s" % pkginfo)
    if owner is not None:
        owner = get_user(owner, strict=True)['id']
    if policy:
        context.session.assertLogin()
        action = 'update' if update else ('block' if bool(block) else 'add')
        assert_policy('package_list', {'tag': tag['id'], 'action': action,
                                       'package': pkginfo, 'force': force}, force=force)
    if not pkg:
        pkg = lookup_package(pkginfo, create=True)
    previous = readPackageList(tag['id'], pkgID=pkg['id'], inherit=True).get(pkg['id'])
    if previous is not None:
        if owner is None:
            owner = previous['owner_id']
        if block is None:
            block = previous['blocked']
        if extra_arches is None:
            extra_arches = previous['extra_arches']
        if previous['blocked'] and not block and not force:
            raise koji.GenericError("package %s is blocked in tag %s"
                                    % (pkg['name'], tag['name']))
    if owner is None:
        if force:
            owner = _user_id_or_none()
        else:
            raise koji.GenericError("owner not specified")
    user = get_user(_user_id_or_none()) if _user_id_or_none() else None
    koji.plugin.run_callbacks('prePackageListChange', action='add', tag=tag, package=pkg,
                              owner=owner, block=bool(block), extra_arches=extra_arches,
                              force=force, update=update, user=user)
    _vrevoke('tag_packages', {'tag_id': tag['id'], 'package_id': pkg['id']})
    _vinsert('tag_packages', {'tag_id': tag['id'], 'package_id': pkg['id'],
                              'blocked': bool(block), 'extra_arches': extra_arches})
    _vrevoke('tag_package_owners', {'tag_id': tag['id'], 'package_id': pkg['id']})
    _vinsert('tag_package_owners', {'tag_id': tag['id'], 'package_id': pkg['id'],
                                    'owner': owner})
    koji.plugin.run_callbacks('postPackageListChange', action='add', tag=tag, package=pkg,
                              owner=owner, block=bool(block), extra_arches=extra_arches,
                              force=force, update=update, user=user)


def pkglist_add(taginfo, pkginfo, owner=None, block=None, extra_arches=None, force=False,
                update=False):
    """Add to (or update) package list for tag"""
    return _direct_pkglist_add(taginfo, pkginfo, owner, block, extra_arches,
                               force, update, policy=True)


# --------------------------------------------------------------------------- policy

def policy_get_user(data):
    """Determine user from policy data (default to logged-in user)"""
    if 'user_id' in data:
        return get_user(data['user_id'])
    elif getattr(getattr(context, 'session', None), 'logged_in', False):
        return get_user(context.session.user_id)
    return None


def policy_get_pkg(data):
    if 'package' in data:
        pkginfo = lookup_package(data['package'], strict=False)
        if not pkginfo:
            if isinstance(data['package'], str):
                return {'id': None, 'name': data['package']}
            raise koji.GenericError("No such package: %s" % data['package'])
        return pkginfo
    if 'build' in data:
        binfo = get_build(data['build'], strict=True)
        return {'id': binfo['package_id'], 'name': binfo['name']}
    raise koji.GenericError("policy requires package data")


def policy_get_version(data):
    if 'version' in data:
        return data['version']
    if 'build' in data:
        return get_build(data['build'], strict=True)['version']
    raise koji.GenericError("policy requires version data")


def policy_get_release(data):
    if 'release' in data:
        return data['release']
    if 'build' in data:
        return get_build(data['build'], strict=True)['release']
    raise koji.GenericError("policy requires release data")


class OperationTest(koji.policy.MatchTest):
    """Checks operation against glob patterns"""
    name = 'operation'
    field = 'operation'


class NewPackageTest(koji.policy.BaseSimpleTest):
    name = 'is_new_package'

    def run(self, data):
        return policy_get_pkg(data)['id'] is None


class PackageTest(koji.policy.MatchTest):
    name = 'package'
    field = '_package'

    def run(self, data):
        data[self.field] = policy_get_pkg(data)['name']
        return super().run(data)


class VersionTest(koji.policy.MatchTest):
    name = 'version'
    field = '_version'

    def run(self, data):
        data[self.field] = policy_get_version(data)
        return super().run(data)


class ReleaseTest(koji.policy.MatchTest):
    name = 'release'
    field = '_release'

    def run(self, data):
        data[self.field] = policy_get_release(data)
        return super().run(data)


class TagTest(koji.policy.MatchTest):
    name = 'tag'
    field = '_tagname'

    def get_tag(self, data):
        tag = data.get('tag')
        if tag is None:
            return None
        return get_tag(tag, strict=False)

    def run(self, data):
        tinfo = self.get_tag(data)
        if tinfo is None:
            return False
        data[self.field] = tinfo['name']
        return super().run(data)


class FromTagTest(TagTest):
    name = 'fromtag'

    def get_tag(self, data):
        tag = data.get('fromtag')
        if tag is None:
            return None
        return get_tag(tag, strict=False)


class HasTagTest(koji.policy.BaseSimpleTest):
    name = 'hastag'

    def run(self, data):
        if 'build' not in data:
            return False
        args = self.str.split()[1:]
        return any(fnmatch.fnmatch(t['name'], p)
                   for t in list_tags(build=data['build']) for p in args)


class SkipTagTest(koji.policy.BaseSimpleTest):
    name = 'skip_tag'

    def run(self, data):
        return bool(data.get('skip_tag'))


class ChildTaskTest(koji.policy.BoolTest):
    name = 'is_child_task'
    field = 'parent'


class MethodTest(koji.policy.MatchTest):
    name = 'method'
    field = 'method'


class UserTest(koji.policy.MatchTest):
    name = 'user'
    field = '_username'

    def run(self, data):
        user = policy_get_user(data)
        if not user:
            return False
        data[self.field] = user['name']
        return super().run(data)


class IsBuildOwnerTest(koji.policy.BaseSimpleTest):
    name = "is_build_owner"

    def run(self, data):
        build = get_build(data['build'])
        owner = get_user(build['owner_id'])
        user = policy_get_user(data)
        if not user:
            return False
        if owner['id'] == user['id']:
            return True
        return (owner['usertype'] == koji.USERTYPES['GROUP']
                and owner['id'] in get_user_groups(user['id']))


class IsDraftTest(koji.policy.BaseSimpleTest):
    name = "is_draft"

    def run(self, data):
        if 'draft' in data:
            return bool(data['draft'])
        if 'build' in data:
            return get_build(data['build']).get('draft', False)
        return False


class UserInGroupTest(koji.policy.BaseSimpleTest):
    name = "user_in_group"

    def run(self, data):
        user = policy_get_user(data)
        if not user:
            return False
        args = self.str.split()[1:]
        return any(fnmatch.fnmatch(g, p)
                   for g in get_user_groups(user['id']).values() for p in args)


class HasPermTest(koji.policy.BaseSimpleTest):
    name = "has_perm"

    def run(self, data):
        user = policy_get_user(data)
        if not user:
            return False
        args = self.str.split()[1:]
        return any(fnmatch.fnmatch(perm, p) for perm in get_user_perms(user['id'])
                   for p in args)


class SourceTest(koji.policy.MatchTest):
    name = "source"
    field = '_source'

    def run(self, data):
        if 'source' in data:
            data[self.field] = data['source']
        elif 'build' in data:
            build = get_build(data['build'])
            if build['source'] is None:
                return False
            data[self.field] = build['source']
        else:
            return False
        return super().run(data)


class PolicyTest(koji.policy.BaseSimpleTest):
    name = 'policy'

    def run(self, data):
        args = self.str.split()[1:]
        key = 'policy_test_state_%s_running' % id(self)
        if hasattr(context, key):
            raise koji.GenericError("encountered policy loop at %s" % self.str)
        ruleset = _policies().get(args[0])
        if not ruleset:
            raise koji.GenericError("no such policy: %s" % args[0])
        setattr(context, key, True)
        try:
            result = ruleset.apply(data)
        finally:
            delattr(context, key)
        return result is not None and result.lower() in ('yes', 'true', 'allow')


def _policies() -> dict:
    pol = getattr(context, 'policy', None)
    if pol is None:
        pol = current_state().policy()
    return pol


def _opts() -> dict:
    opts = getattr(context, 'opts', None)
    return opts if opts is not None else current_state().opts


def check_policy(name, data, default='deny', strict=False, force=False):
    """Check data against the named policy -> (allowed, reason)."""
    ruleset = _policies().get(name)
    if not ruleset:
        result = "allow" if _opts().get('MissingPolicyOk') else "deny"
        reason = "missing policy"
        lastrule = ''
    else:
        result = ruleset.apply(data)
        if result is None:
            result = default
            reason = 'not covered by policy'
        else:
            parts = result.split(None, 1)
            parts.extend(['', ''])
            result, reason = parts[:2]
            result = result.lower()
        lastrule = ruleset.last_rule()
    if result == 'allow':
        return True, reason
    if result != 'deny':
        reason = 'error in policy'
    if force:
        user = policy_get_user(data)
        if user and 'admin' in get_user_perms(user['id']):
            return True, "overriden by force"
    if not strict:
        return False, reason
    err_str = "policy violation (%s)" % name
    if reason:
        err_str += ": %s" % reason
    if _opts().get('KojiDebug') or _opts().get('VerbosePolicy'):
        err_str += " [rule: %s]" % lastrule
    raise koji.ActionNotAllowed(err_str)


def assert_policy(name, data, default='deny', force=False):
    """Enforce the named policy (ActionNotAllowed unless allowed)."""
    check_policy(name, data, default=default, strict=True, force=force)


def eval_policy(name, data):
    """Evaluate named policy with given data and return the result"""
    ruleset = _policies().get(name)
    if not ruleset:
        raise koji.GenericError("no such policy: %s" % name)
    return ruleset.apply(data)


def policy_data_from_task_args(method, arglist):
    """Policy data (source, target, tag, scratch) parsed from task args."""
    params = {}
    policy_data: dict = {}
    try:
        params = koji.tasks.parse_task_params(method, arglist)
    except Exception:
        logger.debug("%s is not a standard koji task", method)
    if not params:
        return {}
    for k in ('src', 'spec_url', 'url'):
        if method == 'newRepo':
            break
        if k in params:
            policy_data['source'] = params.get(k)
            break
    for k in ('target', 'build_target', 'target_info'):
        if k in params:
            target = params.get(k)
            if isinstance(target, dict):
                target = target.get('name')
            if target is not None:
                tinfo = lookup_build_target(target, strict=False)
                target = tinfo['name'] if tinfo else None
            policy_data['target'] = target
            break
    for k in ('tag', 'tag_id', 'tag_info'):
        if k in params:
            with contextlib.suppress(Exception):
                policy_data['tag'] = lookup_tag(params[k], strict=True)['name']
            break
    t_opts = params.get('opts') or {}
    if isinstance(t_opts, dict) and 'scratch' in t_opts:
        policy_data['scratch'] = t_opts['scratch']
    return policy_data


# --------------------------------------------------------------------------- channels/hosts

def get_channel(channelInfo, strict=False):
    """{'id','name','description','enabled','comment'} of a channel."""
    key, value = name_or_id_clause('channels', channelInfo)
    for row in _db().channels.values():
        if row[key] == value:
            return _sorted(dict(row))
    if strict:
        raise koji.GenericError('query returned no rows')
    return None


def _host_config(host_id, event=None):
    for row in _db().host_config:
        if row['host_id'] == host_id and _active(row, event):
            return row
    return None


def get_host(hostInfo, strict=False, event=None):
    """Host information (id, user_id, name, update_ts, arches, ...)."""
    key, value = name_or_id_clause('host', hostInfo)
    for h in _db().host.values():
        if h[key] != value:
            continue
        cfg = _host_config(h['id'], event)
        if cfg is None:
            break
        return _sorted({'id': h['id'], 'user_id': h['user_id'], 'name': h['name'],
                        'update_ts': _ts(h['update_time']), 'ready': h['ready'],
                        'task_load': h['task_load'], 'arches': cfg['arches'],
                        'capacity': cfg['capacity'], 'description': cfg['description'],
                        'comment': cfg['comment'], 'enabled': cfg['enabled']})
    if strict:
        raise koji.GenericError('Invalid hostInfo: %s' % hostInfo)
    return None


def list_channels(hostID=None, event=None, enabled=None):
    """Channels, optionally those a host is in."""
    db = _db()
    ids = None
    if hostID is not None:
        hid = get_host(hostID, strict=True)['id']
        ids = {r['channel_id'] for r in db.host_channels
               if r['host_id'] == hid and _active(r, event)}
    out = [_sorted(dict(c)) for c in db.channels.values()
           if (ids is None or c['id'] in ids) and (enabled is None
                                                   or bool(c['enabled']) == bool(enabled))]
    return sorted(out, key=lambda c: c['id'])


# --------------------------------------------------------------------------- tasks

def _task_dumps_request(method, arglist) -> str:
    return koji.xmlrpcplus.dumps(tuple(arglist), methodname=method)


class Task:
    """A task for the build hosts (subset of kojihub.Task over State.db.task)."""

    fields = (
        ('task.id', 'id'), ('task.state', 'state'), ('task.create_time', 'create_time'),
        ("date_part('epoch', create_time)", 'create_ts'), ('task.start_time', 'start_time'),
        ("date_part('epoch', task.start_time)", 'start_ts'),
        ('task.completion_time', 'completion_time'),
        ("date_part('epoch', completion_time)", 'completion_ts'),
        ('task.channel_id', 'channel_id'), ('task.host_id', 'host_id'),
        ('task.parent', 'parent'), ('task.label', 'label'), ('task.waiting', 'waiting'),
        ('task.awaited', 'awaited'), ('task.owner', 'owner'), ('task.method', 'method'),
        ('task.arch', 'arch'), ('task.priority', 'priority'), ('task.weight', 'weight'))

    def __init__(self, id):
        self.id = convert_value(id, cast=int)
        self.logger = logging.getLogger("koji.hub.Task")

    def _row(self, strict=True):
        row = _db().task.get(self.id)
        if row is None and strict:
            raise koji.GenericError("No such task: %i" % self.id)
        return row

    def verifyHost(self, host_id=None):
        if host_id is None:
            host_id = getattr(context.session, 'host_id', None)
        if host_id is None:
            return False
        r = self._row()
        return r['state'] == koji.TASK_STATES['OPEN'] and r['host_id'] == host_id

    def assertHost(self, host_id):
        if not self.verifyHost(host_id):
            raise koji.ActionNotAllowed("host %d does not own task %d" % (host_id, self.id))

    def getOwner(self):
        return self._row()['owner']

    def verifyOwner(self, user_id=None):
        if user_id is None:
            user_id = _user_id_or_none()
        if user_id is None:
            return False
        return self._row()['owner'] == user_id

    def assertOwner(self, user_id=None):
        if not self.verifyOwner(user_id):
            raise koji.ActionNotAllowed("user %d does not own task %d" % (user_id, self.id))

    def runCallbacks(self, cbtype, old_info, attr, new_val):
        if cbtype.startswith('pre'):
            info = old_info
        else:
            info = self.getInfo(request=True)
            if info['state'] == koji.TASK_STATES['CLOSED']:
                info['result'] = self.getResult()
            new_val = info[attr]
        old_val = old_info[attr]
        if attr == 'state':
            old_val = koji.TASK_STATES[old_val]
            new_val = koji.TASK_STATES[new_val]
        koji.plugin.run_callbacks(cbtype, attribute=attr, old=old_val, new=new_val, info=info)

    def lock(self, host_id, newstate='OPEN', force=False):
        info = self.getInfo(request=True)
        self.runCallbacks('preTaskStateChange', info, 'state', koji.TASK_STATES[newstate])
        r = self._row()
        if not force:
            state = r['state']
            if state == koji.TASK_STATES['FREE']:
                if r['host_id'] is not None:
                    return False
            elif state == koji.TASK_STATES['ASSIGNED']:
                if r['host_id'] != host_id:
                    return False
                if newstate == 'ASSIGNED':
                    return True
            else:
                return False
        r['state'] = koji.TASK_STATES[newstate]
        r['host_id'] = host_id
        if newstate == 'OPEN':
            r['start_time'] = _now()
        _mark_write()
        self.runCallbacks('postTaskStateChange', info, 'state', koji.TASK_STATES[newstate])
        return True

    def assign(self, host_id, force=False):
        return self.lock(host_id, 'ASSIGNED', force)

    def open(self, host_id):
        if self.lock(host_id, 'OPEN'):
            ret = self.getInfo()
            ret['request'] = self._row()['request']
            return ret
        return None

    def free(self):
        r = self._row()
        if koji.TASK_STATES[r['state']] in ['CLOSED', 'CANCELED', 'FAILED']:
            raise koji.GenericError("Cannot free task %i, state is %s" %
                                    (self.id, koji.TASK_STATES[r['state']]))
        r['state'] = koji.TASK_STATES['FREE']
        r['host_id'] = None
        _mark_write()
        return True

    def setWeight(self, weight):
        self._row()['weight'] = convert_value(weight, cast=float)
        _mark_write()

    def _close(self, result, state):
        info = self.getInfo(request=True)
        info['result'] = result
        self.runCallbacks('preTaskStateChange', info, 'state', state)
        r = self._row()
        r['result'] = info['result']
        r['state'] = state
        r['completion_time'] = _now()
        _mark_write()
        self.runCallbacks('postTaskStateChange', info, 'state', state)

    def close(self, result):
        self._close(result, koji.TASK_STATES['CLOSED'])

    def fail(self, result):
        self._close(result, koji.TASK_STATES['FAILED'])

    def getState(self):
        return self._row()['state']

    def isFinished(self):
        return koji.TASK_STATES[self.getState()] in ['CLOSED', 'CANCELED', 'FAILED']

    def isCanceled(self):
        return self.getState() == koji.TASK_STATES['CANCELED']

    def isFailed(self):
        return self.getState() == koji.TASK_STATES['FAILED']

    def cancel(self, recurse=True):
        info = self.getInfo(request=True)
        self.runCallbacks('preTaskStateChange', info, 'state', koji.TASK_STATES['CANCELED'])
        r = self._row()
        if r['state'] == koji.TASK_STATES['CANCELED']:
            return True
        if r['state'] in (koji.TASK_STATES['CLOSED'], koji.TASK_STATES['FAILED']):
            return False
        r['state'] = koji.TASK_STATES['CANCELED']
        r['completion_time'] = _now()
        _mark_write()
        self.runCallbacks('postTaskStateChange', info, 'state', koji.TASK_STATES['CANCELED'])
        if recurse:
            self.cancelChildren()
        return True

    def cancelChildren(self):
        for row in sorted(_db().task.values(), key=lambda r: r['id']):
            if row['parent'] == self.id:
                Task(row['id']).cancel(recurse=True)

    def getRequest(self):
        params, _method = koji.xmlrpcplus.loads(self._row()['request'])
        return params

    def getResult(self, raise_fault=True):
        r = _db().task.get(self.id)
        if not r:
            raise koji.GenericError("No such task")
        state = r['state']
        if koji.TASK_STATES[state] == 'CANCELED':
            raise koji.GenericError("Task %i is canceled" % self.id)
        elif koji.TASK_STATES[state] not in ['CLOSED', 'FAILED']:
            raise koji.GenericError("Task %i is not finished" % self.id)
        try:
            result, _method = koji.xmlrpcplus.loads(r['result'])
        except koji.xmlrpcplus.Fault as fault:
            if raise_fault:
                raise
            return {'faultCode': fault.faultCode, 'faultString': fault.faultString}
        return result[0]

    def getInfo(self, strict=True, request=False):
        r = self._row(strict=strict)
        if r is None:
            return None
        info = {alias: r[alias] for _col, alias in self.fields if not alias.endswith('_ts')}
        info['create_ts'] = _ts(r['create_time'])
        info['start_ts'] = _ts(r['start_time'])
        info['completion_ts'] = _ts(r['completion_time'])
        info = _sorted(info)
        if request:
            info['request'] = self.getRequest()
        return info

    def getChildren(self, request=False):
        out = []
        for row in sorted(_db().task.values(), key=lambda r: r['id']):
            if row['parent'] == self.id:
                info = Task(row['id']).getInfo()
                if request:
                    info['request'] = koji.xmlrpcplus.loads(row['request'])[0]
                out.append(info)
        return out


def make_task(method, arglist, **opts):
    """Create a task (kojihub.make_task semantics, incl. channel/priority policies)."""
    st = current_state()
    st.make_task_calls.append({'method': method, 'arglist': copy.deepcopy(list(arglist)),
                               'opts': copy.deepcopy(opts)})
    db = st.db
    convert_value(method, cast=str, check_only=True)
    if 'parent' in opts:
        opts['parent'] = convert_value(opts['parent'], cast=int)
    if 'label' in opts:
        convert_value(opts['label'], cast=str, check_only=True)
    if 'owner' in opts and not isinstance(opts['owner'], int):
        opts['owner'] = get_user(opts['owner'], strict=True)['id']
    if 'arch' in opts:
        opts['arch'] = koji.parse_arches(opts['arch'], strict=True, allow_none=True)
    if 'priority' in opts:
        opts['priority'] = convert_value(opts['priority'], cast=int)
    if 'assign' in opts and not isinstance(opts['assign'], int):
        opts['assign'] = get_host(opts['assign'], strict=True)['id']
    pdata = None
    if 'parent' in opts:
        pdata = db.task.get(opts['parent'])
        if not pdata:
            raise koji.GenericError("Invalid parent task: %(parent)s" % opts)
        if pdata['state'] != koji.TASK_STATES['OPEN']:
            raise koji.GenericError("Parent task (id %(parent)s) is not open" % opts)
        opts.setdefault('priority', pdata['priority'] - 1)
        for f in ('owner', 'arch'):
            opts.setdefault(f, pdata[f])
        opts.setdefault('label', None)
    else:
        opts.setdefault('priority', koji.PRIO_DEFAULT)
        opts.setdefault('arch', 'noarch')
        if 'owner' not in opts:
            sess = getattr(context, 'session', None)
            if sess is None or not sess.logged_in:
                raise koji.GenericError('task must have an owner')
            opts['owner'] = sess.user_id
        opts['label'] = None
        opts['parent'] = None
    policy_data = {'method': method}
    for key in 'arch', 'parent', 'label', 'owner':
        policy_data[key] = opts[key]
    policy_data['user_id'] = opts['owner']
    req_channel_id = None
    if 'channel' in opts:
        policy_data['req_channel'] = opts['channel']
        channel_info = get_channel(opts['channel'])
        if not channel_info:
            raise koji.GenericError('No such channel: %s' % opts['channel'])
        if channel_info['enabled']:
            req_channel_id = channel_info['id']
        else:
            raise koji.GenericError('Channel %s is disabled.' % opts['channel'])
    policy_data.update(policy_data_from_task_args(method, arglist))
    ruleset = _policies().get('channel')
    result = ruleset.apply(policy_data) if ruleset else None
    if result is None:
        opts['channel_id'] = get_channel_id('default', strict=True)
    else:
        parts = result.split()
        if parts[0] == "use":
            channel_info = get_channel(parts[1], strict=True)
            if not channel_info['enabled']:
                raise koji.GenericError('Channel %s is disabled.' % parts[1])
            opts['channel_id'] = channel_info['id']
        elif parts[0] == "parent":
            if not opts.get('parent'):
                raise koji.GenericError("invalid channel policy")
            opts['channel_id'] = pdata['channel_id']
        elif parts[0] == "req":
            if 'channel' not in opts:
                raise koji.GenericError("invalid channel policy")
            opts['channel_id'] = req_channel_id
        else:
            raise koji.GenericError("invalid channel policy")
    ruleset = _policies().get('priority')
    result = ruleset.apply(policy_data) if ruleset else None
    if result is not None:
        parts = result.split()
        if parts[0] == 'set':
            opts['priority'] = int(parts[1])
        elif parts[0] == 'adjust':
            opts['priority'] += int(parts[1])
        elif parts[0] != 'stay':
            raise koji.GenericError("invalid priority policy")
    opts['request'] = _task_dumps_request(method, arglist)
    opts['state'] = koji.TASK_STATES['FREE']
    opts['method'] = method
    koji.plugin.run_callbacks(
        'preTaskStateChange', attribute='state', old=None, new='FREE', info=opts)
    task_id = st.nextval('task')
    row = {'id': task_id, 'state': opts['state'], 'create_time': _now(), 'start_time': None,
           'completion_time': None, 'channel_id': opts['channel_id'], 'host_id': None,
           'parent': opts['parent'], 'label': opts['label'], 'waiting': None,
           'awaited': None, 'owner': opts['owner'], 'method': method,
           'request': opts['request'], 'result': None, 'arch': opts['arch'],
           'priority': opts['priority'], 'weight': 1.0}
    if opts.get('assign'):
        row['state'] = koji.TASK_STATES['ASSIGNED']
        row['host_id'] = opts['assign']
    db.task[task_id] = row
    _mark_write()
    opts['id'] = task_id
    koji.plugin.run_callbacks(
        'postTaskStateChange', attribute='state', old=None, new='FREE', info=opts)
    return task_id


def list_task_output(taskID, stat=False, all_volumes=False, strict=False):
    """Files a task uploaded (relative names), optionally with stat info."""
    if strict and _db().task.get(taskID) is None:
        raise koji.GenericError("Task doesn't exist")
    result: Any = {} if (stat or all_volumes) else []
    pi = current_state().pathinfo
    taskDir = '%s/%s' % (pi.work(), pi.taskrelpath(taskID))
    if not os.path.isdir(taskDir):
        return result
    for path, _dirs, files in os.walk(taskDir):
        for filename in sorted(files):
            if filename.startswith('.'):
                continue  # hubsim keeps upload owner markers like the hub's '.user'
            relpath = path[len(taskDir) + 1:]
            relfilename = os.path.join(relpath, filename)
            if stat:
                st = os.stat(os.path.join(path, filename))
                stat_map = {'st_size': str(st.st_size), 'st_atime': st.st_atime,
                            'st_mtime': st.st_mtime, 'st_ctime': st.st_ctime}
                if all_volumes:
                    result.setdefault(relfilename, {})['DEFAULT'] = stat_map
                else:
                    result[relfilename] = stat_map
            elif all_volumes:
                result.setdefault(relfilename, []).append('DEFAULT')
            else:
                result.append(relfilename)
    return result


def get_upload_path(reldir, name, create=False, volume=None):
    """Upload destination under work/ (host must own a tasks/<n>/<id> dir)."""
    orig_reldir, orig_name = reldir, name
    d, name = os.path.split(name)
    if d or name.startswith('.'):
        raise koji.GenericError("Invalid upload filename: %s" % orig_name)
    reldir = os.path.normpath(reldir)
    if not reldir or reldir.startswith('..'):
        raise koji.GenericError("Invalid upload directory: %s" % orig_reldir)
    if volume is not None:
        lookup_name('volume', volume, strict=True)
    parts = reldir.split('/')
    check_user = True
    if create and parts[0] == "tasks":
        if len(parts) < 3:
            raise koji.GenericError("Invalid task upload directory: %s" % orig_reldir)
        try:
            task_id = int(parts[2])
        except ValueError:
            raise koji.GenericError("Invalid task upload directory: %s"
                                    % orig_reldir) from None
        host = Host()
        host.verify()
        Task(task_id).assertHost(host.id)
        check_user = False
    udir = os.path.join(current_state().pathinfo.work(), reldir)
    if create:
        koji.ensuredir(udir)
        if check_user:
            u_fn = os.path.join(udir, '.user')
            if os.path.exists(u_fn):
                with open(u_fn) as fo:
                    user_id = int(fo.read())
                if context.session.user_id != user_id:
                    raise koji.GenericError("Invalid upload directory, not owner: %s"
                                            % orig_reldir)
            else:
                with open(u_fn, 'w') as fo:
                    fo.write(str(context.session.user_id))
    return os.path.join(udir, name)


def get_verify_class(verify):
    if verify == 'md5':
        import hashlib
        return hashlib.md5
    elif verify == 'adler32':
        return koji.util.adler32_constructor
    elif verify == 'sha256':
        import hashlib
        return hashlib.sha256
    elif verify:
        raise koji.GenericError("Unsupported verify type: %s" % verify)
    return None


# --------------------------------------------------------------------------- host

class Host:
    """The builder host behind the current session (kojihub.Host subset)."""

    def __init__(self, id=None):
        remote_id = context.session.getHostId()
        if id is None:
            id = remote_id
        if id is None:
            if context.session.logged_in:
                raise koji.AuthError("User %i is not a host" % context.session.user_id)
            raise koji.AuthError("Not logged-in")
        self.id = id
        self.same_host = (id == remote_id)

    def verify(self):
        if not self.same_host:
            raise koji.AuthError("Host mismatch")
        if not context.session.exclusive:
            raise koji.AuthError("This method requires an exclusive session")
        return True

    def taskUnwait(self, parent):
        db = _db()
        db.task[parent]['waiting'] = False
        for row in db.task.values():
            if row['parent'] == parent:
                row['awaited'] = False
        _mark_write()

    def taskSetWait(self, parent, tasks):
        convert_value(tasks, cast=list, none_allowed=True, check_only=True)
        db = _db()
        db.task[parent]['waiting'] = True
        children = [r for r in db.task.values() if r['parent'] == parent]
        if tasks is None:
            for r in children:
                r['awaited'] = True
        elif tasks:
            for r in children:
                if r['id'] in tasks:
                    r['awaited'] = True
                elif r['awaited']:
                    r['awaited'] = False
        _mark_write()

    def taskWaitCheck(self, parent):
        finished, unfinished = [], []
        done = (koji.TASK_STATES['CANCELED'], koji.TASK_STATES['CLOSED'],
                koji.TASK_STATES['FAILED'])
        for r in sorted(_db().task.values(), key=lambda r: r['id']):
            if r['parent'] == parent and r['awaited'] is True:
                (finished if r['state'] in done else unfinished).append(r['id'])
        return finished, unfinished

    def taskWait(self, parent):
        st = current_state()
        st.run_autorun(parent)
        finished, unfinished = self.taskWaitCheck(parent)
        for task_id in sorted(finished):
            _db().task[task_id]['awaited'] = False
        if unfinished and not finished and st.strict_wait:
            st.check_wait_deadlock(parent, unfinished)
        return [finished, unfinished]

    def taskWaitResults(self, parent, tasks, canfail=None):
        if canfail is None:
            canfail = []
        self.taskUnwait(parent)
        if tasks is None:
            states = tuple(koji.TASK_STATES[s] for s in ['CLOSED', 'FAILED', 'CANCELED'])
            tasks = [r['id'] for r in sorted(_db().task.values(), key=lambda r: r['id'])
                     if r['parent'] == parent and r['state'] in states]
        results = []
        for task_id in tasks:
            task = Task(task_id)
            raise_fault = task_id not in canfail
            try:
                results.append([task_id, task.getResult(raise_fault=raise_fault)])
            except koji.GenericError as e:
                if not raise_fault and task.isCanceled():
                    results.append([task_id, {'faultCode': e.faultCode,
                                              'faultString': str(e)}])
                    continue
                raise
        return results

    def getHostTasks(self):
        out = []
        for r in _db().task.values():
            if r['host_id'] == self.id and r['state'] == koji.TASK_STATES['OPEN']:
                t = {'id': r['id'], 'waiting': r['waiting'], 'weight': r['weight']}
                if r['waiting'] and self.taskWaitCheck(r['id'])[0]:
                    t['alert'] = True
                out.append(t)
        return out

    def updateHost(self, task_load, ready):
        h = _db().host[self.id]
        h['task_load'] = float(task_load)
        h['ready'] = ready
        h['update_time'] = _now()
        _mark_write()

    def getLoadData(self):
        host = get_host(self.id)
        host['channels'] = [c['id'] for c in list_channels(hostID=self.id)]
        tasks = [Task(r['id']).getInfo() for r in _db().task.values()
                 if r['host_id'] == self.id and r['state'] == koji.TASK_STATES['ASSIGNED']]
        return [[host], tasks]

    def isEnabled(self):
        return _host_config(self.id)['enabled']


# --------------------------------------------------------------------------- exports

class RootExports:
    """Exported (XML-RPC) calls; names, signatures and results as the real hub's."""

    def hello(self, *args):
        return "Hello World"

    def echo(self, *args):
        return args

    def getKojiVersion(self):
        return koji.__version__

    def getAPIVersion(self):
        return koji.API_VERSION

    def showSession(self):
        return "%s" % context.session

    def getLastEvent(self, before=None, strict=True):
        strict = convert_value(strict, cast=bool)
        events = sorted(_db().events.values(), key=lambda e: e['id'], reverse=True)
        if before is not None:
            if not isinstance(before, NUMERIC_TYPES):
                raise koji.GenericError('Invalid type for before: %s' % type(before))
            events = [e for e in events if e['time'].timestamp() < before]
        if not events:
            if strict:
                raise koji.GenericError('query returned no rows')
            return None
        return {'id': events[0]['id'], 'ts': events[0]['time'].timestamp()}

    def getEvent(self, id, strict=True):
        ev = _db().events.get(id)
        if ev is None:
            if strict:
                raise koji.GenericError('query returned no rows')
            return None
        return {'id': ev['id'], 'ts': ev['time'].timestamp()}

    def evalPolicy(self, name, data):
        return eval_policy(name, data)

    def makeTask(self, *args, **opts):
        context.session.assertPerm('admin')
        if 'owner' in opts:
            raise koji.ActionNotAllowed('owner option is not allowed here')
        return make_task(*args, **opts)

    def checkUpload(self, path, name, verify=None, tail=None, volume=None):
        fn = get_upload_path(path, name, volume=volume)
        if not os.path.exists(fn):
            return None
        if not os.path.isfile(fn):
            raise koji.GenericError("Not a regular file: %s" % fn)
        st = os.stat(fn)
        data = {'size': st.st_size, 'mtime': st.st_mtime}
        if verify:
            chksum = get_verify_class(verify)()
            with open(fn, 'rb') as fo:
                if tail is not None:
                    if tail < 0:
                        raise koji.GenericError("Invalid tail value: %r" % tail)
                    fo.seek(max(st.st_size - tail, 0))
                content = fo.read()
            chksum.update(content)
            data['sumlength'] = len(content)
            data['hexdigest'] = chksum.hexdigest()
        return data

    def downloadTaskOutput(self, taskID, fileName, offset=0, size=-1, volume=None):
        size = convert_value(size, cast=int)
        if volume:
            lookup_name('volume', volume, strict=True)
        if '..' in fileName:
            raise koji.GenericError('Invalid file name: %s' % fileName)
        pi = current_state().pathinfo
        filePath = os.path.normpath('%s/%s/%s' % (pi.work(), pi.taskrelpath(taskID),
                                                  fileName))
        if not os.path.isfile(filePath):
            raise koji.GenericError('no file "%s" output by task %i' % (fileName, taskID))
        with open(filePath, 'rb') as f:
            if isinstance(offset, str):
                offset = int(offset)
            if offset is not None and offset > 0:
                f.seek(offset, 0)
            elif offset is not None and offset < 0:
                f.seek(offset, 2)
            contents = f.read(size)
        return base64.b64encode(contents).decode()

    listTaskOutput = staticmethod(list_task_output)

    def tagBuild(self, tag, build, force=False, fromtag=None):
        """Creates the tagBuild task and runs it at once (hubsim has no kojid for it):
        the returned task is CLOSED (or FAILED with the fault) when this returns."""
        context.session.assertLogin()
        build = get_build(build, strict=True)
        tag = get_tag(tag, strict=True)
        fromtag_id = get_tag_id(fromtag, strict=True) if fromtag else None
        pkg_id = build['package_id']
        tag_id = tag['id']
        if build['state'] != koji.BUILD_STATES['COMPLETE']:
            state = koji.BUILD_STATES[build['state']]
            raise koji.TagError("build %s not complete: state %s" % (build['nvr'], state))
        assert_tag_access(tag_id, user_id=None, force=force)
        if fromtag:
            assert_tag_access(fromtag_id, user_id=None, force=force)
        pkgs = readPackageList(tagID=tag_id, pkgID=pkg_id, inherit=True, with_owners=False)
        pkg_error = None
        if pkg_id not in pkgs:
            pkg_error = "Package %s not in list for %s" % (build['name'], tag['name'])
        elif pkgs[pkg_id]['blocked']:
            pkg_error = "Package %s blocked in %s" % (build['name'], tag['name'])
        if pkg_error:
            if force and context.session.hasPerm('admin'):
                pkglist_add(tag_id, pkg_id, force=True, block=False)
            else:
                raise koji.TagError(pkg_error)
        policy_data = {'tag': tag_id, 'build': build['id'], 'fromtag': fromtag_id,
                       'operation': 'tag' if fromtag is None else 'move'}
        assert_policy('tag', policy_data, force=force)
        task_id = make_task('tagBuild', [tag_id, build['id'], force, fromtag_id], priority=10)
        current_state().run_tag_task(task_id)
        return task_id

    def untagBuild(self, tag, build, strict=True, force=False):
        context.session.assertLogin()
        tag_id = get_tag(tag, strict=True)['id']
        build_id = get_build(build, strict=True)['id']
        policy_data = {'tag': None, 'build': build_id, 'fromtag': tag_id,
                       'operation': 'untag'}
        assert_policy('tag', policy_data, force=force)
        _untag_build(tag, build, strict=strict, force=force)

    def tagBuildBypass(self, tag, build, force=False, notify=False):
        context.session.assertPerm('tag')
        tag_id = get_tag(tag, strict=True)['id']
        build_id = get_build(build, strict=True)['id']
        policy_data = {'tag': tag_id, 'build': build_id, 'fromtag': None, 'operation': 'tag'}
        assert_policy('tag', policy_data, force=force)
        _tag_build(tag, build, force=force)

    def untagBuildBypass(self, tag, build, strict=True, force=False, notify=False):
        context.session.assertPerm('tag')
        _untag_build(tag, build, strict=strict, force=force)

    def cancelTask(self, task_id, recurse=True):
        task = Task(task_id)
        if (not task.verifyOwner() and not task.verifyHost()
                and not context.session.hasPerm('admin')):
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        task.cancel(recurse=recurse)

    def cancelTaskChildren(self, task_id):
        context.session.assertLogin()
        task = Task(task_id)
        if (not task.verifyOwner() and not task.verifyHost()
                and not context.session.hasPerm('admin')):
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        task.cancelChildren()

    def listTagged(self, tag, event=None, inherit=False, prefix=None, latest=False, package=None,
                   owner=None, type=None, strict=True, extra=False, draft=None):
        tag = get_tag(tag, strict=strict, event=event)
        if not tag:
            return []
        results = readTaggedBuilds(tag['id'], event, inherit=inherit, latest=latest,
                                   package=package, owner=owner, type=type, extra=extra,
                                   draft=draft)
        if prefix:
            prefix = prefix.lower()
            results = [b for b in results if b['package_name'].lower().startswith(prefix)]
        return results

    def listTaggedRPMS(self, tag, event=None, inherit=False, latest=False, package=None,
                       arch=None, rpmsigs=False, owner=None, type=None, strict=True,
                       extra=True, draft=None):
        tag = get_tag(tag, strict=strict, event=event)
        if not tag:
            return []
        return readTaggedRPMS(tag['id'], event=event, inherit=inherit, latest=latest,
                              package=package, arch=arch, rpmsigs=rpmsigs, owner=owner,
                              type=type, extra=extra, draft=draft)

    def listBuilds(self, packageID=None, userID=None, taskID=None, prefix=None, state=None,
                   volumeID=None, source=None, createdBefore=None, createdAfter=None,
                   completeBefore=None, completeAfter=None, type=None, typeInfo=None,
                   queryOpts=None, pattern=None, cgID=None, draft=None,
                   promotedBefore=None, promotedAfter=None, promoter=None):
        """Builds matching the filters; typeInfo and cgID match nothing here."""
        db = _db()
        rows = sorted(db.build.values(), key=lambda r: r['id'])
        if packageID is not None:
            packageID = get_package_id(packageID)
            if not packageID:
                return _gen([])
            rows = [r for r in rows if r['pkg_id'] == packageID]
        if userID is not None:
            userinfo = get_user(userID)
            if not userinfo:
                return _gen([])
            rows = [r for r in rows if r['owner'] == userinfo['id']]
        if promoter is not None:
            pinfo = get_user(promoter)
            if not pinfo:
                return _gen([])
            rows = [r for r in rows if r['promoter'] == pinfo['id']]
        if volumeID is not None:
            rows = [r for r in rows if r['volume_id'] == volumeID]
        if taskID is not None:
            if taskID == -1:
                rows = [r for r in rows if r['task_id'] is not None]
            else:
                rows = [r for r in rows if r['task_id'] == taskID]
        if source is not None:
            rows = [r for r in rows if r['source'] is not None
                    and fnmatch.fnmatch(r['source'].lower(), source.lower())]
        if prefix:
            rows = [r for r in rows
                    if db.package[r['pkg_id']]['name'].lower().startswith(prefix.lower())]
        if pattern:
            rows = [r for r in rows if fnmatch.fnmatch(
                ('%s-%s-%s' % (db.package[r['pkg_id']]['name'], r['version'],
                               r['release'])).lower(), pattern.lower())]
        if state is not None:
            rows = [r for r in rows if r['state'] == state]

        def _when(value):
            if isinstance(value, str):
                dt = datetime.datetime.fromisoformat(value)
                return dt if dt.tzinfo else dt.replace(tzinfo=datetime.timezone.utc)
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)

        for opt, col, before in ((createdBefore, 'create', True), (createdAfter, 'create', False),
                                 (completeBefore, 'completion_time', True),
                                 (completeAfter, 'completion_time', False),
                                 (promotedBefore, 'promotion_time', True),
                                 (promotedAfter, 'promotion_time', False)):
            if not opt:
                continue
            limit = _when(opt)

            def _val(r, col=col):
                return db.events[r['create_event']]['time'] if col == 'create' else r[col]
            rows = [r for r in rows if _val(r) is not None
                    and ((_val(r) < limit) if before else (_val(r) > limit))]
        if cgID:
            return _gen([])
        if type is not None:
            if type not in ('rpm', 'maven', 'win', 'image') and \
                    lookup_name('btype', type, strict=False) is None:
                raise koji.GenericError('unsupported build type: %s' % type)
            rows = [r for r in rows if type in db.build_types.get(r['id'], ())]
        if draft is not None:
            rows = [r for r in rows if bool(r['draft']) == bool(draft)]
        out = []
        for r in rows:
            d = _build_base(r)
            _build_times(r, d)
            d['source'] = r['source']
            d['extra'] = parse_json(r['extra'], errstr='Invalid extra data')
            out.append(_sorted(d))
        result = _apply_query_opts(out, queryOpts)
        return result if isinstance(result, int) else _gen(result)

    def getLatestBuilds(self, tag, event=None, package=None, type=None, draft=None):
        if not isinstance(tag, int):
            tag = get_tag_id(tag, strict=True)
        return readTaggedBuilds(tag, event, inherit=True, latest=True, package=package,
                                type=type, draft=draft)

    def getLatestRPMS(self, tag, package=None, arch=None, event=None, rpmsigs=False, type=None,
                      draft=None):
        if not isinstance(tag, int):
            tag = get_tag_id(tag, strict=True)
        return readTaggedRPMS(tag, package=package, arch=arch, event=event, inherit=True,
                              latest=True, rpmsigs=rpmsigs, type=type, draft=draft)

    def getInheritanceData(self, tag, event=None):
        tag = get_tag_id(tag, strict=True)
        return readInheritanceData(tag, event)

    def getFullInheritance(self, tag, event=None, reverse=False, **kwargs):
        for k, v in kwargs.items():
            if k in ('stops', 'jumps'):
                if v:
                    raise koji.ParameterError("%s option has been removed since 1.26" % k)
            else:
                raise koji.ParameterError(
                    "getFullInheritance() got an unexpected keyword argument '%s'" % k)
        if not isinstance(tag, int):
            tag = get_tag_id(tag, strict=True)
        return readFullInheritance(tag, event, reverse)

    listRPMs = staticmethod(list_rpms)

    def listBuildRPMs(self, build):
        if not isinstance(build, int):
            build = self.findBuildID(build, strict=True)
        return self.listRPMs(buildID=build)

    def _rpm_file(self, rpm_info):
        build_info = get_build(rpm_info['build_id'])
        return rpm_path(rpm_info, build_info)

    def getRPMDeps(self, rpmID, depType=None, queryOpts=None, strict=False):
        if queryOpts is None:
            queryOpts = {}
        rpm_info = get_rpm(rpmID, strict=strict)
        if not rpm_info:
            return _applyQueryOpts([], queryOpts)
        if rpm_info and not rpm_info['build_id']:
            if strict:
                raise koji.GenericError("Can not get dependencies,"
                                        " because RPM: %s is not internal" % rpmID)
            return _applyQueryOpts([], queryOpts)
        path = self._rpm_file(rpm_info)
        if not os.path.exists(path):
            if strict:
                raise koji.GenericError("RPM file of %s doesn't exist" % rpmID)
            return _applyQueryOpts([], queryOpts)
        results = []
        for dep_name in ['REQUIRE', 'PROVIDE', 'CONFLICT', 'OBSOLETE', 'SUGGEST', 'ENHANCE',
                         'SUPPLEMENT', 'RECOMMEND']:
            dep_id = getattr(koji, 'DEP_' + dep_name)
            if depType is None or depType == dep_id:
                fields = current_state().header_fields(
                    path, [dep_name + 'NAME', dep_name + 'VERSION', dep_name + 'FLAGS'])
                for (name, version, flags) in zip(fields[dep_name + 'NAME'],
                                                  fields[dep_name + 'VERSION'],
                                                  fields[dep_name + 'FLAGS']):
                    if queryOpts.get('asList'):
                        results.append([name, version, flags, dep_id])
                    else:
                        results.append({'name': name, 'version': version, 'flags': flags,
                                        'type': dep_id})
        return _applyQueryOpts(results, queryOpts)

    def getRPMHeaders(self, rpmID=None, taskID=None, filepath=None, headers=None,
                      strict=False):
        if rpmID:
            rpm_info = get_rpm(rpmID, strict=strict)
            if not rpm_info:
                return {}
            if rpm_info['external_repo_id'] != 0:
                if strict:
                    raise koji.GenericError('External rpm: %(id)s' % rpm_info)
                return {}
            build_info = get_build(rpm_info['build_id'], strict=True)
            if koji.BUILD_STATES[build_info['state']] == 'DELETED':
                if strict:
                    raise koji.GenericError('Build %(nvr)s is deleted' % build_info)
                return {}
            path = rpm_path(rpm_info, build_info)
            if not os.path.exists(path):
                if strict:
                    raise koji.GenericError('Missing rpm file: %s' % path)
                return {}
        elif taskID:
            if not filepath:
                raise koji.GenericError('filepath must be specified with taskID')
            if filepath.startswith('/') or '../' in filepath:
                raise koji.GenericError('Invalid filepath: %s' % filepath)
            pi = current_state().pathinfo
            path = os.path.join(pi.work(), pi.taskrelpath(taskID), filepath)
            if not os.path.exists(path):
                if strict:
                    raise koji.GenericError('Missing rpm file: %s' % path)
                return {}
        else:
            raise koji.GenericError('either rpmID or taskID and filepath must be specified')
        headers = current_state().header_fields(path, headers)
        return koji.fixEncodingRecurse(headers, remove_nonprintable=True)

    def queryRPMSigs(self, rpm_id=None, sigkey=None, queryOpts=None):
        return []

    def getBuildLogs(self, build):
        get_build(build, strict=True)
        return []

    def listTags(self, build=None, package=None, perms=True, queryOpts=None, pattern=None):
        return list_tags(build=build, package=package, perms=perms, queryOpts=queryOpts,
                         pattern=pattern)

    getBuild = staticmethod(get_build)
    getBuildType = staticmethod(get_build_type)
    getNextRelease = staticmethod(get_next_release)
    listRPMs = staticmethod(list_rpms)
    getRPM = staticmethod(get_rpm)
    findBuildID = staticmethod(find_build_id)
    getTagID = staticmethod(get_tag_id)
    getTag = staticmethod(get_tag)
    getPackage = staticmethod(lookup_package)
    getUser = staticmethod(get_user)
    getBuildTargets = staticmethod(get_build_targets)
    getBuildTarget = staticmethod(get_build_target)
    getHost = staticmethod(get_host)
    getChannel = staticmethod(get_channel)
    listChannels = staticmethod(list_channels)
    checkTagAccess = staticmethod(check_tag_access)
    packageListAdd = staticmethod(pkglist_add)

    def getPackageID(self, name, strict=False):
        return get_package_id(name, strict=strict)

    def listPackages(self, tagID=None, userID=None, pkgID=None, prefix=None, inherited=False,
                     with_dups=False, event=None, queryOpts=None, with_owners=True,
                     with_blocked=True):
        if tagID is None and userID is None and pkgID is None:
            return self.listPackagesSimple(prefix, queryOpts)
        if tagID is not None:
            tagID = get_tag_id(tagID, strict=True)
        if userID is not None:
            userID = get_user(userID, strict=True)['id']
        if pkgID is not None:
            pkgID = get_package_id(pkgID, strict=True)
        result_list = list(readPackageList(tagID=tagID, userID=userID, pkgID=pkgID,
                                           inherit=inherited, with_dups=with_dups,
                                           event=event, with_owners=with_owners,
                                           with_blocked=with_blocked).values())
        results = [p for lst in result_list for p in lst] if with_dups else result_list
        if prefix:
            prefix = prefix.lower()
            results = [p for p in results if p['package_name'].lower().startswith(prefix)]
        return _applyQueryOpts(results, queryOpts)

    def listPackagesSimple(self, prefix=None, queryOpts=None):
        rows = [{'package_id': p['id'], 'package_name': p['name']}
                for p in sorted(_db().package.values(), key=lambda p: p['id'])
                if prefix is None or p['name'].lower().startswith(prefix.lower())]
        return _apply_query_opts(rows, queryOpts)

    def checkTagPackage(self, tag, pkg):
        tag_id = get_tag_id(tag, strict=False)
        pkg_id = get_package_id(pkg, strict=False)
        if pkg_id is None or tag_id is None:
            return False
        pkgs = readPackageList(tagID=tag_id, pkgID=pkg_id, inherit=True, with_owners=False)
        return pkg_id in pkgs and not pkgs[pkg_id]['blocked']

    def taskFinished(self, taskId):
        return Task(taskId).isFinished()

    def getTaskRequest(self, taskId):
        return Task(taskId).getRequest()

    def getTaskResult(self, taskId, raise_fault=True):
        return Task(taskId).getResult(raise_fault=raise_fault)

    def getTaskInfo(self, task_id, request=False, strict=False):
        single = True
        if isinstance(task_id, (list, tuple)):
            single = False
        else:
            task_id = [task_id]
        ret = [Task(id).getInfo(strict, request) for id in task_id]
        return ret[0] if single else ret

    def getTaskChildren(self, task_id, request=False, strict=False):
        task = Task(task_id)
        if strict:
            task.getInfo(strict=True)
        return task.getChildren(request=request)

    def getTaskDescendents(self, task_id, request=False):
        out: dict = {}
        todo = [task_id]
        while todo:
            tid = todo.pop(0)
            children = Task(tid).getChildren(request=request)
            out[str(tid)] = children
            todo.extend(c['id'] for c in children)
        return out

    def listTasks(self, opts=None, queryOpts=None):
        """Filters: arch, state, owner, host_id, channel_id, parent (+ not_*), method,
        decode; time filters createdBefore/After, startedBefore/After, completeBefore/After."""
        if not opts:
            opts = {}
        if not queryOpts:
            queryOpts = {}
        db = _db()
        rows = sorted(db.task.values(), key=lambda r: r['id'])
        for f in ('arch', 'state'):
            if f in opts:
                rows = [r for r in rows if r[f] in opts[f]]
            if 'not_' + f in opts:
                rows = [r for r in rows if r[f] not in opts['not_' + f]]
        for f in ('owner', 'host_id', 'channel_id', 'parent'):
            for neg in (False, True):
                key = ('not_' + f) if neg else f
                if key not in opts:
                    continue
                val = opts[key]
                vals = val if isinstance(val, list) else [val]
                rows = [r for r in rows if (r[f] in vals) != neg]
        if 'method' in opts:
            rows = [r for r in rows if r['method'] == opts['method']]
        for key, field, before in (('createdBefore', 'create_time', True),
                                   ('createdAfter', 'create_time', False),
                                   ('startedBefore', 'start_time', True),
                                   ('startedAfter', 'start_time', False),
                                   ('completeBefore', 'completion_time', True),
                                   ('completeAfter', 'completion_time', False),
                                   ('completedBefore', 'completion_time', True),
                                   ('completedAfter', 'completion_time', False)):
            if opts.get(key) is None:
                continue
            value = opts[key]
            if isinstance(value, str):
                limit = datetime.datetime.fromisoformat(value)
                if limit.tzinfo is None:
                    limit = limit.replace(tzinfo=datetime.timezone.utc)
            else:
                limit = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
            rows = [r for r in rows if r[field] is not None
                    and ((r[field] < limit) if before else (r[field] > limit))]
        out = []
        for r in rows:
            info = Task(r['id']).getInfo()
            info['request'] = r['request']
            info['result'] = r['result']
            if not queryOpts.get('countOnly'):
                owner = db.users.get(r['owner'])
                info['owner_name'] = owner['name'] if owner else None
                info['owner_type'] = owner['usertype'] if owner else None
            out.append(_sorted(info))
        result = _apply_query_opts(out, queryOpts)
        if queryOpts.get('countOnly') or queryOpts.get('asList'):
            return result
        if opts.get('decode'):
            for task in result:
                for f in ('request', 'result'):
                    if task[f]:
                        try:
                            task[f] = koji.xmlrpcplus.loads(task[f])[0]
                        except koji.xmlrpcplus.Fault as fault:
                            task[f] = fault
        return _gen(result)

    def build(self, src, target, opts=None, priority=None, channel=None):
        context.session.assertLogin()
        if not opts:
            opts = {}
        taskOpts = {}
        convert_value(src, cast=str, check_only=True)
        if priority:
            if priority < 0 and not context.session.hasPerm('admin'):
                raise koji.ActionNotAllowed('only admins may create high-priority tasks')
            taskOpts['priority'] = koji.PRIO_DEFAULT + priority
        if channel:
            taskOpts['channel'] = channel
        return make_task('build', [src, target, opts], **taskOpts)

    def hasPerm(self, perm, strict=False):
        if strict and not lookup_perm(perm):
            raise koji.GenericError('No such permission %s defined' % perm)
        return context.session.hasPerm(perm)

    def getPerms(self):
        return context.session.getPerms()

    def getUserPerms(self, userID=None, with_groups=True):
        user_info = get_user(userID, strict=True)
        return get_user_perms(user_info['id'], with_groups=with_groups, inheritance_data=False)

    def getAllPerms(self):
        return [dict(p) for p in sorted(_db().permissions.values(), key=lambda p: p['id'])]

    def getLoggedInUser(self):
        if context.session.logged_in:
            me = self.getUser(context.session.user_id)
            me['authtype'] = context.session.authtype
            if me.get('krb_principals'):
                me['krb_principal'] = me['krb_principals'][0]
            else:
                me['krb_principal'] = None
            return me
        return None

    def listHosts(self, arches=None, channelID=None, ready=None, enabled=None, userID=None,
                  queryOpts=None):
        db = _db()
        out = []
        for h in sorted(db.host.values(), key=lambda h: h['id']):
            info = get_host(h['id'])
            if info is None:
                continue
            if arches and not set(arches) & set((info['arches'] or '').split()):
                continue
            if channelID is not None:
                cid = get_channel_id(channelID, strict=True)
                if cid not in [c['id'] for c in list_channels(hostID=h['id'])]:
                    continue
            if ready is not None and bool(info['ready']) != bool(ready):
                continue
            if enabled is not None and bool(info['enabled']) != bool(enabled):
                continue
            if userID is not None and info['user_id'] != get_user(userID, strict=True)['id']:
                continue
            out.append(info)
        return _apply_query_opts(out, queryOpts)


class HostExports:
    """``host.*`` calls used by kojid and BaseTaskHandler."""

    def getID(self):
        host = Host()
        host.verify()
        return host.id

    def updateHost(self, task_load, ready, data=None):
        host = Host()
        host.verify()
        host.updateHost(task_load, ready)

    def getLoadData(self):
        host = Host()
        host.verify()
        return host.getLoadData()

    def getHost(self):
        host = Host()
        host.verify()
        return get_host(host.id)

    def openTask(self, task_id):
        host = Host()
        host.verify()
        return Task(task_id).open(host.id)

    def closeTask(self, task_id, response):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        return task.close(response)

    def failTask(self, task_id, response):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        return task.fail(response)

    def freeTasks(self, tasks):
        host = Host()
        host.verify()
        for task_id in tasks:
            task = Task(task_id)
            if task.verifyHost(host.id):
                task.free()

    def setTaskWeight(self, task_id, weight):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        return task.setWeight(weight)

    def refuseTask(self, task_id, soft=True, msg=''):
        host = Host()
        host.verify()
        task = Task(task_id)
        tinfo = task.getInfo(strict=True)
        if tinfo['host_id'] != host.id:
            return
        current_state().refusals.append({'task_id': task_id, 'host_id': host.id,
                                         'soft': soft, 'msg': msg})
        task.free()

    def getHostTasks(self):
        host = Host()
        host.verify()
        return host.getHostTasks()

    def taskSetWait(self, parent, tasks):
        host = Host()
        host.verify()
        return host.taskSetWait(parent, tasks)

    def taskWait(self, parent):
        host = Host()
        host.verify()
        return host.taskWait(parent)

    def taskWaitResults(self, parent, tasks, canfail=None):
        host = Host()
        host.verify()
        return host.taskWaitResults(parent, tasks, canfail)

    def subtask(self, method, arglist, parent, **opts):
        host = Host()
        host.verify()
        ptask = Task(parent)
        ptask.assertHost(host.id)
        opts['parent'] = parent
        if 'owner' in opts:
            raise koji.ActionNotAllowed('The owner option is not allowed here')
        if 'label' in opts:
            for row in _db().task.values():
                if row['parent'] == parent and row['label'] == opts['label']:
                    return row['id']
        if 'kwargs' in opts:
            arglist = koji.encode_args(*arglist, **opts['kwargs'])
            del opts['kwargs']
        return make_task(method, arglist, **opts)

    def subtask2(self, __parent, __taskopts, __method, *args, **opts):
        args = koji.encode_args(*args, **opts)
        return self.subtask(__method, args, __parent, **__taskopts)

    def tagBuild(self, task_id, tag, build, force=False, fromtag=None):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        _host_tag_build(task.getOwner(), tag, build, force, fromtag)

    def checkPolicy(self, name, data, default='deny', strict=False):
        host = Host()
        host.verify()
        return check_policy(name, data, default=default, strict=strict)

    def assertPolicy(self, name, data, default='deny'):
        host = Host()
        host.verify()
        check_policy(name, data, default=default, strict=True)

    def evalPolicy(self, name, data):
        host = Host()
        host.verify()
        return eval_policy(name, data)

    def isEnabled(self):
        host = Host()
        host.verify()
        return host.isEnabled()


def _host_tag_build(user_id, tag, build, force=False, fromtag=None):
    """Body of host.tagBuild: tag as the task owner, after the tag policy."""
    build = get_build(build, strict=True)
    pkg_id = build['package_id']
    tag_id = get_tag(tag, strict=True)['id']
    if fromtag and not isinstance(fromtag, str):
        fromtag = get_tag(fromtag, strict=True)['name']
    policy_data = {'tag': tag, 'build': build, 'fromtag': fromtag, 'user_id': user_id,
                   'operation': 'tag' if fromtag is None else 'move'}
    assert_policy('tag', policy_data, force=force)
    pkgs = readPackageList(tagID=tag_id, pkgID=pkg_id, inherit=True, with_owners=False)
    pkg_error = None
    if pkg_id not in pkgs:
        pkg_error = "Package %s not in list for %s" % (build['name'], tag)
    elif pkgs[pkg_id]['blocked']:
        pkg_error = "Package %s blocked in %s" % (build['name'], tag)
    if pkg_error:
        if force and context.session.hasPerm('admin'):
            pkglist_add(tag_id, pkg_id, force=True, block=False)
        else:
            raise koji.TagError(pkg_error)
    if fromtag:
        _untag_build(fromtag, build, user_id=user_id, force=force, strict=True)
    _tag_build(tag, build, user_id=user_id, force=force)


# --------------------------------------------------------------------------- session

class Session:
    """``context.session`` with kojihub.auth.Session's attribute and method names."""

    def __init__(self, state, session_id=None, session_key=None, callnum=None):
        self.state = state
        self.logged_in = False
        self.id = None
        self.master = None
        self.key = None
        self.user_id = None
        self.authtype = None
        self.hostip = '-'
        self.user_data: dict = {}
        self.message = ''
        self.exclusive = False
        self.lockerror = None
        self.callnum = callnum
        if session_id is None:
            self.message = 'no Koji-Session-* headers'
            return
        row = state.db.sessions.get(int(session_id))
        if not row or row['key'] != session_key or row['closed']:
            raise koji.AuthError('Invalid session or bad credentials')
        if row['expired']:
            if getattr(context, 'method', None) not in ('login', 'sslLogin', 'logout'):
                raise koji.AuthExpired('session "%s" has expired' % row['id'])
            return
        user = state.db.users[row['user_id']]
        if user['status'] != koji.USER_STATUS['NORMAL']:
            raise koji.AuthError('logins by %s are not allowed' % user['name'])
        self.id = row['id']
        self.key = row['key']
        self.master = row['master']
        self.user_id = row['user_id']
        self.authtype = row['authtype']
        self.exclusive = bool(row['exclusive'])
        if not self.exclusive and row['master'] is not None:
            master = state.db.sessions.get(row['master'])
            self.exclusive = bool(master and master['exclusive'])
        self.user_data = {'name': user['name'], 'status': user['status'],
                          'usertype': user['usertype']}
        self.logged_in = True

    def __str__(self):
        if not self.logged_in:
            s = "session: not logged in"
        else:
            s = "session %d: %r" % (self.id, {'user_id': self.user_id,
                                               'user_data': self.user_data,
                                               'exclusive': self.exclusive})
        if self.message:
            s += " (%s)" % self.message
        return s

    @property
    def perms(self):
        return {p: 1 for p in get_user_perms(self.user_id)} if self.logged_in else {}

    @property
    def groups(self):
        return get_user_groups(self.user_id) if self.logged_in else {}

    @property
    def host_id(self):
        if self.user_id is None:
            return None
        for h in self.state.db.host.values():
            if h['user_id'] == self.user_id:
                return h['id']
        return None

    def validate(self):
        if self.lockerror:
            raise koji.AuthLockError(self.lockerror)
        return True

    def getPerms(self):
        if not self.logged_in:
            return []
        return list(self.perms.keys())

    def hasPerm(self, name):
        if not self.logged_in:
            return False
        return name in self.perms

    def assertPerm(self, name):
        if not self.hasPerm(name) and not self.hasPerm('admin'):
            msg = "%s permission required" % name
            if self.logged_in:
                msg += ' (logged in as %s)' % self.user_data['name']
            else:
                msg += ' (user not logged in)'
            raise koji.ActionNotAllowed(msg)

    def assertLogin(self):
        if not self.logged_in:
            raise koji.ActionNotAllowed("you must be logged in for this operation")

    def hasGroup(self, group_id):
        return self.logged_in and group_id in self.groups

    def isUser(self, user_id):
        return self.logged_in and (self.user_id == user_id or self.hasGroup(user_id))

    def assertUser(self, user_id):
        if not self.isUser(user_id) and not self.hasPerm('admin'):
            raise koji.ActionNotAllowed("not owner")

    def getHostId(self):
        return self.host_id

    def getUserId(self, username):
        u = get_user(username)
        return u['id'] if u else None

    # -- calls that create/close sessions
    def login(self, user, password, opts=None, renew=False, exclusive=False):
        if not isinstance(password, str) or len(password) == 0:
            raise koji.AuthError('invalid username or password')
        if self.logged_in:
            raise koji.AuthError("Already logged in")
        for u in self.state.db.users.values():
            if u['name'] == user and u['password'] == password:
                if u['status'] != koji.USER_STATUS['NORMAL']:
                    raise koji.AuthError('logins by %s are not allowed' % u['name'])
                return self.state.new_session(u['id'], exclusive=bool(exclusive),
                                              authtype=koji.AUTHTYPES['NORMAL'])
        raise koji.AuthError('invalid username or password')

    def logout(self, session_id=None):
        if not self.logged_in:
            raise koji.AuthError("Not logged in")
        ses_id = self.id
        if session_id:
            row = self.state.db.sessions.get(session_id)
            if not self.hasPerm('admin') and (not row or row['user_id'] != self.user_id):
                raise koji.ActionNotAllowed('only admins or owner may logout other session')
            ses_id = session_id
        for row in self.state.db.sessions.values():
            if row['id'] == ses_id or row['master'] == ses_id:
                row.update(expired=True, exclusive=None, closed=True)
        if not session_id:
            self.logged_in = False

    def logoutChild(self, session_id):
        if not self.logged_in:
            raise koji.AuthError("Not logged in")
        row = self.state.db.sessions.get(session_id)
        if row and row['master'] == self.id:
            row.update(expired=True, exclusive=None, closed=True)

    def subsession(self):
        if not self.logged_in:
            raise koji.AuthError("Not logged in")
        master = self.master if self.master is not None else self.id
        return self.state.new_session(self.user_id, master=master, authtype=self.authtype)

    def makeExclusive(self, force=False):
        if self.master is not None:
            raise koji.GenericError("subsessions cannot become exclusive")
        if self.exclusive:
            raise koji.GenericError("session is already exclusive")
        for row in self.state.db.sessions.values():
            if (row['user_id'] == self.user_id and not row['closed'] and row['exclusive']
                    and row['id'] != self.id):
                if force:
                    row.update(expired=True, exclusive=None, closed=True)
                else:
                    raise koji.AuthLockError("Cannot get exclusive session")
        self.state.db.sessions[self.id]['exclusive'] = True
        self.exclusive = True

    def makeShared(self):
        self.state.db.sessions[self.id]['exclusive'] = None
        self.exclusive = False


def login(*args, **opts):
    """Create a login session with plain user/password credentials."""
    return context.session.login(*args, **opts)


def logout(session_id=None):
    """expire a login session"""
    return context.session.logout(session_id)


def subsession():
    """Create a subsession"""
    return context.session.subsession()


def logoutChild(session_id):
    return context.session.logoutChild(session_id)


def exclusiveSession(*args, **opts):
    """Make this session exclusive"""
    return context.session.makeExclusive(*args, **opts)


def sharedSession():
    """Drop out of exclusive mode"""
    return context.session.makeShared()


AUTH_FUNCTIONS = {f.__name__: f for f in (login, logout, subsession, logoutChild,
                                          exclusiveSession, sharedSession)}


def hub_opts(state) -> dict:
    """The subset of hub.conf options hub code reads, with the real defaults."""
    return {'KojiDir': state.topdir, 'MissingPolicyOk': True, 'DisableURLSessions': False,
            'CheckClientIP': False, 'KojiDebug': False, 'VerbosePolicy': False,
            'MaxNameLengthInternal': 256, 'LockOut': False, 'ServerOffline': False,
            'RPMDefaultChecksums': 'md5 sha256', 'MaxRequestLength': 4194304,
            'Plugins': ' '.join(getattr(m, '__name__', '') for m in state.policy_modules),
            'policy': dict(state.policy_text)}
