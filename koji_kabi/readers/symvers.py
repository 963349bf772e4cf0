"""``Module.symvers`` / ``symvers.gz`` / ``symvers.xz`` and RHEL ``kabi-module`` files.

A symvers line is ``0xCRC<TAB>symbol<TAB>module<TAB>export type[<TAB>namespace]``:
five columns since Linux 5.9 (EL9), four before (EL8 and older).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from koji_kabi.errors import KabiError
from koji_kabi.model import (
    MAX_CRC,
    Export,
    SymbolTable,
    TableKey,
    duplicate_problem,
    symbol_problem,
)

_EXPORT_TYPES = frozenset({
    "EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL", "EXPORT_SYMBOL_NS", "EXPORT_SYMBOL_NS_GPL",
    "EXPORT_SYMBOL_GPL_FUTURE", "EXPORT_UNUSED_SYMBOL", "EXPORT_UNUSED_SYMBOL_GPL",
})
#: modpost writes ``0x%08x``; no sign, no ``_``, no spaces (``int()`` takes all three)
_CRC = re.compile(r"0[xX][0-9a-fA-F]{1,16}")


def parse_symvers_line(line: str, source: str, lineno: int) -> tuple[str, int, Export]:
    """One symvers line → (symbol, crc, export); a clear error for anything else."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) == 5 and fields[4] == "" and fields[3] in _EXPORT_TYPES:
        fields = fields[:4] + [""]
    if len(fields) not in (4, 5):
        raise KabiError(
            f"{source}:{lineno}",
            f"not a Module.symvers line (want 4 or 5 TAB-separated fields, got {len(fields)})",
        )
    crc_text, symbol, module, export_type = fields[:4]
    crc = int(crc_text, 16) if _CRC.fullmatch(crc_text) else MAX_CRC + 1
    if crc > MAX_CRC:
        raise KabiError(f"{source}:{lineno}", f"bad CRC {crc_text!r} (want 0x and 32-bit hex)")
    problem = symbol_problem(symbol)
    if problem is not None:
        raise KabiError(f"{source}:{lineno}", problem)
    namespace = fields[4] if len(fields) == 5 else ""
    if not all(map(str.isprintable, fields[2:])):
        raise KabiError(f"{source}:{lineno}", "control characters in the module, export "
                        "type or namespace field")
    if export_type not in _EXPORT_TYPES and namespace in _EXPORT_TYPES:
        # Linux 5.4-5.8 put the namespace in column 3: crc, sym, namespace, module, type
        namespace, module, export_type = module, export_type, namespace
    return sys.intern(symbol), crc, Export(module, export_type, namespace)


def read_symvers_lines(lines: Iterable[str], key: TableKey, source: str) -> SymbolTable:
    """A whole symvers file → :class:`SymbolTable` (export info included)."""
    crcs: dict[str, int] = {}
    exports: dict[str, Export] = {}
    export_cache: dict[Export, Export] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        symbol, crc, export = parse_symvers_line(line, source, lineno)
        first = crcs.setdefault(symbol, crc)
        if first != crc:
            raise KabiError(f"{source}:{lineno}", duplicate_problem(symbol, crc, first))
        exports[symbol] = export_cache.setdefault(export, export)
    if not crcs:
        raise KabiError(source, "empty symvers file: no symbols")
    return SymbolTable(key, crcs, source, exports)


def read_kabi_module_file(text: str, source: str) -> tuple[str, int, Export]:
    """A ``redhat/kabi/kabi-module/kabi_<arch>/<symbol>`` file: ``#<range>`` then one line."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("#"):
        raise KabiError(source, "not a kabi-module file (want '#<range>' then a symvers line)")
    return parse_symvers_line(lines[1], source, 2)
