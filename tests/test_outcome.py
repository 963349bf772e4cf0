"""How a finished rebuild is judged (koji_kabi.analysis.outcome), on real RPMs against an in-memory
Koji (tests.fakekoji), and how the rebuild plan (koji_kabi.analysis.rebuild.plan) carries each
strategy.

Expected symbols, counts and NVRs come from how the fixture RPMs were made
(tests.pipeline_rpms) and from the fake's own records, never from the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from koji_kabi.analysis.outcome import (
    BUILD_FAILED,
    CANCELED,
    FIXED,
    OUTCOMES,
    SHOWN,
    STILL_BROKEN,
    mismatch_summary,
)
from koji_kabi.analysis.rebuild import KmodBuild, RebuildRequest, Skipped, plan
from koji_kabi.analysis.verdict import SymbolProblem, Verdict
from koji_kabi.errors import KabiError
from koji_kabi.koji.checks import judge_build, judge_files
from koji_kabi.koji.rules import Rules, parse_rules
from koji_kabi.model import TableKey
from tests.fakekoji import FakeKoji
from tests.pipeline_rpms import Rpms, source_for

# --------------------------------------------------------------------------- mismatch_summary


def row(key: str, compatible: bool, missing: tuple[str, ...] = (),
        mismatched: tuple[str, ...] = ()) -> Verdict:
    """A verdict of one kmod package (incompatible without problems: no table for it)."""
    arch, _, flavour = key.partition("+")
    problems = tuple([SymbolProblem(s, 1, None) for s in missing]
                     + [SymbolProblem(s, 1, 2) for s in mismatched])
    return Verdict("kmod-x-1-1." + arch, "kernel-1-1", TableKey(arch, flavour), problems, 10,
                   no_table=not compatible and not problems)


def test_the_outcomes() -> None:
    assert OUTCOMES == (FIXED, STILL_BROKEN, BUILD_FAILED, CANCELED)
    assert len(set(OUTCOMES)) == 4


def test_mismatch_summary_counts_each_incompatible_row() -> None:
    rows = [row("x86_64", False, ("a", "b"), ("c",)),
            row("aarch64", True),
            row("x86_64+debug", False, mismatched=("d", "e", "f")),
            row("ppc64le", False, missing=("g",))]
    assert mismatch_summary(rows) == ("x86_64 2 missing, 1 CRC mismatches, "
                                      "x86_64+debug 0 missing, 3 CRC mismatches, "
                                      "ppc64le 1 missing, 0 CRC mismatches")


def test_mismatch_summary_of_compatible_rows_is_empty() -> None:
    assert mismatch_summary([]) == ""
    assert mismatch_summary([row("x86_64", True), row("aarch64", True)]) == ""
    assert mismatch_summary([row("s390x", False)]) == "s390x 0 missing, 0 CRC mismatches"


def test_mismatch_summary_reads_any_iterable_once() -> None:
    rows = (r for r in [row("x86_64", False, ("a",)), row("aarch64", False, (), ("b", "c"))])
    assert mismatch_summary(rows) == ("x86_64 1 missing, 0 CRC mismatches, "
                                      "aarch64 0 missing, 2 CRC mismatches")


# --------------------------------------------------------------------------- judging


@dataclass
class Koji:
    koji: FakeKoji
    k1: dict
    k2: dict
    rpms: Rpms

    def kmod(self, name: str, arch: Optional[str] = "x86_64") -> list[str]:
        """The binary RPM files of a fixture kmod (all arches with ``arch`` None)."""
        return [str(p) for p in self.rpms.kmods[name] if not p.name.endswith(".src.rpm")
                and (arch is None or p.name.endswith(f".{arch}.rpm"))]


@pytest.fixture
def koji(pipeline_rpms: Rpms) -> Koji:
    fake = FakeKoji()
    k1 = fake.add_build(pipeline_rpms.k1, tag="el9-kernel")
    k2 = fake.add_build(pipeline_rpms.k2, tag="el9-kernel")
    return Koji(fake, k1, k2, pipeline_rpms)


def nvr_of(paths: list[Path]) -> str:
    srpm = next(p.name for p in paths if p.name.endswith(".src.rpm"))
    return srpm[: -len(".src.rpm")]


def test_a_kmod_for_the_old_kernel_is_still_broken_against_the_new(koji: Koji) -> None:
    changed = koji.rpms.changed
    outcome, detail = judge_files(koji.koji, koji.kmod("kmod-crc"), koji.k2)
    assert outcome == STILL_BROKEN
    assert detail == (f"does not match {koji.k2['nvr']}: x86_64 0 missing, 2 CRC mismatches "
                      f"({changed[0]}, {changed[1]})")


def test_a_kmod_made_for_its_kernel_is_fixed(koji: Koji) -> None:
    outcome, detail = judge_files(koji.koji, koji.kmod("kmod-crc"), koji.k1)
    assert (outcome, detail) == (FIXED, f"matches {koji.k1['nvr']} (x86_64)")
    outcome, detail = judge_files(koji.koji, koji.kmod("kmod-crc", None), koji.k1)
    assert (outcome, detail) == (FIXED, f"matches {koji.k1['nvr']} (aarch64, x86_64)")


def test_a_removed_symbol_is_counted_as_missing(koji: Koji) -> None:
    outcome, detail = judge_files(koji.koji, koji.kmod("kmod-gone"), koji.k2)
    assert outcome == STILL_BROKEN
    assert detail == (f"does not match {koji.k2['nvr']}: x86_64 1 missing, 0 CRC mismatches "
                      f"({koji.rpms.removed[0]})")


def test_only_the_broken_arch_is_summarised(koji: Koji) -> None:
    """kmod-crc's aarch64 package consumes no changed symbol: it matches kernel 2."""
    aarch64 = judge_files(koji.koji, koji.kmod("kmod-crc", "aarch64"), koji.k2)
    assert aarch64 == (FIXED, f"matches {koji.k2['nvr']} (aarch64)")
    outcome, detail = judge_files(koji.koji, koji.kmod("kmod-crc", None), koji.k2)
    assert outcome == STILL_BROKEN
    assert "aarch64" not in detail
    assert detail.endswith(f"x86_64 0 missing, 2 CRC mismatches ({koji.rpms.changed[0]}, "
                           f"{koji.rpms.changed[1]})")


