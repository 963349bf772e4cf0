"""Per-kmod verdicts: does this kmod load on that kernel, and if not, why.

The rule is weak-modules' (depmod's): every symbol the kmod imports must be provided
with the identical CRC.  The stablelist is reported, never used to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import filterfalse
from typing import Optional

from koji_kabi.model import Kernel, KmodRequirements, Stablelist, TableKey


@dataclass(frozen=True)
class SymbolProblem:
    """A required symbol the kernel lacks (``provided`` None) or has with another CRC."""

    symbol: str
    required: int
    provided: Optional[int]
    stable: Optional[bool] = None
    via: str = "kernel"  # "ksym": expected from another kmod


@dataclass(frozen=True)
class Verdict:
    kmod: str
    kernel: str
    key: TableKey
    problems: tuple[SymbolProblem, ...]
    checked: int
    stable_count: Optional[int] = None  # required symbols on the stablelist
    no_table: bool = False  # the kernel has no table for the kmod's arch/flavour

    @property
    def compatible(self) -> bool:
        return not self.problems and not self.no_table

    @property
    def missing(self) -> tuple[SymbolProblem, ...]:
        return tuple(p for p in self.problems if p.provided is None)

    @property
    def mismatched(self) -> tuple[SymbolProblem, ...]:
        return tuple(p for p in self.problems if p.provided is not None)


def verdict(kmod: KmodRequirements, kernel: Kernel, stablelist: Optional[Stablelist] = None,
            ksym_providers: Optional[Mapping[str, int]] = None) -> Verdict:
    """Check one kmod against one kernel build (the table of the kmod's arch/flavour).

    ``ksym_providers`` are the ``ksym()`` symbols other kmods export; RHEL kmods require
    those with ``ksym(sym) = crc`` and the kernel does not provide them.
    """
    table = kernel.table_for(kmod.key)
    if table is None:
        return Verdict(kmod.label, kernel.nvr, kmod.key, (), len(kmod.requires), no_table=True)
    crcs = table.crcs
    problems = []
    if not kmod.ksym_requires and kmod.requires.items() <= crcs.items():
        # every CRC matches (the common case): one subset test of dict views, in C
        stable_count = None if stablelist is None else len(
            stablelist.symbols.intersection(kmod.requires))
        return Verdict(kmod.label, kernel.nvr, table.key, (), len(kmod.requires),
                       stable_count)
    # only the mismatches, tested in C (``items() - items()`` would walk the whole table)
    for symbol, required in sorted(filterfalse(crcs.items().__contains__,
                                               kmod.requires.items())):
        stable = None if stablelist is None else symbol in stablelist
        problems.append(SymbolProblem(symbol, required, crcs.get(symbol), stable))
    others = ksym_providers or {}
    for symbol, required in sorted(kmod.ksym_requires.items()):
        provided = others.get(symbol, crcs.get(symbol))
        if provided != required:
            problems.append(SymbolProblem(symbol, required, provided, None, via="ksym"))
    stable_count = None
    if stablelist is not None:
        stable_count = len(stablelist.symbols.intersection(kmod.requires))
    return Verdict(kmod.label, kernel.nvr, table.key, tuple(problems),
                   len(kmod.requires) + len(kmod.ksym_requires), stable_count)


def ksym_providers(kmods: Iterable[KmodRequirements]) -> dict[str, dict[str, int]]:
    """Per arch, the ``ksym()`` symbols a set of kmods export to each other."""
    out: dict[str, dict[str, int]] = {}
    for kmod in kmods:
        if kmod.ksym_provides:
            out.setdefault(kmod.key.arch, {}).update(kmod.ksym_provides)
    return out


def verdicts(kmods: Sequence[KmodRequirements], kernel: Kernel,
             stablelists: Optional[Mapping[str, Stablelist]] = None) -> list[Verdict]:
    """Every kmod's verdict against one kernel, in order: the one loop every caller uses.

    ``ksym()`` requires are looked up among the given kmods (they export to each other);
    ``stablelists`` are per arch.
    """
    lists = stablelists or {}
    providers = ksym_providers(kmods)
    return [verdict(m, kernel, lists.get(m.key.arch), providers.get(m.key.arch))
            for m in kmods]
