"""The fast paths of a CBS-scale check give exactly what the plain code gives.

Bulk parsing of ``kernel(sym) = 0x<hex>`` deps, the C-level verdict test, shared
fingerprint lines and the parsed-result cache are all checked against straightforward
reference versions, on generated dependency lists that mix in every odd spelling.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from koji_kabi.analysis import rebuild
from koji_kabi.analysis.verdict import SymbolProblem, verdict
from koji_kabi.errors import KabiError
from koji_kabi.koji.cache import DirCache
from koji_kabi.model import Kernel, KmodRequirements, Stablelist, SymbolTable, TableKey
from koji_kabi.readers.deps import parse_dep
from koji_kabi.readers.packages import (
    Dependencies,
    kernel_table_from_provides,
    kmod_from_deps,
    split_canonical,
)

SYMS = ["kmalloc", "printk", "pci_register_driver", "sym_ü", "a b", "x(y)", "", "v\n"]
names = st.one_of(
    st.sampled_from(SYMS).map(lambda s: f"kernel({s})"),
    st.sampled_from(SYMS).map(lambda s: f"ksym({s})"),
    st.sampled_from(["ksym(default:kmalloc)", "ksym(rt:printk)", "kernel(printk", "kmod(a.ko)",
                     "kernel-uname-r", "kernelx(a)", "kernel()"]),
)
versions = st.one_of(
    st.integers(0, 2 ** 32).map(lambda c: f"0x{c:08x}"),
    st.sampled_from(["0x", "0x0x12", "0X1f", "1f", " 0x12", "0x1_2", "-0x1", "0xzz",
                     "0x" + "f" * 17, "", "5.14.0-1.el9.x86_64"]),
)
flags = st.sampled_from([8, 8, 8, 0, 2, 4, 10, 12, 8 | 16384, 8 | 1])
triples = st.lists(st.tuples(names, flags, versions), max_size=30)
canonical = st.lists(st.tuples(st.sampled_from(SYMS[:3]).map(lambda s: f"kernel({s})"),
                               st.just(8), st.integers(1, 2 ** 32 - 1).map(lambda c: f"0x{c:x}")),
                     max_size=30)


def _unique(pairs: list[tuple[str, int]]) -> dict[str, int] | None:
    """dict(pairs), or None when a symbol has two CRCs (the readers refuse that)."""
    out: dict[str, int] = {}
    for sym, crc in pairs:
        if out.setdefault(sym, crc) != crc:
            return None
    return out


def _reference_deps(deps: list) -> list | None:
    """parse_dep over every triple; None when one is malformed (the readers refuse it)."""
    try:
        return [d for d in (parse_dep(*t) for t in deps) if d is not None]
    except ValueError:
        return None


def _reference_kmod(requires: list) -> tuple[dict, dict] | None:
    parsed = _reference_deps(requires)
    if parsed is None:
        return None
    kernel_req = _unique([(d.symbol, d.crc) for d in parsed if d.is_kernel_symbol])
    ksym_req = _unique([(d.symbol, d.crc) for d in parsed if not d.is_kernel_symbol])
    return None if kernel_req is None or ksym_req is None else (kernel_req, ksym_req)


def _outcome(call):  # the value, or the one error a reader may give
    try:
        return call()
    except KabiError:
        return None


@given(st.one_of(triples, canonical, st.tuples(canonical, triples).map(lambda p: p[0] + p[1])))
@settings(max_examples=300)
def test_split_canonical_agrees_with_parse_dep(deps: list) -> None:
    fast, slow = split_canonical(deps)
    for sym, crc in fast:
        dep = parse_dep(f"kernel({sym})", 8, f"0x{crc:x}")
        assert dep is not None and (dep.symbol, dep.crc) == (sym, crc)
    assert len(fast) + len(slow) == len(deps)
    kmod = _outcome(lambda: kmod_from_deps(nvr="k-1-1", name="k", arch="x86_64", provides=(),
                                           requires=deps, source="k"))
    expected = _reference_kmod(deps)
    assert (None if kmod is None else (dict(kmod.requires), dict(kmod.ksym_requires))) \
        == expected
    table = _outcome(lambda: kernel_table_from_provides(deps, "x86_64", "kernel-core", "src")
                     or SymbolTable(TableKey("x86_64"), {}, "none"))
    parsed = _reference_deps(deps)
    reference = None if parsed is None else _unique(
        [(d.symbol, d.crc) for d in parsed if d.is_kernel_symbol])
    assert (None if table is None else dict(table.crcs)) == reference


def _reference_verdict(kmod: KmodRequirements, table: SymbolTable,
                       stablelist: Stablelist | None) -> tuple:
    problems = tuple(SymbolProblem(s, r, table.crcs.get(s),
                                   None if stablelist is None else s in stablelist)
                     for s, r in sorted(kmod.requires.items()) if table.crcs.get(s) != r)
    stable = None if stablelist is None else sum(1 for s in kmod.requires if s in stablelist)
    return problems, stable


tables = st.dictionaries(st.sampled_from([f"s{i}" for i in range(40)]), st.integers(1, 9),
                         max_size=40)


@given(tables, tables, st.booleans())
def test_verdict_fast_path_agrees(provided: dict, required: dict, with_list: bool) -> None:
    key = TableKey("x86_64")
    table = SymbolTable(key, provided, "k")
    kernel = Kernel("kernel-1-1", {key: table})
    kmod = KmodRequirements("m-1-1", "m", key, required, "m")
    lst = Stablelist("x86_64", frozenset(list(provided)[::2]), "l") if with_list else None
    v = verdict(kmod, kernel, lst)
    assert (v.problems, v.stable_count) == _reference_verdict(kmod, table, lst)
    assert v.checked == len(required)


def _reference_fingerprint(kmod: KmodRequirements, kernel: Kernel) -> str:
    table = kernel.table_for(kmod.key)
    crcs = table.crcs if table is not None else {}
    h = hashlib.sha256(f"{kmod.key.arch}+{kmod.key.flavour}\n".encode())
    for symbol in sorted(kmod.requires):
        crc = crcs.get(symbol)
        h.update(f"{symbol} {'-' if crc is None else format(crc, '08x')}\n".encode())
    return h.hexdigest()


def test_fingerprint_agrees_and_makes_a_tables_lines_once() -> None:
    rebuild._symbol_lines.cache_clear()
    key = TableKey("x86_64")
    kernel = Kernel("kernel-1-1", {key: SymbolTable(key, {f"s{i}": i * 7919 for i in range(50)},
                                                    "k")})
    for i in range(80):
        kmod = KmodRequirements("m-1-1", "m", key, {f"s{j}": 1 for j in range(i % 60)}, "m")
        assert rebuild.fingerprint(kmod, kernel) == _reference_fingerprint(kmod, kernel)
    other = KmodRequirements("m-1-1", "m", TableKey("s390x"), {"s1": 1}, "m")
    assert rebuild.fingerprint(other, kernel) == _reference_fingerprint(other, kernel)
    info = rebuild._symbol_lines.cache_info()
    assert (info.misses, info.hits) == (1, 79)  # s390x has no table: no lines asked for


def test_cache_round_trip(tmp_path: Path) -> None:
    parsed = DirCache(str(tmp_path))
    kmod = KmodRequirements("kmod-a-1-1", "kmod-a", TableKey("aarch64", "debug"),
                            {"kmalloc": 0x1234, "printk": 0xFFFFFFFF}, "kmod-a-1-1.aarch64",
                            ksym_requires={"other_fn": 7}, ksym_provides={"mine": 9},
                            modules=frozenset({"a", "b"}), license="GPLv2")
    empty = KmodRequirements("tool-1-1", "tool", TableKey("x86_64"), {}, "tool-1-1.x86_64")
    parsed.put_kmod("k1", kmod)
    parsed.put_kmod("k2", empty)
    for key, want in (("k1", kmod), ("k2", empty)):
        got = parsed.kmod(key, want.nvr, want.name, want.source)
        assert got is not None
        for field in ("nvr", "name", "key", "source", "modules", "license"):
            assert getattr(got, field) == getattr(want, field)
        for field in ("requires", "ksym_requires", "ksym_provides"):
            assert dict(getattr(got, field)) == dict(getattr(want, field))
    assert parsed.kmod("k3", "n", "n", "s") is None
    table = SymbolTable(TableKey("x86_64"), {"kmalloc": 1, "printk": 2}, "kernel-core")
    parsed.put_table("t1", table)
    parsed.put_table("t2", None)
    found, got_table = parsed.table("t1", "kernel-core")
    assert found and got_table.key == table.key and dict(got_table.crcs) == dict(table.crcs)
    assert parsed.table("t2", "x") == (True, None)
    assert parsed.table("t3", "x") == (False, None)
    deps = Dependencies((("kernel(printk)", 8, "0x1"), ("kernel-uname-r", 8, "5.14.0")),
                        (("kmod(a.ko)", 0, ""), ("ksym(mine)", 8, "0x9")))
    parsed.put_deps("k1", deps)
    parsed.put_deps("k4", Dependencies())
    assert parsed.deps("k1") == deps and isinstance(parsed.deps("k1"), Dependencies)
    assert parsed.deps("k4") == Dependencies()
    assert parsed.deps("k3") is None
    again = DirCache(str(tmp_path))  # another task on the builder: the same entries
    assert again.deps("k1") == deps and again.table("t2", "x") == (True, None)
    assert again.kmod("k1", "n", "n", "s") is not None
