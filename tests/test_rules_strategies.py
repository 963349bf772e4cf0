"""Rebuild strategies in the rules: ``rebuild.strategy`` and ``rebuild.macro``, a watch's
``strategy``, a package's ``strategy`` and ``macro``; which one applies to a package, and
one clear line for a value that is not allowed."""

from __future__ import annotations

from typing import Any

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.koji.rules import STRATEGIES, PackageRule, Rules, parse_rules, rules_data

WATCHES: list[dict] = [
    {"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9"], "target": "kmods9-el9"},
    {"kernel_tag": "el9-rt", "kmod_tags": ["kmods9-rt"], "target": "kmods9-rt-el9",
     "packages": ["kernel-rt"], "strategy": "srpm"},
]


def rules(**overrides: Any) -> Rules:
    data: dict = {"kernel_packages": ["kernel", "kernel-rt"], "watch": WATCHES}
    data.update(overrides)
    return parse_rules(data, "rules.yaml")


def test_defaults_are_buildroot_and_kversion() -> None:
    r = parse_rules({}, "rules.yaml")
    assert (r.strategy, r.macro) == ("buildroot", "kversion")
    assert (r.strategy_for("kmod-x"), r.macro_for("kmod-x")) == ("buildroot", "kversion")
    assert r.packages == {}
    # an empty rebuild: section, or settings left empty, mean the defaults too
    for rebuild in (None, {}, {"strategy": None, "macro": None}):
        again = parse_rules({"rebuild": rebuild}, "rules.yaml")
        assert (again.strategy, again.macro) == ("buildroot", "kversion")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_accepted_everywhere(strategy: str) -> None:
    r = rules(watch=[{**WATCHES[0], "strategy": strategy}],
              rebuild={"strategy": strategy},
              packages={"kmod-x": {"strategy": strategy}})
    assert r.strategy == strategy
    assert r.watches[0].strategy == strategy
    assert r.packages["kmod-x"] == PackageRule(strategy=strategy)


def test_the_macro_name_is_read_from_rebuild_and_per_package() -> None:
    r = rules(rebuild={"macro": "kernel_version"}, packages={
        "kmod-a": {"macro": "_kmod_kver"}, "kmod-b": {"mode": "draft"}})
    assert r.macro == "kernel_version"
    assert r.packages["kmod-a"].macro == "_kmod_kver"
    assert r.macro_for("kmod-a") == "_kmod_kver"
    assert r.macro_for("kmod-b") == "kernel_version"  # a rule without its own macro
    assert r.macro_for("kmod-unlisted") == "kernel_version"


def test_strategy_precedence_package_then_watch_then_rebuild() -> None:
    r = rules(rebuild={"strategy": "macro"},
              packages={"kmod-pinned": {"strategy": "buildroot"},
                        "kmod-draft": {"mode": "draft"}})
    plain, rt = r.watches
    assert (plain.strategy, rt.strategy) == (None, "srpm")
    # the package's own strategy wins over its watch's and rebuild:'s
    assert r.strategy_for("kmod-pinned", rt) == "buildroot"
    assert r.strategy_for("kmod-pinned", plain) == "buildroot"
    assert r.strategy_for("kmod-pinned") == "buildroot"
    # without one (no rule, or a rule setting something else): the watch's, if it has one
    for package in ("kmod-draft", "kmod-unlisted"):
        assert r.strategy_for(package, rt) == "srpm"
        assert r.strategy_for(package, plain) == "macro"  # a watch without a strategy
        assert r.strategy_for(package) == "macro"  # no watch at all


def test_the_strategy_does_not_change_mode_or_target() -> None:
    r = rules(rebuild={"mode": "draft"}, packages={"kmod-x": {"strategy": "macro",
                                                              "macro": "kver"}})
    _plain, rt = r.watches
    assert (r.mode_for("kmod-x", rt), r.target_for("kmod-x", rt)) == ("draft", "kmods9-rt-el9")
    assert r.packages["kmod-x"] == PackageRule(strategy="macro", macro="kver")


