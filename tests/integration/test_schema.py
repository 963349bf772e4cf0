"""The claims table on the real hub: without it, rebuilds wait with one clear error.

First of its phase: it drops the table (and so every claim this hub had), as a hub looks
before the admin applied ``kabi-schema.sql``, then applies it the way the README says.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import STAMP, fault_scenario
from tests.integration.kit import FAILED, Kit
from tests.integration.worlds import source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full", order=-1)]
MISSING = ("the kabi_rebuild table is missing from the hub's database: apply "
           "/usr/share/koji-kabi/kabi-schema.sql once (psql koji koji < kabi-schema.sql)")


def test_rebuilds_need_the_table_and_say_so_in_one_line(koji_phase: Kit, rpm_dirs,
                                                         realkoji) -> None:
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "nodb", 61)
    realkoji.drop_schema()
    try:
        mark = realkoji.log_mark()
        k2 = kit.cg_build(s.kernels["K2"], source_for("kernel", STAMP))
        kit.tag_build(n["kernel"], k2["id"])
        (task,) = kit.wait_kabi(k2["id"])
        assert task["state"] == FAILED
        fault = kit.admin.getTaskResult(task["id"], raise_fault=False)["faultString"]
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
