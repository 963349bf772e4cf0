"""Kmod and kernel checks against Koji builds, the same whoever asks.

``koji kabi-check`` (the CLI, any hub), the hub's ``kabi.*`` calls and the builder's
``kabiCheck`` task all call these over a :class:`~koji_kabi.koji.views.KojiView`, so their
answers agree.  Results are the values of :mod:`koji_kabi.results`; whoever answers
serialises them with :mod:`koji_kabi.report.jsondoc`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Optional

from koji_kabi.analysis.delta import delta_kernels
from koji_kabi.analysis.outcome import judge
from koji_kabi.analysis.rebuild import fingerprint
from koji_kabi.analysis.verdict import verdicts
from koji_kabi.errors import KabiError
from koji_kabi.koji.rules import Rules, Watch
from koji_kabi.koji.views import KojiView, kernel_from_rpms, kmods_from_rpms
from koji_kabi.model import Kernel, KmodRequirements, Stablelist
from koji_kabi.readers.inputs import kmod_from_file
from koji_kabi.readers.stablelist import read_stablelist_rpm
from koji_kabi.results import BuildVerdict, KernelCheck, KmodCheck

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
                            view.cache)


def kmods_of(view: KojiView, builds: Sequence[dict], arches: Optional[Iterable[str]] = None,
             on_error: Optional[Callable[[KabiError], None]] = None
             ) -> list[tuple[dict, KmodRequirements]]:
    return kmods_from_rpms(builds, view.rpms([b["id"] for b in builds]), view.deps, arches,
                           view.cache, on_error)


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


def kmod_builds_in(view: KojiView, tags: Sequence[str],
                   event: Optional[int] = None) -> list[dict]:
    """Latest builds of each tag (as of ``event``), once each (the first tag holding one
    names it)."""
    seen: dict[int, dict] = {}
    for tag, builds in zip(tags, view.latest(list(tags), None, event) if tags else []):
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


def build_verdicts(pairs: Sequence[tuple[dict, KmodRequirements]], kernel: Kernel,
                   stablelists: Optional[Mapping[str, Stablelist]] = None
                   ) -> tuple[BuildVerdict, ...]:
    """Each kmod package's verdict with its Koji build and its kABI fingerprint."""
    found = verdicts([m for _b, m in pairs], kernel, stablelists)
    return tuple(BuildVerdict(build["id"], build["nvr"],
                              build.get("package_name", build.get("name")),
                              build.get("kabi_tag", ""), v, fingerprint(kmod, kernel))
                 for (build, kmod), v in zip(pairs, found))


def check_kmod_build(view: KojiView, build: dict, kernel_build: dict,
                     arches: Optional[Iterable[str]] = None,
                     stablelists: Optional[Mapping[str, Stablelist]] = None) -> KmodCheck:
    """A kmod build's verdict per arch against a kernel build."""
    pairs = kmods_of(view, [build], arches)
    if not pairs and arches:
        raise KabiError(build["nvr"], "no kmod package with kernel(symbol) = CRC requires "
                        f"for {', '.join(sorted(arches))}")
    if not pairs:
        raise KabiError(build["nvr"], "not a kmod build: no package with kernel(symbol) = "
                        "CRC requires")
    kernel = kernel_of(view, kernel_build, {m.key.arch for _b, m in pairs})
    return KmodCheck(build["nvr"], kernel_build["nvr"],
                     build_verdicts(pairs, kernel, stablelists))


def check_kernel_build(view: KojiView, build: dict, previous: Optional[dict],
                       kmod_builds: Sequence[dict],
                       arches: Optional[Iterable[str]] = None,
                       stablelists: Optional[Mapping[str, Stablelist]] = None,
                       kmod_tags: Sequence[str] = ()) -> KernelCheck:
    """A kernel build's delta to ``previous`` and the verdicts of the given kmod builds.

    Kmod RPMs with malformed dependencies are listed in ``unreadable``, not checked.
    """
    kernel = kernel_of(view, build, arches)
    kd = None
    if previous is not None:
        old = kernel_of(view, previous, {k.arch for k in kernel.tables})
        kd = delta_kernels(old, kernel, stablelists)
    unreadable: list[KabiError] = []
    pairs = kmods_of(view, kmod_builds, {k.arch for k in kernel.tables},
                     unreadable.append) if kmod_builds else []
    return KernelCheck(build["nvr"], previous["nvr"] if previous else None, tuple(kmod_tags),
                       {k: len(t) for k, t in kernel.tables.items()}, kd,
                       build_verdicts(pairs, kernel, stablelists),
                       tuple(str(e) for e in unreadable), bool(stablelists))


def judge_build(view: KojiView, build: dict, kernel_build: dict) -> tuple[str, str]:
    """(outcome, detail) of a rebuild that made a (draft or real) build in Koji."""
    return judge([v.verdict for v in check_kmod_build(view, build, kernel_build).verdicts],
                 kernel_build["nvr"])


def judge_files(view: KojiView, paths: Sequence[str], kernel_build: dict,
                label: Optional[str] = None) -> tuple[str, str]:
    """(outcome, detail) of a scratch rebuild: its kmod RPMs as files (the task's output).

    RPMs that are not kmods (debuginfo, -devel, a common subpackage) are left out.
    """
    kmods = []
    for path in paths:
        try:
            kmods.append(kmod_from_file(path))
        except KabiError:
            continue  # not a kmod package
    if not kmods:
        raise KabiError(label or kernel_build["nvr"], "the rebuild produced no kmod package "
                        "with kernel(symbol) = CRC requires")
    kernel = kernel_of(view, kernel_build, {m.key.arch for m in kmods})
    return judge(verdicts(kmods, kernel), kernel_build["nvr"])