def test_files_that_are_not_kmods_are_left_out(koji: Koji) -> None:
    srpms = [str(p) for p in koji.rpms.kmods["kmod-crc"] if p.name.endswith(".src.rpm")]
    plain = [str(p) for p in koji.rpms.plain]
    kernel = [str(p) for p in koji.rpms.k1]  # kernel RPMs have no kernel() requires
    assert srpms and plain
    paths = [*srpms, *plain, *koji.kmod("kmod-crc"), *kernel]
    assert judge_files(koji.koji, paths, koji.k1) == (FIXED, f"matches {koji.k1['nvr']} "
                                                      "(x86_64)")
    outcome, detail = judge_files(koji.koji, paths, koji.k2)
    assert outcome == STILL_BROKEN and detail.startswith(f"does not match {koji.k2['nvr']}: "
                                                         "x86_64 0 missing, 2 CRC mismatches")


def test_no_kmod_among_the_files_is_an_error(koji: Koji) -> None:
    plain = [str(p) for p in koji.rpms.plain]
    with pytest.raises(KabiError) as err:
        judge_files(koji.koji, plain, koji.k2)
    assert str(err.value) == (f"{koji.k2['nvr']}: the rebuild produced no kmod package with "
                              "kernel(symbol) = CRC requires")
    with pytest.raises(KabiError) as err:
        judge_files(koji.koji, [], koji.k2, label="task 42")
    assert str(err.value).startswith("task 42: the rebuild produced no kmod package")


def test_many_broken_symbols_are_named_up_to_a_limit(koji: Koji) -> None:
    """Five kmods, seven broken symbols between them: five named, the rest counted."""
    names = ("kmod-crc", "kmod-gone", "kmod-optout", "kmod-nosrc", "kmod-nvidia")
    changed, removed = koji.rpms.changed, koji.rpms.removed
    broken = sorted({*changed[:6], removed[0]})
    assert len(broken) > SHOWN
    outcome, detail = judge_files(koji.koji, [p for n in names for p in koji.kmod(n)],
                                  koji.k2)
    assert outcome == STILL_BROKEN
    shown = ", ".join(broken[:SHOWN])
    assert detail.endswith(f"({shown} and {len(broken) - SHOWN} more)")
    # one summary per kmod package (x86_64 each), in the order of the files
    counts = {"kmod-crc": (0, 2), "kmod-gone": (1, 0), "kmod-optout": (0, 1),
              "kmod-nosrc": (0, 1), "kmod-nvidia": (0, 2)}
    summary = ", ".join(f"x86_64 {counts[n][0]} missing, {counts[n][1]} CRC mismatches"
                        for n in names)
    assert detail == f"does not match {koji.k2['nvr']}: {summary} ({shown} and 2 more)"


