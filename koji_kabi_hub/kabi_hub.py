"""Koji hub plugin: kernel post-build hook, ``kabi.*`` calls and the ``kabi_compatible`` test.

Koji glue only.  Enable with ``Plugins = kabi_hub`` in ``hub.conf``; settings in
``/etc/koji-hub/plugins/kabi.conf`` (``KOJI_KABI_HUB_CONFIG`` overrides the path).

A hub plugin that raises at import takes the whole hub offline, so nothing here may:
a missing or broken config (or core library) disables the plugin with one log line, the
hook then does nothing, the calls answer with a clear error and the policy test returns
its default.
"""

import collections
import contextlib
import json
import logging
import os
import sys
import threading

import koji
import koji.policy
import koji.tasks
import kojihub
from koji.context import context
from koji.plugin import callback, export_in, ignore_error
from kojihub.db import (
    InsertProcessor,
    QueryProcessor,
    UpdateProcessor,
    _dml,
    _singleValue,
    db_lock,
)

logger = logging.getLogger("koji.plugin.kabi")
CONFIG_FILE = os.environ.get("KOJI_KABI_HUB_CONFIG", "/etc/koji-hub/plugins/kabi.conf")
SCHEMA_FILE = "/usr/share/koji-kabi/kabi-schema.sql"
UPGRADE_FILE = "/usr/share/koji-kabi/kabi-schema-upgrade.sql"
SETTINGS = None
RULES_FILE = None
DISABLED = None

try:
    from koji_kabi.analysis.delta import delta_kernels
    from koji_kabi.analysis.outcome import BUILD_FAILED, CANCELED, OUTCOMES, mismatch_summary
    from koji_kabi.analysis.verdict import verdicts
    from koji_kabi.errors import KabiError, fault_message
    from koji_kabi.koji import messages
    from koji_kabi.koji.checks import (
        check_kernel_build,
        check_kmod_build,
        get_build,
        kernel_of,
        kmod_builds_in,
        kmods_of,
        previous_kernel,
        reference_kernel,
        stablelists_of,
        watch_of,
    )
    from koji_kabi.koji.rules import STRATEGIES, RulesFile, rules_data
    from koji_kabi.koji.settings import HubSettings, load_settings
    from koji_kabi.koji.views import deps_from_header
    from koji_kabi.readers.rpmheader import read_rpm_file
    from koji_kabi.report.jsondoc import document

    SETTINGS = load_settings(HubSettings, CONFIG_FILE)
    RULES_FILE = RulesFile(SETTINGS.rules, on_problem=lambda problem: logger.error(
        "kabi: rules file changed but cannot be used (the previous rules stay): %s",
        problem))
except Exception as exc:  # never take the hub down: disable, say why once
    DISABLED = str(exc) or exc.__class__.__name__
    logger.error("kabi hub plugin disabled: %s", DISABLED)

COMPLETE = koji.BUILD_STATES["COMPLETE"]
_OPEN = (koji.TASK_STATES["FREE"], koji.TASK_STATES["OPEN"], koji.TASK_STATES["ASSIGNED"])
_RETRYABLE = (koji.TASK_STATES["CANCELED"], koji.TASK_STATES["FAILED"])

# Task signatures, as Koji's kiwi/dud hub plugins declare theirs: without them every
# make_task logs "kabiCheck is not a standard koji task" (channel/priority policy data).
koji.tasks.LEGACY_SIGNATURES.setdefault("kabiCheck", [[["build_id", "opts"], None, None,
                                                       (None,)]])
koji.tasks.LEGACY_SIGNATURES.setdefault("kabiCheckArch", [[["job"], None, None, None]])
koji.tasks.LEGACY_SIGNATURES.setdefault("kabiJudge", [[["rebuild_id"], None, None, None]])


def _assert_enabled():
    if DISABLED:
        raise koji.GenericError("kabi hub plugin is disabled: %s" % DISABLED)


def _rules():
    """The rules in force: the rules file as it is now (re-read when it changes)."""
    return RULES_FILE.current()


def _arg(value, kinds, what, none_allowed=False):
    """A call argument of the expected type, else a ParameterError that says so."""
    return kojihub.convert_value(value, cast=kinds, check_only=True, none_allowed=none_allowed,
                                 message="%s must be %s, not %r" % (what[0], what[1], value))


def _ref(value, name="build"):
    return _arg(value, (int, str), (name, "a build ID or an N-V-R"))


class _Lru:
    """A small thread-safe LRU: hub processes serve many threads and live long."""

    def __init__(self, size):
        self.size = size
        self.data = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key, value):
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_HEADERS = _Lru(SETTINGS.cache_entries if SETTINGS else 1)
_KERNELS = _Lru(16)


