"""Turn paths given by a person into kernels, kmods and stablelists.

Files are recognised by content, not by name: RPM, ELF ``.ko``, symvers, a stablelist
or a ``rpm -q --provides/--requires`` dump, each possibly gzip/xz/bzip2 compressed.
Whether a dump is read as a kernel or a kmod is the caller's role for that argument.
Directories are walked: RPMs are grouped into kernel builds (by source RPM N-V-R,
uniting kernel-core, kernel-modules*...) and kmod packages.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Callable, Optional

from koji_kabi.errors import KabiError
from koji_kabi.model import (
    ARCH_ALIASES,
    KNOWN_ARCHES,
    UNKNOWN_ARCH,
    Kernel,
    KmodRequirements,
    Stablelist,
    SymbolTable,
    TableKey,
    merge_tables,
    normalize_arch,
)
from koji_kabi.readers.deps import parse_dump_line
from koji_kabi.readers.files import decode_text, read_content, read_head, text_lines
from koji_kabi.readers.kofile import ELF_MAGIC, read_ko
from koji_kabi.readers.packages import (
    kernel_table_from_header,
    kernel_table_from_provides,
    kmod_from_deps,
    kmod_from_header,
    require_kmod,
)
from koji_kabi.readers.rpmheader import RPM_MAGIC, RpmHeader, read_rpm_file
from koji_kabi.readers.stablelist import (
    is_stablelist_text,
    parse_stablelist,
    read_stablelist_dir,
    read_stablelist_rpm,
)
from koji_kabi.readers.symvers import read_symvers_lines
from koji_kabi.report.terminal import escape

_COMPRESSION_SUFFIXES = (".gz", ".xz", ".bz2", ".zst")
_SYMVERS_LINE = re.compile(r"^0[xX][0-9a-fA-F]+\t\S+\t")
_ARCH_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(sorted(KNOWN_ARCHES | set(ARCH_ALIASES), key=len, reverse=True))
    + r")(?![A-Za-z0-9])"
)

RPM, ELF, SYMVERS, STABLELIST, DUMP = "rpm", "ko", "symvers", "stablelist", "dump"


@dataclass
class Loaded:
    """What a set of paths held; ``skipped`` keeps the per-file problems of directory walks."""

    kernels: list[Kernel] = field(default_factory=list)
    kmods: list[KmodRequirements] = field(default_factory=list)
    skipped: list[KabiError] = field(default_factory=list)
    rpm_builds: set[str] = field(default_factory=set)  # kernel labels that are build NVRs


def sniff(path: str) -> tuple[str, Optional[bytes]]:
    """(kind, decompressed contents or None for RPMs, which are read header-only)."""
    head = read_head(path, 8)
    if head.startswith(RPM_MAGIC):
        return RPM, None
    data = read_content(path)
    if data.startswith(ELF_MAGIC):
        return ELF, data
    if b"\0" in data[:4096]:
        raise KabiError(path, "unrecognised binary file (not an RPM, .ko, or symvers)")
    text = data[:4096].decode("utf-8", "replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if not first:
        raise KabiError(path, "empty file")
    if _SYMVERS_LINE.match(first):
        return SYMVERS, data
    if is_stablelist_text(first):
        return STABLELIST, data
    try:
        parse_dump_line(first)
    except ValueError:
        raise KabiError(
            path, "unrecognised content (not an RPM, .ko, symvers, stablelist or rpm -q dump)"
        ) from None
    return DUMP, data


def arch_from_name(name: str) -> str:
    """Guess an arch from a file or directory name (``symvers-5.14.0.x86_64.gz``)."""
    found = _ARCH_IN_NAME.findall(name)
    return normalize_arch(found[-1]) if found else UNKNOWN_ARCH


def label_from_name(path: str) -> str:
    """A readable kernel label for a symvers/dump file: its name without decoration."""
    base = os.path.basename(path)
    if base in ("Module.symvers", "symvers", "symvers.gz", "symvers.xz"):
        base = os.path.basename(os.path.dirname(os.path.abspath(path))) or base
    for suffix in _COMPRESSION_SUFFIXES + (".symvers", ".syms", ".txt"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    for prefix in ("symvers-", "Module.symvers-"):
        if base.startswith(prefix):
            base = base[len(prefix):]
    arch = arch_from_name(base)
    for sep in ".-_":
        if arch != UNKNOWN_ARCH and base.endswith(sep + arch):
            base = base[: -len(arch) - 1]
    return escape(base)  # a label is printed: a newline in a file name must not forge a line


def _text_lines(data: bytes, path: str) -> Iterable[str]:
    return text_lines(decode_text(data, path))


def _dump_triples(data: bytes, path: str) -> list[tuple[str, int, str]]:
    triples = []
    for lineno, line in enumerate(_text_lines(data, path), 1):
        try:
            triple = parse_dump_line(line)
        except ValueError as exc:
            raise KabiError(f"{path}:{lineno}", str(exc)) from None
        if triple is not None:
            triples.append(triple)
    return triples


def _kernel_key(path: str, arch: Optional[str]) -> TableKey:
    """The arch the file's name (or its directory's) says; ``arch`` names it when they don't."""
    guess = arch_from_name(os.path.basename(path))
    if guess == UNKNOWN_ARCH:
        guess = arch_from_name(os.path.basename(os.path.dirname(os.path.abspath(path))))
    if arch and guess not in (UNKNOWN_ARCH, normalize_arch(arch)):
        raise KabiError(path, f"--arch {arch} given, but the file name says {guess}")
    return TableKey(normalize_arch(arch) if arch else guess)


