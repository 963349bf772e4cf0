"""Dependency spellings: RHEL kernel()/ksym(), SUSE ksym(flavor:sym); CRCs as numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koji_kabi.readers.deps import RPMSENSE_EQUAL, parse_crc, parse_dep, parse_dump_line

symbols = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.$]{0,60}\Z")
crcs = st.integers(min_value=0, max_value=0xFFFFFFFF)


@given(symbols, crcs, st.sampled_from(["0x%08x", "0x%x", "0X%08X", "%08x", "%x"]))
def test_crc_spellings_compare_as_numbers(symbol: str, crc: int, spelling: str) -> None:
    dep = parse_dep(f"kernel({symbol})", RPMSENSE_EQUAL, spelling % crc)
    assert dep is not None
    assert (dep.kind, dep.symbol, dep.crc, dep.is_kernel_symbol) == ("kernel", symbol, crc, True)


@given(symbols, crcs, st.sampled_from(["default", "rt", "azure", "64kb"]))
def test_suse_ksym_with_flavour_is_a_kernel_symbol(symbol: str, crc: int, flavour: str) -> None:
    dep = parse_dep(f"ksym({flavour}:{symbol})", RPMSENSE_EQUAL, f"{crc:08x}")
    assert dep is not None and dep.is_kernel_symbol
    assert dep.symbol == symbol and dep.crc == crc
    assert dep.flavour == ("" if flavour == "default" else flavour)


def test_rhel_ksym_is_another_kmods_symbol() -> None:
    dep = parse_dep("ksym(foo_export)", RPMSENSE_EQUAL, "0x0000abcd")
    assert dep is not None and dep.kind == "ksym" and not dep.is_kernel_symbol
    assert dep.crc == 0xABCD


@pytest.mark.parametrize(
    "name,flags,version",
    [
        ("kernel(foo)", 0, ""),  # unversioned
        ("kernel(foo)", RPMSENSE_EQUAL | 4, "0x1"),  # >=
        ("kernel", RPMSENSE_EQUAL, "5.14.0-1.el9"),
        ("kernel-uname-r", RPMSENSE_EQUAL, "5.14.0-1.el9.x86_64"),
        ("kmod(foo.ko)", 0, ""),
        ("kernel(foo)", RPMSENSE_EQUAL, "5.14.0"),  # not a CRC
        ("rpmlib(PayloadFilesHavePrefix)", RPMSENSE_EQUAL | 16777216, "4.0-1"),
    ],
)
def test_non_crc_dependencies_are_ignored(name: str, flags: int, version: str) -> None:
    assert parse_dep(name, flags, version) is None


@given(crcs)
def test_parse_crc_roundtrip(crc: int) -> None:
    assert parse_crc(f"0x{crc:08x}") == crc
    assert parse_crc(f"{crc:x}") == crc


def test_dump_lines() -> None:
    assert parse_dump_line("kernel(printk) = 0xc5850110") == ("kernel(printk)", 8, "0xc5850110")
    assert parse_dump_line("kmod(foo.ko)") == ("kmod(foo.ko)", 0, "")
    assert parse_dump_line("kernel >= 5.14.0") == ("kernel", 12, "5.14.0")
    assert parse_dump_line("   ") is None
    with pytest.raises(ValueError, match="not an RPM dependency line"):
        parse_dump_line("this is prose, not a dependency")