class HubView:
    """The core's KojiView answered from the hub's own tables and storage.

    Deps come straight from the RPM headers under Koji's topdir (header only, never the
    payload), parsed once per RPM and kept in a per-process LRU.
    """

    cache = None  # no per-RPM parse cache on the hub: the header LRU serves it

    def build(self, ref):
        return kojihub.get_build(ref)

    def rpms(self, build_ids):
        return [kojihub.list_rpms(buildID=b) for b in build_ids]

    def build_tags(self, build_id):
        return [t["name"] for t in kojihub.list_tags(build=build_id)]

    def latest(self, tags, package=None, event=None):
        out = []
        for tag in tags:
            info = kojihub.get_tag(tag, strict=True, event=event)
            out.append(kojihub.readTaggedBuilds(info["id"], event=event, inherit=True,
                                                latest=True, package=package))
        return out

    @staticmethod
    def path(build, rpm):
        """Where Koji stores an RPM (the unsigned copy, as getRPMDeps reads it)."""
        return os.path.join(koji.pathinfo.build(build), koji.pathinfo.rpm(rpm))

    def deps(self, rpms):
        out = []
        for build, rpm in rpms:
            key = (rpm["id"], rpm.get("payloadhash"))
            hdr = _HEADERS.get(key)
            if hdr is None:
                hdr = read_rpm_file(self.path(build, rpm))
                _HEADERS.put(key, hdr)
            out.append(deps_from_header(hdr))
        return out


@contextlib.contextmanager
def _isolated(what):
    """A callback's own database work, in a savepoint: if it fails (a lock, a table an
    admin has not upgraded), that work is undone and logged, and the Koji call it rides
    in (completing a build, closing a task) goes on unharmed."""
    done = []
    _dml("SAVEPOINT kabi_callback", {})
    try:
        yield done
    except Exception:
        _dml("ROLLBACK TO SAVEPOINT kabi_callback", {})
        logger.exception("kabi: %s failed (undone; the Koji call goes on)", what)
    else:
        _dml("RELEASE SAVEPOINT kabi_callback", {})


def _call(func, *args, **kwargs):
    """Run a core function; its one-line errors become koji.GenericError for the caller."""
    _assert_enabled()
    try:
        return func(*args, **kwargs)
    except KabiError as exc:
        raise koji.GenericError(str(exc)) from None


# --------------------------------------------------------------------------- the hook

def _schedule(build, reason):
    """Create the kabiCheck task inside the current transaction (rolled back with it)."""
    owner = SETTINGS.owner or build.get("owner_id")
    if not owner:
        owner = kojihub.get_build(build["id"], strict=True)["owner_id"]
    task_id = kojihub.make_task("kabiCheck", [build["id"], {}], channel=SETTINGS.channel,
                                priority=SETTINGS.priority, owner=owner)
    logger.info("kabi: %s %s -> kabiCheck task %s", reason, build.get("nvr", build["id"]),
                task_id)
    return task_id


@callback("postBuildStateChange")
@ignore_error
def kabi_build_complete(cbtype, *args, **kws):
    """A kernel build became COMPLETE (build task, ``koji import``, CG import), or the
    build of a rebuild did (it is judged)."""
    if DISABLED or kws.get("attribute") != "state" or kws.get("new") != COMPLETE:
        return
    info = kws.get("info") or {}
    if info.get("task_id"):
        with _isolated("judging the build of a rebuild") as done:
            claim = _claim_of_task(info["task_id"])
            if claim is not None:
                _judge_later(claim, info["id"])
                done.append(True)
        if done:
            return
    name = info.get("package_name") or info.get("name")
    if name not in _rules().kernel_packages:
        return
    if info.get("draft") and not SETTINGS.check_drafts:
        logger.info("kabi: draft build %s skipped until promoted", info.get("nvr"))
        return
    try:
        _schedule(info, "kernel build complete:")
    except Exception:
        logger.exception("kabi: cannot schedule kabiCheck for build %s", info.get("id"))


@callback("postBuildPromote")
@ignore_error
def kabi_build_promoted(cbtype, *args, **kws):
    """A draft kernel build was promoted: check it now (drafts are skipped at completion)."""
    build = kws.get("build") or {}
    if DISABLED or SETTINGS.check_drafts or build.get("name") not in _rules().kernel_packages:
        return
    try:
        _schedule(build, "kernel draft promoted:")
    except Exception:
        logger.exception("kabi: cannot schedule kabiCheck for build %s", build.get("id"))


# --------------------------------------------------------------------------- messages
#
# Published through Koji's protonmsg hub plugin when this hub loads it: queued with its
# own messages in the request's transaction and sent after commit (dropped on rollback).

def _protonmsg():
    return sys.modules.get("_koji_plugin__protonmsg")  # koji.plugin's module name


def _queue(message):
    """Send ``message`` after this request commits, if protonmsg is loaded."""
    proton = _protonmsg()
    if proton is not None:
        proton.queue_msg(message.topic, dict(message.props), dict(message.body))