def build_nvr(hdr: RpmHeader, path: str) -> str:
    """The N-V-R of the build an RPM belongs to; an error if its SOURCERPM is not one."""
    nvr = hdr.build_nvr
    name, _, release = nvr.rpartition("-")
    if not release or not name.rpartition("-")[0] or not name.rpartition("-")[2]:
        raise KabiError(path, f"SOURCERPM {hdr.sourcerpm!r} is not N-V-R.src.rpm")
    return nvr


def kernel_from_file(path: str, arch: Optional[str] = None) -> tuple[str, SymbolTable]:
    """One file → (build or label, table).  ``arch`` names the arch when the name does not."""
    label, table, _rpm = _kernel_file(path, arch)
    return label, table


def _kernel_file(path: str, arch: Optional[str]) -> tuple[str, SymbolTable, bool]:
    """:func:`kernel_from_file`, and whether the label is an RPM build's N-V-R."""
    kind, data = sniff(path)
    if kind == RPM:
        hdr = read_rpm_file(path)
        table = kernel_table_from_header(hdr, path)
        if table is None:
            raise KabiError(path, f"not a kernel package: {hdr.nvra} has no "
                            "kernel(symbol) provides")
        return build_nvr(hdr, path), table, True
    assert data is not None
    key = _kernel_key(path, arch)
    if kind == SYMVERS:
        table = read_symvers_lines(_text_lines(data, path), key, path)
        return label_from_name(path), table, False
    if kind == DUMP:
        table = kernel_table_from_provides(_dump_triples(data, path), key.arch, "kernel", path)
        if table is None:
            raise KabiError(path, "no kernel(symbol) = CRC lines in this dump")
        return label_from_name(path), table, False
    raise KabiError(path, f"a {'.ko module' if kind == ELF else kind} is not a kernel")


def kmod_from_file(path: str) -> KmodRequirements:
    """One file → the kmod it describes; an error if it is not a kmod."""
    kind, data = sniff(path)
    if kind == RPM:
        hdr = read_rpm_file(path)
        if hdr.is_source:
            raise KabiError(path, "a source RPM is not a kmod package")
        return require_kmod(kmod_from_header(hdr, path))
    assert data is not None
    if kind == ELF:
        return require_kmod(read_ko(data, path))
    if kind == DUMP:
        name = label_from_name(path)
        return require_kmod(kmod_from_deps(nvr=name, name=name, arch=arch_from_name(name),
                                           provides=(), requires=_dump_triples(data, path),
                                           source=path))
    raise KabiError(path, f"a {kind} file is not a kmod")


