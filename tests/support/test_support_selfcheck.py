"""Self-check of the test-support library: the fixtures are real RPMs saying what we meant.

Why: every other test trusts rpmfactory and oracle; if they were wrong, koji-kabi's tests
would pass for the wrong reason.  All checks go through rpm/rpm2archive/dnf, never through
koji-kabi.
"""

from __future__ import annotations

import gzip
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import oracle, rpmfactory
from .rpmfactory import format_crc

ARCH3 = ("x86_64", "aarch64", "ppc64le")
VR = "5.14.0-1.el9"


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing system tools: {', '.join(missing)}")


@pytest.fixture(scope="session")
def rpm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One rpmfactory cache per session so identical fixtures are built once."""
    _need("rpm", "rpmbuild")
    return tmp_path_factory.mktemp("rpmcache")


@dataclass(frozen=True)
class World:
    """The shared fixture RPMs and the truth they were built from."""

    syms: dict[str, int]
    tables: dict[str, dict[str, int]]
    paths: list[Path]
    out: Path
    bad: dict[str, int]
    used: list[str]

    def rpm(self, name: str) -> Path:
        """Path of one produced RPM, asserting the factory really produced it."""
        path = self.out / name
        assert path in self.paths
        return path


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory, rpm_cache: Path) -> World:
    """A 3-arch kernel with a debug flavour, a compatible and a broken kmod, a plain RPM."""
    syms = rpmfactory.random_symbols(12, seed=11)
    tables = rpmfactory.per_arch_tables(syms, ARCH3, differ_frac=0.5, seed=11)
    used = sorted(syms)[:4]
    good = {s: tables["x86_64"][s] for s in used}
    bad = dict(good)
    bad[used[0]] ^= 0x1  # one CRC off: must be the only thing repoclosure reports
    builds = [
        rpmfactory.kernel_build(
            arches=ARCH3, symbols=tables, flavours=("", "debug"), provided_ksyms=True
        ),
        rpmfactory.kmod_build(
            "kmod-good",
            requires=good,
            ksym_requires={"other_export": 0x1234ABCD},
            ksym_provides={"good_export": 0xCAFE},
            extra_requires=["kmod-other"],
        ),
        rpmfactory.kmod_build("kmod-bad", requires=bad),
        rpmfactory.kmod_build(
            "kmod-other", ksym_provides={"other_export": 0x1234ABCD}, modules=("other",)
        ),
        rpmfactory.plain_build(),
    ]
    out = tmp_path_factory.mktemp("small_world")
    paths = rpmfactory.build_rpms(builds, out, cache_dir=rpm_cache, jobs=2)
    return World(syms, tables, paths, out, bad, used)


# --------------------------------------------------------------------------- kernels


def test_build_produces_expected_files(small_world: World) -> None:
    names = sorted(p.name for p in small_world.paths)
    assert f"kernel-{VR}.src.rpm" in names
    for arch in ARCH3:
        for pkg in ("core", "modules", "modules-extra", "debug-core", "debug-modules-extra"):
            assert f"kernel-{pkg}-{VR}.{arch}.rpm" in names
    info = oracle.rpm_info(small_world.rpm(f"kernel-core-{VR}.aarch64.rpm"))
    assert (info.name, info.arch, info.is_source) == ("kernel-core", "aarch64", False)
    assert oracle.rpm_info(small_world.rpm(f"kernel-{VR}.src.rpm")).is_source


@pytest.mark.parametrize("arch", ARCH3)
def test_kernel_core_provides_per_arch_crcs(small_world: World, arch: str) -> None:
    table = small_world.tables[arch]
    core = small_world.rpm(f"kernel-core-{VR}.{arch}.rpm")
    provides = oracle.rpm_query_deps(core, "provides")
    expected = sorted(f"kernel({s}) = {format_crc(c)}" for s, c in table.items())
    assert oracle.kernel_sym_lines(provides) == expected
    assert "kernel = 5.14.0-1.el9" in provides
    assert f"kernel-uname-r = {VR}.{arch}" in provides
    # symvers.gz in the payload agrees with the header, 5 columns, empty namespace
    payload = oracle.rpm_payload(core)
    text = gzip.decompress(payload[f"/lib/modules/{VR}.{arch}/symvers.gz"]).decode()
    assert text == rpmfactory.symvers_text(table)
    for line in text.splitlines():
        crc, sym, _module, etype, ns = line.split("\t")
        assert table[sym] == int(crc, 16) and len(crc) == 10
        assert etype in ("EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL") and ns == ""


def test_arch_tables_really_differ(small_world: World) -> None:
    lines = {
        arch: oracle.kernel_sym_lines(
            oracle.rpm_query_deps(small_world.rpm(f"kernel-core-{VR}.{arch}.rpm"), "provides")
        )
        for arch in ARCH3
    }
    assert lines["x86_64"] != lines["aarch64"] != lines["ppc64le"]


def test_debug_flavour_and_provided_ksyms(small_world: World) -> None:
    arch = "x86_64"
    table = small_world.tables[arch]
    dbg = small_world.rpm(f"kernel-debug-core-{VR}.{arch}.rpm")
    assert f"kernel-uname-r = {VR}.{arch}+debug" in oracle.rpm_query_deps(dbg, "provides")
    assert f"/lib/modules/{VR}.{arch}+debug/symvers.gz" in oracle.rpm_query_files(dbg)
    # provided_ksyms: module-owned exports also appear on the modules subpackages
    from_modules: set[str] = set()
    for part in ("modules", "modules-extra"):
        pkg = small_world.rpm(f"kernel-{part}-{VR}.{arch}.rpm")
        from_modules |= set(oracle.kernel_sym_lines(oracle.rpm_query_deps(pkg, "provides")))
    expected = {
        f"kernel({s}) = {format_crc(c)}"
        for s, c in table.items()
        if rpmfactory.default_export(s)[0] != "vmlinux"
    }
    assert from_modules == expected


@pytest.mark.parametrize("arch", [*rpmfactory.ARCHES, "noarch"])
def test_every_arch_builds(tmp_path: Path, rpm_cache: Path, arch: str) -> None:
    build = rpmfactory.plain_build(f"arch-probe-{arch.replace('_', '-')}", arch=arch)
    (path,) = rpmfactory.build_rpms(build, tmp_path, srpm=False, cache_dir=rpm_cache)
    assert oracle.rpm_info(path).arch == arch


@pytest.mark.slow
def test_30k_provide_kernel_core(tmp_path: Path, rpm_cache: Path) -> None:
    syms = rpmfactory.random_symbols(30_000, seed=30)
    build = rpmfactory.kernel_build(symbols={"x86_64": syms}, split=("core",))
    t0 = time.perf_counter()
    paths = rpmfactory.build_rpms(build, tmp_path, srpm=False, cache_dir=rpm_cache)
    elapsed = time.perf_counter() - t0
    lines = oracle.kernel_sym_lines(oracle.rpm_query_deps(paths[0], "provides"))
    assert len(lines) == 30_000
    print(f"30k-provide kernel-core: {elapsed:.2f}s (0 if cached)")


def test_padding_makes_big_payload(tmp_path: Path, rpm_cache: Path) -> None:
    build = rpmfactory.kernel_build(symbols={"x86_64": {"a": 1}}, payload_bytes=3_000_000)
    paths = rpmfactory.build_rpms(build, tmp_path, srpm=False, cache_dir=rpm_cache)
    core = next(p for p in paths if p.name.startswith("kernel-core-"))
    assert core.stat().st_size > 3_000_000  # random bytes do not compress
    assert f"/lib/modules/{VR}.x86_64/padding.bin" in oracle.rpm_query_files(core)


# --------------------------------------------------------------------------- kmods & others


def test_kmod_deps_and_files(small_world: World) -> None:
    kmod = small_world.rpm("kmod-good-1.0-1.el9.x86_64.rpm")
    requires = oracle.rpm_query_deps(kmod, "requires")
    table = small_world.tables["x86_64"]
    expected = sorted(f"kernel({s}) = {format_crc(table[s])}" for s in small_world.used)
    assert oracle.kernel_sym_lines(requires) == expected
    assert "ksym(other_export) = 0x1234abcd" in requires
    provides = oracle.rpm_query_deps(kmod, "provides")
    assert {"kmod(foo.ko)", "ksym(good_export) = 0x0000cafe"} <= set(provides)
    assert oracle.rpm_query_files(kmod) == [f"/lib/modules/{VR}.x86_64/extra/good/foo.ko"]
    assert oracle.rpm_info(small_world.rpm("kmod-good-1.0-1.el9.src.rpm")).is_source


def test_plain_build_has_no_kernel_deps(small_world: World) -> None:
    plain = small_world.rpm("bash-completion-extra-1.0-1.el9.noarch.rpm")
    for kind in ("provides", "requires"):
        assert oracle.kernel_sym_lines(oracle.rpm_query_deps(plain, kind)) == []


@pytest.mark.parametrize(
    ("naming", "header"),
    [("stablelist", "[rhel9_x86_64_stablelist]"), ("whitelist", "[rhel8_x86_64_whitelist]")],
)
def test_stablelist_payload(
    tmp_path: Path, rpm_cache: Path, naming: Literal["stablelist", "whitelist"], header: str
) -> None:
    lists = {"x86_64": ["printk", "kmalloc"], "aarch64": ["printk"]}
    build = rpmfactory.stablelist_build(lists=lists, naming=naming)
    (srpm, rpm) = rpmfactory.build_rpms(build, tmp_path, cache_dir=rpm_cache)
    assert srpm.name == f"kernel-abi-{naming}s-{VR}.src.rpm"
    assert rpm.name == f"kernel-abi-{naming}s-{VR}.noarch.rpm"
    d = "kabi-rhel90" if naming == "stablelist" else "kabi-rhel80"
    files = oracle.rpm_query_files(rpm)
    assert f"/lib/modules/{d}/kabi_{naming}_x86_64" in files
    assert f"/lib/modules/{d}/kabi_{naming}_aarch64" in files
    assert "/lib/modules/kabi-current" in files
    payload = oracle.rpm_payload(rpm)
    assert payload["/lib/modules/kabi-current"] == d.encode()
    text = payload[f"/lib/modules/{d}/kabi_{naming}_x86_64"].decode()
    assert text == f"{header}\n\tprintk\n\tkmalloc\n"


# --------------------------------------------------------------------------- oracles


def test_repoclosure_flags_only_broken_kmod(small_world: World) -> None:
    _need("createrepo_c", "dnf")
    paths = small_world.paths
    try:
        result = oracle.repoclosure(paths, arch="x86_64")
    except oracle.ToolMissing as exc:
        pytest.skip(str(exc))
    bad = small_world.bad
    first = small_world.used[0]
    assert result == {"kmod-bad-1.0-1.el9.x86_64": {f"kernel({first}) = {format_crc(bad[first])}"}}
    # without kmod-other, kmod-good's ksym() and package requires are unresolved
    without = [p for p in paths if not p.name.startswith("kmod-other")]
    result = oracle.repoclosure(without, ["kmod-good"], arch="x86_64", key="name")
    assert result == {"kmod-good": {"ksym(other_export) = 0x1234abcd", "kmod-other"}}


def test_repoclosure_is_per_arch(tmp_path: Path, rpm_cache: Path) -> None:
    """An aarch64 kmod carrying x86_64 CRCs breaks on aarch64 only."""
    _need("createrepo_c", "dnf")
    tables = {"x86_64": {"a_sym": 1, "b_sym": 2}, "aarch64": {"a_sym": 3, "b_sym": 2}}
    kern = rpmfactory.kernel_build(arches=("x86_64", "aarch64"), symbols=tables)
    kmod = rpmfactory.kmod_build("kmod-x", per_arch={a: tables["x86_64"] for a in tables})
    paths = rpmfactory.build_rpms([kern, kmod], tmp_path, cache_dir=rpm_cache)
    try:
        assert oracle.repoclosure(paths, arch="x86_64") == {}
    except oracle.ToolMissing as exc:
        pytest.skip(str(exc))
    assert oracle.repoclosure(paths, arch="aarch64", key="name") == {
        "kmod-x": {"kernel(a_sym) = 0x00000001"}
    }


def test_comm_and_grep_match_python_sets() -> None:
    _need("comm", "sort", "grep")
    old = rpmfactory.random_symbols(300, seed=3)
    ch = rpmfactory.churn(old, changed_frac=0.1, added=7, removed=5, seed=3)
    old_lines = [f"kernel({s}) = {format_crc(c)}" for s, c in old.items()]
    new_lines = [f"kernel({s}) = {format_crc(c)}" for s, c in ch.symbols.items()]
    noise = ["rpmlib(FileDigests) <= 4.6.0-1", "kernel = 5.14.0", *old_lines[:3]]
    assert oracle.kernel_sym_lines(noise + old_lines) == sorted(set(old_lines))
    only_old, only_new, both = oracle.comm_delta(old_lines, new_lines)
    assert set(only_old) == set(old_lines) - set(new_lines)
    assert set(only_new) == set(new_lines) - set(old_lines)
    assert set(both) == set(old_lines) & set(new_lines)
    assert {line[7:].split(")")[0] for line in only_old} == ch.changed | ch.removed
    assert {line[7:].split(")")[0] for line in only_new} == ch.changed | ch.added


# --------------------------------------------------------------------------- factory details


def test_cache_reuses_builds(
    tmp_path: Path, rpm_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = rpmfactory.plain_build("cache-probe")
    first = rpmfactory.build_rpms(build, tmp_path / "a", cache_dir=rpm_cache)
    assert (rpm_cache / rpmfactory.cache_key(build)).is_dir()

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("rpmbuild must not run for a cached build")

    monkeypatch.setattr(rpmfactory, "_run_rpmbuild", boom)
    second = rpmfactory.build_rpms(build, tmp_path / "b", cache_dir=rpm_cache)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    changed = rpmfactory.plain_build("cache-probe", files={"/usr/share/x": b"other"})
    assert rpmfactory.cache_key(changed) != rpmfactory.cache_key(build)
    with pytest.raises(AssertionError, match="must not run"):
        rpmfactory.build_rpms(changed, tmp_path / "c", cache_dir=rpm_cache)


def test_corruption_helpers(small_world: World, tmp_path: Path) -> None:
    src = small_world.rpm("kmod-good-1.0-1.el9.x86_64.rpm")
    cut = rpmfactory.truncate_copy(src, tmp_path / "cut.rpm", 200)
    assert cut.stat().st_size == 200
    junk = rpmfactory.make_not_rpm(tmp_path / "junk.rpm")
    garbled = rpmfactory.overwrite_copy(src, tmp_path / "garbled.rpm", 0, b"XXXX")
    for bad in (cut, junk, garbled):
        with pytest.raises(oracle.OracleError):
            oracle.rpm_query_deps(bad, "requires")


def test_spec_escaping_and_validation(tmp_path: Path, rpm_cache: Path) -> None:
    build = rpmfactory.plain_build("escape-probe", provides=["weird(100%{nil}) = 1"])
    assert rpmfactory.spec_text(build) == rpmfactory.spec_text(build)
    (path,) = rpmfactory.build_rpms(build, tmp_path, srpm=False, cache_dir=rpm_cache)
    assert "weird(100%{nil}) = 1" in oracle.rpm_query_deps(path, "provides")
    with pytest.raises(ValueError):
        rpmfactory.plain_build(provides=["a, b"])
    with pytest.raises(ValueError):
        rpmfactory.plain_build(files={"/usr/share/with space": b""})
    with pytest.raises(ValueError):
        rpmfactory.plain_build(files={"/usr/../etc/passwd": b""})
    with pytest.raises(ValueError, match="no symbol table for arch 'aarch64'"):
        rpmfactory.kernel_build(arches=("x86_64", "aarch64"), symbols={"x86_64": {"a": 1}})


# --------------------------------------------------------------------------- generators


def test_random_symbols_deterministic_and_realistic() -> None:
    a = rpmfactory.random_symbols(5000, seed=1)
    assert a == rpmfactory.random_symbols(5000, seed=1)
    assert a != rpmfactory.random_symbols(5000, seed=2)
    assert len(a) == 5000 and all(0 < c < 2**32 for c in a.values())
    assert all(s.replace("_", "").isalnum() for s in a)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 200),
    frac=st.floats(0, 1),
    added=st.integers(0, 30),
    removed=st.integers(0, 30),
    seed=st.integers(0, 10**6),
)
def test_churn_truth(n: int, frac: float, added: int, removed: int, seed: int) -> None:
    old = rpmfactory.random_symbols(n, seed=seed)
    if round(frac * n) + removed > n:
        with pytest.raises(ValueError):
            rpmfactory.churn(old, frac, added, removed, seed)
        return
    ch = rpmfactory.churn(old, frac, added, removed, seed)
    new = ch.symbols
    assert ch.removed == set(old) - set(new)
    assert ch.added == set(new) - set(old)
    assert ch.changed == {s for s in set(old) & set(new) if old[s] != new[s]}
    assert (len(ch.changed), len(ch.added), len(ch.removed)) == (round(frac * n), added, removed)


def test_per_arch_tables_share_names() -> None:
    base = rpmfactory.random_symbols(100, seed=4)
    tables = rpmfactory.per_arch_tables(base, rpmfactory.ARCHES, differ_frac=0.25)
    assert tables["x86_64"] == base
    for arch in rpmfactory.ARCHES[1:]:
        assert set(tables[arch]) == set(base)
        assert sum(tables[arch][s] != base[s] for s in base) == 25