def _queue_outside(message):
    """A denial rolls its request back, and its messages with it: store this one in
    protonmsg's database queue on a connection of its own (committed now), from where
    protonmsg sends it with the next messages it sends."""
    proton = _protonmsg()
    if proton is None:
        return
    conf = proton.CONFIG or koji.read_config_files([(proton.CONFIG_FILE, True)])
    if not conf.getboolean("queue", "enabled", fallback=False):
        logger.warning("kabi: %s not published: protonmsg's [queue] enabled is off",
                       message.topic)
        return
    import psycopg2  # the hub's own database driver

    opts = kojihub.db.getDBopts() or {}
    cnx = psycopg2.connect(dsn=opts["dsn"]) if "dsn" in opts else psycopg2.connect(**opts)
    try:
        with cnx, cnx.cursor() as cursor:
            cursor.execute("INSERT INTO proton_queue (address, props, body) "
                           "VALUES (%s, %s, %s)", (message.topic, json.dumps(dict(
                               message.props)), json.dumps(dict(message.body))))
    finally:
        cnx.close()


def _task_fault(task_id):
    """Why a failed task failed, as one line (its fault may carry a whole traceback)."""
    fault = kojihub.Task(task_id).getResult(raise_fault=False)
    text = fault.get("faultString", "") if isinstance(fault, dict) else str(fault)
    return fault_message(koji.GenericError(text))


@callback("postTaskStateChange")
@ignore_error
def kabi_check_finished(cbtype, *args, **kws):
    """A kabiCheck task closed or failed: say what it found."""
    info = kws.get("info") or {}
    if (DISABLED or kws.get("attribute") != "state" or info.get("method") != "kabiCheck"
            or kws.get("new") not in ("CLOSED", "FAILED") or _protonmsg() is None):
        return
    summary, error = info.get("result") or {}, None
    if kws["new"] == "FAILED":
        summary, error = None, _task_fault(info["id"]) or "failed"
    kernel = (summary or {}).get("kernel") or kojihub.get_build(
        (info.get("request") or [None])[0], strict=True)["nvr"]
    _queue(messages.check_finished(info["id"], kernel, summary, error))


# --------------------------------------------------------------------------- calls

def _arches(arches):
    if arches is None:
        return None
    if isinstance(arches, str):
        return [arches]
    _arg(arches, (list, tuple), ("arches", "an arch or a list of arches"))
    for arch in arches:
        _arg(arch, str, ("arches", "an arch or a list of arches"))
    return list(arches)


@export_in("kabi")
def check(build, kernel=None, tag=None, arches=None):
    """kABI verdict of a kmod build against a kernel, or a kernel build's delta + kmods.

    ``kernel``: kernel build to check a kmod against (default: the latest kernel in
    ``tag``, or in the kernel tag the rules pair with ``tag``).  For a kernel build,
    ``kernel`` names the previous kernel and ``tag`` a watched kernel tag.
    """
    _assert_enabled()
    _ref(build)
    if kernel is not None:
        _ref(kernel, "kernel")
    _arg(tag, (int, str), ("tag", "a tag name or ID"), none_allowed=True)
    arches = _arches(arches)
    rules = _rules()
    view = HubView()
    binfo = _call(get_build, view, build)
    if binfo["name"] in rules.kernel_packages:
        watch = watch_of(view, rules, binfo, tag)
        if tag and watch is None:
            raise koji.GenericError("%s: not a watched kernel tag in the rules (%s)"
                                    % (tag, rules.source))
        if watch is None and rules.watches_for(binfo["name"]):
            raise koji.GenericError("%s is in none of the watched kernel tags (%s): give tag="
                                    % (binfo["nvr"], ", ".join(
                                        w.kernel_tag for w in rules.watches_for(binfo["name"]))))
        previous = _call(get_build, view, kernel) if kernel else None
        if previous is None and watch is not None:
            previous = previous_kernel(view, binfo, watch.kernel_tag)
        kmod_tags = list(watch.kmod_tags) if watch is not None else []
        kmod_builds = _bounded(kmod_builds_in(view, kmod_tags), kmod_tags, binfo)
        lists = _call(stablelists_of, view, binfo, view.path)
        result = _call(check_kernel_build, view, binfo, previous, kmod_builds, arches, lists,
                       kmod_tags)
        return document("kernel-check", result, rebuilds=_kernel_rebuilds(binfo))
    if kernel:
        kbuild = _call(get_build, view, kernel)
    elif tag:
        kbuild = _call(reference_kernel, view, rules.kernel_packages, tag, rules)
    elif not _call(kmods_of, view, [binfo], arches):
        raise koji.GenericError("%s: not a kmod build: no package with kernel(symbol) = CRC "
                                "requires" % binfo["nvr"])
    else:
        raise koji.GenericError("kabi.check: give kernel= or tag= for a kmod build")
    lists = _call(stablelists_of, view, kbuild, view.path)
    return document("kmod-check", _call(check_kmod_build, view, binfo, kbuild, arches, lists))


def _bounded(kmod_builds, tags, kernel_build):
    """Kmod builds a hub call may check in its request thread: a whole tag of them is a
    task's work, so over ``call_max_kmod_builds`` the call says how to run it as one."""
    limit = SETTINGS.call_max_kmod_builds
    if len(kmod_builds) > limit:
        raise koji.GenericError(
            "%d kmod builds in %s: over call_max_kmod_builds=%d for a hub call; check them "
            "in a task: koji kabi-rebuild --dry-run %s"
            % (len(kmod_builds), ", ".join(tags), limit, kernel_build["nvr"]))
    return kmod_builds


