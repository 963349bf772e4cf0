"""Headless Chromium (Debian's ``chromium`` package): a screenshot and the rendered DOM of
a local HTML file, each from a whole browser process.

    python -m tests.support.browser REPORT.html SHOT.png     (the README's screenshot)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

WIDTH = 1280


def chromium() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(html: Path, *what: str, height: int) -> tuple[str, float]:
    browser = chromium()
    if browser is None:
        raise RuntimeError("no chromium (scripts/bootstrap.sh --test installs it)")
    with tempfile.TemporaryDirectory() as profile:
        started = time.monotonic()
        # --no-sandbox: root (CI) cannot use Chromium's user-namespace sandbox
        res = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                              "--hide-scrollbars", f"--user-data-dir={profile}",
                              "--no-first-run", f"--window-size={WIDTH},{height}", *what,
                              html.resolve().as_uri()], capture_output=True, text=True,
                             timeout=120, stdin=subprocess.DEVNULL, check=False)
        seconds = time.monotonic() - started
    if res.returncode != 0:
        raise RuntimeError(f"chromium failed ({res.returncode}): {res.stderr[-2000:]}")
    return res.stdout, seconds


def screenshot(html: Path, png: Path, height: int = 2400) -> float:
    """Render ``html`` into ``png``; the seconds the browser took."""
    _out, seconds = _run(html, f"--screenshot={png}", height=height)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return seconds


def dom(html: Path) -> str:
    """The DOM after Chromium parsed and laid out ``html``, serialised."""
    out, _seconds = _run(html, "--dump-dom", height=1000)
    return out


if __name__ == "__main__":
    print(f"rendered in {screenshot(Path(sys.argv[1]), Path(sys.argv[2])):.2f} s")
