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
import fcntl
import json
import logging
import os
import threading
import time

import koji
import koji.policy
import koji.tasks
import kojihub
from koji.context import context
from koji.plugin import callback, export_in, ignore_error

logger = logging.getLogger("koji.plugin.kabi")
CONFIG_FILE = os.environ.get("KOJI_KABI_HUB_CONFIG", "/etc/koji-hub/plugins/kabi.conf")
SETTINGS = None
RULES = None
DISABLED = None

try:
    from koji_kabi.checks import (
        check_kernel_build,
        check_kmod_build,
        delta_rows,
        get_build,
        kernel_of,
        kmod_builds_in,
        kmods_of,
        previous_kernel,
        reference_kernel,
        stablelists_of,
        verdict_rows,
        watch_of,
    )
    from koji_kabi.errors import KabiError
    from koji_kabi.kojiclient import deps_from_header
    from koji_kabi.rpmheader import read_rpm_file
    from koji_kabi.rules import load_rules
    from koji_kabi.settings import HubSettings, load_settings

    SETTINGS = load_settings(HubSettings, CONFIG_FILE)
    RULES = load_rules(SETTINGS.rules)
except Exception as exc:  # never take the hub down: disable, say why once
    DISABLED = str(exc) or exc.__class__.__name__
    logger.error("kabi hub plugin disabled: %s", DISABLED)

COMPLETE = koji.BUILD_STATES["COMPLETE"]
_FINISHED = (koji.TASK_STATES["CLOSED"], koji.TASK_STATES["CANCELED"],
             koji.TASK_STATES["FAILED"])
_RETRYABLE = (koji.TASK_STATES["CANCELED"], koji.TASK_STATES["FAILED"])

# Task signatures, as Koji's kiwi/dud hub plugins declare theirs: without them every
# make_task logs "kabiCheck is not a standard koji task" (channel/priority policy data).
koji.tasks.LEGACY_SIGNATURES.setdefault("kabiCheck", [[["build_id", "opts"], None, None,
                                                       (None,)]])
koji.tasks.LEGACY_SIGNATURES.setdefault("kabiCheckArch", [[["job"], None, None, None]])


def _assert_enabled():
    if DISABLED:
        raise koji.GenericError("kabi hub plugin is disabled: %s" % DISABLED)


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

    parsed = None  # no per-RPM parse cache on the hub: the header LRU serves it

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

    def deps(self, rpms, dep_type):
        builds = {}
        out = []
        for rpm in rpms:
            key = (rpm["id"], rpm.get("payloadhash"))
            hdr = _HEADERS.get(key)
            if hdr is None:
                build = builds.get(rpm["build_id"]) or kojihub.get_build(rpm["build_id"],
                                                                         strict=True)
                builds[rpm["build_id"]] = build
                hdr = read_rpm_file(self.path(build, rpm))
                _HEADERS.put(key, hdr)
            out.append(deps_from_header(hdr, dep_type))
        return out


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
    """A kernel build became COMPLETE (build task, ``koji import``, CG import)."""
    if DISABLED or kws.get("attribute") != "state" or kws.get("new") != COMPLETE:
        return
    info = kws.get("info") or {}
    name = info.get("package_name") or info.get("name")
    if name not in RULES.kernel_packages:
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
    if DISABLED or SETTINGS.check_drafts or build.get("name") not in RULES.kernel_packages:
        return
    try:
        _schedule(build, "kernel draft promoted:")
    except Exception:
        logger.exception("kabi: cannot schedule kabiCheck for build %s", build.get("id"))


# --------------------------------------------------------------------------- calls

def _arches(arches):
    if arches is None:
        return None
    return [arches] if isinstance(arches, str) else list(arches)


