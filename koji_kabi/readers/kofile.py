"""Kernel module files (``.ko``): the modversions a built module needs.

A module's ``__versions`` section holds one ``struct modversion_info`` per undefined
symbol: an ``unsigned long`` CRC then the NUL-padded name, 64 bytes in all.  This is the
same data ``modprobe --dump-modversions`` prints and RHEL's find-requires.ksyms turns
into ``Requires: kernel(sym) = 0xCRC``.
"""

from __future__ import annotations

import struct
import sys

from koji_kabi.errors import KabiError
from koji_kabi.model import KmodRequirements, TableKey, symbol_problem, unique_crcs
from koji_kabi.report.terminal import escape

ELF_MAGIC = b"\x7fELF"
_MACHINES = {3: "i686", 62: "x86_64", 183: "aarch64", 21: "ppc64", 22: "s390x",
             40: "armv7hl", 243: "riscv64"}
_ENTRY_SIZE = 64
SHT_NOBITS = 8  # .bss and friends: a size in memory, no bytes in the file


def _arch(machine: int, little: bool) -> str:
    arch = _MACHINES.get(machine, f"elf-machine-{machine}")
    return "ppc64le" if arch == "ppc64" and little else arch


def _sections(data: bytes, source: str) -> tuple[dict[str, bytes], str]:
    if data[:4] != ELF_MAGIC or len(data) < 64:
        raise KabiError(source, "not an ELF kernel module")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise KabiError(source, "corrupt ELF file: bad class or byte order")
    is64 = data[4] == 2
    little = data[5] == 1
    e = "<" if little else ">"
    try:
        machine = struct.unpack_from(e + "H", data, 18)[0]
        if is64:
            shoff = struct.unpack_from(e + "Q", data, 40)[0]
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 58)
            fmt = e + "IIQQQQ"
        else:
            shoff = struct.unpack_from(e + "I", data, 32)[0]
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 46)
            fmt = e + "IIIIII"
        if shentsize < struct.calcsize(fmt) or shoff + shnum * shentsize > len(data):
            raise ValueError("section header table past the end or entries too small")
        headers = []
        for i in range(shnum):
            name_off, sh_type, _flags, _addr, offset, size = struct.unpack_from(
                fmt, data, shoff + i * shentsize)
            headers.append((name_off, sh_type, offset, size))
        _n, _t, str_off, str_size = headers[shstrndx]
        if str_off + str_size > len(data):
            raise ValueError("section names past the end")
        strtab = data[str_off:str_off + str_size]
        sections = {}
        for name_off, sh_type, offset, size in headers:
            name = strtab[name_off:strtab.index(b"\0", name_off)].decode("ascii")
            if sh_type == SHT_NOBITS:
                sections[name] = b""
                continue
            if offset + size > len(data):
                raise KabiError(source, f"truncated ELF file: section {name} past the end")
            sections[name] = data[offset:offset + size]
    except (struct.error, IndexError, ValueError, OverflowError):  # incl. UnicodeDecodeError
        raise KabiError(source, "corrupt ELF file: bad section headers") from None
    return sections, _arch(machine, little)


def _modinfo(section: bytes) -> dict[str, str]:
    info: dict[str, str] = {}
    for item in section.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            info.setdefault(key.decode("ascii", "replace"), value.decode("utf-8", "replace"))
    return info


def read_ko(data: bytes, source: str) -> KmodRequirements:
    """A ``.ko`` file's contents → its kernel requirements (one module, one arch)."""
    sections, arch = _sections(data, source)
    versions = sections.get("__versions")
    if versions is None:
        raise KabiError(source, "module has no __versions section "
                        "(built without CONFIG_MODVERSIONS)")
    little = data[5] == 1
    is64 = data[4] == 2
    crc_fmt = ("<" if little else ">") + ("Q" if is64 else "I")
    crc_size = struct.calcsize(crc_fmt)
    if len(versions) % _ENTRY_SIZE:
        raise KabiError(source, f"corrupt __versions section: {len(versions)} bytes is not "
                        f"a whole number of {_ENTRY_SIZE}-byte entries")
    pairs = []
    for off in range(0, len(versions), _ENTRY_SIZE):
        crc = struct.unpack_from(crc_fmt, versions, off)[0] & 0xFFFFFFFF
        raw = versions[off + crc_size:off + _ENTRY_SIZE]
        if b"\0" not in raw:
            raise KabiError(source, f"corrupt __versions entry {off // _ENTRY_SIZE}: "
                            "name not NUL-terminated")
        try:
            name = raw.split(b"\0", 1)[0].decode("utf-8")
            problem = symbol_problem(name)
        except UnicodeDecodeError:
            problem = "symbol name is not UTF-8"
        if problem is not None:
            raise KabiError(source, f"__versions entry {off // _ENTRY_SIZE}: {problem}")
        pairs.append((sys.intern(name), crc))
    requires = unique_crcs(pairs, source)
    info = _modinfo(sections.get(".modinfo", b""))
    module = escape(info.get("name") or source.rsplit("/", 1)[-1].split(".ko", 1)[0])
    vermagic = info.get("vermagic", "")
    kver = vermagic.split(" ", 1)[0]
    flavour = kver.rsplit("+", 1)[1] if "+" in kver else ""
    nvr = f"{module}-{info['version']}" if info.get("version") else module
    return KmodRequirements(
        nvr=nvr,
        name=module,
        key=TableKey(arch, flavour),
        requires=requires,
        modules=frozenset({f"{module}.ko"}),
        license=info.get("license", ""),
        source=source,
    )
