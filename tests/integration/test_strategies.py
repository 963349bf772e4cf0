"""Rebuild strategies and outcomes on the real hub, with Koji's own sidetag plugin loaded.

Scenario ``strat``: K2 breaks four kmods.  ``kmod-strata`` is rebuilt with the ``macro``
strategy (a side tag of the target's build tag with ``%{kversion}`` set to K2's
version-release); ``kmod-stratb`` and ``kmod-stratc`` in the build tag (``buildroot``);
``kmod-stratd`` was imported without an SCM source and is rebuilt from its SRPM, which
the kabiCheck task uploads.  Builds cannot run on Debian: a rebuild's result is a CG
import recording the rebuild task (as a real build task records itself), a failure is
the real build task failing on the builder (the test hub's ``build_rpm`` policy).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jsonschema
import pytest

from koji_kabi.koji import messages
from tests.integration.broker import Listener, listening
from tests.integration.conftest import STAMP, names
from tests.integration.kit import CLOSED, Kit, note
from tests.integration.realkoji import RealKoji
from tests.integration.worlds import X86, Series, build_series, source_for
from tests.support import rpmfactory as rf

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]

KMODS = ("kmod-strata", "kmod-stratb", "kmod-stratc", "kmod-stratd")


@dataclass
class StratWorld:
    kit: Kit
    series: Series
    n: dict[str, str]
    k2: dict
    task: dict  # K2's kabiCheck
    children: dict[str, dict]  # package -> its rebuild's build task (with request)
    out: Path
    bus: Optional[Listener]


@pytest.fixture(scope="module")
def bus(realkoji: RealKoji, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Optional[Listener]]:
    """A consumer of the outcomes, when the tier has its broker."""
    if realkoji.no_messages:
        yield None
        return
    out = tmp_path_factory.mktemp("strat-bus") / "messages.jsonl"
    with listening(realkoji.broker, "/topic/koji.kabi.rebuild.finished", out) as listener:
        yield listener


@pytest.fixture(scope="module")
def strat(koji_phase: Kit, rpm_dirs: tuple[Path, Path],
          bus: Optional[Listener]) -> StratWorld:
    kit, (out, cache) = koji_phase, rpm_dirs
    s = build_series(out, cache, STAMP, "strat", 121, (X86,), 80,
                     {k: {X86: [f"stable:{i}:{i + 4}", f"changed:{i}:{i + 1}"]}
                      for i, k in enumerate(KMODS)}, kernels=3)
    n = names("strat")
    kit.listed(n["kernel"], "kernel")
    kit.listed(n["kmods"], *KMODS)
    for kmod in KMODS[:3]:
        kit.tag_build(n["kmods"], kit.cg_build(s.kmods[kmod], source_for(kmod, STAMP))["id"])
    # imported from elsewhere: no SCM source anywhere
    kit.tag_build(n["kmods"], kit.cg_build(s.kmods["kmod-stratd"], None)["id"])
    k1 = kit.cg_build(s.kernels["K1"], source_for("kernel", STAMP))
    kit.tag_build(n["kernel"], k1["id"])
    kit.wait_kabi(k1["id"])
    k2 = kit.cg_build(s.kernels["K2"], source_for("kernel", STAMP))
    kit.tag_build(n["kernel"], k2["id"])
    (task,) = kit.wait_kabi(k2["id"])
    assert task["state"] == CLOSED, kit.admin.getTaskResult(task["id"], raise_fault=False)
    children = {}
    for child in kit.rebuilds(task["id"]):
        meta = child["request"][2]["custom_user_metadata"]["kabi"]
        children[next(k for k in KMODS if meta["rebuild_of"] == s.kmod_nvr[k])] = child
    return StratWorld(kit, s, n, k2, task, children, out / "strat-rebuilt", bus)


def _rebuilt(w: StratWorld, kmod: str, against: str) -> list[Path]:
    """The kmod rebuilt (next release) with the CRCs of kernel ``against``'s table."""
    table = w.series.tables[against][X86]
    req = {X86: {sym: table[sym] for sym in w.series.required[kmod][X86]}}
    build = rf.kmod_build(kmod, "1.0", f"121.{STAMP}.{against.lower()}.el9", per_arch=req,
                          kver=f"5.14.0-122.{STAMP}.el9.{{arch}}")
    return rf.build_rpms(build, w.out / kmod / against)