def _kernel_rebuilds(kernel_build):
    """The rebuilds made for a kernel (none on a hub whose claims table is missing)."""
    try:
        return rebuilds(kernel=kernel_build["id"])
    except Exception as exc:  # the check's answer stands without them; say why once
        logger.warning("kabi.check: rebuilds of %s not listed: %s", kernel_build["nvr"],
                       fault_message(exc))
        return []


@export_in("kabi")
def delta(old, new, arches=None):
    """The symbol delta of two kernel builds, per arch and flavour."""
    _assert_enabled()
    _ref(old, "old")
    _ref(new, "new")
    arches = _arches(arches)
    view = HubView()
    old_b, new_b = _call(get_build, view, old), _call(get_build, view, new)
    new_k = _call(kernel_of, view, new_b, arches)
    old_k = _call(kernel_of, view, old_b, {k.arch for k in new_k.tables})
    lists = _call(stablelists_of, view, new_b, view.path)
    return document("delta", _call(delta_kernels, old_k, new_k, lists))


@export_in("kabi")
def affected(kernel, tags=None, against=None, arches=None):
    """Kmod builds in ``tags`` (default: the rules' kmod tags for this kernel) and their
    verdicts against ``kernel``; with ``against``, also the delta to that kernel."""
    _assert_enabled()
    _ref(kernel, "kernel")
    if against is not None:
        _ref(against, "against")
    if isinstance(tags, str):
        tags = [tags]
    elif tags is not None:
        _arg(tags, (list, tuple), ("tags", "a tag name or a list of them"))
        for t in tags:
            _arg(t, str, ("tags", "a tag name or a list of them"))
    arches = _arches(arches)
    view = HubView()
    kbuild = _call(get_build, view, kernel)
    if tags is None:
        watch = watch_of(view, _rules(), kbuild)
        tags = list(watch.kmod_tags) if watch else []
    builds = _bounded(kmod_builds_in(view, list(tags)), list(tags), kbuild)
    previous = _call(get_build, view, against) if against else None
    lists = _call(stablelists_of, view, kbuild, view.path)
    return document("kernel-check", _call(check_kernel_build, view, kbuild, previous, builds,
                                          arches, lists, list(tags)))


@export_in("kabi")
def rules():
    """The rules in force on this hub, for builders and clients (no copies elsewhere).

    ``{"source": path, "rules": mapping, "problem": None or one line}``: ``problem`` says
    why the file as it is on disk now is not used (the previous rules stay in force).
    """
    _assert_enabled()
    current = _rules()
    return {"source": current.source, "rules": rules_data(current),
            "problem": RULES_FILE.problem}


@export_in("kabi")
def rebuild(build, dry_run=False, against=None, tag=None):
    """Schedule a kabiCheck task for a kernel build (needs the configured permission)."""
    _assert_enabled()
    context.session.assertLogin()
    perm = SETTINGS.rebuild_permission
    if not (context.session.hasPerm(perm) or context.session.hasPerm("admin")):
        raise koji.ActionNotAllowed("kabi.rebuild needs the %s permission" % perm)
    _ref(build)
    if against is not None:
        _ref(against, "against")
    _arg(tag, (int, str), ("tag", "a tag name or ID"), none_allowed=True)
    binfo = kojihub.get_build(build, strict=True)
    if binfo["name"] not in _rules().kernel_packages:
        raise koji.GenericError("%s is not a kernel build (rules: kernel_packages)"
                                % binfo["nvr"])
    if binfo["state"] != COMPLETE:
        raise koji.GenericError("%s is not COMPLETE" % binfo["nvr"])
    opts = {"dry_run": bool(dry_run)}
    if against:
        opts["against"] = kojihub.get_build(against, strict=True)["id"]
    if tag:
        opts["tag"] = kojihub.get_tag(tag, strict=True)["name"]
    return kojihub.make_task("kabiCheck", [binfo["id"], opts], channel=SETTINGS.channel,
                             priority=SETTINGS.priority)


# --------------------------------------------------------------------------- claims
#
# A rebuild is claimed under its kmod package and kABI fingerprint (``claim_key``) in the
# hub's database (table kabi_rebuild, kabi-schema.sql), in the same transaction as the
# build subtask it makes: a kojid crash can never separate the two, and the unique index
# on live claims makes a second claim of the same key impossible on any number of hubs.

_TABLE_MISSING = []  # said once per hub process


def _table_state():
    """``ok``, ``old`` (applied before the outcome columns) or ``missing`` (asked each
    time: two catalogue lookups, and an admin may apply the SQL while the hub runs)."""
    if not _singleValue("SELECT to_regclass('kabi_rebuild') IS NOT NULL", {}):
        return "missing"
    if not _singleValue("SELECT count(*) FROM information_schema.columns WHERE "
                        "table_name = 'kabi_rebuild' AND column_name = 'outcome'", {}):
        return "old"
    return "ok"


