"""Which kmods a delta touches, through a symbol → consumers index.

Built once over all kmods, the index makes the impact of a delta cost
O(|delta| + |affected|) instead of O(kmods × symbols).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from koji_kabi.analysis.delta import Delta, KernelDelta
from koji_kabi.model import Kernel, KmodRequirements, TableKey


@dataclass(frozen=True)
class Affected:
    kmod: KmodRequirements
    symbols: tuple[str, ...]  # consumed symbols that the delta changed or removed


@dataclass(frozen=True)
class Impact:
    key: TableKey
    affected: tuple[Affected, ...]
    consumers_indexed: int


class ConsumerIndex:
    """symbol → kmods requiring it, per arch (built once, queried per delta)."""

    def __init__(self, kmods: Iterable[KmodRequirements]) -> None:
        self.kmods: tuple[KmodRequirements, ...] = tuple(kmods)
        self._by_arch: dict[str, dict[str, list[int]]] = {}
        for i, kmod in enumerate(self.kmods):
            index = self._by_arch.setdefault(kmod.key.arch, {})
            for symbol in kmod.requires:
                index.setdefault(symbol, []).append(i)
            for symbol in kmod.ksym_requires:
                index.setdefault(symbol, []).append(i)

    def consumers(self, arch: str, symbol: str) -> list[KmodRequirements]:
        return [self.kmods[i] for i in self._by_arch.get(arch, {}).get(symbol, ())]

    def impact(self, d: Delta, new_kernel: Kernel | None = None) -> Impact:
        """Kmods consuming a symbol the delta broke; only kmods whose table is ``d.key``."""
        index = self._by_arch.get(d.key.arch, {})
        hits: dict[int, list[str]] = {}
        for symbol in sorted(d.breaking_symbols()):
            for i in index.get(symbol, ()):
                hits.setdefault(i, []).append(symbol)
        affected = []
        for i, symbols in sorted(hits.items()):
            kmod = self.kmods[i]
            if new_kernel is not None:
                table = new_kernel.table_for(kmod.key)
                if table is None or table.key != d.key:
                    continue
            elif kmod.key.flavour != d.key.flavour:
                continue
            affected.append(Affected(kmod, tuple(symbols)))
        return Impact(d.key, tuple(affected), len(index))


def impact(kd: KernelDelta, kmods: Sequence[KmodRequirements] | ConsumerIndex,
           new_kernel: Kernel | None = None) -> list[Impact]:
    """Impact of every per-arch delta of a kernel delta."""
    index = kmods if isinstance(kmods, ConsumerIndex) else ConsumerIndex(kmods)
    return [index.impact(d, new_kernel) for d in kd.deltas]
