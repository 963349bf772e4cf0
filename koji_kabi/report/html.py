"""The reports as one self-contained HTML file: charts and tables, no network.

Nothing is loaded at view time (no script at all, and a Content-Security-Policy that
forbids fetching anything), so the file opens offline, from kojiweb's task page or a
mail.  The charts are small inline SVG built with ElementTree, which escapes every string;
text outside SVG goes through :func:`_e`.  Each chart has its numbers in a table beside
it, readable without the picture.  Hand-made SVG is smaller and simpler here than a
charting library: four chart shapes (stacked bars, one share bar, horizontal bars, a
timeline strip), and a library would add its weight to every hub and builder.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from koji_kabi.analysis.delta import KernelDelta
from koji_kabi.analysis.impact import Impact
from koji_kabi.analysis.series import SeriesReport
from koji_kabi.analysis.verdict import Verdict
from koji_kabi.errors import KabiError
from koji_kabi.report.terminal import escape
from koji_kabi.report.text import crc, pct, yes_no

COLORS = {"added": "#2e7d32", "removed": "#c62828", "changed": "#ef6c00",
          "compatible": "#43a047", "broken": "#e53935", "rebuilt": "#1e88e5",
          "stable": "#1e88e5", "unchanged": "#90a4ae", "absent": "#6d4c41",
          "incompatible": "#e53935", "bar": "#5c6bc0",
          # how rebuilds ended (koji_kabi.analysis.outcome), and the two states before an end
          "fixed": "#43a047", "still broken": "#e53935", "build failed": "#8e24aa",
          "canceled": "#90a4ae", "judging": "#fdd835", "not finished": "#cfd8dc"}
CSS = """
body{font:14px/1.4 sans-serif;margin:1.5em;color:#212121;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right}code{font-size:.95em}
td.compatible{background:#c8e6c9}td.broken{background:#ffcdd2}td.rebuilt{background:#bbdefb}
td.first{outline:3px solid #b71c1c;outline-offset:-3px;font-weight:bold}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;
vertical-align:middle}svg.chart{display:block;margin:.5em 0}
.wrap{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    """A value from the inputs as HTML text: control characters spelled, markup escaped."""
    return html.escape(escape(str(value)), quote=True)


def _svg(width: int, height: int, name: str, title: str) -> ET.Element:
    svg = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "class": "chart",
                             "data-chart": name, "width": str(width),
                             "height": str(height), "viewBox": f"0 0 {width} {height}",
                             "role": "img"})
    ET.SubElement(svg, "title").text = escape(title)
    return svg


def _text(parent: ET.Element, x: float, y: float, text: str, **attrs: str) -> None:
    el = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}",
                                        "font-size": "11", **attrs})
    el.text = escape(text)


def _rect(parent: ET.Element, x: float, y: float, w: float, h: float, color: str,
          tip: str) -> None:
    r = ET.SubElement(parent, "rect", {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{w:.1f}",
                                       "height": f"{h:.1f}", "fill": color})
    ET.SubElement(r, "title").text = escape(tip)


def _out(svg: ET.Element) -> str:
    return ET.tostring(svg, encoding="unicode")


