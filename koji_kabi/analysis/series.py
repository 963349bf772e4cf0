"""kABI over an ordered kernel series and a set of kmods: what changed at each kernel,
which kmods each one breaks, and how the consumed symbols fared.

For each kmod: the first kernel that breaks it and the kernels at which it needs a
rebuild (its consumed symbols' CRCs changed).  For the kernels: the delta at each step.
For the consumed symbols: unique / changed / stable / unchanged counts (and % of the
kernel's symbols), the most consumed ones, and the CRC history of any symbol.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from koji_kabi.analysis.delta import delta
from koji_kabi.analysis.verdict import Verdict, ksym_providers, verdict
from koji_kabi.errors import KabiError
from koji_kabi.model import Kernel, KmodRequirements, Stablelist, SymbolTable, TableKey


@dataclass(frozen=True)
class KmodHistory:
    kmod: str
    verdicts: tuple[Verdict, ...]
    first_broken: Optional[str]
    rebuilds: tuple[str, ...]  # kernels at which a rebuild is needed
    changed_symbols: tuple[str, ...]  # consumed symbols whose CRC changed in the series


@dataclass(frozen=True)
class Step:
    kernel: str
    symbols: int
    added: int  # vs the previous kernel
    removed: int
    changed: int
    vs_first: int  # (symbol, CRC) pairs not in the first kernel: `comm -13 first this`
    vs_last: int  # (symbol, CRC) pairs not in the last kernel: distance to where it ends
    broke: tuple[str, ...]  # kmods needing a rebuild at this kernel


@dataclass(frozen=True)
class SymbolUse:
    reference: str  # the kernel percentages refer to (the last one)
    reference_total: int
    unique: int
    changed: int
    absent: int  # consumed but provided by no kernel of the series
    stable: Optional[int]  # None when no stablelist was given
    unchanged: int  # constant CRC, not on the stablelist


@dataclass(frozen=True)
class ConsumedSymbol:
    symbol: str
    consumers: int
    stable: Optional[bool]
    changed_at: tuple[str, ...]  # kernels where its CRC changed (or it came/went)


@dataclass(frozen=True)
class SeriesReport:
    key: TableKey
    kernels: tuple[str, ...]
    steps: tuple[Step, ...]
    kmods: tuple[KmodHistory, ...]
    use: SymbolUse
    most_consumed: tuple[ConsumedSymbol, ...]
    changed_consumed: tuple[ConsumedSymbol, ...]
    tables: tuple[SymbolTable, ...]

    @property
    def rebuild_total(self) -> int:
        return sum(len(h.rebuilds) for h in self.kmods)

    def crc_history(self, symbol: str) -> tuple[tuple[str, Optional[int]], ...]:
        """The symbol's CRC in each kernel (None where absent)."""
        return tuple((k, t.crcs.get(symbol)) for k, t in zip(self.kernels, self.tables))

    def last_changed(self, symbol: str) -> Optional[str]:
        """The last kernel at which the symbol's CRC changed (or it appeared), if any."""
        changes = _changed_at(symbol, self.kernels, self.tables)
        return changes[-1] if changes else None


def _changed_at(symbol: str, kernels: Sequence[str],
                tables: Sequence[SymbolTable]) -> tuple[str, ...]:
    out = []
    prev = tables[0].crcs.get(symbol)
    for name, table in zip(kernels[1:], tables[1:]):
        crc = table.crcs.get(symbol)
        if crc != prev:
            out.append(name)
        prev = crc
    return tuple(out)


def _pairs_not_in(table: SymbolTable, other: SymbolTable) -> int:
    o = other.crcs
    return sum(1 for s, c in table.crcs.items() if o.get(s) != c)


def _history(kmod: KmodRequirements, kernels: Sequence[Kernel], tables: Sequence[SymbolTable],
             stablelist: Optional[Stablelist], providers: Mapping[str, int]) -> KmodHistory:
    symbols = sorted(kmod.requires)
    current = tuple(kmod.requires[s] for s in symbols)
    verdicts, rebuilds = [], []
    changed: set[str] = set()
    for kernel, table in zip(kernels, tables):
        verdicts.append(verdict(kmod, kernel, stablelist, providers))
        fingerprint = tuple(table.crcs.get(s) for s in symbols)
        if fingerprint != current:
            rebuilds.append(kernel.nvr)
            changed.update(s for s, a, b in zip(symbols, current, fingerprint) if a != b)
            current = fingerprint
    first = next((v.kernel for v in verdicts if not v.compatible), None)
    return KmodHistory(kmod.label, tuple(verdicts), first, tuple(rebuilds),
                       tuple(sorted(changed)))


def series(kernels: Sequence[Kernel], kmods: Sequence[KmodRequirements],
           stablelists: Optional[Mapping[str, Stablelist]] = None,
           top: int = 10) -> list[SeriesReport]:
    """One report per (arch, flavour) that every kernel of the series has."""
    if not kernels:
        raise KabiError("series", "no kernels given")
    keys = set(kernels[0].tables)
    for k in kernels[1:]:
        keys &= set(k.tables)
    if not keys:
        raise KabiError("series", "the kernels share no arch/flavour")
    lists = stablelists or {}
    providers = ksym_providers(kmods)
    reports = []
    for key in sorted(keys):
        tables = [k.tables[key] for k in kernels]
        mine = [m for m in kmods if (t := kernels[-1].table_for(m.key)) is not None
                and t.key == key]
        reports.append(_report(key, kernels, tables, mine, lists.get(key.arch),
                               providers.get(key.arch, {}), top))
    return reports


def _report(key: TableKey, kernels: Sequence[Kernel], tables: list[SymbolTable],
            kmods: list[KmodRequirements], stablelist: Optional[Stablelist],
            providers: Mapping[str, int], top: int) -> SeriesReport:
    names = tuple(k.nvr for k in kernels)
    histories = tuple(_history(m, kernels, tables, stablelist, providers) for m in kmods)
    steps = []
    for i, (kernel, table) in enumerate(zip(kernels, tables)):
        if i == 0:
            added = removed = changed = 0
        else:
            d = delta(tables[i - 1], table, None, names[i - 1], names[i])
            added, removed, changed = len(d.added), len(d.removed), len(d.changed)
        broke = tuple(h.kmod for h in histories if kernel.nvr in h.rebuilds)
        steps.append(Step(kernel.nvr, len(table), added, removed, changed,
                          _pairs_not_in(table, tables[0]), _pairs_not_in(table, tables[-1]),
                          broke))
    consumers: Counter[str] = Counter()
    for m in kmods:
        consumers.update(m.requires.keys())
    consumed = []
    absent = changed_n = stable_n = unchanged_n = 0
    for symbol, count in consumers.items():
        changed_at = _changed_at(symbol, names, tables)
        stable = None if stablelist is None else symbol in stablelist
        if all(symbol not in t.crcs for t in tables):
            absent += 1
        elif changed_at:
            changed_n += 1
        elif stable:
            stable_n += 1
        else:
            unchanged_n += 1
        consumed.append(ConsumedSymbol(symbol, count, stable, changed_at))
    consumed.sort(key=lambda c: (-c.consumers, c.symbol))
    use = SymbolUse(names[-1], len(tables[-1]), len(consumers), changed_n, absent,
                    None if stablelist is None else stable_n, unchanged_n)
    return SeriesReport(
        key=key, kernels=names, steps=tuple(steps), kmods=histories, use=use,
        most_consumed=tuple(consumed[:top]),
        changed_consumed=tuple(c for c in consumed if c.changed_at),
        tables=tuple(tables),
    )
