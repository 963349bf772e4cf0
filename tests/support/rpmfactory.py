"""Build REAL RPMs with ``rpmbuild`` for the test-suite.

Why: koji-kabi reads ``kernel(sym) = 0xCRC`` dependencies out of RPM headers; hand-made
byte blobs or mocked headers would only prove that we agree with ourselves.  This module
describes packages as immutable dataclasses, renders them into ONE ``.spec`` per source
package (one Koji "build"), and runs the real ``rpmbuild`` once per target arch.  Only
``build_rpms`` (and the small corruption helpers) touch the disk; everything else is pure.

Conventions kept close to RHEL/CentOS Stream (see shared/reference/kabi-rhel.md):

* kernel ``Provides: kernel(sym) = 0x%08x`` sit on ``kernel[-flavour]-core`` (the package
  owning ``/lib/modules/<kver>/symvers.gz``);
* kmods carry ``Requires: kernel(sym) = 0x%08x`` / ``ksym(sym)`` and ``Provides: kmod(x.ko)``;
* ``kernel-abi-stablelists`` (or the older ``kernel-abi-whitelists``) is noarch.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = [
    "ARCHES",
    "BinaryPackage",
    "Build",
    "Churn",
    "Export",
    "RpmBuildError",
    "ToolMissing",
    "binary_package",
    "build_rpms",
    "cache_key",
    "churn",
    "default_export",
    "expected_rpm_names",
    "format_crc",
    "kernel_build",
    "kernel_kver",
    "kmod_build",
    "make_not_rpm",
    "overwrite_copy",
    "per_arch_tables",
    "plain_build",
    "random_symbols",
    "spec_text",
    "stablelist_build",
    "stablelist_package",
    "symvers_text",
    "truncate_copy",
]

#: Arches the factory is exercised on (all build fine on an x86_64 host: no compiled code).
ARCHES: tuple[str, ...] = ("x86_64", "aarch64", "ppc64le", "s390x")

#: Bump when the spec rendering changes in a way the cache key cannot see.
_FACTORY_VERSION = "rpmfactory-1"

#: zstd level 1: RHEL 9 payloads are zstd too, and level 19 takes ~11 s per 50 MB of padding.
DEFAULT_PAYLOAD = "w1.zstdio"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_VERREL_RE = re.compile(r"^[A-Za-z0-9._+~^]+$")
_ARCH_RE = re.compile(r"^[A-Za-z0-9_]+$")
# Paths go verbatim into %files and %install: refuse anything rpm would glob or expand.
_PATH_RE = re.compile(r"^(/[A-Za-z0-9._+@=,:~-]+)+$")

#: (module, export type, namespace) of one Module.symvers line,
#: e.g. ("vmlinux", "EXPORT_SYMBOL", "").
Export = tuple[str, str, str]


class ToolMissing(RuntimeError):
    """A required external tool (rpmbuild, ...) is not installed; tests should skip."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"required tool not found on PATH: {tool}")
        self.tool = tool


class RpmBuildError(RuntimeError):
    """rpmbuild failed or produced unexpected files; carries the log tail to debug it."""

    def __init__(self, message: str, log: str = "") -> None:
        tail = "\n".join(log.splitlines()[-40:])
        super().__init__(f"{message}\n--- rpmbuild log tail ---\n{tail}" if tail else message)
        self.log = log


# --------------------------------------------------------------------------- model


def _check_path(path: str) -> str:
    if not _PATH_RE.match(path) or "/../" in path + "/" or "/./" in path + "/":
        raise ValueError(f"unsupported path for a fixture RPM: {path!r}")
    return path


def _check_dep(dep: str) -> str:
    # One string must stay one dependency: rpm splits on commas and would expand macros.
    if not dep.strip() or "\n" in dep or "," in dep:
        raise ValueError(f"unsupported dependency string: {dep!r}")
    return dep