def _assert_table():
    state = _table_state()
    if state == "ok":
        return
    if state == "missing":
        message = ("the kabi_rebuild table is missing from the hub's database: apply %s "
                   "once (psql koji koji < kabi-schema.sql)" % SCHEMA_FILE)
    else:
        message = ("the kabi_rebuild table is from an older koji-kabi: apply %s "
                   "(psql koji koji < kabi-schema-upgrade.sql)" % UPGRADE_FILE)
    if not _TABLE_MISSING:
        logger.error("kabi: %s", message)
        _TABLE_MISSING.append(True)
    raise koji.GenericError(message)


_CLAIM_COLUMNS = {
    "kabi_rebuild.id": "id", "kabi_rebuild.package": "package", "kabi_rebuild.nvr": "nvr",
    "kabi_rebuild.kernel": "kernel", "kabi_rebuild.fingerprint": "fingerprint",
    "kabi_rebuild.strategy": "strategy", "kabi_rebuild.check_task_id": "check_task_id",
    "kabi_rebuild.task_id": "task_id", "task.state": "state",
    "kabi_rebuild.side_tag_id": "side_tag_id", "kabi_rebuild.judge_task_id": "judge_task_id",
    "kabi_rebuild.result_build_id": "result_build_id", "kabi_rebuild.outcome": "outcome",
    "kabi_rebuild.outcome_detail": "detail", "kabi_rebuild.active": "active",
    "kabi_rebuild.create_ts": "created_ts", "kabi_rebuild.outcome_ts": "outcome_ts",
}


def _claims(clauses, values, opts=None):
    query = QueryProcessor(tables=["kabi_rebuild"], columns=list(_CLAIM_COLUMNS),
                           aliases=list(_CLAIM_COLUMNS.values()),
                           joins=["task ON task.id = kabi_rebuild.task_id"],
                           clauses=clauses, values=values, opts=opts)
    return query.execute()


def _live_claim(key):
    """The live claim of a key with its rebuild's state, or None."""
    found = _claims(["claim_key = %(key)s", "kabi_rebuild.active"], {"key": key})
    return found[0] if found else None


def _claim_of_task(task_id):
    """The claim whose rebuild is this build task, or None (most tasks)."""
    if not task_id or _table_state() != "ok":
        return None
    found = _claims(["kabi_rebuild.task_id = %(task_id)i"], {"task_id": task_id})
    return found[0] if found else None


def _in_flight():
    query = QueryProcessor(tables=["kabi_rebuild"], columns=["count(*)"], aliases=["n"],
                           joins=["task ON task.id = kabi_rebuild.task_id"],
                           clauses=["kabi_rebuild.active", "task.state IN %(open)s"],
                           values={"open": _OPEN})
    return query.singleValue()


_REBUILD_FIELDS = {"key": str, "package": str, "fingerprint": str, "nvr": str, "kernel": str,
                   "label": str, "arglist": list, "channel": str, "priority": int}
_FAILED = koji.TASK_STATES["FAILED"]


@export_in("kabi")
def submitRebuilds(task_id, rebuilds, max_in_flight=None):
    """Claim rebuilds and create their ``build`` subtasks, in one transaction (host only).

    ``rebuilds``: ``[{key, package, fingerprint, nvr, kernel, label, arglist, channel,
    priority, strategy, macro}]``.  Each comes back as ``{key, status, task_id,
    check_task_id, detail}``: ``submitted`` (by this kabiCheck task, now or in an earlier
    run of the same task id), ``duplicate`` (claimed by another check whose rebuild is
    queued, running or done), ``failed before`` (its rebuild for the same kmod build and
    kernel failed: porting is needed, a new commit or kernel retries), ``deferred``
    (``max_in_flight`` rebuilds are open) or ``not submitted`` (``detail`` says why: a
    side tag refused, say).  A cancelled rebuild, or one that failed for another kmod
    build or kernel, may be claimed again.  ``strategy`` ``macro`` builds in a side tag
    of the target's build tag, made through Koji's sidetag plugin with the ``macro``
    mapping as its RPM macros.
    """
    _assert_enabled()
    task_id = _arg(task_id, int, ("task_id", "a task ID"))
    _arg(rebuilds, (list, tuple), ("rebuilds", "a list of rebuilds"))
    _arg(max_in_flight, int, ("max_in_flight", "a number"), none_allowed=True)
    for r in rebuilds:
        _arg(r, dict, ("each rebuild", "a mapping"))
        for name, kind in _REBUILD_FIELDS.items():
            _arg(r.get(name), kind, ("rebuild " + name, kind.__name__))
        if len(r["key"]) != 64 or not r["key"].isalnum():
            raise koji.ParameterError("rebuild key must be a sha256 hex digest: %r" % r["key"])
        if r.get("strategy", "buildroot") not in STRATEGIES:
            raise koji.ParameterError("rebuild strategy must be one of %s: %r"
                                      % (", ".join(STRATEGIES), r.get("strategy")))
        if r.get("strategy") == "macro":
            _arg(r.get("macro"), dict, ("rebuild macro", "a mapping of RPM macros"))
    host = kojihub.Host()
    host.verify()
    task = kojihub.Task(task_id)
    task.assertHost(host.id)
    _assert_table()
    db_lock("kabi-rebuild", wait=True)  # one claimer at a time, whatever the hub
    mine = {c["label"]: c["id"] for c in task.getChildren()}
    in_flight = _in_flight()
    out = []
    for r in rebuilds:
        answer = {"key": r["key"], "task_id": mine.get(r["label"]), "check_task_id": task_id}
        live = _live_claim(r["key"])
        if answer["task_id"]:  # this task made it before (kojid died and it runs again)
            answer["status"] = "submitted"
        elif (live and live["state"] == _FAILED and live["nvr"] == r["nvr"]
              and live["kernel"] == r["kernel"]):
            answer.update(status="failed before", task_id=live["task_id"],
                          check_task_id=live["check_task_id"])
        elif live and live["state"] not in _RETRYABLE:
            answer.update(status="duplicate", task_id=live["task_id"],
                          check_task_id=live["check_task_id"])
        elif max_in_flight is not None and in_flight >= max_in_flight:
            answer["status"] = "deferred"
        else:
            _dml("SAVEPOINT kabi_rebuild", {})  # a refused side tag undoes this one only
            try:
                child, target = _submit_one(task_id, r, live)
            except koji.GenericError as exc:
                _dml("ROLLBACK TO SAVEPOINT kabi_rebuild", {})
                answer.update(status="not submitted", detail=fault_message(exc))
                logger.warning("kabi: rebuild of %s not submitted: %s", r["nvr"],
                               answer["detail"])
                out.append(answer)
                continue
            _dml("RELEASE SAVEPOINT kabi_rebuild", {})
            in_flight += 1
            answer.update(status="submitted", task_id=child)
            _queue(messages.rebuild_submitted(task_id, child, r["package"], r["nvr"],
                                              r["kernel"], r["fingerprint"],
                                              str(r["arglist"][0]), target))
        out.append(answer)
    return {"rebuilds": out, "in_flight": in_flight}


