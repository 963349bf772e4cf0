"""The hub plugin on the kojihub stand-in: config errors, exported calls, permissions,
claims, and the ``kabi_compatible`` test through Koji's real policy engine."""

from __future__ import annotations

import logging
from pathlib import Path

import koji
import pytest

from tests.kojitest import Env, Rpms, close_env, import_kernel, load_hub_plugin, make_env, write_ini

DENY = "deny kmod does not match the kABI of the kernel in this tag"
# Koji's policy language has no `not`: `!!` negates, and a nested block whose rules
# do not match falls through to the next rule.
POLICY = f"""
    tag kmods9-* :: {{
        kabi_compatible !! {DENY}
    }}
    all :: allow
"""


@pytest.fixture
def env(pipeline_rpms: Rpms, tmp_path: Path):
    e = make_env(pipeline_rpms, tmp_path)
    yield e
    close_env(e)


def test_missing_config_disables_the_plugin_not_the_hub(
        env: Env, pipeline_rpms: Rpms, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env.hub.unload_plugins()
    with caplog.at_level(logging.ERROR, logger="koji.plugin.kabi"):
        mod = load_hub_plugin(env.state, tmp_path / "missing.conf")
    assert "missing.conf" in mod.DISABLED
    (record,) = [r for r in caplog.records if r.name == "koji.plugin.kabi"]
    assert record.getMessage().startswith("kabi hub plugin disabled: ")
    assert "\n" not in record.getMessage()
    env.hub.load_plugin(mod)
    before = len(env.kabi_tasks())
    import_kernel(env, pipeline_rpms.k2)
    assert len(env.kabi_tasks()) == before  # the hook does nothing
    assert mod.KabiCompatibleTest("kabi_compatible").run({"tag": 1, "build": 1}) is True
    with pytest.raises(koji.GenericError, match="kabi hub plugin is disabled"):
        env.hub.client().kabi.check("kernel-5.14.0-2.el9")
    env.hub.unload_plugins()


@pytest.mark.parametrize("rules_text,problem", [
    ("watch: [{kernel_tag: a}]\n", "watch[0].kmod_tags: required"),
    ("kernel_packages: [kernel]\nrebuild: {mode: fast}\n", "rebuild.mode: must be one of"),
    ("colour: blue\n", "colour: unknown setting"),
    ("watch: [\n", "not valid YAML"),
])
def test_bad_rules_disable_with_a_clear_reason(env: Env, tmp_path: Path, rules_text: str,
                                               problem: str) -> None:
    rules = tmp_path / "bad-rules.yaml"
    rules.write_text(rules_text)
    mod = load_hub_plugin(env.state, write_ini(tmp_path / "bad.conf", rules=rules))
    assert problem in mod.DISABLED and str(rules) in mod.DISABLED


def test_unknown_setting_in_the_ini_disables(env: Env, tmp_path: Path) -> None:
    conf = write_ini(tmp_path / "typo.conf", rules=tmp_path / "rules.yaml", chanel="kabi")
    assert "[kabi] chanel: unknown option" in load_hub_plugin(env.state, conf).DISABLED


def test_exported_read_only_calls(env: Env, pipeline_rpms: Rpms) -> None:
    anon = env.hub.client()
    before = anon.kabi.check("kmod-crc-1.0-1.el9", tag="kmods9-testing")
    assert before["kernel"] == "kernel-5.14.0-1.el9" and before["compatible"] is True
    import_kernel(env, pipeline_rpms.k2)
    after = anon.kabi.check("kmod-crc-1.0-1.el9", tag="kmods9-testing")
    assert after["kernel"] == "kernel-5.14.0-2.el9" and after["compatible"] is False
    x86 = next(v for v in after["verdicts"] if v["key"] == "x86_64")
    assert {m["symbol"] for m in x86["mismatched"]} == set(pipeline_rpms.changed[:2])
    explicit = anon.kabi.check("kmod-ok-1.0-1.el9", kernel="kernel-5.14.0-2.el9")
    assert explicit["compatible"] is True and len(explicit["verdicts"]) == 2
    kernel = anon.kabi.check("kernel-5.14.0-2.el9")
    assert kernel["kind"] == "kernel" and kernel["previous"] == "kernel-5.14.0-1.el9"
    assert sum(not v["compatible"] for v in kernel["verdicts"]) == 5
    d = anon.kabi.delta("kernel-5.14.0-1.el9", "kernel-5.14.0-2.el9", arches=["x86_64"])
    (x,) = d["delta"]
    assert {c["symbol"] for c in x["changed"]} >= set(pipeline_rpms.changed) and x["breaking"]
    affected = anon.kabi.affected("kernel-5.14.0-2.el9")
    assert {v["nvr"] for v in affected["verdicts"] if not v["compatible"]} == {
        "kmod-crc-1.0-1.el9", "kmod-gone-2.0-3.el9", "kmod-optout-1.0-1.el9",
        "kmod-nosrc-1.0-1.el9", "kmod-nvidia-550.1-1.el9"}
    with pytest.raises(koji.GenericError, match="no such build"):
        anon.kabi.check("kmod-nope-1-1")
    with pytest.raises(koji.GenericError, match="give kernel= or tag="):
        anon.kabi.check("kmod-ok-1.0-1.el9")


def test_rebuild_needs_the_permission(env: Env, pipeline_rpms: Rpms) -> None:
    k2 = import_kernel(env, pipeline_rpms.k2)
    env.state.add_user("bob")
    with pytest.raises(koji.ActionNotAllowed, match="needs the kabi permission"):
        env.hub.client("bob").kabi.rebuild(k2["nvr"])
    with pytest.raises(koji.GenericError):
        env.hub.client().kabi.rebuild(k2["nvr"])  # anonymous
    task_id = env.hub.client("alice").kabi.rebuild(k2["nvr"], dry_run=True)
    info = env.state.task_info(task_id, request=True)
    assert info["method"] == "kabiCheck" and info["owner"] == env.state._user("alice")["id"]
    assert list(info["request"]) == [k2["id"], {"dry_run": True}]
    assert env.hub.client("kojiadmin").kabi.rebuild(k2["nvr"])  # admin may
    with pytest.raises(koji.GenericError, match="not a kernel build"):
        env.hub.client("alice").kabi.rebuild("kmod-ok-1.0-1.el9")


def test_claims_are_for_hosts_only(env: Env) -> None:
    with pytest.raises(koji.AuthError):
        env.hub.client("alice").kabi.claimRebuilds(1, [], 10)


def _tag_policy(env: Env, text: str = POLICY) -> object:
    env.state.set_policy("tag", text)
    import kojihub

    return kojihub


def _decide(env: Env, tag: str, nvr: str) -> tuple[bool, str]:
    kojihub = _tag_policy(env)
    kojihub.login_as("alice")
    data = {"tag": kojihub.get_tag(tag, strict=True)["id"],
            "build": kojihub.get_build(nvr, strict=True)["id"], "operation": "tag"}
    return kojihub.check_policy("tag", data, default="deny")


def test_policy_gates_kmods_on_the_kernel_of_the_tag(env: Env, pipeline_rpms: Rpms) -> None:
    env.state.add_tag("kmods9-release")
    assert _decide(env, "kmods9-testing", "kmod-crc-1.0-1.el9")[0] is True  # kernel 1 there
    import_kernel(env, pipeline_rpms.k2)
    allowed, reason = _decide(env, "kmods9-testing", "kmod-crc-1.0-1.el9")
    assert (allowed, reason) == (False, DENY.split(" ", 1)[1])
    assert _decide(env, "kmods9-testing", "kmod-ok-1.0-1.el9")[0] is True
    assert _decide(env, "kmods9-testing", "kernel-5.14.0-2.el9")[0] is True  # not a kmod
    # kmods9-release has no kernel and no rules mapping: the configured default (true)
    assert _decide(env, "kmods9-release", "kmod-crc-1.0-1.el9")[0] is True


def test_policy_argument_names_the_kernel_tag(env: Env, pipeline_rpms: Rpms) -> None:
    import_kernel(env, pipeline_rpms.k2)
    env.state.add_tag("kmods9-release")
    kojihub = _tag_policy(env, f"tag kmods9-* :: {{\n kabi_compatible el9-kernel !! {DENY}\n"
                               "}\nall :: allow")
    kojihub.login_as("alice")
    data = {"tag": kojihub.get_tag("kmods9-release", strict=True)["id"],
            "build": kojihub.get_build("kmod-gone-2.0-3.el9", strict=True)["id"],
            "operation": "tag"}
    assert kojihub.check_policy("tag", data, default="deny")[0] is False


def test_policy_never_raises_and_uses_the_default(env: Env, pipeline_rpms: Rpms, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    import_kernel(env, pipeline_rpms.k2)
    test = env.hubmod.KabiCompatibleTest("kabi_compatible")
    kmod = env.hub.client().getBuild("kmod-crc-1.0-1.el9")["id"]
    with caplog.at_level(logging.WARNING, logger="koji.plugin.kabi"):
        assert test.run({"tag": 999999, "build": kmod}) is True  # no such tag
    assert "cannot decide" in caplog.text and "999999" in caplog.text
    strict = load_hub_plugin(env.state, write_ini(
        tmp_path / "strict.conf", rules=env.tmp / "rules.yaml", policy_default=False))
    assert strict.KabiCompatibleTest("kabi_compatible").run({"tag": 999999, "build": kmod}) \
        is False
    assert test.run({"tag": None, "build": kmod, "operation": "untag"}) is True


def test_policy_refuses_a_real_tag_build_call(env: Env, pipeline_rpms: Rpms) -> None:
    import_kernel(env, pipeline_rpms.k2)
    env.state.add_tag("kmods9-release")
    for package in ("kmod-crc", "kmod-ok"):
        env.state.add_package("kmods9-release", package)
    env.state.set_policy("tag", f"""
        tag kmods9-release && kabi_compatible el9-kernel :: allow
        tag kmods9-release :: {DENY}
        all :: allow
    """)
    alice = env.hub.client("kojiadmin")
    with pytest.raises(koji.ActionNotAllowed, match="does not match the kABI"):
        alice.tagBuild("kmods9-release", "kmod-crc-1.0-1.el9")
    alice.tagBuild("kmods9-release", "kmod-ok-1.0-1.el9")
    tagged = {b["nvr"] for b in alice.listTagged("kmods9-release")}
    assert tagged == {"kmod-ok-1.0-1.el9"}
