"""The answers of a check in Koji terms: a kmod build's verdicts, a kernel build's check,
a rebuild decision.

They wrap the analysis values (:class:`~koji_kabi.analysis.verdict.Verdict`,
:class:`~koji_kabi.analysis.delta.KernelDelta`) with the Koji builds they are about.
Every caller (``koji kabi-check``, the hub's ``kabi.*`` calls, the ``kabiCheck`` task)
builds these and serialises them with :mod:`koji_kabi.report.jsondoc` only, so the
same question gets the same JSON whoever asks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from koji_kabi.analysis.delta import KernelDelta
from koji_kabi.analysis.rebuild import RebuildRequest
from koji_kabi.analysis.verdict import Verdict
from koji_kabi.model import TableKey


@dataclass(frozen=True)
class BuildVerdict:
    """One kmod package's verdict, with the Koji build (and tag) it came from."""

    build_id: int
    nvr: str
    package: str
    tag: str
    verdict: Verdict
    fingerprint: str  # the kABI it was built against (see analysis.rebuild.fingerprint)

    @property
    def compatible(self) -> bool:
        return self.verdict.compatible


@dataclass(frozen=True)
class KmodCheck:
    """A kmod build against a kernel build: one verdict per kmod package (arch)."""

    build: str
    kernel: str
    verdicts: tuple[BuildVerdict, ...]

    @property
    def compatible(self) -> bool:
        return all(v.compatible for v in self.verdicts)


@dataclass(frozen=True)
class KernelCheck:
    """A kernel build: its delta to the previous kernel and the verdicts of kmod builds."""

    kernel: str
    previous: Optional[str]
    kmod_tags: tuple[str, ...]
    symbols: Mapping[TableKey, int]  # table sizes, per arch and flavour
    delta: Optional[KernelDelta]  # None without a previous kernel
    verdicts: tuple[BuildVerdict, ...]
    unreadable: tuple[str, ...] = ()  # kmod RPMs left out: one line each, why
    stablelist: bool = False  # the kernel build's own stablelists were used

    @property
    def compatible(self) -> bool:
        return all(v.compatible for v in self.verdicts)


@dataclass(frozen=True)
class RebuildDecision:
    """What became of one rebuild request: submitted, duplicate, deferred, dry-run …"""

    request: RebuildRequest
    status: str
    detail: str
    task_id: Optional[int] = None
