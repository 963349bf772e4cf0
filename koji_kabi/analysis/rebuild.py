"""Which incompatible kmods to rebuild, how, and which not: a pure plan from verdicts + rules.

Deduplication is keyed on the kmod package and its kABI fingerprint (the CRCs, in the
new kernel, of every symbol it consumes, on every arch), so two kernels with the same
kABI for a kmod, or a re-run of the same check, give one rebuild.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from koji_kabi.koji.rules import Rules, Watch
from koji_kabi.model import Kernel, KmodRequirements, SymbolTable

_SCM_SCHEMES = ("git://", "git+", "git+https://", "git+ssh://", "git+http://", "svn://",
                "svn+", "cvs://", "cvs+", "hg+", "https://", "http://")


@functools.lru_cache(maxsize=16)
def _symbol_lines(table: SymbolTable) -> dict[str, str]:
    """Each symbol's line in a fingerprint against ``table``: a pure function of the
    (immutable) table, made once per table as thousands of kmods fingerprint against the
    same 30,000 symbols.  The cache keeps the tables of a few kernels alive; never change
    the dict it returns."""
    return {s: f"{s} {format(c, '08x')}\n" for s, c in table.crcs.items()}


def fingerprint(kmod: KmodRequirements, kernel: Kernel) -> str:
    """sha256 of (arch, flavour, symbol, CRC in ``kernel``) for every consumed symbol."""
    table = kernel.table_for(kmod.key)
    line = _symbol_lines(table).get if table is not None else {}.get
    h = hashlib.sha256(f"{kmod.key.arch}+{kmod.key.flavour}\n".encode())
    h.update("".join([line(s) or f"{s} -\n" for s in sorted(kmod.requires)]).encode())
    return h.hexdigest()


def combine(fingerprints: Iterable[str]) -> str:
    """One fingerprint for a build from its per-arch packages' fingerprints."""
    return hashlib.sha256("\n".join(sorted(fingerprints)).encode()).hexdigest()


def is_scm_url(source: Optional[str]) -> bool:
    """A recorded SCM source we may hand back to Koji (never a string from a user)."""
    return bool(source) and source.startswith(_SCM_SCHEMES) and "\n" not in source \
        and " " not in source


@dataclass(frozen=True)
class KmodBuild:
    """A kmod build as Koji knows it, with the verdict facts the plan needs."""

    build_id: int
    nvr: str
    package: str
    source: Optional[str]
    fingerprint: str
    broken_symbols: tuple[str, ...]
    tag: str = ""


@dataclass(frozen=True)
class RebuildRequest:
    """One rebuild to submit.  ``source`` is the SCM URL, or empty when it is rebuilt from
    the build's SRPM (``strategy`` ``srpm``: the task uploads it first); ``macro`` is the
    RPM macro a ``macro`` rebuild's side tag sets, as (name, kernel version-release)."""

    build_id: int
    nvr: str
    package: str
    source: str
    target: str
    mode: str
    kernel: str
    fingerprint: str
    broken_symbols: tuple[str, ...]
    strategy: str = "buildroot"
    macro: Optional[tuple[str, str]] = None

    @property
    def claim_key(self) -> str:
        """What makes two requests the same rebuild: package + kABI fingerprint."""
        return hashlib.sha256(f"{self.package}\n{self.fingerprint}".encode()).hexdigest()

    def build_opts(self) -> dict:
        """Options of Koji's ``build`` task: wait for the new kernel in the buildroot."""
        opts: dict = {"wait_builds": [self.kernel]}
        if self.mode == "scratch":
            opts["scratch"] = True
        elif self.mode == "draft":
            opts["draft"] = True
        opts["custom_user_metadata"] = {"kabi": {
            "kernel": self.kernel, "rebuild_of": self.nvr, "fingerprint": self.fingerprint,
            "strategy": self.strategy}}
        return opts


@dataclass(frozen=True)
class Skipped:
    nvr: str
    package: str
    reason: str


def plan(broken: Sequence[KmodBuild], kernel_nvr: str, rules: Rules,
         watch: Optional[Watch], kernel_vr: str = ""
         ) -> tuple[list[RebuildRequest], list[Skipped]]:
    """Rebuild requests for incompatible kmod builds, and why the others are left alone.

    One request per (package, fingerprint): the newest build of a package wins when
    several tags hold different builds of it.  A build without a recorded SCM source is
    rebuilt from its SRPM; SRPM and side-tag (``macro``) rebuilds are scratch or draft
    only: a real build from an SRPM would not be reproducible from SCM, and a side tag's
    builds are untagged when it is removed.
    """
    requests: dict[tuple[str, str], RebuildRequest] = {}
    skipped: list[Skipped] = []
    for kb in sorted(broken, key=lambda b: -b.build_id):
        if rules.opted_out(kb.package):
            skipped.append(Skipped(kb.nvr, kb.package, "opted out in the rules"))
            continue
        target = rules.target_for(kb.package, watch)
        if not target:
            skipped.append(Skipped(kb.nvr, kb.package, "no rebuild target in the rules"))
            continue
        mode = rules.mode_for(kb.package, watch)
        strategy = rules.strategy_for(kb.package, watch)
        from_srpm = strategy == "srpm" or not is_scm_url(kb.source)
        if mode == "build" and (from_srpm or strategy == "macro"):
            why = ("a rebuild from the SRPM" if from_srpm and strategy != "macro"
                   else f"a {strategy} rebuild")
            if from_srpm and strategy != "srpm":
                why = "the build has no recorded SCM source; " + why
            skipped.append(Skipped(kb.nvr, kb.package, f"{why} is scratch or draft only "
                                   "(mode is build)"))
            continue
        key = (kb.package, kb.fingerprint)
        if key in requests:
            skipped.append(Skipped(kb.nvr, kb.package,
                                   f"same rebuild as {requests[key].nvr}"))
            continue
        macro = (rules.macro_for(kb.package), kernel_vr) if strategy == "macro" else None
        requests[key] = RebuildRequest(
            kb.build_id, kb.nvr, kb.package, "" if from_srpm else kb.source or "", target,
            mode, kernel_nvr, kb.fingerprint, kb.broken_symbols,
            "srpm" if from_srpm and strategy != "macro" else strategy, macro)
    return sorted(requests.values(), key=lambda r: r.package), skipped
