"""koji-kabi against a real Koji hub: the hook, the kabiCheck task, rebuilds, CLI, gating.

Skipped unless ``KOJI_KABI_IT_PROFILE`` is set (see ``conftest.py`` for every variable).
One scenario per run (``scenario`` fixture): an old kernel in the kernel tag, a
compatible and a broken kmod (content-generator imports with an SCM source) in a kmod
tag, then a new kernel arriving through ``koji import``, RPM by RPM.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import (
    Hub,
    Scenario,
    kabi_check_task,
    note_timing,
    report_json,
)

pytestmark = pytest.mark.integration

CLOSED = 2


def _rows(report: dict, nvr: str) -> list[dict]:
    return [v for a in report["arches"] for v in a["verdicts"] if v["nvr"] == nvr]


def _out(res) -> str:
    return f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


# --------------------------------------------------------------------------- the hook


def test_koji_import_of_a_kernel_makes_exactly_one_kabicheck(hub: Hub, scenario: Scenario):
    hub.require_plugin()
    assert len(scenario.hook_tasks) == 1, (
        f"{scenario.new_nvr} was imported RPM by RPM: want one kabiCheck task, got "
        f"{[t['id'] for t in scenario.hook_tasks]}")
    task = scenario.hook_tasks[0]
    assert task["request"] == [scenario.new_id, {}]
    info = kabi_check_task(hub, scenario)
    assert info["state"] == CLOSED, hub.session.getTaskResult(task["id"], raise_fault=False)
    # still one after the check (a later RPM import must not have queued another)
    assert [t["id"] for t in hub.tasks_for(scenario.new_id, scenario.imported_at)
            if t["request"][1] == {}] == [task["id"]]


def test_kabicheck_result_and_report(hub: Hub, scenario: Scenario):
    info = kabi_check_task(hub, scenario)
    task_id = info["id"]
    result = hub.session.getTaskResult(task_id)
    assert result["kernel"] == scenario.new_nvr
    assert result["previous"] == scenario.old_nvr  # the kernel tag as the build was created
    arch = hub.settings.arch
    assert result["delta"][arch] == {"added": len(scenario.added),
                                     "removed": len(scenario.removed),
                                     "changed": len(scenario.changed)}
    assert set(hub.session.listTaskOutput(task_id)) >= {"kabi-report.json", "kabi-report.txt"}

    report = report_json(hub, task_id)
    # settled: every kernel RPM was imported before the symbols were read
    symbols = {k: n for a in report["arches"] for k, n in a["symbols"].items()}
    assert symbols[arch] == 300 + len(scenario.added) - len(scenario.removed)
    delta = next(d for a in report["arches"] for d in a["delta"] if d["key"] == arch)
    assert {c["symbol"] for c in delta["changed"]} == set(scenario.changed)
    assert set(delta["added"]) == set(scenario.added)
    assert {r["symbol"] for r in delta["removed"]} == set(scenario.removed)

    ok, bad = _rows(report, scenario.ok_nvr), _rows(report, scenario.bad_nvr)
    assert ok and all(r["compatible"] for r in ok)
    assert bad and not any(r["compatible"] for r in bad)
    assert set(bad[0]["missing"]) == set(scenario.bad_missing)
    assert {m["symbol"]: (int(m["required"], 16), int(m["provided"], 16))
            for m in bad[0]["mismatched"]} == scenario.bad_mismatched

    text = hub.report(task_id, "kabi-report.txt")
    assert scenario.new_nvr in text and scenario.old_nvr in text
    assert f"{scenario.bad_nvr}.{arch}" in text
    assert f"{scenario.ok_nvr}.{arch}" not in text  # only the broken ones are listed


def test_rebuild_subtasks_for_exactly_the_incompatible_kmods(hub: Hub, scenario: Scenario):
    info = kabi_check_task(hub, scenario)
    task_id = info["id"]
    report = report_json(hub, task_id)
    mine = {r["nvr"]: r for r in report["rebuilds"]} | {
        s["nvr"]: dict(s, status="skipped") for s in report["skipped"]}
    assert scenario.ok_nvr not in mine
    assert mine[scenario.bad_nvr]["status"] == "submitted", mine[scenario.bad_nvr]

    children = [c for c in hub.session.getTaskChildren(task_id, request=True)
                if c["method"] == "build"]
    sources = [c["request"][0] for c in children]
    assert scenario.ok_source not in sources
    assert sources.count(scenario.bad_source) == 1, sources
    child = next(c for c in children if c["request"][0] == scenario.bad_source)
    _src, target, opts = child["request"]
    assert target == hub.settings.target
    assert opts["wait_builds"] == [scenario.new_nvr]
    assert bool(opts.get("scratch")) == (hub.settings.mode == "scratch")
    assert bool(opts.get("draft")) == (hub.settings.mode == "draft")
    assert opts["custom_user_metadata"]["kabi"]["rebuild_of"] == scenario.bad_nvr
    assert child["id"] == mine[scenario.bad_nvr]["task_id"]


# --------------------------------------------------------------------------- the CLI


def test_cli_kabi_check_kmod_exit_codes(hub: Hub, scenario: Scenario):
    tag = hub.settings.kernel_tag
    ok = hub.koji("kabi-check", scenario.ok_nvr, "--tag", tag)
    assert ok.returncode == 0, _out(ok)
    assert "compatible" in ok.stdout and scenario.new_nvr in ok.stdout

    bad = hub.koji("kabi-check", scenario.bad_nvr, "--tag", tag)
    assert bad.returncode == 1, _out(bad)
    assert "INCOMPATIBLE" in bad.stdout
    for symbol, (required, provided) in scenario.bad_mismatched.items():
        line = next(ln for ln in bad.stdout.splitlines() if ln.split()[:1] == [symbol])
        assert f"0x{required:08x}" in line and f"0x{provided:08x}" in line
    for symbol in scenario.bad_missing:
        assert symbol in bad.stdout

    old = hub.koji("kabi-check", scenario.bad_nvr, "--kernel", scenario.old_nvr)
    assert old.returncode == 0, _out(old)


def test_cli_kabi_check_kernel(hub: Hub, scenario: Scenario):
    rules = hub.tmp / "rules.yaml"
    rules.write_text(json.dumps({
        "kernel_packages": [hub.settings.kernel_package],
        "watch": [{"kernel_tag": hub.settings.kernel_tag,
                   "kmod_tags": [hub.settings.kmod_tag], "target": hub.settings.target}]}))
    res = hub.koji("kabi-check", scenario.new_nvr, "--rules", str(rules), "--json")
    assert res.returncode == 1, _out(res)
    data = json.loads(res.stdout)
    assert data["previous"] == scenario.old_nvr
    arch = hub.settings.arch
    verdicts = {v["kmod"]: v for v in data["verdicts"]}
    assert verdicts[f"{scenario.ok_nvr}.{arch}"]["compatible"] is True
    assert verdicts[f"{scenario.bad_nvr}.{arch}"]["compatible"] is False
    text = hub.koji("kabi-check", scenario.new_nvr, "--rules", str(rules))
    assert text.returncode == 1, _out(text)
    assert f"{scenario.bad_nvr}.{arch}" in text.stdout
    assert f"{scenario.ok_nvr}.{arch}" not in text.stdout  # only broken kmods are listed


def test_cli_kabi_delta(hub: Hub, scenario: Scenario):
    res = hub.koji("kabi-delta", scenario.old_nvr, scenario.new_nvr, "--json")
    assert res.returncode == 1, _out(res)  # CRCs changed: breaking
    data = json.loads(res.stdout)
    assert (data["old"], data["new"], data["breaking"]) == (scenario.old_nvr, scenario.new_nvr,
                                                            True)
    d = next(d for d in data["deltas"] if d["key"] == hub.settings.arch)
    assert {c["symbol"] for c in d["changed"]} == set(scenario.changed)
    assert {c["symbol"] for c in d["added"]} == set(scenario.added)
    assert {c["symbol"] for c in d["removed"]} == set(scenario.removed)
    summary = hub.koji("kabi-delta", "--summary", scenario.old_nvr, scenario.new_nvr)
    assert summary.returncode == 1, _out(summary)
    row = next(ln.split() for ln in summary.stdout.splitlines()
               if ln.split()[:1] == [hub.settings.arch])
    assert row[3:6] == [str(len(scenario.added)), str(len(scenario.removed)),
                        str(len(scenario.changed))]
    same = hub.koji("kabi-delta", scenario.old_nvr, scenario.old_nvr)
    assert same.returncode == 0, _out(same)


def test_hub_calls(hub: Hub, scenario: Scenario):
    hub.require_plugin()
    ok = hub.session.kabi.check(scenario.ok_nvr, kernel=scenario.new_nvr)
    bad = hub.session.kabi.check(scenario.bad_nvr, tag=hub.settings.kmod_tag)
    assert ok["compatible"] is True
    assert bad["compatible"] is False and bad["kernel"] == scenario.new_nvr
    d = hub.session.kabi.delta(scenario.old_nvr, scenario.new_nvr)
    row = next(r for r in d["delta"] if r["key"] == hub.settings.arch)
    assert {c["symbol"] for c in row["changed"]} == set(scenario.changed)


def test_cli_kabi_rebuild_dry_run(hub: Hub, scenario: Scenario):
    hub.require_plugin()
    kabi_check_task(hub, scenario)  # the hook's check first: its rebuild is claimed
    started = time.monotonic()
    res = hub.koji("kabi-rebuild", "--dry-run", "--wait", scenario.new_nvr,
                   timeout=hub.settings.timeout + 60)
    assert res.returncode == 0, _out(res)
    task_id = int(res.stdout.split("Created task:")[1].split()[0])
    note_timing(f"koji kabi-rebuild --dry-run --wait (task {task_id}): "
                f"{time.monotonic() - started:.1f}s")
    assert "dry run: yes" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.split()[:1] == ["kmod-kabiit-broken"])
    assert "dry-run" in line
    assert hub.session.getTaskInfo(task_id)["state"] == CLOSED
    assert hub.session.getTaskChildren(task_id) == []  # dry run: nothing submitted


def test_cli_kabi_rebuild_without_hub_plugin(hub: Hub, scenario: Scenario):
    if hub.has_plugin:
        pytest.skip("the hub has the koji-kabi hub plugin (this checks a hub without it)")
    res = hub.koji("kabi-rebuild", "--dry-run", "--wait", scenario.new_nvr)
    assert res.returncode == 2, _out(res)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no koji-kabi hub plugin" in lines[0], _out(res)


# --------------------------------------------------------------------------- gating


def test_tag_policy_gates_kmods_on_kabi(hub: Hub, scenario: Scenario):
    hub.require_plugin()
    gated = hub.settings.gated_tag
    if not gated:
        pytest.skip("KOJI_KABI_IT_GATED_TAG not set (a tag whose tag policy uses "
                    "kabi_compatible)")
    refused = hub.koji("tag-build", "--wait", gated, scenario.bad_nvr)
    assert refused.returncode != 0, _out(refused)
    assert "policy violation (tag)" in refused.stderr, _out(refused)
    allowed = hub.koji("tag-build", "--wait", gated, scenario.ok_nvr)
    assert allowed.returncode == 0, _out(allowed)
    scenario.tagged.append((gated, scenario.ok_nvr))
    tagged = {b["nvr"] for b in hub.session.listTagged(gated)}
    assert scenario.ok_nvr in tagged and scenario.bad_nvr not in tagged
