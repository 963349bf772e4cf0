"""The koji CLI plugin end to end: the REAL ``koji`` command (a subprocess, our plugin dir
on ``plugin_paths``) over HTTP against the hub simulator, on real RPMs made by rpmbuild.

The read-only commands (``kabi-check``, ``kabi-delta``) must work against any hub, so
they run against a hub without the koji-kabi hub plugin; ``kabi-rebuild`` needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hubsim import HubServer, State, kojid_options, run_task_handler
from tests.kojitest import load_builder_plugin, load_hub_plugin, write_ini
from tests.support import rpmfactory as rf

ROOT = Path(__file__).resolve().parents[1]
KOJI = Path(sys.executable).with_name("koji")
ARCHES = ("x86_64", "aarch64")
X86 = "x86_64"
K1, K2 = "kernel-5.14.0-1.el9", "kernel-5.14.0-2.el9"
OK, CRC, GONE = "kmod-ok-1.0-1.el9", "kmod-crc-1.0-1.el9", "kmod-gone-2.0-3.el9"
PLAIN = "bash-completion-extra-1.0-1.el9"
MANY = 40  # kmods (x 2 arches) in the tag of the round-trip test


@dataclass(frozen=True)
class Truth:
    """What the fixtures were made of: the answers the commands must give."""

    old: dict[str, dict[str, int]]  # arch -> {symbol: crc} of kernel 1
    new: dict[str, dict[str, int]]  # kernel 2
    changed: list[str]  # x86_64 symbols kmod-crc requires whose CRC changed 1 -> 2
    removed: str  # the x86_64 symbol kmod-gone requires that kernel 2 removed
    churn: dict[str, rf.Churn]


@dataclass(frozen=True)
class HubWorld:
    state: State
    truth: Truth
    rules: Path
    tmp: Path


@dataclass(frozen=True)
class Cli:
    """The ``koji`` command with a profile pointing at one hub."""

    hub: HubServer
    config: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        # a private HOME: no ~/.koji or ~/.config/koji-kabi of the person running the tests
        return {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT), **extra}

    def argv(self, *args: str, user: str | None = None) -> list[str]:
        """The command line; with ``user``, password login as that user."""
        auth = ["--authtype", "password", "--user", user, "--password", user + "-pw"] \
            if user else []
        return [str(KOJI), "--config", str(self.config), "--profile", "koji", *auth, *args]

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 user: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args, user=user), capture_output=True, text=True,
                              timeout=120, env=env or self.env())

    def login(self, user: str, *args: str) -> subprocess.CompletedProcess:
        """Run an authenticated command with password login as ``user``."""
        return self(*args, user=user)


def _tables(symbols: dict[str, dict[str, int]], names: list[str], arch: str) -> dict[str, int]:
    return {s: symbols[arch][s] for s in names}


@pytest.fixture(scope="module")
def hw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubWorld]:
    """Two kernels (x86_64 + aarch64), kmods that survive / break, many kmods, a plain
    package, imported and tagged in one hub State."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (scripts/bootstrap.sh --test installs it)")
    if not KOJI.is_file():
        pytest.skip(f"no koji CLI next to {sys.executable}")
    tmp = tmp_path_factory.mktemp("cli-plugin")
    cache = tmp_path_factory.mktemp("cli-plugin-cache")
    old = rf.per_arch_tables(rf.random_symbols(300, seed=41), ARCHES, seed=42)
    churn = {a: rf.churn(old[a], changed_frac=0.1, removed=4, added=6, seed=43 + i)
             for i, a in enumerate(ARCHES)}
    new = {a: churn[a].symbols for a in ARCHES}
    stable = {a: sorted(set(old[a]) - churn[a].changed - churn[a].removed) for a in ARCHES}
    changed, removed = sorted(churn[X86].changed)[:2], sorted(churn[X86].removed)[0]
    kmods = [
        rf.kmod_build("kmod-ok", "1.0", "1.el9", per_arch={
            a: _tables(old, stable[a][:20], a) for a in ARCHES}),
        # x86_64 consumes two symbols whose CRC changes; aarch64 only unchanged ones
        rf.kmod_build("kmod-crc", "1.0", "1.el9", per_arch={
            X86: _tables(old, stable[X86][20:30] + changed, X86),
            "aarch64": _tables(old, stable["aarch64"][20:30], "aarch64")}),
        rf.kmod_build("kmod-gone", "2.0", "3.el9", X86,
                      _tables(old, stable[X86][30:35] + [removed], X86)),
    ]
    many = [rf.kmod_build(f"kmod-many{i:02d}", "1.0", "1.el9", per_arch={
        a: _tables(old, stable[a][i:i + 5], a) for a in ARCHES}) for i in range(MANY)]
    out = {name: tmp / name for name in ("k1", "k2", "kmods", "many", "plain")}
    k1 = rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "1.el9", ARCHES, old,
                                       split=("core", "modules")), out["k1"], cache_dir=cache)
    k2 = rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "2.el9", ARCHES, new,
                                       split=("core", "modules")), out["k2"], cache_dir=cache)
    kmod_paths = rf.build_rpms(kmods, out["kmods"], cache_dir=cache, srpm=False)
    many_paths = rf.build_rpms(many, out["many"], cache_dir=cache, srpm=False, jobs=2)
    plain = rf.build_rpms(rf.plain_build("bash-completion-extra"), out["plain"],
                          cache_dir=cache, srpm=False)

    state = State()
    state.add_user("alice", perms=["kabi"], password="alice-pw")
    state.add_user("bob", password="bob-pw")
    state.add_host("builder1", channels=("default", "kabi"))
    for tag in ("el9-kernel", "kmods9-testing", "kmods9-ok", "kmods9-many", "kmods9-few",
                "misc"):
        state.add_tag(tag)
    state.import_rpms(k1, owner="kojiadmin", task_id=True, tag="el9-kernel")
    state.import_rpms(k2, owner="kojiadmin", task_id=True, tag="el9-kernel")
    state.import_rpms(kmod_paths, owner="alice", task_id=True, tag="kmods9-testing")
    state.tag_build("kmods9-ok", OK)
    for build in state.import_rpms(many_paths, owner="alice", task_id=True, tag="kmods9-many"
                                   )[:4]:
        state.tag_build("kmods9-few", build["id"])
    state.import_rpms(plain, owner="alice", task_id=True, tag="misc")
    rules = tmp / "rules.yaml"
    rules.write_text("kernel_packages: [kernel]\n"
                     "watch:\n"
                     "  - kernel_tag: el9-kernel\n"
                     "    kmod_tags: [kmods9-testing]\n"
                     "    target: kmods9-el9\n")
    yield HubWorld(state, Truth(old, new, changed, removed, churn), rules, tmp)
    state.cleanup()