def _legend(names: Iterable[str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span style="background:{COLORS[n]}"></span>{_e(n)}' for n in names) + "</div>"


def stacked_bars(name: str, title: str, categories: Sequence[str],
                 series: Mapping[str, Sequence[int]]) -> str:
    """Vertical stacked bars, one per category (kernel or arch), one colour per series."""
    width = max(320, 70 * len(categories) + 60)
    height, top, bottom, left = 260, 20, 90, 50
    svg = _svg(width, height, name, title)
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    peak = max(totals + [1])
    plot = height - top - bottom
    step = (width - left - 10) / max(len(categories), 1)
    ET.SubElement(svg, "line", {"x1": str(left), "y1": str(height - bottom), "x2": str(width),
                                "y2": str(height - bottom), "stroke": "#999"})
    _text(svg, 4, top + 4, str(peak))
    _text(svg, 4, height - bottom, "0")
    for i, category in enumerate(categories):
        x, y = left + i * step + step * 0.15, height - bottom
        for label, values in series.items():
            h = plot * values[i] / peak
            if h:
                _rect(svg, x, y - h, step * 0.7, h, COLORS[label],
                      f"{category}: {values[i]} {label}")
            y -= h
        _text(svg, x + step * 0.35, height - bottom - plot * totals[i] / peak - 4,
              str(totals[i]), **{"text-anchor": "middle"})
        short = category if len(category) <= 24 else "…" + category[-23:]
        _text(svg, x + step * 0.35, height - bottom + 12, short, **{
            "transform": f"rotate(30 {x + step * 0.35:.1f} {height - bottom + 12})"})
    return _out(svg) + _legend(series)


def share_bar(name: str, title: str, parts: Sequence[tuple[str, int]]) -> str:
    """One horizontal bar split by share (stable / unchanged / changed ...)."""
    width, height = 640, 40
    svg = _svg(width, height, name, title)
    total = sum(n for _label, n in parts) or 1
    x = 0.0
    for label, n in parts:
        w = width * n / total
        if w:
            _rect(svg, x, 0, w, 28, COLORS[label], f"{label}: {n} ({pct(n, total)})")
        x += w
    return _out(svg) + _legend(label for label, _n in parts)


def hbars(name: str, title: str, rows: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars with their labels (the most-consumed symbols)."""
    label_w, bar_w, row_h = 260, 360, 18
    svg = _svg(label_w + bar_w + 50, row_h * len(rows) + 6, name, title)
    peak = max([n for _l, n in rows] + [1])
    for i, (label, n) in enumerate(rows):
        y = i * row_h + 3
        _text(svg, 0, y + 12, label if len(label) <= 40 else label[:39] + "…")
        _rect(svg, label_w, y, bar_w * n / peak, row_h - 4, COLORS["bar"], f"{label}: {n}")
        _text(svg, label_w + bar_w * n / peak + 4, y + 12, str(n))
    return _out(svg)


def timeline(name: str, title: str, history: Sequence[tuple[str, Optional[int]]]) -> str:
    """A symbol's CRC per kernel: one box per kernel, a new colour at each change."""
    box = 48
    svg = _svg(box * len(history) + 4, 64, name, title)
    palette = ("#5c6bc0", "#26a69a", "#ffa726", "#ab47bc", "#8d6e63", "#ec407a")
    seen: dict[Optional[int], int] = {}
    for i, (kernel, value) in enumerate(history):
        color = "#eeeeee" if value is None else palette[seen.setdefault(
            value, len(seen)) % len(palette)]
        _rect(svg, i * box + 2, 2, box - 4, 30, color, f"{kernel}: {crc(value)}")
        _text(svg, i * box + 4, 48, str(i + 1))
    return _out(svg)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], row_class: str = "",
           numeric: Sequence[int] = ()) -> str:
    out = ["<table>" + ("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"
                        if any(headers) else "")]
    cls = f' class="{row_class}"' if row_class else ""
    for row in rows:
        out.append(f"<tr{cls}>" + "".join(
            f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)) + "</tr>")
    return "\n".join(out) + "</table>"