@dataclass(frozen=True)
class BinaryPackage:
    """One binary RPM of one arch.  Use :func:`binary_package` to build it from dicts."""

    name: str
    arch: str
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()
    symlinks: tuple[tuple[str, str], ...] = ()
    dirs: tuple[str, ...] = ()
    license: str | None = None
    summary: str | None = None
    padding_bytes: int = 0
    padding_path: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"bad package name: {self.name!r}")
        if not _ARCH_RE.match(self.arch):
            raise ValueError(f"bad arch: {self.arch!r}")
        for dep in (*self.provides, *self.requires):
            _check_dep(dep)
        for path in (*(p for p, _ in self.files), *(p for p, _ in self.symlinks), *self.dirs):
            _check_path(path)
        if self.padding_bytes < 0:
            raise ValueError("padding_bytes must be >= 0")
        if self.padding_path is not None:
            _check_path(self.padding_path)
        owned = self.owned_paths()
        if len(owned) != len(set(owned)):
            raise ValueError(f"{self.name}: the same path is listed twice")

    @property
    def effective_padding_path(self) -> str | None:
        """Where the padding file goes, or None without padding."""
        if not self.padding_bytes:
            return None
        return self.padding_path or f"/usr/share/{self.name}/padding.bin"

    def owned_paths(self) -> list[str]:
        """Every path this package lists in %files (files, symlinks, dirs, padding)."""
        paths = [p for p, _ in self.files] + [p for p, _ in self.symlinks] + list(self.dirs)
        pad = self.effective_padding_path
        return paths + ([pad] if pad else [])


def binary_package(
    name: str,
    arch: str,
    *,
    provides: Iterable[str] = (),
    requires: Iterable[str] = (),
    files: Mapping[str, bytes] | None = None,
    symlinks: Mapping[str, str] | None = None,
    dirs: Iterable[str] = (),
    license: str | None = None,
    summary: str | None = None,
    padding_bytes: int = 0,
    padding_path: str | None = None,
) -> BinaryPackage:
    """Convenience constructor taking dicts/iterables (the dataclass itself stays hashable)."""
    return BinaryPackage(
        name=name,
        arch=arch,
        provides=tuple(provides),
        requires=tuple(requires),
        files=tuple(sorted((files or {}).items())),
        symlinks=tuple(sorted((symlinks or {}).items())),
        dirs=tuple(dirs),
        license=license,
        summary=summary,
        padding_bytes=padding_bytes,
        padding_path=padding_path,
    )


@dataclass(frozen=True)
class Build:
    """One source package = one spec = one Koji build, with its binary RPMs on all arches."""

    name: str
    version: str
    release: str
    packages: tuple[BinaryPackage, ...]
    epoch: int | None = None
    license: str = "GPLv2"
    summary: str = "koji-kabi test fixture"
    payload: str = DEFAULT_PAYLOAD

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"bad source package name: {self.name!r}")
        for what, value in (("version", self.version), ("release", self.release)):
            if not _VERREL_RE.match(value):
                raise ValueError(f"bad {what}: {value!r} (no '-' allowed)")
        if not self.packages:
            raise ValueError(f"{self.name}: a build needs at least one binary package")
        seen: set[tuple[str, str]] = set()
        paths: dict[tuple[str, str], str] = {}
        for pkg in self.packages:
            if (pkg.name, pkg.arch) in seen:
                raise ValueError(f"{pkg.name}.{pkg.arch} listed twice in {self.name}")
            seen.add((pkg.name, pkg.arch))
            for path in pkg.owned_paths():
                other = paths.setdefault((pkg.arch, path), pkg.name)
                if other != pkg.name:
                    raise ValueError(f"{path} owned by both {other} and {pkg.name} on {pkg.arch}")
            if pkg.name == self.name and pkg.license not in (None, self.license):
                raise ValueError("the main package's license must be Build.license")

    @property
    def arches(self) -> tuple[str, ...]:
        """Target arches rpmbuild must run for, sorted (noarch included if present)."""
        return tuple(sorted({p.arch for p in self.packages}))

    @property
    def nvr(self) -> str:
        """Koji-style build NVR (no epoch)."""
        return f"{self.name}-{self.version}-{self.release}"


# --------------------------------------------------------------------------- spec rendering


def _esc(text: str) -> str:
    """Escape rpm macro characters so a value reaches the header verbatim."""
    return text.replace("%", "%%")


def _description(name: str) -> list[str]:
    return [f"Test fixture {name} built by koji-kabi tests/support/rpmfactory.", ""]


