"""The hub hook on the real hub: one kabiCheck per kernel, whichever way the kernel lands.

Kernel builds arrive by ``koji import`` (RPM by RPM after the build is already
COMPLETE), by a content-generator import and by a task build (atomic), and as a draft
that is checked only once promoted; the real kojid runs every check with the builder
plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.conftest import names
from tests.integration.kit import CLOSED, Kit, note
from tests.integration.worlds import X86, Series, build_series, plain_package, source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]


@dataclass
class Hooked:
    kit: Kit
    series: Series
    builds: dict[str, dict]
    plain: dict


@pytest.fixture(scope="module")
def hooked(koji_phase: Kit, rpm_dirs, realkoji) -> Iterator[Hooked]:
    kit = koji_phase
    out, cache = rpm_dirs
    s = build_series(out, cache, realkoji.stamp, "hook", 11, (X86,), 150,
                     {"kmod-hookok": {X86: ["stable:0:20"]}}, kernels=4)
    n = names("hook")
    kit.listed(n["kernel"], "kernel")
    kit.listed(n["kmods"], "kmod-hookok")
    kit.tag_build(n["kmods"], kit.cg_import(s.kmods["kmod-hookok"],
                                            source_for("kmod-hookok", s.stamp))["build_id"])
    builds = {}
    kit.koji_import(s.kernels["K1"])
    builds["K1"] = kit.admin.getBuild(s.kernel_nvr["K1"])
    kit.tag_build(n["kernel"], builds["K1"]["id"])
    kit.wait_kabi(builds["K1"]["id"])
    builds["K2"] = kit.cg_build(s.kernels["K2"], source_for("kernel", s.stamp))
    kit.tag_build(n["kernel"], builds["K2"]["id"])
    kit.wait_kabi(builds["K2"]["id"])
    builds["K3"] = kit.task_build(s.kernels["K3"], source_for("kernel", s.stamp))
    kit.tag_build(n["kernel"], builds["K3"]["id"])
    builds["K4"] = kit.task_build(s.kernels["K4"], source_for("kernel", s.stamp), draft=True)
    kit.tag_build(n["kernel"], builds["K4"]["id"])
    paths, _nvr = plain_package(out, cache, s.stamp)
    kit.koji_import(paths)
    plain = kit.admin.getBuild(_nvr)
    yield Hooked(kit, s, builds, plain)


def _one_closed_check(h: Hooked, label: str) -> dict:
    build = h.builds[label]
    (task,) = h.kit.wait_kabi(build["id"])
    assert task["state"] == CLOSED, h.kit.admin.getTaskResult(task["id"], raise_fault=False)
    assert task["request"] == [build["id"], {}]
    assert h.kit.admin.getChannel(task["channel_id"])["name"] == "kabi"
    assert task["priority"] == 25
    assert task["owner"] == h.kit.admin.getUser("kojiadmin")["id"]  # the build's owner
    started, done = task["start_ts"], task["completion_ts"]
    note(f"kabiCheck of {label} ({build['nvr']}): created->done "
         f"{done - task['create_ts']:.1f}s, ran {done - started:.1f}s")
    return task


def test_koji_import_gets_one_check_on_the_whole_rpm_set(hooked: Hooked) -> None:
    task = _one_closed_check(hooked, "K1")
    result = hooked.kit.admin.getTaskResult(task["id"])
    assert result["kernel"] == hooked.series.kernel_nvr["K1"] and result["previous"] is None
    report = hooked.kit.report(task["id"])
    # every RPM of the import was in: all symbols of core + modules were read
    (arch,) = report["arches"]
    assert arch["symbols"] == {X86: len(hooked.series.tables["K1"][X86])}
    assert result["kmod_builds"] == 1 and result["compatible"] == 1
    # a later RPM of the same import did not queue a second check
    assert len(hooked.kit.kabi_tasks(hooked.builds["K1"]["id"])) == 1


def test_cg_import_gets_one_check_at_once(hooked: Hooked) -> None:
    task = _one_closed_check(hooked, "K2")
    result = hooked.kit.admin.getTaskResult(task["id"])
    s = hooked.series
    assert result["previous"] == s.kernel_nvr["K1"]
    assert result["delta"][X86] == {"added": len(s.added[X86]), "removed": len(s.removed[X86]),
                                    "changed": len(s.changed[X86])}


def test_task_build_gets_one_check(hooked: Hooked) -> None:
    task = _one_closed_check(hooked, "K3")
    assert hooked.kit.admin.getTaskResult(task["id"])["previous"] == \
        hooked.series.kernel_nvr["K2"]


def test_draft_kernel_is_checked_when_promoted(hooked: Hooked) -> None:
    kit, draft = hooked.kit, hooked.builds["K4"]
    assert draft["draft"] is True
    # the hook runs inside the build's transaction: a task would exist by now
    assert kit.kabi_tasks(draft["id"]) == []
    promoted = kit.admin.promoteBuild(draft["id"])
    assert promoted["nvr"] == hooked.series.kernel_nvr["K4"]
    hooked.builds["K4"] = promoted
    task = _one_closed_check(hooked, "K4")
    result = kit.admin.getTaskResult(task["id"])
    assert result["kernel"] == promoted["nvr"]
    assert result["previous"] == hooked.series.kernel_nvr["K3"]


def test_builds_of_other_packages_get_no_check(hooked: Hooked) -> None:
    assert hooked.kit.kabi_tasks(hooked.plain["id"]) == []
    kmod = hooked.kit.admin.getBuild(hooked.series.kmod_nvr["kmod-hookok"])
    assert hooked.kit.kabi_tasks(kmod["id"]) == []
