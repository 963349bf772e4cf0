"""``koji-kabi``: kABI delta, verdicts, impact and series on local files, no Koji needed.

Exit status: 0 all compatible, 1 something incompatible (or a breaking delta),
2 bad usage or unreadable input (one line naming the file and the problem).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Callable, NoReturn, Optional

from koji_kabi import __version__
from koji_kabi.analysis.delta import delta_kernels
from koji_kabi.analysis.impact import ConsumerIndex
from koji_kabi.analysis.series import series
from koji_kabi.analysis.verdict import verdicts as verdicts_of
from koji_kabi.errors import KabiError
from koji_kabi.model import ARCH_ALIASES, KNOWN_ARCHES, Kernel, KmodRequirements, normalize_arch
from koji_kabi.readers.inputs import load_kernel, load_kernels, load_kmods, load_stablelists
from koji_kabi.report.html import affected_html, check_html, series_html, write_html
from koji_kabi.report.jsondoc import crc, document, dumps, to_json
from koji_kabi.report.terminal import escape
from koji_kabi.report.text import (
    affected_text,
    delta_text,
    series_text,
    verdicts_text,
)

EXIT_OK, EXIT_INCOMPATIBLE, EXIT_USAGE = 0, 1, 2

INPUTS_HELP = ("Inputs are RPM files, Module.symvers/symvers.gz/.xz files, .ko modules, "
               "`rpm -qp --provides/--requires` dumps or directories of them, recognised by "
               "content.")


def _progress(args: argparse.Namespace, message: str) -> None:
    """What a long run is doing, on a terminal only (stdout stays the result)."""
    if not args.quiet and sys.stderr.isatty():
        print(f"koji-kabi: {escape(message)}", file=sys.stderr, flush=True)


def _warn(problem: KabiError) -> None:
    print(f"koji-kabi: warning: {problem} (skipped)", file=sys.stderr)


def _only_arch(kernels: list[Kernel], arch: Optional[str]) -> list[Kernel]:
    if not arch:
        return kernels
    out = []
    for k in kernels:
        tables = {key: t for key, t in k.tables.items() if key.arch == arch}
        if not tables:
            raise KabiError(k.nvr, f"has no {arch} symbols (it has: "
                            + ", ".join(map(str, k.tables)) + ")")
        out.append(Kernel(k.nvr, tables, k.sources))
    return out


def _kmods(paths: Sequence[str], arch: Optional[str]) -> list[KmodRequirements]:
    kmods = load_kmods(paths, on_skip=_warn)
    if arch:
        found = sorted({m.key.arch for m in kmods})
        kmods = [m for m in kmods if m.key.arch in (arch, "unknown")]
        if not kmods and found:
            raise KabiError(" ".join(paths), f"no {arch} kmods (they are for: "
                            + ", ".join(found) + ")")
    return kmods


def _old_new(args: argparse.Namespace) -> tuple[Kernel, Kernel]:
    """The two kernels of a comparison; labelled by their paths when their names agree."""
    old = _only_arch([load_kernel(args.old, args.arch, _warn)], args.arch)[0]
    new = _only_arch([load_kernel(args.new, args.arch, _warn)], args.arch)[0]
    if old.nvr == new.nvr and args.old != args.new:
        old = Kernel(escape(args.old), old.tables, old.sources)
        new = Kernel(escape(args.new), new.tables, new.sources)
    return old, new


def _emit(args: argparse.Namespace, doc: Callable[[], dict], text: Callable[[], str]) -> None:
    """Print what was asked for, and only make that: the JSON document or the text."""
    print(dumps(doc()) if args.json else text())


def _write_html(args: argparse.Namespace, make: Callable[[], str]) -> None:
    """``--html FILE``: the report as one self-contained HTML file, besides the output."""
    if not getattr(args, "html", None):
        return
    write_html(args.html, make())


def cmd_delta(args: argparse.Namespace) -> int:
    _progress(args, f"reading the kernels {args.old} and {args.new}")
    old, new = _old_new(args)
    kd = delta_kernels(old, new, load_stablelists(args.stablelist, _warn))
    _emit(args, lambda: document("delta", kd), lambda: delta_text(kd, args.summary, args.quiet))
    return EXIT_INCOMPATIBLE if kd.breaking else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    _progress(args, f"reading the kernel {args.kernel}")
    kernel = _only_arch([load_kernel(args.kernel, args.arch, _warn)], args.arch)[0]
    _progress(args, "reading the kmods in " + " ".join(args.kmods))
    kmods = _kmods(args.kmods, args.arch)
    if not kmods:
        raise KabiError(" ".join(args.kmods), "no kmod packages found")
    verdicts = verdicts_of(kmods, kernel, load_stablelists(args.stablelist, _warn))
    _emit(args, lambda: document("verdicts", kernel=kernel.nvr,
                                 compatible=all(v.compatible for v in verdicts),
                                 verdicts=verdicts),
          lambda: verdicts_text(verdicts, args.quiet))
    _write_html(args, lambda: check_html(verdicts))
    return EXIT_OK if all(v.compatible for v in verdicts) else EXIT_INCOMPATIBLE


def cmd_affected(args: argparse.Namespace) -> int:
    _progress(args, f"reading the kernels {args.old} and {args.new}, and the kmods")
    old, new = _old_new(args)
    kmods = _kmods(args.kmods, args.arch)
    lists = load_stablelists(args.stablelist, _warn)
    kd = delta_kernels(old, new, lists)
    index = ConsumerIndex(kmods)
    impacts = [index.impact(d, new) for d in kd.deltas]
    touched = list({a.kmod.label: a.kmod for imp in impacts for a in imp.affected}.values())
    found = verdicts_of(touched, new, lists)
    verdicts = {m.label: v for m, v in zip(touched, found)}
    _emit(args, lambda: document("affected", delta=kd, impact=impacts, verdicts=found,
                                 kmods=len(kmods)),
          lambda: affected_text(kd, impacts, verdicts, len(kmods), args.quiet))
    _write_html(args, lambda: affected_html(kd, impacts, verdicts, len(kmods)))
    return EXIT_OK if all(v.compatible for v in verdicts.values()) else EXIT_INCOMPATIBLE


def cmd_series(args: argparse.Namespace) -> int:
    _progress(args, f"reading {len(args.kernels)} kernel input(s) and the kmods")
    kernels = _only_arch(load_kernels(args.kernels, args.arch, _warn), args.arch)
    if len(kernels) < 2:
        raise KabiError(" ".join(args.kernels), "a series needs at least two kernels")
    kmods = _kmods(args.kmods, args.arch) if args.kmods else []
    reports = series(kernels, kmods, load_stablelists(args.stablelist, _warn), args.top)
    partial = sorted({k for kernel in kernels for k in kernel.tables}
                     - {r.key for r in reports})

    def text() -> str:
        out = "\n\n".join(series_text(r, args.symbol, args.quiet) for r in reports)
        if partial:
            out += "\n\nnot in every kernel of the series, so not analysed: " + \
                ", ".join(map(str, partial))
        return out

    _emit(args, lambda: document("series", reports=[dict(to_json(r), crc_history={
        s: [[k, crc(c)] for k, c in r.crc_history(s)] for s in args.symbol}) for r in reports],
        not_analysed=[str(k) for k in partial]), text)
    _write_html(args, lambda: series_html(reports, args.symbol))
    broken = any(not h.verdicts[-1].compatible for r in reports for h in r.kmods)
    return EXIT_INCOMPATIBLE if broken else EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"koji-kabi: {escape(message)} (see {self.prog} --help)\n")


def _arch(value: str) -> str:
    arch = normalize_arch(value)
    if arch not in KNOWN_ARCHES:
        known = ", ".join(sorted(KNOWN_ARCHES | set(ARCH_ALIASES)))
        raise argparse.ArgumentTypeError(f"unknown arch {value!r} (known: {known})")
    return arch


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"want a whole number of at least 1, not {value!r}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="koji-kabi",
        description="kABI analysis of kernels and kernel-module packages from modversion CRCs. "
        + INPUTS_HELP,
        epilog="Exit status: 0 compatible, 1 incompatible, 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser, stablelist: bool = True, html: bool = True) -> None:
        p.add_argument("--json", action="store_true",
                       help="print one JSON document (its schema: result.schema.json)")
        p.add_argument("--quiet", action="store_true",
                       help="no table headers or titles, only the rows")
        if html:
            p.add_argument("--html", metavar="FILE",
                           help="also write the report, with charts, as one HTML file")
        p.add_argument("--arch", type=_arch,
                       help="only this arch (also names the arch of symvers files "
                            "whose name does not say it)")
        if stablelist:
            p.add_argument("--stablelist", action="append", default=[], metavar="PATH",
                           help="kabi_stablelist_<arch> file, kabi-rhelNN/ dir or the "
                                "kernel-abi-stablelists RPM (repeatable)")

    p = sub.add_parser("delta", help="symbols added, removed and changed between two kernels")
    p.add_argument("old", help="old kernel: RPM(s) dir, kernel-core RPM, symvers or dump")
    p.add_argument("new", help="new kernel")
    p.add_argument("--summary", action="store_true", help="counts only, no symbol lists")
    common(p, html=False)
    p.set_defaults(func=cmd_delta)

    p = sub.add_parser("check", help="verdict of kmods against a kernel")
    p.add_argument("kmods", nargs="+", metavar="KMOD", help="kmod RPM, .ko, dump or dir")
    p.add_argument("--kernel", required=True, help="the kernel to check against")
    common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("affected", help="kmods that consume what changed between two kernels")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--kmods", action="append", required=True, metavar="PATH",
                   help="kmod RPMs, .ko files or a directory of them (repeatable)")
    common(p)
    p.set_defaults(func=cmd_affected)

    p = sub.add_parser("series", help="how kABI changes over an ordered series of kernels, "
                                      "and which kmods each kernel breaks")
    p.add_argument("kernels", nargs="+", metavar="KERNEL",
                   help="kernels in order (a directory of several builds is sorted by version)")
    p.add_argument("--kmods", action="append", default=[], metavar="PATH",
                   help="kmod RPMs, .ko files or a directory of them (repeatable)")
    p.add_argument("--symbol", action="append", default=[], metavar="NAME",
                   help="also print the CRC history of this symbol (repeatable)")
    p.add_argument("--top", type=_positive, default=10,
                   help="how many most-consumed symbols (at least 1)")
    common(p)
    p.set_defaults(func=cmd_series)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        import rpm

        rpm.setVerbosity(rpm.RPMLOG_EMERG)  # our errors say it in one line; rpm's add noise
    except ImportError:
        pass
    try:
        return func(args)
    except KabiError as exc:
        print(f"koji-kabi: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