def spec_text(build: Build) -> str:
    """Render the spec: pure, deterministic, so its hash can key the on-disk cache."""
    by_arch: dict[str, list[BinaryPackage]] = {}
    for pkg in sorted(build.packages, key=lambda p: (p.arch, p.name)):
        by_arch.setdefault(pkg.arch, []).append(pkg)
    out = [
        "# Generated by koji-kabi tests/support/rpmfactory.py -- do not edit.",
        "%global debug_package %{nil}",
        "%global __os_install_post %{nil}",
        "%global _build_id_links none",
        f"%global _binary_payload {build.payload}",
        f"Name: {build.name}",
        f"Version: {build.version}",
        f"Release: {build.release}",
    ]
    if build.epoch is not None:
        out.append(f"Epoch: {build.epoch}")
    out += [f"Summary: {_esc(build.summary)}", f"License: {_esc(build.license)}", "AutoReqProv: no"]
    if build.arches == ("noarch",):
        out.append("BuildArch: noarch")
    for arch, pkgs in by_arch.items():
        for pkg in pkgs:
            if pkg.name == build.name:  # main package: its deps live in the main preamble
                out.append(f"%ifarch {arch}")
                out += [f"Provides: {_esc(d)}" for d in pkg.provides]
                out += [f"Requires: {_esc(d)}" for d in pkg.requires]
                out.append("%endif")
    out += ["", "%description", *_description(build.name)]
    for arch, pkgs in by_arch.items():
        subs = [p for p in pkgs if p.name != build.name]
        if not subs:
            continue
        out.append(f"%ifarch {arch}")
        for pkg in subs:
            out += [
                f"%package -n {pkg.name}",
                f"Summary: {_esc(pkg.summary or build.summary)}",
                f"License: {_esc(pkg.license or build.license)}",
            ]
            out += [f"Provides: {_esc(d)}" for d in pkg.provides]
            out += [f"Requires: {_esc(d)}" for d in pkg.requires]
            out += ["", f"%description -n {pkg.name}", *_description(pkg.name)]
        out.append("%endif")
    out += ["%prep", "", "%build", "", "%install"]
    for arch, pkgs in by_arch.items():
        if any(p.owned_paths() for p in pkgs):
            out += [
                f"%ifarch {arch}",
                f"cp -a %{{_sourcedir}}/root-{arch}/. %{{buildroot}}/",
                "%endif",
            ]
    out.append("")
    for arch, pkgs in by_arch.items():
        out.append(f"%ifarch {arch}")
        for pkg in pkgs:
            out.append("%files" if pkg.name == build.name else f"%files -n {pkg.name}")
            out.append("%defattr(-,root,root,-)")
            out += [f"%dir {d}" for d in pkg.dirs]
            out += sorted([p for p, _ in pkg.files] + [p for p, _ in pkg.symlinks])
            pad = pkg.effective_padding_path
            if pad:
                out.append(pad)
            out.append("")
        out.append("%endif")
    return "\n".join(out) + "\n"


def _rpm_filename(name: str, version: str, release: str, arch: str) -> str:
    return f"{name}-{version}-{release}.{arch}.rpm"


def expected_rpm_names(build: Build, *, srpm: bool = True) -> list[str]:
    """File names rpmbuild must produce for ``build`` (SRPM first), used to verify the run."""
    names = [_rpm_filename(build.name, build.version, build.release, "src")] if srpm else []
    names += sorted(
        _rpm_filename(p.name, build.version, build.release, p.arch) for p in build.packages
    )
    return names


# --------------------------------------------------------------------------- payload trees


