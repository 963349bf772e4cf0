"""The bundled example's HTML report in a real browser: headless Chromium renders it (a
screenshot that is not blank) and its DOM holds the charts and one row per kmod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import browser

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

pytestmark = pytest.mark.skipif(browser.chromium() is None,
                                reason="no chromium (scripts/bootstrap.sh --test installs it)")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "example-report.html"
    proc = subprocess.run([sys.executable, "-m", "koji_kabi.cli", "series",
                           str(EXAMPLES / "kernels"), "--kmods", str(EXAMPLES / "kmods"),
                           "--symbol", "kmalloc_caches", "--html", str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and out.is_file(), proc.stderr
    return out


def test_chromium_renders_a_picture_not_a_blank_page(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "shot.png"
    seconds = browser.screenshot(report, png)
    with Image.open(png) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (browser.WIDTH, 2400)
        data = rgb.resize((160, 300)).tobytes()
    pixels = [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]
    inked = sum(1 for p in pixels if sum(p) < 700) / len(pixels)
    colours = set(pixels)
    assert inked > 0.05, inked  # text, tables and bars, not a white page
    # the chart colours are on the page: the bars (changed: orange) and the matrix cells
    assert any(r > 200 and 80 < g < 140 and b < 60 for r, g, b in colours)
    assert any(r < 80 and g > 100 and b > 200 for r, g, b in colours)
    print(f"example report ({report.stat().st_size} bytes) rendered by Chromium in "
          f"{seconds:.2f} s")


def test_the_rendered_dom_has_the_charts_and_a_row_per_kmod(report: Path) -> None:
    page = browser.dom(report)
    assert page.count('class="chart"') >= 4
    for chart in ("delta-x86_64", "matrix", "shares-x86_64", "consumed-x86_64",
                  "history-x86_64-kmalloc_caches"):
        assert f'data-chart="{chart}"' in page, chart
    assert page.count("<rect") > 20  # the bars are SVG elements in the DOM
    kmods = list((EXAMPLES / "kmods").glob("*.rpm"))
    assert page.count('<tr class="kmod">') == len(kmods) == 12
