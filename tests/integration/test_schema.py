"""The claims table on the real hub: without it, rebuilds wait with one clear error.

First of its phase: it drops the table (and so every claim this hub had), as a hub looks
before the admin applied ``kabi-schema.sql``, then applies it the way the README says.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import STAMP, fault_scenario
from tests.integration.kit import FAILED, Kit
from tests.integration.realkoji import UPGRADE_SQL
from tests.integration.worlds import plain_package, source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full", order=-1)]
MISSING = ("the kabi_rebuild table is missing from the hub's database: apply "
           "/usr/share/koji-kabi/kabi-schema.sql once (psql koji koji < kabi-schema.sql)")


def _land_k2_and_fail(kit: Kit, s, n: dict[str, str]) -> tuple[dict, dict, str]:
    """K2 lands; its check cannot submit rebuilds: (K2, the failed task, its fault)."""
    k2 = kit.cg_build(s.kernels["K2"], source_for("kernel", STAMP))
    kit.tag_build(n["kernel"], k2["id"])
    (task,) = kit.wait_kabi(k2["id"])
    assert task["state"] == FAILED
    return k2, task, kit.admin.getTaskResult(task["id"], raise_fault=False)["faultString"]


def test_rebuilds_need_the_table_and_say_so_in_one_line(koji_phase: Kit, rpm_dirs,
                                                         realkoji) -> None:
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "nodb", 61)
    realkoji.drop_schema()
    try:
        mark = realkoji.log_mark()
        k2, task, fault = _land_k2_and_fail(kit, s, n)
        assert fault == f"submitting rebuilds failed: {MISSING}"
        report = kit.report(task["id"])  # uploaded before the task failed
        assert report["error"] == fault and report["summary"]["incompatible"] == 2
        assert {r["status"] for r in report["rebuilds"]} == {"not submitted"}
        assert kit.rebuilds(task["id"]) == []
        said = [ln for ln in realkoji.log_since(mark).splitlines() if MISSING in ln]
        assert 1 <= len(said) <= 2  # once per hub process
    finally:
        realkoji.apply_schema()
    info = kit.run_check(k2["id"])
    assert sorted(c["request"][0] for c in kit.rebuilds(info["id"])) == sorted(
        source_for(k, STAMP) for k in s.kmods)


OLD = ("the kabi_rebuild table is from an older koji-kabi: apply "
       "/usr/share/koji-kabi/kabi-schema-upgrade.sql (psql koji koji < "
       "kabi-schema-upgrade.sql)")
UPGRADED = ("strategy", "side_tag_id", "judge_task_id", "result_build_id", "outcome",
            "outcome_detail", "outcome_ts")


def test_an_old_table_names_the_upgrade_and_breaks_no_build(koji_phase: Kit, rpm_dirs,
                                                            realkoji) -> None:
    """A hub whose admin applied the first kabi-schema.sql and updated koji-kabi."""
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "nodb", 131)  # own release: all worlds share kernel NVRs
    realkoji.psql("-c", "ALTER TABLE kabi_rebuild " + ", ".join(
        f"DROP COLUMN {c}" for c in UPGRADED))
    try:
        k2, _task, fault = _land_k2_and_fail(kit, s, n)
        assert fault == f"submitting rebuilds failed: {OLD}"
        # builds made by tasks still complete: the callbacks that look for rebuilds
        # know the table is old and leave it alone
        paths, _nvr = plain_package(*rpm_dirs, STAMP + "old")
        assert kit.task_build(paths, source_for("plain", STAMP))["state"] == 1  # COMPLETE
    finally:
        realkoji.psql("-f", str(UPGRADE_SQL))  # what the README says to do
    info = kit.run_check(k2["id"])  # closes: the claims work again
    report = kit.report(info["id"])
    # the same kABI as the first test's kmods (same stamp, same seed): those claims hold
    assert report["error"] is None and len(report["rebuilds"]) == 2
    assert {r["status"] for r in report["rebuilds"]} <= {"submitted", "duplicate"}
