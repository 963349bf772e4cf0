"""A finished rebuild, judged against the kernel it was made for.

``fixed``: the new build's kernel requires match the kernel; ``still broken``: it built,
but its requires still do not match (a spec that pins its kernel, a module that needs
porting); ``build failed``: the build task failed (its logs say why); ``canceled``: someone
cancelled it (no verdict: it may be submitted again).  What a kmod maintainer needs to
hear, per kmod and per kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

from koji_kabi.errors import KabiError
from koji_kabi.koji.checks import check_kmod_build, kernel_of, verdict_rows
from koji_kabi.koji.views import KojiView
from koji_kabi.readers.inputs import kmod_from_file

FIXED, STILL_BROKEN, BUILD_FAILED, CANCELED = "fixed", "still broken", "build failed", "canceled"
OUTCOMES = (FIXED, STILL_BROKEN, BUILD_FAILED, CANCELED)
#: symbols named in a "still broken" detail (the rest are counted)
SHOWN = 5


def mismatch_summary(rows: Iterable[dict]) -> str:
    """``x86_64 1 missing, 2 CRC mismatches`` for each incompatible verdict row."""
    return ", ".join(f"{r['key']} {len(r['missing'])} missing, {len(r['mismatched'])} CRC "
                     "mismatches" for r in rows if not r["compatible"])


def _judged(rows: Sequence[dict], kernel: str) -> tuple[str, str]:
    if not rows:
        raise KabiError(kernel, "the rebuild produced no kmod package to judge")
    if all(r["compatible"] for r in rows):
        return FIXED, f"matches {kernel} (" + ", ".join(sorted({r["key"] for r in rows})) + ")"
    symbols = sorted({s for r in rows for s in r["missing"]}
                     | {m["symbol"] for r in rows for m in r["mismatched"]})
    more = f" and {len(symbols) - SHOWN} more" if len(symbols) > SHOWN else ""
    return STILL_BROKEN, (f"does not match {kernel}: {mismatch_summary(rows)} ("
                          + ", ".join(symbols[:SHOWN]) + more + ")")


def judge_build(view: KojiView, build: dict, kernel_build: dict) -> tuple[str, str]:
    """(outcome, detail) of a rebuild that made a (draft or real) build in Koji."""
    return _judged(check_kmod_build(view, build, kernel_build)["verdicts"], kernel_build["nvr"])


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
    pairs = [({"id": 0, "nvr": m.nvr, "package_name": m.name}, m) for m in kmods]
    return _judged(verdict_rows(pairs, kernel), kernel_build["nvr"])