def _cli(hw: HubWorld, hub: HubServer, name: str, server: str | None = None) -> Cli:
    home = hw.tmp / f"home-{name}"
    home.mkdir(exist_ok=True)
    config = hw.tmp / f"koji-{name}.conf"  # the 1.36 CLI refuses to run without a profile
    config.write_text(f"[koji]\nserver = {server or hub.url}\ntopurl = {hub.topurl}\n"
                      "weburl = http://koji.example/koji\n"
                      f"plugin_paths = {ROOT / 'cli_plugin'}\n"
                      "poll_interval = 1\nmax_retries = 0\n")
    return Cli(hub, config, home)


@contextlib.contextmanager
def _env_var(name: str) -> Iterator[None]:
    """Restore an environment variable a plugin loader sets."""
    saved = os.environ.get(name)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@pytest.fixture(scope="module")
def plain(hw: HubWorld) -> Iterator[Cli]:
    """The CLI against a hub with no koji-kabi hub plugin (any Koji)."""
    with HubServer(hw.state) as hub:
        yield _cli(hw, hub, "plain")


@pytest.fixture(scope="module")
def plugged(hw: HubWorld) -> Iterator[Cli]:
    """The CLI against a hub with the koji-kabi hub plugin loaded."""
    conf = write_ini(hw.tmp / "kabi-hub.conf", rules=hw.rules,
                     claims_dir=hw.tmp / "claims")
    with _env_var("KOJI_KABI_HUB_CONFIG"):
        module = load_hub_plugin(hw.state, conf)  # fresh import: it reads the config then
    assert module.DISABLED is None, module.DISABLED
    with HubServer(hw.state) as hub:
        hub.load_plugin(module)
        yield _cli(hw, hub, "plugged")