@export_in("kabi")
def check(build, kernel=None, tag=None, arches=None):
    """kABI verdict of a kmod build against a kernel, or a kernel build's delta + kmods.

    ``kernel``: kernel build to check a kmod against (default: the latest kernel in
    ``tag``, or in the kernel tag the rules pair with ``tag``).  For a kernel build,
    ``kernel`` names the previous kernel and ``tag`` a watched kernel tag.
    """
    _assert_enabled()
    view = HubView()
    binfo = _call(get_build, view, build)
    arches = _arches(arches)
    if binfo["name"] in RULES.kernel_packages:
        watch = watch_of(view, RULES, binfo, tag)
        if tag and watch is None:
            raise koji.GenericError("%s: not a watched kernel tag in the rules (%s)"
                                    % (tag, RULES.source))
        previous = _call(get_build, view, kernel) if kernel else None
        if previous is None and watch is not None:
            previous = previous_kernel(view, binfo, watch.kernel_tag)
        kmod_builds = kmod_builds_in(view, watch.kmod_tags) if watch is not None else []
        lists = _call(stablelists_of, view, binfo, view.path)
        return _call(check_kernel_build, view, binfo, previous, kmod_builds, arches, lists)
    if kernel:
        kbuild = _call(get_build, view, kernel)
    elif tag:
        kbuild = _call(reference_kernel, view, RULES.kernel_packages, tag, RULES)
    elif not _call(kmods_of, view, [binfo], arches):
        raise koji.GenericError("%s: not a kmod build: no package with kernel(symbol) = CRC "
                                "requires" % binfo["nvr"])
    else:
        raise koji.GenericError("kabi.check: give kernel= or tag= for a kmod build")
    lists = _call(stablelists_of, view, kbuild, view.path)
    return _call(check_kmod_build, view, binfo, kbuild, arches, lists)


@export_in("kabi")
def delta(old, new, arches=None):
    """The symbol delta of two kernel builds, per arch and flavour."""
    _assert_enabled()
    view = HubView()
    old_b, new_b = _call(get_build, view, old), _call(get_build, view, new)
    arches = _arches(arches)
    new_k = _call(kernel_of, view, new_b, arches)
    old_k = _call(kernel_of, view, old_b, {k.arch for k in new_k.tables})
    return {"old": old_b["nvr"], "new": new_b["nvr"],
            "delta": _call(delta_rows, old_k, new_k, arches)}


@export_in("kabi")
def affected(kernel, tags=None, against=None, arches=None):
    """Kmod builds in ``tags`` (default: the rules' kmod tags for this kernel) and their
    verdicts against ``kernel``; with ``against``, also the delta to that kernel."""
    _assert_enabled()
    view = HubView()
    kbuild = _call(get_build, view, kernel)
    if tags is None:
        watch = watch_of(view, RULES, kbuild)
        tags = list(watch.kmod_tags) if watch else []
    tags = [tags] if isinstance(tags, str) else list(tags)
    builds = kmod_builds_in(view, tags)
    previous = _call(get_build, view, against) if against else None
    return _call(check_kernel_build, view, kbuild, previous, builds, _arches(arches))


@export_in("kabi")
def rebuild(build, dry_run=False, against=None, tag=None):
    """Schedule a kabiCheck task for a kernel build (needs the configured permission)."""
    _assert_enabled()
    context.session.assertLogin()
    perm = SETTINGS.rebuild_permission
    if not (context.session.hasPerm(perm) or context.session.hasPerm("admin")):
        raise koji.ActionNotAllowed("kabi.rebuild needs the %s permission" % perm)
    binfo = kojihub.get_build(build, strict=True)
    if binfo["name"] not in RULES.kernel_packages:
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

def _claims_dir():
    return SETTINGS.claims_dir or os.path.join(koji.pathinfo.work(), "kabi", "claims")


def _claim_state(claim):
    """'open', 'done' or 'retry' (its rebuild failed or was never submitted)."""
    parent = kojihub.Task(claim["task_id"])
    children = [c for c in parent.getChildren() if c["label"] == claim["label"]]
    if children:
        state = children[0]["state"]
        if state in _RETRYABLE:
            return "retry"
        return "done" if state in _FINISHED else "open"
    pinfo = parent.getInfo(strict=False)
    return "retry" if not pinfo or pinfo["state"] in _FINISHED else "open"