def _padding_chunks(seed: str, size: int, chunk: int = 1 << 20) -> Iterable[bytes]:
    """Deterministic incompressible bytes (same fixture => same cache key and content)."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def _padding_seed(build: Build, pkg: BinaryPackage) -> str:
    return f"{build.nvr}/{pkg.name}/{pkg.arch}/{pkg.padding_bytes}"


def _tree_manifest(build: Build) -> list[str]:
    """Content fingerprint of every payload entry, for the cache key."""
    lines = []
    for pkg in sorted(build.packages, key=lambda p: (p.arch, p.name)):
        for path, data in pkg.files:
            lines.append(f"F {pkg.arch} {path} {hashlib.sha256(data).hexdigest()}")
        for path, target in pkg.symlinks:
            lines.append(f"L {pkg.arch} {path} {target}")
        if pkg.padding_bytes:
            lines.append(f"P {pkg.arch} {pkg.effective_padding_path} {_padding_seed(build, pkg)}")
    return lines


def _write_trees(build: Build, sources: Path) -> None:
    for pkg in build.packages:
        root = sources / f"root-{pkg.arch}"
        root.mkdir(parents=True, exist_ok=True)
        for d in pkg.dirs:
            (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for path, data in pkg.files:
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(0o644)
        for path, target in pkg.symlinks:
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, dest)
        pad = pkg.effective_padding_path
        if pad:
            dest = root / pad.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as fh:
                for chunk in _padding_chunks(_padding_seed(build, pkg), pkg.padding_bytes):
                    fh.write(chunk)
            dest.chmod(0o644)


# --------------------------------------------------------------------------- rpmbuild driver


@cache
def _rpmbuild_version(rpmbuild: str) -> str:
    exe = shutil.which(rpmbuild)
    if exe is None:
        raise ToolMissing(rpmbuild)
    res = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return res.stdout.strip()


def cache_key(build: Build, *, srpm: bool = True, rpmbuild: str = "rpmbuild") -> str:
    """Hash of everything that determines the output: spec, payload, flags, rpmbuild version."""
    h = hashlib.sha256()
    for part in (
        _FACTORY_VERSION,
        _rpmbuild_version(rpmbuild),
        f"srpm={srpm}",
        spec_text(build),
        *_tree_manifest(build),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _run_rpmbuild(argv: list[str], env: dict[str, str], timeout: float) -> None:
    res = subprocess.run(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise RpmBuildError(f"rpmbuild failed ({res.returncode}): {' '.join(argv)}", res.stdout)


def _build_one(build: Build, dest: Path, *, srpm: bool, rpmbuild: str, timeout: float) -> None:
    """Run rpmbuild for every arch of ``build`` in a private _topdir; copy results to dest."""
    exe = shutil.which(rpmbuild)
    if exe is None:
        raise ToolMissing(rpmbuild)
    with tempfile.TemporaryDirectory(prefix="rpmfactory-") as tmp:
        top = Path(tmp) / "top"
        for sub in ("SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS", "tmp", "home"):
            (top / sub).mkdir(parents=True)
        spec = top / "SPECS" / f"{build.name}.spec"
        spec.write_text(spec_text(build))
        _write_trees(build, top / "SOURCES")
        # Private HOME: a developer's ~/.rpmmacros must not change the fixtures.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(top / "home"),
            "LC_ALL": "C",
        }
        for i, arch in enumerate(build.arches):
            mode = "-ba" if (srpm and i == 0) else "-bb"
            argv = [
                exe,
                mode,
                "--nodeps",
                "--target",
                arch,
                "--define",
                f"_topdir {top}",
                "--define",
                f"_tmppath {top / 'tmp'}",
                "--define",
                "_buildhost rpmfactory.koji-kabi.test",
                str(spec),
            ]
            _run_rpmbuild(argv, env, timeout)
        produced = {p.name: p for p in (*top.glob("RPMS/*/*.rpm"), *top.glob("SRPMS/*.rpm"))}
        expected = expected_rpm_names(build, srpm=srpm)
        if sorted(produced) != sorted(expected):
            raise RpmBuildError(
                f"{build.nvr}: rpmbuild produced {sorted(produced)}, expected {expected}"
            )
        dest.mkdir(parents=True, exist_ok=True)
        for name in expected:
            shutil.copyfile(produced[name], dest / name)


def build_rpms(
    builds: Build | Iterable[Build],
    outdir: str | os.PathLike[str],
    *,
    srpm: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    rpmbuild: str = "rpmbuild",
    timeout: float = 600.0,
) -> list[Path]:
    """Build every ``Build`` with real rpmbuild and copy its RPMs into ``outdir``.

    Returns the copied paths (per build, in input order: SRPM first, then binaries by file
    name).  With ``cache_dir``, finished builds are stored under ``cache_dir/<cache_key>/``
    and reused; entries appear atomically (rename), so concurrent sessions at worst build
    twice.  Files in ``outdir`` are always fresh copies, so tests may corrupt them freely.
    ``jobs`` > 1 runs independent builds in parallel (handy for hundreds of kmods).
    """
    todo = list(dict.fromkeys([builds] if isinstance(builds, Build) else builds))
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    cdir = Path(cache_dir) if cache_dir is not None else None
    if cdir is not None:
        cdir.mkdir(parents=True, exist_ok=True)

    def produce(build: Build) -> list[Path]:
        names = expected_rpm_names(build, srpm=srpm)
        if cdir is None:
            _build_one(build, out, srpm=srpm, rpmbuild=rpmbuild, timeout=timeout)
        else:
            entry = cdir / cache_key(build, srpm=srpm, rpmbuild=rpmbuild)
            if not entry.is_dir():
                staging = Path(tempfile.mkdtemp(dir=cdir, prefix=".staging-"))
                try:
                    _build_one(build, staging, srpm=srpm, rpmbuild=rpmbuild, timeout=timeout)
                    with contextlib.suppress(OSError):  # another session won the race
                        staging.rename(entry)
                finally:
                    if staging.exists():
                        shutil.rmtree(staging)
            for name in names:
                shutil.copyfile(entry / name, out / name)
        return [out / name for name in names]

    if jobs > 1 and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            per_build = list(pool.map(produce, todo))
    else:
        per_build = [produce(b) for b in todo]
    return [path for paths in per_build for path in paths]


# --------------------------------------------------------------------------- symbols


def format_crc(crc: int) -> str:
    """``0x%08x``: the exact CRC spelling of kabi.sh and find-requires.ksyms."""
    if not 0 <= crc <= 0xFFFFFFFF:
        raise ValueError(f"CRC out of 32-bit range: {crc!r}")
    return f"0x{crc:08x}"


def _deps(kind: str, symbols: Mapping[str, int]) -> list[str]:
    return [f"{kind}({sym}) = {format_crc(crc)}" for sym, crc in sorted(symbols.items())]


_SUBSYS = (
    "pci",
    "usb",
    "drm",
    "netdev",
    "dev",
    "skb",
    "nf",
    "ib",
    "scsi",
    "blk",
    "bio",
    "dma",
    "irq",
    "mutex",
    "kmem",
    "vfs",
    "sock",
    "tcp",
    "ipv6",
    "crypto",
    "acpi",
    "of",
    "clk",
    "regulator",
    "gpio",
    "i2c",
    "spi",
    "mdio",
    "phy",
    "nvme",
    "rdma",
    "xfs",
    "ext4",
    "iommu",
    "pm",
    "sched",
    "rcu",
    "ktime",
    "hrtimer",
    "kobject",
    "sysfs",
    "debugfs",
    "seq",
    "cpu",
    "page",
    "folio",
    "mm",
    "vm",
    "ttm",
    "sk",
    "inet",
    "xdp",
    "bpf",
    "fs",
    "sg",
    "mlx5",
)
_VERBS = (
    "alloc",
    "free",
    "get",
    "put",
    "register",
    "unregister",
    "init",
    "exit",
    "add",
    "del",
    "find",
    "lookup",
    "create",
    "destroy",
    "enable",
    "disable",
    "set",
    "clear",
    "read",
    "write",
    "map",
    "unmap",
    "start",
    "stop",
    "queue",
    "flush",
    "attach",
    "detach",
    "open",
    "release",
    "lock",
    "unlock",
    "reset",
    "update",
    "submit",
    "complete",
)
_NOUNS = (
    "device",
    "driver",
    "buffer",
    "queue",
    "entry",
    "table",
    "node",
    "page",
    "region",
    "resource",
    "context",
    "state",
    "handle",
    "object",
    "work",
    "timer",
    "port",
    "link",
    "bus",
    "chan",
    "desc",
    "ops",
    "attr",
    "config",
    "stats",
    "mem",
    "event",
    "msg",
    "req",
    "ring",
    "fence",
    "domain",
    "group",
    "frame",
    "key",
)
_SUFFIXES = ("", "", "", "", "_locked", "_rcu", "_atomic", "_sync", "_noprof", "_gpl")


def random_symbols(n: int, seed: int = 0, prefix: str = "") -> dict[str, int]:
    """``n`` unique, deterministic, kernel-looking symbol names with random non-zero CRCs.

    Names look like ``drm_gem_alloc_buffer``/``__nvme_queue_put_rcu`` so sorting and
    prefix filters behave as on real tables; ``prefix`` is prepended to every name.
    """
    rng = random.Random(f"random_symbols/{seed}")
    out: dict[str, int] = {}
    misses = 0
    while len(out) < n:
        sub = rng.choice(_SUBSYS)
        verb, noun = rng.choice(_VERBS), rng.choice(_NOUNS)
        core = f"{sub}_{verb}_{noun}" if rng.random() < 0.6 else f"{sub}_{noun}_{verb}"
        name = f"{prefix}{'__' if rng.random() < 0.08 else ''}{core}{rng.choice(_SUFFIXES)}"
        if name in out:
            misses += 1
            if misses < 8:
                continue
            name = f"{name}{len(out)}"
        misses = 0
        out[name] = rng.randrange(1, 1 << 32)
    return out


def _new_crc(rng: random.Random, old: int) -> int:
    while True:
        crc = rng.randrange(1, 1 << 32)
        if crc != old:
            return crc


def per_arch_tables(
    symbols: Mapping[str, int],
    arches: Sequence[str] = ARCHES,
    *,
    differ_frac: float = 0.3,
    seed: int = 0,
) -> dict[str, dict[str, int]]:
    """Same names on every arch; the first arch keeps ``symbols``, others re-roll a fraction.

    Why: CRCs depend on arch-specific struct layouts, so a reader that mixes arches must fail.
    """
    rng = random.Random(f"per_arch_tables/{seed}")
    names = sorted(symbols)
    tables: dict[str, dict[str, int]] = {}
    for i, arch in enumerate(arches):
        table = dict(symbols)
        if i:
            for sym in rng.sample(names, round(differ_frac * len(names))):
                table[sym] = _new_crc(rng, table[sym])
        tables[arch] = table
    return tables


@dataclass(frozen=True)
class Churn:
    """The next kernel's table plus the ground truth of what changed (for assertions)."""

    symbols: dict[str, int]
    changed: frozenset[str]
    added: frozenset[str]
    removed: frozenset[str]