def write_html(path: str, text: str) -> None:
    """``--html FILE``: write one report; a file that cannot be written is one error."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise KabiError(path, f"cannot write the HTML report: {exc.strerror or exc}"
                        ) from None


def page(title: str, body: Sequence[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>{_e(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def _verdict_word(compatible: bool) -> str:
    return "compatible" if compatible else "INCOMPATIBLE"


def _problems(v: Verdict) -> str:
    """The symbols that break a kmod: required vs provided CRC, stablelist flag."""
    if v.no_table:
        return f"<p>the kernel has no {_e(v.key)} symbols</p>"
    rows = [(p.symbol, crc(p.required), crc(p.provided) if p.provided is not None
             else "missing", yes_no(p.stable), p.via)
            for p in v.problems]
    return _table(["symbol", "required CRC", "provided CRC", "stablelist", "from"], rows,
                  "problem")


def _broken_details(verdicts: Iterable[Verdict]) -> list[str]:
    out = []
    for v in verdicts:
        if not v.compatible:
            out.append(f"<h3>{_e(v.kmod)} on {_e(v.kernel)} ({_e(v.key)})</h3>")
            out.append(_problems(v))
    return ["<h2>Broken kmods: the symbols</h2>", *out] if out else []


def _verdict_table(verdicts: Sequence[Verdict]) -> str:
    rows = [(v.kmod, v.key, _verdict_word(v.compatible), v.checked,
             len(v.missing), len(v.mismatched),
             "-" if v.stable_count is None else v.stable_count) for v in verdicts]
    return _table(["kmod", "arch", "verdict", "symbols", "missing", "CRC mismatches",
                   "on stablelist"], rows, "kmod", (3, 4, 5, 6))


# ------------------------------------------------------------------ the four reports

def _matrix(r: SeriesReport) -> str:
    head = "".join(f'<th title="{_e(k)}">{i + 1}</th>' for i, k in enumerate(r.kernels))
    out = ['<table data-chart="matrix"><tr><th>kmod</th>' + head + "</tr>"]
    for h in r.kmods:
        cells = []
        for kernel, v in zip(r.kernels, h.verdicts):
            state = ("compatible" if v.compatible else
                     "rebuilt" if kernel in h.rebuilds else "broken")
            first = " first" if kernel == h.first_broken else ""
            mark = {"compatible": "✓", "broken": "✗", "rebuilt": "↻"}[state]
            cells.append(f'<td class="{state}{first}" title="{_e(kernel)}: {state}">'
                         f"{mark}</td>")
        out.append(f'<tr class="kmod"><td>{_e(h.kmod)}</td>' + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>" + _legend(("compatible", "rebuilt", "broken")) + (
        "<p>✓ the kmod as built loads; ↻ its consumed CRCs changed here: a rebuild is "
        "needed (and assumed made); ✗ still broken; outlined: the first kernel that "
        "breaks it.</p>")


def series_html(reports: Sequence[SeriesReport], symbols: Sequence[str] = ()) -> str:
    body = []
    for r in reports:
        k = str(r.key)
        body.append(f"<h2>Series {_e(k)}: {len(r.kernels)} kernels, {len(r.kmods)} kmods"
                    "</h2>")
        body.append(_table(["#", "kernel"], enumerate(r.kernels, 1), "kernel", (0,)))
        steps = r.steps[1:]
        body.append("<h3>Symbols added, removed and changed at each kernel</h3>")
        body.append('<div class="wrap"><div>' + stacked_bars(
            f"delta-{k}", f"symbols changed per kernel ({k})", [s.kernel for s in steps],
            {"added": [s.added for s in steps], "removed": [s.removed for s in steps],
             "changed": [s.changed for s in steps]}) + "</div><div>" + _table(
            ["kernel", "symbols", "added", "removed", "changed", "kmods to rebuild"],
            [(s.kernel, s.symbols, s.added if i else "-", s.removed if i else "-",
              s.changed if i else "-", len(s.broke)) for i, s in enumerate(r.steps)],
            "step", (1, 2, 3, 4, 5)) + "</div></div>")
        if r.kmods:
            body.append("<h3>Kmods × kernels</h3>")
            body.append(_matrix(r))
        u = r.use
        parts = [("stable", u.stable or 0), ("unchanged", u.unchanged),
                 ("changed", u.changed), ("absent", u.absent)]
        body.append(f"<h3>Consumed symbols ({u.unique} unique, % of the "
                    f"{u.reference_total} symbols of {_e(u.reference)})</h3>")
        body.append(share_bar(f"shares-{k}", f"consumed symbols by stability ({k})", parts))
        body.append(_table(["", "count", "share"], [
            ("unique", u.unique, pct(u.unique, u.reference_total)),
            *((label, "-" if label == "stable" and u.stable is None else n,
               "no stablelist" if label == "stable" and u.stable is None
               else pct(n, u.reference_total)) for label, n in parts)], "share", (1,)))
        if r.most_consumed:
            body.append("<h3>Most consumed symbols</h3>")
            body.append('<div class="wrap"><div>' + hbars(
                f"consumed-{k}", f"most consumed symbols ({k})",
                [(c.symbol, c.consumers) for c in r.most_consumed]) + "</div><div>" + _table(
                ["symbol", "kmods", "stablelist", "last changed"],
                [(c.symbol, c.consumers, yes_no(c.stable),
                  c.changed_at[-1] if c.changed_at else "-") for c in r.most_consumed],
                "consumed", (1,)) + "</div></div>")
        for symbol in symbols:
            history = r.crc_history(symbol)
            body.append(f"<h3>CRC history of <code>{_e(symbol)}</code></h3>")
            body.append(timeline(f"history-{k}-{symbol}", f"CRC of {symbol} per kernel",
                                 history))
            body.append(_table(["#", "kernel", "CRC"], [(i, kn, crc(c)) for i, (kn, c) in
                                                       enumerate(history, 1)], "crc", (0,)))
            body.append(f"<p>last changed: {_e(r.last_changed(symbol) or 'not within this series')}"
                        "</p>")
        body += _broken_details(h.verdicts[-1] for h in r.kmods)
    return page("kABI series report", body)


def rebuild_outcomes_html(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The rebuilds made for a kernel (``kabi.rebuilds`` rows) and how each ended."""
    def outcome(r: Mapping[str, Any]) -> str:
        return r.get("outcome") or ("judging" if r.get("judge_task_id") else "not finished")
    counts = Counter(outcome(r) for r in rows)
    return ["<h2>Rebuilds and how they ended</h2>",
            share_bar("outcomes", "rebuilds by outcome", sorted(counts.items())),
            _table(["package", "rebuild of", "strategy", "task", "new build", "outcome",
                    "detail"],
                   [(r["package"], r["nvr"], r["strategy"], r["task_id"],
                     r.get("result_build") or "-", outcome(r), r.get("detail") or "")
                    for r in rows], "rebuild", (3,))]


