"""The RPMs of the real-Koji tier and the truth they were made from (rpmbuild, per run).

Every run gets its own symbol names and CRCs (seeded from the run's stamp) and NVRs (the
stamp is in every release), so a rebuild claim of an earlier run on the same hub can
never match, and nothing depends on what an earlier run left behind.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import rpmfactory as rf

X86, ARM = "x86_64", "aarch64"
VERSION = "5.14.0"
JOBS = max(1, min(4, os.cpu_count() or 1))


def seed_of(stamp: str, what: str) -> int:
    return int(hashlib.sha256(f"{stamp}:{what}".encode()).hexdigest()[:8], 16)


def source_for(name: str, stamp: str) -> str:
    """The SCM URL a kmod build is recorded with (never fetched: .invalid)."""
    sha = hashlib.sha1(f"{name}:{stamp}".encode()).hexdigest()
    return f"git+https://kabi-it.invalid/rpms/{name}.git#{sha}"


@dataclass
class Series:
    """Kernels of one scenario, the kmods that go with them, and what is known of them."""

    stamp: str
    kernels: dict[str, list[Path]]  # label -> RPM files (SRPM first)
    kernel_nvr: dict[str, str]
    kmods: dict[str, list[Path]]
    kmod_nvr: dict[str, str]
    tables: dict[str, dict[str, dict[str, int]]]  # kernel label -> arch -> {sym: crc}
    changed: dict[str, list[str]] = field(default_factory=dict)  # arch -> K1->K2 changes
    removed: dict[str, list[str]] = field(default_factory=dict)
    added: dict[str, list[str]] = field(default_factory=dict)
    required: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    stable: list[str] = field(default_factory=list)  # K2's stablelist (x86_64)
    extra: dict[str, list[Path]] = field(default_factory=dict)


def _kernel(label_rel: str, tables: dict, split: tuple[str, ...] = ("core", "modules"),
            extra_packages: tuple = ()) -> rf.Build:
    return rf.kernel_build("kernel", VERSION, label_rel, tuple(tables), tables, split=split,
                           extra_packages=list(extra_packages))


def build_series(out: Path, cache: Path, stamp: str, name: str, rel: int,
                 arches: tuple[str, ...], n_symbols: int,
                 kmods: dict[str, dict[str, list[str]]], kernels: int = 2,
                 stablelist: bool = False) -> Series:
    """Kernels K1..Kn (release ``<rel+i>.<stamp>.el9``) and kmods built against K1.

    K1 -> K2 changes 10% of CRCs and removes / adds 5 symbols per arch; K3.. change one
    symbol no kmod consumes (the same kABI for every kmod).  ``kmods``: name -> arch ->
    which K1 symbols it requires, as picks: ``"stable:N:M"`` (unchanged symbols N..M),
    ``"changed:N:M"``, ``"removed:N:M"``.
    """
    seed = seed_of(stamp, name)
    base = rf.random_symbols(n_symbols, seed=seed, prefix=f"{name}_")
    k1 = rf.per_arch_tables(base, arches, seed=seed + 1)
    churn = {a: rf.churn(k1[a], changed_frac=0.1, added=5, removed=5, seed=seed + 2 + i)
             for i, a in enumerate(arches)}
    k2 = {a: churn[a].symbols for a in arches}
    changed = {a: sorted(churn[a].changed) for a in arches}
    removed = {a: sorted(churn[a].removed) for a in arches}
    unchanged = {a: sorted(set(k1[a]) - churn[a].changed - churn[a].removed) for a in arches}
    tables = {"K1": k1, "K2": k2}
    for i in range(3, kernels + 1):  # same kABI for every kmod: one unconsumed symbol
        t = {a: dict(k2[a]) for a in arches}
        for a in arches:
            spare = unchanged[a][-i]
            t[a][spare] ^= 0x1
        tables[f"K{i}"] = t
    pools = {"stable": unchanged, "changed": changed, "removed": removed}

    def pick(spec: str, arch: str) -> list[str]:
        kind, lo, hi = spec.split(":")
        return pools[kind][arch][int(lo):int(hi)]

    required: dict[str, dict[str, dict[str, int]]] = {}
    kmod_builds = {}
    for kmod, per_arch in kmods.items():
        req = {a: {s: k1[a][s] for spec in specs for s in pick(spec, a)}
               for a, specs in per_arch.items()}
        required[kmod] = req
        kmod_builds[kmod] = rf.kmod_build(kmod, "1.0", f"{rel}.{stamp}.el9", per_arch=req,
                                          kver=f"{VERSION}-{rel}.{stamp}.el9.{{arch}}")
    stable = sorted([changed[X86][0], *unchanged[X86][:20]]) if stablelist else []
    kernel_builds = {}
    for i, label in enumerate(tables):
        extra = ((rf.stablelist_package({a: stable for a in arches}),)
                 if stablelist and label == "K2" else ())
        kernel_builds[label] = _kernel(f"{rel + i}.{stamp}.el9", tables[label],
                                       extra_packages=extra)
    every = {**kernel_builds, **kmod_builds}
    with ThreadPoolExecutor(JOBS) as pool:  # rpmbuild runs: one per core
        built = dict(zip(every, pool.map(
            lambda item: rf.build_rpms(item[1], out / name / item[0], cache_dir=cache),
            every.items())))
    files = {label: built[label] for label in kernel_builds}
    kmod_files = {k: built[k] for k in kmod_builds}
    return Series(stamp, files, {k: b.nvr for k, b in kernel_builds.items()}, kmod_files,
                  {k: b.nvr for k, b in kmod_builds.items()}, tables, changed, removed,
                  {a: sorted(churn[a].added) for a in arches}, required, stable)


def plain_package(out: Path, cache: Path, stamp: str) -> tuple[list[Path], str]:
    build = rf.plain_build("bash-completion-extra", "1.0", f"1.{stamp}.el9")
    return rf.build_rpms(build, out / "plain", cache_dir=cache), build.nvr