def churn(
    symbols: Mapping[str, int],
    changed_frac: float = 0.0,
    added: int = 0,
    removed: int = 0,
    seed: int = 0,
) -> Churn:
    """Derive a successor table: disjoint sets of CRC-changed, removed and added symbols."""
    rng = random.Random(f"churn/{seed}")
    names = sorted(symbols)
    n_changed = round(changed_frac * len(names))
    if n_changed + removed > len(names):
        raise ValueError("cannot change and remove more symbols than exist")
    picked = rng.sample(names, n_changed + removed)
    changed, gone = picked[:n_changed], picked[n_changed:]
    new = {k: v for k, v in symbols.items() if k not in set(gone)}
    for sym in changed:
        new[sym] = _new_crc(rng, new[sym])
    fresh: list[str] = []
    want = added
    while len(fresh) < added:  # grow the candidate pool until enough names are unused
        want *= 2
        pool = random_symbols(want + 16, seed=seed + 7919, prefix="new_")
        fresh = [s for s in pool if s not in symbols][:added]
    for sym in fresh:
        new[sym] = rng.randrange(1, 1 << 32)
    return Churn(new, frozenset(changed), frozenset(fresh), frozenset(gone))


# --------------------------------------------------------------------------- kernel builds


def kernel_kver(version: str, release: str, arch: str, flavour: str = "") -> str:
    """``uname -r`` of a kernel: ``<version>-<release>.<arch>[+flavour]`` (c9s naming)."""
    return f"{version}-{release}.{arch}" + (f"+{flavour}" if flavour else "")


