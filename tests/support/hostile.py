"""Hostile inputs for ``koji-kabi``: a corpus of bad bytes, and a runner that judges answers.

Why: the command reads files anyone can craft or break -- a download cut short, a FIFO,
``/dev/zero``, a few KiB of gzip that inflate to gigabytes, escape sequences in a symbol
name.  The contract (issue "every reader: any bytes give a value or one clear error"):

* a **value**: exit 0 or 1 and the right answer (a checked predicate), warnings for
  files skipped inside a directory allowed (``koji-kabi: warning: ...`` lines), or
* a **clear error**: exit 2 and stderr ONE line ``koji-kabi: <file>: <problem>``;

never a traceback, another exit status, a hang, a memory blow-up, a silent wrong answer,
and never a raw terminal control character on stdout or stderr.

:func:`cases` writes the corpus (real RPMs from :mod:`tests.support.rpmfactory`, ELF
``.ko`` files assembled with :mod:`struct`, bombs made in seconds from repeated
compressed blocks) and returns one :class:`Case` per command line; ``write=False``
only names them (pytest needs the ids before the corpus exists).  :func:`run` runs the
real ``koji-kabi`` process under an address-space limit and classifies what it did.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import lzma
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal, Optional

from tests.support import rpmfactory as rf
from tests.support.results import valid

__all__ = [
    "CATEGORIES",
    "CLEAR_ERROR",
    "HANG",
    "KINDS",
    "SKIPPED",
    "TRACEBACK",
    "VALUE",
    "WARNINGS_BEFORE_ERRORS",
    "WRONG",
    "Case",
    "Outcome",
    "Tally",
    "cases",
    "classify",
    "command",
    "ko_bytes",
    "printable",
    "run",
    "run_all",
    "tally",
]

CLEAR_ERROR, VALUE, TRACEBACK, HANG, WRONG, SKIPPED = (
    "clear error", "value", "traceback", "hang", "wrong answer", "skipped")
KINDS = (CLEAR_ERROR, VALUE, TRACEBACK, HANG, WRONG, SKIPPED)
CATEGORIES = ("baseline", "compression", "special", "rpm", "elf", "symvers", "dumps",
              "stablelists", "names", "series", "options")

#: The child's address space: a blow-up shows as MemoryError instead of eating the machine.
ADDRESS_SPACE = 4 << 30
#: Peak RSS a single input may cost; input limits are 256 MiB, so well under this.
DEFAULT_MAX_RSS_MIB = 1024
#: Output read back for judging (a correct answer to these inputs is far smaller).
_MAX_OUTPUT = 64 << 20
_WARNING = "koji-kabi: warning: "
#: Warnings for skipped files may precede an error too (a directory whose every file was
#: skipped ends in "no kernel packages inside"): the error itself must be one line.
#: False holds errors to exactly one stderr line, warnings or not.
WARNINGS_BEFORE_ERRORS = True
#: C0 controls but TAB/LF, DEL, C1 controls, Unicode line separators and bidi overrides.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

Check = Callable[[str], Optional[str]]
"""A value's predicate on stdout: None when right, else what is wrong."""


@dataclass(frozen=True)
class Case:
    """One command line and what the contract says it must give.

    ``expect="error"``: exit 2 with one ``koji-kabi: `` line mentioning every string of
    ``mentions``.  ``expect="value"``: exit ``exit`` (0 or 1, None for either), every
    ``warns`` string in some warning line, and ``check(stdout)`` passing.  ``error_ok``
    marks inputs where a clear error is as right as the value (a bogus but harmless
    input).  ``skip`` says why the case cannot run here (no rpmbuild, no socket ...).
    """

    name: str
    category: str
    argv: list[str]
    expect: Literal["error", "value"]
    exit: Optional[int] = None
    check: Optional[Check] = None
    mentions: tuple[str, ...] = ()
    warns: tuple[str, ...] = ()
    error_ok: bool = False
    stdin: Optional[bytes] = None
    max_rss_mib: int = DEFAULT_MAX_RSS_MIB
    skip: str = ""
    why: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one run did, classified as one of :data:`KINDS`."""

    case: Case
    kind: str
    reason: str = ""
    exit_code: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    rss_mib: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the answer keeps the contract (a mismatch is already ``WRONG``)."""
        return self.kind in (CLEAR_ERROR, VALUE)

    def describe(self) -> str:
        """A failure message: the command, exit status, why, and the (escaped) output."""
        argv = " ".join(shlex.quote(printable(a)) for a in ("koji-kabi", *self.case.argv))
        lines = [f"{self.case.name}: {self.kind}" + (f" - {self.reason}" if self.reason else ""),
                 f"  expected: {self.case.expect}" + (" (or a clear error)"
                                                      if self.case.error_ok else ""),
                 f"  argv: {argv}",
                 f"  exit: {self.exit_code}  {self.seconds:.2f} s  peak RSS "
                 f"{self.rss_mib:.0f} MiB"]
        for name, text in (("stderr", self.stderr), ("stdout", self.stdout)):
            body = text if len(text) <= 3000 else text[:1500] + "\n[...]\n" + text[-1500:]
            lines.append(f"  {name}:")
            lines += [f"    {printable(line)}" for line in body.splitlines()] or ["    (empty)"]
        return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with unsafe characters spelled ``\\xNN``: for our own reports."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)


# ============================================================================ checks


def shows(*needles: str) -> Check:
    """stdout contains every needle."""
    def check(out: str) -> Optional[str]:
        missing = [n for n in needles if n not in out]
        return f"stdout lacks {missing!r}" if missing else None
    return check


def no_line_starts(prefix: str) -> Check:
    """No stdout line starts with ``prefix``: a newline in a name did not forge a line."""
    def check(out: str) -> Optional[str]:
        hit = [ln for ln in out.splitlines() if ln.startswith(prefix)]
        return f"a forged output line: {hit[0]!r}" if hit else None
    return check


def json_check(what: str, predicate: Callable[[Any], bool]) -> Check:
    """stdout is JSON and ``predicate(data)`` holds (``what`` says what it tests)."""
    def check(out: str) -> Optional[str]:
        try:
            data = json.loads(out)
        except ValueError as exc:
            return f"stdout is not JSON ({exc})"
        try:
            return None if predicate(data) else f"JSON: want {what}"
        except (KeyError, IndexError, TypeError, StopIteration, AssertionError) as exc:
            return f"JSON: want {what} ({type(exc).__name__}: {exc})"
    return check


def all_of(*checks: Check) -> Check:
    def check(out: str) -> Optional[str]:
        return next((r for r in (c(out) for c in checks) if r), None)
    return check


def changed_is(symbols: set[str], key: str = "x86_64") -> Check:
    """``delta --json``: the table ``key`` has exactly ``symbols`` CRC-changed."""
    return json_check(f"{key} changed == {sorted(symbols)}", lambda d: {
        c["symbol"] for x in valid(d, "delta")["deltas"] if x["key"] == key
        for c in x["changed"]} == symbols
        and any(x["key"] == key for x in d["deltas"]))


def stable_changed(symbol: str) -> Check:
    """``delta --json --stablelist``: ``symbol`` changed and is on the stablelist."""
    return json_check(f"{symbol} changed and stable", lambda d: any(
        c["symbol"] == symbol and c["stable"] is True
        for x in d["deltas"] for c in x["changed"]))


def verdicts_are(expected: Mapping[str, tuple[int, set[str]]]) -> Check:
    """``check --json``: per kmod label (prefix), (symbols checked, problem symbols)."""
    def pred(data: Any) -> bool:
        got = {v["rpm"]: (v["checked"], {p["symbol"] for p in v["missing"] + v["mismatched"]})
               for v in valid(data, "verdicts")["verdicts"]}
        return len(got) == len(expected) and all(
            any(k.startswith(label) and v == want for k, v in got.items())
            for label, want in expected.items())
    return json_check(f"verdicts {expected}", pred)


def series_kernels(n_reports: int, n_kernels: int) -> Check:
    """``series --json``: ``n_reports`` reports, each over ``n_kernels`` distinct kernels."""
    return json_check(f"{n_reports} report(s) of {n_kernels} distinct kernels", lambda d: (
        len(valid(d, "series")["reports"]) == n_reports
        and all(len(set(r["kernels"])) == n_kernels for r in d["reports"])))


# ============================================================================ the data

#: Kernel symbols: random kernel-looking names plus a few we name in the predicates.
CHANGED = "blk_mq_hostile_changed"
ADDED = "hostile_added_fn"
_BASE = rf.random_symbols(40, seed=41)
OLD_TABLE: dict[str, int] = {**_BASE, CHANGED: 0x1A2B3C4D}
NEW_TABLE: dict[str, int] = {**OLD_TABLE, CHANGED: 0x5E6F7A8B, ADDED: 0x0BADF00D}
_PLAIN = sorted(s for s in OLD_TABLE if s != CHANGED)
#: A kmod that loads on both kernels, and one built against the old CRC of CHANGED.
KMOD_OK: dict[str, int] = {s: NEW_TABLE[s] for s in _PLAIN[:6]}
KMOD_BROKEN: dict[str, int] = {**{s: OLD_TABLE[s] for s in _PLAIN[10:13]},
                               CHANGED: OLD_TABLE[CHANGED]}
