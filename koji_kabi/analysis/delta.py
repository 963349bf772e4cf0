"""δ: what changed between two symbol tables of the same arch and flavour.

Measured from modversion CRCs, this is a defensible *minimum* delta: a change the CRCs
cannot see (a flag's meaning, a pointed-to value) is not in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from koji_kabi.errors import KabiError
from koji_kabi.model import Export, Kernel, Stablelist, SymbolTable, TableKey


@dataclass(frozen=True)
class SymbolChange:
    symbol: str
    old_crc: Optional[int]
    new_crc: Optional[int]
    old_export: Optional[Export] = None
    new_export: Optional[Export] = None
    stable: Optional[bool] = None  # None: no stablelist given


@dataclass(frozen=True)
class Delta:
    """Added, removed and CRC-changed symbols, plus export changes where known."""

    old: str
    new: str
    key: TableKey
    old_count: int
    new_count: int
    added: tuple[SymbolChange, ...]
    removed: tuple[SymbolChange, ...]
    changed: tuple[SymbolChange, ...]
    export_type_changed: tuple[SymbolChange, ...] = ()
    moved: tuple[SymbolChange, ...] = ()
    namespace_changed: tuple[SymbolChange, ...] = ()

    @property
    def unchanged_count(self) -> int:
        return self.old_count - len(self.removed) - len(self.changed)

    @property
    def gpl_restricted(self) -> tuple[SymbolChange, ...]:
        """Symbols that became GPL-only: non-GPL kmods break even with the same CRC."""
        return tuple(c for c in self.export_type_changed
                     if c.new_export and c.new_export.gpl_only
                     and not (c.old_export and c.old_export.gpl_only))

    @property
    def breaking(self) -> bool:
        """Could a kmod built for OLD fail to load on NEW (for some kmod)?"""
        return bool(self.removed or self.changed or self.gpl_restricted
                    or self.namespace_changed)

    def breaking_symbols(self) -> set[str]:
        """Symbols whose consumers may need a rebuild."""
        return {c.symbol for group in (self.removed, self.changed, self.gpl_restricted,
                                       self.namespace_changed) for c in group}


@dataclass(frozen=True)
class KernelDelta:
    """The deltas of two kernel builds, one per (arch, flavour) both have."""

    old: str
    new: str
    deltas: tuple[Delta, ...]
    only_old: tuple[TableKey, ...] = ()
    only_new: tuple[TableKey, ...] = ()

    @property
    def breaking(self) -> bool:
        return any(d.breaking for d in self.deltas) or bool(self.only_old)


def _stable(symbol: str, stablelist: Optional[Stablelist]) -> Optional[bool]:
    return None if stablelist is None else symbol in stablelist


def delta(old: SymbolTable, new: SymbolTable, stablelist: Optional[Stablelist] = None,
          old_label: str = "", new_label: str = "") -> Delta:
    """Compare two tables of the same key; refuse tables of different arch or flavour."""
    if old.key != new.key:
        raise KabiError(
            f"{old_label or old.source} vs {new_label or new.source}",
            f"will not compare CRCs of {old.key} with {new.key}: "
            "CRCs differ per arch and flavour",
        )
    o, n = old.crcs, new.crcs
    oe, ne = old.exports, new.exports
    added = tuple(SymbolChange(s, None, n[s], None, ne.get(s), _stable(s, stablelist))
                  for s in sorted(n.keys() - o.keys()))
    removed = tuple(SymbolChange(s, o[s], None, oe.get(s), None, _stable(s, stablelist))
                    for s in sorted(o.keys() - n.keys()))
    changed, types, moved, namespaces = [], [], [], []
    both_exports = bool(oe) and bool(ne)
    for s in sorted(o.keys() & n.keys()):
        old_exp = oe.get(s) if both_exports else None
        new_exp = ne.get(s) if both_exports else None
        change = None
        if o[s] != n[s]:
            change = SymbolChange(s, o[s], n[s], old_exp, new_exp, _stable(s, stablelist))
            changed.append(change)
        if old_exp is None or new_exp is None or old_exp == new_exp:
            continue
        change = change or SymbolChange(s, o[s], n[s], old_exp, new_exp, _stable(s, stablelist))
        if old_exp.export_type != new_exp.export_type:
            types.append(change)
        if old_exp.module != new_exp.module:
            moved.append(change)
        if old_exp.namespace != new_exp.namespace:
            namespaces.append(change)
    return Delta(
        old=old_label or old.source, new=new_label or new.source, key=old.key,
        old_count=len(o), new_count=len(n), added=added, removed=removed,
        changed=tuple(changed), export_type_changed=tuple(types), moved=tuple(moved),
        namespace_changed=tuple(namespaces),
    )


def delta_kernels(old: Kernel, new: Kernel,
                  stablelists: Optional[Mapping[str, Stablelist]] = None) -> KernelDelta:
    """Per-(arch, flavour) deltas of two kernels; an error if they share no arch/flavour."""
    lists = stablelists or {}
    common = sorted(old.tables.keys() & new.tables.keys())
    if not common:
        raise KabiError(
            f"{old.nvr} vs {new.nvr}",
            "no arch/flavour in common ("
            + (", ".join(map(str, old.tables)) or "none") + " vs "
            + (", ".join(map(str, new.tables)) or "none") + ")",
        )
    deltas = tuple(
        delta(old.tables[k], new.tables[k], lists.get(k.arch), old.nvr, new.nvr)
        for k in common
    )
    return KernelDelta(
        old.nvr, new.nvr, deltas,
        only_old=tuple(sorted(old.tables.keys() - new.tables.keys())),
        only_new=tuple(sorted(new.tables.keys() - old.tables.keys())),
    )
