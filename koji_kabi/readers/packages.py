"""From RPM dependencies to kABI values: kernel tables and kmod requirements.

Works on plain (name, flags, version) triples, so the same code serves local RPM
headers, ``rpm -q`` text dumps and Koji's ``getRPMDeps`` answers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from itertools import compress, repeat
from operator import itemgetter
from typing import NamedTuple, Optional

from koji_kabi.errors import KabiError
from koji_kabi.model import (
    UNKNOWN_ARCH,
    Kernel,
    KmodRequirements,
    SymbolTable,
    TableKey,
    merge_tables,
    normalize_arch,
    unique_crcs,
)
from koji_kabi.readers.deps import KernelDep, parse_dep
from koji_kabi.readers.rpmheader import RpmDep, RpmHeader

#: Binary sub-packages of one kernel flavour (kernel-core, kernel-debug-modules-extra ...).
_KERNEL_SUBPACKAGE = re.compile(
    r"-(core|modules|modules-core|modules-extra|modules-internal|modules-partner|"
    r"uki-virt|kvm|devel|devel-matched)$"
)
_KVER_DIR = re.compile(r"^/lib/modules/([^/]+)/")
_RT_KVER = re.compile(r"\.rt\d")
_CANONICAL_NAME = re.compile(r"^kernel\(([!-'*-~]+)\)$", re.M)
_CANONICAL_CRC = re.compile(r"^0x[0-9a-fA-F]{1,8}$", re.M)

Triple = tuple[str, int, str]


class Dependencies(NamedTuple):
    """The dependencies of one RPM that kABI checks read: its requires and its provides."""

    requires: tuple[Triple, ...] = ()
    provides: tuple[Triple, ...] = ()

    @classmethod
    def relevant(cls, requires: Iterable[Triple], provides: Iterable[Triple]) -> Dependencies:
        """Only the kABI-relevant ones of all an RPM's requires and provides."""
        return cls(tuple(relevant_deps(requires)), tuple(relevant_deps(provides)))


def kernel_flavour(package: str) -> str:
    """``kernel-rt-debug-core`` → ``rt-debug``; ``kernel-core``/``kernel`` → ``""``.

    CRCs of the debug, rt and 64k kernels differ from the plain one, so each flavour
    gets its own table.
    """
    base = _KERNEL_SUBPACKAGE.sub("", package)
    if base.startswith("kernel"):
        base = base[len("kernel"):]
    return base.lstrip("-")


def kver_flavour(kver: str) -> str:
    """Flavour encoded in a kernel release string (``5.14.0-1.el9.x86_64+debug`` → debug)."""
    if "+" in kver:
        return kver.rsplit("+", 1)[1]
    return "rt" if _RT_KVER.search(kver) else ""


def kernel_deps(triples: Iterable[Triple], source: str) -> list[KernelDep]:
    """The symbol deps among ``triples``; a malformed one is an error naming ``source``."""
    out = []
    for name, flags, version in triples:
        try:
            dep = parse_dep(name, flags, version)
        except ValueError as exc:
            raise KabiError(source, str(exc)) from None
        if dep is not None:
            out.append(dep)
    return out


def split_canonical(triples: Iterable[Triple]) -> tuple[list[tuple[str, int]], list[Triple]]:
    """(symbol, CRC) of the ``kernel(sym) = 0x<hex>`` deps, and the other triples.

    That one spelling is nearly every dependency of kernels and kmods (30,000 per kernel
    RPM, millions over a kmod tag), so it skips :func:`parse_dep`: the whole list is
    checked with a few string operations done in C, and only a list that fails them is
    walked dep by dep.  What it accepts, ``parse_dep`` parses to the same symbol and CRC.
    """
    triples = list(triples)
    if not triples:
        return [], []
    starts = list(map(str.startswith, map(itemgetter(0), triples), repeat("kernel(")))
    if all(starts):
        candidates, other = triples, []
    else:
        candidates = list(compress(triples, starts))
        other = [t for t, k in zip(triples, starts) if not k]
    fast = _bulk_canonical(candidates)
    if fast is not None:
        return fast, other
    fast, slow = _each_canonical(candidates)
    return fast, other + slow


