"""The real-Koji tier: fixtures that bring up ../shared/realkoji with koji-kabi installed.

Runs whenever it can (root on Debian with ../shared/realkoji beside the clone, as in CI);
elsewhere every test here is skipped with one reason.  Each module names the hub phase it
needs (``pytestmark = pytest.mark.koji_phase("plain" | "disabled" | "full")``, and
``order=N`` to run after the others of its phase); items are ordered by phase so the hub
restarts at most once per phase, and Koji is stopped again at the end of the session,
whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration import kit as kitmod
from tests.integration.kit import Kit
from tests.integration.realkoji import (
    HOLD_CHANNEL,
    PHASES,
    SIDETAG_PERM,
    STRAY_CHANNEL,
    RealKoji,
    unavailable,
)
from tests.integration.worlds import ARM, X86, Series, build_series, plain_package, source_for

#: how long the hub may take to notice a changed rules file (koji_kabi.koji.rules.RulesFile)
RULES_INTERVAL = 2.2
STAMP = time.strftime("%m%d%H%M%S", time.gmtime()) + f"p{os.getpid() % 1000}"
SCENARIOS = ("hook", "main", "pair", "lim", "nodb", "kill", "crash", "race", "msg", "strat")
#: the rebuild strategies scenario (test_strategies.py): its kmods' rules
STRATEGY_RULES = {"kmod-strata": {"strategy": "macro", "mode": "draft"},
                  "kmod-stratb": {"mode": "draft"}, "kmod-stratc": {"mode": "draft"},
                  "kmod-stratd": {"mode": "draft"}}


def names(scenario: str) -> dict[str, str]:
    """Tags and target of one scenario (unique per run)."""
    p = f"kit-{STAMP}-{scenario}"
    return {"kernel": f"{p}-kernel", "build": f"{p}-build", "kmods": f"{p}-kmods",
            "gated": f"{p}-gated", "target": p}


def rules_text(**rebuild: Any) -> str:
    """The tier's rules file: one watch per scenario, with ``rebuild`` overrides."""
    import yaml

    watch = []
    for s in SCENARIOS:
        n = names(s)
        kmod_tags = [n["kmods"], n["gated"]] if s == "main" else [n["kmods"]]
        watch.append({"kernel_tag": n["kernel"], "kmod_tags": kmod_tags, "target": n["target"]})
    return yaml.safe_dump({
        "kernel_packages": ["kernel"],
        "watch": watch,
        "rebuild": {"mode": "scratch", "priority": 33, **rebuild},
        # kmod-nosrc (no SCM source) in mode build cannot be rebuilt from its SRPM
        "packages": {"kmod-optout": {"opt_out": True}, "kmod-nvidia": {"mode": "build"},
                     "kmod-nosrc": {"mode": "build"}, **STRATEGY_RULES},
    }, sort_keys=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests first, then the real-Koji tier phase by phase (one restart per phase)."""
    def phase(item: pytest.Item) -> tuple[int, int]:
        marker = item.get_closest_marker("koji_phase")
        if marker is None:
            return (0, 0)
        return (1 + PHASES.index(marker.args[0]), marker.kwargs.get("order", 0))

    items.sort(key=phase)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if kitmod.TIMINGS:
        terminalreporter.section("koji-kabi real-Koji tier")
        for line in kitmod.TIMINGS:
            terminalreporter.write_line(line)


@contextlib.contextmanager
def hub_rules(rk: RealKoji, **rebuild: Any) -> Iterator[None]:
    """Other ``rebuild:`` settings in the hub's rules file, for the checks that start
    meanwhile: the hub re-reads the file when it changes (within RULES_INTERVAL seconds,
    without a restart) and every kabiCheck asks the hub for the rules it uses."""
    rk.rules_path.write_text(rules_text(**rebuild))
    time.sleep(RULES_INTERVAL)
    try:
        yield
    finally:
        rk.rules_path.write_text(rules_text())
        time.sleep(RULES_INTERVAL)


@contextlib.contextmanager
def builder_settings(rk: RealKoji, **settings: Any) -> Iterator[None]:
    """Other builder plugin settings for the checks that start meanwhile."""
    rk.write_builder_conf(**settings)
    try:
        yield
    finally:
        rk.write_builder_conf()


class Hub:
    """The real hub, brought into the phase a test module needs."""

    def __init__(self, rk: RealKoji) -> None:
        self.rk = rk
        self._kit: Kit | None = None

    def ensure(self, phase: str) -> Kit:
        if self.rk.phase != phase:
            seconds = self.rk.up(phase)
            kitmod.note(f"hub up in phase {phase}: {seconds:.1f}s")
            if self._kit is not None:
                self._kit.reconnect()
        if self._kit is None:
            self._kit = Kit(self.rk)
            self._layout(self._kit)
        return self._kit

    @staticmethod
    def _layout(kit: Kit) -> None:
        for channel in (HOLD_CHANNEL, STRAY_CHANNEL):
            kit.channel(channel)
        kit.user("alice", "kabi")
        kit.user("bob")
        kit.user("builder1", SIDETAG_PERM)  # the host's user makes the side tags
        for s in SCENARIOS:
            n = names(s)
            kit.tag(n["kernel"])
            kit.tag(n["build"], parent=n["kernel"])
            kit.tag(n["kmods"])
            if s == "main":
                kit.tag(n["gated"])
            kit.target(n["target"], n["build"], n["kmods"])
        # a side tag of this build tag may set %{kversion} (sidetag's editSideTag)
        kit.admin.editTag2(names("strat")["build"],
                           extra={"sidetag_rpm_macros_allowed": "kversion"})


class _Prewarm(threading.Thread):
    """Installs koji-kabi and brings the hub up (apt, initdb, certificates the first time)
    while the unit tests run, so the real-Koji tier starts at once."""

    def __init__(self, phase: str) -> None:
        super().__init__(name="realkoji-prewarm", daemon=True)
        self.phase, self.rk, self.error = phase, RealKoji(STAMP), None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.rk.install()
            self.rk.write_configs(rules_text(), "kit-*-gated")
            self.rk.up(self.phase)
        except BaseException as exc:  # reported by the fixture, in the test run
            self.error = exc
        self.seconds = time.monotonic() - started


_PREWARM: list[_Prewarm] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    phases = [m.args[0] for item in session.items
              if (m := item.get_closest_marker("koji_phase")) is not None]
    if phases and unavailable() is None and not session.config.option.collectonly:
        _PREWARM.append(_Prewarm(phases[0]))
        _PREWARM[0].start()


@pytest.fixture(scope="session")
def realkoji() -> Iterator[RealKoji]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    try:
        if _PREWARM:
            prewarm = _PREWARM[0]
            prewarm.join()
            if prewarm.error is not None:
                raise prewarm.error
            rk = prewarm.rk
            kitmod.note(f"koji-kabi installed and hub up in phase {rk.phase} in "
                        f"{prewarm.seconds:.1f}s, during the unit tests")
        else:
            rk = RealKoji(STAMP)
            started = time.monotonic()
            rk.install()
            rk.write_configs(rules_text(), "kit-*-gated")
            kitmod.note(f"koji-kabi RPMs built and installed in "
                        f"{time.monotonic() - started:.1f}s")
        yield rk
    finally:
        RealKoji(STAMP).down()


@pytest.fixture(scope="session")
def hub(realkoji: RealKoji) -> Hub:
    return Hub(realkoji)


@pytest.fixture(scope="module", autouse=True)
def koji_phase(request: pytest.FixtureRequest) -> Iterator[Kit | None]:
    """Bring the hub into the module's phase before its fixtures import anything."""
    marker = request.node.get_closest_marker("koji_phase")
    if marker is None:
        yield None
        return
    yield request.getfixturevalue("hub").ensure(marker.args[0])


@pytest.fixture(scope="session")
def rpm_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tmp_path_factory.mktemp("it-rpms"), tmp_path_factory.mktemp("it-rpm-cache")


# --------------------------------------------------------------------------- main world

MAIN_KMODS = {
    "kmod-ok": {"x86_64": ["stable:0:30"], "aarch64": ["stable:0:30"]},
    # x86_64 consumes two symbols whose CRC changes at K2; aarch64 only unchanged ones
    "kmod-crc": {"x86_64": ["stable:30:40", "changed:0:2"], "aarch64": ["stable:30:40"]},
    "kmod-gone": {"x86_64": ["stable:40:50", "removed:0:1"]},
    "kmod-optout": {"x86_64": ["stable:50:55", "changed:2:3"]},
    "kmod-nosrc": {"x86_64": ["stable:55:60", "changed:3:4"]},
    "kmod-nvidia": {"x86_64": ["stable:60:70", "changed:4:6"]},
}


@dataclass
class MainWorld:
    """Kernels K1 (baseline), K2 (breaks five kmods), K3 (same kABI as K2 for every kmod)
    in the main scenario's tags, and kmods that landed every way Koji knows."""

    kit: Kit
    series: Series
    builds: dict[str, dict]  # label (K1, K2, kmod-crc, ...) -> build
    sources: dict[str, str]  # kmod -> the SCM URL its rebuild must use
    names: dict[str, str]

    def landing(self, label: str) -> dict:
        """The hook's kabiCheck task of a kernel (there is exactly one; kabi.rebuild's
        tasks carry options)."""
        (task,) = [t for t in self.kit.wait_kabi(self.builds[label]["id"])
                   if t["request"][1] == {}]
        return task


@pytest.fixture(scope="session")
def main_world(hub: Hub, rpm_dirs: tuple[Path, Path]) -> MainWorld:
    kit = hub.ensure("full")
    out, cache = rpm_dirs
    s = build_series(out, cache, STAMP, "main", 1, (X86, ARM), 400, MAIN_KMODS, kernels=3,
                     stablelist=True)
    n = names("main")
    kit.cancel_open_rebuilds()  # nothing of other modules in flight
    kit.listed(n["kernel"], "kernel")
    kit.listed(n["kmods"], *MAIN_KMODS)
    kit.listed(n["gated"], *MAIN_KMODS)
    sources = {k: source_for(k, STAMP) for k in MAIN_KMODS}
    builds: dict[str, dict] = {}
    for kmod in ("kmod-ok", "kmod-nosrc"):  # koji import: no source, no task
        builds[kmod] = kit.admin.getBuild(kit.koji_import(s.kmods[kmod]))
    for kmod in ("kmod-crc", "kmod-optout"):  # CG import: build.source
        builds[kmod] = kit.cg_build(s.kmods[kmod], sources[kmod])
    # task builds: build.source recorded, or (as older Kojis did) only the task's request
    builds["kmod-gone"] = kit.task_build(s.kmods["kmod-gone"], sources["kmod-gone"])
    builds["kmod-nvidia"] = kit.task_build(s.kmods["kmod-nvidia"], sources["kmod-nvidia"],
                                           record_source=False)
    assert not builds["kmod-nvidia"]["source"] and builds["kmod-gone"]["source"]
    for kmod in MAIN_KMODS:
        kit.tag_build(n["kmods"], builds[kmod]["id"])
    for label in ("K1", "K2"):  # each lands by koji import, then is tagged
        kit.koji_import(s.kernels[label])
        builds[label] = kit.admin.getBuild(s.kernel_nvr[label])
        kit.tag_build(n["kernel"], builds[label]["id"])
        kit.wait_kabi(builds[label]["id"])
    return MainWorld(kit, s, builds, sources, n)


# --------------------------------------------------------------------------- CLI world

CLI_MANY = 24  # kmods (x 2 arches) in the tag of the round-trip test


@dataclass
class CliWorld:
    """Two kernels (x86_64 + aarch64), kmods that survive / break, many small kmods and a
    plain package, for the koji CLI plugin; ``expected`` keeps outputs seen on a hub
    without the hub plugin, to compare with the same commands on a hub with it."""

    kit: Kit
    series: Series
    nvr: dict[str, str]  # K1, K2, OK, CRC, GONE, PLAIN
    tags: dict[str, str]  # kernel, kmods, ok, many, few, misc
    rules: Path
    home: Path
    expected: dict[tuple[str, ...], tuple[int, str, str]]

    def koji(self, *args: str, user: str | None = None, **env: str) -> Any:
        return self.kit.rk.koji(*args, user=user, env={"HOME": str(self.home), **env})


@pytest.fixture(scope="session")
def cli_world(hub: Hub, rpm_dirs: tuple[Path, Path],
              tmp_path_factory: pytest.TempPathFactory) -> CliWorld:
    kit = hub.ensure(hub.rk.phase or "plain")
    out, cache = rpm_dirs
    kmods = {"kmod-ok": {X86: ["stable:0:20"], ARM: ["stable:0:20"]},
             "kmod-crc": {X86: ["stable:20:30", "changed:0:2"], ARM: ["stable:20:30"]},
             "kmod-gone": {X86: ["stable:30:35", "removed:0:1"]}}
    kmods.update({f"kmod-many{i:02d}": {X86: [f"stable:{i}:{i + 5}"], ARM: [f"stable:{i}:{i + 5}"]}
                  for i in range(CLI_MANY)})
    s = build_series(out, cache, STAMP, "cli", 41, (X86, ARM), 300, kmods)
    p = f"kit-{STAMP}-cli"
    tags = {k: f"{p}-{k}" for k in ("kernel", "kmods", "ok", "many", "few", "misc")}
    for tag in tags.values():
        kit.tag(tag)
    kit.listed(tags["kernel"], "kernel")
    kit.listed(tags["kmods"], "kmod-ok", "kmod-crc", "kmod-gone")
    kit.listed(tags["ok"], "kmod-ok")
    kit.listed(tags["many"], *[k for k in kmods if "many" in k])
    kit.listed(tags["few"], *[k for k in kmods if "many" in k][:4])
    kit.listed(tags["misc"], "bash-completion-extra")
    for label in ("K1", "K2"):
        kit.tag_build(tags["kernel"], kit.cg_import(s.kernels[label], source_for(
            "kernel", STAMP))["build_id"])
    for i, kmod in enumerate(kmods):
        build_id = kit.cg_import(s.kmods[kmod], source_for(kmod, STAMP))["build_id"]
        if "many" not in kmod:
            kit.tag_build(tags["kmods"], build_id)
        else:
            kit.tag_build(tags["many"], build_id)
            if i < 3 + 4:
                kit.tag_build(tags["few"], build_id)
    kit.tag_build(tags["ok"], s.kmod_nvr["kmod-ok"])
    paths, plain = plain_package(out, cache, STAMP + "cli")
    kit.tag_build(tags["misc"], kit.koji_import(paths))
    tmp = tmp_path_factory.mktemp("cli")
    rules = tmp / "rules.yaml"
    rules.write_text("kernel_packages: [kernel]\nwatch:\n"
                     f"  - kernel_tag: {tags['kernel']}\n"
                     f"    kmod_tags: [{tags['kmods']}]\n"
                     f"    target: {p}\n")
    home = tmp / "home"
    home.mkdir()
    nvr = {"K1": s.kernel_nvr["K1"], "K2": s.kernel_nvr["K2"], "OK": s.kmod_nvr["kmod-ok"],
           "CRC": s.kmod_nvr["kmod-crc"], "GONE": s.kmod_nvr["kmod-gone"], "PLAIN": plain}
    return CliWorld(kit, s, nvr, tags, rules, home, {})


def fault_scenario(kit: Kit, rpm_dirs: tuple[Path, Path], scenario: str, rel: int,
                   kernels: int = 2) -> tuple[Series, dict[str, str]]:
    """A small scenario whose K2 breaks two kmods (``kmod-<scenario>a``/``b``), baseline
    K1 landed: for the fault tests, each with tags of its own."""
    out, cache = rpm_dirs
    s = build_series(out, cache, STAMP, scenario, rel, (X86,), 80, {
        f"kmod-{scenario}a": {X86: ["stable:0:5", "changed:0:1"]},
        f"kmod-{scenario}b": {X86: ["stable:5:10", "changed:1:2"]}}, kernels)
    n = names(scenario)
    kit.baseline(n, s.kernels["K1"], s.kmods, lambda name: source_for(name, STAMP))
    return s, n
