"""koji_kabi: the kABI engine behind the koji-kabi plugins.

Pure values and functions over kernel symbol tables (modversion CRCs): readers turn
RPM headers, symvers files, stablelists, ``.ko`` files and ``rpm -q`` dumps into
:class:`SymbolTable` / :class:`KmodRequirements`; :func:`delta`, :func:`verdict`,
:func:`impact` and :func:`series` compute what changed and who it breaks.  Nothing
here imports Koji's hub or builder code.
"""

from koji_kabi.analysis.delta import Delta, KernelDelta, SymbolChange, delta, delta_kernels
from koji_kabi.analysis.impact import ConsumerIndex, Impact, impact
from koji_kabi.analysis.series import SeriesReport, series
from koji_kabi.analysis.verdict import SymbolProblem, Verdict, verdict
from koji_kabi.errors import KabiError
from koji_kabi.model import (
    Export,
    Kernel,
    KmodRequirements,
    Stablelist,
    SymbolTable,
    TableKey,
)

__version__ = "0.1.0"

__all__ = [
    "ConsumerIndex",
    "Delta",
    "Export",
    "Impact",
    "KabiError",
    "Kernel",
    "KernelDelta",
    "KmodRequirements",
    "SeriesReport",
    "Stablelist",
    "SymbolChange",
    "SymbolProblem",
    "SymbolTable",
    "TableKey",
    "Verdict",
    "delta",
    "delta_kernels",
    "impact",
    "series",
    "verdict",
]
