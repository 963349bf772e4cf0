"""kABI stablelists: ``kabi_stablelist_<arch>`` (and the older ``kabi_whitelist_<arch>``).

A list file is a header line like ``[rhel9_x86_64_stablelist]`` followed by one symbol
per line, indented with a TAB.  They come as loose files, as the
``/lib/modules/kabi-rhelNN/`` tree of the ``kernel-abi-stablelists`` package, inside that
RPM's payload, or as the kernel tree's ``kabi-module/kabi_<arch>/<symbol>`` files.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable
from typing import Callable, Optional

from koji_kabi.errors import KabiError
from koji_kabi.model import Stablelist, normalize_arch, symbol_problem
from koji_kabi.readers.files import MAX_TEXT_BYTES, decode_text, read_content, text_lines

_HEADER = re.compile(r"^\[(\w+?)_(stablelist|whitelist)\]$")
_FILE_NAME = re.compile(r"^kabi_(?:stablelist|whitelist)_(\w+)$")
_MODULE_DIR = re.compile(r"^kabi_(\w+)$")


def is_stablelist_text(first_line: str) -> bool:
    return _HEADER.match(first_line.strip()) is not None


def _arch_from_section(section: str) -> str:
    # rhel9_x86_64 -> x86_64 ; rhel8_ppc64le -> ppc64le
    parts = section.split("_", 1)
    return normalize_arch(parts[1] if len(parts) == 2 else section)


def parse_stablelist(lines: Iterable[str], source: str, arch: str = "") -> Stablelist:
    """Parse one list file; the arch comes from its header (or the file name)."""
    symbols: set[str] = set()
    name = ""
    header_arch = ""
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _HEADER.match(line)
        if m:
            if name:
                raise KabiError(f"{source}:{lineno}", "second section header in one stablelist")
            name = line[1:-1]
            header_arch = _arch_from_section(m.group(1))
            continue
        if not name:
            raise KabiError(source, "not a kABI stablelist (no [<name>_stablelist] header)")
        problem = symbol_problem(line)
        if problem is not None or any(c.isspace() for c in line):
            raise KabiError(f"{source}:{lineno}", problem or f"not a symbol name: {line!r}")
        symbols.add(sys.intern(line))
    if not name:
        raise KabiError(source, "not a kABI stablelist (no [<name>_stablelist] header)")
    return Stablelist(header_arch or arch, frozenset(symbols), source, name)


def _read_lines(path: str) -> Iterable[str]:
    return text_lines(decode_text(read_content(path, MAX_TEXT_BYTES), path))


def _module_symbols(root: str, files: list[str],
                    skip: Callable[[KabiError], None]) -> frozenset[str]:
    """A ``kabi_<arch>/`` dir's file names, each a symbol; bad names are skipped."""
    symbols = set()
    for fname in files:
        problem = symbol_problem(fname)
        if problem is not None:
            skip(KabiError(os.path.join(root, fname), problem))
        elif not fname.startswith("."):
            symbols.add(sys.intern(fname))
    return frozenset(symbols)


def _raise(problem: KabiError) -> None:
    raise problem


def read_stablelist_dir(path: str, on_skip: Optional[Callable[[KabiError], None]] = None
                        ) -> dict[str, Stablelist]:
    """Every list under a directory: ``kabi_stablelist_<arch>`` files or ``kabi_<arch>/`` dirs.

    When a tree holds several releases (``kabi-rhel90``, ``kabi-rhel91``), the newest one
    in sort order wins, matching the ``kabi-current`` link the package ships.  A list
    that cannot be read (a FIFO, bad bytes …) is passed to ``on_skip`` (default: raised).
    """
    skip = on_skip or _raise
    found: dict[str, Stablelist] = {}
    for root, dirs, files in sorted(os.walk(path, followlinks=False)):
        dirs.sort()
        m = _MODULE_DIR.match(os.path.basename(root))
        if m and not any(_FILE_NAME.match(f) for f in files):
            arch = normalize_arch(m.group(1))
            symbols = _module_symbols(root, sorted(files), skip)
            if symbols:
                found[arch] = Stablelist(arch, symbols, root, f"kabi-module {arch}")
            continue
        for fname in sorted(files):
            fm = _FILE_NAME.match(fname)
            if fm:
                full = os.path.join(root, fname)
                try:
                    lst = parse_stablelist(_read_lines(full), full, normalize_arch(fm.group(1)))
                except KabiError as exc:
                    skip(exc)
                    continue
                found[lst.arch] = lst
    if not found:
        raise KabiError(path, "no kabi_stablelist_<arch> files or kabi_<arch>/ dirs inside")
    return found


def read_stablelist_rpm(path: str) -> dict[str, Stablelist]:
    """The lists inside a ``kernel-abi-stablelists`` RPM's payload (this one we must unpack)."""
    import rpm

    lists: dict[str, Stablelist] = {}
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise KabiError(path, "not a regular file")
        ts = rpm.TransactionSet()
        ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
        fd = rpm.fd.open(path)
        try:
            hdr = ts.hdrFromFdno(fd)
            payload = rpm.fd(fd, "r", flags=hdr["payloadcompressor"] or "gzip")
            files = rpm.files(hdr)
            archive = files.archive(payload)
            for entry in archive:
                fname = os.path.basename(entry.name)
                fm = _FILE_NAME.match(fname)
                if not fm or not archive.hascontent():
                    continue
                source = f"{path}:{entry.name}"
                data = archive.read(MAX_TEXT_BYTES + 1)
                lst = parse_stablelist(text_lines(decode_text(data, source)), source,
                                       normalize_arch(fm.group(1)))
                prev = lists.get(lst.arch)
                if prev is None or prev.source < lst.source:
                    lists[lst.arch] = lst
        finally:
            fd.close()
    except (rpm.error, OSError, ValueError, TypeError, KeyError) as exc:
        raise KabiError(path, f"cannot read the RPM payload ({exc})") from None
    if not lists:
        raise KabiError(path, "no kabi_stablelist_<arch> files in this RPM")
    return lists