def _row(w: StratWorld, kmod: str, timeout: float = 120) -> dict:
    """The hub's record of the kmod's rebuild for K2, once it has an outcome."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in w.kit.anon.kabi.rebuilds(kernel=w.k2["nvr"], package=kmod)
                if r["task_id"] == w.children[kmod]["id"]]
        if rows and rows[0]["outcome"]:
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{kmod}: no outcome after {timeout}s: {rows}")
        time.sleep(0.5)


def test_every_broken_kmod_gets_a_rebuild_its_strategy_says(strat: StratWorld) -> None:
    report = strat.kit.report(strat.task["id"])
    rows = {r["package"]: r for r in report["rebuilds"]}
    assert {p: (r["status"], r["strategy"]) for p, r in rows.items()} == {
        "kmod-strata": ("submitted", "macro"), "kmod-stratb": ("submitted", "buildroot"),
        "kmod-stratc": ("submitted", "buildroot"), "kmod-stratd": ("submitted", "srpm")}
    assert set(strat.children) == set(KMODS)
    for kmod in ("kmod-stratb", "kmod-stratc"):
        src, target, opts = strat.children[kmod]["request"]
        assert (src, target) == (source_for(kmod, STAMP), strat.n["target"])
        assert opts["draft"] is True and opts["wait_builds"] == [strat.k2["nvr"]]


def test_a_macro_rebuild_builds_in_a_side_tag_with_the_kernel_version(
        strat: StratWorld) -> None:
    kit = strat.kit
    src, target, opts = strat.children["kmod-strata"]["request"]
    assert src == source_for("kmod-strata", STAMP) and opts["draft"] is True
    side = kit.admin.getTag(target)
    build_tag = kit.admin.getTag(strat.n["build"])
    assert side["extra"]["sidetag"] is True and side["name"] != strat.n["target"]
    assert side["extra"]["rpm.macro.kversion"] == f"{strat.k2['version']}-{strat.k2['release']}"
    assert [p["parent_id"] for p in kit.admin.getInheritanceData(side["id"])] == [
        build_tag["id"]]
    assert kit.admin.getBuildTarget(target)["build_tag"] == side["id"]
    # Koji's sidetag plugin made it, for the builder host's user
    assert side["id"] in {t["id"] for t in kit.admin.listSideTags(basetag=build_tag["id"])}
    assert side["extra"]["sidetag_user"] == "builder1"
    note(f"macro rebuild of kmod-strata: build task {strat.children['kmod-strata']['id']} "
         f"in side tag {side['name']} with %{{kversion}} {side['extra']['rpm.macro.kversion']}")


def test_a_build_without_scm_source_is_rebuilt_from_its_uploaded_srpm(
        strat: StratWorld) -> None:
    kit, check_id = strat.kit, strat.task["id"]
    src, target, opts = strat.children["kmod-stratd"]["request"]
    srpm = next(p for p in strat.series.kmods["kmod-stratd"] if p.name.endswith(".src.rpm"))
    assert src == f"tasks/{check_id % 10000}/{check_id}/{srpm.name}"
    assert target == strat.n["target"] and opts["draft"] is True
    assert srpm.name in kit.admin.listTaskOutput(check_id)  # one click away in kojiweb
    assert (kit.rk.topdir / "work" / src).read_bytes() == srpm.read_bytes()
    # the builder takes it: the kabi_rebuild policy test lets it pass build_from_srpm,
    # then the test hub's build_rpm policy stops it, as a failed build would end
    failed = kit.fail_rebuild(strat.children["kmod-stratd"]["id"])
    fault = kit.admin.getTaskResult(failed["id"], raise_fault=False)["faultString"]
    assert "policy violation (build_rpm)" in fault and "build_from_srpm" not in fault


def test_a_rebuild_that_matches_the_kernel_is_fixed(strat: StratWorld) -> None:
    kit, child = strat.kit, strat.children["kmod-strata"]
    made = kit.cg_build(_rebuilt(strat, "kmod-strata", "K2"), None, task_id=child["id"])
    row = _row(strat, "kmod-strata")
    assert (row["outcome"], row["result_build"]) == ("fixed", made["nvr"])
    assert row["detail"] == f"matches {strat.k2['nvr']} (x86_64)"
    assert kit.wait(row["judge_task_id"], "kabiJudge")["state"] == CLOSED
    judge = kit.admin.getTaskInfo(row["judge_task_id"], request=True)
    assert (judge["method"], judge["request"]) == ("kabiJudge", [row["id"]])
    assert kit.admin.getTaskResult(judge["id"])["outcome"] == "fixed"
    # the rebuild's task ends: its side tag goes, the outcome stays
    side = child["request"][1]
    kit.admin.cancelTask(child["id"])
    assert kit.admin.getTag(side) is None and kit.admin.getBuildTarget(side) is None
    assert _row(strat, "kmod-strata")["outcome"] == "fixed"


def test_a_rebuild_that_still_has_the_old_crcs_is_still_broken(strat: StratWorld) -> None:
    kit, child = strat.kit, strat.children["kmod-stratb"]
    made = kit.cg_build(_rebuilt(strat, "kmod-stratb", "K1"), None, task_id=child["id"])
    row = _row(strat, "kmod-stratb")
    assert (row["outcome"], row["result_build"]) == ("still broken", made["nvr"])
    changed = strat.series.changed[X86][1]  # the one K2 changed that it consumes
    assert row["detail"] == (f"does not match {strat.k2['nvr']}: x86_64 0 missing, "
                             f"1 CRC mismatches ({changed})")


def test_a_failed_rebuild_is_build_failed_and_not_submitted_again(strat: StratWorld) -> None:
    kit, child = strat.kit, strat.children["kmod-stratc"]
    kit.fail_rebuild(child["id"])
    row = _row(strat, "kmod-stratc")
    assert row["outcome"] == "build failed" and row["state"] == "FAILED"
    assert row["detail"].startswith(f"build task {child['id']} failed: ")
    assert "policy violation (build_rpm)" in row["detail"]
    again = kit.run_check(strat.k2["id"])
    rows = {r["package"]: r for r in kit.report(again["id"])["rebuilds"]}
    assert (rows["kmod-stratc"]["status"], rows["kmod-stratc"]["task_id"]) == (
        "failed before", child["id"])
    assert all(c["request"][2]["custom_user_metadata"]["kabi"]["rebuild_of"]
               != strat.series.kmod_nvr["kmod-stratc"] for c in kit.rebuilds(again["id"]))


def test_koji_kabi_check_shows_how_each_rebuild_ended(strat: StratWorld,
                                                      tmp_path: Path) -> None:
    for kmod in ("kmod-strata", "kmod-stratb", "kmod-stratc", "kmod-stratd"):
        _row(strat, kmod)  # every outcome is in (the tests above made them)
    page = tmp_path / "k2.html"
    res = strat.kit.rk.koji("kabi-check", strat.k2["nvr"], "--html", str(page), user=None)
    assert res.returncode == 1 and page.exists(), res  # K2 breaks the kmods in the tag
    html = page.read_text()
    assert html.count('<tr class="rebuild">') == len(strat.kit.anon.kabi.rebuilds(
        kernel=strat.k2["nvr"]))
    for outcome in ("fixed", "still broken", "build failed"):
        assert f"<td>{outcome}</td>" in html
    section = res.stdout.split(f"Rebuilds for {strat.k2['nvr']}\n", 1)[1]
    lines = {line.split()[0]: line for line in section.splitlines()[1:]}
    assert re.search(r" macro +\d+ +\S+ +fixed +matches ", lines["kmod-strata"])
    assert re.search(r" buildroot +\d+ +\S+ +still broken +does not match ",
                     lines["kmod-stratb"])
    assert re.search(r" buildroot +\d+ +- +build failed +build task ", lines["kmod-stratc"])
    assert re.search(r" srpm +\d+ +- +build failed +build task ", lines["kmod-stratd"])
    note("koji kabi-check " + strat.k2["nvr"] + " (rebuild outcomes):\n"
         + "\n".join(["Rebuilds for " + strat.k2["nvr"], *section.splitlines()]))


def test_a_new_kernel_retries_what_failed(strat: StratWorld) -> None:
    """K3 has K2's kABI for every kmod (the same fingerprints): what failed for K2 is
    submitted again, what is still open is a duplicate."""
    kit = strat.kit
    k3 = kit.cg_build(strat.series.kernels["K3"], source_for("kernel", STAMP))
    kit.tag_build(strat.n["kernel"], k3["id"])
    (task,) = kit.wait_kabi(k3["id"])
    assert task["state"] == CLOSED, kit.admin.getTaskResult(task["id"], raise_fault=False)
    rows = {r["package"]: r for r in kit.report(task["id"])["rebuilds"]}
    assert {p: r["status"] for p, r in rows.items()} == {
        # open for K2: the first rebuild of strata was cancelled, and the second check
        # of K2 (test_a_failed_rebuild...) claimed it again
        "kmod-strata": "duplicate", "kmod-stratb": "duplicate",
        "kmod-stratc": "submitted", "kmod-stratd": "submitted"}  # failed for K2
    assert kit.admin.getTaskInfo(strat.children["kmod-stratb"]["id"])["state"] == 0
    assert rows["kmod-stratb"]["detail"].endswith(
        f"(build task {strat.children['kmod-stratb']['id']})")
    for r in kit.rebuilds(task["id"]):
        assert r["request"][2]["wait_builds"] == [k3["nvr"]]


def test_each_outcome_is_published_once_judged(strat: StratWorld) -> None:
    if strat.bus is None:
        pytest.skip("no broker in this run (KOJI_KABI_IT_AMQP=0 or no RabbitMQ)")
    tasks = {strat.children[k]["id"]: k for k in KMODS}
    got = strat.bus.wait_for(lambda m: m["body"].get("task_id") in tasks, count=4)
    validator = jsonschema.Draft202012Validator(messages.schema())
    for m in got:
        validator.validate(m["body"])
        row = _row(strat, tasks[m["body"]["task_id"]])
        assert (m["body"]["outcome"], m["body"]["detail"], m["body"]["build"]) == (
            row["outcome"], row["detail"], row["result_build"])
        assert m["props"]["outcome"] == row["outcome"]
    assert sorted(m["body"]["outcome"] for m in got) == [
        "build failed", "build failed", "fixed", "still broken"]
