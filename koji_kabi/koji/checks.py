"""Kmod and kernel checks against Koji builds, the same whoever asks.

``koji kabi-check`` (the CLI, any hub), the hub's ``kabi.*`` calls and the builder's
``kabiCheck`` task all call these over a :class:`~koji_kabi.koji.views.KojiView`, so their
answers agree.  Results are plain dicts safe for XML-RPC (CRCs as ``0x`` strings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional

from koji_kabi.analysis.delta import delta
from koji_kabi.analysis.rebuild import fingerprint
from koji_kabi.analysis.verdict import ksym_providers, verdict
from koji_kabi.errors import KabiError
from koji_kabi.koji.rules import Rules, Watch
from koji_kabi.koji.views import KojiView, kernel_from_rpms, kmods_from_rpms
from koji_kabi.model import Kernel, KmodRequirements, Stablelist
from koji_kabi.readers.stablelist import read_stablelist_rpm
from koji_kabi.report.text import crc

STABLELIST_PACKAGES = ("kernel-abi-stablelists", "kernel-abi-whitelists")

#: Makes an RPM of a build readable locally: (build, rpm) -> path.
FetchRpm = Callable[[dict, dict], str]


def get_build(view: KojiView, ref: Any) -> dict:
    build = view.build(ref)
    if not build:
        raise KabiError(str(ref), "no such build")
    return build


def kernel_of(view: KojiView, build: dict, arches: Optional[Iterable[str]] = None) -> Kernel:
    return kernel_from_rpms(build, view.rpms([build["id"]])[0], view.deps, arches,
                            view.parsed)


def kmods_of(view: KojiView, builds: Sequence[dict], arches: Optional[Iterable[str]] = None,
             on_error: Optional[Callable[[KabiError], None]] = None
             ) -> list[tuple[dict, KmodRequirements]]:
    return kmods_from_rpms(builds, view.rpms([b["id"] for b in builds]), view.deps, arches,
                           view.parsed, on_error)


def previous_kernel(view: KojiView, build: dict, kernel_tag: str) -> Optional[dict]:
    """The kernel before ``build``: the latest other build of its package in the tag as
    the tag was when ``build`` was created."""
    latest = view.latest([kernel_tag], build.get("package_name", build.get("name")),
                         build.get("creation_event_id"))[0]
    others = [b for b in latest if b["id"] != build["id"]]
    return others[0] if others else None


def watch_of(view: KojiView, rules: Rules, build: dict,
             tag: Optional[str] = None) -> Optional[Watch]:
    """The rules entry for a kernel build: the named kernel tag's, else its package's only
    entry, else the one of its package's entries whose kernel tag holds the build (None
    when none does: which one is meant is then not known)."""
    if tag:
        return rules.watch_for_tag(tag)
    watches = rules.watches_for(build.get("package_name", build.get("name")))
    if len(watches) > 1:
        tags = set(view.build_tags(build["id"]))
        return next((w for w in watches if w.kernel_tag in tags), None)
    return watches[0] if watches else None


def kmod_builds_in(view: KojiView, tags: Sequence[str]) -> list[dict]:
    """Latest builds of each tag, once each (the first tag holding one names it)."""
    seen: dict[int, dict] = {}
    for tag, builds in zip(tags, view.latest(list(tags)) if tags else []):
        for b in builds:
            seen.setdefault(b["id"], dict(b, kabi_tag=tag))
    return list(seen.values())


def reference_kernel(view: KojiView, kernel_packages: Sequence[str], tag: str,
                     rules: Optional[Rules] = None, event: Optional[int] = None) -> dict:
    """The kernel a kmod in ``tag`` must match: the latest build of a kernel package
    visible in the tag (inheritance included), else in the kernel tag the rules pair
    with this kmod tag."""
    tags = [tag]
    if rules is not None and (watch := rules.watch_for_kmod_tag(tag)) is not None:
        tags.append(watch.kernel_tag)
    for candidate in tags:
        for builds in [view.latest([candidate], p, event)[0] for p in kernel_packages]:
            if builds:
                return builds[0]
    raise KabiError(tag, "no kernel build (" + ", ".join(kernel_packages) + ") in this tag"
                    + (f" or in {tags[1]}" if len(tags) > 1 else ""))


def stablelists_of(view: KojiView, build: dict, fetch: FetchRpm) -> dict[str, Stablelist]:
    """The kernel build's own kABI stablelists (its ``kernel-abi-stablelists`` RPM), if any.

    Only this one RPM's payload is read; a kernel without it simply has no stablelist.
    """
    for rpm in view.rpms([build["id"]])[0]:
        if rpm["name"] in STABLELIST_PACKAGES and rpm["arch"] == "noarch":
            return read_stablelist_rpm(fetch(build, rpm))
    return {}


def verdict_rows(pairs: Sequence[tuple[dict, KmodRequirements]], kernel: Kernel,
                 stablelists: Optional[dict[str, Stablelist]] = None) -> list[dict]:
    """One row per kmod package and arch: the verdict, why, and its kABI fingerprint."""
    lists = stablelists or {}
    providers = ksym_providers(m for _b, m in pairs)
    rows = []
    for build, kmod in pairs:
        v = verdict(kmod, kernel, lists.get(kmod.key.arch), providers.get(kmod.key.arch))
        rows.append({
            "build_id": build["id"], "nvr": build["nvr"],
            "package": build.get("package_name", build.get("name")),
            "tag": build.get("kabi_tag", ""), "rpm": kmod.label, "key": str(v.key),
            "compatible": v.compatible, "no_table": v.no_table, "checked": v.checked,
            "stable": v.stable_count,
            "missing": [p.symbol for p in v.missing],
            "mismatched": [{"symbol": p.symbol, "required": crc(p.required),
                            "provided": crc(p.provided), "stable": p.stable}
                           for p in v.mismatched],
            "fingerprint": fingerprint(kmod, kernel),
        })
    return rows


def delta_rows(old: Kernel, new: Kernel, arches: Optional[Iterable[str]] = None,
               stablelists: Optional[dict[str, Stablelist]] = None) -> list[dict]:
    """Per (arch, flavour) both kernels have: counts and the symbols that changed."""
    wanted = set(arches) if arches else None
    lists = stablelists or {}
    out = []
    for key in sorted(new.tables.keys() & old.tables.keys()):
        if wanted and key.arch not in wanted:
            continue
        d = delta(old.tables[key], new.tables[key], lists.get(key.arch), old.nvr, new.nvr)
        out.append({
            "key": str(key), "old_count": d.old_count, "new_count": d.new_count,
            "breaking": d.breaking,
            "added": [c.symbol for c in d.added],
            "removed": [{"symbol": c.symbol, "old": crc(c.old_crc), "stable": c.stable}
                        for c in d.removed],
            "changed": [{"symbol": c.symbol, "old": crc(c.old_crc), "new": crc(c.new_crc),
                         "stable": c.stable} for c in d.changed],
        })
    if not out:
        raise KabiError(f"{old.nvr} vs {new.nvr}", "no arch/flavour in common")
    return out


def check_kmod_build(view: KojiView, build: dict, kernel_build: dict,
                     arches: Optional[Iterable[str]] = None,
                     stablelists: Optional[dict[str, Stablelist]] = None) -> dict:
    """A kmod build's verdict per arch against a kernel build."""
    pairs = kmods_of(view, [build], arches)
    if not pairs and arches:
        raise KabiError(build["nvr"], "no kmod package with kernel(symbol) = CRC requires "
                        f"for {', '.join(sorted(arches))}")
    if not pairs:
        raise KabiError(build["nvr"], "not a kmod build: no package with kernel(symbol) = "
                        "CRC requires")
    kernel = kernel_of(view, kernel_build, {m.key.arch for _b, m in pairs})
    rows = verdict_rows(pairs, kernel, stablelists)
    return {"kind": "kmod", "build": build["nvr"], "kernel": kernel_build["nvr"],
            "compatible": all(r["compatible"] for r in rows), "verdicts": rows}


def check_kernel_build(view: KojiView, build: dict, previous: Optional[dict],
                       kmod_builds: Sequence[dict],
                       arches: Optional[Iterable[str]] = None,
                       stablelists: Optional[dict[str, Stablelist]] = None) -> dict:
    """A kernel build's delta to ``previous`` and the verdicts of the given kmod builds.

    Kmod RPMs with malformed dependencies are listed in ``unreadable``, not checked.
    """
    kernel = kernel_of(view, build, arches)
    deltas: list[dict] = []
    if previous is not None:
        old = kernel_of(view, previous, {k.arch for k in kernel.tables})
        deltas = delta_rows(old, kernel, arches, stablelists)
    unreadable: list[KabiError] = []
    rows = verdict_rows(kmods_of(view, kmod_builds, {k.arch for k in kernel.tables},
                                 unreadable.append), kernel, stablelists)
    return {"kind": "kernel", "build": build["nvr"], "kernel": build["nvr"],
            "unreadable": [str(e) for e in unreadable],
            "previous": previous["nvr"] if previous else None,
            "symbols": {str(k): len(t) for k, t in kernel.tables.items()},
            "delta": deltas, "verdicts": rows, "stablelist": bool(stablelists),
            "compatible": all(r["compatible"] for r in rows)}
