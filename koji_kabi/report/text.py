"""Readable tables for people and plain JSON for machines, from the result values.

Names in the text come from inputs anyone can craft: every text renderer returns its
lines escaped (:mod:`koji_kabi.report.terminal`); JSON escapes control characters itself.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from koji_kabi.analysis.delta import KernelDelta, SymbolChange
from koji_kabi.analysis.impact import Impact
from koji_kabi.analysis.series import SeriesReport
from koji_kabi.analysis.verdict import Verdict
from koji_kabi.model import TableKey
from koji_kabi.report.terminal import escape, escape_lines

_CRC_FIELDS = {"old_crc", "new_crc", "required", "provided", "crc"}


def crc(value: Optional[int]) -> str:
    return "missing" if value is None else f"0x{value:08x}"


def yes_no(value: Optional[bool]) -> str:
    return "-" if value is None else ("yes" if value else "no")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "") -> list[str]:
    """Left-aligned text columns; numbers right-aligned."""
    rows = [[escape(str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]
    numeric = [all(r[i].replace(",", "").replace("%", "").replace(".", "").lstrip("-").isdigit()
                   or r[i] == "-" for r in rows) and rows != [] for i in range(len(headers))]

    def fmt(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return (indent + "  ".join(out)).rstrip()

    return [fmt(headers)] + [fmt(r) for r in rows]


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


# ---------------------------------------------------------------- JSON

def jsonable(obj: Any) -> Any:
    """Dataclasses, keys and mappings → JSON types; CRCs as ``0x%08x`` strings."""
    if isinstance(obj, TableKey):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            out[f.name] = crc(value) if f.name in _CRC_FIELDS and value is not None else \
                jsonable(value)
        for prop in ("compatible", "breaking"):
            if hasattr(type(obj), prop) and isinstance(getattr(type(obj), prop), property):
                out[prop] = getattr(obj, prop)
        return out
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in obj]
        return sorted(items) if isinstance(obj, (set, frozenset)) else items
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(jsonable(obj), indent=2, sort_keys=False)


# ---------------------------------------------------------------- delta

def _changes(title: str, changes: Sequence[SymbolChange], with_export: bool = False) -> list[str]:
    if not changes:
        return []
    headers = ["symbol", "old CRC", "new CRC", "stable"]
    rows = [[c.symbol, crc(c.old_crc) if c.old_crc is not None else "-",
             crc(c.new_crc) if c.new_crc is not None else "-", yes_no(c.stable)]
            for c in changes]
    if with_export:
        headers += ["old export", "new export"]
        for row, c in zip(rows, changes):
            row += [_export(c.old_export), _export(c.new_export)]
    return ["", f"{title} ({len(changes)})", *table(headers, rows, "  ")]


def _export(e) -> str:
    if e is None:
        return "-"
    parts = [e.export_type or "?", e.module or "?"]
    if e.namespace:
        parts.append(f"ns={e.namespace}")
    return " ".join(parts)


def delta_text(kd: KernelDelta, summary: bool = False) -> str:
    lines = [f"kABI delta {kd.old} -> {kd.new}", ""]
    rows = []
    for d in kd.deltas:
        rows.append([str(d.key), d.old_count, d.new_count, len(d.added), len(d.removed),
                     len(d.changed), d.unchanged_count, len(d.export_type_changed),
                     len(d.moved), len(d.namespace_changed)])
    lines += table(["arch", "old", "new", "added", "removed", "changed", "unchanged",
                    "export-type", "moved", "namespace"], rows)
    for key in kd.only_old:
        lines.append(f"{key}: only in {kd.old}")
    for key in kd.only_new:
        lines.append(f"{key}: only in {kd.new}")
    if not summary:
        for d in kd.deltas:
            lines += _changes(f"{d.key}: removed", d.removed)
            lines += _changes(f"{d.key}: CRC changed", d.changed)
            lines += _changes(f"{d.key}: export type changed", d.export_type_changed, True)
            lines += _changes(f"{d.key}: namespace changed", d.namespace_changed, True)
            lines += _changes(f"{d.key}: moved to another module", d.moved, True)
            lines += _changes(f"{d.key}: added", d.added)
    lines += ["", "breaking: " + ("yes" if kd.breaking else "no")]
    return escape_lines("\n".join(lines))


# ---------------------------------------------------------------- verdicts

def verdict_line(v: Verdict) -> str:
    where = f"{v.kmod} on {v.kernel} ({v.key})"
    if v.no_table:
        return f"{where}: NO MATCH - the kernel has no {v.key} symbols"
    stable = "" if v.stable_count is None else f", {v.stable_count} on the stablelist"
    if v.compatible:
        return f"{where}: compatible ({v.checked} symbols{stable})"
    return (f"{where}: INCOMPATIBLE - {len(v.missing)} missing, {len(v.mismatched)} CRC "
            f"mismatch of {v.checked} symbols{stable}")


def verdict_text(v: Verdict) -> str:
    lines = [verdict_line(v)]
    if v.problems:
        rows = [[p.symbol + (" (ksym)" if p.via == "ksym" else ""), crc(p.required),
                 crc(p.provided), yes_no(p.stable)] for p in v.problems]
        lines += table(["symbol", "required", "provided", "stable"], rows, "  ")
    return escape_lines("\n".join(lines))


def verdicts_text(verdicts: Sequence[Verdict]) -> str:
    bad = sum(1 for v in verdicts if not v.compatible)
    body = "\n".join(verdict_text(v) for v in verdicts)
    return f"{body}\n\n{len(verdicts) - bad} compatible, {bad} incompatible"  # body: escaped


def affected_text(kd: KernelDelta, impacts: Sequence[Impact],
                  verdicts: dict[str, Verdict], kmods_total: int) -> str:
    lines = [delta_text(kd, summary=True), ""]
    for imp in impacts:
        lines.append(f"{imp.key}: {len(imp.affected)} of {kmods_total} kmods consume a "
                     "changed or removed symbol")
        rows = []
        for a in imp.affected:
            v = verdicts[a.kmod.label]
            shown = ", ".join(a.symbols[:4]) + (f" (+{len(a.symbols) - 4})"
                                                if len(a.symbols) > 4 else "")
            rows.append([a.kmod.label, shown,
                         "compatible" if v.compatible else
                         f"INCOMPATIBLE ({len(v.missing)} missing, {len(v.mismatched)} CRC)"])
        if rows:
            lines += table(["kmod", "changed symbols it consumes", f"on {kd.new}"], rows, "  ")
        lines.append("")
    return escape_lines("\n".join(lines).rstrip())


# ---------------------------------------------------------------- series

def series_text(r: SeriesReport, symbols: Sequence[str] = ()) -> str:
    u = r.use
    lines = [f"kABI series ({r.key}): {len(r.kernels)} kernels, {len(r.kmods)} kmods", ""]
    lines.append("Kernels (delta to the previous one; vs first/last = symbol CRCs not in "
                 "that kernel, like `comm -13`)")
    rows = [[s.kernel, s.symbols, s.added if i else "-", s.removed if i else "-",
             s.changed if i else "-", s.vs_first, s.vs_last, len(s.broke)]
            for i, s in enumerate(r.steps)]
    lines += table(["kernel", "symbols", "added", "removed", "changed", "vs first",
                    "vs last", "kmods to rebuild"], rows, "  ")
    lines += ["", "Kmods (first kernel that breaks each; rebuilds needed over the series)"]
    rows = []
    for h in r.kmods:
        shown = ", ".join(h.changed_symbols[:3]) + (
            f" (+{len(h.changed_symbols) - 3})" if len(h.changed_symbols) > 3 else "")
        rows.append([h.kmod, h.first_broken or "-", len(h.rebuilds),
                     ", ".join(h.rebuilds) or "-", shown or "-"])
    lines += table(["kmod", "first broken by", "rebuilds", "at", "changed symbols consumed"],
                   rows, "  ")
    ok = sum(1 for h in r.kmods if not h.rebuilds)
    lines.append(f"  {ok} of {len(r.kmods)} kmods need no rebuild; {r.rebuild_total} rebuilds "
                 "in all")
    lines += ["", f"Symbols consumed (% of the {u.reference_total} symbols of {u.reference})"]
    rows = [["unique", u.unique, pct(u.unique, u.reference_total)],
            ["changed", u.changed, pct(u.changed, u.reference_total)],
            ["stable", "-" if u.stable is None else u.stable,
             "no --stablelist" if u.stable is None else pct(u.stable, u.reference_total)],
            ["unchanged", u.unchanged, pct(u.unchanged, u.reference_total)]]
    if u.absent:
        rows.append(["absent", u.absent, pct(u.absent, u.reference_total)])
    lines += table(["", "count", "share"], rows, "  ")
    lines += ["", "Most consumed symbols"]
    rows = [[c.symbol, c.consumers, yes_no(c.stable),
             c.changed_at[-1] if c.changed_at else "-"] for c in r.most_consumed]
    lines += table(["symbol", "kmods", "stable", "last changed"], rows, "  ")
    for symbol in symbols:
        lines += ["", f"CRC history of {symbol}"]
        rows = [[k, crc(c)] for k, c in r.crc_history(symbol)]
        lines += table(["kernel", "crc"], rows, "  ")
        last = r.last_changed(symbol)
        lines.append(f"  last changed: {last or 'not within this series'}")
    return escape_lines("\n".join(lines))


# ---------------------------------------------------------------- kabiCheck report

def report_text(report: dict) -> str:
    """The human report a ``kabiCheck`` task uploads next to ``kabi-report.json``."""
    s = report["summary"]
    lines = [f"kABI check of {report['kernel']} (tag {report['kernel_tag']})",
             f"previous kernel: {report['previous'] or 'none found'}",
             f"kmod tags: {', '.join(report['kmod_tags'])}",
             f"dry run: {'yes' if report['dry_run'] else 'no'}", ""]
    if report.get("error"):
        lines[-1:] = [f"NOT FINISHED: {report['error']}", ""]
    rows = [[key, c["added"], c["removed"], c["changed"]] for key, c in s["delta"].items()]
    if rows:
        lines += ["Delta to the previous kernel"]
        lines += table(["arch", "added", "removed", "changed"], rows, "  ")
        lines.append("")
    lines.append(f"Kmod builds: {s['kmod_builds']} in the tags, {s['compatible']} compatible, "
                 f"{s['incompatible']} incompatible")
    rows = []
    for arch in report["arches"]:
        for k in arch["verdicts"]:
            if k["compatible"]:
                continue
            problems = [f"{m} missing" for m in k["missing"]] + [
                f"{m['symbol']}{' (stable)' if m.get('stable') else ''} "
                f"{m['required']}!={m['provided']}" for m in k["mismatched"]]
            if k["no_table"]:
                problems = [f"kernel has no {k['key']} symbols"]
            shown = ", ".join(problems[:3]) + (f" (+{len(problems) - 3})"
                                               if len(problems) > 3 else "")
            rows.append([k["rpm"], k["key"], shown])
    if rows:
        lines += table(["kmod", "arch", "why"], rows, "  ")
    lines += ["", "Rebuilds"]
    rows = [[r["package"], r["nvr"], r["mode"], r["target"], r["status"], r["detail"]]
            for r in report["rebuilds"]]
    rows += [[k["package"], k["nvr"], "-", "-", "skipped", k["reason"]]
             for k in report["skipped"]]
    lines += table(["package", "build", "mode", "target", "status", "detail"], rows, "  ") \
        if rows else ["  none needed"]
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return escape_lines("\n".join(lines))


def rebuild_outcomes_text(kernel: str, rows: Sequence[dict], weburl: Optional[str] = None
                          ) -> str:
    """The rebuilds made for one kernel and how each ended (``kabi.rebuilds`` rows)."""
    lines = [f"Rebuilds for {kernel}"]
    out = []
    for r in rows:
        if r.get("outcome"):
            verdict, detail = r["outcome"], r.get("detail") or ""
        elif r.get("judge_task_id"):
            verdict, detail = "judging", f"kabiJudge task {r['judge_task_id']}"
        else:
            verdict, detail = r["state"].lower(), "not finished"
        if verdict == "build failed" and weburl:
            detail += f" {weburl}/taskinfo?taskID={r['task_id']}"
        out.append([r["package"], r["nvr"], r["strategy"], r["task_id"],
                    r.get("result_build") or "-", verdict, detail])
    lines += table(["package", "rebuild of", "strategy", "task", "new build", "outcome",
                    "detail"], out, "  ") if out else ["  none"]
    return "\n".join(lines)