STABLE = sorted([CHANGED, *_PLAIN[:4]])
ESC_CSI, ESC_OSC = "\x1b[31m", "\x1b]0;pwned\x07"
_OK_VERDICT = {"hostile_ok": (len(KMOD_OK), set())}
_BROKEN_VERDICT = {"hostile_broken": (len(KMOD_BROKEN), {CHANGED})}


def symvers_text(table: Mapping[str, int], columns: Literal[4, 5] = 5) -> str:
    """``0x%08x<TAB>sym<TAB>module<TAB>EXPORT_SYMBOL[_GPL]<TAB>ns`` lines, as modpost writes."""
    return rf.symvers_text(table, columns=columns)


def dump_text(table: Mapping[str, int], kind: str = "kernel") -> str:
    """``rpm -qp --provides`` (or ``--requires``) text of a table."""
    return "".join(f"{kind}({s}) = 0x{c:08x}\n" for s, c in sorted(table.items()))


def stablelist_text(symbols: Iterable[str], arch: str = "x86_64", naming: str = "stablelist",
                    rhel: int = 9) -> str:
    return f"[rhel{rhel}_{arch}_{naming}]\n" + "".join(f"\t{s}\n" for s in symbols)


def _insert(text: str, line: str, at: int = 2) -> str:
    """``text`` with ``line`` inserted as line ``at + 1`` (so sniffing still sees line 1)."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[:at] + [line if line.endswith("\n") else line + "\n"] + lines[at:])


def _symvers_line(symbol: str, crc: str = "0x00c0ffee", module: str = "vmlinux",
                  export: str = "EXPORT_SYMBOL", namespace: str = "") -> str:
    return "\t".join((crc, symbol, module, export, namespace)) + "\n"


# ============================================================================ ELF .ko

_ET_REL, _SHT_PROGBITS, _SHT_STRTAB, _SHT_NOBITS = 1, 1, 3, 8
_SECTION_NAMES = (b"", b".shstrtab", b"__versions", b".modinfo", b".bss")
#: Section indices of :func:`ko_bytes` files.
SEC_SHSTRTAB, SEC_VERSIONS, SEC_MODINFO, SEC_BSS = 1, 2, 3, 4


def modinfo(name: bytes = b"hostile_ok", vermagic: bytes = b"6.1.0-1-amd64") -> bytes:
    return (b"name=" + name + b"\0vermagic=" + vermagic
            + b" SMP mod_unload modversions \0license=GPL\0")


def versions_bytes(entries: Iterable[tuple[bytes, int]], *, is64: bool = True,
                   little: bool = True) -> bytes:
    """``struct modversion_info`` array: CRC (``unsigned long``) + NUL-padded name, 64 bytes."""
    e = "<" if little else ">"
    crc_fmt = e + ("Q" if is64 else "I")
    size = 64 - struct.calcsize(crc_fmt)
    return b"".join(struct.pack(crc_fmt, crc) + name[:size].ljust(size, b"\0")
                    for name, crc in entries)


def ko_bytes(requires: Mapping[str, int] | Sequence[tuple[bytes, int]] = (), *,
             info: Optional[bytes] = None, versions: Optional[bytes] = None,
             is64: bool = True, little: bool = True, machine: int = 62,
             bss_size: int = 0) -> bytes:
    """A minimal relocatable ELF kernel module, as kofile reads it, built with :mod:`struct`.

    Sections: null, ``.shstrtab``, ``__versions`` (from ``requires`` unless ``versions``
    gives the raw bytes), ``.modinfo`` and a ``SHT_NOBITS`` ``.bss`` of ``bss_size``
    bytes that take no room in the file (its offset is the end of the data, as ld does).
    """
    e = "<" if little else ">"
    entries = [(k.encode(), v) for k, v in requires.items()] if isinstance(requires, Mapping) \
        else list(requires)
    vers = versions if versions is not None else versions_bytes(entries, is64=is64,
                                                                little=little)
    info = modinfo() if info is None else info
    shstrtab = b"\0".join(_SECTION_NAMES) + b"\0"
    name_off = [shstrtab.index(n + b"\0") if n else 0 for n in _SECTION_NAMES]
    ehsize, shentsize = (64, 64) if is64 else (52, 40)
    body = bytearray(ehsize)
    placed = []
    for data, align in ((shstrtab, 1), (vers, 8), (info, 1)):
        body += b"\0" * (-len(body) % align)
        placed.append((len(body), len(data)))
        body += data
    bss_off = len(body)
    body += b"\0" * (-len(body) % 8)
    shoff = len(body)
    shdr = e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    rows = [(0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            (name_off[1], _SHT_STRTAB, 0, 0, *placed[0], 0, 0, 1, 0),
            (name_off[2], _SHT_PROGBITS, 2, 0, *placed[1], 0, 0, 8, 0),
            (name_off[3], _SHT_PROGBITS, 2, 0, *placed[2], 0, 0, 1, 0),
            (name_off[4], _SHT_NOBITS, 3, 0, bss_off, bss_size, 0, 0, 64, 0)]
    for row in rows:
        body += struct.pack(shdr, *row)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1]) + b"\0" * 9
    ehdr = e + ("16sHHIQQQIHHHHHH" if is64 else "16sHHIIIIIHHHHHH")
    body[:ehsize] = struct.pack(ehdr, ident, _ET_REL, machine, 1, 0, 0, shoff, 0, ehsize,
                                0, 0, shentsize, len(rows), SEC_SHSTRTAB)
    return bytes(body)


def _patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


def _shdr_field(data: bytes, index: int, field_offset: int) -> int:
    """File offset of a field of section header ``index`` of a little-endian ELF64."""
    shoff = struct.unpack_from("<Q", data, 40)[0]
    return shoff + 64 * index + field_offset


# ============================================================================ compression


def gzip_member_bomb(path: Path, total: int = 4 << 30, member: int = 16 << 20) -> None:
    """Many gzip members of zeros back to back (``zcat`` reads them all): ~1 KiB/MiB."""
    one = gzip.compress(b"\0" * member, 9, mtime=0)
    with path.open("wb") as f:
        for _ in range(total // member):
            f.write(one)


def gzip_stream_bomb(path: Path, total: int = 1 << 30) -> None:
    """ONE gzip stream of ``total`` zeros, built in seconds.

    Each 1 MiB of zeros ends with a full flush, which resets the compressor, so every
    chunk compresses to the same bytes: compute it once, write it ``total`` MiB times,
    then the final block and the true CRC32 and size trailer.
    """
    chunk = b"\0" * (1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    with path.open("wb") as f:
        f.write(b"\x1f\x8b\x08\0\0\0\0\0\x02\xff")
        for _ in range(total >> 20):
            f.write(block)
            crc = zlib.crc32(chunk, crc)
        f.write(comp.flush(zlib.Z_FINISH))
        f.write(struct.pack("<II", crc, total & 0xFFFFFFFF))


def stream_bomb(compress: Callable[[bytes], bytes], total: int = 4 << 30,
                chunk: int = 16 << 20, content: bytes = b"\0",
                first: bytes = b"") -> Callable[[Path], None]:
    """Concatenated streams (xz, bzip2, gzip), each of ``chunk`` bytes of ``content``.

    ``first`` (a header line, say) is its own stream in front; readers of every format
    read all the streams of a file, as ``zcat``/``xzcat``/``bzcat`` do.
    """
    def write(path: Path) -> None:
        unit = (content * (chunk // len(content) + 1))[:chunk - chunk % len(content)]
        one = compress(unit)
        with path.open("wb") as f:
            if first:
                f.write(compress(first))
            for _ in range(total // len(unit)):
                f.write(one)
    return write


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, 6, mtime=0)


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, preset=0)


def _bz2(data: bytes) -> bytes:
    return bz2.compress(data, 9)


# ============================================================================ RPM layout


@dataclass(frozen=True)
class RpmLayout:
    """Offsets of an RPM's structures, found here without koji-kabi's reader."""

    sig: int  # signature header intro (after the 96-byte lead)
    sig_index: int
    sig_data: int
    sig_end: int
    hdr: int  # main header intro (after the signature's padding)
    hdr_index: int
    hdr_data: int
    hdr_end: int  # where the payload starts
    size: int


def rpm_layout(data: bytes) -> RpmLayout:
    def section(off: int) -> tuple[int, int, int]:
        count, size = struct.unpack_from(">II", data, off + 8)
        return off + 16, off + 16 + 16 * count, off + 16 + 16 * count + size

    sig_index, sig_data, sig_end = section(96)
    hdr = sig_end + (-sig_end % 8)
    hdr_index, hdr_data, hdr_end = section(hdr)
    return RpmLayout(96, sig_index, sig_data, sig_end, hdr, hdr_index, hdr_data, hdr_end,
                     len(data))


def reseal(data: bytes) -> bytes:
    """``data`` with the signature header's digests (SHA1, SHA256, MD5) recomputed.

    A patched header must not fail for its digests when the case tests something else.
    """
    lay = rpm_layout(data)
    buf = bytearray(data)
    header, whole = data[lay.hdr:lay.hdr_end], data[lay.hdr:]
    values = {269: hashlib.sha1(header).hexdigest().encode() + b"\0",
              273: hashlib.sha256(header).hexdigest().encode() + b"\0",
              1004: hashlib.md5(whole).digest()}
    count = (lay.sig_data - lay.sig_index) // 16
    for i in range(count):
        tag, _type, offset, _n = struct.unpack_from(">iiii", data, lay.sig_index + 16 * i)
        if tag in values:
            start = lay.sig_data + offset
            buf[start:start + len(values[tag])] = values[tag]
    return bytes(buf)


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    if len(old) != len(new) or data.count(old) != 1:
        raise ValueError(f"cannot patch {old!r} -> {new!r}")
    return data.replace(old, new)


# ============================================================================ the corpus


class _Corpus:
    """Writes files under ``root`` (or, with ``write=False``, only names them).

    Writers are callables so that naming the cases costs nothing; a writer that fails
    (a socket path too long ...) marks its path, and cases using it are skipped.
    """

    def __init__(self, root: Path, write: bool) -> None:
        self.root, self.write = root, write
        self.failed: dict[str, str] = {}

    def path(self, rel: str) -> str:
        return str(self.root / rel)

    def _do(self, rel: str, action: Callable[[Path], object]) -> str:
        path = self.root / rel
        if self.write:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    path.unlink()  # a corpus written again: FIFOs and sockets too
                action(path)
            except (OSError, ValueError) as exc:
                self.failed[str(path)] = f"could not create {printable(rel)}: {exc}"
        return str(path)

    def file(self, rel: str, data: bytes | str | Callable[[], bytes]) -> str:
        def action(path: Path) -> None:
            value = data() if callable(data) else data
            path.write_bytes(value.encode() if isinstance(value, str) else value)
        return self._do(rel, action)

    def make(self, rel: str, writer: Callable[[Path], object]) -> str:
        return self._do(rel, writer)

    def dir(self, rel: str) -> str:
        return self._do(rel, lambda p: p.mkdir(parents=True, exist_ok=True))

    def fifo(self, rel: str) -> str:
        return self._do(rel, lambda p: os.mkfifo(p))

    def symlink(self, rel: str, target: str) -> str:
        return self._do(rel, lambda p: os.symlink(target, p))

    def socket(self, rel: str) -> str:
        def action(path: Path) -> None:
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(str(path))
        return self._do(rel, action)


class _Add:
    """Collects the cases of one category."""

    def __init__(self, category: str) -> None:
        self.category = category
        self.cases: list[Case] = []

    def __call__(self, name: str, argv: Sequence[str], expect: Literal["error", "value"],
                 **kw: Any) -> None:
        self.cases.append(Case(f"{self.category}/{name}", self.category, list(argv), expect,
                               **kw))

    def error(self, name: str, argv: Sequence[str], *mentions: str, **kw: Any) -> None:
        self(name, argv, "error", mentions=mentions, **kw)

    def value(self, name: str, argv: Sequence[str], exit: Optional[int],
              check: Optional[Check] = None, **kw: Any) -> None:
        self(name, argv, "value", exit=exit, check=check, **kw)


@dataclass(frozen=True)
class _Base:
    """The valid inputs every category starts from."""

    old: str  # symvers-6.1.0-1.x86_64
    new: str  # symvers-6.1.0-2.x86_64
    old_dump: str
    new_dump: str
    stablelist: str
    ko_ok: str
    ko_broken: str
    kmod_dump: str
    kmods: str  # directory: ko_ok + ko_broken


_DELTA_VALUE = shows(CHANGED, "breaking: yes")


def _base(c: _Corpus) -> _Base:
    return _Base(
        old=c.file("base/symvers-6.1.0-1.x86_64", symvers_text(OLD_TABLE)),
        new=c.file("base/symvers-6.1.0-2.x86_64", symvers_text(NEW_TABLE)),
        old_dump=c.file("base/provides-6.1.0-1.x86_64.txt", dump_text(OLD_TABLE)),
        new_dump=c.file("base/provides-6.1.0-2.x86_64.txt", dump_text(NEW_TABLE)),
        stablelist=c.file("base/kabi_stablelist_x86_64", stablelist_text(STABLE)),
        ko_ok=c.file("base/hostile_ok.ko", lambda: ko_bytes(KMOD_OK)),
        ko_broken=c.file("base/kmods/hostile_broken.ko", lambda: ko_bytes(
            KMOD_BROKEN, info=modinfo(b"hostile_broken"))),
        kmod_dump=c.file("base/hostile_ok.x86_64.requires.txt", dump_text(KMOD_OK)),
        kmods=os.path.dirname(c.file("base/kmods/hostile_ok.ko", lambda: ko_bytes(KMOD_OK))),
    )


def _baseline(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("baseline")
    add.value("delta-symvers", ["delta", b.old, b.new], 1, _DELTA_VALUE)
    add.value("delta-symvers-json", ["delta", b.old, b.new, "--json"], 1, changed_is({CHANGED}))
    add.value("delta-same-kernel", ["delta", b.new, b.new], 0, shows("breaking: no"))
    add.value("delta-4-column-symvers", ["delta", c.file(
        "baseline/symvers-6.1.0-1.el8.x86_64", symvers_text(OLD_TABLE, 4)), b.new, "--json"],
        1, changed_is({CHANGED}))
    add.value("delta-dumps", ["delta", b.old_dump, b.new_dump, "--json"], 1,
              changed_is({CHANGED}))
    add.value("delta-stablelist", ["delta", b.old, b.new, "--stablelist", b.stablelist,
                                   "--json"], 1, stable_changed(CHANGED))
    kabi = c.file("baseline/kabi-rhel90/kabi_stablelist_x86_64", stablelist_text(STABLE))
    add.value("delta-stablelist-dir", ["delta", b.old, b.new, "--stablelist",
                                       os.path.dirname(kabi), "--json"], 1,
              stable_changed(CHANGED))
    add.value("check-ko-compatible", ["check", b.ko_ok, "--kernel", b.new], 0,
              shows(": compatible ("))
    add.value("check-ko-json", ["check", b.ko_ok, "--kernel", b.new, "--json"], 0,
              verdicts_are(_OK_VERDICT))
    add.value("check-ko-broken", ["check", b.ko_broken, "--kernel", b.new, "--json"], 1,
              verdicts_are(_BROKEN_VERDICT))
    add.value("check-ko-on-old-kernel", ["check", b.ko_broken, "--kernel", b.old], 0)
    add.value("check-dump-kmod", ["check", b.kmod_dump, "--kernel", b.new], 0,
              shows(": compatible ("))
    add.value("check-kmod-dir", ["check", b.kmods, "--kernel", b.new, "--json"], 1,
              verdicts_are({**_OK_VERDICT, **_BROKEN_VERDICT}))
    add.value("affected", ["affected", b.old, b.new, "--kmods", b.kmods], 1,
              shows("hostile_broken"))
    add.value("series", ["series", b.old, b.new, "--kmods", b.kmods, "--json"], 1,
              series_kernels(1, 2))
    return add.cases


def _compression(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("compression")
    new = symvers_text(NEW_TABLE).encode()
    d = "compression/"
    for ext, comp in ((".gz", _gz), (".xz", _xz), (".bz2", _bz2)):
        add.value(f"valid{ext}", ["delta", b.old, c.file(f"{d}symvers-6.1.0-2.x86_64{ext}",
                                                          lambda f=comp: f(new)), "--json"],
                  1, changed_is({CHANGED}))
    add.value("valid-ko.xz", ["check", c.file(f"{d}hostile_ok.ko.xz",
                                              lambda: _xz(ko_bytes(KMOD_OK))), "--kernel",
                              b.new], 0, shows(": compatible ("))
    add.value("valid-multi-member-gzip", ["delta", b.old, c.file(
        f"{d}multi.x86_64.gz", lambda: _gz(new[:len(new) // 2]) + _gz(new[len(new) // 2:])),
        "--json"], 1, changed_is({CHANGED}), why="zcat reads every member")

    def bad(name: str, data: Callable[[], bytes]) -> None:
        path = c.file(f"{d}{name}.x86_64", data)
        add.error(name, ["delta", b.old, path], os.path.basename(path))

    bad("gzip-corrupt-deflate", lambda: b"\x1f\x8b\x08\0\0\0\0\0\0\xff" + bytes(
        random.Random(1).randrange(256) for _ in range(4096)))
    bad("gzip-header-only", lambda: b"\x1f\x8b\x08\0\0\0\0\0\0\xff")
    bad("gzip-truncated", lambda: _gz(new)[: len(_gz(new)) // 2])
    bad("gzip-bad-crc", lambda: _gz(new)[:-8] + b"\0\0\0\0" + _gz(new)[-4:])
    bad("xz-truncated", lambda: _xz(new)[: len(_xz(new)) // 2])
    bad("xz-corrupt", lambda: _xz(new)[:24] + b"\xff" * 64 + _xz(new)[88:])
    bad("bz2-truncated", lambda: _bz2(new)[: len(_bz2(new)) // 2])
    bad("bz2-corrupt", lambda: _bz2(new)[:10] + b"\0" * 32 + _bz2(new)[42:])
    bad("zstd-magic", lambda: b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    bad("gzip-of-nothing", lambda: _gz(b""))
    bad("gzip-of-binary-junk", lambda: _gz(random.Random(2).randbytes(8192)))
    for name, writer in (
            ("gzip-bomb-4GiB-members", gzip_member_bomb),
            ("gzip-bomb-1GiB-one-stream", gzip_stream_bomb),
            ("xz-bomb-4GiB", stream_bomb(_xz)),
            ("bz2-bomb-4GiB", stream_bomb(_bz2)),
            ("gzip-bomb-1GiB-symvers-lines", stream_bomb(
                _gz, total=1 << 30, content=_symvers_line("same_sym_again").encode()))):
        path = c.make(f"{d}{name}.x86_64.gz", writer)
        add.error(name, ["delta", b.old, path], os.path.basename(path))
    ko_bomb = c.make(f"{d}bomb.ko.xz", stream_bomb(_xz))
    add.error("xz-bomb-as-kmod", ["check", ko_bomb, "--kernel", b.new], "bomb.ko.xz")
    sl_bomb = c.make(f"{d}kabi_stablelist_x86_64.gz", stream_bomb(
        _gz, content=b"\tsame_symbol\n", total=1 << 30,
        first=stablelist_text(STABLE).encode()))
    add.error("gzip-bomb-as-stablelist", ["delta", b.old, b.new, "--stablelist", sl_bomb],
              "kabi_stablelist_x86_64.gz")
    add.value("gzip-in-gzip", ["delta", b.old, c.file(f"{d}double.x86_64.gz",
                                                      lambda: _gz(_gz(new))), "--json"],
              1, changed_is({CHANGED}), error_ok=True,
              why="compressed twice: unpacking both or refusing are both right")
    return add.cases


def _special(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("special")
    d = "special/"
    fifo = c.fifo(f"{d}fifo.x86_64")
    add.error("fifo-as-old-kernel", ["delta", fifo, b.new], "fifo.x86_64")
    add.error("fifo-as-new-kernel", ["delta", b.old, fifo], "fifo.x86_64")
    add.error("fifo-as-kmod", ["check", fifo, "--kernel", b.new], "fifo.x86_64")
    add.error("fifo-as-stablelist", ["delta", b.old, b.new, "--stablelist", fifo],
              "fifo.x86_64")
    add.error("fifo-as-kmods-of-affected", ["affected", b.old, b.new, "--kmods", fifo],
              "fifo.x86_64")

    kdir = os.path.dirname(c.file(f"{d}kernel-dir/symvers-6.1.0-2.x86_64",
                                  symvers_text(NEW_TABLE)))
    c.fifo(f"{d}kernel-dir/a-fifo")
    c.symlink(f"{d}kernel-dir/urandom", "/dev/urandom")
    c.symlink(f"{d}kernel-dir/dangling", "/nonexistent/hostile")
    c.symlink(f"{d}kernel-dir/loop", "loop")
    c.socket(f"{d}kernel-dir/sock")
    add.value("fifo-and-devices-in-kernel-dir", ["delta", b.old, kdir, "--json"], 1,
              changed_is({CHANGED}), warns=("a-fifo", "urandom", "dangling", "loop", "sock"),
              why="inside a directory an unreadable file is skipped with a warning")
    mdir = os.path.dirname(c.file(f"{d}kmod-dir/hostile_ok.ko", lambda: ko_bytes(KMOD_OK)))
    c.fifo(f"{d}kmod-dir/fifo.ko")
    c.symlink(f"{d}kmod-dir/zero.ko", "/dev/zero")
    add.value("fifo-and-dev-zero-in-kmod-dir", ["check", mdir, "--kernel", b.new, "--json"], 0,
              verdicts_are(_OK_VERDICT), warns=("fifo.ko", "zero.ko"))
    add.value("dev-zero-in-kmods-of-series", ["series", b.old, b.new, "--kmods", mdir,
                                              "--json"], 0, series_kernels(1, 2),
              warns=("zero.ko",))
    for dev in ("/dev/zero", "/dev/urandom", "/dev/null"):
        add.error(f"{dev[5:]}-as-kernel", ["delta", dev, b.new], dev)
    add.error("zero-as-kmod", ["check", "/dev/zero", "--kernel", b.new], "/dev/zero")
    add.error("null-as-stablelist", ["delta", b.old, b.new, "--stablelist", "/dev/null"],
              "/dev/null")
    add.error("dev-stdin-not-a-file", ["delta", "/dev/stdin", b.new], "/dev/stdin",
              why="stdin is /dev/null here: a character device")
    add.value("dev-stdin-regular-file", ["delta", "/dev/stdin", b.new, "--arch", "x86_64",
                                         "--json"], 1, changed_is({CHANGED}),
              stdin=symvers_text(OLD_TABLE).encode(),
              why="stdin redirected from a regular file is one")
    sock = c.socket(f"{d}sock.x86_64")
    add.error("socket-as-kernel", ["delta", b.old, sock], "sock.x86_64")
    add.error("proc-file-as-kernel", ["delta", b.old, "/proc/self/status"], "status")
    add.error("nonexistent", ["delta", b.old, c.path(f"{d}no-such-file")], "no-such-file")
    empty = c.dir(f"{d}empty-dir")
    add.error("empty-dir-as-kernel", ["delta", b.old, empty], "empty-dir")
    add.error("empty-dir-as-kmods", ["check", empty, "--kernel", b.new], "empty-dir")
    add.error("empty-dir-as-stablelist", ["delta", b.old, b.new, "--stablelist", empty],
              "empty-dir")
    add.error("dir-as-kabi-file", ["delta", b.old, b.new, "--stablelist",
                                   c.dir(f"{d}kabi_stablelist_x86_64")],
              "kabi_stablelist_x86_64")
    return add.cases


def _elf(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("elf")
    d = "elf/"
    good = ko_bytes(KMOD_OK)

    def ko(name: str, data: Callable[[], bytes]) -> str:
        return c.file(f"{d}{name}.ko", data)

    def bad(name: str, data: Callable[[], bytes], *mentions: str, why: str = "") -> None:
        path = ko(name, data)
        add.error(name, ["check", path, "--kernel", b.new], f"{name}.ko", *mentions, why=why)

    add.value("nobits-bss-100MiB", ["check", ko("bss", lambda: ko_bytes(
        KMOD_BROKEN, info=modinfo(b"hostile_broken"), bss_size=100 << 20)), "--kernel",
        b.new, "--json"], 1, verdicts_are(_BROKEN_VERDICT),
        why="SHT_NOBITS takes no room in the file: its size is not past the end")
    add.value("gzip-ko", ["check", c.file(f"{d}hostile_ok.ko.gz", lambda: _gz(good)),
                          "--kernel", b.new, "--json"], 0, verdicts_are(_OK_VERDICT))
    s390 = c.file(f"{d}symvers-6.1.0-2.s390x", symvers_text(NEW_TABLE))
    add.value("big-endian-s390x", ["check", ko("s390x", lambda: ko_bytes(
        KMOD_OK, little=False, machine=22)), "--kernel", s390, "--json"], 0,
        verdicts_are(_OK_VERDICT))
    i686 = c.file(f"{d}symvers-6.1.0-2.i686", symvers_text(NEW_TABLE))
    add.value("elf32-i686", ["check", ko("i686", lambda: ko_bytes(
        KMOD_OK, is64=False, machine=3)), "--kernel", i686, "--json"], 0,
        verdicts_are(_OK_VERDICT))
    dup_same = [(s.encode(), v) for s, v in KMOD_OK.items()] + [(_PLAIN[0].encode(),
                                                                  KMOD_OK[_PLAIN[0]])]
    add.value("versions-duplicate-same-crc", ["check", ko("dup-same", lambda: ko_bytes(
        dup_same)), "--kernel", b.new, "--json"], 0, verdicts_are(_OK_VERDICT))
    add.value("modinfo-name-with-escapes", ["check", ko("esc-name", lambda: ko_bytes(
        KMOD_OK, info=modinfo(b"evil\x1b]0;pwned\x07\x1b[2J"))), "--kernel", b.new], 0,
        error_ok=True, why="the name is printed escaped, or refused")

    shoff = struct.unpack_from("<Q", good, 40)[0]
    for what, cut in (("in-e_ident", 3), ("in-elf-header", 40), ("in-section-data", 100),
                      ("in-section-headers", shoff + 64 + 20), ("last-section-header",
                                                               len(good) - 10)):
        bad(f"truncated-{what}", lambda n=cut: good[:n],
            why="modprobe (libkmod) refuses a section header table past the end too")
    bad("magic-only", lambda: b"\x7fELF")
    bad("bad-class", lambda: good[:4] + b"\x07" + good[5:])
    bad("bad-data-encoding", lambda: good[:5] + b"\x00" + good[6:])
    bad("e_shoff-past-end", lambda: _patch(good, 40, "<Q", len(good) + 4096))
    bad("e_shoff-huge", lambda: _patch(good, 40, "<Q", 1 << 63))
    bad("e_shnum-65535", lambda: _patch(good, 60, "<H", 0xFFFF))
    bad("e_shnum-zero", lambda: _patch(good, 60, "<H", 0))
    bad("e_shstrndx-out-of-range", lambda: _patch(good, 62, "<H", 0xFFFE))
    bad("e_shentsize-zero", lambda: _patch(good, 58, "<H", 0))
    bad("versions-offset-past-end", lambda: _patch(
        good, _shdr_field(good, SEC_VERSIONS, 24), "<Q", 0xFFFFFFFF))
    bad("versions-size-huge", lambda: _patch(
        good, _shdr_field(good, SEC_VERSIONS, 32), "<Q", (1 << 64) - 64))
    bad("section-name-past-strtab", lambda: _patch(
        good, _shdr_field(good, SEC_VERSIONS, 0), "<I", 0x7FFFFFFF))
    bad("shstrtab-no-nul", lambda: _patch(  # the names run off the end of the table
        good, _shdr_field(good, SEC_SHSTRTAB, 32), "<Q", len(b".shstrtab") + 1 + 4))
    bad("versions-name-without-nul", lambda: ko_bytes(versions=versions_bytes(
        [(b"A" * 56, 0x1234)] + [(s.encode(), v) for s, v in KMOD_OK.items()])),
        why="modversion_info names are NUL-terminated; 56 bytes without one is corrupt")
    bad("versions-partial-entry", lambda: ko_bytes(versions=versions_bytes(
        (s.encode(), v) for s, v in KMOD_OK.items()) + b"\x01" * 40),
        why="a trailing partial entry would be a silently dropped symbol")
    bad("versions-empty", lambda: ko_bytes({}))
    bad("no-versions-section", lambda: _patch(  # rename __versions: shstrtab "__version"
        good, _shdr_field(good, SEC_VERSIONS, 0), "<I",
        b"\0".join(_SECTION_NAMES).index(b"__versions") + 2))
    bad("versions-name-escape", lambda: ko_bytes([(b"evil\x1b]0;pwned\x07", 0x1234),
                                                  *((s.encode(), v)
                                                    for s, v in KMOD_OK.items())]))
    bad("versions-name-not-ascii", lambda: ko_bytes([(b"caf\xc3\xa9\xff", 0x1234),
                                                     *((s.encode(), v)
                                                       for s, v in KMOD_OK.items())]))
    bad("versions-duplicate-different-crc", lambda: ko_bytes(
        [(s.encode(), v) for s, v in KMOD_OK.items()] + [(_PLAIN[0].encode(), 0xDEAD)]),
        _PLAIN[0])
    add.error("executable-as-kmod", ["check", os.path.realpath(sys.executable), "--kernel",
                                     b.new], os.path.basename(os.path.realpath(sys.executable)))
    add.error("ko-as-kernel", ["delta", b.old, b.ko_ok], "hostile_ok.ko")
    return add.cases


def _symvers(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("symvers")
    d = "symvers/"
    new = symvers_text(NEW_TABLE)

    def path(name: str, data: bytes | str | Callable[[], bytes]) -> str:
        return c.file(f"{d}{name}.x86_64.symvers", data)

    def bad(name: str, data: bytes | str | Callable[[], bytes], *mentions: str,
            why: str = "") -> None:
        add.error(name, ["delta", b.old, path(name, data)], f"{name}.x86_64.symvers",
                  *mentions, why=why)

    for name, crc in (("crc-negative", "-0x2"), ("crc-33-bits", "0x100000000"),
                      ("crc-underscore", "0x1_2"), ("crc-plus", "+0x12"),
                      ("crc-leading-space", " 0x12"), ("crc-empty", ""),
                      ("crc-no-0x", "1234abcd"), ("crc-0x-only", "0x"),
                      ("crc-unicode-digits", "0x\u0661\u0662")):
        bad(name, _insert(new, _symvers_line("hostile_crc_sym", crc)))
    bad("duplicate-different-crc", _insert(new, _symvers_line(_PLAIN[0], "0xdeadbeef")),
        _PLAIN[0])
    add.value("duplicate-same-crc", ["delta", b.old, path("duplicate-same-crc", _insert(
        new, _symvers_line(_PLAIN[0], f"0x{NEW_TABLE[_PLAIN[0]]:08x}"))), "--json"], 1,
        changed_is({CHANGED}))
    bad("non-utf8-symbol", _insert(new, "").encode().replace(
        b"\n\n", b"\n" + _symvers_line("bad\xff").encode("latin-1"), 1))
    bad("nul-in-symbol-early", _insert(new, _symvers_line("nul\0sym")))
    bad("nul-in-symbol-late", new + "".join(_symvers_line(f"pad_sym_{i}") for i in range(200))
        + _symvers_line("nul\0sym"))
    for name, sym in (("ansi-csi-in-symbol", f"evil{ESC_CSI}red"),
                      ("osc-title-in-symbol", f"evil{ESC_OSC}"),
                      ("c1-csi-in-symbol", "evil\u009b2J"), ("del-in-symbol", "evil\x7f"),
                      ("bidi-override-in-symbol", "evil\u202egnp"),
                      ("line-separator-in-symbol", "evil\u2028forged"),
                      ("space-in-symbol", "two words"), ("cr-in-symbol", "evil\rforged")):
        bad(name, _insert(new, _symvers_line(sym)))
    bad("escape-in-module", _insert(new, _symvers_line("fine_sym", module=f"m{ESC_OSC}")))
    bad("escape-in-namespace", _insert(new, _symvers_line("fine_sym", namespace=ESC_CSI)))
    bad("three-fields", _insert(new, "0x00000001\tsym\tvmlinux\n"))
    bad("six-fields", _insert(new, "0x00000001\tsym\tvmlinux\tEXPORT_SYMBOL\tNS\textra\n"))
    add.value("non-ascii-printable-symbol", ["delta", b.old, path("cafe", _insert(
        new, _symvers_line("caf\u00e9_init"))), "--json"], 1, changed_is({CHANGED}),
        error_ok=True, why="not a C identifier, but printable: refusing it is right too")
    add.value("crlf-line-endings", ["delta", b.old, path("crlf", new.replace("\n", "\r\n")),
                                    "--json"], 1, changed_is({CHANGED}))
    bad("cr-only-line-endings", new.replace("\n", "\r"))
    add.value("utf8-bom", ["delta", b.old, path("bom", "\ufeff" + new), "--json"], 1,
              changed_is({CHANGED}), error_ok=True)
    add.value("10MB-symbol-name", ["delta", b.old, path("long-line", lambda: _insert(
        new, _symvers_line("x" * (10 << 20))).encode()), "--summary"], 1, error_ok=True,
        max_rss_mib=512, why="bounded either way")
    big = {f"sym_{i:06d}": (i * 2654435761) & 0xFFFFFFFF or 1 for i in range(300_000)}
    add.value("300k-symbols", ["delta", b.old, c.file(f"{d}big.x86_64.symvers.gz", lambda: _gz(
        symvers_text(big).encode())), "--summary"], 1, shows("breaking: yes"),
        why="an oversized but well-formed table is a value, in bounded memory")
    add.error("5M-short-lines", ["delta", b.old, c.make(
        f"{d}five-million.x86_64.symvers.gz", stream_bomb(
            _gz, total=5_000_000 * len(_symvers_line("s")), chunk=1 << 20,
            content=_symvers_line("s").encode()))], "five-million.x86_64.symvers.gz",
        why="150 MB of text: over the text limit")
    bad("33MiB-of-junk", lambda: (new.splitlines(keepends=True)[0]
                                  + "junk junk junk junk\n" * ((33 << 20) // 20 + 1)).encode())
    bad("binary-junk", lambda: random.Random(3).randbytes(65536))
    bad("empty", b"")
    bad("blank-lines-only", "\n" * 1000)
    bad("whitespace-only", " \t \n\t\n   \n")
    return add.cases


def _dumps(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("dumps")
    d = "dumps/"
    new = dump_text(NEW_TABLE)

    def path(name: str, data: bytes | str) -> str:
        return c.file(f"{d}{name}.x86_64.txt", data)

    def bad(name: str, data: bytes | str, *mentions: str) -> None:
        add.error(name, ["delta", b.old_dump, path(name, data)], f"{name}.x86_64.txt",
                  *mentions, why="a kernel(sym) line that is not a valid symbol with a "
                  "32-bit 0x CRC: ignoring it would drop the symbol silently")

    for name, crc in (("crc-0x-minus", "0x-2"), ("crc-negative", "-0x2"),
                      ("crc-33-bits", "0x1ffffffff"), ("crc-underscore", "0x1_2"),
                      ("crc-plus", "+0x12"), ("crc-0x-only", "0x"),
                      ("crc-unicode-digits", "0x\u0661\u0662")):
        bad(name, _insert(new, f"kernel(hostile_sym) = {crc}"))
    bad("crc-missing", _insert(new, "kernel(hostile_sym) ="))
    bad("duplicate-different-crc", _insert(new, f"kernel({_PLAIN[0]}) = 0xdeadbeef"),
        _PLAIN[0])
    add.value("duplicate-same-crc", ["delta", b.old_dump, path("duplicate-same-crc", _insert(
        new, f"kernel({_PLAIN[0]}) = 0x{NEW_TABLE[_PLAIN[0]]:08x}")), "--json"], 1,
        changed_is({CHANGED}))
    add.value("crlf-line-endings", ["delta", b.old_dump, path("crlf", new.replace(
        "\n", "\r\n")), "--json"], 1, changed_is({CHANGED}))
    bad("non-utf8-symbol", _insert(new, "").encode().replace(
        b"\n\n", b"\nkernel(bad\xff) = 0x00000001\n", 1))
    bad("nul-in-symbol", _insert(new, "kernel(nul\0sym) = 0x00000001"))
    bad("ansi-csi-in-symbol", _insert(new, f"kernel(evil{ESC_CSI}) = 0x00000001"))
    bad("osc-title-in-symbol", _insert(new, f"kernel(evil{ESC_OSC}) = 0x00000001"))
    bad("unbalanced-parens", _insert(new, "kernel(evil = 0x00000001"))
    bad("no-kernel-lines", "bash = 5.1\nglibc >= 2.34\n")
    kmod_dup = c.file(f"{d}kmod-dup.x86_64.requires.txt", _insert(
        dump_text(KMOD_OK), f"kernel({_PLAIN[0]}) = 0xdeadbeef"))
    add.error("kmod-requires-duplicate-different-crc", ["check", kmod_dup, "--kernel", b.new],
              "kmod-dup.x86_64.requires.txt", _PLAIN[0])
    kmod_esc = c.file(f"{d}kmod-esc.x86_64.requires.txt", _insert(
        dump_text(KMOD_OK), f"kernel(evil{ESC_OSC}) = 0x00000001"))
    add.error("kmod-requires-escape", ["check", kmod_esc, "--kernel", b.new],
              "kmod-esc.x86_64.requires.txt")
    return add.cases


def _stablelists(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("stablelists")
    d = "stablelists/"
    good = stablelist_text(STABLE)

    def bad(name: str, data: bytes | str, *mentions: str) -> None:
        path = c.file(f"{d}{name}/kabi_stablelist_x86_64", data)
        add.error(name, ["delta", b.old, b.new, "--stablelist", path], name, *mentions)

    add.value("whitelist-naming", ["delta", b.old, b.new, "--stablelist", c.file(
        f"{d}el8/kabi_whitelist_x86_64", stablelist_text(STABLE, naming="whitelist", rhel=8)),
        "--json"], 1, stable_changed(CHANGED))
    add.value("crlf", ["delta", b.old, b.new, "--stablelist", c.file(
        f"{d}crlf/kabi_stablelist_x86_64", good.replace("\n", "\r\n")), "--json"], 1,
        stable_changed(CHANGED))
    bad("non-utf8", good.encode() + b"\tbad\xff\n")
    bad("nul", good + "\tnul\0sym\n")
    bad("ansi-escape", good + f"\tevil{ESC_CSI}\n")
    bad("osc-escape", good + f"\tevil{ESC_OSC}\n")
    bad("junk-header", "[not a header\n\tsym\n")
    bad("no-header", "".join(f"\t{s}\n" for s in STABLE))
    bad("two-headers", good + stablelist_text(["x"], "aarch64"))
    bad("empty", b"")
    bad("binary-junk", random.Random(4).randbytes(4096))
    kabi = os.path.dirname(c.file(f"{d}kabi-rhel90/kabi_stablelist_x86_64", good))
    c.fifo(f"{d}kabi-rhel90/kabi_stablelist_aarch64")
    c.symlink(f"{d}kabi-rhel90/kabi_stablelist_s390x", "/dev/zero")
    add.value("fifo-and-dev-zero-in-kabi-dir", ["delta", b.old, b.new, "--stablelist", kabi,
                                                "--json"], 1, stable_changed(CHANGED),
              warns=("kabi_stablelist_aarch64", "kabi_stablelist_s390x"),
              why="inside a directory an unreadable list is skipped with a warning")
    bad_in_dir = os.path.dirname(c.file(f"{d}kabi-rhel91/kabi_stablelist_x86_64",
                                        good + f"\tevil{ESC_OSC}\n"))
    add.error("escape-in-kabi-dir-list", ["delta", b.old, b.new, "--stablelist", bad_in_dir],
              "kabi-rhel91", error_ok=False)
    module_dir = os.path.dirname(c.file(f"{d}kabi-module/kabi_x86_64/{CHANGED}",
                                        _symvers_line(CHANGED, "0x5e6f7a8b")))
    c.file(f"{d}kabi-module/kabi_x86_64/evil{ESC_OSC}", _symvers_line("evil"))
    add.value("escape-named-file-in-kabi-module-dir", [
        "delta", b.old, b.new, "--stablelist", os.path.dirname(module_dir), "--json"], 1,
        stable_changed(CHANGED), error_ok=True,
        why="a file name that is no symbol: skipped, or the tree refused")
    return add.cases


def _names(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("names")
    d = "names/"
    new = symvers_text(NEW_TABLE)
    for name, label in (("newline", "bad\nkoji-kabi: forged line"), ("ansi-csi", ESC_CSI),
                        ("osc-title", ESC_OSC), ("c1-csi", "\u009b2J")):
        empty = c.file(f"{d}{name}/empty{label}.x86_64", b"")
        add.error(f"{name}-in-bad-file-name", ["delta", b.old, empty], "empty",
                  why="the error stays one line, escaped")
        valid = c.file(f"{d}{name}/symvers-6.1.0-2{label}.x86_64", new)
        add.value(f"{name}-in-good-file-name", ["delta", b.old, valid], 1,
                  all_of(_DELTA_VALUE, no_line_starts("koji-kabi: forged")),
                  why="the label comes from the name: printed escaped")
    raw = os.fsdecode(b"symvers-6.1.0-2\x9b2J\xff.x86_64")  # 0x9b: 8-bit CSI
    add.value("non-utf8-good-file-name", ["delta", b.old, c.file(f"{d}{raw}", new)], 1,
              _DELTA_VALUE)
    add.error("non-utf8-bad-file-name", ["delta", b.old, c.file(
        d + os.fsdecode(b"empty\xff.x86_64"), b"")], "empty")
    add.error("dash-file-name", ["delta", b.old, "-evil.x86_64"],
              why="argparse takes it for an option: still one line")
    return add.cases


def _series(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("series")
    d = "series/"
    old, new = symvers_text(OLD_TABLE), symvers_text(NEW_TABLE)
    a = c.file(f"{d}a/linux/Module.symvers", old)
    bb = c.file(f"{d}b/linux/Module.symvers", new)
    add.value("same-label-two-dirs", ["series", a, bb, "--json"], 0, series_kernels(1, 2),
              why="a/linux and b/linux are two kernels, not one 'linux'")
    add.value("same-label-delta", ["delta", a, bb], 1, _DELTA_VALUE)
    add.value("same-label-three-kernels", ["series", a, bb, c.file(
        f"{d}c/linux/Module.symvers", old), "--json"], 0, series_kernels(1, 3))
    for tag, text in (("x", old), ("y", new)):
        c.file(f"{d}{tag}/linux-x86_64.symvers", text)
        c.file(f"{d}{tag}/linux-aarch64.symvers", text)
    add.value("same-label-multi-arch-dirs", ["series", c.path(f"{d}x"), c.path(f"{d}y"),
                                             "--json"], 0, series_kernels(2, 2),
              why="each dir is one two-arch kernel 'linux'; the two dirs are two kernels")
    add.error("arches-in-common-none", ["delta", c.path(f"{d}x/linux-x86_64.symvers"),
                                        c.path(f"{d}y/linux-aarch64.symvers")],
              why="tables of different arches are never compared")
    add.error("one-kernel", ["series", b.new], why="a series needs two kernels")
    add.value("same-file-twice", ["series", b.new, b.new, "--json"], 0, series_kernels(1, 2),
              error_ok=True, why="two identical steps, or refused as one kernel")
    add.value("symbol-history-escaped", ["series", b.old, b.new, "--symbol",
                                         f"evil{ESC_OSC}", "--symbol", CHANGED], 0,
              shows(CHANGED), error_ok=True,
              why="the asked-for name is printed escaped (or refused)")
    add.error("nosuch-kernel-in-series", ["series", b.old, b.new, c.path(f"{d}nope")], "nope")
    return add.cases


def _options(c: _Corpus, b: _Base) -> list[Case]:
    add = _Add("options")
    unknown = c.file("options/linux/Module.symvers", symvers_text(NEW_TABLE))
    add.error("arch-nosucharch", ["delta", b.old, b.new, "--arch", "nosucharch"], "nosucharch")
    add.error("arch-nosucharch-unnamed-files", ["delta", unknown, unknown, "--arch",
                                                "nosucharch"], "nosucharch",
              why="no file says its arch, but nosucharch is no arch")
    add.error("arch-not-in-inputs", ["delta", b.old, b.new, "--arch", "aarch64"], "aarch64")
    add.error("arch-empty", ["delta", b.old, b.new, "--arch", ""], "--arch")
    add.error("arch-escape", ["delta", b.old, b.new, "--arch", f"x{ESC_OSC}"], "--arch")
    add.value("arch-alias-amd64", ["delta", b.old, b.new, "--arch", "amd64", "--json"], 1,
              changed_is({CHANGED}))
    add.value("arch-names-unnamed-file", ["delta", unknown, b.new, "--arch", "x86_64",
                                          "--json"], 0, changed_is(set()))
    add.error("unnamed-vs-named-arch", ["delta", b.old, unknown],
              why="unknown arch vs x86_64: nothing to compare")
    for top in ("-5", "abc", ""):
        add.error(f"top-{top or 'empty'}", ["series", b.old, b.new, "--top", top], "--top")
    add.value("top-0", ["series", b.old, b.new, "--kmods", b.kmods, "--top", "0"], 1,
              error_ok=True, why="no most-consumed list, or refused")
    add.error("unknown-option", ["delta", b.old, b.new, "--frobnicate"], "--frobnicate")
    add.error("unknown-command", ["frobnicate"], "frobnicate")
    add.error("no-command", [])
    add.error("check-without-kernel", ["check", b.ko_ok], "--kernel")
    add.error("delta-one-argument", ["delta", b.old])
    add.error("affected-without-kmods", ["affected", b.old, b.new], "--kmods")
    add.error("kmods-nonexistent", ["affected", b.old, b.new, "--kmods",
                                    c.path("options/nope")], "nope")
    add.value("version", ["--version"], 0, shows("koji-kabi"))
    add.value("help", ["delta", "--help"], 0, shows("usage"))
    add.value("stablelist-twice", ["delta", b.old, b.new, "--stablelist", b.stablelist,
                                   "--stablelist", b.stablelist, "--json"], 1,
              stable_changed(CHANGED))
    return add.cases


# ---------------------------------------------------------------------------- RPM cases


@dataclass(frozen=True)
class _Rpms:
    core1: str
    core2: str
    srpm1: str
    k1: str  # build dirs
    k2: str
    kmod_ok: str
    kmod_broken: str
    stablelists: str
    plain: str


def _rpm_builds() -> dict[str, list[rf.Build]]:
    tables = {"x86_64": OLD_TABLE}, {"x86_64": NEW_TABLE}
    return {
        "k1": [rf.kernel_build("kernel", "5.14.0", "1.el9", ("x86_64",), tables[0],
                               split=("core", "modules"))],
        "k2": [rf.kernel_build("kernel", "5.14.0", "2.el9", ("x86_64",), tables[1],
                               split=("core", "modules"))],
        "kmods": [rf.kmod_build("kmod-hostile-ok", "1.0", "1.el9", "x86_64", KMOD_OK),
                  rf.kmod_build("kmod-hostile-broken", "1.0", "1.el9", "x86_64",
                                KMOD_BROKEN)],
        "misc": [rf.stablelist_build("5.14.0", "2.el9", {"x86_64": STABLE}),
                 rf.plain_build("hostile-plain")],
    }


def _build_rpms(c: _Corpus, cache_dir: Optional[Path]) -> tuple[_Rpms, str]:
    """Build (or only name) the RPMs; the second value says why they are missing."""
    builds = _rpm_builds()
    srpm = {"k1": True, "k2": True}
    why = ""
    if c.write and shutil.which("rpmbuild") is None:
        why = "rpmbuild is not installed (scripts/bootstrap.sh --test installs it)"
    paths: dict[str, list[str]] = {}
    for group, lst in builds.items():
        out = c.root / "rpm" / group
        if c.write and not why:
            try:
                rf.build_rpms(lst, out, srpm=srpm.get(group, False), jobs=2,
                              cache_dir=cache_dir or c.root / ".rpmcache")
            except (rf.ToolMissing, rf.RpmBuildError) as exc:
                why = f"cannot build the fixture RPMs: {str(exc).splitlines()[0]}"
        paths[group] = [str(out / n) for bld in lst
                        for n in rf.expected_rpm_names(bld, srpm=srpm.get(group, False))]

    def pick(group: str, prefix: str) -> str:
        return next(p for p in paths[group] if os.path.basename(p).startswith(prefix))

    return _Rpms(
        core1=pick("k1", "kernel-core-"), core2=pick("k2", "kernel-core-"),
        srpm1=pick("k1", "kernel-5.14.0"), k1=str(c.root / "rpm" / "k1"),
        k2=str(c.root / "rpm" / "k2"), kmod_ok=pick("kmods", "kmod-hostile-ok"),
        kmod_broken=pick("kmods", "kmod-hostile-broken"),
        stablelists=pick("misc", "kernel-abi-stablelists"), plain=pick("misc", "hostile-plain"),
    ), why


def _rpm(c: _Corpus, b: _Base, r: _Rpms) -> list[Case]:
    add = _Add("rpm")
    d = "rpm/hostile/"
    core2 = Path(r.core2)

    def data() -> bytes:
        return core2.read_bytes()

    def lay() -> RpmLayout:
        return rpm_layout(data())

    add.value("delta-core-rpms", ["delta", r.core1, r.core2, "--json"], 1,
              changed_is({CHANGED}))
    add.value("delta-build-dirs", ["delta", r.k1, r.k2, "--stablelist", r.stablelists,
                                   "--json"], 1, stable_changed(CHANGED))
    add.value("check-kmod-rpms", ["check", r.kmod_ok, r.kmod_broken, "--kernel", r.k2,
                                  "--json"], 1, verdicts_are({
                                      "kmod-hostile-ok": (len(KMOD_OK), set()),
                                      "kmod-hostile-broken": (len(KMOD_BROKEN), {CHANGED})}))
    both = c.make(f"{d}both-builds", lambda p: (p.mkdir(exist_ok=True), shutil.copy(
        r.core1, p), shutil.copy(r.core2, p)))
    add.value("series-dir-of-two-builds", ["series", both, "--json"], 0, series_kernels(1, 2))
    add.value("truncated-in-payload", ["delta", r.core1, c.file(
        f"{d}payload-cut.rpm", lambda: data()[: lay().hdr_end + 100]), "--json"], 1,
        changed_is({CHANGED}), why="the header is whole; koji-kabi reads nothing else")

    cuts: list[tuple[str, Callable[[RpmLayout], int]]] = [
        ("magic", lambda la: 4), ("lead", lambda la: 50),
        ("sig-intro", lambda la: la.sig + 8),
        ("sig-index", lambda la: la.sig_index + 20),
        ("sig-data", lambda la: (la.sig_data + la.sig_end) // 2),
        ("sig-padding", lambda la: la.sig_end + (la.hdr - la.sig_end) // 2 if
         la.hdr > la.sig_end else la.sig_end),
        ("hdr-intro", lambda la: la.hdr + 8), ("hdr-index", lambda la: la.hdr_index + 40),
        ("hdr-data", lambda la: (la.hdr_data + la.hdr_end) // 2),
        ("hdr-last-byte", lambda la: la.hdr_end - 1)]
    for name, at in cuts:
        path = c.file(f"{d}cut-{name}.rpm", lambda at=at: data()[: at(lay())])
        add.error(f"truncated-{name}", ["delta", r.core1, path], f"cut-{name}.rpm")

    def patched(name: str, make: Callable[[bytes, RpmLayout], bytes], why: str = "") -> None:
        path = c.file(f"{d}{name}.rpm", lambda: make(data(), lay()))
        add.error(name, ["delta", r.core1, path], f"{name}.rpm", why=why)

    def over(buf: bytes, at: int, junk: bytes) -> bytes:
        return buf[:at] + junk + buf[at + len(junk):]

    patched("sig-magic-junk", lambda x, la: over(x, la.sig, b"JUNK"))
    patched("hdr-magic-junk", lambda x, la: over(x, la.hdr, b"JUNK"))
    patched("hdr-index-random", lambda x, la: over(x, la.hdr_index, random.Random(5).randbytes(
        la.hdr_data - la.hdr_index)))
    patched("hdr-entry-offset-past-data", lambda x, la: _patch(x, la.hdr_index + 16 + 8,
                                                               ">i", 0x7FFFFFF0))
    patched("hdr-entry-count-huge", lambda x, la: _patch(x, la.hdr_index + 16 + 12, ">i",
                                                         0x7FFFFFF0))
    patched("hdr-data-random", lambda x, la: over(x, la.hdr_data, random.Random(6).randbytes(
        la.hdr_end - la.hdr_data)))
    patched("hdr-bitflip-in-crc", lambda x, la: _replace_once(
        x, f"0x{NEW_TABLE[CHANGED]:08x}".encode(), f"0x{NEW_TABLE[CHANGED] ^ 1:08x}".encode()),
        why="a changed CRC in the header must not be read as the truth: the header "
            "digests of the signature header say it is corrupt, as rpm -K does")
    patched("hdr-bitflip-in-name", lambda x, la: _replace_once(
        x, f"({CHANGED})".encode(), f"({CHANGED[:-1]}X)".encode()),
        why="a renamed symbol read as the truth is a silent wrong answer: the header "
            "digests say the header is corrupt")
    patched("sig-count-0x0FFFFFFF", lambda x, la: _patch(x[: la.sig + 64], la.sig + 8, ">I",
                                                         0x0FFFFFFF))
    patched("sig-size-0xFFFFFFFF", lambda x, la: _patch(x[: la.sig + 64], la.sig + 12, ">I",
                                                        0xFFFFFFFF))
    patched("hdr-count-0x0FFFFFFF", lambda x, la: _patch(x[: la.hdr + 64], la.hdr + 8, ">I",
                                                         0x0FFFFFFF))
    patched("hdr-claims-200MiB", lambda x, la: _patch(x[: la.hdr + 4096], la.hdr + 12, ">I",
                                                      200 << 20),
            why="refused at once from the file's size, not read into a 200 MiB buffer")
    add.error("rpm-magic-then-junk", ["delta", r.core1, c.file(
        f"{d}magic-junk.rpm", lambda: b"\xed\xab\xee\xdb" + random.Random(7).randbytes(300))],
        "magic-junk.rpm")
    add.error("rpm-magic-only", ["delta", r.core1, c.file(f"{d}magic-only.rpm",
                                                          b"\xed\xab\xee\xdb")],
              "magic-only.rpm")
    add.error("srpm-as-kernel", ["delta", r.core1, r.srpm1], os.path.basename(r.srpm1))
    add.error("kmod-rpm-as-kernel", ["delta", r.core1, r.kmod_ok],
              os.path.basename(r.kmod_ok))
    add.error("kernel-rpm-as-kmod", ["check", r.core2, "--kernel", r.core2],
              os.path.basename(r.core2))
    add.error("kernel-rpm-as-stablelist", ["delta", r.core1, r.core2, "--stablelist",
                                           r.core2], os.path.basename(r.core2))

    def lists_payload(keep: int, junk: bool = False) -> Callable[[], bytes]:
        """The stablelists RPM, its header whole, ``keep`` payload bytes (then junk)."""
        def make() -> bytes:
            whole = Path(r.stablelists).read_bytes()
            end = rpm_layout(whole).hdr_end
            tail = random.Random(8).randbytes(len(whole) - end) if junk else \
                whole[end:end + keep]
            return whole[:end] + tail
        return make

    for name, make in (("stablelists-payload-truncated", lists_payload(40)),
                       ("stablelists-payload-missing", lists_payload(0)),
                       ("stablelists-payload-junk", lists_payload(0, junk=True))):
        path = c.file(f"{d}{name}.rpm", make)
        add.error(name, ["delta", r.core1, r.core2, "--stablelist", path], f"{name}.rpm",
                  why="the one RPM whose payload is read: a broken one is an error")

    # SOURCERPM without dashes: the header patched in place, digests recomputed.
    def no_dashes(src: str, release: str) -> Callable[[], bytes]:
        srpm = f"kernel-5.14.0-{release}.src.rpm".encode()
        return lambda: reseal(_replace_once(Path(src).read_bytes(), srpm + b"\0",
                                            srpm.replace(b"-", b"_") + b"\0"))

    nd1 = c.file(f"{d}nodash/kernel-core-1.x86_64.rpm", no_dashes(r.core1, "1.el9"))
    nd2 = c.file(f"{d}nodash/kernel-core-2.x86_64.rpm", no_dashes(r.core2, "2.el9"))
    add.error("sourcerpm-without-dashes", ["delta", nd1, nd2], "kernel-core-1.x86_64.rpm",
              why="the build's N-V-R comes from SOURCERPM; without one, no kernel to name")
    add.error("sourcerpm-without-dashes-in-dir", ["series", os.path.dirname(nd1)], "nodash",
              why="two kernel RPMs whose build cannot be named: one clear error")
    add.value("sourcerpm-resealed-baseline", ["delta", r.core1, c.file(
        f"{d}resealed/kernel-core-5.14.0-2.el9.x86_64.rpm", lambda: reseal(data())),
        "--json"], 1, changed_is({CHANGED}), why="reseal() alone changes nothing")
    return add.cases


# ---------------------------------------------------------------------------- cases()


def cases(root: Path, *, write: bool = True, cache_dir: Optional[Path] = None) -> list[Case]:
    """Write the hostile corpus under ``root`` and return its cases, baselines first.

    ``write=False`` writes nothing and builds nothing: the same cases (names, argv) for
    pytest to collect.  RPM cases are skipped, with the reason, without rpmbuild.
    """
    c = _Corpus(Path(root), write)
    b = _base(c)
    out: list[Case] = []
    for maker in (_baseline, _compression, _special, _elf, _symvers, _dumps, _stablelists,
                  _names, _series, _options):
        out += maker(c, b)
    rpms, why = _build_rpms(c, cache_dir)
    rpm_corpus = c if not why else _Corpus(c.root, False)
    rpm_cases = _rpm(rpm_corpus, b, rpms)
    out += [replace(case, skip=why) for case in rpm_cases] if why else rpm_cases
    names = [case.name for case in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate case names: {sorted(dup)}")
    return [_skip_if_failed(case, c.failed) for case in out]


def _skip_if_failed(case: Case, failed: Mapping[str, str]) -> Case:
    for path, why in failed.items():
        if any(a == path or path.startswith(a.rstrip("/") + "/") for a in case.argv if a):
            return replace(case, skip=why)
    return case


# ============================================================================ the runner

_SPAWN = threading.Lock()  # one fork at a time: preexec_fn must not race our own threads


def command() -> list[str]:
    """How to start ``koji-kabi``: the venv's console script, else ``python -m``."""
    script = Path(sys.executable).with_name("koji-kabi")
    return [str(script)] if script.exists() else [sys.executable, "-m", "koji_kabi.cli"]


