"""Faults on the real hub and kojid: a crashed builder, a hub process dying mid-call, two
claimers at once.  Nothing is lost, nothing is made twice, and there is a report.

The test hub plugin (hub_test_plugin.py) holds the builder's ``kabi.submitRebuilds``
call at a chosen moment, which gives each fault its window: after the claims and the
rebuild subtasks are committed but before the builder has the answer (``postCommit``),
or inside the transaction while another check wants the same claims (``preCommit``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import STAMP, fault_scenario
from tests.integration.kit import CLOSED, Kit, note
from tests.integration.worlds import source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]
SUBMIT = "kabi.submitRebuilds"


@pytest.fixture(autouse=True)
def _kojid_back(realkoji) -> Iterator[None]:
    """Whatever a test did to kojid, the next one finds it running."""
    yield
    if not realkoji.kojid_alive():
        realkoji.start_kojid()


def _wait_children(kit: Kit, task_id: int, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(kids := kit.rebuilds(task_id)) < count:
        assert time.monotonic() < deadline, f"task {task_id}: {len(kids)} rebuilds"
        time.sleep(0.2)
    return kids


def _exactly_once(kit: Kit, task_ids: list[int], kmods: list[str]) -> dict[str, int]:
    """Every expected rebuild exists once over these checks: {source: rebuild task}."""
    children = [c for t in task_ids for c in kit.rebuilds(t)]
    sources = sorted(c["request"][0] for c in children)
    assert sources == sorted(source_for(k, STAMP) for k in kmods), sources
    return {c["request"][0]: c["id"] for c in children}


@contextlib.contextmanager
def _answer_held(kit: Kit, realkoji, s, n) -> Iterator[tuple[dict, int, list[dict]]]:
    """K2 lands; its check's submitRebuilds is held after the commit (the rebuilds exist,
    the builder waits for its answer): (K2, the hub process holding it, the rebuilds)."""
    hold = realkoji.hold("postCommit", SUBMIT)
    try:
        k2 = kit.cg_build(s.kernels["K2"], source_for("kernel", STAMP))
        kit.tag_build(n["kernel"], k2["id"])
        pid = realkoji.held_pid(hold)
        (task,) = kit.kabi_tasks(k2["id"])
        yield k2, pid, _wait_children(kit, task["id"], 2)
    finally:
        hold.unlink(missing_ok=True)


def test_kojid_killed_after_the_rebuilds_exist(koji_phase: Kit, rpm_dirs, realkoji) -> None:
    """kojid (and its task process) die with SIGKILL once the hub has committed the
    rebuilds; after kojid restarts, Koji frees and re-runs the same task, which finds
    them, reports them, and makes none twice."""
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "kill", 71)
    with _answer_held(kit, realkoji, s, n) as (k2, _pid, made):
        killed = realkoji.kill_kojid()
    realkoji.start_kojid()
    (task,) = kit.wait_kabi(k2["id"])
    assert task["state"] == CLOSED, kit.admin.getTaskResult(task["id"], raise_fault=False)
    runs = kit.admin.scheduler.getTaskRuns([["task_id", "=", task["id"]]])
    assert len(runs) >= 2  # the task was taken again after the crash
    rebuilt = _exactly_once(kit, [task["id"]], list(s.kmods))
    assert sorted(rebuilt.values()) == sorted(c["id"] for c in made)
    report = kit.report(task["id"])
    assert {r["package"]: (r["status"], r["task_id"]) for r in report["rebuilds"]} == {
        k: ("submitted", rebuilt[source_for(k, STAMP)]) for k in s.kmods}
    note(f"kojid SIGKILLed ({len(killed)} processes) after task {task['id']}'s rebuilds were "
         f"committed: re-run {len(runs)} times, {len(rebuilt)} rebuilds, each once")


def test_hub_process_killed_after_commit(koji_phase: Kit, rpm_dirs, realkoji) -> None:
    """The hub process serving the builder's call dies after committing: the builder's
    retry is refused (Koji will not repeat a committed call), so the check asks what it
    has, finds every rebuild, and finishes with a complete report."""
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "crash", 81)
    with _answer_held(kit, realkoji, s, n) as (k2, pid, _made):
        os.kill(pid, signal.SIGKILL)  # mod_wsgi starts another daemon process
    (task,) = kit.wait_kabi(k2["id"])
    assert task["state"] == CLOSED, kit.admin.getTaskResult(task["id"], raise_fault=False)
    rebuilt = _exactly_once(kit, [task["id"]], list(s.kmods))
    report = kit.report(task["id"])
    assert report["error"] is None
    assert {r["package"]: (r["status"], r["task_id"]) for r in report["rebuilds"]} == {
        k: ("submitted", rebuilt[source_for(k, STAMP)]) for k in s.kmods}
    note(f"hub process {pid} SIGKILLed after committing task {task['id']}'s rebuilds: "
         f"{len(rebuilt)} rebuilds, each once, report complete")


def test_two_claimers_at_once_get_one_grant(koji_phase: Kit, rpm_dirs, realkoji) -> None:
    """Two kernels with the same kABI land together; the first check's claims are held
    uncommitted while the second check claims the same keys: one grant, one duplicate."""
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "race", 91, kernels=3)
    hold = realkoji.hold("preCommit", SUBMIT)
    try:
        kernels = [kit.cg_build(s.kernels[k], source_for("kernel", STAMP)) for k in ("K2", "K3")]
        for b in kernels:
            kit.tag_build(n["kernel"], b["id"])
        first_pid = realkoji.held_pid(hold)
        tasks = [kit.kabi_tasks(b["id"])[0] for b in kernels]
        deadline = time.monotonic() + 60  # both checks are now inside their submit call
        while not all(kit.admin.getTaskInfo(t["id"])["state"] == 1 for t in tasks):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(3)  # the second call waits for the first's lock meanwhile
    finally:
        hold.unlink(missing_ok=True)
    done = [kit.wait_kabi(b["id"])[0] for b in kernels]
    assert all(t["state"] == CLOSED for t in done)
    _exactly_once(kit, [t["id"] for t in done], list(s.kmods))
    statuses = sorted(tuple(sorted(r["status"] for r in kit.report(t["id"])["rebuilds"]))
                      for t in done)
    assert statuses == [("duplicate", "duplicate"), ("submitted", "submitted")]
    note(f"two checks claiming the same keys at once (first held in hub process "
         f"{first_pid}): one grant each key")
