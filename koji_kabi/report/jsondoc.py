"""The one JSON form of every result, described by ``result.schema.json`` beside this file.

``koji-kabi --json``, ``koji kabi-check --json``, every ``kabi.*`` hub call and the
``kabiCheck`` task's ``kabi-report.json`` emit documents made here: an object with
``schema`` (the version of that file), ``kind`` (what the document answers) and the
value's fields.  CRCs are ``0x%08x`` strings (XML-RPC has no unsigned 32-bit integer),
absent values ``null``.  One serialiser per value type, registered below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import singledispatch
from pathlib import Path
from typing import Any, Optional

from koji_kabi.analysis.delta import Delta, KernelDelta, SymbolChange
from koji_kabi.analysis.impact import Affected, Impact
from koji_kabi.analysis.series import (
    ConsumedSymbol,
    KmodHistory,
    SeriesReport,
    Step,
    SymbolUse,
)
from koji_kabi.analysis.verdict import SymbolProblem, Verdict
from koji_kabi.model import Export, TableKey
from koji_kabi.results import BuildVerdict, KernelCheck, KmodCheck, RebuildDecision

#: Bumped when a field changes meaning or goes away (new fields do not bump it).
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("result.schema.json")
KINDS = ("delta", "verdicts", "affected", "series", "kmod-check", "kernel-check",
         "kabi-report")


def crc(value: Optional[int]) -> Optional[str]:
    return None if value is None else f"0x{value:08x}"


def document(kind: str, value: Any = None, **fields: Any) -> dict:
    """A top-level document: ``{"schema", "kind", ...}`` of a value and/or fields."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}")
    out = {"schema": SCHEMA_VERSION, "kind": kind}
    if value is not None:
        out.update(to_json(value))
    out.update({k: to_json(v) for k, v in fields.items()})
    return out


def dumps(doc: dict) -> str:
    """One line, by the C encoder (a report of 100,000 rows is written in milliseconds)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def schema() -> dict:
    with open(SCHEMA_FILE, encoding="utf-8") as f:
        return json.load(f)


@singledispatch
def to_json(value: Any) -> Any:
    """The JSON form of a result value (JSON types pass through)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):  # dicts and the values' read-only mappings
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")


@to_json.register
def _key(value: TableKey) -> str:
    return str(value)


@to_json.register
def _export(value: Export) -> dict:
    return {"module": value.module, "export_type": value.export_type,
            "namespace": value.namespace}


@to_json.register
def _change(c: SymbolChange) -> dict:
    return {"symbol": c.symbol, "old": crc(c.old_crc), "new": crc(c.new_crc),
            "stable": c.stable,
            "old_export": None if c.old_export is None else _export(c.old_export),
            "new_export": None if c.new_export is None else _export(c.new_export)}


def _changes(changes: tuple[SymbolChange, ...]) -> list[dict]:
    return [_change(c) for c in changes]


@to_json.register
def _delta(d: Delta) -> dict:
    return {"key": str(d.key), "old": d.old, "new": d.new, "old_count": d.old_count,
            "new_count": d.new_count, "breaking": d.breaking,
            "added": _changes(d.added), "removed": _changes(d.removed),
            "changed": _changes(d.changed),
            "export_type_changed": _changes(d.export_type_changed),
            "gpl_restricted": [c.symbol for c in d.gpl_restricted],
            "moved": _changes(d.moved), "namespace_changed": _changes(d.namespace_changed)}


@to_json.register
def _kernel_delta(kd: KernelDelta) -> dict:
    return {"old": kd.old, "new": kd.new, "breaking": kd.breaking,
            "deltas": [_delta(d) for d in kd.deltas],
            "only_old": [str(k) for k in kd.only_old], "only_new": [str(k) for k in kd.only_new]}


@to_json.register
def _problem(p: SymbolProblem) -> dict:
    return {"symbol": p.symbol, "required": crc(p.required), "provided": crc(p.provided),
            "stable": p.stable, "via": p.via}


@to_json.register
def _verdict(v: Verdict) -> dict:
    return {"rpm": v.kmod, "kernel": v.kernel, "key": str(v.key),
            "compatible": v.compatible, "no_table": v.no_table, "checked": v.checked,
            "stable": v.stable_count,
            "missing": [_problem(p) for p in v.missing],
            "mismatched": [_problem(p) for p in v.mismatched]}


@to_json.register
def _build_verdict(b: BuildVerdict) -> dict:
    return {"build_id": b.build_id, "nvr": b.nvr, "package": b.package, "tag": b.tag,
            "fingerprint": b.fingerprint, **_verdict(b.verdict)}


@to_json.register
def _kmod_check(c: KmodCheck) -> dict:
    return {"build": c.build, "kernel": c.kernel, "compatible": c.compatible,
            "verdicts": [_build_verdict(v) for v in c.verdicts]}


@to_json.register
def _kernel_check(c: KernelCheck) -> dict:
    return {"build": c.kernel, "kernel": c.kernel, "previous": c.previous,
            "kmod_tags": list(c.kmod_tags),
            "symbols": {str(k): n for k, n in c.symbols.items()},
            "stablelist": c.stablelist, "compatible": c.compatible,
            "delta": None if c.delta is None else _kernel_delta(c.delta),
            "verdicts": [_build_verdict(v) for v in c.verdicts],
            "unreadable": list(c.unreadable)}


@to_json.register
def _decision(d: RebuildDecision) -> dict:
    r = d.request
    return {"package": r.package, "nvr": r.nvr, "mode": r.mode, "target": r.target,
            "source": r.source, "strategy": r.strategy,
            "macro": "=".join(r.macro) if r.macro else None,
            "status": d.status, "detail": d.detail, "task_id": d.task_id,
            "broken_symbols": list(r.broken_symbols)}


@to_json.register
def _impact(i: Impact) -> dict:
    return {"key": str(i.key), "consumers_indexed": i.consumers_indexed,
            "affected": [_affected(a) for a in i.affected]}


@to_json.register
def _affected(a: Affected) -> dict:
    return {"rpm": a.kmod.label, "nvr": a.kmod.nvr, "symbols": list(a.symbols)}


@to_json.register
def _series(r: SeriesReport) -> dict:
    return {"key": str(r.key), "kernels": list(r.kernels),
            "steps": [_step(s) for s in r.steps], "kmods": [_history(h) for h in r.kmods],
            "use": _use(r.use), "rebuild_total": r.rebuild_total,
            "most_consumed": [_consumed(c) for c in r.most_consumed],
            "changed_consumed": [_consumed(c) for c in r.changed_consumed]}


@to_json.register
def _step(s: Step) -> dict:
    return {"kernel": s.kernel, "symbols": s.symbols, "added": s.added,
            "removed": s.removed, "changed": s.changed, "vs_first": s.vs_first,
            "vs_last": s.vs_last, "broke": list(s.broke)}


@to_json.register
def _history(h: KmodHistory) -> dict:
    return {"rpm": h.kmod, "verdicts": [_verdict(v) for v in h.verdicts],
            "first_broken": h.first_broken, "rebuilds": list(h.rebuilds),
            "changed_symbols": list(h.changed_symbols)}


@to_json.register
def _use(u: SymbolUse) -> dict:
    return {"reference": u.reference, "reference_total": u.reference_total,
            "unique": u.unique, "changed": u.changed, "absent": u.absent,
            "stable": u.stable, "unchanged": u.unchanged}


@to_json.register
def _consumed(c: ConsumedSymbol) -> dict:
    return {"symbol": c.symbol, "consumers": c.consumers, "stable": c.stable,
            "changed_at": list(c.changed_at)}
