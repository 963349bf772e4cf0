"""Plugin settings and rules are validated when read: a bad value is one line naming the
file, the section and the setting, never a later crash or a silently disabled feature."""

from __future__ import annotations

from pathlib import Path

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.koji.rules import RulesFile, parse_rules, rules_data
from koji_kabi.koji.settings import BuilderSettings, HubSettings, load_settings

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
    assert (got.batch, got.poll, got.rules, got.deps_source) == (1000, 0.5, "", "topurl")
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