def default_export(sym: str) -> Export:
    """Deterministic fake origin of a symbol: ~85% vmlinux, the rest in 24 fake modules."""
    h = zlib.crc32(sym.encode())
    module = "vmlinux" if h % 100 < 85 else f"drivers/kabi/mod{(h >> 8) % 24:02d}"
    return module, ("EXPORT_SYMBOL_GPL" if (h >> 16) & 1 else "EXPORT_SYMBOL"), ""


def symvers_text(
    symbols: Mapping[str, int],
    exports: Mapping[str, Export] | None = None,
    columns: Literal[4, 5] = 5,
) -> str:
    """Module.symvers text: ``crc<TAB>sym<TAB>module<TAB>type<TAB>ns`` (4 columns on EL8)."""
    lines = []
    for sym, crc in sorted(symbols.items()):
        module, etype, ns = (exports or {}).get(sym) or default_export(sym)
        cols = [format_crc(crc), sym, module, etype] + ([ns] if columns == 5 else [])
        lines.append("\t".join(cols) + "\n")
    return "".join(lines)


def kernel_build(
    name: str = "kernel",
    version: str = "5.14.0",
    release: str = "1.el9",
    arches: Sequence[str] = ("x86_64",),
    symbols: Mapping[str, Mapping[str, int]] | None = None,
    *,
    flavours: Sequence[str] = ("",),
    split: Sequence[str] = ("core", "modules", "modules-extra"),
    payload_bytes: int = 0,
    symvers: bool = True,
    exports: Mapping[str, Export] | None = None,
    provided_ksyms: bool = False,
    flavour_symbols: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
    symvers_columns: Literal[4, 5] = 5,
    license: str = "GPLv2",
    extra_packages: Sequence[BinaryPackage] = (),
) -> Build:
    """A kernel source build: per arch and flavour ``<name>[-flavour]-<part>`` packages.

    ``symbols[arch]`` = {sym: crc}; ``flavour_symbols[flavour][arch]`` overrides it (debug
    kernels have their own CRCs).  All ``kernel(sym)`` provides go on ``-core`` with
    ``symvers.gz``; ``provided_ksyms=True`` also puts each non-vmlinux export on the module
    subpackage shipping its fake ``.ko`` (what provided_ksyms.attr does).  ``payload_bytes``
    of random padding go into core at ``/lib/modules/<kver>/padding.bin``.
    ``extra_packages`` (e.g. :func:`stablelist_package`) join the same build.
    """
    if "core" not in split:
        raise ValueError("split must contain 'core' (it owns symvers.gz and the provides)")
    symbols = symbols or {}
    mod_parts = [p for p in split if p != "core"]
    pkgs: list[BinaryPackage] = []
    for arch in arches:
        for flavour in flavours:
            override = (flavour_symbols or {}).get(flavour, {})
            if arch not in override and arch not in symbols and (symbols or override):
                raise ValueError(f"no symbol table for arch {arch!r} (flavour {flavour!r})")
            table = dict(override.get(arch, symbols.get(arch, {})))
            kver = kernel_kver(version, release, arch, flavour)
            base = f"{name}-{flavour}" if flavour else name
            core_name = f"{base}-core"
            moddir = f"/lib/modules/{kver}"
            origin = {s: (exports or {}).get(s) or default_export(s) for s in table}
            modules = sorted({m for m, _, _ in origin.values() if m != "vmlinux"})
            part_of = {m: mod_parts[i % len(mod_parts)] for i, m in enumerate(modules) if mod_parts}
            core_files = {f"{moddir}/vmlinuz": f"fake vmlinuz {kver}\n".encode()}
            if symvers:
                text = symvers_text(table, origin, symvers_columns).encode()
                core_files[f"{moddir}/symvers.gz"] = gzip.compress(text, 9, mtime=0)
            core_provides = [
                f"{name} = {version}-{release}",
                f"kernel-uname-r = {kver}",
                f"{core_name}-uname-r = {kver}",
                "installonlypkg(kernel)",
                *_deps("kernel", table),
            ]
            if not mod_parts:  # no module packages: core ships the modules itself
                for m in modules:
                    core_files[f"{moddir}/kernel/{m}.ko"] = f"fake module {m}\n".encode()
            pkgs.append(
                binary_package(
                    core_name,
                    arch,
                    provides=core_provides,
                    files=core_files,
                    license=license,
                    padding_bytes=payload_bytes,
                    padding_path=f"{moddir}/padding.bin" if payload_bytes else None,
                )
            )
            for part in mod_parts:
                mine = [m for m in modules if part_of[m] == part]
                files = {f"{moddir}/kernel/{m}.ko": f"fake module {m}\n".encode() for m in mine}
                provides = [f"{base}-{part}-uname-r = {kver}"]
                if provided_ksyms:
                    exported = {s: c for s, c in table.items() if origin[s][0] in mine}
                    provides += _deps("kernel", exported)
                pkgs.append(
                    binary_package(
                        f"{base}-{part}",
                        arch,
                        provides=provides,
                        files=files,
                        license=license,
                        requires=[f"{core_name}-uname-r = {kver}"],
                    )
                )
    pkgs += extra_packages
    return Build(name, version, release, tuple(pkgs), license=license)


