"""Shared fixtures: a small world of real RPMs built once per session with rpmbuild.

Two kernel builds (x86_64 + aarch64, plain + debug flavour, core/modules split) with a
known churn between them, kmods that are compatible, miss a symbol, have a changed CRC,
use the debug flavour or another kmod's ksym, a plain package, corrupt files and a
stablelist package.  Ground truth comes from how the fixtures were made; the oracles
(rpm -qp, comm, dnf repoclosure) check the same facts independently.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pipeline_rpms import Rpms, build_pipeline_rpms
from tests.support import rpmfactory as rf

ARCHES = ("x86_64", "aarch64")
V, R1, R2 = "5.14.0", "1.el9", "2.el9"


@dataclass(frozen=True)
class World:
    root: Path
    kernel1: Path  # dir with kernel build 1 RPMs
    kernel2: Path
    kmods: Path  # dir with all kmod RPMs
    misc: Path  # plain RPM, corrupt files, stablelist RPM
    old: dict  # arch -> {sym: crc} of kernel 1 (plain flavour)
    new: dict  # arch -> {sym: crc} of kernel 2
    old_debug: dict
    new_debug: dict
    churn: dict  # arch -> Churn
    stable: dict  # arch -> [symbols]

    def rpm(self, directory: Path, prefix: str, arch: str = "x86_64") -> Path:
        hits = sorted(p for p in directory.glob(f"{prefix}-[0-9]*.{arch}.rpm"))
        assert len(hits) == 1, (prefix, arch, hits)
        return hits[0]


def _pick(table: dict, exclude: set, n: int, offset: int = 0) -> dict:
    names = sorted(s for s in table if s not in exclude)[offset:offset + n]
    return {s: table[s] for s in names}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (scripts/bootstrap.sh --test installs it)")
    root = tmp_path_factory.mktemp("world")
    cache = tmp_path_factory.mktemp("rpmcache")
    base = rf.random_symbols(3000, seed=1)
    old = rf.per_arch_tables(base, ARCHES, seed=2)
    churns = {a: rf.churn(old[a], changed_frac=0.05, added=40, removed=25, seed=3 + i)
              for i, a in enumerate(ARCHES)}
    new = {a: c.symbols for a, c in churns.items()}
    # debug kernels have their own CRCs for every symbol, on every arch
    debug_base = rf.churn(base, changed_frac=1.0, seed=19).symbols
    old_debug = rf.per_arch_tables(debug_base, ARCHES, differ_frac=1.0, seed=20)
    new_debug = {a: rf.churn(old_debug[a], changed_frac=0.05, seed=30).symbols for a in ARCHES}
    stable = {a: sorted(old[a])[:200] for a in ARCHES}
    k1 = rf.kernel_build("kernel", V, R1, ARCHES, old, flavours=("", "debug"),
                         flavour_symbols={"debug": old_debug})
    k2 = rf.kernel_build("kernel", V, R2, ARCHES, new, flavours=("", "debug"),
                         flavour_symbols={"debug": new_debug})
    dirs = {name: root / name for name in ("kernel1", "kernel2", "kmods", "misc")}
    for d in dirs.values():
        d.mkdir()
    rf.build_rpms(k1, dirs["kernel1"], cache_dir=cache)
    rf.build_rpms(k2, dirs["kernel2"], cache_dir=cache)

    x = "x86_64"
    c = churns[x]
    touched = set(c.changed) | set(c.removed) | set(c.added)
    ok_tables = {a: _pick(new[a], touched | set(churns[a].changed) | set(churns[a].removed),
                          60) for a in ARCHES}
    kmods = [
        rf.kmod_build("kmod-ok", "1.0", "1.el9", per_arch=ok_tables),
        rf.kmod_build("kmod-crc", "1.0", "1.el9", x,
                      {**_pick(old[x], touched, 30, 100), **{s: old[x][s]
                                                            for s in sorted(c.changed)[:3]}}),
        rf.kmod_build("kmod-missing", "1.0", "1.el9", x,
                      {**_pick(old[x], touched, 20, 200), sorted(c.removed)[0]:
                       old[x][sorted(c.removed)[0]]}),
        rf.kmod_build("kmod-dbg", "1.0", "1.el9", x,
                      _pick(new_debug[x], set(), 25, 300), kver=f"{V}-{R2}.x86_64+debug"),
        rf.kmod_build("kmod-provider", "1.0", "1.el9", x, _pick(new[x], touched, 10, 400),
                      ksym_provides={"prov_export": 0x1234}),
        rf.kmod_build("kmod-consumer", "1.0", "1.el9", x, _pick(new[x], touched, 10, 500),
                      ksym_requires={"prov_export": 0x1234}),
        rf.kmod_build("kmod-badksym", "1.0", "1.el9", x, _pick(new[x], touched, 10, 600),
                      ksym_requires={"prov_export": 0x9999}),
    ]
    rf.build_rpms(kmods, dirs["kmods"], cache_dir=cache, srpm=False)
    misc = [rf.plain_build("bash-completion-extra"),
            rf.stablelist_build(V, R2, {a: stable[a] for a in ARCHES})]
    rf.build_rpms(misc, dirs["misc"], cache_dir=cache, srpm=False)
    core = next(dirs["kernel2"].glob("kernel-core-*.x86_64.rpm"))
    rf.truncate_copy(core, dirs["misc"] / "truncated.rpm", 5000)
    rf.make_not_rpm(dirs["misc"] / "not-an-rpm.rpm")
    return World(root, dirs["kernel1"], dirs["kernel2"], dirs["kmods"], dirs["misc"],
                 old, new, old_debug, new_debug, churns, stable)


@pytest.fixture(scope="session")
def pipeline_rpms(tmp_path_factory: pytest.TempPathFactory) -> Rpms:
    """Kernels and kmods for the Koji-facing tests (see tests.pipeline_rpms)."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (scripts/bootstrap.sh --test installs it)")
    return build_pipeline_rpms(tmp_path_factory.mktemp("pipeline-rpms"),
                               tmp_path_factory.mktemp("pipeline-cache"))