@export_in("kabi")
def claimRebuilds(task_id, claims, max_in_flight=None):
    """Atomically claim rebuilds for a kabiCheck task (host only).

    ``claims``: ``[{key, package, nvr, kernel, label}]``.  A key already claimed by a
    rebuild that is queued, running or succeeded comes back in ``existing`` (with its
    task); a failed or never-submitted one may be claimed again.  At most
    ``max_in_flight`` rebuilds are open at once.
    """
    _assert_enabled()
    host = kojihub.Host()
    host.verify()
    kojihub.Task(task_id).assertHost(host.id)
    root = _claims_dir()
    koji.ensuredir(os.path.join(root, "active"))
    granted, existing = [], {}
    with open(os.path.join(root, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        active = 0
        for name in os.listdir(os.path.join(root, "active")):
            path = os.path.join(root, "active", name)
            try:
                with open(path) as f:
                    claim = json.load(f)
            except (OSError, ValueError):
                continue
            if _claim_state(claim) == "open":
                active += 1
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        for claim in claims:
            key = str(claim["key"])
            if not key.isalnum():
                raise koji.GenericError("bad claim key %r" % key)
            path = os.path.join(root, key[:2], key + ".json")
            koji.ensuredir(os.path.dirname(path))
            if os.path.exists(path):
                with open(path) as f:
                    old = json.load(f)
                if _claim_state(old) != "retry":
                    existing[key] = old["task_id"]
                    continue
            if max_in_flight is not None and active >= int(max_in_flight):
                continue
            record = dict(claim, task_id=int(task_id), time=time.time())
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.replace(tmp, path)
            with open(os.path.join(root, "active", key), "w") as f:
                json.dump(record, f)
            granted.append(key)
            active += 1
    return {"granted": granted, "existing": existing, "in_flight": active}


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
    if args and kojihub.get_tag(args[0]) is not None:
        kbuild = reference_kernel(view, RULES.kernel_packages, args[0], RULES)
    elif args:
        kbuild = reference_kernel(view, [args[0]], tag_name, RULES)
    else:
        kbuild = reference_kernel(view, RULES.kernel_packages, tag_name, RULES)
    # keyed on the build's RPM set too: `koji import` adds RPMs to a COMPLETE build
    rpm_set = tuple(sorted(r["id"] for r in view.rpms([kbuild["id"]])[0]))
    kernel = _KERNELS.get((kbuild["id"], rpm_set))
    if kernel is None:
        kernel = kernel_of(view, kbuild)
        _KERNELS.put((kbuild["id"], rpm_set), kernel)
    rows = verdict_rows(pairs, kernel)
    bad = [r for r in rows if not r["compatible"]]
    for r in bad:
        if r["no_table"]:
            logger.warning("kabi_compatible: %s has no symbols for the arch of %s",
                           kbuild["nvr"], r["rpm"])
        else:
            logger.info("kabi_compatible: %s does not match %s: %d missing, %d CRC "
                        "mismatches", r["rpm"], kbuild["nvr"], len(r["missing"]),
                        len(r["mismatched"]))
    if any(not r["no_table"] for r in bad):
        return False  # a definite incompatibility outranks what cannot be decided
    return None if bad else True


class KabiCompatibleTest(koji.policy.BaseSimpleTest):
    """``kabi_compatible [kernel-tag|kernel-package]``: a kmod matches the tag's kernel.

    True for builds that are not kmods.  Never raises into the policy engine: when it
    cannot decide (no kernel in the tag, unreadable RPM, plugin disabled) it returns the
    configured ``policy_default`` and logs why.
    """

    name = "kabi_compatible"

    def run(self, data):
        default = SETTINGS.policy_default if SETTINGS else True
        if DISABLED:
            logger.warning("kabi_compatible: plugin disabled (%s); returning %s", DISABLED,
                           default)
            return default
        try:
            result = _policy_decide(data, self.str.split()[1:])
        except (KabiError, koji.GenericError) as exc:
            logger.warning("kabi_compatible: cannot decide (%s); returning %s", exc, default)
            return default
        except Exception:
            logger.exception("kabi_compatible: failed; returning %s", default)
            return default
        return default if result is None else result