def test_a_build_in_koji_is_judged_the_same(koji: Koji) -> None:
    paths = koji.rpms.kmods["kmod-crc"]
    build = koji.koji.add_build(paths, tag="kmods9-testing", source=source_for("kmod-crc"))
    assert build["nvr"] == nvr_of(paths)
    changed = koji.rpms.changed
    assert judge_build(koji.koji, build, koji.k2) == (
        STILL_BROKEN, f"does not match {koji.k2['nvr']}: x86_64 0 missing, 2 CRC mismatches "
                      f"({changed[0]}, {changed[1]})")
    assert judge_build(koji.koji, build, koji.k1) == (
        FIXED, f"matches {koji.k1['nvr']} (aarch64, x86_64)")
    assert judge_build(koji.koji, build, koji.k2) == judge_files(
        koji.koji, koji.kmod("kmod-crc", None), koji.k2)


def test_a_build_that_is_not_a_kmod_is_an_error(koji: Koji) -> None:
    build = koji.koji.add_build(koji.rpms.plain)
    with pytest.raises(KabiError) as err:
        judge_build(koji.koji, build, koji.k2)
    assert str(err.value).startswith(f"{build['nvr']}: not a kmod build")


# --------------------------------------------------------------------------- plan by strategy

K = "kernel-5.14.0-2.el9"
KVR = "5.14.0-2.el9"
SCM = "git+https://src.example/rpms/kmod-x.git#0123456789abcdef"


def rules(rebuild: Optional[dict] = None, packages: Optional[dict] = None,
          watch: Optional[dict] = None) -> Rules:
    return parse_rules({
        "kernel_packages": ["kernel"],
        "watch": [{"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9"], "target": "kmods9-el9",
                   **(watch or {})}],
        "rebuild": rebuild or {}, "packages": packages or {}}, "rules.yaml")


def kmod(package: str = "kmod-x", source: Optional[str] = SCM, build_id: int = 7,
         **kw: Any) -> KmodBuild:
    return KmodBuild(build_id, f"{package}-1.0-{build_id}.el9", package, source,
                     kw.pop("fingerprint", f"{package}-fp"), ("sym_a", "sym_b"), **kw)


def planned(builds: list[KmodBuild], r: Rules) -> tuple[list[RebuildRequest], list[Skipped]]:
    return plan(builds, K, r, r.watches[0], KVR)


def test_buildroot_is_the_default_and_sets_no_macro() -> None:
    (req,), skipped = planned([kmod()], rules())
    assert skipped == []
    assert (req.strategy, req.macro, req.source, req.target, req.mode, req.kernel) == (
        "buildroot", None, SCM, "kmods9-el9", "scratch", K)
    assert req.build_opts()["custom_user_metadata"]["kabi"]["strategy"] == "buildroot"


def test_a_macro_rebuild_sets_the_macro_to_the_kernel_version_release() -> None:
    (req,), skipped = planned([kmod()], rules({"strategy": "macro"}))
    assert skipped == []
    assert (req.strategy, req.macro, req.source) == ("macro", ("kversion", KVR), SCM)
    assert req.build_opts()["custom_user_metadata"]["kabi"]["strategy"] == "macro"


def test_the_macro_name_comes_from_the_package_then_rebuild() -> None:
    r = rules({"strategy": "macro", "macro": "kernel_version", "mode": "draft"},
              {"kmod-own": {"macro": "_own_kver"}})
    reqs, skipped = planned([kmod("kmod-own", build_id=8), kmod("kmod-x")], r)
    assert skipped == []
    assert {q.package: q.macro for q in reqs} == {"kmod-own": ("_own_kver", KVR),
                                                  "kmod-x": ("kernel_version", KVR)}
    assert {q.mode for q in reqs} == {"draft"}


def test_the_strategy_comes_from_the_package_then_the_watch() -> None:
    r = rules({"strategy": "srpm"}, {"kmod-pinned": {"strategy": "macro"}},
              {"strategy": "buildroot"})
    reqs, skipped = planned([kmod("kmod-pinned", build_id=8), kmod("kmod-x")], r)
    assert skipped == []
    got = {q.package: (q.strategy, q.macro, q.source) for q in reqs}
    assert got == {"kmod-pinned": ("macro", ("kversion", KVR), SCM),
                   "kmod-x": ("buildroot", None, SCM)}  # the watch's over rebuild:'s


@pytest.mark.parametrize("source", [None, "", "cli-build/1/kmod-x-1.0-7.el9.src.rpm",
                                    "git+https://src/kmod-x.git#abc\nrm -rf /",
                                    "ftp://src/kmod-x.git"])
