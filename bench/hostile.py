"""Hostile inputs: how ``koji-kabi`` answers bad bytes, per category, as a table.

    python -m bench.hostile [--out docs/hostile-inputs.md] [--timeout 30] [--jobs 2]

Writes the corpus of tests/support/hostile.py into a temporary directory (real RPMs via
rpmbuild, ELF modules, compression bombs, FIFOs, devices, escape sequences ...), runs
every case as a real ``koji-kabi`` process under a 4 GiB address-space limit and prints,
per category: cases, clear errors, values, tracebacks, hangs, wrong answers, the peak
RSS and the worst case.  ``--out`` also writes the Markdown report (docs/hostile-inputs.md).
Exit status 1 when some case breaks the contract.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import hostile  # noqa: E402
from tests.support.hostile import Outcome, Tally  # noqa: E402

_COLUMNS = (("clear errors", hostile.CLEAR_ERROR), ("values", hostile.VALUE),
            ("tracebacks", hostile.TRACEBACK), ("hangs", hostile.HANG),
            ("wrong answers", hostile.WRONG), ("skipped", hostile.SKIPPED))


def _cell(text: str) -> str:
    return hostile.printable(text).replace("|", "\\|")


def table(tallies: dict[str, Tally]) -> str:
    """The Markdown table: one row per category, then the totals."""
    head = ["category", "cases", *(name for name, _ in _COLUMNS), "peak RSS MiB", "worst case"]
    lines = ["| " + " | ".join(head) + " |",
             "| --- | " + " | ".join("---:" for _ in head[1:-1]) + " | --- |"]
    order = [c for c in hostile.CATEGORIES if c in tallies] + ["total"]
    for category in order:
        t = tallies[category]
        worst = t.worst
        note = ""
        if worst is not None:
            note = f"`{_cell(worst.case.name)}`"
            if not worst.ok and worst.kind != hostile.SKIPPED:
                note += f" ({worst.kind})"
        name = f"**{category}**" if category == "total" else category
        lines.append("| " + " | ".join([name, str(t.cases),
                                        *(str(t.kinds[k]) for _, k in _COLUMNS),
                                        f"{t.rss_mib:.0f}", note]) + " |")
    return "\n".join(lines)


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok and o.kind != hostile.SKIPPED]


def failures_text(outcomes: list[Outcome], corpus: str = "") -> str:
    """One item per broken case: what happened, and why the other answer is right."""
    bad = failures(outcomes)
    if not bad:
        return "Every case keeps the contract."
    lines = []
    for o in bad:
        reason = o.reason.replace(corpus.rstrip("/") + "/", "") if corpus else o.reason
        lines.append(f"- `{_cell(o.case.name)}` — **{o.kind}**: {_cell(reason)[:300]}")
        if o.case.why:
            lines.append(f"  (expected {o.case.expect}: {_cell(o.case.why)})")
    return "\n".join(lines)


def report(outcomes: list[Outcome], seconds: dict[str, float], argv: list[str],
           corpus: str = "") -> str:
    """docs/hostile-inputs.md."""
    tallies = hostile.tally(outcomes)
    total = tallies["total"]
    skipped = [o for o in outcomes if o.kind == hostile.SKIPPED]
    skip_note = (f"\n\n{len(skipped)} cases were skipped: "
                 + "; ".join(sorted({_cell(o.reason) for o in skipped})) + ".") if skipped else ""
    return f"""# Hostile inputs

The contract (issue "every reader: any bytes give a value or one clear error"): any
input to `koji-kabi` gives either a **value** — exit 0 or 1 with the right answer, plus
`koji-kabi: warning: …` lines for files skipped inside a directory — or a **clear
error**: exit 2 and one stderr line `koji-kabi: <file>: <problem>`.  Never a traceback
or another exit status, never a hang, never a memory blow-up, never a silent wrong
answer, and never a raw terminal control character (C0 but TAB/LF, DEL, C1, ESC,
Unicode line separators and bidi overrides, or undecodable bytes) on stdout or stderr.

The cases live in `tests/support/hostile.py`: valid baselines from small real-looking
data (symvers, `rpm -qp --provides` dumps, stablelists, ELF `.ko` files assembled with
`struct`, real RPMs from rpmbuild) and, from them, corrupt compression and bombs, FIFOs,
devices and sockets, truncated and patched RPMs, broken ELF headers, bad CRCs and names,
escape sequences in names and file names, odd series labels and options.  Each runs the
whole `koji-kabi` process under a {hostile.ADDRESS_SPACE >> 30} GiB address-space limit,
its peak RSS measured with `os.wait4`, and is judged: a clear error must name the file
(or option) at fault; a value must have the right exit status, warnings naming each
skipped file, and pass the case's check of the output (JSON or text).  A few harmless
bogus inputs (a file compressed twice, `--top 0`) accept either answer.  Warning lines
may precede an error (a directory whose every file was skipped).

`tests/test_hostile.py` enforces it, one test per case; this report comes from:

    {shlex.join(argv)}

## Results

{total.cases} cases; writing the corpus took {seconds['corpus']:.1f} s, running them
{seconds['run']:.1f} s, two at a time ({_when()}, {platform.python_implementation()}
{platform.python_version()}, {platform.machine()}).

{table(tallies)}

"peak RSS MiB": the largest of the category.  "worst case": its most severe failure,
else its largest peak RSS.{skip_note}

## Failing cases

{failures_text(outcomes, corpus)}
"""


def _when() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hostile",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="also write this Markdown report "
                                             "(docs/hostile-inputs.md)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at a time")
    ap.add_argument("--keep", action="store_true", help="keep the corpus directory")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="kabi-hostile-"))
    try:
        started = time.monotonic()
        cases = hostile.cases(tmp / "corpus")
        seconds = {"corpus": time.monotonic() - started}
        print(f"corpus: {len(cases)} cases in {tmp / 'corpus'} ({seconds['corpus']:.1f} s)")
        started = time.monotonic()
        outcomes = hostile.run_all(cases, jobs=args.jobs, timeout=args.timeout)
        seconds["run"] = time.monotonic() - started
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"run: {seconds['run']:.1f} s\n")
    print(table(hostile.tally(outcomes)))
    print()
    print(failures_text(outcomes, str(tmp / "corpus")))
    command = ["python", "-m", "bench.hostile", *(argv if argv is not None else sys.argv[1:])]
    print(f"\ncommand: {shlex.join(command)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(outcomes, seconds, command, str(tmp / "corpus")))
        print(f"written: {args.out}")
    return 1 if failures(outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
