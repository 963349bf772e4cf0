"""What the readers refuse: CRCs not as modpost writes them, names that are not names,
a symbol with two CRCs, labels that would mix two kernels, an arch the inputs lack."""

from __future__ import annotations

from pathlib import Path

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.model import TableKey
from koji_kabi.readers.inputs import load_kernels
from koji_kabi.readers.packages import kernel_table_from_provides, kmod_from_deps
from koji_kabi.readers.stablelist import parse_stablelist
from koji_kabi.readers.symvers import read_symvers_lines

KEY = TableKey("x86_64")


def _symvers(*lines: str) -> list[str]:
    return [line + "\n" for line in lines]


@pytest.mark.parametrize("crc", ["-0x2", "0x-2", "0x100000000", "0x1_2", "+0x12", " 0x12",
                                 "0x", "12", "0xzz", "0x" + "f" * 17])
def test_symvers_crcs_are_32_bit_hex_as_modpost_writes_them(crc: str) -> None:
    with pytest.raises(KabiError, match="symvers:1: bad CRC"):
        read_symvers_lines(_symvers(f"{crc}\tkmalloc\tvmlinux\tEXPORT_SYMBOL\t"), KEY, "symvers")


def test_symvers_crc_spellings_that_are_the_same_number() -> None:
    table = read_symvers_lines(_symvers("0x0000abcd\ta\tvmlinux\tEXPORT_SYMBOL\t",
                                        "0XABCD\tb\tvmlinux\tEXPORT_SYMBOL\t",
                                        "0xffffffff\tc\tvmlinux\tEXPORT_SYMBOL\t"), KEY, "s")
    assert dict(table.crcs) == {"a": 0xABCD, "b": 0xABCD, "c": 0xFFFFFFFF}


@pytest.mark.parametrize("name", ["km\x00alloc", "\x1b[31mkmalloc", "\x1b]0;pwned\x07",
                                  "kmal\u2028loc", "k m"])
def test_names_must_be_printable(name: str) -> None:
    with pytest.raises(KabiError) as err:
        read_symvers_lines(_symvers(f"0x00000001\t{name}\tvmlinux\tEXPORT_SYMBOL\t"), KEY, "s")
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(KabiError):
        parse_stablelist(["[rhel9_x86_64_stablelist]\n", f"\t{name}\n"], "list")
    with pytest.raises(KabiError):
        kernel_table_from_provides([(f"kernel({name})", 8, "0x00000001")], "x86_64",
                                   "kernel-core", "k.rpm")


def test_a_symbol_with_two_crcs_is_an_error_naming_both() -> None:
    lines = _symvers("0x00000001\tkmalloc\tvmlinux\tEXPORT_SYMBOL\t",
                     "0x00000002\tkmalloc\tvmlinux\tEXPORT_SYMBOL\t")
    with pytest.raises(KabiError, match="s:2: kmalloc is given twice with different CRCs: "
                                        "0x00000001 and 0x00000002"):
        read_symvers_lines(lines, KEY, "s")
    same = _symvers("0x00000001\tkmalloc\tvmlinux\tEXPORT_SYMBOL\t") * 2
    assert dict(read_symvers_lines(same, KEY, "s").crcs) == {"kmalloc": 1}
    deps = [("kernel(kmalloc)", 8, "0x00000001"), ("kernel(kmalloc)", 8, "0x00000002")]
    with pytest.raises(KabiError, match=r"k.rpm: kmalloc is given twice"):
        kernel_table_from_provides(deps, "x86_64", "kernel-core", "k.rpm")
    with pytest.raises(KabiError, match=r"m.rpm: kmalloc is given twice"):
        kmod_from_deps(nvr="m-1-1", name="m", arch="x86_64", provides=(), requires=deps,
                       source="m.rpm")


@pytest.mark.parametrize("version", ["-0x2", "0x1ffffffff", "0x1_2"])
def test_dependency_crcs_out_of_range_are_errors_not_dropped(version: str) -> None:
    with pytest.raises(KabiError, match=r"m.rpm: .*not a 32-bit hex CRC"):
        kmod_from_deps(nvr="m-1-1", name="m", arch="x86_64", provides=(),
                       requires=[("kernel(kmalloc)", 8, version)], source="m.rpm")


def _write_symvers(path: Path, crc: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"0x{crc:08x}\tkmalloc\tvmlinux\tEXPORT_SYMBOL\t\n")
    return str(path)


def test_same_named_files_of_two_kernels_stay_two_kernels(tmp_path: Path) -> None:
    a = _write_symvers(tmp_path / "a" / "linux" / "Module.symvers", 1)
    b = _write_symvers(tmp_path / "b" / "linux" / "Module.symvers", 2)
    kernels = load_kernels([a, b], "x86_64")
    assert [k.nvr for k in kernels] == [a, b]
    assert [dict(next(iter(k.tables.values())).crcs) for k in kernels] == [
        {"kmalloc": 1}, {"kmalloc": 2}]
    inside = load_kernels([str(tmp_path)], "x86_64")  # a directory scan: the same
    assert sorted(k.nvr for k in inside) == [a, b]


def test_one_name_two_arches_is_one_kernel(tmp_path: Path) -> None:
    x86 = _write_symvers(tmp_path / "symvers-6.1.0-1.x86_64", 1)
    arm = _write_symvers(tmp_path / "symvers-6.1.0-1.aarch64", 2)
    (kernel,) = load_kernels([x86, arm])
    assert kernel.nvr == "6.1.0-1" and {k.arch for k in kernel.tables} == {"x86_64", "aarch64"}


def test_arch_must_agree_with_what_the_file_name_says(tmp_path: Path) -> None:
    x86 = _write_symvers(tmp_path / "symvers-6.1.0-1.x86_64", 1)
    with pytest.raises(KabiError, match="--arch aarch64 given, but the file name says x86_64"):
        load_kernels([x86], "aarch64")