def check_html(verdicts: Sequence[Verdict], kernel: str = "",
               rebuilds: Sequence[Mapping[str, Any]] = ()) -> str:
    bad = sum(1 for v in verdicts if not v.compatible)
    kernel = kernel or (verdicts[0].kernel if verdicts else "")
    body = [f"<h2>{len(verdicts)} kmods on {_e(kernel)}: {bad} incompatible</h2>",
            share_bar("verdicts", "kmods by verdict", [("compatible", len(verdicts) - bad),
                                                       ("incompatible", bad)]),
            _verdict_table(verdicts), *_broken_details(verdicts)]
    if rebuilds:
        body += rebuild_outcomes_html(rebuilds)
    return page(f"kABI check on {kernel}", body)


def affected_html(kd: KernelDelta, impacts: Sequence[Impact],
                  verdicts: Mapping[str, Verdict], kmod_count: int) -> str:
    keys = [str(d.key) for d in kd.deltas]
    body = [f"<h2>Delta {_e(kd.old)} → {_e(kd.new)}</h2>",
            stacked_bars("delta", "symbols changed per arch", keys,
                         {"added": [len(d.added) for d in kd.deltas],
                          "removed": [len(d.removed) for d in kd.deltas],
                          "changed": [len(d.changed) for d in kd.deltas]})]
    affected = [(a.kmod.label, imp.key, len(a.symbols), ", ".join(a.symbols[:5]),
                 _verdict_word(verdicts[a.kmod.label].compatible))
                for imp in impacts for a in imp.affected]
    body.append(f"<h2>{len(affected)} of {kmod_count} kmods consume what changed</h2>")
    body.append(_table(["kmod", "arch", "symbols hit", "some of them", "verdict"], affected,
                       "kmod", (2,)))
    body += _broken_details(verdicts.values())
    return page(f"kABI impact of {kd.new}", body)


def kabicheck_html(report: Mapping[str, Any]) -> str:
    """The kabiCheck task's report (``kabi-report.json``'s content) as HTML."""
    s = report["summary"]
    keys = list(s["delta"])
    body = [_table(["", ""], [("kernel", report["kernel"]),
                              ("previous kernel", report["previous"] or "none found"),
                              ("kernel tag", report["kernel_tag"]),
                              ("kmod tags", ", ".join(report["kmod_tags"])),
                              ("dry run", "yes" if report["dry_run"] else "no")], "about")]
    if report.get("error"):
        body.append(f"<p><strong>NOT FINISHED: {_e(report['error'])}</strong></p>")
    if keys:
        body.append("<h2>Delta to the previous kernel</h2>")
        body.append('<div class="wrap"><div>' + stacked_bars(
            "delta", "symbols changed per arch", keys,
            {n: [s["delta"][k][n] for k in keys] for n in ("added", "removed", "changed")})
            + "</div><div>" + _table(["arch", "added", "removed", "changed"], [
                (k, c["added"], c["removed"], c["changed"]) for k, c in s["delta"].items()],
                "step", (1, 2, 3)) + "</div></div>")
    rows = [v for arch in report["arches"] for v in arch["verdicts"]]
    body.append(f"<h2>Kmod builds: {s['kmod_builds']} in the tags, {s['compatible']} "
                f"compatible, {s['incompatible']} incompatible</h2>")
    body.append(share_bar("verdicts", "kmod builds by verdict",
                          [("compatible", s["compatible"]),
                           ("incompatible", s["incompatible"])]))
    body.append(_table(["kmod", "build", "arch", "verdict", "symbols", "missing",
                        "CRC mismatches"],
                       [(v["rpm"], v["nvr"], v["key"],
                         _verdict_word(v["compatible"]), v["checked"],
                         len(v["missing"]), len(v["mismatched"])) for v in rows],
                       "kmod", (4, 5, 6)))
    details = []
    for v in rows:
        if v["compatible"]:
            continue
        details.append(f"<h3>{_e(v['rpm'])} ({_e(v['key'])})</h3>")
        if v["no_table"]:
            details.append(f"<p>the kernel has no {_e(v['key'])} symbols</p>")
            continue
        details.append(_table(["symbol", "required CRC", "provided CRC", "stablelist"], [
            *((m["symbol"], m["required"], "missing", yes_no(m["stable"])) for m in v["missing"]),
            *((m["symbol"], m["required"], m["provided"],
               yes_no(m.get("stable")))
              for m in v["mismatched"])], "problem"))
    if details:
        body += ["<h2>Broken kmods: the symbols</h2>", *details]
    body.append("<h2>Rebuilds</h2>")
    body.append(_table(["package", "build", "mode", "target", "status", "task", "detail"], [
        *((r["package"], r["nvr"], r["mode"], r["target"], r["status"],
           r["task_id"] or "-", r["detail"]) for r in report["rebuilds"]),
        *((k["package"], k["nvr"], "-", "-", "skipped", "-", k["reason"])
          for k in report["skipped"])], "rebuild"))
    body += [f"<p>note: {_e(n)}</p>" for n in report["notes"]]
    return page(f"kABI check of {report['kernel']}", body)