@pytest.mark.parametrize("data,message", [
    ({"packages": {"kmod-x": {"strategy": "bogus"}}},
     "rules.yaml: packages.kmod-x.strategy: must be one of buildroot, macro, srpm, "
     "got 'bogus'"),
    ({"rebuild": {"strategy": "bogus"}},
     "rules.yaml: rebuild.strategy: must be one of buildroot, macro, srpm, got 'bogus'"),
    ({"rebuild": {"strategy": "Macro"}},  # not case-folded
     "rules.yaml: rebuild.strategy: must be one of buildroot, macro, srpm, got 'Macro'"),
    ({"watch": [{"kernel_tag": "k", "kmod_tags": ["m"], "strategy": "side-tag"}]},
     "rules.yaml: watch[0].strategy: must be one of buildroot, macro, srpm, got 'side-tag'"),
    ({"rebuild": {"strategy": 7}}, "rules.yaml: rebuild.strategy: expected a string, got 7"),
    ({"rebuild": {"strategy": ["macro"]}},
     "rules.yaml: rebuild.strategy: expected a string, got ['macro']"),
    ({"rebuild": {"macro": "1kver"}}, "rules.yaml: rebuild.macro: not an RPM macro name: "
                                      "'1kver'"),
    ({"rebuild": {"macro": "%kversion"}},
     "rules.yaml: rebuild.macro: not an RPM macro name: '%kversion'"),
    ({"rebuild": {"macro": "kver sion"}},
     "rules.yaml: rebuild.macro: not an RPM macro name: 'kver sion'"),
    ({"rebuild": {"macro": "k"}}, "rules.yaml: rebuild.macro: not an RPM macro name: 'k'"),
    ({"rebuild": {"macro": ""}}, "rules.yaml: rebuild.macro: not an RPM macro name: ''"),
    ({"rebuild": {"macro": True}}, "rules.yaml: rebuild.macro: expected a string, got True"),
    ({"packages": {"kmod-x": {"macro": "k-ver"}}},
     "rules.yaml: packages.kmod-x.macro: not an RPM macro name: 'k-ver'"),
    ({"rebuild": {"stratgy": "macro"}}, "rules.yaml: rebuild.stratgy: unknown setting"),
    ({"packages": {"kmod-x": {"macros": "kver"}}},
     "rules.yaml: packages.kmod-x.macros: unknown setting"),
    ({"watch": [{"kernel_tag": "k", "kmod_tags": ["m"], "macro": "kver"}]},  # per package
     "rules.yaml: watch[0].macro: unknown setting"),
])
def test_a_bad_strategy_or_macro_is_one_line_naming_it(data: dict, message: str) -> None:
    with pytest.raises(KabiError) as err:
        parse_rules(data, "rules.yaml")
    assert str(err.value) == message
    assert err.value.source == "rules.yaml"


@pytest.mark.parametrize("data,message", [
    ({"rebuild": {"macro": "kversion\n"}},
     "rules.yaml: rebuild.macro: not an RPM macro name: 'kversion\\n'"),
    ({"packages": {"kmod-x": {"macro": "kver\n"}}},
     "rules.yaml: packages.kmod-x.macro: not an RPM macro name: 'kver\\n'"),
    ({"packages": {"kmod-x": {"target": "kmods9-el9\n"}}},
     "rules.yaml: packages.kmod-x.target: not a Koji name: 'kmods9-el9\\n'"),
    ({"packages": {"kmod-x\n": {"strategy": "macro"}}},
     "rules.yaml: packages: not a Koji package name: 'kmod-x\\n'"),
    ({"watch": [{"kernel_tag": "el9-kernel\n", "kmod_tags": ["m"]}]},
     "rules.yaml: watch[0].kernel_tag: not a Koji name: 'el9-kernel\\n'"),
    ({"watch": [{"kernel_tag": "k", "kmod_tags": ["m\n"]}]},
     "rules.yaml: watch[0].kmod_tags: not a Koji name: 'm\\n'"),
])
def test_a_final_newline_is_no_part_of_a_name(data: dict, message: str) -> None:
    """A YAML block scalar (``macro: |``) ends in a newline; '$' would let it through."""
    with pytest.raises(KabiError) as err:
        parse_rules(data, "rules.yaml")
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_the_file_named_in_the_error_is_the_one_given() -> None:
    with pytest.raises(KabiError) as err:
        parse_rules({"rebuild": {"macro": "9"}}, "/etc/koji-hub/plugins/kabi-rules.yaml")
    assert str(err.value) == ("/etc/koji-hub/plugins/kabi-rules.yaml: rebuild.macro: not an "
                              "RPM macro name: '9'")


def test_the_new_fields_round_trip_through_rules_data() -> None:
    r = rules(rebuild={"mode": "draft", "strategy": "macro", "macro": "kernel_version"},
              packages={"kmod-a": {"strategy": "srpm"},
                        "kmod-b": {"strategy": "macro", "macro": "_kver", "mode": "scratch"},
                        "kmod-c": {"macro": "kmod_c_kernel"},
                        "kmod-d": {"opt_out": True}})
    data = rules_data(r)
    assert data["rebuild"]["strategy"] == "macro"
    assert data["rebuild"]["macro"] == "kernel_version"
    assert [w.get("strategy") for w in data["watch"]] == [None, "srpm"]
    assert data["packages"]["kmod-b"] == {"mode": "scratch", "strategy": "macro",
                                          "macro": "_kver"}
    again = parse_rules(data, "again.yaml")
    assert (again.strategy, again.macro) == (r.strategy, r.macro)
    assert again.watches == r.watches
    assert dict(again.packages) == dict(r.packages)
    assert (again.kernel_packages, again.mode, again.dry_run, again.limits) == (
        r.kernel_packages, r.mode, r.dry_run, r.limits)
    assert rules_data(again) == data
    for package in ("kmod-a", "kmod-b", "kmod-c", "kmod-d", "kmod-unlisted"):
        for watch in (None, *r.watches):
            assert again.strategy_for(package, watch) == r.strategy_for(package, watch)
        assert again.macro_for(package) == r.macro_for(package)


def test_defaults_round_trip_too() -> None:
    r = parse_rules({"watch": [WATCHES[0]]}, "rules.yaml")
    data = rules_data(r)
    assert (data["rebuild"]["strategy"], data["rebuild"]["macro"]) == ("buildroot", "kversion")
    assert "strategy" not in data["watch"][0]  # unset stays unset, not the default
    again = parse_rules(data, "rules.yaml")
    assert again == r