def _bulk_canonical(triples: list[Triple]) -> Optional[list[tuple[str, int]]]:
    """All of ``triples`` (names starting ``kernel(``) parsed at once, or None.

    One regex pass per column: every name a whole line ``kernel(<printable ASCII, no
    space or parens>)``, every version ``0x`` + 1-8 hex digits, flags exactly ``=``.
    """
    if not triples:
        return []
    names, flags, versions = zip(*triples)
    n = len(names)
    if any((f & 14) != 8 for f in set(flags)):
        return None
    joined, vjoined = "\n".join(names), "\n".join(versions)
    if joined.count("\n") != n - 1 or vjoined.count("\n") != n - 1:  # no newline inside
        return None
    inners = _CANONICAL_NAME.findall(joined)
    if len(inners) != n or len(_CANONICAL_CRC.findall(vjoined)) != n:
        return None
    return list(zip(map(sys.intern, inners), map(int, versions, repeat(16))))


def _each_canonical(triples: list[Triple]) -> tuple[list[tuple[str, int]], list[Triple]]:
    """:func:`split_canonical` dep by dep, for lists the bulk check refuses."""
    fast: list[tuple[str, int]] = []
    slow: list[Triple] = []
    intern = sys.intern
    for triple in triples:
        name, flags, version = triple
        if (flags & 14) == 8 and name[:7] == "kernel(" and name[-1:] == ")" \
                and version[:2] == "0x" and 2 < len(version) <= 10 and version.isalnum() \
                and version.isascii():
            inner = name[7:-1]
            if inner and inner.isprintable() and "(" not in inner and ")" not in inner \
                    and " " not in inner:
                try:
                    fast.append((intern(inner), int(version, 16)))
                    continue
                except ValueError:  # "0x0x12": parse_crc's own reading applies
                    pass
        slow.append(triple)
    return fast, slow


def kernel_table_from_provides(
    provides: Iterable[Triple], arch: str, package: str, source: str
) -> Optional[SymbolTable]:
    """The ``kernel(sym)`` provides of one kernel package, or None if it provides none."""
    flavour = kernel_flavour(package)
    provides = list(provides)
    fast, slow = split_canonical(provides)
    rest = kernel_deps(slow, source)
    if any(dep.is_kernel_symbol for dep in rest):  # other spellings: the order-exact loop
        symbols = []
        for dep in kernel_deps(provides, source):
            if dep.is_kernel_symbol:
                if dep.flavour is not None:  # SUSE ksym(flavor:sym) names its flavour
                    flavour = dep.flavour
                symbols.append((dep.symbol, dep.crc))
        crcs = unique_crcs(symbols, source)
    else:
        crcs = unique_crcs(fast, source)
    if not crcs:
        return None
    return SymbolTable(TableKey(normalize_arch(arch), flavour), crcs, source)


def _kmod_flavour(requires: Iterable[Triple], filenames: Iterable[str]) -> str:
    for path in filenames:
        m = _KVER_DIR.match(path)
        if m and m.group(1)[:1].isdigit():
            return kver_flavour(m.group(1))
    for name, _flags, version in requires:
        if name == "kernel-uname-r" and version:
            return kver_flavour(version)
    return ""


def kmod_from_deps(
    *,
    nvr: str,
    name: str,
    arch: str,
    provides: Iterable[Triple],
    requires: Iterable[Triple],
    source: str,
    filenames: Iterable[str] = (),
    license: str = "",
) -> KmodRequirements:
    """A kmod package's kABI requirements (empty ones if it has no kernel deps)."""
    requires = list(requires)
    kernel_pairs: list[tuple[str, int]] = []
    ksym_pairs: list[tuple[str, int]] = []
    suse_flavour: Optional[str] = None
    fast, slow = split_canonical(requires)
    rest = kernel_deps(slow, source)
    if any(dep.is_kernel_symbol for dep in rest):
        rest = kernel_deps(requires, source)  # other kernel-symbol spellings: the exact loop
    else:
        kernel_pairs = fast
    for dep in rest:
        if dep.is_kernel_symbol:
            if dep.flavour is not None:
                suse_flavour = dep.flavour
            kernel_pairs.append((dep.symbol, dep.crc))
        else:
            ksym_pairs.append((dep.symbol, dep.crc))
    provides = list(provides)
    modules = {sys.intern(p[5:-1]) for p, _f, _v in provides
               if p.startswith("kmod(") and p.endswith(")")}
    ksym_prov = unique_crcs([(dep.symbol, dep.crc) for dep in kernel_deps(
        (t for t in provides if t[0].startswith("ksym(")), source)
        if dep.kind == "ksym" and dep.flavour is None], source)
    flavour = suse_flavour if suse_flavour is not None else _kmod_flavour(requires, filenames)
    return KmodRequirements(
        nvr=nvr,
        name=name,
        key=TableKey(normalize_arch(arch) if arch else UNKNOWN_ARCH, flavour),
        requires=unique_crcs(kernel_pairs, source),
        ksym_requires=unique_crcs(ksym_pairs, source),
        ksym_provides=ksym_prov,
        modules=frozenset(modules),
        license=license,
        source=source,
    )