def _submit_one(check_task_id, r, live):
    """Claim one rebuild and make its build task (and side tag): (task id, target)."""
    if live:  # its rebuild was cancelled, or failed for another build or kernel
        update = UpdateProcessor("kabi_rebuild", clauses=["id = %(id)i"], values=live)
        update.set(active=False)
        update.execute()
    arglist, side_tag = list(r["arglist"]), None
    if r.get("strategy") == "macro":
        side_tag = _make_side_tag(arglist[1], r["macro"])
        arglist[1] = side_tag["name"]
    child = kojihub.make_task("build", arglist, parent=check_task_id, label=r["label"],
                              channel=r["channel"], priority=r["priority"])
    insert = InsertProcessor("kabi_rebuild")
    insert.set(claim_key=r["key"], package=r["package"], fingerprint=r["fingerprint"],
               nvr=r["nvr"], kernel=r["kernel"], check_task_id=check_task_id, task_id=child,
               strategy=r.get("strategy", "buildroot"),
               side_tag_id=side_tag["id"] if side_tag else None)
    insert.execute()
    return child, str(arglist[1])


# --------------------------------------------------------------------------- side tags
#
# A ``macro`` rebuild builds in a side tag of its target's build tag, made through Koji's
# sidetag hub plugin as the builder host's user (policy ``sidetag``), with the kernel's
# version-release as an RPM macro (allowed by the build tag's sidetag_rpm_macros_allowed).
# It is removed when the rebuild's task ends.

def _sidetag_plugin():
    plugin = sys.modules.get("_koji_plugin__sidetag_hub")
    if plugin is None:
        raise koji.GenericError("the macro strategy needs Koji's sidetag hub plugin "
                                "(hub.conf: Plugins = ... sidetag_hub)")
    return plugin


def _make_side_tag(target_name, macros):
    plugin = _sidetag_plugin()
    target = kojihub.get_build_target(target_name, strict=True)
    made = plugin.createSideTag(target["build_tag"])
    plugin.editSideTag(made["id"], rpm_macros=macros)
    logger.info("kabi: side tag %s of %s with %s", made["name"], target["build_tag_name"],
                ", ".join("%%{%s} %s" % kv for kv in sorted(macros.items())))
    return made


def _remove_side_tag(claim):
    if not claim.get("side_tag_id"):
        return
    tag = kojihub.get_tag(claim["side_tag_id"])
    if tag is None:
        return  # removed already (by hand, or sidetag's remove_empty)
    try:
        _sidetag_plugin()._remove_sidetag(tag)
        logger.info("kabi: side tag %s removed (rebuild task %s ended)", tag["name"],
                    claim["task_id"])
    except koji.GenericError as exc:
        logger.warning("kabi: side tag %s not removed: %s", tag["name"], fault_message(exc))


# --------------------------------------------------------------------------- outcomes
#
# When a rebuild ends it is judged against the kernel it was made for.  A build that
# completed (build state COMPLETE) or a scratch task that closed gets a kabiJudge task
# (reading RPMs is a builder's work), made in the same transaction; a task that failed or
# was cancelled is recorded at once.  The first outcome stays.

