"""The HTML reports: one self-contained file, every input string escaped, the charts and
one table row per kmod; rendered by a real browser (headless Chromium) in
tests/test_html_browser.py."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from koji_kabi.analysis.series import series
from koji_kabi.analysis.verdict import verdict
from koji_kabi.model import Kernel, KmodRequirements, SymbolTable, TableKey
from koji_kabi.report.html import check_html, series_html

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
X86 = TableKey("x86_64")
HOSTILE = "kmod-<script>alert(1)</script>\x1b]0;pwned\x07&\"'"


class Tags(HTMLParser):
    """Every start tag with its attributes, and whether any tag was left open."""

    VOID = {"meta", "br", "img", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-3:])
        self.open.pop()


def parse(page: str) -> Tags:
    p = Tags()
    p.feed(page)
    p.close()
    assert p.open == ["html"] or p.open == [], p.open
    return p


def _kernel(nvr: str, crcs: dict[str, int]) -> Kernel:
    return Kernel(nvr, {X86: SymbolTable(X86, crcs, nvr)})


def test_self_contained_nothing_fetched_no_script() -> None:
    proc = subprocess.run([sys.executable, "-m", "koji_kabi.cli", "series",
                           str(EXAMPLES / "kernels"), "--kmods", str(EXAMPLES / "kmods"),
                           "--symbol", "kmalloc_caches", "--html", "/dev/stdout"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    page = proc.stdout[proc.stdout.index("<!DOCTYPE html>"):]
    tags = parse(page)
    names = [t for t, _a in tags.tags]
    assert "script" not in names and "link" not in names and "img" not in names
    assert not re.search(r"""(src|href)=|url\(|@import""", page)
    csp = [a for t, a in tags.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"]
    charts = {a["data-chart"] for _t, a in tags.tags if "data-chart" in a}
    assert {"delta-x86_64", "matrix", "shares-x86_64", "consumed-x86_64",
            "history-x86_64-kmalloc_caches"} <= charts
    kmods = sorted(p.name for p in (EXAMPLES / "kmods").glob("*.rpm"))
    assert len([a for t, a in tags.tags if t == "tr" and a.get("class") == "kmod"]) == \
        len(kmods) == 12


def test_every_string_from_the_inputs_is_escaped() -> None:
    k1 = _kernel("6.1.0-1<b>", {"a": 1, "b<i>": 2})
    k2 = _kernel("6.1.0-2", {"a": 3, "b<i>": 2})
    kmod = KmodRequirements(HOSTILE, "kmod-x", X86, {"a": 1, "b<i>": 2}, "x.rpm")
    (report,) = series([k1, k2], [kmod], top=5)
    for page in (series_html([report], ["b<i>"]), check_html([verdict(kmod, k2)])):
        assert "<script" not in page and "\x1b" not in page and "<b>" not in page
        assert "<i>" not in page
        assert "kmod-&lt;script&gt;alert(1)&lt;/script&gt;\\x1b]0;pwned\\x07&amp;" in page
        parse(page)


def test_a_broken_kmod_lists_required_and_provided_crcs() -> None:
    k2 = _kernel("6.1.0-2", {"a": 0x3, "b": 0x2})
    kmod = KmodRequirements("kmod-x-1", "kmod-x", X86, {"a": 0x1, "b": 0x2, "gone": 0x7},
                            "x.rpm")
    page = check_html([verdict(kmod, k2)])
    assert '<tr class="problem"><td>a</td><td>0x00000001</td><td>0x00000003</td>' in page
    assert '<tr class="problem"><td>gone</td><td>0x00000007</td><td>missing</td>' in page
    assert "<td>b</td>" not in page  # a matching symbol is no problem


@pytest.mark.parametrize("bad", ["/nonexistent/dir/x.html", "/proc/version"])
def test_an_unwritable_html_file_is_one_line(bad: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "koji_kabi.cli", "check",
                           str(EXAMPLES / "kmods"), "--kernel",
                           str(EXAMPLES / "kernels" / "symvers-6.1.0-56.x86_64.xz"), "--html", bad],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"koji-kabi: {bad}: cannot write the HTML report"), line


def test_rebuild_outcomes_are_a_bar_and_a_row_each() -> None:
    from koji_kabi.analysis.outcome import OUTCOMES

    rows = [{"package": f"kmod-{i}", "nvr": f"kmod-{i}-1-1", "strategy": "buildroot",
             "task_id": 10 + i, "result_build": None, "judge_task_id": None,
             "outcome": outcome, "detail": f"<b>{outcome}</b>"}
            for i, outcome in enumerate((*OUTCOMES, None))]
    rows[-1]["judge_task_id"] = 99  # judged, no outcome yet
    html = check_html([], "kernel-1-1", rows)
    assert html.count('<tr class="rebuild">') == len(rows)
    for outcome in (*OUTCOMES, "judging"):
        assert f"<td>{outcome}</td>" in html and f"{outcome}: 1 (" in html
    assert "<b>" not in html and "&lt;b&gt;fixed&lt;/b&gt;" in html
