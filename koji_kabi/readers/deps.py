"""Kernel-symbol dependencies as RPM spells them, in all the variants seen in the wild.

* RHEL/Fedora: ``kernel(sym) = 0x1234abcd`` (kernel provides, kmod requires) and
  ``ksym(sym) = 0x...`` (a symbol exported by another kmod).
* SUSE: ``ksym(flavor:sym) = 1234abcd`` (no ``0x``), for kernel provides and kmod requires.

CRCs are compared as numbers, so ``0x0000abcd``, ``0xabcd`` and ``abcd`` are the same.
"""

from __future__ import annotations

import re
import sys
from typing import NamedTuple, Optional

from koji_kabi.model import MAX_CRC, symbol_problem

RPMSENSE_EQUAL = 8
_LESS_GREATER = 0x6
#: What can only be meant as a CRC: no dots or other version punctuation (``5.14`` is not)
_CRC_LIKE = re.compile(r"^\s*[+-]?(0[xX])?[\w-]*\s*$")
#: One line of ``rpm -q --provides/--requires``: ``name``, or ``name OP version``.
_DUMP_LINE = re.compile(r"^(\S+)(?:\s+(=|<|>|<=|>=)\s+(\S+))?$")


class KernelDep(NamedTuple):
    """One parsed ``kernel()``/``ksym()`` dependency (a tuple: 30,000 per kernel RPM)."""

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
    """``0x1234abcd`` / ``1234abcd`` → int; None when it is not a 32-bit CRC."""
    digits = text.strip()
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    if not 0 < len(digits) <= 16 or not digits.isalnum() or not digits.isascii():
        return None  # isalnum() also rules out int()'s signs, spaces and underscores
    try:
        crc = int(digits, 16)
    except ValueError:
        return None
    return crc if crc <= MAX_CRC else None


def normalize_flavour(flavour: str) -> str:
    """SUSE's ``default`` flavour is the plain kernel, which we spell ``""``."""
    return "" if flavour in ("", "default") else flavour


def parse_dep(name: str, flags: int, version: str) -> Optional[KernelDep]:
    """A header dependency triple → :class:`KernelDep`, or None if it is not a symbol CRC.

    Unversioned ``kernel(sym)`` or non-``=`` comparisons carry no CRC and are ignored, as
    weak-modules and dnf would not use them to match a CRC either; nor are versions that
    are no CRC at all (``kernel(foo) = 5.14``).  A malformed name, or a CRC that is
    negative, wider than 32 bits or spelt with ``_``, raises ValueError: ignoring it
    would silently drop a symbol.
    """
    if not flags & RPMSENSE_EQUAL or flags & _LESS_GREATER:
        return None
    if name.startswith("kernel("):
        kind, inner = "kernel", name[7:-1]
    elif name.startswith("ksym("):
        kind, inner = "ksym", name[5:-1]
    else:
        return None
    problem = symbol_problem(inner)
    if problem is None and (name[-1:] != ")" or "(" in inner or ")" in inner):
        problem = "not a symbol name"
    if problem is not None:
        raise ValueError(f"{problem} in {name!r}")
    crc = parse_crc(version)
    if crc is None:
        if _CRC_LIKE.match(version):
            raise ValueError(f"{name} = {version!r}: not a 32-bit hex CRC")
        return None
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