def _judge_later(claim, build_id=None):
    if claim["judge_task_id"] or claim["outcome"]:
        return
    owner = SETTINGS.owner or kojihub.Task(claim["check_task_id"]).getOwner()
    judge = kojihub.make_task("kabiJudge", [claim["id"]], channel=SETTINGS.channel,
                              priority=SETTINGS.priority, owner=owner)
    update = UpdateProcessor("kabi_rebuild", clauses=["id = %(id)i"], values=claim)
    update.set(judge_task_id=judge, result_build_id=build_id)
    update.execute()
    logger.info("kabi: rebuild task %s of %s ended -> kabiJudge task %s", claim["task_id"],
                claim["nvr"], judge)


def _record_outcome(claim, outcome, detail, build_nvr=None):
    update = UpdateProcessor("kabi_rebuild", clauses=["id = %(id)i", "outcome IS NULL"],
                             values=claim, rawdata={"outcome_ts": "NOW()"})
    update.set(outcome=outcome, outcome_detail=detail)
    if not update.execute():
        return  # judged before: the first outcome stays, and was published
    logger.info("kabi: rebuild task %s of %s for %s: %s", claim["task_id"], claim["nvr"],
                claim["kernel"], outcome)
    _queue(messages.rebuild_finished(claim["check_task_id"], claim["task_id"],
                                     claim["package"], claim["nvr"], claim["kernel"], outcome,
                                     detail, build_nvr))


@callback("postTaskStateChange")
@ignore_error
def kabi_rebuild_ended(cbtype, *args, **kws):
    """A rebuild's build task ended: judge it (or record why not), remove its side tag."""
    info = kws.get("info") or {}
    new = kws.get("new")
    if (DISABLED or kws.get("attribute") != "state" or info.get("method") != "build"
            or not info.get("parent") or new not in ("CLOSED", "FAILED", "CANCELED")):
        return
    with _isolated("recording the end of rebuild task %s" % info["id"]):
        _rebuild_ended(info, new)


def _rebuild_ended(info, new):
    claim = _claim_of_task(info["id"])
    if claim is None:
        return
    _remove_side_tag(claim)
    if new == "CLOSED":
        _judge_later(claim)  # a scratch build (a real one was judged at COMPLETE)
    elif not claim["judge_task_id"] and not claim["outcome"]:
        if new == "CANCELED":
            _record_outcome(claim, CANCELED, "build task %s was cancelled" % info["id"])
            return
        why = _task_fault(info["id"])[:300] or "no reason given"
        _record_outcome(claim, BUILD_FAILED, "build task %s failed: %s (its logs: "
                        "koji taskinfo -v %s)" % (info["id"], why, info["id"]))


@export_in("kabi")
def judgeRebuild(task_id, outcome, detail, build=None):
    """Record what a kabiJudge task found (host only); the first outcome stays."""
    _assert_enabled()
    task_id = _arg(task_id, int, ("task_id", "a task ID"))
    _arg(outcome, str, ("outcome", "a string"))
    _arg(detail, str, ("detail", "a string"))
    if outcome not in OUTCOMES:
        raise koji.ParameterError("outcome must be one of %s" % ", ".join(OUTCOMES))
    host = kojihub.Host()
    host.verify()
    kojihub.Task(task_id).assertHost(host.id)
    found = _claims(["kabi_rebuild.judge_task_id = %(task_id)i"], {"task_id": task_id})
    if not found:
        raise koji.GenericError("task %s judges no rebuild" % task_id)
    _record_outcome(found[0], outcome, detail, build)
    return found[0]["id"]


@export_in("kabi")
def rebuilds(kernel=None, package=None, rebuild_id=None, limit=200):
    """Rebuilds koji-kabi submitted, newest first, with their state and outcome."""
    _assert_enabled()
    _arg(kernel, (str, int), ("kernel", "a kernel build"), none_allowed=True)
    _arg(package, str, ("package", "a package name"), none_allowed=True)
    _arg(rebuild_id, int, ("rebuild_id", "a rebuild ID"), none_allowed=True)
    limit = _arg(limit, int, ("limit", "a number"))
    _assert_table()
    clauses, values = [], {}
    if kernel is not None:
        clauses.append("kabi_rebuild.kernel = %(kernel)s")
        values["kernel"] = kojihub.get_build(kernel, strict=True)["nvr"]
    if package is not None:
        clauses.append("kabi_rebuild.package = %(package)s")
        values["package"] = package
    if rebuild_id is not None:
        clauses.append("kabi_rebuild.id = %(rebuild_id)i")
        values["rebuild_id"] = rebuild_id
    rows = _claims(clauses, values, {"order": "-id", "limit": max(1, min(limit, 5000))})
    builds = {}
    for row in rows:
        row["state"] = koji.TASK_STATES[row["state"]]
        for key in ("created_ts", "outcome_ts"):
            row[key] = row[key].timestamp() if row[key] is not None else None
        bid = row["result_build_id"]
        if bid and bid not in builds:
            builds[bid] = kojihub.get_build(bid)
        row["result_build"] = builds[bid]["nvr"] if bid and builds.get(bid) else None
    return rows


# --------------------------------------------------------------------------- policy

