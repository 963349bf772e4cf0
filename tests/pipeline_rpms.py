"""The kernels and kmods of the Koji-facing unit tests (real RPMs made with rpmbuild).

Two kernels and a third with the same kABI for every kmod, and kmods of each kind the
pipeline treats differently (compatible, a changed CRC, a removed symbol, opted out,
without a source, rebuilt in ``build`` mode); used by tests/test_pipeline.py (on
tests/fakekoji.py) and tests/test_hub_plugin.py (on the real kojihub module).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support import rpmfactory as rf

SOURCE = "git+https://src.example/rpms/{name}.git#{sha}"


def source_for(name: str) -> str:
    return SOURCE.format(name=name, sha=(name.encode().hex() * 40)[:40])


ARCHES = ("x86_64", "aarch64")


@dataclass
class Rpms:
    k1: list[Path]
    k2: list[Path]
    k3: list[Path]
    kmods: dict[str, list[Path]]
    changed: list[str]  # x86_64 symbols whose CRC changed 1 -> 2
    removed: list[str]
    plain: list[Path]


def build_pipeline_rpms(out: Path, cache: Path) -> Rpms:
    """Two kernels and a third with the same kABI for every kmod; kmods of each kind."""
    old = rf.per_arch_tables(rf.random_symbols(400, seed=11), ARCHES, seed=12)
    churn = {a: rf.churn(old[a], changed_frac=0.1, removed=5, added=5, seed=13) for a in ARCHES}
    new = {a: churn[a].symbols for a in ARCHES}
    consumed_nowhere = sorted(set(new["x86_64"]) - set(churn["x86_64"].changed))[-1]
    newer = {a: dict(new[a]) for a in ARCHES}  # kernel 3: one unconsumed symbol changes
    newer["x86_64"][consumed_nowhere] ^= 0x1
    x = churn["x86_64"]
    stable = sorted(set(old["x86_64"]) - x.changed - x.removed - {consumed_nowhere})
    stable_a = sorted(set(old["aarch64"]) - churn["aarch64"].changed
                      - churn["aarch64"].removed)
    changed, removed = sorted(x.changed), sorted(x.removed)

    def req(names: list[str], arch: str = "x86_64") -> dict:
        return {s: old[arch][s] for s in names}

    kmod_defs = {
        "kmod-ok": rf.kmod_build("kmod-ok", "1.0", "1.el9", per_arch={
            "x86_64": req(stable[:30]), "aarch64": req(stable_a[:30], "aarch64")}),
        "kmod-crc": rf.kmod_build("kmod-crc", "1.0", "1.el9", per_arch={
            "x86_64": req(stable[30:40] + changed[:2]),
            "aarch64": req(stable_a[30:40], "aarch64")}),
        "kmod-gone": rf.kmod_build("kmod-gone", "2.0", "3.el9", "x86_64",
                                   req(stable[40:50] + removed[:1])),
        "kmod-optout": rf.kmod_build("kmod-optout", "1.0", "1.el9", "x86_64",
                                     req(stable[50:55] + changed[2:3])),
        "kmod-nosrc": rf.kmod_build("kmod-nosrc", "1.0", "1.el9", "x86_64",
                                    req(stable[55:60] + changed[3:4])),
        "kmod-nvidia": rf.kmod_build("kmod-nvidia", "550.1", "1.el9", "x86_64",
                                     req(stable[60:70] + changed[4:6])),
    }
    return Rpms(
        rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "1.el9", ARCHES, old,
                                      split=("core", "modules")), out / "k1", cache_dir=cache),
        rf.build_rpms(rf.kernel_build(
            "kernel", "5.14.0", "2.el9", ARCHES, new, split=("core", "modules"),
            # kernel 2 ships its kABI stablelist: the first changed symbol is on it
            extra_packages=[rf.stablelist_package({a: [changed[0], *stable[:20]]
                                                   for a in ARCHES})]),
            out / "k2", cache_dir=cache),
        rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "3.el9", ARCHES, newer,
                                      split=("core", "modules")), out / "k3", cache_dir=cache),
        {name: rf.build_rpms(b, out / name, cache_dir=cache) for name, b in kmod_defs.items()},
        changed, removed,
        rf.build_rpms(rf.plain_build("bash-completion-extra"), out / "plain", cache_dir=cache),
    )
