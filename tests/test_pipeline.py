"""The kabiCheck pipeline's logic, on real RPMs, against an in-memory Koji (tests.fakekoji).

The fake only stores what each test put in it; every assertion is on what the pipeline
computed from the RPM headers (verdicts, deltas, stablelist flags, fingerprints) or
decided from them (which rebuilds, how, which skipped, deferred or duplicate).  What
crosses a real hub is tested in tests/integration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.koji.checks import watch_of
from koji_kabi.koji.pipeline import Context, check_arch_job, run_check, settle
from koji_kabi.koji.rules import Rules, parse_rules
from koji_kabi.koji.settings import CheckOptions
from koji_kabi.report.text import report_text
from tests.fakekoji import FakeKoji
from tests.pipeline_rpms import ARCHES, Rpms, source_for
from tests.support.results import valid

K1, K2, K3 = "kernel-5.14.0-1.el9", "kernel-5.14.0-2.el9", "kernel-5.14.0-3.el9"
CRC, GONE, NVIDIA = "kmod-crc-1.0-1.el9", "kmod-gone-2.0-3.el9", "kmod-nvidia-550.1-1.el9"
REBUILT = {"kmod-crc", "kmod-gone", "kmod-nvidia"}  # incompatible, not opted out, with SCM


def rules(**overrides: Any) -> Rules:
    """The rules of the Koji-facing tests (tests.pipeline_rpms.write_rules), with overrides."""
    data: dict = {
        "kernel_packages": ["kernel"],
        "watch": [{"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9-testing"],
                   "target": "kmods9-el9"}],
        "rebuild": {"mode": "scratch", "priority": 33},
        "packages": {"kmod-optout": {"opt_out": True}, "kmod-nvidia": {"mode": "build"},
                     "kmod-nosrc": {"mode": "build"}},  # no SCM source: cannot be rebuilt
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if key in ("rebuild", "packages") else value
    return parse_rules(data, "rules.yaml")


@dataclass
class Clock:
    """Fake time: ``sleep`` advances it and lets the world change (``on_sleep``)."""

    on_sleep: Optional[Callable[[int], None]] = None
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


@dataclass
class World:
    koji: FakeKoji
    builds: dict[str, dict]  # by package (kernels by NVR)
    rpms: Rpms
    task_id: Optional[int] = None  # of the last check
    staged: list = field(default_factory=list)  # SRPMs "uploaded" by stage_srpm

    def stage(self, build_id: int) -> str:
        """The builder's stage_srpm: the SRPM under the task's work directory."""
        nvr = next(b["nvr"] for b in self.builds.values() if b["id"] == build_id)
        self.staged.append(build_id)
        return f"tasks/{self.task_id}/{nvr}.src.rpm"

    def add_kernel(self, paths: list, tag: Optional[str] = "el9-kernel") -> dict:
        """A kernel built by a build task, as the hub hook would see it complete."""
        build = self.koji.add_build(paths, tag=tag, task_request=["git+https://k#1", "el9", {}])
        self.builds[build["nvr"]] = build
        return build

    def check(self, ref: Any, rules_: Optional[Rules] = None, opts: Optional[CheckOptions] = None,
              clock: Optional[Clock] = None, task_id: Optional[int] = None,
              **ctx: Any) -> dict:
        """One kabiCheck task of ``ref`` (a new one, or ``task_id`` run again); the
        report, checked to be JSON as uploaded."""
        clock = clock or Clock()
        self.task_id = task_id = task_id or self.koji.add_task([ref, {}])
        ctx.setdefault("stage_srpm", self.stage)
        context = Context(self.koji, self.koji, rules_ or rules(), task_id, sleep=clock.sleep,
                          clock=clock, fetch=self.koji.fetch, **ctx)
        report = run_check(context, ref, opts or CheckOptions())
        assert valid(json.loads(json.dumps(report)), "kabi-report") == report
        return report


def make_world(rpms: Rpms) -> World:
    """Kernel 1 and the six kmods of tests.pipeline_rpms, with each way Koji records a source."""
    koji = FakeKoji()
    world = World(koji, {}, rpms)
    world.add_kernel(rpms.k1)
    for name, paths in rpms.kmods.items():
        src = source_for(name)
        srpm = next(p.name for p in paths if p.name.endswith(".src.rpm"))
        kind: dict = {
            "kmod-crc": {"cg": True, "source": src},  # CG import: source on the build only
            "kmod-gone": {"task_request": [src, "kmods9-el9", {}]},  # only in the task
            "kmod-nosrc": {"task_request": [f"cli-build/1/{srpm}", "kmods9-el9", {}]},
        }.get(name, {"source": src, "task_request": [src, "kmods9-el9", {}]})
        world.builds[name] = koji.add_build(paths, tag="kmods9-testing", **kind)
    return world


@pytest.fixture
def world(pipeline_rpms: Rpms) -> World:
    return make_world(pipeline_rpms)


def by_package(report: dict) -> dict[str, dict]:
    return {r["package"]: r for r in report["rebuilds"]}


def arch(report: dict, name: str = "x86_64") -> dict:
    return next(a for a in report["arches"] if a["arch"] == name)


# --------------------------------------------------------------------------- rebuilds

def test_new_kernel_gives_exactly_the_right_rebuild_requests(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    report = world.check(k2["id"])
    s = report["summary"]
    assert (report["kernel"], report["previous"]) == (K2, K1)
    assert (report["kernel_tag"], report["kmod_tags"]) == ("el9-kernel", ["kmods9-testing"])
    assert (s["kmod_builds"], s["kmod_builds_checked"], s["compatible"], s["incompatible"]) \
        == (6, 6, 1, 5)
    tasks = {t["arglist"][0]: t for t in world.koji.subtasks}
    assert set(tasks) == {source_for(p) for p in REBUILT}  # from build.source or its task
    rebuilds = by_package(report)
    assert {r["strategy"] for r in rebuilds.values()} == {"buildroot"}
    for package in REBUILT:
        t = tasks[source_for(package)]
        meta = t["arglist"][2]["custom_user_metadata"]["kabi"]
        assert (t["method"], t["arglist"][1], t["channel"], t["priority"], t["parent"]) \
            == ("build", "kmods9-el9", "default", 33, world.task_id)
        assert t["arglist"][2]["wait_builds"] == [K2] and meta["kernel"] == K2
        assert t["label"] == f"kabi-{package}-{meta['fingerprint'][:12]}"
        assert (rebuilds[package]["task_id"], rebuilds[package]["detail"]) == \
            (t["id"], f"build task {t['id']}")
    # one fingerprint per kABI: different kmods consume different symbols
    assert len({t["label"] for t in world.koji.subtasks}) == 3
    crc_opts = tasks[source_for("kmod-crc")]["arglist"][2]
    assert crc_opts["scratch"] is True and "draft" not in crc_opts
    assert crc_opts["custom_user_metadata"]["kabi"]["rebuild_of"] == CRC
    assert tasks[source_for("kmod-gone")]["arglist"][2]["custom_user_metadata"]["kabi"][
        "rebuild_of"] == GONE
    nvidia_opts = tasks[source_for("kmod-nvidia")]["arglist"][2]
    assert "scratch" not in nvidia_opts and "draft" not in nvidia_opts  # mode: build
    assert {p: r["status"] for p, r in rebuilds.items()} == dict.fromkeys(REBUILT, "submitted")
    assert sorted(s["rebuild_task_ids"]) == sorted(t["id"] for t in world.koji.subtasks)
    assert s["rebuilds_submitted"] == 3
    changed, removed = world.rpms.changed, world.rpms.removed
    assert rebuilds["kmod-crc"]["broken_symbols"] == changed[:2]
    assert rebuilds["kmod-gone"]["broken_symbols"] == removed[:1]
    assert rebuilds["kmod-nvidia"]["broken_symbols"] == changed[4:6]
    assert {s["package"]: s["reason"] for s in report["skipped"]} == {
        "kmod-optout": "opted out in the rules",
        "kmod-nosrc": "the build has no recorded SCM source; a rebuild from the SRPM is "
                      "scratch or draft only (mode is build)"}
    # the verdicts and the delta, from the RPM headers
    x86 = arch(report)
    bad = {v["rpm"]: v for v in x86["verdicts"] if not v["compatible"]}
    assert set(bad) == {f"{n}.x86_64" for n in (CRC, GONE, NVIDIA, "kmod-optout-1.0-1.el9",
                                                "kmod-nosrc-1.0-1.el9")}
    assert {v["rpm"] for v in arch(report, "aarch64")["verdicts"]} == {
        "kmod-ok-1.0-1.el9.aarch64", "kmod-crc-1.0-1.el9.aarch64"}
    assert all(v["compatible"] for v in arch(report, "aarch64")["verdicts"])
    assert [m["symbol"] for m in bad[f"{GONE}.x86_64"]["missing"]] == removed[:1]
    # kernel 2's own kernel-abi-stablelists RPM says which broken symbols are stable
    assert {m["symbol"]: m["stable"] for m in bad[f"{CRC}.x86_64"]["mismatched"]} \
        == {changed[0]: True, changed[1]: False}
    (x86_delta,) = x86["delta"]["deltas"]
    assert {c["symbol"] for c in x86_delta["changed"]} == set(changed)
    assert {c["symbol"] for c in x86_delta["removed"]} == set(removed)
    assert {c["symbol"] for c in x86_delta["changed"] if c["stable"]} == {changed[0]}
    assert {d["key"] for a in report["arches"] for d in a["delta"]["deltas"]} == set(ARCHES)
    assert s["delta"]["x86_64"] == {"added": 5, "removed": 5, "changed": len(changed)}
    assert all(a["stablelist"] for a in report["arches"])
    claims = world.koji.claim_calls[0]
    assert [(c["package"], c["nvr"], c["kernel"]) for c in claims] == [
        ("kmod-crc", CRC, K2), ("kmod-gone", GONE, K2), ("kmod-nvidia", NVIDIA, K2)]
    text = report_text(report)
    assert f"kABI check of {K2}" in text and "kmod-crc" in text


def test_rerun_and_same_kabi_kernel_give_duplicates(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    world.check(k2["id"])
    first = {t["label"]: (t["parent"], t["id"]) for t in world.koji.subtasks}
    again = world.check(K2)
    assert again["summary"]["rebuilds_submitted"] == 0
    assert {r["status"] for r in again["rebuilds"]} == {"duplicate"}
    assert {r["detail"] for r in again["rebuilds"]} == {
        f"already submitted by task {p} (build task {t})" for p, t in first.values()}
    k3 = world.add_kernel(world.rpms.k3)  # one symbol no kmod uses changes: same kABI
    third = world.check(k3["id"])
    assert third["previous"] == K2
    assert third["summary"]["delta"]["x86_64"] == {"added": 0, "removed": 0, "changed": 1}
    assert third["summary"]["delta"]["aarch64"] == {"added": 0, "removed": 0, "changed": 0}
    assert third["summary"]["incompatible"] == 5
    assert {r["package"]: r["status"] for r in third["rebuilds"]} == dict.fromkeys(
        REBUILT, "duplicate")
    assert len(world.koji.subtasks) == 3


def test_the_same_task_run_again_finds_its_rebuilds(world: World) -> None:
    """kojid died after the hub made the rebuilds; Koji runs the same task again: it
    reports them as its own, and makes none twice."""
    k2 = world.add_kernel(world.rpms.k2)
    first = world.check(k2["id"])
    task_id = world.task_id
    again = world.check(k2["id"], task_id=task_id)
    assert again["rebuilds"] == first["rebuilds"]
    assert {r["status"] for r in again["rebuilds"]} == {"submitted"}
    assert len(world.koji.subtasks) == 3


def test_a_failed_submission_still_reports_what_exists(world: World) -> None:
    """The hub's answer to submit_rebuilds is lost (it made them, or it did not): the
    report says which rebuilds the task has, which it could not submit, and why."""
    k2 = world.add_kernel(world.rpms.k2)
    real = world.koji.submit_rebuilds

    def made_then_lost(task_id: Any, rebuilds: list, max_in_flight: int) -> dict:
        real(task_id, rebuilds[:1], max_in_flight)  # the first made, then the line dropped
        raise ConnectionError("Connection reset by peer\n  (errno 104)")

    world.koji.submit_rebuilds = made_then_lost  # type: ignore[method-assign]
    report = world.check(k2["id"])
    assert report["error"] == "submitting rebuilds failed: Connection reset by peer (errno 104)"
    statuses = {p: (r["status"], r["task_id"]) for p, r in by_package(report).items()}
    (made,) = world.koji.subtasks
    assert statuses == {"kmod-crc": ("submitted", made["id"]),
                        "kmod-gone": ("not submitted", None),
                        "kmod-nvidia": ("not submitted", None)}
    assert "NOT FINISHED: submitting rebuilds failed" in report_text(report)
    assert report["summary"]["incompatible"] == 5  # the verdicts are all there


def test_a_lost_answer_after_everything_was_made_is_no_failure(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    real = world.koji.submit_rebuilds

    def all_made_then_lost(task_id: Any, rebuilds: list, max_in_flight: int) -> dict:
        real(task_id, rebuilds, max_in_flight)
        raise RuntimeError("unable to retry call 7 (method kabi.submitRebuilds)")

    world.koji.submit_rebuilds = all_made_then_lost  # type: ignore[method-assign]
    report = world.check(k2["id"])
    assert report["error"] is None
    assert {r["status"] for r in report["rebuilds"]} == {"submitted"}
    assert sorted(report["summary"]["rebuild_task_ids"]) == sorted(
        t["id"] for t in world.koji.subtasks)
    assert any("every rebuild exists" in n for n in report["notes"])


def test_failed_rebuild_is_claimed_again(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    world.check(k2["id"])
    gone_key = next(c["key"] for c in world.koji.claim_calls[0] if c["package"] == "kmod-gone")
    world.koji.failed.add(gone_key)  # its build task failed
    again = world.check(k2["id"])
    assert {p: r["status"] for p, r in by_package(again).items()} == {
        "kmod-crc": "duplicate", "kmod-gone": "submitted", "kmod-nvidia": "duplicate"}
    retry = world.koji.subtasks[-1]
    assert retry["arglist"][0] == source_for("kmod-gone")
    assert again["summary"]["rebuild_task_ids"] == [retry["id"]]


def test_dry_run_from_the_rules_or_the_task(pipeline_rpms: Rpms) -> None:
    for rules_dry, opt_dry in ((True, None), (False, True)):
        world = make_world(pipeline_rpms)
        k2 = world.add_kernel(pipeline_rpms.k2)
        report = world.check(k2["id"], rules(rebuild={"dry_run": rules_dry}),
                             CheckOptions(dry_run=opt_dry))
        assert report["dry_run"] is True
        assert {p: (r["status"], r["detail"]) for p, r in by_package(report).items()} == \
            dict.fromkeys(REBUILT, ("dry-run", "would be submitted"))
        assert report["summary"]["rebuilds_submitted"] == 0
        assert world.koji.claim_calls == [] and world.koji.subtasks == []
    world = make_world(pipeline_rpms)  # the task's option wins over the rules
    k2 = world.add_kernel(pipeline_rpms.k2)
    report = world.check(k2["id"], rules(rebuild={"dry_run": True}), CheckOptions(dry_run=False))
    assert report["dry_run"] is False and report["summary"]["rebuilds_submitted"] == 3


def test_caps_defer_the_rest_to_the_next_check(pipeline_rpms: Rpms) -> None:
    world = make_world(pipeline_rpms)
    k2 = world.add_kernel(pipeline_rpms.k2)
    report = world.check(k2["id"], rules(rebuild={"max_per_task": 1}))
    assert {p: (r["status"], r["detail"]) for p, r in by_package(report).items()} == {
        "kmod-crc": ("submitted", f"build task {world.koji.subtasks[0]['id']}"),
        "kmod-gone": ("deferred", "over max_per_task=1"),
        "kmod-nvidia": ("deferred", "over max_per_task=1")}
    assert [c["package"] for c in world.koji.claim_calls[0]] == ["kmod-crc"]

    world = make_world(pipeline_rpms)
    k2 = world.add_kernel(pipeline_rpms.k2)
    world.koji.claims["f" * 64] = 999  # a rebuild of another check is still running
    capped = rules(rebuild={"max_in_flight": 2})
    report = world.check(k2["id"], capped)
    assert {p: r["status"] for p, r in by_package(report).items()} == {
        "kmod-crc": "submitted", "kmod-gone": "deferred", "kmod-nvidia": "deferred"}
    assert by_package(report)["kmod-gone"]["detail"] == "over max_in_flight=2"
    world.koji.failed.add("f" * 64)  # that one is over: the next check takes one more
    report = world.check(k2["id"], capped)
    assert {p: r["status"] for p, r in by_package(report).items()} == {
        "kmod-crc": "duplicate", "kmod-gone": "submitted", "kmod-nvidia": "deferred"}


def test_holds_back_while_koji_is_loaded(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    loaded = rules(rebuild={"hold_back_free_tasks": 2, "hold_back_seconds": 60})
    world.koji.free = 3
    clock = Clock()
    report = world.check(k2["id"], loaded, clock=clock)
    assert clock.sleeps == [30, 30]  # then it gives up for this check
    assert {r["status"] for r in report["rebuilds"]} == {"deferred"}
    assert {r["detail"] for r in report["rebuilds"]} == {"Koji is loaded (free tasks over 2)"}
    assert world.koji.claim_calls == [] and world.koji.subtasks == []

    clock = Clock(on_sleep=lambda n: setattr(world.koji, "free", 2))  # the queue drains
    report = world.check(k2["id"], loaded, clock=clock)
    assert clock.sleeps == [30] and report["summary"]["rebuilds_submitted"] == 3


def test_rules_choose_target_and_mode_or_skip(pipeline_rpms: Rpms) -> None:
    world = make_world(pipeline_rpms)
    k2 = world.add_kernel(pipeline_rpms.k2)
    world.check(k2["id"], rules(packages={"kmod-gone": {"mode": "draft"},
                                          "kmod-crc": {"target": "kmods9-special"}}))
    tasks = {t["arglist"][0]: t["arglist"] for t in world.koji.subtasks}
    _src, target, opts = tasks[source_for("kmod-crc")]
    assert target == "kmods9-special" and opts["scratch"] is True
    _src, target, opts = tasks[source_for("kmod-gone")]
    assert target == "kmods9-el9" and opts["draft"] is True and "scratch" not in opts

    world = make_world(pipeline_rpms)
    k2 = world.add_kernel(pipeline_rpms.k2)
    report = world.check(k2["id"], rules(watch=[{"kernel_tag": "el9-kernel",
                                                 "kmod_tags": ["kmods9-testing"]}]))
    assert {s["package"]: s["reason"] for s in report["skipped"]} == {
        "kmod-optout": "opted out in the rules",
        **dict.fromkeys(["kmod-crc", "kmod-gone", "kmod-nosrc", "kmod-nvidia"],
                        "no rebuild target in the rules")}
    assert report["rebuilds"] == [] and world.koji.subtasks == []


def test_an_unreadable_build_task_loses_only_that_source(world: World) -> None:
    world.koji.task_faults.add(world.builds["kmod-gone"]["task_id"])
    k2 = world.add_kernel(world.rpms.k2)
    report = world.check(k2["id"])
    # its source is lost: it is rebuilt from its SRPM (scratch), the others from SCM
    assert {t["arglist"][0] for t in world.koji.subtasks} == {
        source_for("kmod-crc"), source_for("kmod-nvidia"),
        f"tasks/{world.task_id}/{GONE}.src.rpm"}
    assert by_package(report)["kmod-gone"]["strategy"] == "srpm"


def test_a_build_without_scm_source_is_rebuilt_from_its_srpm(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    report = world.check(k2["id"], rules(packages={"kmod-nosrc": {"mode": "draft"}}))
    staged = f"tasks/{world.task_id}/kmod-nosrc-1.0-1.el9.src.rpm"
    (task,) = [t for t in world.koji.subtasks if t["arglist"][0] == staged]
    assert world.staged == [world.builds["kmod-nosrc"]["id"]]
    assert task["arglist"][1] == "kmods9-el9" and task["arglist"][2]["draft"] is True
    assert task["arglist"][2]["custom_user_metadata"]["kabi"]["strategy"] == "srpm"
    row = by_package(report)["kmod-nosrc"]
    assert (row["status"], row["strategy"], row["source"]) == ("submitted", "srpm", staged)
    sent = {r["package"]: r for r in world.koji.claim_calls[-1]}
    assert sent["kmod-nosrc"]["strategy"] == "srpm" and sent["kmod-nosrc"]["macro"] is None


def test_an_srpm_that_cannot_be_staged_costs_only_its_rebuild(world: World) -> None:
    def broken(build_id: int) -> str:
        raise KabiError("kmod-nosrc-1.0-1.el9", "the build has no SRPM to rebuild from")
    k2 = world.add_kernel(world.rpms.k2)
    report = world.check(k2["id"], rules(packages={"kmod-nosrc": {"mode": "scratch"}}),
                         stage_srpm=broken)
    statuses = {p: (r["status"], r["detail"]) for p, r in by_package(report).items()}
    assert statuses.pop("kmod-nosrc") == ("not submitted", "its SRPM could not be staged: "
                                          "kmod-nosrc-1.0-1.el9: the build has no SRPM to "
                                          "rebuild from")
    assert {s for s, _d in statuses.values()} == {"submitted"}


def test_the_macro_strategy_asks_for_a_side_tag_with_the_kernel_version(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    report = world.check(k2["id"], rules(rebuild={"strategy": "macro", "mode": "draft"},
                                         packages={"kmod-crc": {"macro": "kernel_version"},
                                                   "kmod-gone": {"strategy": "buildroot"}}))
    sent = {r["package"]: r for r in world.koji.claim_calls[-1]}
    vr = f"{k2['version']}-{k2['release']}"
    assert (sent["kmod-crc"]["strategy"], sent["kmod-crc"]["macro"]) == (
        "macro", {"kernel_version": vr})
    assert (sent["kmod-gone"]["strategy"], sent["kmod-gone"]["macro"]) == ("buildroot", None)
    rows = by_package(report)
    assert rows["kmod-crc"]["macro"] == f"kernel_version={vr}"
    # a real build cannot come out of a side tag (it is untagged when the tag goes)
    assert "kmod-nvidia" not in sent
    assert {s["package"]: s["reason"] for s in report["skipped"]}["kmod-nvidia"] == \
        "a macro rebuild is scratch or draft only (mode is build)"


def test_a_rebuild_that_failed_before_is_reported_not_resubmitted(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2)
    world.check(k2["id"])
    key = next(iter(world.koji.claims))
    world.koji.failed_before.add(key)
    again = world.check(k2["id"])
    row = next(r for r in again["rebuilds"] if r["status"] == "failed before")
    assert row["task_id"] == world.koji.rebuild_of[key]
    assert row["detail"] == (f"build task {row['task_id']} failed for this kmod build and "
                             "kernel; not resubmitted until either changes")


# --------------------------------------------------------------------------- inputs

def test_koji_import_rpm_by_rpm_is_checked_once_on_the_whole_set(world: World) -> None:
    srpm = [p for p in world.rpms.k2 if p.name.endswith(".src.rpm")]
    rest = [p for p in world.rpms.k2 if not p.name.endswith(".src.rpm")]
    k2 = world.koji.add_build(srpm, tag="el9-kernel")  # COMPLETE with its first file
    pending = list(rest)

    def arrive(_n: int) -> None:  # the other RPMs arrive while the task waits
        if pending:
            world.koji.add_rpms(k2["id"], [pending.pop()])

    clock = Clock(arrive)
    report = world.check(k2["id"], opts=CheckOptions(settle_seconds=30, poll=10), clock=clock)
    assert not pending
    assert len(clock.sleeps) == len(rest) + 3  # then 30 s without a change
    assert [a["arch"] for a in report["arches"]] == sorted(ARCHES)
    assert all(a["stablelist"] for a in report["arches"])  # its noarch RPM was waited for
    assert report["summary"]["incompatible"] == 5

    # RPMs that keep arriving: after settle_timeout, what is there is checked
    late = world.koji.add_build([p for p in world.rpms.k3 if p.name.endswith(".src.rpm")])
    pending = [p for p in world.rpms.k3 if not p.name.endswith(".src.rpm")]
    clock = Clock(lambda _n: world.koji.add_rpms(late["id"], [pending.pop()]))
    ctx = Context(world.koji, world.koji, rules(), 1, sleep=clock.sleep, clock=clock)
    got = settle(ctx, late, CheckOptions(settle_seconds=30, poll=10, settle_timeout=25))
    assert len(got) == 4 and len(clock.sleeps) == 3
    assert ctx.notes == [f"RPM set of {K3} still changing after 25s; checking what is there"]


def test_fan_out_per_arch_gives_the_same_answer(pipeline_rpms: Rpms) -> None:
    jobs_seen: list[dict] = []

    def checked(fan_out: bool, min_kmods: int = 6) -> tuple[dict, list]:
        world = make_world(pipeline_rpms)
        k2 = world.add_kernel(pipeline_rpms.k2)

        def fanout(jobs: list[dict]) -> list[dict]:  # as subtasks: JSON in, JSON out
            jobs_seen.extend(jobs)
            return [json.loads(json.dumps(check_arch_job(world.koji, json.loads(
                json.dumps(job)), world.koji.fetch))) for job in jobs]

        report = world.check(k2["id"], opts=CheckOptions(fanout_min_kmods=min_kmods),
                             fanout=fanout if fan_out else None)
        kmod_ids = sorted(world.builds[p]["id"] for p in pipeline_rpms.kmods)
        for job in jobs_seen:
            assert sorted(job["kmod_build_ids"]) == kmod_ids
            assert (job["build_id"], job["previous_id"]) == (k2["id"], world.builds[K1]["id"])
        return {k: v for k, v in report.items() if k != "seconds"}, world.koji.subtasks

    in_process = checked(False)
    assert checked(True, min_kmods=7) == in_process and jobs_seen == []  # 6 kmods: too few
    fanned = checked(True)
    assert sorted(j["arch"] for j in jobs_seen) == sorted(ARCHES)
    assert fanned == in_process
    assert fanned[0]["summary"]["incompatible"] == 5


def test_previous_kernel_is_the_latest_as_of_the_build_creation(world: World) -> None:
    k2 = world.add_kernel(world.rpms.k2, tag=None)  # created, tagged only later
    k3 = world.add_kernel(world.rpms.k3)
    world.koji.tag("el9-kernel", k2["id"])
    report = world.check(k2["id"])
    assert report["previous"] == K1  # not itself, though it is now the latest
    assert {c["symbol"] for c in arch(report)["delta"]["deltas"][0]["changed"]} == \
        set(world.rpms.changed)
    assert world.check(k3["id"])["previous"] == K1  # kernel 2 was not tagged yet
    against = world.check(k3["id"], opts=CheckOptions(against=K2))
    assert against["previous"] == K2
    assert against["summary"]["delta"]["x86_64"] == {"added": 0, "removed": 0, "changed": 1}


def test_choose_watch_waits_for_the_kernel_to_be_tagged(world: World) -> None:
    two = rules(watch=[{"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9-testing"],
                        "target": "kmods9-el9"},
                       {"kernel_tag": "el9s-kernel", "kmod_tags": ["kmods9s"],
                        "target": "kmods9s-el9"}])
    world.koji.tag("kmods9s", world.builds["kmod-crc"]["id"])
    k2 = world.add_kernel(world.rpms.k2, tag=None)

    def tagged_late(n: int) -> None:  # tagged after the task started
        if n == 2:
            world.koji.tag("el9s-kernel", k2["id"])

    clock = Clock(tagged_late)
    report = world.check(k2["id"], two, CheckOptions(tag_wait=60, poll=10), clock)
    assert clock.sleeps == [10, 10]
    assert (report["kernel_tag"], report["kmod_tags"], report["previous"]) == \
        ("el9s-kernel", ["kmods9s"], None)
    assert report["summary"]["kmod_builds"] == 1 and report["summary"]["incompatible"] == 1
    assert [t["arglist"][:2] for t in world.koji.subtasks] == [
        [source_for("kmod-crc"), "kmods9s-el9"]]
    named = world.check(k2["id"], two, CheckOptions(tag="el9-kernel"))
    assert named["kernel_tag"] == "el9-kernel" and named["previous"] == K1

    k3 = world.add_kernel(world.rpms.k3, tag=None)
    clock = Clock()
    with pytest.raises(KabiError, match=r"kernel-5\.14\.0-3\.el9: not tagged into any watched "
                                        r"kernel tag \(el9-kernel, el9s-kernel\)"):
        world.check(k3["id"], two, CheckOptions(tag_wait=30, poll=10), clock)
    assert clock.sleeps == [10, 10, 10]
    with pytest.raises(KabiError, match="el9-other: not a watched kernel tag in the rules"):
        world.check(k3["id"], two, CheckOptions(tag="el9-other"))


def test_non_kernel_builds_are_a_clear_error(world: World) -> None:
    plain = world.koji.add_build(world.rpms.plain, task_request=["git+https://x#1", "f", {}])
    with pytest.raises(KabiError, match=r"bash-completion-extra-[^:]*: bash-completion-extra "
                                        r"is not a watched kernel package"):
        world.check(plain["id"])
    srpm_only = world.koji.add_build([p for p in world.rpms.k2 if p.name.endswith(".src.rpm")],
                                     task_request=["git+https://k#2", "el9", {}])
    with pytest.raises(KabiError, match=f"{K2}: not a kernel build: no kernel-core/modules"):
        world.check(srpm_only["id"])
    with pytest.raises(KabiError, match="kernel-9-9: no such build"):
        world.check("kernel-9-9")
    assert world.koji.subtasks == []


def test_watch_of_a_kernel_is_the_one_whose_tag_holds_it(world: World) -> None:
    """Hub calls and the CLI pick, among a package's watch entries, the one whose kernel
    tag holds the build (none when none does, the named tag's when given)."""
    two = rules(watch=[{"kernel_tag": "el9s-kernel", "kmod_tags": ["kmods9s"]},
                       {"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9-testing"]}])
    k1 = world.builds[K1]
    assert watch_of(world.koji, two, k1).kernel_tag == "el9-kernel"  # tagged there
    k2 = world.add_kernel(world.rpms.k2, tag=None)
    assert watch_of(world.koji, two, k2) is None  # tagged nowhere: which one is not known
    assert watch_of(world.koji, rules(), k2).kernel_tag == "el9-kernel"  # the only one
    assert watch_of(world.koji, two, k1, "el9s-kernel").kernel_tag == "el9s-kernel"
    assert watch_of(world.koji, two, k1, "el9-other") is None
    assert watch_of(world.koji, rules(kernel_packages=["kernel-rt"], watch=[]), k1) is None


def test_the_html_report_shows_every_kmod_and_each_broken_symbol(world: World) -> None:
    from koji_kabi.report.html import kabicheck_html

    k2 = world.add_kernel(world.rpms.k2)
    report = world.check(k2["id"])
    page = kabicheck_html(report)
    verdicts = [v for a in report["arches"] for v in a["verdicts"]]
    assert page.count('<tr class="kmod">') == len(verdicts) >= 6
    assert page.count('<tr class="rebuild">') == len(report["rebuilds"]) + len(
        report["skipped"])
    assert 'data-chart="delta"' in page and 'data-chart="verdicts"' in page
    for v in verdicts:
        for m in v["mismatched"]:
            assert (f'<tr class="problem"><td>{m["symbol"]}</td><td>{m["required"]}</td>'
                    f'<td>{m["provided"]}</td>') in page
        for m in v["missing"]:
            assert (f'<tr class="problem"><td>{m["symbol"]}</td><td>{m["required"]}</td>'
                    '<td>missing</td>') in page
