"""The one JSON form of the results: every kind validates, and the schema is strict enough
that a wrong field is caught (so the producers' tests that validate mean something)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from koji_kabi import Kernel, KmodRequirements, SymbolTable, TableKey, delta_kernels
from koji_kabi.analysis.impact import impact
from koji_kabi.analysis.rebuild import RebuildRequest
from koji_kabi.analysis.series import series
from koji_kabi.analysis.verdict import verdicts
from koji_kabi.model import Export, Stablelist
from koji_kabi.report.jsondoc import KINDS, SCHEMA_VERSION, document, dumps, schema, to_json
from koji_kabi.results import BuildVerdict, KernelCheck, KmodCheck, RebuildDecision
from tests.support.results import valid

X86, DEBUG = TableKey("x86_64"), TableKey("x86_64", "debug")
CRCS = st.integers(0, 2**32 - 1)


def kernel(nvr: str, crcs: dict[str, int], exports: dict | None = None) -> Kernel:
    return Kernel(nvr, {X86: SymbolTable(X86, crcs, nvr, exports or {}),
                        DEBUG: SymbolTable(DEBUG, crcs, nvr)})


def kmod(name: str, requires: dict[str, int], **kw) -> KmodRequirements:
    return KmodRequirements(f"{name}-1-1.el9", name, X86, requires, name, **kw)


K1 = kernel("kernel-1-1", {"a": 1, "b": 2, "c": 3},
            {"a": Export("vmlinux", "EXPORT_SYMBOL"), "b": Export("vmlinux", "EXPORT_SYMBOL")})
K2 = kernel("kernel-1-2", {"a": 1, "b": 9, "d": 4},
            {"a": Export("vmlinux", "EXPORT_SYMBOL_GPL"), "b": Export("m", "EXPORT_SYMBOL")})
KMODS = [kmod("kmod-ok", {"a": 1}), kmod("kmod-crc", {"b": 2}),
         kmod("kmod-gone", {"c": 3}, ksym_requires={"x": 5}),
         KmodRequirements("kmod-arm-1-1", "kmod-arm", TableKey("aarch64"), {"a": 1}, "arm")]
LISTS = {"x86_64": Stablelist("x86_64", frozenset({"b"}), "list")}


def build_verdicts(kernel_: Kernel) -> tuple[BuildVerdict, ...]:
    return tuple(BuildVerdict(i, m.nvr, m.name, "kmods", v, "f" * 64)
                 for i, (m, v) in enumerate(zip(KMODS, verdicts(KMODS, kernel_, LISTS)), 1))


def every_kind() -> dict[str, dict]:
    kd = delta_kernels(K1, K2, LISTS)
    request = RebuildRequest(7, "kmod-crc-1-1.el9", "kmod-crc", "git+https://x/y#1", "t",
                             "scratch", "kernel-1-2", "f" * 64, ("b",), "macro",
                             ("kversion", "1-2"))
    check = KernelCheck("kernel-1-2", "kernel-1-1", ("kmods",), {X86: 3, DEBUG: 3}, kd,
                        build_verdicts(K2), ("bad.rpm: truncated RPM",), True)
    found = verdicts(KMODS, K2, LISTS)
    return {
        "delta": document("delta", kd),
        "verdicts": document("verdicts", kernel="kernel-1-2", compatible=False,
                             verdicts=found),
        "affected": document("affected", delta=kd, impact=impact(kd, KMODS, K2),
                             verdicts=found, kmods=len(KMODS)),
        "series": document("series", reports=[
            dict(to_json(r), crc_history={"b": [["kernel-1-1", "0x00000002"],
                                                ["kernel-1-2", "0x00000009"]]})
            for r in series([K1, K2], KMODS)], not_analysed=[]),
        "kmod-check": document("kmod-check", KmodCheck("kmod-crc-1-1.el9", "kernel-1-2",
                                                       build_verdicts(K2)[1:2])),
        "kernel-check": document("kernel-check", check, rebuilds=[]),
        "kabi-report": document(
            "kabi-report", kernel="kernel-1-2", kernel_build_id=2, previous="kernel-1-1",
            kernel_tag="el9", kmod_tags=["kmods"], dry_run=True,
            arches=[dict(to_json(check), arch="x86_64")],
            summary={"kmod_builds": 4, "kmod_builds_checked": 4, "compatible": 2,
                     "incompatible": 2, "rebuilds_submitted": 0, "rebuilds": {"dry-run": 1},
                     "broken": [], "rebuild_task_ids": [], "delta": {}},
            rebuilds=[RebuildDecision(request, "dry-run", "would be submitted")],
            skipped=[], notes=[], error=None, seconds=0.5),
    }


def test_the_schema_is_a_json_schema_of_every_kind() -> None:
    Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["schema"]["const"] == SCHEMA_VERSION
    assert set(schema()["properties"]["kind"]["enum"]) == set(KINDS)
    docs = every_kind()
    assert set(docs) == set(KINDS)
    for kind, doc in docs.items():
        assert valid(json.loads(dumps(doc)), kind) == doc  # JSON types only, round trip


def test_the_values_are_in_the_document() -> None:
    doc = every_kind()["kernel-check"]
    x86 = {d["key"]: d for d in doc["delta"]["deltas"]}["x86_64"]
    assert [(c["symbol"], c["old"], c["new"], c["stable"]) for c in x86["changed"]] == [
        ("b", "0x00000002", "0x00000009", True)]
    assert [(c["symbol"], c["old"], c["new"]) for c in x86["removed"]] == [
        ("c", "0x00000003", None)]
    assert x86["gpl_restricted"] == ["a"] and [c["symbol"] for c in x86["moved"]] == ["b"]
    assert x86["changed"][0]["new_export"] == {"module": "m", "export_type": "EXPORT_SYMBOL",
                                               "namespace": ""}
    rows = {v["package"]: v for v in doc["verdicts"]}
    assert rows["kmod-ok"]["compatible"] and rows["kmod-ok"]["stable"] == 0
    assert rows["kmod-crc"]["mismatched"] == [{"symbol": "b", "required": "0x00000002",
                                               "provided": "0x00000009", "stable": True,
                                               "via": "kernel"}]
    assert [(p["symbol"], p["provided"], p["via"]) for p in rows["kmod-gone"]["missing"]] == [
        ("c", None, "kernel"), ("x", None, "ksym")]
    assert rows["kmod-arm"]["no_table"] and not rows["kmod-arm"]["compatible"]
    assert doc["symbols"] == {"x86_64": 3, "x86_64+debug": 3} and doc["compatible"] is False
    report = every_kind()["kabi-report"]
    assert report["rebuilds"][0]["macro"] == "kversion=1-2"


@pytest.mark.parametrize("kind,path,value", [
    ("delta", ["deltas", 0, "changed", 0, "old"], 2),  # a CRC as a number
    ("delta", ["deltas", 0, "changed", 0, "old"], "0x2"),  # not 8 hex digits
    ("delta", ["deltas", 0, "breaking"], "yes"),
    ("kernel-check", ["verdicts", 0, "build_id"], "1"),
    ("kernel-check", ["verdicts", 1, "mismatched", 0, "via"], "magic"),
    ("kernel-check", ["previous"], 3),
    ("kmod-check", ["verdicts", 0, "missing"], ["c"]),  # the old shape: symbol names
    ("kabi-report", ["rebuilds", 0, "status"], "done"),
    ("verdicts", ["verdicts", 0, "rpm"], None),
    ("series", ["reports", 0, "crc_history", "b", 0, 1], 2),
])
def test_a_wrong_field_is_caught(kind: str, path: list, value: object) -> None:
    doc = copy.deepcopy(every_kind()[kind])
    where = doc
    for step in path[:-1]:
        where = where[step]
    where[path[-1]] = value
    with pytest.raises(AssertionError):
        valid(doc)


@pytest.mark.parametrize("field", ["schema", "kind", "verdicts", "delta", "unreadable"])
def test_a_missing_field_is_caught(field: str) -> None:
    doc = dict(every_kind()["kernel-check"])
    del doc[field]
    with pytest.raises(AssertionError):
        valid(doc)


def test_unknown_kinds_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown document kind"):
        document("verdict")
    with pytest.raises(TypeError, match="no JSON form for object"):
        to_json(object())
    assert dumps({"s": "é\x1b"}) == '{"s":"é\\u001b"}'  # one line; control chars escaped


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), CRCS, max_size=6),
       st.dictionaries(st.sampled_from("abcdef"), CRCS, max_size=6))
def test_any_delta_and_verdict_validate_and_keep_the_crcs(old: dict, new: dict) -> None:
    k_old, k_new = kernel("k-1-1", old), kernel("k-1-2", new)
    doc = valid(document("delta", delta_kernels(k_old, k_new)), "delta")
    x86 = doc["deltas"][0]
    assert {c["symbol"]: int(c["new"], 16) for c in x86["changed"]} == {
        s: new[s] for s in old.keys() & new.keys() if old[s] != new[s]}
    found = verdicts([kmod("kmod-x", old)], k_new)
    v = valid(document("verdicts", kernel="k-1-2", compatible=found[0].compatible,
                       verdicts=found), "verdicts")["verdicts"][0]
    assert {p["symbol"]: int(p["required"], 16) for p in v["missing"] + v["mismatched"]} == {
        s: c for s, c in old.items() if new.get(s) != c}
