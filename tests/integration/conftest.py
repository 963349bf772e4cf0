"""The optional integration tier: koji-kabi against a REAL Koji hub named by configuration.

Nothing here runs unless ``KOJI_KABI_IT_PROFILE`` names a koji CLI profile (``koji -p
PROFILE``).  The profile's user must be a Koji admin (``koji import`` and content generator
imports need it).  The hub should have the koji-kabi hub plugin, a builder with the kabi
builder plugin in its channel, and rules watching the kernel tag below.

Environment (defaults match ``../shared/realkoji``'s ``seed.sh``):

``KOJI_KABI_IT_PROFILE``         koji CLI profile of the hub (required)
``KOJI_KABI_IT_KERNEL_TAG``      watched kernel tag (``el8-kernel``)
``KOJI_KABI_IT_KMOD_TAG``        a kmod tag the hub's rules pair with it (``kmods8-candidate``)
``KOJI_KABI_IT_TARGET``          the rules' rebuild target (``kmods8``)
``KOJI_KABI_IT_REBUILD_MODE``    the rules' rebuild mode (``scratch``)
``KOJI_KABI_IT_GATED_TAG``       a tag whose ``tag`` policy uses ``kabi_compatible``
                                 (unset: the gating test is skipped)
``KOJI_KABI_IT_HUB_PLUGIN``      ``yes`` / ``no`` / ``auto`` (``auto``): whether the hub must
                                 have the koji-kabi hub plugin
``KOJI_KABI_IT_KERNEL_PACKAGE``  a kernel package of the hub's rules (``kernel``)
``KOJI_KABI_IT_ARCH``            arch of the test RPMs (``x86_64``)
``KOJI_KABI_IT_CG``              content generator used to import kmods with a source
                                 (``koji-kabi-it``; created and granted if missing)
``KOJI_KABI_IT_KOJI``            koji CLI command (the ``koji`` next to this Python, else PATH)
``KOJI_KABI_IT_TIMEOUT``         seconds to wait for a task (``180``)
``KOJI_KABI_IT_KEEP``            ``1``: leave this run's tags and tasks as they are

Every run creates its own builds (the release carries a timestamp, the symbol CRCs a
per-run seed, so rebuild deduplication never matches an earlier run) and at the end
untags them and cancels the still-open tasks its kernels caused; nothing else is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = ("no real Koji hub configured (set KOJI_KABI_IT_PROFILE to a koji CLI profile "
               "of a hub with the koji-kabi plugins, e.g. realkoji; "
               "scripts/realkoji-it.sh does it all)")
OPEN_STATES = (0, 1, 4)  # FREE, OPEN, ASSIGNED
DONE_STATES = (2, 3, 5)  # CLOSED, CANCELED, FAILED
TIMINGS: list[str] = []


@dataclass(frozen=True)
class Settings:
    """The hub and names to test against, from ``KOJI_KABI_IT_*``."""

    profile: str
    kernel_tag: str
    kmod_tag: str
    target: str
    mode: str
    gated_tag: Optional[str]
    hub_plugin: str
    kernel_package: str
    arch: str
    cg: str
    koji: tuple[str, ...]
    timeout: float
    keep: bool

    @classmethod
    def from_env(cls, env: Optional[dict[str, str]] = None) -> Optional[Settings]:
        env = dict(os.environ if env is None else env)
        profile = env.get("KOJI_KABI_IT_PROFILE", "").strip()
        if not profile:
            return None

        def get(name: str, default: str) -> str:
            return env.get(f"KOJI_KABI_IT_{name}", "").strip() or default

        koji_cmd = env.get("KOJI_KABI_IT_KOJI", "").strip()
        if koji_cmd:
            argv = tuple(shlex.split(koji_cmd))
        else:
            beside = Path(sys.executable).with_name("koji")
            argv = (str(beside) if beside.exists() else shutil.which("koji") or "koji",)
        hub_plugin = get("HUB_PLUGIN", "auto").lower()
        if hub_plugin not in ("yes", "no", "auto"):
            raise pytest.UsageError("KOJI_KABI_IT_HUB_PLUGIN must be yes, no or auto")
        return cls(profile, get("KERNEL_TAG", "el8-kernel"), get("KMOD_TAG", "kmods8-candidate"),
                   get("TARGET", "kmods8"), get("REBUILD_MODE", "scratch"),
                   env.get("KOJI_KABI_IT_GATED_TAG", "").strip() or None, hub_plugin,
                   get("KERNEL_PACKAGE", "kernel"), get("ARCH", "x86_64"),
                   get("CG", "koji-kabi-it"), argv, float(get("TIMEOUT", "180")),
                   get("KEEP", "0") == "1")


@dataclass
class Hub:
    """A logged-in session and the koji CLI, both on the configured profile."""

    settings: Settings
    session: Any
    user: dict
    has_plugin: bool
    tmp: Path

    def koji(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the koji CLI with this checkout's CLI plugin (argv list: no shell)."""
        argv = [*self.settings.koji, "-p", self.settings.profile,
                "--plugin-paths", str(REPO / "cli_plugin"), *args]
        env = {k: v for k, v in os.environ.items() if k != "KOJI_KABI_RULES"}
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL, check=False)

    def require_plugin(self) -> None:
        if not self.has_plugin:
            pytest.skip("the hub has no koji-kabi hub plugin (no kabi.* calls)")

    def tasks_for(self, build_id: int, since: float) -> list[dict]:
        """kabiCheck tasks of one kernel build created since ``since``, oldest first."""
        tasks = self.session.listTasks(opts={"method": "kabiCheck", "createdAfter": since,
                                             "decode": True})
        return sorted((t for t in tasks if (t.get("request") or [None])[0] == build_id),
                      key=lambda t: t["id"])

    def wait_task(self, task_id: int, what: str) -> dict:
        """Wait until a task is finished; fail with its state if it takes too long."""
        deadline = time.monotonic() + self.settings.timeout
        while True:
            info = self.session.getTaskInfo(task_id)
            if info["state"] in DONE_STATES:
                return info
            if time.monotonic() > deadline:
                hint = (" (still FREE: is a builder with the kabi builder plugin in the task's "
                        "channel?)" if info["state"] == 0 else "")
                pytest.fail(f"{what}: task {task_id} not finished after "
                            f"{self.settings.timeout:.0f}s{hint}")
            time.sleep(1)

    def report(self, task_id: int, name: str) -> str:
        return self.session.downloadTaskOutput(task_id, name).decode("utf-8")