def _limit_memory() -> None:
    """In the child before exec: a blow-up raises MemoryError; a crash leaves no core."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _unsafe(text: str) -> Optional[str]:
    m = _UNSAFE.search(text)
    if m:
        return f"{m.group()!r} at offset {m.start()}"
    bad = next((ch for ch in text if "\udc80" <= ch <= "\udcff"), None)
    return f"undecodable byte {ord(bad) - 0xDC00:#04x}" if bad else None


@contextlib.contextmanager
def _stdin(data: Optional[bytes]) -> Iterator[int | BinaryIO]:
    if data is None:
        yield subprocess.DEVNULL
        return
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        yield f


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float, bool]:
    """(wait status, peak RSS in MiB, timed out) via ``os.wait4``; kills the group on time-out."""
    deadline = time.monotonic() + timeout
    pause = 0.002
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return status, usage.ru_maxrss / 1024, timed_out


def _read(f: BinaryIO) -> str:
    f.seek(0)
    return f.read(_MAX_OUTPUT).decode("utf-8", "surrogateescape")


def run(case: Case, timeout: float = 30,
        program: Optional[Sequence[str]] = None) -> Outcome:
    """Run ``koji-kabi`` on the case, the whole process, and classify what it did.

    ``program`` replaces the command (the runner's own tests start a sleeper, a hog ...).
    """
    if case.skip:
        return Outcome(case, SKIPPED, case.skip)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            _stdin(case.stdin) as stdin:
        started = time.monotonic()
        with _SPAWN:
            proc = subprocess.Popen([*(program or command()), *case.argv], stdin=stdin, stdout=out,
                                    stderr=err, preexec_fn=_limit_memory,
                                    start_new_session=True, close_fds=True)
        _status, rss, timed_out = _wait(proc, timeout)
        seconds = time.monotonic() - started
        stdout, stderr = _read(out), _read(err)
    code = proc.returncode
    kind, reason = classify(case, code, stdout, stderr, timed_out, rss, timeout)
    return Outcome(case, kind, reason, code, stdout, stderr, seconds, rss)


def classify(case: Case, code: int, stdout: str, stderr: str, timed_out: bool,
             rss_mib: float, timeout: float = 30) -> tuple[str, str]:
    """(kind, reason) of one run against its case's expectation."""
    if timed_out:
        return HANG, f"no answer in {timeout:g} s (killed)"
    if code < 0:
        return TRACEBACK, f"killed by signal {-code} ({signal.Signals(-code).name})"
    if "Traceback" in stderr or code not in (0, 1, 2):
        last = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), "")
        return TRACEBACK, f"exit {code}: {printable(last)[:300]}"
    unsafe = _unsafe(stdout) or _unsafe(stderr)
    if unsafe:
        where = "stdout" if _unsafe(stdout) else "stderr"
        return WRONG, f"unescaped output on {where}: {unsafe}"
    if rss_mib > case.max_rss_mib:
        return WRONG, f"memory blow-up: peak RSS {rss_mib:.0f} MiB > {case.max_rss_mib} MiB"
    lines = stderr.splitlines()
    warnings = [ln for ln in lines if ln.startswith(_WARNING)]
    others = [ln for ln in lines if not ln.startswith(_WARNING)]
    if code == 2:
        if warnings and not WARNINGS_BEFORE_ERRORS:
            return WRONG, f"the error comes with {len(warnings)} warning line(s)"
        if len(others) != 1 or not others[0].startswith("koji-kabi: "):
            return WRONG, f"the error is not one 'koji-kabi: ' line ({len(others)} lines)"
        if case.expect == "value" and not case.error_ok:
            return WRONG, f"error where a value is expected: {printable(others[0])[:300]}"
        missing = [m for m in case.mentions if m not in stderr]
        if missing:
            return WRONG, f"the error does not name {missing!r}: {printable(others[0])[:300]}"
        return CLEAR_ERROR, printable(others[0])
    if case.expect == "error":
        return WRONG, f"a value (exit {code}) where a clear error is expected"
    if others:
        return WRONG, f"stderr besides warnings: {printable(others[0])[:300]}"
    if case.exit is not None and code != case.exit:
        return WRONG, f"exit {code}, the right answer is exit {case.exit}"
    missing = [w for w in case.warns if not any(w in ln for ln in warnings)]
    if missing:
        return WRONG, f"no warning naming {missing!r}"
    problem = case.check(stdout) if case.check else None
    if problem:
        return WRONG, problem
    return VALUE, f"exit {code}" + (f", {len(warnings)} warning(s)" if warnings else "")


def run_all(todo: Sequence[Case], jobs: int = 2, timeout: float = 30) -> list[Outcome]:
    """Every case, ``jobs`` processes at a time (the machine has 2 cores)."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda case: run(case, timeout), todo))


@dataclass
class Tally:
    """Per-category counts for the bench table."""

    cases: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rss_mib: float = 0.0
    worst: Optional[Outcome] = None


_SEVERITY = {TRACEBACK: 4, HANG: 3, WRONG: 2, CLEAR_ERROR: 0, VALUE: 0, SKIPPED: -1}


def tally(outcomes: Iterable[Outcome]) -> dict[str, Tally]:
    """Counts per category, plus ``"total"``; worst = most severe failure, else peak RSS."""
    out: dict[str, Tally] = {}
    for o in outcomes:
        for key in (o.case.category, "total"):
            t = out.setdefault(key, Tally())
            t.cases += 1
            t.kinds[o.kind] += 1
            t.rss_mib = max(t.rss_mib, o.rss_mib)
            if t.worst is None or (_SEVERITY[o.kind], o.rss_mib) > (
                    _SEVERITY[t.worst.kind], t.worst.rss_mib):
                t.worst = o
    return out
