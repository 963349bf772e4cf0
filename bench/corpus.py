"""A CBS-scale corpus of real RPMs (built with rpmbuild) for the benchmark.

A kernel series (3 builds, 4 arches, 30,000 ``kernel()`` provides per arch, kernel-core
padded with tens of MB of incompressible payload) and 2,000 kmod builds, each requiring
50-400 symbols on each arch.  Churn between kernels is shaped like real kernels: a few %
of CRCs change, almost all inside a few "hot" subsystems (a struct change touches every
function using it), some symbols are added and removed, and a core of widely used
symbols (the kABI stablelist, shipped as ``kernel-abi-stablelists``) never changes.
Kmods use that core plus one to three subsystems, so some break and many do not (as
in the seed's study, where a third of the kmods needed no rebuild over 175 days).

    python -m bench.corpus [--scale small|medium|full] [--out bench/corpus]

Reuses a corpus already built with the same parameters (``manifest.json``); RPM builds
are cached in ``<out>/.rpmcache`` (tests.support.rpmfactory).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import rpmfactory as rf  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "corpus"
FORMAT = 1


@dataclass(frozen=True)
class Scale:
    symbols: int
    arches: tuple[str, ...]
    kernels: int
    kmods: int
    min_requires: int
    max_requires: int
    payload_mb: int
    changed_frac: float = 0.03
    added: int = 120
    removed: int = 40
    core: int = 700  # stablelist: never changes
    stale_frac: float = 0.15  # kmods built against the older kernel


SCALES = {
    "small": Scale(8000, ("x86_64", "aarch64"), 3, 100, 50, 400, 4),
    "medium": Scale(30000, rf.ARCHES, 3, 500, 50, 400, 20),
    "full": Scale(30000, rf.ARCHES, 3, 2000, 50, 400, 40),
}


def subsystem(symbol: str) -> str:
    return symbol.lstrip("_").split("_", 1)[0]


@dataclass
class Plan:
    """Everything the RPMs are made from, and the ground truth for cross-checks."""

    tables: list[dict[str, dict[str, int]]]  # per kernel: arch -> {sym: crc}
    core: list[str]
    kmods: list[tuple[str, int, list[str]]]  # (name, built against kernel #, symbols)


def plan(scale: Scale, seed: int = 2024) -> Plan:
    rng = random.Random(f"bench-corpus/{seed}")
    base = rf.random_symbols(scale.symbols, seed=seed)
    names = sorted(base)
    first = rf.per_arch_tables(base, scale.arches, seed=seed + 1)
    core = sorted(rng.sample(names, scale.core))
    core_set = set(core)
    by_sub: dict[str, list[str]] = {}
    for s in names:
        if s not in core_set:
            by_sub.setdefault(subsystem(s), []).append(s)
    subs = sorted(by_sub)
    tables = [first]
    for step in range(1, scale.kernels):
        prev = tables[-1]
        alive = sorted(prev[scale.arches[0]])
        mutable = [s for s in alive if s not in core_set]
        hot = set(rng.sample(subs, 6))
        hot_syms = [s for s in mutable if subsystem(s) in hot]
        cold_syms = [s for s in mutable if subsystem(s) not in hot]
        n_changed = round(scale.changed_frac * len(alive))
        n_hot = min(len(hot_syms), round(0.95 * n_changed))
        changed = rng.sample(hot_syms, n_hot) + rng.sample(cold_syms, n_changed - n_hot)
        gone = set(rng.sample(sorted(set(cold_syms) - set(changed)), scale.removed))
        fresh = [f"{s}_v{step}" for s in rf.random_symbols(scale.added, seed=seed + 100 + step,
                                                           prefix="new_")]
        nxt = {}
        for arch in scale.arches:
            t = {s: c for s, c in prev[arch].items() if s not in gone}
            for s in changed:
                t[s] = (t[s] + rng.randrange(1, 1 << 32)) % (1 << 32) or 1
            for s in fresh:
                t[s] = rng.randrange(1, 1 << 32)
            nxt[arch] = t
        tables.append(nxt)
    popular = core[: max(50, len(core) // 2)]
    kmods = []
    for i in range(scale.kmods):
        against = scale.kernels - 2 if rng.random() < 1 - scale.stale_frac else 0
        against = max(against, 0)
        n = rng.randint(scale.min_requires, scale.max_requires)
        alive = tables[against][scale.arches[0]]
        n_core = min(len(popular), n // 3)
        picked = dict.fromkeys(rng.sample(popular, n_core))  # ordered: truncation drops last
        mine = rng.sample(subs, rng.randint(1, 3))  # a driver uses a few subsystems
        pool = [s for sub in mine for s in by_sub[sub] if s in alive]
        picked.update(dict.fromkeys(rng.sample(pool, min(len(pool), n - len(picked)))))
        kmods.append((f"kmod-bench{i:04d}", against, sorted(list(picked)[:n])))
    return Plan(tables, core, kmods)


def kernel_release(i: int) -> str:
    return f"{100 + i}.el9"


def kmod_builds(scale: Scale, p: Plan) -> list[rf.Build]:
    out = []
    for name, against, syms in p.kmods:
        per_arch = {a: {s: p.tables[against][a][s] for s in syms} for a in scale.arches}
        out.append(rf.kmod_build(name, "1.0", "1.el9", per_arch=per_arch,
                                 modules=(name.removeprefix("kmod-"),),
                                 kver=f"5.14.0-{kernel_release(against)}.{{arch}}"))
    return out


def kernel_builds(scale: Scale, p: Plan) -> list[rf.Build]:
    out = []
    for i, tables in enumerate(p.tables):
        lists = rf.stablelist_package({a: p.core for a in scale.arches})
        out.append(rf.kernel_build("kernel", "5.14.0", kernel_release(i), scale.arches, tables,
                                   split=("core", "modules"),
                                   payload_bytes=scale.payload_mb << 20,
                                   extra_packages=[lists]))
    return out


def truth(scale: Scale, p: Plan, kernel: int) -> dict[str, list[str]]:
    """arch -> kmod names whose requires the given kernel does not satisfy."""
    out = {}
    for arch in scale.arches:
        table = p.tables[kernel][arch]
        out[arch] = sorted(name for name, against, syms in p.kmods
                           if any(table.get(s) != p.tables[against][arch][s] for s in syms))
    return out


def build(scale_name: str, out: Path = DEFAULT_OUT, jobs: int = 2,
          log=print) -> dict:
    """Build (or reuse) the corpus of ``scale_name``; returns its manifest."""
    scale = SCALES[scale_name]
    root = out / scale_name
    manifest_path = root / "manifest.json"
    params = {"format": FORMAT, "scale": scale_name, **asdict(scale)}
    params["arches"] = list(scale.arches)
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == params and all(
                (root / f).exists() for f in manifest["files"][:3] + manifest["files"][-3:]):
            log(f"corpus: reusing {root} ({manifest['build_seconds']}s to build)")
            return manifest
    started = time.monotonic()
    p = plan(scale)
    cache = out / ".rpmcache"
    files: list[str] = []
    kernels = []
    for kb in kernel_builds(scale, p):
        t0 = time.monotonic()
        paths = rf.build_rpms(kb, root / "kernels" / kb.nvr, cache_dir=cache)
        files += [str(x.relative_to(root)) for x in paths]
        kernels.append({"nvr": kb.nvr, "dir": f"kernels/{kb.nvr}",
                        "rpms": [str(x.relative_to(root)) for x in paths]})
        log(f"corpus: {kb.nvr} in {time.monotonic() - t0:.1f}s")
    t0 = time.monotonic()
    builds = kmod_builds(scale, p)
    kpaths: list[Path] = []
    step = 200
    for start in range(0, len(builds), step):
        kpaths += rf.build_rpms(builds[start:start + step], root / "kmods", cache_dir=cache,
                                jobs=jobs)
        log(f"corpus: {min(start + step, len(builds))}/{len(builds)} kmod builds "
            f"({time.monotonic() - t0:.0f}s)")
    files += [str(x.relative_to(root)) for x in kpaths]
    manifest = {
        "params": params,
        "kernels": kernels,
        "kmods": [{"name": n, "built_against": kernels[a]["nvr"], "requires": len(s)}
                  for n, a, s in p.kmods],
        "kmod_rpms": [str(x.relative_to(root)) for x in kpaths],
        "truth": {k["nvr"]: truth(scale, p, i) for i, k in enumerate(kernels)},
        "files": files,
        "build_seconds": round(time.monotonic() - started, 1),
        "bytes": sum(os.path.getsize(root / f) for f in files),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    log(f"corpus: {scale_name} built in {manifest['build_seconds']}s, "
        f"{manifest['bytes'] / 1e6:.0f} MB in {len(files)} RPMs")
    return manifest


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    build(args.scale, args.out, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