def _walk(path: str) -> list[str]:
    """Files under ``path`` in a stable order (FIFOs, devices … too: readers refuse them)."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return out


def _by_label(files: list[tuple[str, SymbolTable]]) -> dict[str, dict[TableKey, list[SymbolTable]]]:
    """Kernel files (not RPMs) grouped into kernels by the label their names give.

    Files of one label but different arches are one multi-arch kernel.  When two files
    of one label have the same (arch, flavour) — ``a/linux/Module.symvers`` and
    ``b/linux/Module.symvers`` — every file of that label is labelled by its whole path
    instead: uniting them would mix two kernels into one.
    """
    keys = Counter((label, table.key) for label, table in files)
    clash = {label for (label, _key), n in keys.items() if n > 1}
    parts: dict[str, dict[TableKey, list[SymbolTable]]] = {}
    for label, table in files:
        label = escape(table.source) if label in clash else label
        parts.setdefault(label, {}).setdefault(table.key, []).append(table)
    return parts


def _compare_nvr(a: str, b: str) -> int:
    """RPM version order of two build N-V-Rs (name first, so builds of a package group)."""
    import rpm

    na, va, ra = a.rsplit("-", 2)
    nb, vb, rb = b.rsplit("-", 2)
    if na != nb:
        return -1 if na < nb else 1
    return rpm.labelCompare(("0", va, ra), ("0", vb, rb))


def _compare_label(a: str, b: str) -> int:
    """rpmvercmp order of file labels (``6.1.0-99`` before ``6.1.0-100``)."""
    import rpm

    return rpm.labelCompare(("0", a, "0"), ("0", b, "0"))


def _assemble(parts: dict[str, dict[TableKey, list[SymbolTable]]],
              order: list[str]) -> list[Kernel]:
    kernels = []
    for label in order:
        tables = {key: merge_tables(key, lst) for key, lst in parts[label].items()}
        sources = tuple(t.source for lst in parts[label].values() for t in lst)
        kernels.append(Kernel(label, tables, sources))
    return kernels


def scan(paths: Iterable[str], *, kernels: bool = True, kmods: bool = True,
         arch: Optional[str] = None) -> Loaded:
    """Walk files and directories, sorting what is inside into kernels and kmods.

    Unreadable files inside a directory are skipped with their error kept in
    ``Loaded.skipped``; a bad file named directly raises.
    """
    loaded = Loaded()
    for path in paths:
        if not os.path.exists(path):
            raise KabiError(path, "no such file or directory")
        if not os.path.isdir(path):
            raise KabiError(path, "scan() takes directories")
        rpm_parts: dict[str, dict[TableKey, list[SymbolTable]]] = {}
        files: list[tuple[str, SymbolTable]] = []
        for file in _walk(path):
            try:
                _scan_file(file, loaded, rpm_parts, files, kernels, kmods, arch)
            except KabiError as exc:
                loaded.skipped.append(exc)
        order = sorted(rpm_parts, key=cmp_to_key(_compare_nvr))
        loaded.rpm_builds.update(rpm_parts)
        file_parts = _by_label(files)
        order += sorted((label for label in file_parts if label not in rpm_parts),
                        key=cmp_to_key(_compare_label))
        for label, by_key in file_parts.items():
            for key, tables in by_key.items():
                rpm_parts.setdefault(label, {}).setdefault(key, []).extend(tables)
        loaded.kernels.extend(_assemble(rpm_parts, order))
    return loaded


def _scan_file(file: str, loaded: Loaded, rpm_parts: dict[str, dict[TableKey, list[SymbolTable]]],
               files: list[tuple[str, SymbolTable]], want_kernels: bool, want_kmods: bool,
               arch: Optional[str]) -> None:
    kind, data = sniff(file)
    if kind == RPM:
        hdr: RpmHeader = read_rpm_file(file)
        if hdr.is_source:
            return
        table = kernel_table_from_header(hdr, file)
        if table is not None:
            if want_kernels:
                nvr = build_nvr(hdr, file)
                rpm_parts.setdefault(nvr, {}).setdefault(table.key, []).append(table)
            return
        kmod = kmod_from_header(hdr, file)
        if kmod.is_kmod and want_kmods:
            loaded.kmods.append(kmod)
        return
    if kind == ELF and want_kmods:
        loaded.kmods.append(require_kmod(read_ko(data or b"", file)))
    elif kind == SYMVERS and want_kernels:
        files.append(kernel_from_file(file, arch))
    elif kind == DUMP and want_kmods and not want_kernels:
        loaded.kmods.append(kmod_from_file(file))
    elif kind == DUMP and want_kernels and not want_kmods:
        files.append(kernel_from_file(file, arch))


def load_kernels(paths: Iterable[str], arch: Optional[str] = None,
                 on_skip: Optional[Callable[[KabiError], None]] = None) -> list[Kernel]:
    """Each path is a kernel file, or a directory holding one or more kernel builds.

    Files given one after another are one kernel each, in the order given (RPM files of
    one build, and symvers files of one name but different arches, are united); the
    builds found in a directory come in RPM version order.
    """
    entries: list[tuple[Kernel, bool, str]] = []  # (kernel, labelled by its NVR, path)
    for path in paths:
        if os.path.isdir(path):
            loaded = scan([path], kmods=False, arch=arch)
            for problem in loaded.skipped:
                if on_skip is None:
                    raise problem
                on_skip(problem)
            if not loaded.kernels:
                raise KabiError(path, "no kernel packages or symvers files inside")
            entries.extend((k, k.nvr in loaded.rpm_builds, path) for k in loaded.kernels)
        else:
            label, table, rpm = _kernel_file(path, arch)
            entries.append((Kernel(label, {table.key: table}, (path,)), rpm, path))
    return _unite(_distinct_labels(entries))


def _distinct_labels(entries: list[tuple[Kernel, bool, str]]) -> list[Kernel]:
    """Kernels labelled by file names, made distinct where uniting them would mix two.

    An RPM build's N-V-R is its identity (its RPMs unite, wherever they were found); a
    label from a file name is not: when two kernels of one such label have an (arch,
    flavour) in common, each is labelled by its path (and the label, for a directory).
    """
    keys: dict[str, list[TableKey]] = {}
    for kernel, rpm, _path in entries:
        if not rpm:
            keys.setdefault(kernel.nvr, []).extend(kernel.tables)
    clash = {label for label, found in keys.items() if len(found) != len(set(found))}
    out = []
    for kernel, rpm, path in entries:
        if not rpm and kernel.nvr in clash:
            label = path if not os.path.isdir(path) else os.path.join(path, kernel.nvr)
            kernel = Kernel(escape(label), kernel.tables, kernel.sources)
        out.append(kernel)
    return out


def _unite(kernels: list[Kernel]) -> list[Kernel]:
    """Kernels of one label (the RPMs of one build named one by one …) form one kernel."""
    united: dict[str, list[Kernel]] = {}
    for kernel in kernels:
        united.setdefault(kernel.nvr, []).append(kernel)
    out = []
    for nvr, group in united.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        by_key: dict[TableKey, list[SymbolTable]] = {}
        for k in group:
            for key, table in k.tables.items():
                by_key.setdefault(key, []).append(table)
        tables = {key: merge_tables(key, lst) for key, lst in by_key.items()}
        out.append(Kernel(nvr, tables, tuple(s for k in group for s in k.sources)))
    return out


def load_kernel(path: str, arch: Optional[str] = None,
                on_skip: Optional[Callable[[KabiError], None]] = None) -> Kernel:
    """Exactly one kernel from a file or a directory."""
    kernels = load_kernels([path], arch, on_skip)
    if len(kernels) != 1:
        names = ", ".join(k.nvr for k in kernels)
        raise KabiError(path, f"holds {len(kernels)} kernel builds ({names}); name one")
    return kernels[0]


def load_kmods(paths: Iterable[str],
               on_skip: Optional[Callable[[KabiError], None]] = None) -> list[KmodRequirements]:
    """Kmods from files (each must be one) and directories (non-kmods are passed over)."""
    kmods: list[KmodRequirements] = []
    for path in paths:
        if os.path.isdir(path):
            loaded = scan([path], kernels=False)
            for problem in loaded.skipped:
                if on_skip is None:
                    raise problem
                on_skip(problem)
            kmods.extend(loaded.kmods)
        else:
            kmods.append(kmod_from_file(path))
    return kmods


def load_stablelists(paths: Iterable[str],
                     on_skip: Optional[Callable[[KabiError], None]] = None
                     ) -> dict[str, Stablelist]:
    """Stablelists by arch from list files, directory trees or the stablelists RPM."""
    lists: dict[str, Stablelist] = {}
    for path in paths:
        if os.path.isdir(path):
            lists.update(read_stablelist_dir(path, on_skip))
            continue
        kind, data = sniff(path)
        if kind == RPM:
            lists.update(read_stablelist_rpm(path))
        elif kind == STABLELIST and data is not None:
            lst = parse_stablelist(_text_lines(data, path), path,
                                   arch_from_name(os.path.basename(path)))
            lists[lst.arch] = lst
        else:
            raise KabiError(path, "not a kABI stablelist")
    return lists


__all__ = [
    "Loaded",
    "kernel_from_file",
    "kmod_from_file",
    "load_kernel",
    "load_kernels",
    "load_kmods",
    "load_stablelists",
    "scan",
    "sniff",
]
