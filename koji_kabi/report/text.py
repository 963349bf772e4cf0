"""Readable tables for people, from the result values (JSON: :mod:`koji_kabi.report.jsondoc`).

Names in the text come from inputs anyone can craft: every text renderer returns its
lines escaped (:mod:`koji_kabi.report.terminal`); JSON escapes control characters itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

from koji_kabi.analysis.delta import KernelDelta, SymbolChange
from koji_kabi.analysis.impact import Impact
from koji_kabi.analysis.series import SeriesReport
from koji_kabi.analysis.verdict import Verdict
from koji_kabi.report.jsondoc import crc as json_crc
from koji_kabi.report.terminal import escape, escape_lines


def crc(value: Optional[int]) -> str:
    """A CRC as JSON spells it, or ``missing``."""
    return json_crc(value) or "missing"


def yes_no(value: Optional[bool]) -> str:
    return "-" if value is None else ("yes" if value else "no")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "",
          quiet: bool = False) -> list[str]:
    """Left-aligned text columns; numbers right-aligned; ``quiet``: no header line (as
    koji's own ``--quiet``), for scripts that read the rows."""
    rows = [[escape(str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]
    numeric = [all(r[i].replace(",", "").replace("%", "").replace(".", "").lstrip("-").isdigit()
                   or r[i] == "-" for r in rows) and rows != [] for i in range(len(headers))]

    def fmt(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return (indent + "  ".join(out)).rstrip()

    return ([] if quiet else [fmt(headers)]) + [fmt(r) for r in rows]


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


# ---------------------------------------------------------------- delta

def _changes(title: str, changes: Sequence[SymbolChange], with_export: bool = False,
             quiet: bool = False) -> list[str]:
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
    if quiet:
        return table(headers, rows, quiet=True)
    return ["", f"{title} ({len(changes)})", *table(headers, rows, "  ")]


def _export(e) -> str:
    if e is None:
        return "-"
    parts = [e.export_type or "?", e.module or "?"]
    if e.namespace:
        parts.append(f"ns={e.namespace}")
    return " ".join(parts)


def delta_text(kd: KernelDelta, summary: bool = False, quiet: bool = False) -> str:
    """The per-arch counts, then (unless ``summary``) the symbols of each kind of change;
    ``quiet``: rows only (the counts only with ``summary``, else the symbol rows)."""
    lines = [] if quiet else [f"kABI delta {kd.old} -> {kd.new}", ""]
    rows = []
    for d in kd.deltas:
        rows.append([str(d.key), d.old_count, d.new_count, len(d.added), len(d.removed),
                     len(d.changed), d.unchanged_count, len(d.export_type_changed),
                     len(d.moved), len(d.namespace_changed)])
    if not (quiet and not summary):
        lines += table(["arch", "old", "new", "added", "removed", "changed", "unchanged",
                        "export-type", "moved", "namespace"], rows, quiet=quiet)
    for key in () if quiet else kd.only_old:
        lines.append(f"{key}: only in {kd.old}")
    for key in () if quiet else kd.only_new:
        lines.append(f"{key}: only in {kd.new}")
    if not summary:
        for d in kd.deltas:
            lines += _changes(f"{d.key}: removed", d.removed, quiet=quiet)
            lines += _changes(f"{d.key}: CRC changed", d.changed, quiet=quiet)
            lines += _changes(f"{d.key}: export type changed", d.export_type_changed, True,
                              quiet)
            lines += _changes(f"{d.key}: namespace changed", d.namespace_changed, True, quiet)
            lines += _changes(f"{d.key}: moved to another module", d.moved, True, quiet)
            lines += _changes(f"{d.key}: added", d.added, quiet=quiet)
    if not quiet:
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


def verdict_text(v: Verdict, quiet: bool = False) -> str:
    lines = [verdict_line(v)]
    if v.problems:
        rows = [[p.symbol + (" (ksym)" if p.via == "ksym" else ""), crc(p.required),
                 crc(p.provided), yes_no(p.stable)] for p in v.problems]
        lines += table(["symbol", "required", "provided", "stable"], rows, "  ", quiet)
    return escape_lines("\n".join(lines))


def verdicts_text(verdicts: Sequence[Verdict], quiet: bool = False) -> str:
    """Each kmod's verdict line and its problems; then the counts (not with ``quiet``)."""
    bad = sum(1 for v in verdicts if not v.compatible)
    body = "\n".join(verdict_text(v, quiet) for v in verdicts)  # escaped
    return body if quiet else f"{body}\n\n{len(verdicts) - bad} compatible, {bad} incompatible"


def affected_text(kd: KernelDelta, impacts: Sequence[Impact],
                  verdicts: dict[str, Verdict], kmods_total: int, quiet: bool = False) -> str:
    """The delta's counts, then per arch the kmods consuming what it broke; ``quiet``:
    only those kmod rows."""
    lines = [] if quiet else [delta_text(kd, summary=True), ""]
    for imp in impacts:
        if not quiet:
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
            lines += table(["kmod", "changed symbols it consumes", f"on {kd.new}"], rows,
                           "" if quiet else "  ", quiet)
        if not quiet:
            lines.append("")
    return escape_lines("\n".join(lines).rstrip())


# ---------------------------------------------------------------- series

def series_text(r: SeriesReport, symbols: Sequence[str] = (), quiet: bool = False) -> str:
    """The series' sections; ``quiet``: their table rows only, no titles or headers."""
    u = r.use
    lines: list[str] = []

    def title(*text: str) -> None:
        if not quiet:
            lines.extend(text)

    title(f"kABI series ({r.key}): {len(r.kernels)} kernels, {len(r.kmods)} kmods", "")
    title("Kernels (delta to the previous one; vs first/last = symbol CRCs not in "
                 "that kernel, like `comm -13`)")
    rows = [[s.kernel, s.symbols, s.added if i else "-", s.removed if i else "-",
             s.changed if i else "-", s.vs_first, s.vs_last, len(s.broke)]
            for i, s in enumerate(r.steps)]
    lines += table(["kernel", "symbols", "added", "removed", "changed", "vs first",
                    "vs last", "kmods to rebuild"], rows, "  ", quiet)
    title("", "Kmods (first kernel that breaks each; rebuilds needed over the series)")
    rows = []
    for h in r.kmods:
        shown = ", ".join(h.changed_symbols[:3]) + (
            f" (+{len(h.changed_symbols) - 3})" if len(h.changed_symbols) > 3 else "")
        rows.append([h.kmod, h.first_broken or "-", len(h.rebuilds),
                     ", ".join(h.rebuilds) or "-", shown or "-"])
    lines += table(["kmod", "first broken by", "rebuilds", "at", "changed symbols consumed"],
                   rows, "  ", quiet)
    ok = sum(1 for h in r.kmods if not h.rebuilds)
    title(f"  {ok} of {len(r.kmods)} kmods need no rebuild; {r.rebuild_total} rebuilds in all",
          "", f"Symbols consumed (% of the {u.reference_total} symbols of {u.reference})")
    rows = [["unique", u.unique, pct(u.unique, u.reference_total)],
            ["changed", u.changed, pct(u.changed, u.reference_total)],
            ["stable", "-" if u.stable is None else u.stable,
             "no --stablelist" if u.stable is None else pct(u.stable, u.reference_total)],
            ["unchanged", u.unchanged, pct(u.unchanged, u.reference_total)]]
    if u.absent:
        rows.append(["absent", u.absent, pct(u.absent, u.reference_total)])
    lines += table(["", "count", "share"], rows, "  ", quiet)
    title("", "Most consumed symbols")
    rows = [[c.symbol, c.consumers, yes_no(c.stable),
             c.changed_at[-1] if c.changed_at else "-"] for c in r.most_consumed]
    lines += table(["symbol", "kmods", "stable", "last changed"], rows, "  ", quiet)
    for symbol in symbols:
        title("", f"CRC history of {symbol}")
        rows = [[k, crc(c)] for k, c in r.crc_history(symbol)]
        lines += table(["kernel", "crc"], rows, "  ", quiet)
        last = r.last_changed(symbol)
        title(f"  last changed: {last or 'not within this series'}")
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
            problems = [f"{m['symbol']} missing" for m in k["missing"]] + [
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


def rebuild_outcomes_text(kernel: str, rows: Sequence[dict], weburl: Optional[str] = None,
                          quiet: bool = False) -> str:
    """The rebuilds made for one kernel and how each ended (``kabi.rebuilds`` rows)."""
    lines = [] if quiet else [f"Rebuilds for {kernel}"]
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
                    "detail"], out, "  ", quiet) if out else ([] if quiet else ["  none"])
    return "\n".join(lines)
