"""Immutable values: symbol tables per (arch, flavour), kernels, kmod requirements, stablelists.

CRCs are ints (compared as numbers, whatever their spelling) and symbol names are
interned, so tables of 30,000 symbols for many kernels stay small in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from koji_kabi.errors import KabiError

#: Spellings of the same architecture (Debian names, uname -m) mapped to RPM's.
ARCH_ALIASES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "ppc64el": "ppc64le",
    "i386": "i686",
}
KNOWN_ARCHES = frozenset(
    {"x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "i686", "armv7hl", "riscv64", "noarch"}
)
UNKNOWN_ARCH = "unknown"
#: modversion CRCs are 32-bit (``s32 __crc_*``; ``0x%08x`` in symvers and RPM deps).
MAX_CRC = 0xFFFFFFFF


def symbol_problem(name: str) -> str | None:
    """Why ``name`` cannot be a symbol name, or None.

    Names are compared as strings and printed: a NUL, a control character or a space
    would make distinct names print alike, or write to the terminal.
    """
    if not name:
        return "empty symbol name"
    if not name.isprintable() or " " in name:
        return f"not a symbol name: {name!r}"
    return None


def duplicate_problem(symbol: str, crc: int, first: int) -> str:
    """The message for one symbol given two CRCs in one table."""
    return f"{symbol} is given twice with different CRCs: {first:#010x} and {crc:#010x}"


def unique_crcs(pairs: Sequence[tuple[str, int]], source: str) -> dict[str, int]:
    """``dict(pairs)``, refusing a symbol given twice with different CRCs.

    Keeping one of them silently could report a real change as "no change".
    """
    crcs = dict(pairs)
    if len(crcs) != len(pairs):
        for symbol, crc in pairs:
            if crcs[symbol] != crc:
                raise KabiError(source, duplicate_problem(symbol, crcs[symbol], crc))
    return crcs


def normalize_arch(arch: str) -> str:
    """RPM's name for an arch (``amd64`` → ``x86_64``), so Debian and RPM inputs meet."""
    return ARCH_ALIASES.get(arch, arch)


@dataclass(frozen=True, order=True)
class TableKey:
    """What a CRC is valid for: CRCs of different arches or flavours are never comparable."""

    arch: str
    flavour: str = ""

    def __str__(self) -> str:
        return f"{self.arch}+{self.flavour}" if self.flavour else self.arch


@dataclass(frozen=True)
class Export:
    """Where and how a symbol is exported, when the source knows it (symvers does, RPMs don't)."""

    module: str = ""
    export_type: str = ""
    namespace: str = ""

    @property
    def gpl_only(self) -> bool:
        return self.export_type.endswith("_GPL")


@dataclass(frozen=True, eq=False)
class SymbolTable:
    """The ``kernel(sym) = crc`` set of one kernel for one (arch, flavour)."""

    key: TableKey
    crcs: Mapping[str, int]
    source: str
    exports: Mapping[str, Export] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "crcs", MappingProxyType(dict(self.crcs)))
        object.__setattr__(self, "exports", MappingProxyType(dict(self.exports)))

    def __len__(self) -> int:
        return len(self.crcs)


@dataclass(frozen=True, eq=False)
class Kernel:
    """One kernel build: a symbol table per (arch, flavour), united over its RPMs or files."""

    nvr: str
    tables: Mapping[TableKey, SymbolTable]
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", MappingProxyType(dict(sorted(self.tables.items()))))

    def table_for(self, key: TableKey) -> SymbolTable | None:
        """The table a kmod built for ``key`` loads against.

        Exact (arch, flavour) first; a kmod that does not say its flavour matches the
        build's only flavour on that arch (e.g. an EL8 ``kernel-rt`` build).
        """
        table = self.tables.get(key)
        if table is not None:
            return table
        same_arch = [t for k, t in self.tables.items() if k.arch == key.arch]
        if not key.flavour and len(same_arch) == 1:
            return same_arch[0]
        if key.arch == UNKNOWN_ARCH and not key.flavour and len(self.tables) == 1:
            return next(iter(self.tables.values()))
        return None


@dataclass(frozen=True, eq=False)
class KmodRequirements:
    """What one kmod package (one arch) needs from the kernel and gives to other kmods."""

    nvr: str
    name: str
    key: TableKey
    requires: Mapping[str, int]
    source: str
    ksym_requires: Mapping[str, int] = field(default_factory=dict)
    ksym_provides: Mapping[str, int] = field(default_factory=dict)
    modules: frozenset[str] = frozenset()
    license: str = ""

    def __post_init__(self) -> None:
        for name in ("requires", "ksym_requires", "ksym_provides"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def label(self) -> str:
        """``N-V-R.arch``: a kmod package is per arch, the build is not."""
        return f"{self.nvr}.{self.key.arch}" if self.key.arch != UNKNOWN_ARCH else self.nvr

    @property
    def is_kmod(self) -> bool:
        return bool(self.requires or self.ksym_requires)


@dataclass(frozen=True, eq=False)
class Stablelist:
    """The kABI stablelist of one arch: symbols the vendor promises not to change."""

    arch: str
    symbols: frozenset[str]
    source: str
    name: str = ""

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.symbols


def merge_tables(key: TableKey, parts: Iterable[SymbolTable]) -> SymbolTable:
    """Unite the tables of several RPMs/files of one build (core, modules, modules-extra...).

    The same symbol with two CRCs inside one build and flavour is corrupt input.
    """
    crcs: dict[str, int] = {}
    exports: dict[str, Export] = {}
    sources = []
    for part in parts:
        sources.append(part.source)
        for name, crc in part.crcs.items():
            seen = crcs.setdefault(name, crc)
            if seen != crc:
                raise KabiError(
                    part.source,
                    f"kernel({name}) = {crc:#010x} conflicts with {seen:#010x} "
                    f"from another package of the same build ({key})",
                )
        exports.update(part.exports)
    return SymbolTable(key, crcs, ", ".join(sources), exports)
