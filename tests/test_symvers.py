"""Module.symvers (4 and 5 columns), kabi-module files and stablelists, incl. real data."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koji_kabi.errors import KabiError
from koji_kabi.model import TableKey
from koji_kabi.readers.inputs import load_kernel, load_stablelists
from koji_kabi.readers.stablelist import parse_stablelist, read_stablelist_dir
from koji_kabi.readers.symvers import parse_symvers_line, read_kabi_module_file, read_symvers_lines

REAL = Path(__file__).parent / "data" / "real"

symbol = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,40}\Z")
module = st.sampled_from(["vmlinux", "drivers/uio/uio", "net/netfilter/nf_conntrack"])
etype = st.sampled_from(["EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL"])
namespace = st.sampled_from(["", "CXL", "USB_STORAGE"])
entries = st.dictionaries(symbol, st.tuples(st.integers(0, 0xFFFFFFFF), module, etype, namespace),
                          min_size=1, max_size=50)


@given(entries, st.booleans())
def test_symvers_roundtrip(table: dict, five_columns: bool) -> None:
    lines = []
    for name, (crc, mod, et, ns) in table.items():
        cols = [f"0x{crc:08x}", name, mod, et] + ([ns] if five_columns else [])
        lines.append("\t".join(cols))
    parsed = read_symvers_lines(lines, TableKey("x86_64"), "t")
    assert dict(parsed.crcs) == {n: v[0] for n, v in table.items()}
    for name, (_crc, mod, et, ns) in table.items():
        exp = parsed.exports[name]
        assert (exp.module, exp.export_type) == (mod, et)
        assert exp.namespace == (ns if five_columns else "")


def test_symvers_5_4_order_namespace_in_column_3() -> None:
    name, crc, exp = parse_symvers_line("0x00000001\tfoo\tNS\tvmlinux\tEXPORT_SYMBOL_NS", "t", 1)
    assert (name, crc, exp.module, exp.export_type, exp.namespace) == (
        "foo", 1, "vmlinux", "EXPORT_SYMBOL_NS", "NS")


@pytest.mark.parametrize("line,problem", [
    ("0x1234\tfoo", "want 4 or 5"),
    ("0xZZZZ\tfoo\tvmlinux\tEXPORT_SYMBOL\t", "bad CRC"),
    ("0x1\t\tvmlinux\tEXPORT_SYMBOL\t", "empty symbol"),
])
def test_bad_symvers_lines_name_file_and_line(line: str, problem: str) -> None:
    with pytest.raises(KabiError, match=problem) as err:
        read_symvers_lines(["0x1\tok\tvmlinux\tEXPORT_SYMBOL\t", line], TableKey("x86_64"), "f")
    assert str(err.value).startswith("f:2: ")


def test_real_c9s_kabi_module_files() -> None:
    printk = (REAL / "kabi-module-c9s/kabi_x86_64/printk").read_text()
    assert read_kabi_module_file(printk, "printk")[:2] == ("printk", 0xC5850110)
    fentry = (REAL / "kabi-module-c9s/kabi_x86_64/__fentry__").read_text()
    name, crc, _exp = read_kabi_module_file(fentry, "__fentry__")
    assert (name, crc) == ("__fentry__", 0)
    lists = read_stablelist_dir(str(REAL))
    assert set(lists) == {"x86_64", "aarch64"}
    assert {"printk", "module_put", "__alloc_skb", "jiffies_64"} <= lists["x86_64"].symbols
    assert lists["aarch64"].symbols == {"__alloc_skb"}


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (lzma.open, ".xz"),
                                           (open, "")])
def test_compressed_symvers_files(tmp_path: Path, opener, suffix: str) -> None:
    path = tmp_path / f"symvers-5.14.0-1.el9.x86_64{suffix}"
    with opener(path, "wt") as f:
        f.write("0xc5850110\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")
    kernel = load_kernel(str(path))
    assert kernel.nvr == "5.14.0-1.el9"
    assert dict(kernel.tables[TableKey("x86_64")].crcs) == {"printk": 0xC5850110}


def test_stablelist_file_and_whitelist_naming(tmp_path: Path) -> None:
    tree = tmp_path / "kabi-rhel85"
    tree.mkdir()
    (tree / "kabi_whitelist_x86_64").write_text("[rhel8_x86_64_whitelist]\n\tprintk\n\tkfree\n")
    (tree / "kabi_stablelist_ppc64le").write_text("[rhel8_ppc64le_stablelist]\n\tprintk\n")
    lists = load_stablelists([str(tmp_path)])
    assert lists["x86_64"].symbols == {"printk", "kfree"}
    assert lists["x86_64"].name == "rhel8_x86_64_whitelist"
    assert lists["ppc64le"].symbols == {"printk"}
    single = load_stablelists([str(tree / "kabi_whitelist_x86_64")])
    assert set(single) == {"x86_64"}


@given(st.lists(symbol, max_size=30))
def test_stablelist_roundtrip(symbols: list[str]) -> None:
    text = ["[rhel9_aarch64_stablelist]"] + [f"\t{s}" for s in symbols]
    lst = parse_stablelist(text, "t")
    assert lst.arch == "aarch64" and lst.symbols == set(symbols)


def test_stablelist_without_header_is_refused() -> None:
    with pytest.raises(KabiError, match="no \\[<name>_stablelist\\] header"):
        parse_stablelist(["\tprintk"], "f")
