"""Plugin settings and rules are validated when read: a bad value is one line naming the
file, the section and the setting, never a later crash or a silently disabled feature."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.koji.pipeline import Context
from koji_kabi.koji.rules import RulesFile, parse_rules, rules_data
from koji_kabi.koji.settings import BuilderSettings, CheckOptions, HubSettings, load_settings

HUB = "[kabi]\nrules = /etc/koji-hub/plugins/kabi-rules.yaml\n"


@pytest.mark.parametrize("cls,lines,problem", [
    (BuilderSettings, "batch = 0", "[kabi] batch: must be 1 to 1000, got 0"),
    (BuilderSettings, "poll = -1", "[kabi] poll: must be 0.1 to 3600, got -1.0"),
    (BuilderSettings, "poll = nan", "[kabi] poll: must be 0.1 to 3600, got nan"),
    (BuilderSettings, "settle_timeout = -5", "[kabi] settle_timeout: must be at least 0"),
    (BuilderSettings, "cache_max_mb = 0", "[kabi] cache_max_mb: must be at least 1, got 0"),
    (BuilderSettings, "deps_source = ftp", "[kabi] deps_source: must be hub or topurl"),
    (BuilderSettings, "cache_dir = cache", "[kabi] cache_dir: must be an absolute path"),
    (BuilderSettings, "rules = rules.yaml", "[kabi] rules: must be an absolute path or empty"),
    (BuilderSettings, "fanout_min_kmods = 0", "[kabi] fanout_min_kmods: must be at least 1"),
    (BuilderSettings, "tag_wait = soon", "[kabi] tag_wait: invalid literal"),
    # per-task options and the nested object are no settings of a file
    (BuilderSettings, "dry_run = true", "[kabi] dry_run: unknown option"),
    (BuilderSettings, "against = kernel-1-1", "[kabi] against: unknown option"),
    (BuilderSettings, "check = x", "[kabi] check: unknown option"),
    (HubSettings, "cache_entries = -1", "[kabi] cache_entries: must be at least 1, got -1"),
    (HubSettings, "policy_max_rpms = -3", "[kabi] policy_max_rpms: must be at least 1"),
    (HubSettings, "priority = -1", "[kabi] priority: must be 0 to 1000, got -1"),
    (HubSettings, "channel =", "[kabi] channel: must be a channel name, got ''"),
    (HubSettings, "owner = bad name", "[kabi] owner: must be a user name or empty"),
    (HubSettings, "rebuild_permission = a b", "[kabi] rebuild_permission: must be a "),
    (HubSettings, "priority = high", "[kabi] priority: invalid literal"),
    (HubSettings, "claims_dir = /x", "[kabi] claims_dir: unknown option"),
])
def test_bad_values_are_one_line(tmp_path: Path, cls: type, lines: str, problem: str) -> None:
    conf = tmp_path / "kabi.conf"
    conf.write_text((HUB if cls is HubSettings else "[kabi]\n") + lines + "\n")
    with pytest.raises(KabiError) as err:
        load_settings(cls, str(conf))
    assert str(err.value).startswith(f"{conf}: {problem}")
    assert "\n" not in str(err.value)


def test_good_values_and_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "kabi.conf"
    conf.write_text("[kabi]\nbatch = 1000\npoll = 0.5\n")
    got = load_settings(BuilderSettings, str(conf))
    assert (got.check.batch, got.check.poll, got.rules, got.deps_source) == (
        1000, 0.5, "", "topurl")
    assert got.check == CheckOptions(batch=1000, poll=0.5)  # the rest: CheckOptions' defaults
    conf.write_text("[kabi]\n")
    assert load_settings(BuilderSettings, str(conf)).check == CheckOptions()
    conf.write_text(HUB + "owner =\n")
    assert load_settings(HubSettings, str(conf)).owner == ""


@pytest.mark.parametrize("data,problem", [
    ({"rebuild": {"max_in_flight": 0}}, "rebuild.max_in_flight: must be at least 1, got 0"),
    ({"rebuild": {"priority": -4}}, "rebuild.priority: must be at least 0, got -4"),
    ({"rebuild": {"max_per_task": -1}}, "rebuild.max_per_task: must be at least 0"),
    ({"rebuild": {"hold_back_seconds": -1}}, "rebuild.hold_back_seconds: must be at least 0"),
    ({"watch": [{"kernel_tag": "el9 kernel", "kmod_tags": ["k"]}]},
     "watch[0].kernel_tag: not a Koji name: 'el9 kernel'"),
    ({"watch": [{"kernel_tag": "k", "kmod_tags": ["kmods-*"]}]},
     "watch[0].kmod_tags: not a Koji name: 'kmods-*'"),
    ({"packages": {"kmod x": {"opt_out": True}}}, "packages: not a Koji package name"),
    ({"packages": {7: {"opt_out": True}}}, "packages: not a Koji package name: 7"),
])
def test_bad_rules_are_one_line(data: dict, problem: str) -> None:
    with pytest.raises(KabiError, match="^rules.yaml: " + problem.replace("[", r"\[")
                       .replace("]", r"\]").replace("*", r"\*")):
        parse_rules(data, "rules.yaml")


def test_rules_round_trip_through_their_one_serialiser() -> None:
    rules = parse_rules({
        "kernel_packages": ["kernel", "kernel-rt"],
        "watch": [{"kernel_tag": "el9-kernel", "kmod_tags": ["a", "b"], "target": "t",
                   "mode": "draft"}, {"kernel_tag": "el9-rt", "kmod_tags": ["c"],
                                      "packages": ["kernel-rt"]}],
        "rebuild": {"mode": "build", "dry_run": True, "max_per_task": 3, "priority": 9},
        "packages": {"kmod-a": {"opt_out": True}, "kmod-b": {"mode": "scratch",
                                                              "target": "t2"}}}, "x")
    again = parse_rules(rules_data(rules), "y")
    assert rules_data(again) == rules_data(rules)
    assert (again.watches, again.limits, dict(again.packages)) == (
        rules.watches, rules.limits, dict(rules.packages))


def test_a_rules_file_is_re_read_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("kernel_packages: [kernel]\n")
    now = [0.0]
    problems: list[str] = []
    live = RulesFile(str(path), interval=2, on_problem=problems.append, clock=lambda: now[0])
    assert live.current().kernel_packages == ("kernel",)
    path.write_text("kernel_packages: [kernel, kernel-rt]\n")
    now[0] = 1.0
    assert live.current().kernel_packages == ("kernel",)  # not yet looked again
    now[0] = 2.5
    assert live.current().kernel_packages == ("kernel", "kernel-rt")
    path.write_text("kernel_packages: {\n")  # a broken edit: the last good rules stay
    now[0] = 5.0
    assert live.current().kernel_packages == ("kernel", "kernel-rt")
    assert live.problem and live.problem.startswith(f"{path}:") and len(problems) == 1
    now[0] = 8.0
    live.current()
    assert len(problems) == 1  # said once per change
    path.unlink()
    now[0] = 11.0
    assert live.current().kernel_packages == ("kernel", "kernel-rt")
    assert "No such file" in (live.problem or "")


def test_the_shipped_configuration_examples_are_valid() -> None:
    from koji_kabi.koji.rules import load_rules

    conf = Path(__file__).resolve().parents[1] / "conf"
    assert load_settings(HubSettings, str(conf / "kabi-hub.conf")).channel == "kabi"
    assert load_settings(BuilderSettings, str(conf / "kabi-builder.conf")).rules == ""
    assert load_rules(str(conf / "rules.yaml")).watches


# --------------------------------------------------------------------------- check options

SETTINGS = BuilderSettings(check=CheckOptions(settle_seconds=5, batch=7))


def test_overrides_make_a_new_object_and_leave_the_settings_alone() -> None:
    before = dataclasses.replace(SETTINGS)
    got = CheckOptions.from_settings(SETTINGS, {"batch": 3, "dry_run": True, "against": 12,
                                                "tag": "el9-kernel", "arches": ["x86_64"]})
    assert got == CheckOptions(settle_seconds=5, batch=3, dry_run=True, against=12,
                               tag="el9-kernel", arches=("x86_64",))
    assert before == SETTINGS and SETTINGS.check.batch == 7 and SETTINGS.check.dry_run is None
    assert CheckOptions.from_settings(SETTINGS, None) is SETTINGS.check
    assert CheckOptions.from_settings(SETTINGS, {}) == SETTINGS.check
    assert CheckOptions.from_settings(SETTINGS, {"poll": 2}).poll == 2  # an int is a number


@pytest.mark.parametrize("overrides,problem", [
    ({"bacth": 3}, "unknown option 'bacth'"),
    ({"zz": 1, "cache_dir": "/tmp"}, "unknown option 'cache_dir'"),  # a builder setting
    ({"check": {}}, "unknown option 'check'"),
    ({"batch": "5"}, "batch: must be an integer, got '5'"),
    ({"batch": True}, "batch: must be an integer, got True"),
    ({"batch": None}, "batch: must be an integer, got None"),
    ({"batch": 0}, "batch: must be 1 to 1000, got 0"),
    ({"poll": "fast"}, "poll: must be a number, got 'fast'"),
    ({"poll": float("nan")}, "poll: must be 0.1 to 3600, got nan"),
    ({"settle_seconds": 1.5}, "settle_seconds: must be an integer, got 1.5"),
    ({"dry_run": "yes"}, "dry_run: must be true or false, got 'yes'"),
    ({"against": 1.5}, "against: must be a build id or NVR, got 1.5"),
    ({"tag": 7}, "tag: must be a tag name, got 7"),
    ({"arches": "x86_64"}, "arches: must be a list of arch names, got 'x86_64'"),
    ({"arches": ["x86_64", 1]}, "arches: must be a list of arch names"),
    (["batch"], "must be a dict of options, got ['batch']"),
])
def test_a_bad_override_is_one_clear_line(overrides: Any, problem: str) -> None:
    with pytest.raises(KabiError) as err:
        CheckOptions.from_settings(SETTINGS, overrides)
    assert str(err.value).startswith(f"kabiCheck options: {problem}")
    assert "\n" not in str(err.value)
    assert SETTINGS.check == CheckOptions(settle_seconds=5, batch=7)


def test_options_settings_and_context_refuse_assignment() -> None:
    opts = CheckOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.batch = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SETTINGS.check = opts  # type: ignore[misc]
    rules = parse_rules({"kernel_packages": ["kernel"]}, "x")
    ctx = Context(object(), object(), rules)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.view = object()  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"^batch: must be 1 to 1000, got 0$"):
        CheckOptions(batch=0)  # made directly, checked all the same


class _Ran(Exception):
    pass


def test_the_builder_task_uses_the_settings_defaults_and_the_tasks_overrides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    koji = pytest.importorskip("koji")
    from koji_kabi_builder import kabi_builder

    (tmp_path / "rules.yaml").write_text("kernel_packages: [kernel]\n")
    conf = tmp_path / "kabi.conf"
    conf.write_text(f"[kabi]\nrules = {tmp_path / 'rules.yaml'}\ncache_dir = {tmp_path}/c\n"
                    "deps_source = hub\nbatch = 7\nsettle_seconds = 5\n")
    monkeypatch.setattr(kabi_builder, "CONFIG_FILE", str(conf))
    monkeypatch.setattr(kabi_builder, "_task_logging", lambda task: contextlib.nullcontext())
    seen: list[tuple[Any, Any, CheckOptions]] = []

    def run_check(ctx: Any, build_id: Any, opts: CheckOptions) -> dict:
        seen.append((ctx, build_id, opts))
        raise _Ran

    monkeypatch.setattr(kabi_builder, "run_check", run_check)
    task = SimpleNamespace(session=object(), id=9, _fanout=None, _fetch=None,
                           _stage_srpm=None)
    for opts in (None, {}):
        with pytest.raises(_Ran):
            kabi_builder.KabiCheckTask.handler(task, 42, opts)
    with pytest.raises(_Ran):
        kabi_builder.KabiCheckTask.handler(task, 42, {"batch": 3, "dry_run": True})
    file_defaults = CheckOptions(settle_seconds=5, batch=7)
    assert [s[2] for s in seen] == [file_defaults, file_defaults,
                                    dataclasses.replace(file_defaults, batch=3, dry_run=True)]
    assert [s[0].view.batch for s in seen] == [7, 7, 3]  # the view is made with the batch
    assert all(s[0].view is s[0].host and s[0].task_id == 9 and s[1] == 42 for s in seen)
    with pytest.raises(koji.GenericError, match=r"^kabiCheck options: unknown option 'bacth'$"):
        kabi_builder.KabiCheckTask.handler(task, 42, {"bacth": 3})
    assert len(seen) == 3
