"""A finished rebuild, judged against the kernel it was made for.

``fixed``: the new build's kernel requires match the kernel; ``still broken``: it built,
but its requires still do not match (a spec that pins its kernel, a module that needs
porting); ``build failed``: the build task failed (its logs say why); ``canceled``: someone
cancelled it (no verdict: it may be submitted again).  What a kmod maintainer needs to
hear, per kmod and per kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from koji_kabi.analysis.verdict import Verdict
from koji_kabi.errors import KabiError

FIXED, STILL_BROKEN, BUILD_FAILED, CANCELED = "fixed", "still broken", "build failed", "canceled"
OUTCOMES = (FIXED, STILL_BROKEN, BUILD_FAILED, CANCELED)
#: symbols named in a "still broken" detail (the rest are counted)
SHOWN = 5


def mismatch_summary(verdicts: Iterable[Verdict]) -> str:
    """``x86_64 1 missing, 2 CRC mismatches`` for each incompatible verdict."""
    return ", ".join(f"{v.key} {len(v.missing)} missing, {len(v.mismatched)} CRC "
                     "mismatches" for v in verdicts if not v.compatible)


def judge(verdicts: Sequence[Verdict], kernel: str) -> tuple[str, str]:
    """(outcome, detail) of a rebuild from the verdicts of the kmod packages it made."""
    if not verdicts:
        raise KabiError(kernel, "the rebuild produced no kmod package to judge")
    if all(v.compatible for v in verdicts):
        keys = sorted({str(v.key) for v in verdicts})
        return FIXED, f"matches {kernel} (" + ", ".join(keys) + ")"
    symbols = sorted({p.symbol for v in verdicts for p in v.problems})
    more = f" and {len(symbols) - SHOWN} more" if len(symbols) > SHOWN else ""
    return STILL_BROKEN, (f"does not match {kernel}: {mismatch_summary(verdicts)} ("
                          + ", ".join(symbols[:SHOWN]) + more + ")")
