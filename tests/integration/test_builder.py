"""The builder plugin on the real kojid: where RPM headers come from, per-arch fan-out,
and a broken configuration.

kojid reads the plugin's settings in each task's own process, so each test gives the
checks it starts other settings (a fresh cache, ``deps_source``, ``fanout_min_kmods``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from koji_kabi.readers.remote import FIRST_RANGE
from koji_kabi.readers.rpmheader import read_rpm_file
from tests.integration.conftest import MainWorld, builder_settings
from tests.integration.kit import CLOSED, FAILED, note
from tests.integration.worlds import ARM, X86

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]
#: what may differ between two checks of the same kernel
VOLATILE = ("seconds", "notes")


def _same(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in VOLATILE}


def _dry_check(w: MainWorld, **settings) -> tuple[dict, dict]:
    with builder_settings(w.kit.rk, **settings):
        info = w.kit.run_check(w.builds["K2"]["id"], dry_run=True)
    return info, w.kit.report(info["id"])


def test_headers_come_from_topurl_with_ranged_gets(main_world: MainWorld,
                                                   tmp_path: Path) -> None:
    w = main_world
    mark = w.kit.rk.log_mark("httpd-access.log")
    _info, report = _dry_check(w, cache_dir=tmp_path / "cold", deps_source="topurl")
    assert report["summary"]["incompatible"] == 5
    gets = re.findall(r'"GET /kojifiles/(\S+) HTTP/1.1" (\d+) (\d+)',
                      w.kit.rk.log_since(mark, "httpd-access.log"))
    sent: dict[str, int] = {}
    for path, status, size in gets:
        if path.endswith(".rpm") and "/kernel-abi-stablelists-" not in path:
            assert status == "206", (path, status)
            sent[path] = sent.get(path, 0) + int(size)
    k2 = {p.name: p for p in w.series.kernels["K2"]}
    cores = [p for p in sent if Path(p).name.startswith("kernel-core-")
             and Path(p).name in k2]
    assert len(cores) == 2  # both arches
    for path in cores:
        header = read_rpm_file(str(k2[Path(path).name])).header_bytes
        assert header <= sent[path] <= header + FIRST_RANGE, (path, header, sent[path])
    kmod_rpms = [p for p in sent if "/kmod-" in p]
    assert len(kmod_rpms) == 8  # every kmod RPM of both arches, read once
    note(f"kabiCheck of K2 (deps from topurl, empty cache): {len(sent)} RPM headers by "
         f"ranged GETs, {sum(sent.values()) / 1024:.0f} KiB in all")


def test_deps_from_the_hub_give_the_same_report(main_world: MainWorld,
                                                tmp_path: Path) -> None:
    w = main_world
    _info, topurl = _dry_check(w, cache_dir=tmp_path / "a", deps_source="topurl")
    mark = w.kit.rk.log_mark()
    _info, hub = _dry_check(w, cache_dir=tmp_path / "b", deps_source="hub")
    assert ("getRPMDeps", "builder1") in w.kit.rk.requests_since(mark)
    assert _same(hub) == _same(topurl)
    # and what the builder read equals the hub's own view of the same kernel
    answer = w.kit.anon.kabi.check(w.builds["K2"]["nvr"])
    by_rpm = {(v["rpm"], v["key"]): v["compatible"] for v in answer["verdicts"]}
    assert {(v["rpm"], v["key"]): v["compatible"]
            for a in hub["arches"] for v in a["verdicts"]} == by_rpm


def test_a_warm_cache_reads_no_kmod_rpm(main_world: MainWorld, tmp_path: Path) -> None:
    w = main_world
    _dry_check(w, cache_dir=tmp_path / "warm")
    mark = w.kit.rk.log_mark("httpd-access.log")
    info, _report = _dry_check(w, cache_dir=tmp_path / "warm")
    gets = re.findall(r'"GET /kojifiles/(\S+\.rpm) ', w.kit.rk.log_since(mark,
                                                                          "httpd-access.log"))
    assert not [g for g in gets if "/kmod-" in g], gets
    note(f"kabiCheck of K2 with a warm cache: {len(gets)} RPM GETs, ran "
         f"{info['completion_ts'] - info['start_ts']:.1f}s")


def test_fan_out_per_arch_gives_the_same_answer(main_world: MainWorld,
                                                tmp_path: Path) -> None:
    w = main_world
    _info, whole = _dry_check(w, cache_dir=tmp_path / "one")
    info, fanned = _dry_check(w, cache_dir=tmp_path / "fan", fanout_min_kmods=1)
    children = w.kit.admin.getTaskChildren(info["id"], request=True)
    assert sorted(c["request"][0]["arch"] for c in children
                  if c["method"] == "kabiCheckArch") == sorted([X86, ARM])
    assert all(c["state"] == CLOSED for c in children)
    assert _same(fanned) == _same(whole)


def test_a_broken_builder_config_fails_the_task_in_one_line(main_world: MainWorld) -> None:
    w = main_world
    with builder_settings(w.kit.rk, rules="/nonexistent/rules.yaml"):
        task_id = w.kit.admin.kabi.rebuild(w.builds["K2"]["id"], dry_run=True)
        info = w.kit.wait(task_id)
    assert info["state"] == FAILED
    fault = w.kit.admin.getTaskResult(task_id, raise_fault=False)
    assert fault["faultString"] == ("kabi builder plugin: /nonexistent/rules.yaml: "
                                    "No such file or directory")


def test_the_task_log_shows_the_phases_in_kojid_log_and_as_kabi_log(
        main_world: MainWorld) -> None:
    w = main_world
    mark = w.kit.rk.log_mark("kojid.log")
    info, _report = _dry_check(w)
    log = w.kit.admin.downloadTaskOutput(info["id"], "kabi.log").decode()
    nvr = w.builds["K2"]["nvr"]
    phases = [f"kabiCheck of {nvr}: waiting for its RPM set to settle",
              f"previous kernel {w.builds['K1']['nvr']}; 6 kmod builds in",
              "verdicts: 6 kmod builds checked, 5 incompatible",
              "rebuilds: 3 dry-run; 2 skipped"]
    for phase in phases:
        assert phase in log, (phase, log)
    assert [log.index(p) for p in phases] == sorted(log.index(p) for p in phases)
    kojid = w.kit.rk.log_since(mark, "kojid.log")
    assert f"kabiCheck of {nvr}: waiting" in kojid and "koji_kabi.koji.pipeline" in kojid
    watched = w.kit.rk.koji("watch-logs", str(info["id"]))
    note("koji watch-logs of a kabiCheck:\n" + watched.stdout.strip())