def test_without_an_scm_source_the_rebuild_is_from_the_srpm(source: Optional[str]) -> None:
    (req,), skipped = planned([kmod(source=source)], rules())
    assert skipped == []
    assert (req.strategy, req.source, req.macro) == ("srpm", "", None)
    assert req.build_opts()["custom_user_metadata"]["kabi"]["strategy"] == "srpm"


def test_the_srpm_strategy_drops_even_a_recorded_source() -> None:
    (req,), skipped = planned([kmod()], rules({"strategy": "srpm", "mode": "draft"}))
    assert skipped == []
    assert (req.strategy, req.source, req.macro, req.mode) == ("srpm", "", None, "draft")
    assert req.build_opts()["draft"] is True


def test_a_macro_rebuild_without_a_source_keeps_its_macro() -> None:
    (req,), skipped = planned([kmod(source=None)], rules({"strategy": "macro"}))
    assert skipped == []
    assert (req.strategy, req.source, req.macro) == ("macro", "", ("kversion", KVR))


@pytest.mark.parametrize("rebuild,source,reason", [
    ({"strategy": "macro"}, SCM, "a macro rebuild is scratch or draft only (mode is build)"),
    ({"strategy": "macro"}, None, "the build has no recorded SCM source; a macro rebuild is "
                                  "scratch or draft only (mode is build)"),
    ({}, None, "the build has no recorded SCM source; a rebuild from the SRPM is scratch or "
               "draft only (mode is build)"),
    ({}, "cli-build/1/kmod-x-1.0-7.el9.src.rpm", "the build has no recorded SCM source; a "
     "rebuild from the SRPM is scratch or draft only (mode is build)"),
    ({"strategy": "srpm"}, SCM, "a rebuild from the SRPM is scratch or draft only "
                                "(mode is build)"),
    ({"strategy": "srpm"}, None, "a rebuild from the SRPM is scratch or draft only "
                                 "(mode is build)"),
])
def test_mode_build_refuses_what_cannot_be_a_real_build(rebuild: dict, source: Optional[str],
                                                        reason: str) -> None:
    kb = kmod(source=source)
    reqs, skipped = planned([kb], rules({**rebuild, "mode": "build"}))
    assert reqs == []
    assert skipped == [Skipped(kb.nvr, kb.package, reason)]


def test_mode_build_with_an_scm_source_and_buildroot_is_submitted() -> None:
    (req,), skipped = planned([kmod()], rules({"mode": "build"}))
    assert skipped == []
    assert (req.mode, req.strategy, req.source) == ("build", "buildroot", SCM)
    opts = req.build_opts()
    assert "scratch" not in opts and "draft" not in opts


def test_a_package_mode_build_is_refused_only_for_that_package() -> None:
    r = rules({"strategy": "macro"}, {"kmod-real": {"mode": "build"}})
    real, other = kmod("kmod-real", build_id=9), kmod("kmod-x")
    reqs, skipped = planned([real, other], r)
    assert [(q.package, q.strategy, q.mode) for q in reqs] == [("kmod-x", "macro", "scratch")]
    assert skipped == [Skipped(real.nvr, "kmod-real",
                               "a macro rebuild is scratch or draft only (mode is build)")]


def test_a_package_strategy_can_lift_a_refusal() -> None:
    """mode build with rebuild: macro, but the package itself rebuilds in the buildroot."""
    r = rules({"strategy": "macro", "mode": "build"}, {"kmod-x": {"strategy": "buildroot"}})
    (req,), skipped = planned([kmod()], r)
    assert skipped == []
    assert (req.strategy, req.mode, req.macro) == ("buildroot", "build", None)


def test_opt_out_and_no_target_come_before_the_strategy() -> None:
    r = parse_rules({"watch": [{"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9"]}],
                     "rebuild": {"strategy": "macro", "mode": "build"},
                     "packages": {"kmod-out": {"opt_out": True}}}, "rules.yaml")
    out, x = kmod("kmod-out", build_id=9), kmod("kmod-x")
    reqs, skipped = plan([out, x], K, r, r.watches[0], KVR)
    assert reqs == []
    assert skipped == [Skipped(out.nvr, "kmod-out", "opted out in the rules"),
                       Skipped(x.nvr, "kmod-x", "no rebuild target in the rules")]


def test_the_same_kabi_is_one_rebuild_whatever_the_strategy() -> None:
    newer, older = kmod(build_id=9, fingerprint="fp"), kmod(build_id=3, fingerprint="fp")
    (req,), skipped = planned([older, newer], rules({"strategy": "macro"}))
    assert (req.build_id, req.nvr, req.macro) == (9, newer.nvr, ("kversion", KVR))
    assert skipped == [Skipped(older.nvr, "kmod-x", f"same rebuild as {newer.nvr}")]
