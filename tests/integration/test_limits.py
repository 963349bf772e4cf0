"""Caps and hold-back on the real hub: a kernel that breaks many kmods never floods Koji.

``max_per_task`` is counted per check, ``max_in_flight`` by the hub's claims over every
open rebuild, and ``hold_back_free_tasks`` by Koji's own count of FREE tasks; what is held
back is reported as deferred and picked up by the next check.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.integration.conftest import hub_rules, names
from tests.integration.kit import Kit
from tests.integration.worlds import X86, Series, build_series, source_for

# last of its phase: it cancels every open rebuild (so that in-flight counts start at 0)
pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full", order=9)]
KMODS = ("kmod-la", "kmod-lb", "kmod-lc")


@dataclass
class Limited:
    kit: Kit
    series: Series
    kernels: dict[str, dict]


def _statuses(kit: Kit, task_id: int) -> dict[str, tuple[str, str]]:
    return {r["package"]: (r["status"], r["detail"])
            for r in kit.report(task_id)["rebuilds"]}


@pytest.fixture(scope="module")
def limited(koji_phase: Kit, rpm_dirs, realkoji) -> Limited:
    kit = koji_phase
    out, cache = rpm_dirs
    s = build_series(out, cache, realkoji.stamp, "lim", 31, (X86,), 120,
                     {k: {X86: [f"stable:{i * 5}:{i * 5 + 5}", f"changed:{i}:{i + 1}"]}
                      for i, k in enumerate(KMODS)})
    n = names("lim")
    kit.cancel_open_rebuilds()
    k1 = kit.baseline(n, s.kernels["K1"], s.kmods, lambda name: source_for(name, s.stamp))
    return Limited(kit, s, {"K1": k1})


def test_max_per_task_defers_the_rest(limited: Limited, realkoji) -> None:
    kit, s = limited.kit, limited.series
    with hub_rules(realkoji, max_per_task=1):  # K2 lands now
        k2 = kit.cg_build(s.kernels["K2"], source_for("kernel", s.stamp))
        limited.kernels["K2"] = k2
        kit.tag_build(names("lim")["kernel"], k2["id"])
        (task,) = kit.wait_kabi(k2["id"])
    statuses = _statuses(kit, task["id"])
    assert statuses["kmod-la"][0] == "submitted"
    assert statuses["kmod-lb"] == statuses["kmod-lc"] == ("deferred", "over max_per_task=1")
    assert len(kit.rebuilds(task["id"])) == 1


def test_max_in_flight_is_counted_over_every_open_rebuild(limited: Limited, realkoji) -> None:
    kit = limited.kit
    with hub_rules(realkoji, max_in_flight=2):
        info = kit.run_check(limited.kernels["K2"]["id"])
    statuses = _statuses(kit, info["id"])
    assert statuses["kmod-la"][0] == "duplicate"  # still open from the first check
    assert statuses["kmod-lb"][0] == "submitted"
    assert statuses["kmod-lc"] == ("deferred", "over max_in_flight=2")


def test_hold_back_while_koji_has_free_tasks(limited: Limited, realkoji) -> None:
    kit = limited.kit
    free = kit.admin.listTasks(opts={"state": [0]}, queryOpts={"countOnly": True})
    assert free >= 2  # the two held rebuilds at least
    with hub_rules(realkoji, hold_back_free_tasks=1, hold_back_seconds=0):
        info = kit.run_check(limited.kernels["K2"]["id"])
    status, detail = _statuses(kit, info["id"])["kmod-lc"]
    assert (status, detail) == ("deferred", "Koji is loaded (free tasks over 1)")
    assert kit.rebuilds(info["id"]) == []


def test_the_next_check_picks_up_what_was_deferred(limited: Limited) -> None:
    kit = limited.kit
    info = kit.run_check(limited.kernels["K2"]["id"])
    statuses = _statuses(kit, info["id"])
    assert {k: v[0] for k, v in statuses.items()} == {
        "kmod-la": "duplicate", "kmod-lb": "duplicate", "kmod-lc": "submitted"}
    (child,) = kit.rebuilds(info["id"])
    assert child["request"][0] == source_for("kmod-lc", limited.series.stamp)