# --------------------------------------------------------------------------- kmods & others


def kmod_build(
    name: str = "kmod-foo",
    version: str = "1.0",
    release: str = "1.el9",
    arch: str = "x86_64",
    requires: Mapping[str, int] | None = None,
    *,
    ksym_requires: Mapping[str, int] | None = None,
    ksym_provides: Mapping[str, int] | None = None,
    modules: Sequence[str] = ("foo",),
    kver: str = "5.14.0-1.el9.{arch}",
    license: str = "GPLv2",
    extra_requires: Sequence[str] = (),
    extra_provides: Sequence[str] = (),
    per_arch: Mapping[str, Mapping[str, int]] | None = None,
    module_content: Mapping[str, bytes] | None = None,
    payload_bytes: int = 0,
    epoch: int | None = None,
) -> Build:
    """A KMOD-SIG-like kmod: source name == binary name, one binary per arch.

    ``requires`` = {sym: crc} becomes ``Requires: kernel(sym) = 0x%08x``; ``per_arch``
    ({arch: {sym: crc}}) makes a multi-arch build instead.  ``{arch}`` in ``kver`` is
    replaced per arch.  ``module_content`` may supply real ``.ko`` bytes per module.
    """
    tables = dict(per_arch) if per_arch is not None else {arch: dict(requires or {})}
    short = name.removeprefix("kmod-")
    pkgs = []
    for a, table in tables.items():
        k = kver.replace("{arch}", a)
        files = {
            f"/lib/modules/{k}/extra/{short}/{m}.ko": (module_content or {}).get(
                m, f"fake kernel module {m} for {k}\n".encode()
            )
            for m in modules
        }
        pkgs.append(
            binary_package(
                name,
                a,
                requires=[
                    *_deps("kernel", table),
                    *_deps("ksym", ksym_requires or {}),
                    *extra_requires,
                ],
                provides=[
                    *(f"kmod({m}.ko)" for m in modules),
                    *_deps("ksym", ksym_provides or {}),
                    *extra_provides,
                ],
                files=files,
                license=license,
                padding_bytes=payload_bytes,
            )
        )
    return Build(name, version, release, tuple(pkgs), epoch=epoch, license=license)


