"""delta / verdict / impact / series against brute-force definitions on generated tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koji_kabi import (
    ConsumerIndex,
    KabiError,
    Kernel,
    KmodRequirements,
    Stablelist,
    SymbolTable,
    TableKey,
    delta,
    delta_kernels,
    series,
    verdict,
)
from koji_kabi.model import Export

X86 = TableKey("x86_64")
names = st.sampled_from([f"s{i}" for i in range(40)])
tables = st.dictionaries(names, st.integers(0, 3), max_size=40)


def kernel(nvr: str, crcs: dict[str, int], key: TableKey = X86) -> Kernel:
    return Kernel(nvr, {key: SymbolTable(key, crcs, nvr)})


def kmod(name: str, requires: dict[str, int], key: TableKey = X86, **kw) -> KmodRequirements:
    return KmodRequirements(f"{name}-1-1", name, key, requires, name, **kw)


@given(tables, tables)
def test_delta_is_set_difference(old: dict, new: dict) -> None:
    d = delta(SymbolTable(X86, old, "o"), SymbolTable(X86, new, "n"))
    assert {c.symbol for c in d.added} == new.keys() - old.keys()
    assert {c.symbol for c in d.removed} == old.keys() - new.keys()
    assert {c.symbol for c in d.changed} == {s for s in old.keys() & new.keys()
                                             if old[s] != new[s]}
    assert d.unchanged_count == sum(1 for s in old if new.get(s) == old[s])
    assert d.breaking == bool(d.removed or d.changed)


def test_delta_refuses_other_arch_or_flavour() -> None:
    a = SymbolTable(X86, {"a": 1}, "old.rpm")
    for other in (TableKey("aarch64"), TableKey("x86_64", "debug")):
        with pytest.raises(KabiError, match="will not compare CRCs"):
            delta(a, SymbolTable(other, {"a": 1}, "new.rpm"))
    with pytest.raises(KabiError, match="no arch/flavour in common"):
        delta_kernels(kernel("k1", {"a": 1}), kernel("k2", {"a": 1}, TableKey("aarch64")))


def test_export_changes_and_gpl_restriction() -> None:
    old = SymbolTable(X86, {"a": 1, "b": 2, "c": 3}, "o", {
        "a": Export("vmlinux", "EXPORT_SYMBOL"), "b": Export("vmlinux", "EXPORT_SYMBOL"),
        "c": Export("drivers/x", "EXPORT_SYMBOL_GPL")})
    new = SymbolTable(X86, {"a": 1, "b": 2, "c": 3}, "n", {
        "a": Export("vmlinux", "EXPORT_SYMBOL_GPL"), "b": Export("drivers/y", "EXPORT_SYMBOL"),
        "c": Export("drivers/x", "EXPORT_SYMBOL_GPL", "NS")})
    d = delta(old, new, Stablelist("x86_64", frozenset({"a"}), "sl"))
    assert not d.changed
    assert [c.symbol for c in d.export_type_changed] == ["a"]
    assert [c.symbol for c in d.gpl_restricted] == ["a"] and d.gpl_restricted[0].stable
    assert [c.symbol for c in d.moved] == ["b"]
    assert [c.symbol for c in d.namespace_changed] == ["c"]
    assert d.breaking and d.breaking_symbols() == {"a", "c"}


def test_verdict_missing_mismatch_stable_and_ksym() -> None:
    k = kernel("kernel-2", {"a": 1, "b": 5, "c": 3})
    m = kmod("kmod-x", {"a": 1, "b": 2, "z": 9}, ksym_requires={"other_sym": 7})
    sl = Stablelist("x86_64", frozenset({"a", "b"}), "sl")
    v = verdict(m, k, sl, {"other_sym": 7})
    assert not v.compatible and v.checked == 4 and v.stable_count == 2
    assert [(p.symbol, p.required, p.provided, p.stable) for p in v.mismatched] == [
        ("b", 2, 5, True)]
    assert [(p.symbol, p.provided) for p in v.missing] == [("z", None)]
    assert verdict(m, k, sl, {"other_sym": 8}).problems[-1].provided is not None
    ok = verdict(kmod("kmod-y", {"a": 1, "c": 3}), k)
    assert ok.compatible and ok.stable_count is None


def test_verdict_flavour_and_arch_matching() -> None:
    debug = TableKey("x86_64", "debug")
    k = Kernel("kernel-1", {X86: SymbolTable(X86, {"a": 1}, "k"),
                            debug: SymbolTable(debug, {"a": 2}, "kd")})
    assert verdict(kmod("plain", {"a": 1}), k).compatible
    assert verdict(kmod("dbg", {"a": 2}, debug), k).compatible
    assert not verdict(kmod("dbg", {"a": 1}, debug), k).compatible
    other = verdict(kmod("arm", {"a": 1}, TableKey("aarch64")), k)
    assert other.no_table and not other.compatible
    rt = TableKey("x86_64", "rt")
    rt_kernel = Kernel("kernel-rt-1", {rt: SymbolTable(rt, {"a": 4}, "rt")})
    assert verdict(kmod("rt-kmod-without-flavour", {"a": 4}), rt_kernel).compatible


@settings(max_examples=60)
@given(tables, tables, st.lists(tables, min_size=1, max_size=8))
def test_impact_equals_brute_force(old: dict, new: dict, reqs: list) -> None:
    kmods = [kmod(f"kmod-{i}", r) for i, r in enumerate(reqs)]
    d = delta(SymbolTable(X86, old, "o"), SymbolTable(X86, new, "n"))
    imp = ConsumerIndex(kmods).impact(d)
    brute = {m.name for m in kmods if set(m.requires) & d.breaking_symbols()}
    assert {a.kmod.name for a in imp.affected} == brute
    for a in imp.affected:
        assert set(a.symbols) == set(a.kmod.requires) & d.breaking_symbols()


def test_series_first_break_rebuilds_and_symbol_use() -> None:
    k1 = kernel("k-1", {"a": 1, "b": 1, "c": 1, "st": 1, "x": 1})
    k2 = kernel("k-2", {"a": 1, "b": 2, "c": 1, "st": 1, "x": 1})
    k3 = kernel("k-3", {"a": 1, "b": 2, "c": 3, "st": 1})
    k4 = kernel("k-4", {"a": 1, "b": 4, "c": 3, "st": 1, "new": 1})
    kmods = [
        kmod("kmod-never", {"a": 1, "st": 1}),
        kmod("kmod-b", {"a": 1, "b": 1}),  # breaks at k-2, k-4
        kmod("kmod-c", {"c": 1, "st": 1}),  # breaks at k-3
        kmod("kmod-old", {"a": 0}),  # built for another kernel: rebuild at k-1
        kmod("kmod-gone", {"x": 1, "ghost": 1}),
    ]
    (r,) = series([k1, k2, k3, k4], kmods, {"x86_64": Stablelist("x86_64",
                                                                  frozenset({"st"}), "sl")})
    hist = {h.kmod.split("-1-1")[0]: h for h in r.kmods}
    assert hist["kmod-never"].first_broken is None and hist["kmod-never"].rebuilds == ()
    assert hist["kmod-b"].first_broken == "k-2"
    assert hist["kmod-b"].rebuilds == ("k-2", "k-4")
    assert hist["kmod-c"].rebuilds == ("k-3",)
    assert hist["kmod-old"].rebuilds == ("k-1",) and hist["kmod-old"].first_broken == "k-1"
    assert hist["kmod-gone"].first_broken == "k-1"  # 'ghost' is in no kernel
    assert r.rebuild_total == 2 + 1 + 1 + 2
    u = r.use
    # consumed: a st b c x ghost -> changed: b c x ; stable: st ; unchanged: a ; absent: ghost
    assert (u.unique, u.changed, u.stable, u.unchanged, u.absent) == (6, 3, 1, 1, 1)
    assert u.reference == "k-4" and u.reference_total == 5
    assert r.most_consumed[0].symbol == "a" and r.most_consumed[0].consumers == 3
    assert r.crc_history("b") == (("k-1", 1), ("k-2", 2), ("k-3", 2), ("k-4", 4))
    assert r.last_changed("b") == "k-4" and r.last_changed("a") is None
    assert [s.changed for s in r.steps] == [0, 1, 1, 1]
    assert [s.vs_first for s in r.steps] == [0, 1, 2, 3]
    assert r.steps[1].broke == ("kmod-b-1-1.x86_64",)
