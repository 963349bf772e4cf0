"""The reader contract, property-based: any bytes give a value or a KabiError, nothing else.

Each reader gets arbitrary bytes and mutations (flipped, cut, repeated and inserted
bytes) of a real file of its kind: a kernel's symvers, a kmod RPM, the .ko inside it, a
stablelist, an ``rpm -q`` dump.  Whatever comes back must be a value, or a KabiError
whose message is one escaped line; a value must keep the readers' invariants (32-bit
CRCs, printable names).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koji_kabi.errors import KabiError
from koji_kabi.model import MAX_CRC, KmodRequirements, SymbolTable, TableKey, symbol_problem
from koji_kabi.readers.files import decompress
from koji_kabi.readers.inputs import kernel_from_file, kmod_from_file, load_stablelists, sniff
from koji_kabi.readers.kofile import read_ko
from koji_kabi.readers.rpmheader import parse_header_blob, read_rpm_file
from koji_kabi.readers.stablelist import parse_stablelist
from koji_kabi.readers.symvers import read_symvers_lines
from tests.support import oracle

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KMOD_RPM = EXAMPLES / "kmods" / "kmod-acpi-call-1.2.2-1.6.1.0.53.x86_64.rpm"
SYMVERS = lzma.decompress((EXAMPLES / "kernels" / "symvers-6.1.0-53.x86_64.xz").read_bytes())
SYMVERS_HEAD = b"\n".join(SYMVERS.split(b"\n")[:40]) + b"\n"
STABLELIST = b"[rhel9_x86_64_stablelist]\n\tkmalloc\n\tprintk\n\t__fentry__\n"
DUMP = b"kernel(kmalloc) = 0x1234abcd\nkernel(printk) = 0xdeadbeef\nkmod(a.ko)\n"
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few random edits: the inputs a reader meets when files go bad."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "zero"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 4096))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 64))] * draw(st.integers(2, 8))
        elif data:
            data[at:at + 8] = bytes(min(8, len(data) - at))
    return bytes(data)


def _contract(call: Callable[[], Any]) -> Any:
    """The value, or None for a KabiError of one escaped line; anything else fails."""
    try:
        value = call()
    except KabiError as exc:
        text = str(exc)
        assert "\n" not in text and "\x1b" not in text and text.isprintable(), text
        return None
    for table in _tables(value):
        assert all(0 <= crc <= MAX_CRC for crc in table.values())
        assert all(symbol_problem(name) is None for name in table)
    return value


def _tables(value: Any) -> list[dict[str, int]]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], SymbolTable):
        value = value[1]
    if isinstance(value, SymbolTable):
        return [dict(value.crcs)]
    if isinstance(value, KmodRequirements):
        return [dict(value.requires), dict(value.ksym_requires), dict(value.ksym_provides)]
    return []


@pytest.fixture(scope="module")
def ko_bytes() -> bytes:
    if shutil.which("rpm2archive") is None:
        pytest.skip("rpm2archive not installed (scripts/bootstrap.sh --test installs rpm2cpio)")
    return next(data for name, data in oracle.rpm_payload(KMOD_RPM).items()
                if name.endswith(".ko"))


def _write(tmp_path: Path, data: bytes, name: str = "input") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _every_role(path: str) -> None:
    """The path as each role takes it: a kernel, a kmod, a stablelist, sniffed."""
    _contract(lambda: sniff(path))
    _contract(lambda: kernel_from_file(path))
    _contract(lambda: kernel_from_file(path, "x86_64"))
    _contract(lambda: kmod_from_file(path))
    _contract(lambda: load_stablelists([path]))


@given(st.binary(max_size=2048))
@FUZZ
def test_any_bytes_in_any_role(tmp_path: Path, data: bytes) -> None:
    _every_role(_write(tmp_path, data, "symvers-6.1.0.x86_64"))


@given(st.one_of(mutated(SYMVERS_HEAD), mutated(DUMP), mutated(STABLELIST)))
@FUZZ
def test_mutated_text_files(tmp_path: Path, data: bytes) -> None:
    _every_role(_write(tmp_path, data))


@given(st.sampled_from([gzip.compress, bz2.compress, lzma.compress]),
       st.data())
@FUZZ
def test_mutated_compressed_files(tmp_path: Path, compress: Callable[[bytes], bytes],
                                  data: st.DataObject) -> None:
    blob = data.draw(mutated(compress(SYMVERS_HEAD)))
    _contract(lambda: decompress(blob, "input"))
    _every_role(_write(tmp_path, blob))


@given(mutated(KMOD_RPM.read_bytes()))
@FUZZ
def test_mutated_rpm(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path, data, "kmod.rpm")
    _contract(lambda: read_rpm_file(path))
    _every_role(path)


@given(st.binary(max_size=4096))
@FUZZ
def test_any_header_blob(blob: bytes) -> None:
    _contract(lambda: parse_header_blob(blob, "blob"))


@given(st.data())
@FUZZ
def test_mutated_ko(tmp_path: Path, ko_bytes: bytes, data: st.DataObject) -> None:
    blob = data.draw(mutated(ko_bytes))
    _contract(lambda: read_ko(blob, "m.ko"))
    _every_role(_write(tmp_path, blob, "m.ko"))


@given(st.lists(st.text(max_size=80), max_size=30))
@FUZZ
def test_any_text_lines(lines: list[str]) -> None:
    text = [line + "\n" for line in lines]
    _contract(lambda: read_symvers_lines(text, TableKey("x86_64"), "symvers"))
    _contract(lambda: parse_stablelist(["[rhel9_x86_64_stablelist]\n", *text], "list"))


def test_the_originals_are_values(tmp_path: Path, ko_bytes: bytes) -> None:
    """The mutations start from files the readers take: otherwise the tests prove little."""
    _label, table = kernel_from_file(_write(tmp_path, SYMVERS, "symvers-6.1.0.x86_64"))
    assert len(table) > 20000
    assert kmod_from_file(str(KMOD_RPM)).requires
    assert read_ko(ko_bytes, "m.ko").requires
    assert load_stablelists([_write(tmp_path, STABLELIST, "kabi_stablelist_x86_64")])
    assert kernel_from_file(_write(tmp_path, DUMP, "dump.txt"), "x86_64")[1].crcs
    assert os.path.getsize(KMOD_RPM) > 0