def _triples(deps: Iterable[RpmDep]) -> list[Triple]:
    return list(deps)  # RpmDep is a (name, flags, version) tuple


def kernel_table_from_header(hdr: RpmHeader, source: str) -> Optional[SymbolTable]:
    return kernel_table_from_provides(_triples(hdr.provides), hdr.arch, hdr.name, source)


def kmod_from_header(hdr: RpmHeader, source: str) -> KmodRequirements:
    return kmod_from_deps(
        nvr=hdr.nvr,
        name=hdr.name,
        arch=hdr.arch,
        provides=_triples(hdr.provides),
        requires=_triples(hdr.requires),
        filenames=hdr.filenames,
        license=hdr.license,
        source=source,
    )


def require_kmod(kmod: KmodRequirements) -> KmodRequirements:
    """Refuse a package with no ``kernel()``/``ksym()`` requires where a kmod is expected."""
    if not kmod.is_kmod:
        raise KabiError(kmod.source, "not a kmod: no kernel(symbol) = CRC requires")
    return kmod


_SYMBOL_SUBPACKAGE = re.compile(
    r"^kernel(-[a-z0-9]+)*-(core|modules|modules-core|modules-extra|modules-internal|"
    r"modules-partner|uki-virt)$"
)
_FLAVOUR_ONLY = re.compile(r"^kernel(-(debug|rt|rt-debug|64k|64k-debug|zfcpdump|default|"
                           r"lpae|kvm))?$")
_RELEVANT_PREFIXES = ("kernel(", "ksym(", "kmod(", "kernel-uname-r")


def is_kernel_symbol_rpm(name: str) -> bool:
    """Binary packages of a kernel build that carry ``kernel()`` provides.

    ``kernel-core`` and the ``kernel-*-modules*`` sub-packages (EL8+), or the flavour
    package itself (EL7's ``kernel``, ``kernel-debug``; SUSE's ``kernel-default``); never
    ``kernel-devel``, ``-headers``, ``-tools``, debuginfo... so a hub is asked only for
    what matters.
    """
    return bool(_SYMBOL_SUBPACKAGE.match(name) or _FLAVOUR_ONLY.match(name))


def relevant_deps(triples: Iterable[Triple]) -> list[Triple]:
    """Only the dependencies kABI checks read: what caches keep per RPM."""
    triples = triples if isinstance(triples, (list, tuple)) else list(triples)
    return list(compress(triples, map(str.startswith, map(itemgetter(0), triples),
                                      repeat(_RELEVANT_PREFIXES))))  # in C: 30,000 a kernel


def kernel_from_tables(nvr: str, tables: Iterable[Optional[SymbolTable]]) -> Kernel:
    """A kernel build from its RPMs' tables (None: an RPM without kernel symbols)."""
    by_key: dict[TableKey, list[SymbolTable]] = {}
    sources = []
    for table in tables:
        if table is not None:
            by_key.setdefault(table.key, []).append(table)
            sources.append(table.source)
    if not by_key:
        raise KabiError(nvr, "not a kernel build: no RPM provides kernel(symbol) = CRC")
    return Kernel(nvr, {k: merge_tables(k, v) for k, v in by_key.items()}, tuple(sources))
