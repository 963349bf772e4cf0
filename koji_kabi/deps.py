"""Kernel-symbol dependencies as RPM spells them, in all the variants seen in the wild.

* RHEL/Fedora: ``kernel(sym) = 0x1234abcd`` (kernel provides, kmod requires) and
  ``ksym(sym) = 0x...`` (a symbol exported by another kmod).
* SUSE: ``ksym(flavor:sym) = 1234abcd`` (no ``0x``), for kernel provides and kmod requires.

CRCs are compared as numbers, so ``0x0000abcd``, ``0xabcd`` and ``abcd`` are the same.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Optional

RPMSENSE_EQUAL = 8

_DEP_NAME = re.compile(r"^(kernel|ksym)\(([^()\s]+)\)$")
_CRC = re.compile(r"^(?:0[xX])?([0-9a-fA-F]{1,16})$")
#: One line of ``rpm -q --provides/--requires``: ``name``, or ``name OP version``.
_DUMP_LINE = re.compile(r"^(\S+)(?:\s+(=|<|>|<=|>=)\s+(\S+))?$")


@dataclass(frozen=True)
class KernelDep:
    """One parsed ``kernel()``/``ksym()`` dependency."""

    kind: str  # "kernel" or "ksym"
    symbol: str
    crc: int
    flavour: Optional[str] = None  # SUSE ksym(flavor:sym); None when not given

    @property
    def is_kernel_symbol(self) -> bool:
        """True when the symbol comes from the kernel itself, not from another kmod.

        SUSE spells kernel symbols ``ksym(flavor:sym)``; RHEL's plain ``ksym(sym)`` means
        "some other kmod exports it".
        """
        return self.kind == "kernel" or self.flavour is not None


def parse_crc(text: str) -> Optional[int]:
    """``0x1234abcd`` / ``1234abcd`` → int; None when it is not a CRC."""
    m = _CRC.match(text.strip())
    return int(m.group(1), 16) if m else None


def normalize_flavour(flavour: str) -> str:
    """SUSE's ``default`` flavour is the plain kernel, which we spell ``""``."""
    return "" if flavour in ("", "default") else flavour


def parse_dep(name: str, flags: int, version: str) -> Optional[KernelDep]:
    """A header dependency triple → :class:`KernelDep`, or None if it is not a symbol CRC.

    Unversioned ``kernel(sym)`` or non-``=`` comparisons carry no CRC and are ignored, as
    weak-modules and dnf would not use them to match a CRC either.
    """
    m = _DEP_NAME.match(name)
    if m is None or not flags & RPMSENSE_EQUAL or flags & 0x6:
        return None
    crc = parse_crc(version)
    if crc is None:
        return None
    kind, inner = m.groups()
    flavour = None
    if kind == "ksym" and ":" in inner:
        flavour, _, inner = inner.partition(":")
        flavour = normalize_flavour(flavour)
    return KernelDep(kind, sys.intern(inner), crc, flavour)


def parse_dump_line(line: str) -> Optional[tuple[str, int, str]]:
    """A line of ``rpm -qp --provides`` output → (name, flags, version), None for blanks."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    m = _DUMP_LINE.match(line)
    if m is None:
        raise ValueError(f"not an RPM dependency line: {line!r}")
    name, op, version = m.groups()
    flags = 0
    if op:
        flags = (RPMSENSE_EQUAL if "=" in op else 0) | (2 if "<" in op else 0) | (
            4 if ">" in op else 0)
    return name, flags, version or ""
