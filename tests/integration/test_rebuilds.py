"""Rebuilds on the real hub: exactly the broken kmods, once each, with the right request.

The real kojid runs every kabiCheck; its ``build`` subtasks are created by the real hub
(``host.subtask``) and held FREE in a channel without hosts by the test hub's channel
policy, which also tells us the channel koji-kabi asked for (``default``).
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import MainWorld
from tests.integration.kit import CANCELED, CLOSED, note
from tests.integration.realkoji import HOLD_CHANNEL
from tests.integration.worlds import X86, source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]

REBUILT = ("kmod-crc", "kmod-gone", "kmod-nvidia")


def _by_source(w: MainWorld, task_id: int) -> dict[str, dict]:
    return {c["request"][0]: c for c in w.kit.rebuilds(task_id)}


def test_a_new_kernel_rebuilds_exactly_the_broken_kmods(main_world: MainWorld) -> None:
    w = main_world
    task = w.landing("K2")
    assert task["state"] == CLOSED, w.kit.admin.getTaskResult(task["id"], raise_fault=False)
    result = w.kit.admin.getTaskResult(task["id"])
    s = w.series
    assert (result["kernel"], result["previous"]) == (s.kernel_nvr["K2"], s.kernel_nvr["K1"])
    assert (result["kmod_builds"], result["compatible"], result["incompatible"]) == (6, 1, 5)
    assert result["rebuilds_submitted"] == 3
    children = _by_source(w, task["id"])
    assert set(children) == {w.sources[k] for k in REBUILT}
    assert sorted(result["rebuild_task_ids"]) == sorted(c["id"] for c in children.values())
    for kmod in REBUILT:
        child = children[w.sources[kmod]]
        _src, target, opts = child["request"]
        assert target == w.names["target"]
        assert opts["wait_builds"] == [s.kernel_nvr["K2"]]
        assert opts["custom_user_metadata"]["kabi"]["rebuild_of"] == s.kmod_nvr[kmod]
        assert opts["custom_user_metadata"]["kabi"]["kernel"] == s.kernel_nvr["K2"]
        if kmod == "kmod-nvidia":  # rules: mode build
            assert "scratch" not in opts and "draft" not in opts
        else:
            assert opts["scratch"] is True and "draft" not in opts
        assert child["priority"] == 33  # the rules' priority, not the parent's - 1
        # asked for "default": the test hub's channel policy sends exactly those here
        assert w.kit.admin.getChannel(child["channel_id"])["name"] == HOLD_CHANNEL
        assert child["state"] == 0 and child["parent"] == task["id"]
        assert child["owner"] == task["owner"]


def test_the_report_says_why_and_what(main_world: MainWorld) -> None:
    w = main_world
    task = w.landing("K2")
    assert {"kabi-report.json", "kabi-report.txt", "kabi-report.html"} <= set(
        w.kit.admin.listTaskOutput(task["id"]))
    report = w.kit.report(task["id"])
    s = w.series
    assert {k["package"]: k["reason"] for k in report["skipped"]} == {
        "kmod-optout": "opted out in the rules",
        "kmod-nosrc": "the build has no recorded SCM source; a rebuild from the SRPM is "
                      "scratch or draft only (mode is build)"}
    x86 = next(a for a in report["arches"] if a["arch"] == X86)
    bad = {v["rpm"]: v for v in x86["verdicts"] if not v["compatible"]}
    crc = bad[f"{s.kmod_nvr['kmod-crc']}.{X86}"]
    # K2's own kernel-abi-stablelists RPM says which broken symbols are stable
    first, second = s.changed[X86][:2]
    assert {m["symbol"]: (int(m["required"], 16), int(m["provided"], 16), m["stable"])
            for m in crc["mismatched"]} == {
        first: (s.tables["K1"][X86][first], s.tables["K2"][X86][first], True),
        second: (s.tables["K1"][X86][second], s.tables["K2"][X86][second], False)}
    assert [m["symbol"] for m in bad[f"{s.kmod_nvr['kmod-gone']}.{X86}"]["missing"]] == \
        s.removed[X86][:1]
    (delta,) = x86["delta"]["deltas"]
    assert {c["symbol"] for c in delta["changed"]} == set(s.changed[X86])
    assert {c["symbol"] for c in delta["removed"]} == set(s.removed[X86])
    assert {c["symbol"] for c in delta["added"]} == set(s.added[X86])
    assert {r["package"]: r["status"] for r in report["rebuilds"]} == dict.fromkeys(
        REBUILT, "submitted")
    text = w.kit.admin.downloadTaskOutput(task["id"], "kabi-report.txt").decode()
    assert f"kABI check of {s.kernel_nvr['K2']}" in text and s.kernel_nvr["K1"] in text
    assert f"{s.kmod_nvr['kmod-crc']}.{X86}" in text
    assert f"{s.kmod_nvr['kmod-ok']}.{X86}" not in text  # only the broken are listed
    # the same report as one HTML page, one click away in kojiweb's task page
    page = w.kit.admin.downloadTaskOutput(task["id"], "kabi-report.html").decode()
    rows = sum(len(a["verdicts"]) for a in report["arches"])
    assert page.count('<tr class="kmod">') == rows and rows >= 6
    assert page.count('class="chart" data-chart="delta"') == 1
    m = next(m for m in crc["mismatched"] if m["symbol"] == first)
    # each broken kmod's symbols: required vs provided CRC and the stablelist flag
    assert (f'<tr class="problem"><td>{first}</td><td>{m["required"]}</td>'
            f'<td>{m["provided"]}</td><td>yes</td></tr>') in page


def test_a_rerun_submits_nothing_new(main_world: MainWorld) -> None:
    w = main_world
    info = w.kit.run_check(w.builds["K2"]["id"])
    assert w.kit.rebuilds(info["id"]) == []
    report = w.kit.report(info["id"])
    assert {r["package"]: r["status"] for r in report["rebuilds"]} == dict.fromkeys(
        REBUILT, "duplicate")
    first = w.landing("K2")["id"]
    assert all(f"task {first}" in r["detail"] for r in report["rebuilds"])


def test_a_kernel_with_the_same_kabi_rebuilds_nothing(main_world: MainWorld) -> None:
    w = main_world
    s = w.series
    w.builds["K3"] = w.kit.cg_build(s.kernels["K3"], source_for("kernel", s.stamp))
    w.kit.tag_build(w.names["kernel"], w.builds["K3"]["id"])
    task = w.landing("K3")
    result = w.kit.admin.getTaskResult(task["id"])
    assert result["previous"] == s.kernel_nvr["K2"]
    assert result["incompatible"] == 5 and result["rebuilds_submitted"] == 0
    assert w.kit.rebuilds(task["id"]) == []
    assert {r["status"] for r in w.kit.report(task["id"])["rebuilds"]} == {"duplicate"}


def test_a_cancelled_rebuild_is_claimed_again_a_failed_one_is_not(main_world: MainWorld
                                                                   ) -> None:
    """A failed rebuild needs porting: the same build for the same kernel would fail
    again (a new commit or kernel retries it, test_strategies.py)."""
    w = main_world
    first = _by_source(w, w.landing("K2")["id"])
    crc, gone = first[w.sources["kmod-crc"]], first[w.sources["kmod-gone"]]
    w.kit.admin.cancelTask(crc["id"])
    assert w.kit.admin.getTaskInfo(crc["id"])["state"] == CANCELED
    failed = w.kit.fail_rebuild(gone["id"])  # the real build task, denied by build_rpm
    fault = w.kit.admin.getTaskResult(failed["id"], raise_fault=False)["faultString"]
    note(f"rebuild task {gone['id']} failed on builder1 as a real build task: "
         f"{fault.strip().splitlines()[-1][:100]}")
    info = w.kit.run_check(w.builds["K2"]["id"])
    again = _by_source(w, info["id"])
    assert set(again) == {w.sources["kmod-crc"]}
    rows = {r["package"]: r for r in w.kit.report(info["id"])["rebuilds"]}
    assert {p: r["status"] for p, r in rows.items()} == {
        "kmod-crc": "submitted", "kmod-gone": "failed before", "kmod-nvidia": "duplicate"}
    assert rows["kmod-gone"]["task_id"] == gone["id"]


def test_dry_run_submits_nothing(main_world: MainWorld) -> None:
    w = main_world
    w.kit.cancel_open_rebuilds()  # every rebuild could be claimed now ...
    res = w.kit.rk.koji("kabi-rebuild", "--dry-run", "--wait", w.series.kernel_nvr["K2"],
                        user="alice")
    assert res.returncode == 1, res  # the check ran and found incompatible kmods
    task_id = int(res.stdout.split("Created task:")[1].split()[0])
    assert "dry run: yes" in res.stdout
    assert w.kit.rebuilds(task_id) == []  # ... but a dry run submits none of them
    statuses = {r["package"]: r["status"] for r in w.kit.report(task_id)["rebuilds"]}
    assert statuses == dict.fromkeys(REBUILT, "dry-run")
