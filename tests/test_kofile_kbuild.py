"""The .ko reader on a module built by real kbuild, checked against `modprobe --dump-modversions`.

The module has an 8 MiB ``.bss``: SHT_NOBITS, so its size exceeds the file's and its
offset+size points past the end.  Real modules with large static buffers look like this
and must be read, not refused as truncated.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from koji_kabi.readers.inputs import kmod_from_file
from koji_kabi.readers.kofile import read_ko
from tests.support import kbuild

SHT_NOBITS = 8


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine; in CI bootstrap installs everything, so a gap is a bug."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to build kernel modules: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> kbuild.Built:
    headers = kbuild.locate()
    if isinstance(headers, str):
        _unavailable(headers)
    return kbuild.build_module(headers, tmp_path_factory.mktemp("kbuild"))


@pytest.fixture(scope="session")
def modprobe_dump(built: kbuild.Built) -> dict[str, int]:
    """{symbol: crc} as kmod's own reader sees the module."""
    modprobe = next((p for p in ("/usr/sbin/modprobe", "/sbin/modprobe", shutil.which("modprobe"))
                     if p and Path(p).exists()), None)
    if modprobe is None:
        _unavailable("modprobe (package kmod) not installed")
    out = subprocess.run([modprobe, "--dump-modversions", str(built.ko)], capture_output=True,
                         text=True, check=True).stdout
    dump = {}
    for line in out.splitlines():
        crc, symbol = line.split("\t")
        assert crc.startswith("0x"), line
        dump[symbol] = int(crc, 16)
    assert dump, "modprobe found no __versions entries"
    return dump


def _elf_sections(data: bytes) -> dict[str, tuple[int, int, int]]:
    """{name: (sh_type, sh_offset, sh_size)} straight from the section headers."""
    assert data[:4] == b"\x7fELF"
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
        shdr = end + "IIQQQQ"
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
        shdr = end + "IIIIII"
    raw = [struct.unpack_from(shdr, data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = raw[shstrndx][4], raw[shstrndx][5]
    strtab = data[str_off:str_off + str_size]
    return {strtab[h[0]:strtab.index(b"\0", h[0])].decode(): (h[1], h[4], h[5]) for h in raw}


def test_module_has_a_nobits_bss_larger_than_the_file(built: kbuild.Built) -> None:
    data = built.ko.read_bytes()
    sections = _elf_sections(data)
    assert "__versions" in sections
    sh_type, offset, size = sections[".bss"]
    assert sh_type == SHT_NOBITS
    assert size >= kbuild.BSS_SIZE > len(data)
    assert offset + size > len(data)  # what a naive bounds check trips over


def test_read_ko_equals_modprobe_dump(built: kbuild.Built,
                                      modprobe_dump: dict[str, int]) -> None:
    kmod = read_ko(built.ko.read_bytes(), str(built.ko))
    assert dict(kmod.requires) == modprobe_dump


def test_name_and_arch(built: kbuild.Built) -> None:
    kmod = read_ko(built.ko.read_bytes(), str(built.ko))
    assert kmod.name == kbuild.MODULE_NAME
    assert kmod.nvr == f"{kbuild.MODULE_NAME}-1.0"
    assert kmod.key.arch == built.headers.arch == kbuild.machine()
    assert kmod.key.flavour == ""
    assert kmod.license == "GPL"


def test_xz_compressed_module(built: kbuild.Built, modprobe_dump: dict[str, int],
                              tmp_path: Path) -> None:
    ko = tmp_path / built.ko.name
    shutil.copyfile(built.ko, ko)
    subprocess.run(["xz", "-k", str(ko)], check=True)
    kmod = kmod_from_file(f"{ko}.xz")
    assert dict(kmod.requires) == modprobe_dump
    assert kmod.name == kbuild.MODULE_NAME
    assert kmod.key.arch == kbuild.machine()