def note_timing(line: str) -> None:
    TIMINGS.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("koji-kabi integration timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def settings() -> Settings:
    found = Settings.from_env()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found


def _session(settings: Settings) -> Any:
    """A ClientSession from the profile, logged in the way the koji CLI would."""
    import koji
    from koji_cli.lib import activate_session

    try:
        opts = koji.read_config(settings.profile)
    except koji.ConfigurationError as exc:
        pytest.fail(f"KOJI_KABI_IT_PROFILE={settings.profile}: {exc}")
    session = koji.ClientSession(opts["server"], koji.grab_session_options(opts))
    try:
        activate_session(session, dict(opts, noauth=False))
    except SystemExit:
        pytest.fail(f"cannot log in to {opts['server']} with profile {settings.profile}")
    return session


@pytest.fixture(scope="session")
def hub(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    session = _session(settings)
    user = session.getLoggedInUser()
    if not session.hasPerm("admin"):
        pytest.skip(f"the profile's user {user['name']} is not a Koji admin "
                    "(koji import and CG imports need admin)")
    for tag in (settings.kernel_tag, settings.kmod_tag, settings.gated_tag):
        if tag and not session.getTag(tag):
            pytest.fail(f"tag {tag} does not exist on the hub (KOJI_KABI_IT_* names)")
    if not session.getBuildTarget(settings.target):
        pytest.fail(f"build target {settings.target} does not exist (KOJI_KABI_IT_TARGET)")
    has_plugin = "kabi.check" in session.system.listMethods()
    if settings.hub_plugin == "yes" and not has_plugin:
        pytest.fail("KOJI_KABI_IT_HUB_PLUGIN=yes but the hub has no kabi.* calls")
    if settings.hub_plugin == "no" and has_plugin:
        pytest.fail("KOJI_KABI_IT_HUB_PLUGIN=no but the hub has the kabi.* calls")
    yield Hub(settings, session, user, has_plugin, tmp_path_factory.mktemp("koji-kabi-it"))
    session.logout()


# --------------------------------------------------------------------------- the scenario


@dataclass
class Scenario:
    """What one run created on the hub, and the ground truth it was made from."""

    stamp: str
    old_nvr: str
    new_nvr: str
    old_id: int
    new_id: int
    ok_nvr: str
    bad_nvr: str
    ok_source: Optional[str]
    bad_source: Optional[str]
    changed: frozenset[str]
    added: frozenset[str]
    removed: frozenset[str]
    bad_mismatched: dict[str, tuple[int, int]]  # symbol -> (required, provided)
    bad_missing: frozenset[str]
    imported_at: float  # hub time before the new kernel's import
    hook_tasks: list[dict] = field(default_factory=list)
    tagged: list[tuple[str, str]] = field(default_factory=list)  # (tag, nvr) to undo
    extra_tasks: list[int] = field(default_factory=list)  # tasks the tests created


def _cg_metadata(files: list[Path], source: str, cg: str, arch: str) -> dict:
    srpm = next(p.name for p in files if p.name.endswith(".src.rpm"))
    name, version, release = srpm[: -len(".src.rpm")].rsplit("-", 2)
    now = time.time()
    return {
        "metadata_version": 0,
        "build": {"name": name, "version": version, "release": release, "source": source,
                  "start_time": now, "end_time": now, "extra": {}},
        "buildroots": [{"id": 1, "host": {"os": "koji-kabi integration tier", "arch": arch},
                        "content_generator": {"name": cg, "version": "1"},
                        "container": {"type": "none", "arch": arch},
                        "tools": [], "components": [], "extra": {}}],
        "output": [{"buildroot_id": 1, "filename": p.name, "filesize": p.stat().st_size,
                    "arch": p.name.rsplit(".", 2)[-2], "type": "rpm",
                    "checksum": hashlib.md5(p.read_bytes()).hexdigest(),
                    "checksum_type": "md5"} for p in files],
    }


def _cg_import(hub: Hub, files: list[Path], source: str) -> str:
    """Import a build through a content generator, recording its SCM ``source``
    (``koji import`` cannot: its builds have none, so they could never be rebuilt)."""
    s = hub.settings
    cgs = hub.session.listCGs()
    if hub.user["name"] not in cgs.get(s.cg, {}).get("users", []):
        hub.session.grantCGAccess(hub.user["name"], s.cg, create=True)
    serverdir = f"cli-import/koji-kabi-it-{os.getpid()}-{time.time_ns()}"
    for p in files:
        hub.session.uploadWrapper(str(p), serverdir)
    return hub.session.CGImport(_cg_metadata(files, source, s.cg, s.arch), serverdir)["nvr"]


def _ensure_listed(hub: Hub, tag: str, package: str) -> None:
    if not hub.session.checkTagPackage(tag, package):
        hub.session.packageListAdd(tag, package, owner=hub.user["name"])


def _tag(hub: Hub, sc: Scenario, tag: str, nvr: str) -> None:
    hub.session.tagBuildBypass(tag, nvr)
    sc.tagged.append((tag, nvr))


def _koji_import(hub: Hub, files: list[Path]) -> None:
    """``koji import``: one upload + importRPM call per file, SRPM first."""
    ordered = sorted(files, key=lambda p: (not p.name.endswith(".src.rpm"), p.name))
    res = hub.koji("import", *map(str, ordered))
    assert res.returncode == 0, res.stdout + res.stderr


def _build(hub: Hub) -> tuple[Any, dict[str, list[Path]], dict]:
    from tests.support import rpmfactory as rf

    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (needed to make the test RPMs)")
    s = hub.settings
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"p{os.getpid() % 100000}"
    seed = int(hashlib.sha256(stamp.encode()).hexdigest()[:8], 16)
    old = rf.random_symbols(300, seed=seed)
    churn = rf.churn(old, changed_frac=0.05, added=5, removed=2, seed=seed)
    changed, removed = sorted(churn.changed), sorted(churn.removed)
    keep = sorted(set(old) - churn.changed - churn.removed)
    version = "5.14.0"
    rel_old, rel_new = f"1.kabiit{stamp}.el8", f"2.kabiit{stamp}.el8"
    kver = f"{version}-{rel_old}.{{arch}}"
    bad_req = {**{k: old[k] for k in keep[20:30]}, **{k: old[k] for k in changed[:3]},
               removed[0]: old[removed[0]]}
    builds = {
        "old": rf.kernel_build(s.kernel_package, version, rel_old, [s.arch], {s.arch: old}),
        "new": rf.kernel_build(s.kernel_package, version, rel_new, [s.arch],
                               {s.arch: churn.symbols}),
        "ok": rf.kmod_build("kmod-kabiit-ok", "1.0", f"1.kabiit{stamp}.el8", s.arch,
                            {k: old[k] for k in keep[:20]}, kver=kver),
        "bad": rf.kmod_build("kmod-kabiit-broken", "1.0", f"1.kabiit{stamp}.el8", s.arch,
                             bad_req, kver=kver),
    }
    files = {k: rf.build_rpms(b, hub.tmp / k) for k, b in builds.items()}
    truth = {"stamp": stamp, "changed": churn.changed, "added": churn.added,
             "removed": churn.removed,
             "bad_mismatched": {k: (old[k], churn.symbols[k]) for k in changed[:3]},
             "bad_missing": frozenset(removed[:1])}
    return builds, files, truth


@pytest.fixture(scope="session")
def scenario(hub: Hub) -> Iterator[Scenario]:
    """Old kernel tagged, a compatible and a broken kmod tagged, then a new kernel imported
    with ``koji import`` (RPM by RPM) and tagged: what a kernel landing in Koji looks like."""
    s = hub.settings
    builds, files, truth = _build(hub)
    source = {k: (f"git+https://kabi-it.invalid/kmods/{builds[k].name}.git#"
                  + hashlib.sha1(f"{builds[k].nvr}".encode()).hexdigest()) for k in ("ok", "bad")}
    for tag in (s.kmod_tag, s.gated_tag):
        if tag:
            for k in ("ok", "bad"):
                _ensure_listed(hub, tag, builds[k].name)
    _ensure_listed(hub, s.kernel_tag, s.kernel_package)
    t0 = time.monotonic()
    _koji_import(hub, files["old"])
    sc = Scenario(truth["stamp"], builds["old"].nvr, builds["new"].nvr,
                  hub.session.getBuild(builds["old"].nvr)["id"], 0, builds["ok"].nvr,
                  builds["bad"].nvr, source["ok"], source["bad"], truth["changed"],
                  truth["added"], truth["removed"], truth["bad_mismatched"],
                  truth["bad_missing"], 0.0)
    try:
        _tag(hub, sc, s.kernel_tag, sc.old_nvr)
        for k in ("ok", "bad"):
            _cg_import(hub, files[k], source[k])
            _tag(hub, sc, s.kmod_tag, builds[k].nvr)
        # hub clock, not ours: listTasks(createdAfter=) compares with the hub's time
        sc.imported_at = hub.session.getLastEvent()["ts"] - 1
        _koji_import(hub, files["new"])
        sc.new_id = hub.session.getBuild(sc.new_nvr)["id"]
        sc.hook_tasks = hub.tasks_for(sc.new_id, sc.imported_at)  # all created by now
        _tag(hub, sc, s.kernel_tag, sc.new_nvr)
        note_timing(f"setup (imports and tags of the 4 test builds): {time.monotonic() - t0:.1f}s")
        yield sc
    finally:
        _cleanup(hub, sc)


def _cleanup(hub: Hub, sc: Scenario) -> None:
    """Untag what this run tagged; cancel the open tasks its kernels and tests caused."""
    if hub.settings.keep:
        return
    tops = [t["id"] for b in (sc.old_id, sc.new_id) if b
            for t in hub.tasks_for(b, sc.imported_at - 3600)] + sc.extra_tasks
    for task_id in tops:
        for child in hub.session.getTaskChildren(task_id):
            if child["state"] in OPEN_STATES:
                hub.session.cancelTask(child["id"])
        if hub.session.getTaskInfo(task_id)["state"] in OPEN_STATES:
            hub.session.cancelTask(task_id)
    for tag, nvr in reversed(sc.tagged):
        hub.session.untagBuildBypass(tag, nvr, strict=False)


def kabi_check_task(hub: Hub, sc: Scenario) -> dict:
    """The hook's kabiCheck task of the new kernel, finished (timed once)."""
    hub.require_plugin()
    assert sc.hook_tasks, f"no kabiCheck task was created for {sc.new_nvr}"
    task_id = sc.hook_tasks[0]["id"]
    info = hub.wait_task(task_id, f"kabiCheck of {sc.new_nvr}")
    line = (f"kabiCheck task {task_id} ({sc.new_nvr}): created -> started "
            f"{info['start_ts'] - info['create_ts']:.1f}s, ran "
            f"{info['completion_ts'] - info['start_ts']:.1f}s, total "
            f"{info['completion_ts'] - info['create_ts']:.1f}s")
    if line not in TIMINGS:
        note_timing(line)
    return info


def report_json(hub: Hub, task_id: int) -> dict:
    return json.loads(hub.report(task_id, "kabi-report.json"))