def _ok(res: subprocess.CompletedProcess, code: int) -> None:
    """Exit status ``code``, and never a traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr


def _one_line_error(res: subprocess.CompletedProcess, *words: str) -> str:
    _ok(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _verdict_line(out: str, kmod_rpm: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(kmod_rpm + " on ")]
    return line


def _symbol_rows(out: str) -> dict[str, list[str]]:
    """{symbol: [required, provided, stable]} from the verdict tables."""
    rows = {}
    for ln in out.splitlines():
        cells = ln.split()
        if ln.startswith("  ") and len(cells) == 4 and cells[0] != "symbol":
            rows[cells[0]] = cells[1:]
    return rows


def _crc(value: int | None) -> str:
    return "missing" if value is None else f"0x{value:08x}"


# ----------------------------------------------------------------------- kabi-check: kmods


def test_help_lists_the_commands(plain: Cli) -> None:
    res = plain("help")
    _ok(res, 0)
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.startswith("        ")}
    assert "kABI against a kernel" in lines["kabi-check"]
    assert "kABI symbol delta" in lines["kabi-delta"]
    assert "rebuild the kmods it breaks" in lines["kabi-rebuild"]
    res = plain("kabi-check", "--help")
    _ok(res, 0)
    assert "--kernel=NVR" in res.stdout and "--kmod-tag=TAG" in res.stdout


def test_kmod_compatible(plain: Cli) -> None:
    res = plain("kabi-check", OK, "--kernel", K2)
    _ok(res, 0)
    for arch in ARCHES:
        assert _verdict_line(res.stdout, f"kmod-ok-1.0-1.el9.{arch}") == (
            f"kmod-ok-1.0-1.el9.{arch} on {K2} ({arch}): compatible (20 symbols)")
    assert res.stdout.rstrip().endswith("2 compatible, 0 incompatible")


def test_kmod_incompatible_names_symbols_and_crcs_per_arch(plain: Cli, hw: HubWorld) -> None:
    t = hw.truth
    res = plain("kabi-check", CRC, "--kernel", K2)
    _ok(res, 1)
    assert _verdict_line(res.stdout, "kmod-crc-1.0-1.el9.x86_64").endswith(
        "INCOMPATIBLE - 0 missing, 2 CRC mismatch of 12 symbols")
    assert _verdict_line(res.stdout, "kmod-crc-1.0-1.el9.aarch64").endswith(
        "compatible (10 symbols)")
    rows = _symbol_rows(res.stdout)
    assert rows == {s: [_crc(t.old[X86][s]), _crc(t.new[X86][s]), "-"] for s in t.changed}
    assert ["symbol", "required", "provided", "stable"] in [ln.split() for ln in
                                                            res.stdout.splitlines()]
    assert res.stdout.rstrip().endswith("1 compatible, 1 incompatible")

    res = plain("kabi-check", GONE, "--kernel", K2)
    _ok(res, 1)
    assert "INCOMPATIBLE - 1 missing, 0 CRC mismatch of 6 symbols" in res.stdout
    assert _symbol_rows(res.stdout) == {t.removed: [_crc(t.old[X86][t.removed]), "missing",
                                                    "-"]}
    # against the kernel it was built for, everything loads
    _ok(plain("kabi-check", CRC, "--kernel", K1), 0)


def test_kmod_against_the_latest_kernel_of_a_tag(plain: Cli) -> None:
    res = plain("kabi-check", CRC, "--tag", "el9-kernel")
    _ok(res, 1)
    assert f"on {K2} (x86_64): INCOMPATIBLE" in res.stdout  # K2 is the latest there


def test_kmod_json_and_arch(plain: Cli, hw: HubWorld) -> None:
    res = plain("kabi-check", CRC, "--kernel", K2, "--json")
    _ok(res, 1)
    verdicts = json.loads(res.stdout)
    assert sorted((v["key"], v["compatible"]) for v in verdicts) == [("aarch64", True),
                                                                     ("x86_64", False)]
    x86 = next(v for v in verdicts if v["key"] == X86)
    assert x86["kmod"] == "kmod-crc-1.0-1.el9.x86_64" and x86["kernel"] == K2
    assert {p["symbol"]: (p["required"], p["provided"]) for p in x86["problems"]} == {
        s: (_crc(hw.truth.old[X86][s]), _crc(hw.truth.new[X86][s]))
        for s in hw.truth.changed}

    res = plain("kabi-check", CRC, "--kernel", K2, "--arch", "aarch64")
    _ok(res, 0)
    assert "x86_64" not in res.stdout and "(aarch64): compatible" in res.stdout
    res = plain("kabi-check", CRC, "--kernel", K2, "--arch", X86, "--json")
    _ok(res, 1)
    assert [v["key"] for v in json.loads(res.stdout)] == [X86]
    _one_line_error(plain("kabi-check", GONE, "--kernel", K2, "--arch", "aarch64"), GONE,
                    "no kmod package (kernel(symbol) = CRC requires) for aarch64")


# ----------------------------------------------------------------------- kabi-check: kernels


def test_kernel_against_old_kernel_lists_broken_kmods(plain: Cli, hw: HubWorld) -> None:
    res = plain("kabi-check", K2, "--against", K1, "--kmod-tag", "kmods9-testing")
    _ok(res, 1)
    out = res.stdout
    assert out.startswith(f"kABI delta {K1} -> {K2}")
    c = hw.truth.churn[X86]
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("x86_64 "))
    assert row[1:6] == [str(len(hw.truth.old[X86])), str(len(c.symbols)), str(len(c.added)),
                        str(len(c.removed)), str(len(c.changed))]
    assert "breaking: yes" in out
    assert f"kmods in kmods9-testing broken by {K2}:" in out
    broken = {ln.split(" on ")[0] for ln in out.splitlines() if "INCOMPATIBLE" in ln}
    assert broken == {"kmod-crc-1.0-1.el9.x86_64", "kmod-gone-2.0-3.el9.x86_64"}
    # only the broken ones are shown; the count is of every kmod package in the tag
    assert out.rstrip().endswith("3 compatible, 2 incompatible")
    assert "kmod-ok" not in out
    assert set(_symbol_rows(out)) == {*hw.truth.changed, hw.truth.removed}


def test_kernel_that_breaks_nothing_exits_0(plain: Cli) -> None:
    res = plain("kabi-check", K2, "--against", K1, "--kmod-tag", "kmods9-ok")
    _ok(res, 0)
    assert f"all 2 kmod packages in kmods9-ok are compatible with {K2}" in res.stdout
    assert "breaking: yes" in res.stdout  # the delta itself breaks things, just not these


def test_kernel_json(plain: Cli) -> None:
    res = plain("kabi-check", K2, "--against", K1, "--kmod-tag", "kmods9-testing", "--json")
    _ok(res, 1)
    data = json.loads(res.stdout)
    assert (data["kernel"], data["previous"], data["kmod_tags"]) == (K2, K1, ["kmods9-testing"])
    assert {d["key"] for d in data["delta"]["deltas"]} == set(ARCHES)
    assert sorted((v["kmod"], v["compatible"]) for v in data["verdicts"]) == [
        ("kmod-crc-1.0-1.el9.aarch64", True), ("kmod-crc-1.0-1.el9.x86_64", False),
        ("kmod-gone-2.0-3.el9.x86_64", False), ("kmod-ok-1.0-1.el9.aarch64", True),
        ("kmod-ok-1.0-1.el9.x86_64", True)]


# ----------------------------------------------------------------------- rules files


def test_rules_file_pairs_kmod_tags_and_kernel_tags(plain: Cli, hw: HubWorld) -> None:
    # a kmod: the kernel tag is the one the rules pair with a tag the kmod is in
    res = plain("kabi-check", CRC, "--rules", str(hw.rules))
    _ok(res, 1)
    assert f"on {K2} (x86_64): INCOMPATIBLE" in res.stdout
    # a kernel: kmod tags (and the previous kernel) come from the rules
    res = plain("kabi-check", K2, env=plain.env(KOJI_KABI_RULES=str(hw.rules)))
    _ok(res, 1)
    assert res.stdout.startswith(f"kABI delta {K1} -> {K2}")
    assert f"kmods in kmods9-testing broken by {K2}:" in res.stdout
    # the default place: ~/.config/koji-kabi/rules.yaml
    home = hw.tmp / "home-with-rules"
    (home / ".config" / "koji-kabi").mkdir(parents=True, exist_ok=True)
    shutil.copy(hw.rules, home / ".config" / "koji-kabi" / "rules.yaml")
    res = plain("kabi-check", CRC, env=plain.env(HOME=str(home)))
    _ok(res, 1)
    assert f"on {K2} (x86_64): INCOMPATIBLE" in res.stdout
    # without rules nothing says which kernel a kmod goes with
    _one_line_error(plain("kabi-check", CRC), CRC, "--kernel", "--tag")
    res = plain("kabi-check", K2)
    _ok(res, 0)
    assert "no previous kernel to compare with" in res.stdout
    assert "no kmod tags (use --kmod-tag or a rules file)" in res.stdout
    # --tag names the kernel tag: the previous kernel is the one before K2 there
    res = plain("kabi-check", K2, "--tag", "el9-kernel")
    _ok(res, 0)
    assert res.stdout.startswith(f"kABI delta {K1} -> {K2}")


def test_bad_rules_file_is_one_line(plain: Cli, hw: HubWorld) -> None:
    bad = hw.tmp / "bad-rules.yaml"
    bad.write_text("watch: [{kernel_tag: el9-kernel}]\n")
    _one_line_error(plain("kabi-check", CRC, "--rules", str(bad)), str(bad), "kmod_tags")
    missing = str(hw.tmp / "missing.yaml")
    _one_line_error(plain("kabi-check", CRC, env=plain.env(KOJI_KABI_RULES=missing)), missing)


# ----------------------------------------------------------------------- errors


def test_unknown_build_is_one_clear_line(plain: Cli) -> None:
    line = _one_line_error(plain("kabi-check", "kmod-nope-1.0-1.el9", "--kernel", K2),
                           "kmod-nope-1.0-1.el9", "no such build")
    assert line == "koji: kmod-nope-1.0-1.el9: no such build"
    _one_line_error(plain("kabi-check", OK, "--kernel", "kernel-9-9"), "kernel-9-9",
                    "no such build")
    _one_line_error(plain("kabi-delta", K1, "kernel-9-9"), "kernel-9-9", "no such build")
    # not even an NVR: the hub's fault, still one line and exit 2 (1 means incompatible)
    _one_line_error(plain("kabi-check", "nonsense", "--kernel", K2), "nonsense")
    _one_line_error(plain("kabi-check", OK, "--tag", "no-such-tag"), "no-such-tag")


def test_not_a_kmod_nor_a_kernel(plain: Cli) -> None:
    _one_line_error(plain("kabi-check", PLAIN, "--kernel", K2), PLAIN, "not a kmod build")
    _one_line_error(plain("kabi-check", PLAIN), PLAIN, "not a kmod build")
    _one_line_error(plain("kabi-check", OK, "--kernel", PLAIN), PLAIN, "not a kernel build")
    _one_line_error(plain("kabi-delta", K1, OK), OK, "not a kernel build")


def test_usage_errors_exit_2(plain: Cli) -> None:
    res = plain("kabi-check")
    _ok(res, 2)
    assert "give exactly one build" in res.stderr and "Usage: koji kabi-check" in res.stderr
    _ok(plain("kabi-delta", K1), 2)
    # options of the other kind of build are an error, not silently ignored
    _one_line_error(plain("kabi-check", OK, "--kernel", K2, "--against", K1), OK,
                    "--against and --kmod-tag are for kernel builds")
    _one_line_error(plain("kabi-check", K2, "--kernel", K1), K2, "--kernel is for kmod builds")


# ----------------------------------------------------------------------- kabi-delta


def test_delta(plain: Cli, hw: HubWorld) -> None:
    t = hw.truth
    res = plain("kabi-delta", K1, K2)
    _ok(res, 1)
    out = res.stdout
    assert out.startswith(f"kABI delta {K1} -> {K2}") and "breaking: yes" in out
    for arch in ARCHES:
        c = t.churn[arch]
        assert f"{arch}: CRC changed ({len(c.changed)})" in out
        assert f"{arch}: removed ({len(c.removed)})" in out
        assert f"{arch}: added ({len(c.added)})" in out
    sym = t.changed[0]
    (row,) = [ln.split() for ln in out.splitlines() if ln.split()[:1] == [sym]
              and _crc(t.old[X86][sym]) in ln]
    assert row == [sym, _crc(t.old[X86][sym]), _crc(t.new[X86][sym]), "-"]

    res = plain("kabi-delta", K1, K2, "--summary")
    _ok(res, 1)
    assert "CRC changed" not in res.stdout and "breaking: yes" in res.stdout
    assert len(res.stdout.splitlines()) < 8

    res = plain("kabi-delta", K1, K2, "--json", "--arch", X86)
    _ok(res, 1)
    data = json.loads(res.stdout)
    (d,) = data["deltas"]
    assert d["key"] == X86 and data["breaking"] is True
    assert {c["symbol"] for c in d["changed"]} == set(t.churn[X86].changed)
    assert {c["symbol"] for c in d["removed"]} == set(t.churn[X86].removed)

    res = plain("kabi-delta", K1, K1)
    _ok(res, 0)
    assert "breaking: no" in res.stdout


# ----------------------------------------------------------------------- any hub


READ_ONLY = [
    ("kabi-check", OK, "--kernel", K2),
    ("kabi-check", CRC, "--tag", "el9-kernel", "--json"),
    ("kabi-check", K2, "--against", K1, "--kmod-tag", "kmods9-testing"),
    ("kabi-delta", K1, K2, "--summary"),
    ("kabi-check", "kmod-nope-1-1", "--kernel", K2),
]


def test_read_only_commands_do_not_need_the_hub_plugin(plain: Cli, plugged: Cli) -> None:
    expected = [plain(*args) for args in READ_ONLY]
    assert [r.returncode for r in expected] == [0, 1, 1, 1, 2]
    for enabled in (True, False):
        plugged.hub.plugins_enabled = enabled
        plugged.hub.reset_log()
        try:
            got = [plugged(*args) for args in READ_ONLY]
        finally:
            plugged.hub.plugins_enabled = True
        assert [(r.returncode, r.stdout, r.stderr) for r in got] == [
            (r.returncode, r.stdout, r.stderr) for r in expected]
        assert not [c.method for c in plugged.hub.calls() if c.method.startswith("kabi.")]


def test_round_trips_do_not_grow_with_kmods_and_arches(plain: Cli) -> None:
    def trips(tag: str) -> tuple[int, int]:
        plain.hub.reset_log()
        res = plain("kabi-check", K2, "--against", K1, "--kmod-tag", tag)
        _ok(res, 0)
        checked = res.stdout.split("all ")[1].split()[0]
        return plain.hub.round_trips, int(checked)

    few, n_few = trips("kmods9-few")
    many, n_many = trips("kmods9-many")
    assert (n_few, n_many) == (4 * 2, MANY * 2)
    # every kmod RPM was read (getRPMDeps, or its header from /kojifiles) ...
    files = {r["path"] for r in plain.hub.file_requests}
    assert len(plain.hub.calls("getRPMDeps")) + len(files) > MANY * 2
    assert many == few <= 12, (few, many)  # ... in the same few multicall round trips


# ----------------------------------------------------------------------- kabi-rebuild


def test_rebuild_needs_the_hub_plugin(plain: Cli, plugged: Cli) -> None:
    res = plain.login("alice", "kabi-rebuild", K2, "--nowait")
    line = _one_line_error(res, "no koji-kabi hub plugin")
    assert line == "koji: this hub has no koji-kabi hub plugin (kabi.rebuild is unknown)"
    plugged.hub.plugins_enabled = False
    try:
        _one_line_error(plugged.login("alice", "kabi-rebuild", K2, "--nowait"),
                        "no koji-kabi hub plugin")
    finally:
        plugged.hub.plugins_enabled = True


def test_rebuild_creates_a_kabicheck_task(plugged: Cli, hw: HubWorld) -> None:
    before = {t["id"] for t in hw.state.tasks("kabiCheck")}
    res = plugged.login("alice", "kabi-rebuild", K2, "--nowait", "--dry-run")
    _ok(res, 0)
    lines = res.stdout.splitlines()
    assert lines[0].startswith("Created task: ")
    task_id = int(lines[0].split(": ")[1])
    assert lines[1] == f"Task info: http://koji.example/koji/taskinfo?taskID={task_id}"
    (task,) = [t for t in hw.state.tasks("kabiCheck") if t["id"] not in before]
    k2 = plugged.hub.client().getBuild(K2)
    assert task["id"] == task_id and list(task["request"]) == [k2["id"], {"dry_run": True}]
    assert task["owner"] == plugged.hub.client().getUser("alice")["id"]
    assert [c.user for c in plugged.hub.calls("kabi.rebuild")][-1] == "alice"

    res = plugged.login("alice", "kabi-rebuild", K2, "--nowait", "--quiet", "--against", K1)
    _ok(res, 0)
    assert res.stdout == ""
    (task,) = [t for t in hw.state.tasks("kabiCheck")
               if t["id"] not in before and t["id"] != task_id]
    assert task["request"][1] == {"dry_run": False, "against": plugged.hub.client().getBuild(
        K1)["id"]}


def test_rebuild_on_a_hub_whose_plugin_is_disabled(hw: HubWorld) -> None:
    with _env_var("KOJI_KABI_HUB_CONFIG"):
        module = load_hub_plugin(hw.state, hw.tmp / "no-such-kabi.conf")
    assert module.DISABLED
    with HubServer(hw.state) as hub:
        hub.load_plugin(module)
        res = _cli(hw, hub, "disabled").login("alice", "kabi-rebuild", K2, "--nowait")
    _one_line_error(res, "kabi hub plugin is disabled", "no-such-kabi.conf")


def test_rebuild_without_the_permission_is_refused(plugged: Cli, hw: HubWorld) -> None:
    before = len(hw.state.tasks("kabiCheck"))
    line = _one_line_error(plugged.login("bob", "kabi-rebuild", K2, "--nowait"),
                           "needs the kabi permission")
    assert line == "koji: kabi.rebuild needs the kabi permission"
    _one_line_error(plugged.login("alice", "kabi-rebuild", OK, "--nowait"), OK,
                    "not a kernel build")
    _one_line_error(plugged.login("alice", "kabi-rebuild", "kernel-9-9", "--nowait"),
                    "kernel-9-9")
    assert len(hw.state.tasks("kabiCheck")) == before


def _new_task(state: State, before: set[int], proc: subprocess.Popen) -> int:
    """The kabiCheck task a running ``koji kabi-rebuild`` created."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [t["id"] for t in state.tasks("kabiCheck") if t["id"] not in before]
        if new:
            return new[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("koji kabi-rebuild created no task")


def test_rebuild_waits_for_the_check_and_prints_its_report(plugged: Cli, hw: HubWorld) -> None:
    """Without --nowait the command waits for the kabiCheck task (run here by the real
    builder plugin), not for its rebuilds, then prints the task's report."""
    conf = write_ini(hw.tmp / "kabi-builder.conf", rules=hw.rules,
                     cache_dir=hw.tmp / "builder-cache", settle_seconds=0, poll=0.01,
                     tag_wait=0)
    with _env_var("KOJI_KABI_BUILDER_CONFIG"):
        builder = load_builder_plugin(conf)
    kojid = kojid_options(str(hw.tmp / "kojid"), topdir=hw.state.topdir,
                          server=plugged.hub.url)
    host = plugged.hub.client("builder1")
    for fail in (False, True):
        before = {t["id"] for t in hw.state.tasks("kabiCheck")}
        proc = subprocess.Popen(plugged.argv("kabi-rebuild", K2, "--dry-run", "--wait",
                                             user="alice"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=plugged.env())
        try:
            task_id = _new_task(hw.state, before, proc)
            if fail:
                hw.state.fail_task(task_id, "kabiCheck: something went wrong")
            else:
                result = run_task_handler(builder.KabiCheckTask, task_id, host, kojid)
                assert result["incompatible"] == 2 and result["previous"] == K1
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if fail:
            assert proc.returncode == 1, (out, err)
            assert "kabiCheck: something went wrong" in err and "Traceback" not in err
            continue
        assert proc.returncode == 0, (out, err)
        assert out.startswith(f"Created task: {task_id}\n")
        assert f"kABI check of {K2} (tag el9-kernel)" in out
        assert f"previous kernel: {K1}" in out and "dry run: yes" in out
        assert "Kmod builds: 3 in the tags, 1 compatible, 2 incompatible" in out


def test_unreachable_hub_is_exit_2(hw: HubWorld, plain: Cli) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = _cli(hw, plain.hub, "dead", server=f"http://127.0.0.1:{port}/kojihub")
    for args in (("kabi-check", OK, "--kernel", K2), ("kabi-delta", K1, K2)):
        res = dead(*args)
        _ok(res, 2)
        assert res.stderr.strip() == "Error: Unable to connect to server"


def test_build_ids_and_force_auth(plain: Cli) -> None:
    ids = {nvr: plain.hub.client().getBuild(nvr)["id"] for nvr in (K1, K2, CRC)}
    res = plain("kabi-check", str(ids[CRC]), "--kernel", str(ids[K2]))
    _ok(res, 1)
    assert f"kmod-crc-1.0-1.el9.x86_64 on {K2} (x86_64): INCOMPATIBLE" in res.stdout
    _ok(plain("kabi-delta", str(ids[K1]), str(ids[K2]), "--summary"), 1)
    _one_line_error(plain("kabi-check", "999999", "--kernel", K2), "999999: no such build")
    # --force-auth logs in even for read-only commands, as with Koji's own
    plain.hub.reset_log()
    res = plain("--force-auth", "--authtype", "password", "--user", "bob", "--password",
                "bob-pw", "kabi-check", OK, "--kernel", K2)
    _ok(res, 0)
    assert [c.args[0] for c in plain.hub.calls("login")] == ["bob"]
    assert {c.user for c in plain.hub.calls("getBuild")} == {"bob"}