def _policy_decide(data, args):
    """True/False when it can tell; None when it cannot (the caller uses the default)."""
    tag = data.get("tag")
    if tag is None:
        return True  # untag: nothing to match
    view = HubView()
    build = kojihub.get_build(data["build"], strict=True)
    rpms = [r for r in kojihub.list_rpms(buildID=build["id"]) if r["arch"] != "src"]
    if len(rpms) > SETTINGS.policy_max_rpms:
        logger.warning("kabi_compatible: %s has %d RPMs (> policy_max_rpms), not checked",
                       build["nvr"], len(rpms))
        return None
    pairs = kmods_of(view, [build])
    if not pairs:
        return True  # not a kmod
    tag_name = kojihub.get_tag(tag, strict=True)["name"]
    rules = _rules()
    if args and kojihub.get_tag(args[0]) is not None:
        kbuild = reference_kernel(view, rules.kernel_packages, args[0], rules)
    elif args:
        kbuild = reference_kernel(view, [args[0]], tag_name, rules)
    else:
        kbuild = reference_kernel(view, rules.kernel_packages, tag_name, rules)
    # keyed on the build's RPM set too: `koji import` adds RPMs to a COMPLETE build
    rpm_set = tuple(sorted(r["id"] for r in view.rpms([kbuild["id"]])[0]))
    kernel = _KERNELS.get((kbuild["id"], rpm_set))
    if kernel is None:
        kernel = kernel_of(view, kbuild)
        _KERNELS.put((kbuild["id"], rpm_set), kernel)
    found = verdicts([m for _b, m in pairs], kernel)
    bad = [v for v in found if not v.compatible]
    for v in bad:
        if v.no_table:
            logger.warning("kabi_compatible: %s has no symbols for the arch of %s",
                           kbuild["nvr"], v.kmod)
        else:
            logger.info("kabi_compatible: %s does not match %s: %d missing, %d CRC "
                        "mismatches", v.kmod, kbuild["nvr"], len(v.missing),
                        len(v.mismatched))
    broken = [v for v in bad if not v.no_table]
    if broken:  # a definite incompatibility outranks what cannot be decided
        _WHY.text = "%s does not match %s: %s; koji kabi-check %s --tag %s shows the symbols" % (
            build["nvr"], kbuild["nvr"], mismatch_summary(broken), build["nvr"], tag_name)
        if data.get("operation") in ("tag", "move"):
            _deny_once(messages.tag_denied(tag_name, build["nvr"], kbuild["nvr"],
                                           data["operation"], _WHY.text, _user(data)))
        return False
    return None if bad else True


_WHY = threading.local()


class KabiRebuildTest(koji.policy.BaseSimpleTest):
    """``kabi_rebuild``: the build task is one koji-kabi submitted (for build_from_srpm:
    ``kabi_rebuild :: allow`` lets SRPM rebuilds through and nothing else)."""

    name = "kabi_rebuild"

    def run(self, data):
        if DISABLED or not data.get("task_id"):
            return False
        try:
            return _claim_of_task(data["task_id"]) is not None
        except Exception:
            logger.exception("kabi_rebuild: failed; returning False")
            return False  # the last denial's reason, per request thread


def _user(data):
    """Who is tagging (the task owner for a tagBuild task), or None."""
    try:
        user = kojihub.policy_get_user(data)
    except Exception:  # no session (a policy run outside a request)
        return None
    return user["name"] if user else None


def _deny_once(message):
    """Publish a denial once per request (the policy may run the test more than once)."""
    said = getattr(context, "kabi_denials", None)
    if said is None:
        said = context.kabi_denials = set()
    key = (message.body["tag"], message.body["build"])
    if key in said:
        return
    said.add(key)
    try:
        _queue_outside(message)
    except Exception:
        logger.exception("kabi: cannot queue %s", message.topic)


class KabiCompatibleTest(koji.policy.BaseSimpleTest):
    """``kabi_compatible [kernel-tag|kernel-package]``: a kmod matches the tag's kernel.

    True for builds that are not kmods; false when any of its packages definitely does not
    load on the reference kernel.  Never raises into the policy engine: when it cannot
    decide (no kernel in the tag, unreadable RPM, plugin disabled) it returns the
    configured ``policy_default`` and logs why.  The reason of a false answer is part of
    the test's text (``str``), which Koji shows in the refusal with ``VerbosePolicy``.
    """

    name = "kabi_compatible"

    def __str__(self):
        why = getattr(_WHY, "text", "")
        return "%s (%s)" % (self.str, why) if why else self.str

    def run(self, data):
        _WHY.text = ""
        default = SETTINGS.policy_default if SETTINGS else True
        if DISABLED:
            logger.warning("kabi_compatible: plugin disabled (%s); returning %s", DISABLED,
                           default)
            return default
        try:
            result = _policy_decide(data, self.str.split()[1:])
        except (KabiError, koji.GenericError) as exc:
            logger.warning("kabi_compatible: cannot decide (%s); returning %s", exc, default)
            _WHY.text = "cannot decide: %s" % fault_message(exc)
            return default
        except Exception:
            logger.exception("kabi_compatible: failed; returning %s", default)
            return default
        return default if result is None else result
