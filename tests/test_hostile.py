"""Hostile inputs: any bytes give a value or one clear error, never a crash or a hang.

The corpus (tests/support/hostile.py) is written once per session and every case runs
the real ``koji-kabi`` process, two at a time, under a 4 GiB address-space limit; each
case is then one test, whose failure message shows the command, exit status and output.
The same corpus and table: ``python -m bench.hostile`` (docs/hostile-inputs.md).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import hostile
from tests.support.hostile import Case, Outcome

#: Names only (nothing is written): pytest needs the ids before the corpus exists.
CASES = hostile.cases(Path(tempfile.gettempdir()) / "koji-kabi-hostile-ids", write=False)
_TEST = "test_hostile_case"


@dataclass(frozen=True)
class Corpus:
    root: Path
    seconds: float  # to write it
    outcomes: dict[str, Outcome]


@pytest.fixture(scope="session")
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The corpus written and run once; only the cases this session selected are run."""
    wanted = {item.callspec.params["name"] for item in request.session.items
              if getattr(item, "originalname", "") == _TEST and hasattr(item, "callspec")}
    root = tmp_path_factory.mktemp("hostile")
    started = time.monotonic()
    cases = hostile.cases(root, cache_dir=tmp_path_factory.mktemp("hostile-rpmcache"))
    seconds = time.monotonic() - started
    todo = [c for c in cases if c.name in wanted]
    return Corpus(root, seconds, {o.case.name: o for o in hostile.run_all(todo, jobs=2)})


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_hostile_case(corpus: Corpus, name: str) -> None:
    outcome = corpus.outcomes[name]
    if outcome.kind == hostile.SKIPPED:
        pytest.skip(outcome.reason)
    if not outcome.ok:
        pytest.fail(outcome.describe(), pytrace=False)


def test_corpus_is_cheap(corpus: Corpus) -> None:
    """Bombs are repeated compressed blocks: seconds to write, a few MiB on disk."""
    size = sum(p.lstat().st_size for p in corpus.root.rglob("*") if p.is_file()
               and not p.is_symlink())
    assert size < 200 << 20, f"corpus is {size >> 20} MiB"
    assert corpus.seconds < 30, f"corpus took {corpus.seconds:.1f} s to write"


def test_every_category_has_a_value_and_an_error() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    for category in hostile.CATEGORIES:
        mine = [c for c in CASES if c.category == category]
        assert any(c.expect == "value" for c in mine), category
        if category != "baseline":
            assert any(c.expect == "error" for c in mine), category


# ---------------------------------------------------------------- the runner itself


def _case(expect: str = "error", **kw: object) -> Case:
    return Case("runner/self-test", "runner", [], expect, **kw)  # type: ignore[arg-type]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_runner_kills_a_hang() -> None:
    started = time.monotonic()
    out = hostile.run(_case(), timeout=1, program=_python("import time; time.sleep(60)"))
    assert out.kind == hostile.HANG and time.monotonic() - started < 10, out.describe()


def test_runner_limits_memory() -> None:
    out = hostile.run(_case(), program=_python("b = bytearray(6 << 30)"))
    assert out.kind == hostile.TRACEBACK and "MemoryError" in out.reason, out.describe()


def test_runner_measures_peak_rss() -> None:
    out = hostile.run(_case("value", max_rss_mib=100),
                      program=_python("b = b'x' * (300 << 20)"))
    assert out.rss_mib >= 290 and out.kind == hostile.WRONG, out.describe()
    assert "memory" in out.reason


def test_runner_sees_a_crash() -> None:
    out = hostile.run(_case(), program=_python("import os; os.abort()"))
    assert out.kind == hostile.TRACEBACK and "SIGABRT" in out.reason, out.describe()


@pytest.mark.parametrize(("code", "expect", "kind"), [
    ("import sys; print('koji-kabi: f: bad', file=sys.stderr); sys.exit(2)", "error",
     hostile.CLEAR_ERROR),
    ("import sys; print('usage: x', file=sys.stderr); print('koji-kabi: error: y', "
     "file=sys.stderr); sys.exit(2)", "error", hostile.WRONG),
    ("import sys; print('f: bad', file=sys.stderr); sys.exit(2)", "error", hostile.WRONG),
    ("print('\\x1b]0;pwned\\x07')", "value", hostile.WRONG),
    ("import sys; sys.stdout.buffer.write(b'\\x9b2J')", "value", hostile.WRONG),
    ("print('fine')", "error", hostile.WRONG),
    ("import sys; sys.exit(3)", "error", hostile.TRACEBACK),
    ("import sys; print('koji-kabi: warning: d/f: bad (skipped)', file=sys.stderr)",
     "value", hostile.VALUE),
    ("import sys; print('koji-kabi: f: bad', file=sys.stderr); sys.exit(2)", "value",
     hostile.WRONG),
])
def test_runner_classifies(code: str, expect: str, kind: str) -> None:
    out = hostile.run(_case(expect), program=_python(code))
    assert out.kind == kind, out.describe()