def plain_build(
    name: str = "bash-completion-extra",
    version: str = "1.0",
    release: str = "1.el9",
    arch: str = "noarch",
    *,
    provides: Sequence[str] = (),
    requires: Sequence[str] = (),
    files: Mapping[str, bytes] | None = None,
    license: str = "MIT",
    payload_bytes: int = 0,
) -> Build:
    """A package with no kernel()/ksym() deps at all: what "not a kernel" input looks like."""
    files = files if files is not None else {f"/usr/share/{name}/README": f"{name}\n".encode()}
    pkg = binary_package(
        name,
        arch,
        provides=provides,
        requires=requires,
        files=files,
        license=license,
        padding_bytes=payload_bytes,
    )
    return Build(name, version, release, (pkg,), license=license)


def stablelist_package(
    lists: Mapping[str, Sequence[str]],
    *,
    naming: Literal["stablelist", "whitelist"] = "stablelist",
    rhel: int | None = None,
    kabi_dir: str | None = None,
    license: str = "GPLv2",
) -> BinaryPackage:
    """noarch ``kernel-abi-stablelists`` (or ``-whitelists``) with one list file per arch.

    File ``/lib/modules/<kabi_dir>/kabi_<naming>_<arch>``: header ``[rhelN_<arch>_<naming>]``
    then one TAB-indented symbol per line; ``/lib/modules/kabi-current`` links to the dir.
    """
    rhel = rhel if rhel is not None else (9 if naming == "stablelist" else 8)
    kabi_dir = kabi_dir or f"kabi-rhel{rhel}0"
    base = f"/lib/modules/{kabi_dir}"
    files = {
        f"{base}/kabi_{naming}_{arch}": (
            f"[rhel{rhel}_{arch}_{naming}]\n" + "".join(f"\t{s}\n" for s in syms)
        ).encode()
        for arch, syms in lists.items()
    }
    return binary_package(
        f"kernel-abi-{naming}s",
        "noarch",
        files=files,
        dirs=[base],
        symlinks={"/lib/modules/kabi-current": kabi_dir},
        license=license,
    )


def stablelist_build(
    version: str = "5.14.0",
    release: str = "1.el9",
    lists: Mapping[str, Sequence[str]] | None = None,
    *,
    naming: Literal["stablelist", "whitelist"] = "stablelist",
    rhel: int | None = None,
    kabi_dir: str | None = None,
) -> Build:
    """A standalone build of :func:`stablelist_package` (source name == binary name)."""
    pkg = stablelist_package(lists or {}, naming=naming, rhel=rhel, kabi_dir=kabi_dir)
    return Build(pkg.name, version, release, (pkg,))


# --------------------------------------------------------------------------- corrupt inputs


def truncate_copy(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], keep_bytes: int
) -> Path:
    """Copy only the first ``keep_bytes`` bytes of ``src``: a download cut short."""
    data = Path(src).read_bytes()[:keep_bytes]
    out = Path(dst)
    out.write_bytes(data)
    return out


def overwrite_copy(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    offset: int,
    data: bytes,
) -> Path:
    """Copy ``src`` with ``data`` written at ``offset``: bit rot inside lead/header/payload."""
    buf = bytearray(Path(src).read_bytes())
    if offset < 0 or offset + len(data) > len(buf):
        raise ValueError("overwrite outside the file")
    buf[offset : offset + len(data)] = data
    out = Path(dst)
    out.write_bytes(bytes(buf))
    return out


def make_not_rpm(
    dst: str | os.PathLike[str],
    content: bytes = b"this is not an RPM package\n",
) -> Path:
    """Write a non-RPM file (typically named ``*.rpm``) to test clear error messages."""
    out = Path(dst)
    out.write_bytes(content)
    return out
