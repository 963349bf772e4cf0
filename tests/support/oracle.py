"""Independent oracles: get the truth from the system's own tools, not from koji-kabi.

Why: a reader tested only against expectations computed by the same code proves nothing.
These helpers reproduce the seed's manual method with the real commands --
``rpm -qp --provides | grep 'kernel(' | sort -u``, ``comm``, ``createrepo_c`` +
``dnf repoclosure`` -- so tests can cross-check koji-kabi's results against them.
All commands run with argument lists (never a shell) and ``LC_ALL=C``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "OracleError",
    "RpmInfo",
    "ToolMissing",
    "comm_delta",
    "kernel_sym_lines",
    "repoclosure",
    "repoclosure_argv",
    "rpm_info",
    "rpm_payload",
    "rpm_query_deps",
    "rpm_query_files",
]


class ToolMissing(RuntimeError):
    """An external tool is not installed; tests catch this to ``pytest.skip`` with a reason."""

    def __init__(self, tool: str, hint: str = "") -> None:
        super().__init__(f"required tool not available: {tool}" + (f" ({hint})" if hint else ""))
        self.tool = tool


class OracleError(RuntimeError):
    """A tool ran but failed or printed something we cannot interpret."""


def _env() -> dict[str, str]:
    # C locale: stable messages and byte-order sorting; drop PYTHON* so the venv running
    # the tests cannot leak into /usr/bin/dnf's system python.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


def _tool(name: str, hint: str = "") -> str:
    exe = shutil.which(name)
    if exe is None:
        raise ToolMissing(name, hint)
    return exe


def _run(argv: Sequence[str], *, stdin: str | None = None, timeout: float = 300.0) -> str:
    res = subprocess.run(
        list(argv),
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise OracleError(f"{' '.join(argv)} exited {res.returncode}: {res.stderr.strip()}")
    return res.stdout


# --------------------------------------------------------------------------- rpm queries


def rpm_query_deps(
    path: str | os.PathLike[str], kind: Literal["provides", "requires"]
) -> list[str]:
    """``rpm -qp --nosignature --provides|--requires <path>``: the lines exactly as printed."""
    if kind not in ("provides", "requires"):
        raise ValueError(f"kind must be 'provides' or 'requires', not {kind!r}")
    out = _run([_tool("rpm"), "-qp", "--nosignature", f"--{kind}", os.fspath(path)])
    return out.splitlines()


def rpm_query_files(path: str | os.PathLike[str]) -> list[str]:
    """``rpm -qlp``: the file list recorded in the header."""
    out = _run([_tool("rpm"), "-qlp", "--nosignature", os.fspath(path)])
    return [line for line in out.splitlines() if line != "(contains no files)"]


_INFO_QF = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"


@dataclass(frozen=True)
class RpmInfo:
    """Identity of one RPM file as ``rpm`` itself reports it."""

    name: str
    epoch: str | None
    version: str
    release: str
    arch: str
    is_source: bool

    @property
    def dnf_nevra(self) -> str:
        """The package spelling ``dnf repoclosure`` prints (epoch only when non-zero)."""
        ep = f"{self.epoch}:" if self.epoch not in (None, "0") else ""
        return f"{self.name}-{ep}{self.version}-{self.release}.{self.arch}"


def rpm_info(path: str | os.PathLike[str]) -> RpmInfo:
    """Name/EVR/arch of one RPM file via ``rpm -qp --qf`` (SRPMs have no SOURCERPM)."""
    out = _run([_tool("rpm"), "-qp", "--nosignature", "--qf", _INFO_QF, os.fspath(path)])
    fields = out.rstrip("\n").split("\t")
    if len(fields) != 6:
        raise OracleError(f"unexpected rpm --qf output for {path}: {out!r}")
    name, epoch, version, release, arch, source = fields
    return RpmInfo(
        name, None if epoch == "(none)" else epoch, version, release, arch, source == "(none)"
    )


def rpm_payload(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """Payload of an RPM as {absolute path: content}; symlinks map to their target bytes.

    Uses ``rpm2archive -n -`` (uncompressed tar on stdout) and Python's tarfile, so it is
    independent of both koji-kabi and the rpm Python bindings.
    """
    exe = _tool("rpm2archive")
    with open(path, "rb") as fh:
        res = subprocess.run(
            [exe, "-n", "-"], stdin=fh, capture_output=True, env=_env(), timeout=300, check=False
        )
    if res.returncode != 0:
        raise OracleError(f"rpm2archive failed on {path}: {res.stderr.decode(errors='replace')}")
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(res.stdout), mode="r:") as tar:
        for member in tar:
            name = "/" + member.name.removeprefix("./").lstrip("/")
            if member.issym():
                out[name] = member.linkname.encode()
            elif member.isfile():
                data = tar.extractfile(member)
                out[name] = data.read() if data is not None else b""
    return out


# --------------------------------------------------------------------------- seed's text method


def kernel_sym_lines(lines: Iterable[str]) -> list[str]:
    """The seed's ``grep 'kernel(' | sort -u``, run with the real grep and sort (LC_ALL=C)."""
    text = "".join(f"{line}\n" for line in lines)
    res = subprocess.run(
        [_tool("grep"), "-F", "kernel("],
        input=text,
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    if res.returncode not in (0, 1):  # 1 = no match, which is a valid (empty) answer
        raise OracleError(f"grep failed: {res.stderr.strip()}")
    return _run([_tool("sort"), "-u"], stdin=res.stdout).splitlines()


def comm_delta(
    old_lines: Iterable[str], new_lines: Iterable[str]
) -> tuple[list[str], list[str], list[str]]:
    """``comm`` of two line lists -> (only in old, only in new, in both), C-sorted, unique.

    Lines are ``kernel(sym) = 0xCRC`` strings, so a CRC change shows up once on each side,
    exactly as in the seed's manual comparison.
    """
    comm, sort = _tool("comm"), _tool("sort")
    with tempfile.TemporaryDirectory(prefix="oracle-comm-") as tmp:
        files = []
        for label, lines in (("old", old_lines), ("new", new_lines)):
            raw = Path(tmp) / f"{label}.raw"
            raw.write_text("".join(f"{line}\n" for line in lines))
            srt = Path(tmp) / f"{label}.sorted"
            srt.write_text(_run([sort, "-u", str(raw)]))
            files.append(str(srt))
        only_old = _run([comm, "-23", *files]).splitlines()
        only_new = _run([comm, "-13", *files]).splitlines()
        both = _run([comm, "-12", *files]).splitlines()
    return only_old, only_new, both


# --------------------------------------------------------------------------- dnf repoclosure

_PKG_RE = re.compile(r"^package: (\S+) from (\S+)\s*$")
_COUNT_RE = re.compile(r"^\s+unresolved deps \((\d+)\):\s*$")
_DEP_RE = re.compile(r"^ {4}(\S.*?)\s*$")
_SUMMARY_RE = re.compile(r"Repoclosure ended with unresolved dependencies \((\d+)\) across (\d+)")

_DNF_CONF = "[main]\ngpgcheck=0\ninstall_weak_deps=0\nskip_if_unavailable=0\n"


def repoclosure_argv(
    dnf: str, repo_dir: Path, work: Path, arch: str, *, best: bool = False
) -> list[str]:
    """The dnf command line: only our repo, offline, nothing written outside ``work``.

    * ``-c <empty conf>`` + ``reposdir=/nonexistent``: no system/host repos or defaults;
    * ``--installroot`` + ``cachedir``: empty rpmdb, caches and logs stay in ``work``;
    * ``--disableplugin='*' --enableplugin=repoclosure``: Debian's
      generate_completion_cache plugin would otherwise write /var/cache/dnf/packages.db;
    * ``--forcearch``: which arch counts as installable (see ``repoclosure`` for the caveat);
    * ``best=False``: every package in the repo may satisfy a dependency, not only the
      newest per name (dnf.conf's default on Fedora is best=True).
    """
    conf = work / "dnf.conf"
    conf.write_text(_DNF_CONF)
    return [
        dnf,
        "repoclosure",
        "-c",
        str(conf),
        "--disableplugin=*",
        "--enableplugin=repoclosure",
        "--setopt=reposdir=/nonexistent",
        f"--repofrompath=kabi,{repo_dir}",
        "--repo=kabi",
        f"--forcearch={arch}",
        "--releasever=9",
        f"--setopt=cachedir={work / 'cache'}",
        f"--setopt=best={best}",
        f"--installroot={work / 'root'}",
    ]


def _parse_repoclosure(stdout: str) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    current: str | None = None
    expected: dict[str, int] = {}
    for line in stdout.splitlines():
        if m := _PKG_RE.match(line):
            current = m.group(1)
            result[current] = set()
        elif m := _COUNT_RE.match(line):
            if current is None:
                raise OracleError(f"repoclosure: count line before a package line: {line!r}")
            expected[current] = int(m.group(1))
        elif current is not None and (m := _DEP_RE.match(line)):
            result[current].add(m.group(1))
        else:
            current = None  # anything else (progress, warnings) ends a package block
    for pkg, n in expected.items():
        if len(result[pkg]) != n:
            raise OracleError(f"repoclosure: {pkg} announced {n} deps, parsed {result[pkg]}")
    return result


def repoclosure(
    rpm_paths: Iterable[str | os.PathLike[str]],
    check_names: Iterable[str] | None = None,
    *,
    arch: str = "x86_64",
    best: bool = False,
    key: Literal["nevra", "name"] = "nevra",
    timeout: float = 300.0,
) -> dict[str, set[str]]:
    """``createrepo_c`` + ``dnf repoclosure`` on exactly ``rpm_paths``, for one ``arch``.

    Returns {package: unresolved dependency strings} for packages with problems only, keyed
    by dnf's NEVRA spelling (``kmod-foo-1.0-1.el9.x86_64``) or by name (``key="name"``);
    ``check_names`` restricts the answer to those package names.

    Only RPMs of ``arch`` and ``noarch`` are put in the repo (SRPMs never are): dnf's
    ``--forcearch`` still loads and *checks* packages of other arches, and a foreign-arch
    kmod can be satisfied by a kernel of the forced arch, so mixing arches gives wrong
    answers.  Run once per arch.
    """
    createrepo, dnf = _tool("createrepo_c"), _tool("dnf", "apt-get install dnf dnf-plugins-core")
    infos = [(Path(p), rpm_info(p)) for p in rpm_paths]
    selected = [(p, i) for p, i in infos if not i.is_source and i.arch in (arch, "noarch")]
    names = {i.dnf_nevra: i.name for _, i in selected}
    with tempfile.TemporaryDirectory(prefix="oracle-repoclosure-") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        repo.mkdir()
        for i, (path, _) in enumerate(selected):
            shutil.copyfile(path, repo / f"{i:05d}-{path.name}")
        _run([createrepo, "--quiet", "--no-database", str(repo)], timeout=timeout)
        argv = repoclosure_argv(dnf, repo, work, arch, best=best)
        res = subprocess.run(
            argv, capture_output=True, text=True, env=_env(), timeout=timeout, check=False
        )
    if "No such command: repoclosure" in res.stderr:
        raise ToolMissing("dnf repoclosure", "install dnf-plugins-core")
    result = _parse_repoclosure(res.stdout)
    summary = _SUMMARY_RE.search(res.stderr + res.stdout)
    if res.returncode == 0:
        if result:
            raise OracleError(f"dnf repoclosure succeeded yet printed problems: {result}")
    elif summary is None or int(summary.group(2)) != len(result):
        raise OracleError(
            f"dnf repoclosure exited {res.returncode} without a parsable result:\n"
            f"{' '.join(argv)}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
        )
    unknown = set(result) - set(names)
    if unknown:
        raise OracleError(f"repoclosure reported packages we did not give it: {unknown}")
    if check_names is not None:
        wanted = set(check_names)
        result = {k: v for k, v in result.items() if names[k] in wanted}
    if key == "name":
        by_name: dict[str, set[str]] = {}
        for k, v in result.items():
            by_name.setdefault(names[k], set()).update(v)
        return by_name
    return result
