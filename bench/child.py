"""One measured piece of work in a fresh process, so its peak RSS is its own.

The parent (bench/run.py) starts ``python -m bench.child MODE SPEC.json`` and reads the
child's resource usage with ``os.wait4``; the child writes what it measured from the
inside (work time without interpreter start-up, bytes read) to ``SPEC["out"]``.

* ``cli``: ``koji-kabi`` with ``SPEC["argv"]``; counts the bytes read from each RPM file.

(The ``kabiCheck`` task runs in the real kojid's own task process: bench/probe.py.)
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def rchar() -> int:
    """Bytes this process got from read() calls so far (/proc/self/io), page cache or not."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Counted(io.RawIOBase):
    """A file whose reads are added to a per-path counter."""

    def __init__(self, f: Any, path: str, counts: dict[str, int]) -> None:
        self.f, self.path, self.counts = f, path, counts

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.counts[self.path] = self.counts.get(self.path, 0) + len(data)
        return data

    def readinto(self, b: Any) -> int:
        n = self.f.readinto(b)
        self.counts[self.path] = self.counts.get(self.path, 0) + (n or 0)
        return n

    def readable(self) -> bool:
        return True

    def seek(self, *args: Any) -> int:
        return self.f.seek(*args)

    def close(self) -> None:
        self.f.close()
        super().close()


def count_rpm_reads(counts: dict[str, int]) -> None:
    """Make koji_kabi's own opens of ``*.rpm`` files count the bytes they read."""
    import builtins

    from koji_kabi.readers import inputs, rpmheader

    def counted_open(path: Any, mode: str = "r", buffering: int = -1, **kwargs: Any) -> Any:
        if "b" not in mode or not str(path).endswith(".rpm"):
            return builtins.open(path, mode, buffering, **kwargs)
        # count at the OS level: a buffered read(8) costs a whole buffer
        f = builtins.open(path, mode, 0)  # noqa: SIM115 - the caller closes it
        raw = _Counted(f, os.path.abspath(str(path)), counts)
        return raw if buffering == 0 else io.BufferedReader(raw)

    rpmheader.open = counted_open  # module globals shadow the builtin
    inputs.open = counted_open


def run_cli(spec: dict) -> dict:
    from koji_kabi.cli import main

    counts: dict[str, int] = {}
    count_rpm_reads(counts)
    before = rchar()
    started = time.monotonic()
    if not spec.get("stdout"):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the report goes to a file
    try:
        status = main(spec["argv"])
    finally:
        sys.stdout.flush()
        sys.stdout = sys.__stdout__
    return {"seconds": time.monotonic() - started, "status": status, "rpm_bytes": counts,
            "rchar": rchar() - before}


def main(argv: list[str]) -> int:
    mode, spec_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    work = {"cli": run_cli}[mode]
    profile = os.environ.get("BENCH_PROFILE")
    if profile:  # python -m pstats FILE: where the time goes
        import cProfile

        prof = cProfile.Profile()
        report = prof.runcall(work, spec)
        prof.dump_stats(profile)
    else:
        report = work(spec)
    with open(spec["out"], "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
