"""The automatic rebuild pipeline end to end against the test hub over real XML-RPC.

Real RPMs (rpmbuild) are imported into the hub simulator with our hub plugin loaded: the
import of a new kernel fires the hook, which creates one ``kabiCheck`` task; the builder
plugin's real ``BaseTaskHandler`` runs it with a ``koji.ClientSession`` over HTTP and
submits ``build`` subtasks.  Assertions are on what the hub recorded.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import koji
import pytest

from koji_kabi.pipeline import CheckOptions, Context, settle
from koji_kabi.rules import load_rules
from tests.hubsim import kojid_options, run_task_handler
from tests.kojitest import (
    ARCHES,
    Env,
    Rpms,
    close_env,
    import_kernel,
    make_env,
    source_for,
    write_ini,
)


@pytest.fixture
def env(pipeline_rpms: Rpms, tmp_path: Path):
    e = make_env(pipeline_rpms, tmp_path)
    yield e
    close_env(e)


def test_new_kernel_gives_exactly_the_right_rebuild_subtasks(env: Env, pipeline_rpms: Rpms) -> None:
    (_k1_task,) = env.kabi_tasks()  # kernel 1 was checked too (with nothing to compare)
    k2 = import_kernel(env, pipeline_rpms.k2)
    (task,) = env.kabi_tasks(k2)
    info = env.state.task_info(task["id"], request=True)
    assert list(info["request"]) == [k2["id"], {}]
    assert env.hub.client().getChannel(info["channel_id"])["name"] == "kabi"
    assert info["owner"] == env.state._user("kojiadmin")["id"]
    started = time.monotonic()
    result = env.run(task["id"])
    elapsed = time.monotonic() - started
    assert result["kernel"] == "kernel-5.14.0-2.el9"
    assert result["previous"] == "kernel-5.14.0-1.el9"
    assert result["kmod_builds"] == 6 and result["incompatible"] == 5
    assert result["compatible"] == 1 and result["rebuilds_submitted"] == 3
    submitted = {c["request"][0]: c for c in env.builds_submitted()}
    assert set(submitted) == {source_for("kmod-crc"), source_for("kmod-gone"),
                              source_for("kmod-nvidia")}
    crc = submitted[source_for("kmod-crc")]
    _src, target, opts = crc["request"]
    assert target == "kmods9-el9"
    assert opts["scratch"] is True and opts["wait_builds"] == ["kernel-5.14.0-2.el9"]
    assert opts["custom_user_metadata"]["kabi"]["rebuild_of"] == "kmod-crc-1.0-1.el9"
    assert crc["priority"] == 33
    assert env.hub.client().getChannel(crc["channel_id"])["name"] == "default"
    nvidia_opts = submitted[source_for("kmod-nvidia")]["request"][2]
    assert "scratch" not in nvidia_opts and "draft" not in nvidia_opts  # mode: build
    assert sorted(result["rebuild_task_ids"]) == sorted(c["id"] for c in submitted.values())
    # the report: uploaded JSON + text, readable through the hub
    outputs = env.hub.client().listTaskOutput(task["id"])
    assert {"kabi-report.json", "kabi-report.txt"} <= set(outputs)
    report = json.loads(env.hub.client().downloadTaskOutput(task["id"], "kabi-report.json"))
    skipped = {s["package"]: s["reason"] for s in report["skipped"]}
    assert skipped == {"kmod-optout": "opted out in the rules",
                       "kmod-nosrc": "build has no recorded SCM source to rebuild from"}
    x86 = next(a for a in report["arches"] if a["arch"] == "x86_64")
    bad = {v["rpm"]: v for v in x86["verdicts"] if not v["compatible"]}
    changed = pipeline_rpms.changed
    # kernel 2's own kernel-abi-stablelists RPM says which broken symbols are stable
    assert {m["symbol"]: m["stable"] for m in bad["kmod-crc-1.0-1.el9.x86_64"]["mismatched"]} \
        == {changed[0]: True, changed[1]: False}
    (x86_delta,) = x86["delta"]
    assert {c["symbol"] for c in x86_delta["changed"] if c["stable"]} == {changed[0]}
    assert bad["kmod-gone-2.0-3.el9.x86_64"]["missing"] == pipeline_rpms.removed[:1]
    assert {d["key"] for a in report["arches"] for d in a["delta"]} == set(ARCHES)
    text = env.hub.client().downloadTaskOutput(task["id"], "kabi-report.txt").decode()
    assert "kABI check of kernel-5.14.0-2.el9" in text and "kmod-crc" in text
    print(f"\nkabiCheck took {elapsed:.2f}s; report:\n{text}")


def test_rerun_and_same_kabi_kernel_submit_nothing_new(env: Env, pipeline_rpms: Rpms) -> None:
    k2 = import_kernel(env, pipeline_rpms.k2)
    (first,) = env.kabi_tasks(k2)
    env.run(first["id"])
    before = len(env.builds_submitted())
    again = env.state.make_task("kabiCheck", [k2["id"], {}], owner="kojiadmin",
                                channel="kabi")
    result = env.run(again)
    assert result["rebuilds_submitted"] == 0
    k3 = import_kernel(env, pipeline_rpms.k3)  # same kABI for every kmod: nothing new either
    (third,) = [t["id"] for t in env.kabi_tasks(k3)]
    result3 = env.run(third)
    assert result3["rebuilds_submitted"] == 0 and result3["incompatible"] == 5
    assert len(env.builds_submitted()) == before == 3
    report = json.loads(env.hub.client().downloadTaskOutput(third, "kabi-report.json"))
    assert {r["status"] for r in report["rebuilds"]} == {"duplicate"}


def test_failed_rebuild_may_be_claimed_again(env: Env, pipeline_rpms: Rpms) -> None:
    k2 = import_kernel(env, pipeline_rpms.k2)
    (first,) = env.kabi_tasks(k2)
    env.run(first["id"])
    for child in env.builds_submitted():
        env.state.fail_task(child["id"], "mock failed")
    again = env.state.make_task("kabiCheck", [k2["id"], {}], owner="kojiadmin",
                                channel="kabi")
    assert env.run(again)["rebuilds_submitted"] == 3


def test_dry_run_and_caps(pipeline_rpms: Rpms, tmp_path: Path) -> None:
    env = make_env(pipeline_rpms, tmp_path, rebuild={"dry_run": True})
    try:
        (task,) = env.kabi_tasks(import_kernel(env, pipeline_rpms.k2))
        assert env.run(task["id"])["rebuilds_submitted"] == 0
        assert env.builds_submitted() == []
    finally:
        close_env(env)
    env = make_env(pipeline_rpms, tmp_path / "caps",
                   rebuild={"max_per_task": 1, "max_in_flight": 2})
    try:
        (task,) = env.kabi_tasks(import_kernel(env, pipeline_rpms.k2))
        assert env.run(task["id"])["rebuilds_submitted"] == 1
        report = json.loads(env.hub.client().downloadTaskOutput(task["id"],
                                                                "kabi-report.json"))
        assert sorted(r["status"] for r in report["rebuilds"]) == \
            ["deferred", "deferred", "submitted"]
    finally:
        close_env(env)


def test_non_kernel_draft_and_disabled_hook(env: Env, pipeline_rpms: Rpms) -> None:
    existing = len(env.kabi_tasks())
    env.state.import_rpms(pipeline_rpms.plain, owner="alice")
    assert len(env.kabi_tasks()) == existing  # not a kernel
    (draft,) = env.state.import_rpms(pipeline_rpms.k2, owner="kojiadmin", draft=True)
    assert env.kabi_tasks(draft) == []  # a draft kernel waits for its promotion
    env.hubmod.kabi_build_promoted("postBuildPromote", build=draft,
                                   draft_release=draft["release"], target_release="2.el9",
                                   user={"id": 1})
    assert len(env.kabi_tasks(draft)) == 1


def test_koji_import_rpm_by_rpm_is_checked_once_on_the_whole_set(env: Env,
                                                                 pipeline_rpms: Rpms) -> None:
    srpm = [p for p in pipeline_rpms.k2 if p.name.endswith(".src.rpm")]
    rest = [p for p in pipeline_rpms.k2 if not p.name.endswith(".src.rpm")]
    (build,) = env.state.import_rpms(srpm, owner="kojiadmin", tag="el9-kernel")
    (task,) = env.kabi_tasks(build)  # the build is COMPLETE after its first file
    pending = list(rest)
    rules = load_rules(str(env.tmp / "rules.yaml"))
    clock = [0.0]

    def sleep(seconds: float) -> None:  # the other RPMs arrive while the task waits
        clock[0] += seconds
        if pending:
            env.state.import_rpms([pending.pop()], owner="kojiadmin")

    ctx = Context(env.host, rules, task["id"], sleep=sleep, clock=lambda: clock[0])
    rpms_seen = settle(ctx, env.hub.client().getBuild(build["id"]),
                       CheckOptions(settle_seconds=30, poll=10))
    assert len(rpms_seen) == len(pipeline_rpms.k2) and not pending
    assert len(env.kabi_tasks(build)) == 1


def test_fan_out_per_arch_gives_the_same_answer(env: Env, pipeline_rpms: Rpms,
                                                tmp_path: Path) -> None:
    (task,) = env.kabi_tasks(import_kernel(env, pipeline_rpms.k2))
    env.builder._loaded.clear()
    write_ini(env.tmp / "builder.conf", rules=env.tmp / "rules.yaml",
              cache_dir=env.tmp / "cache", settle_seconds=0, poll=0.01, fanout_min_kmods=1)
    opts = kojid_options(str(tmp_path / "kojid"), topdir=env.state.topdir, server=env.hub.url)
    done = threading.Event()

    def kojid() -> None:  # a second "builder" runs the per-arch subtasks, then wakes the parent
        while not done.is_set():
            for t in env.state.tasks("kabiCheckArch"):
                if t["state"] == koji.TASK_STATES["FREE"]:
                    run_task_handler(env.builder.KabiCheckArchTask, t["id"],
                                     env.hub.client("builder1"), opts)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR2)
            time.sleep(0.05)

    old = signal.signal(signal.SIGUSR2, lambda *a: None)
    env.state.strict_wait = False
    worker = threading.Thread(target=kojid, daemon=True)
    worker.start()
    try:
        result = env.run(task["id"])
    finally:
        done.set()
        worker.join()
        signal.signal(signal.SIGUSR2, old)
    arch_tasks = env.state.tasks("kabiCheckArch")
    assert sorted(env.state.task_info(t["id"], True)["request"][0]["arch"]
                  for t in arch_tasks) == sorted(ARCHES)
    assert result["incompatible"] == 5 and result["rebuilds_submitted"] == 3


def test_broken_builder_config_fails_the_task_clearly(env: Env, pipeline_rpms: Rpms) -> None:
    (task,) = env.kabi_tasks(import_kernel(env, pipeline_rpms.k2))
    env.builder._loaded.clear()
    (env.tmp / "builder.conf").write_text("[kabi]\nrules = /nonexistent/rules.yaml\n")
    with pytest.raises(koji.GenericError, match=r"/nonexistent/rules\.yaml: No such file"):
        env.run(task["id"])
    assert env.state.task_info(task["id"])["state"] == koji.TASK_STATES["FAILED"]


def test_holds_back_while_koji_is_loaded(pipeline_rpms: Rpms, tmp_path: Path) -> None:
    env = make_env(pipeline_rpms, tmp_path,
                   rebuild={"hold_back_free_tasks": 2, "hold_back_seconds": 0})
    try:
        for _ in range(3):  # a queue of waiting tasks in Koji
            env.state.make_task("sleep", [100], owner="kojiadmin")
        (task,) = env.kabi_tasks(import_kernel(env, pipeline_rpms.k2))
        assert env.run(task["id"])["rebuilds_submitted"] == 0
        report = json.loads(env.hub.client().downloadTaskOutput(task["id"],
                                                                "kabi-report.json"))
        assert {r["status"] for r in report["rebuilds"]} == {"deferred"}
        assert "Koji is loaded" in report["rebuilds"][0]["detail"]
        assert env.builds_submitted() == []
    finally:
        close_env(env)
