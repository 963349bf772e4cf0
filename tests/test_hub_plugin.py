"""The hub plugin on Koji's REAL hub code (``<repo>/../shared/koji``), as Koji tests its own
hub plugins: the real ``kojihub`` module with its database functions patched
(:mod:`tests.realkojihub`), the plugin loaded and registered the way the hub does it, and
Koji's real policy engine, callbacks and auth sessions.  Verdicts come from real RPM headers
(the session's ``pipeline_rpms``) laid out under a temp topdir at ``koji.pathinfo``'s paths.

Claims (``kabi.claimRebuilds``) and anything needing a database or a running hub are out of
scope here: the real-hub tier proves those.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional

import koji
import koji.plugin
import pytest
import yaml
from koji.context import context

from tests import realkojihub
from tests.realkojihub import HubData
from tests.support import oracle
from tests.support import rpmfactory as rf
from tests.support.results import valid

if TYPE_CHECKING:
    from tests.pipeline_rpms import Rpms  # the session fixture pipeline_rpms (tests/conftest.py)

_UNAVAILABLE = realkojihub.unavailable()
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

LOGGER = "koji.plugin.kabi"
COMPLETE = koji.BUILD_STATES["COMPLETE"]
BUILDING = koji.BUILD_STATES["BUILDING"]
REASON = "kmod does not match the kABI of the kernel in this tag"
K1, K2, K3 = "kernel-5.14.0-1.el9", "kernel-5.14.0-2.el9", "kernel-5.14.0-3.el9"
KMODS = {"kmod-ok": "kmod-ok-1.0-1.el9", "kmod-crc": "kmod-crc-1.0-1.el9",
         "kmod-gone": "kmod-gone-2.0-3.el9", "kmod-optout": "kmod-optout-1.0-1.el9",
         "kmod-nosrc": "kmod-nosrc-1.0-1.el9", "kmod-nvidia": "kmod-nvidia-550.1-1.el9"}
PLAIN = "bash-completion-extra-1.0-1.el9"
#: kmods whose kernel() requires kernel 2 breaks (a changed CRC or a removed symbol)
BROKEN_BY_K2 = {KMODS[n] for n in ("kmod-crc", "kmod-gone", "kmod-optout", "kmod-nosrc",
                                   "kmod-nvidia")}
RULES = {"kernel_packages": ["kernel"],
         "watch": [{"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9-testing"],
                    "target": "kmods9-el9"}]}


def gate(arg: str = "") -> str:
    """A tag policy gating kmods9-* tags on ``kabi_compatible [arg]`` (Koji has no `not`:
    ``!!`` negates, and a block none of whose rules match falls through)."""
    test = f"kabi_compatible {arg}".strip()
    return f"tag kmods9-* :: {{\n    {test} !! deny {REASON}\n}}\nall :: allow\n"


def write_ini(path: Path, **settings: Any) -> Path:
    lines = ["[kabi]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                          for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def crcs(lines: list[str]) -> dict[str, int]:
    """``kernel(sym) = 0xCRC`` lines as printed by ``rpm -qp`` -> {sym: crc}."""
    out = {}
    for line in lines:
        m = re.fullmatch(r"kernel\((\S+)\) = (0x[0-9a-fA-F]+)", line.strip())
        if m:
            out[m.group(1)] = int(m.group(2), 16)
    return out


@dataclass
class Plugin:
    """One import of the plugin, registered on the hub."""

    mod: ModuleType
    registry: Any
    world: World

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """An exported call, looked up as the hub dispatches it (``kabi.check`` ...); the
        check calls' answers are checked against the result schema."""
        answer = self.registry.get(name)(*args, **kwargs)
        if name in ("kabi.check", "kabi.delta", "kabi.affected"):
            valid(answer)
        return answer

    def decide(self, tag: str, build: str, policy: str = "") -> tuple[bool, str]:
        """Koji's ``check_policy('tag', ...)`` for tagging ``build`` into ``tag``."""
        data = {"tag": self.world.tag_id(tag), "build": self.world.build(build)["id"],
                "operation": "tag"}
        context.policy = realkojihub.hub_policies(self.mod, tag=policy or gate())
        return self.world.kojihub.check_policy("tag", data, default="deny")

    def allowed(self, tag: str, builds: list[str], policy: str = "") -> set[str]:
        return {b for b in builds if self.decide(tag, b, policy)[0]}


@dataclass
class World:
    """Users, tags and builds of real RPMs behind the patched kojihub functions."""

    kojihub: ModuleType
    data: HubData
    rpms: Rpms
    tmp: Path
    users: dict[str, dict] = field(default_factory=dict)
    builds: dict[str, dict] = field(default_factory=dict)
    _loads: int = 0
    _registration: Optional[contextlib.ExitStack] = None

    def setup(self) -> None:
        for name, perms in (("kojiadmin", ["admin"]), ("alice", ["kabi"]), ("bob", []),
                            ("carol", ["kabi-admin"])):
            self.users[name] = self.data.add_user(name, perms)
        self.data.add_tag("el9-kernel")
        self.data.add_tag("kmods9-build", parents=["el9-kernel"])
        self.data.add_tag("kmods9-testing")
        self.data.add_tag("kmods9-release")
        self.kernel(1)
        for paths in self.rpms.kmods.values():
            self.add(paths, "kmods9-testing", owner="alice")
        self.add(self.rpms.plain, "kmods9-testing", owner="alice")

    def add(self, paths: list[Path], tag: Optional[str] = None, owner: str = "kojiadmin",
            **kwargs: Any) -> dict:
        build = self.data.import_build(paths, self.users[owner], **kwargs)
        self.builds[build["nvr"]] = build
        if tag:
            self.data.tag_build(tag, build)
        return build

    def kernel(self, n: int, tag: Optional[str] = "el9-kernel") -> dict:
        """Kernel build ``n`` (1, 2 or 3), imported and tagged on first use."""
        nvr = {1: K1, 2: K2, 3: K3}[n]
        if nvr not in self.builds:
            self.add({1: self.rpms.k1, 2: self.rpms.k2, 3: self.rpms.k3}[n], tag)
        return self.builds[nvr]

    def build(self, nvr: str) -> dict:
        return self.builds[nvr]

    def tag_id(self, name: str) -> int:
        return next(t["id"] for t in self.data.tags.values() if t["name"] == name)

    def plugin(self, rules: Optional[dict] = None, **settings: Any) -> Plugin:
        """Load the plugin with a fresh config (and rules file) and register it."""
        self._loads += 1
        rules_path = self.tmp / f"rules-{self._loads}.yaml"
        rules_path.write_text(yaml.safe_dump(rules or RULES))
        return self.load(write_ini(self.tmp / f"kabi-{self._loads}.conf", rules=rules_path,
                                   **settings))

    def load(self, config: Path) -> Plugin:
        """Import the plugin reading ``config``; it replaces the previous one on the hub."""
        self.close()
        mod = realkojihub.load_plugin(config)
        self._registration = contextlib.ExitStack()
        registry = self._registration.enter_context(realkojihub.registered(mod))
        return Plugin(mod, registry, self)

    def close(self) -> None:
        if self._registration is not None:
            self._registration.close()
            self._registration = None

    def login(self, user: Optional[str]) -> Any:
        return realkojihub.login(self.kojihub, self.users[user] if user else None)

    @property
    def make_task(self) -> Any:
        return self.data.mocks["make_task"]


@pytest.fixture(scope="module")
def kojihub() -> Iterator[ModuleType]:
    with realkojihub.real_kojihub() as module:
        yield module


@pytest.fixture
def world(kojihub: ModuleType, pipeline_rpms: Rpms, tmp_path: Path) -> Iterator[World]:
    data = HubData(tmp_path / "topdir")
    with realkojihub.hub_context(data.topdir), data.patched(kojihub):
        w = World(kojihub, data, pipeline_rpms, tmp_path)
        w.setup()
        try:
            yield w
        finally:
            w.close()


def plugin_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_the_hub_code_is_kojis_own(kojihub: ModuleType) -> None:
    """The tests run on Koji's real kojihub, with the venv's koji library."""
    assert Path(kojihub.kojihub.__file__).resolve().is_relative_to(realkojihub.KOJI_SOURCE
                                                                   .resolve())
    assert not Path(koji.__file__).resolve().is_relative_to(realkojihub.KOJI_SOURCE.resolve())
    assert kojihub.check_policy is kojihub.kojihub.check_policy


# --------------------------------------------------------------------------- disabled


def _assert_disabled_once(caplog: pytest.LogCaptureFixture, file: Path, problem: str) -> str:
    """Exactly one plugin log line, ``kabi hub plugin disabled: <file>: <problem>``."""
    (record,) = plugin_records(caplog)
    message = record.getMessage()
    assert record.levelno == logging.ERROR
    assert message.startswith(f"kabi hub plugin disabled: {file}")
    assert problem in message and "\n" not in message
    assert not [r for r in caplog.records if r.name == "koji.plugin"]  # the loader saw no error
    return message


def test_missing_config_disables_the_plugin_with_one_line(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    missing = world.tmp / "missing.conf"
    with caplog.at_level(logging.INFO):
        p = world.load(missing)  # Koji's plugin loader: no exception reaches the hub
    _assert_disabled_once(caplog, missing, f"{missing}: cannot read plugin configuration")
    assert p.mod.DISABLED.startswith(f"{missing}: ")


def test_unknown_ini_option_disables(world: World, caplog: pytest.LogCaptureFixture) -> None:
    rules = world.tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    conf = write_ini(world.tmp / "typo.conf", rules=rules, chanel="kabi")
    with caplog.at_level(logging.INFO):
        p = world.load(conf)
    _assert_disabled_once(caplog, conf, f"{conf}: [kabi] chanel: unknown option")
    assert p.mod.SETTINGS is None


@pytest.mark.parametrize("setting,value,problem", [
    ("priority", "high", "[kabi] priority: "),
    ("cache_entries", -1, "[kabi] cache_entries: must be at least 1, got -1"),
    ("policy_max_rpms", -3, "[kabi] policy_max_rpms: must be at least 1, got -3"),
    ("channel", "", "[kabi] channel: must be a channel name, got ''"),
])
def test_bad_ini_value_disables(world: World, caplog: pytest.LogCaptureFixture, setting: str,
                                value: Any, problem: str) -> None:
    conf = write_ini(world.tmp / "bad.conf", rules=world.tmp / "rules.yaml", **{setting: value})
    with caplog.at_level(logging.INFO):
        world.load(conf)
    _assert_disabled_once(caplog, conf, f"{conf}: {problem}")


@pytest.mark.parametrize("rules_text,problem", [
    ("watch: [{kernel_tag: a}]\n", "watch[0].kmod_tags: required"),
    ("kernel_packages: [kernel]\nrebuild: {mode: fast}\n", "rebuild.mode: must be one of"),
    ("colour: blue\n", "colour: unknown setting"),
    ("watch: [\n", "not valid YAML"),
])
def test_bad_rules_disable_with_a_clear_reason(world: World, caplog: pytest.LogCaptureFixture,
                                               rules_text: str, problem: str) -> None:
    rules = world.tmp / "bad-rules.yaml"
    rules.write_text(rules_text)
    with caplog.at_level(logging.INFO):
        p = world.load(write_ini(world.tmp / "kabi.conf", rules=rules))
    _assert_disabled_once(caplog, rules, problem)
    assert p.mod.DISABLED.startswith(str(rules)) and problem in p.mod.DISABLED


def test_a_disabled_plugin_does_nothing(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """No task from the hook, "disabled" from every call, the default from the policy test
    (where the enabled plugin denies), and nothing read from Koji."""
    k2 = world.kernel(2)
    assert world.plugin().decide("kmods9-testing", KMODS["kmod-crc"]) == (False, REASON)
    missing = world.tmp / "missing.conf"
    p = world.load(missing)
    for mocked in world.data.mocks.values():
        mocked.reset_mock()
    koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=BUILDING,
                              new=COMPLETE, info=k2)
    world.make_task.assert_not_called()
    world.login("kojiadmin")
    for name, args in (("kabi.check", (K2,)), ("kabi.delta", (K1, K2)),
                       ("kabi.affected", (K2,)), ("kabi.rebuild", (K2,))):
        with pytest.raises(koji.GenericError, match=f"kabi hub plugin is disabled: {missing}"):
            p.call(name, *args)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert p.decide("kmods9-testing", KMODS["kmod-crc"]) == (True, "")
    assert "kabi_compatible: plugin disabled" in caplog.text
    for name in ("get_build", "list_rpms", "readTaggedBuilds", "make_task"):
        world.data.mocks[name].assert_not_called()


def test_disabled_by_bad_rules_the_policy_returns_the_configured_default(world: World) -> None:
    """With policy_default = false, even a compatible kmod is refused while disabled."""
    world.kernel(2)
    bad = world.tmp / "bad-rules.yaml"
    bad.write_text("colour: blue\n")
    p = world.load(write_ini(world.tmp / "kabi.conf", rules=bad, policy_default=False))
    assert p.mod.DISABLED
    assert p.decide("kmods9-testing", KMODS["kmod-ok"]) == (False, REASON)


# --------------------------------------------------------------------------- the hook


def _complete(build: dict, **kws: Any) -> None:
    """Koji's callback for a build that became COMPLETE (as import/CG/build tasks run it)."""
    kws = {"attribute": "state", "old": BUILDING, "new": COMPLETE, "info": build, **kws}
    koji.plugin.run_callbacks("postBuildStateChange", **kws)


def test_kernel_build_complete_schedules_one_kabi_check(world: World) -> None:
    p = world.plugin(channel="kabi-x", priority=40)
    assert p.mod.kabi_build_complete in koji.plugin.callbacks["postBuildStateChange"]
    k2 = world.kernel(2)
    world.data.mocks["get_build"].reset_mock()
    _complete(k2)
    world.make_task.assert_called_once_with("kabiCheck", [k2["id"], {}], channel="kabi-x",
                                            priority=40, owner=world.users["kojiadmin"]["id"])
    world.data.mocks["get_build"].assert_not_called()  # it reads nothing


def test_hook_uses_the_configured_owner_and_defaults(world: World) -> None:
    world.plugin(owner="kabi-bot")
    k2 = world.kernel(2)
    _complete(k2)
    world.make_task.assert_called_once_with("kabiCheck", [k2["id"], {}], channel="kabi",
                                            priority=25, owner="kabi-bot")


def test_hook_looks_up_the_owner_when_the_info_lacks_it(world: World) -> None:
    world.plugin()
    k2 = world.kernel(2)
    _complete({k: v for k, v in k2.items() if k != "owner_id"})
    world.make_task.assert_called_once_with("kabiCheck", [k2["id"], {}], channel="kabi",
                                            priority=25, owner=world.users["kojiadmin"]["id"])


@pytest.mark.parametrize("build,kws", [
    (KMODS["kmod-crc"], {}),
    (PLAIN, {}),
    (K2, {"attribute": "volume_id", "old": 0, "new": 1}),
    (K2, {"attribute": "owner_id", "old": 1, "new": 2}),
    (K2, {"new": koji.BUILD_STATES["FAILED"]}),
    (K2, {"new": koji.BUILD_STATES["CANCELED"]}),
    (K2, {"old": COMPLETE, "new": koji.BUILD_STATES["DELETED"]}),
    (K2, {"old": None, "new": BUILDING}),
])
def test_hook_ignores_other_packages_attributes_and_states(world: World, build: str,
                                                           kws: dict) -> None:
    world.plugin()
    world.kernel(2)
    _complete(world.build(build), **kws)
    world.make_task.assert_not_called()


def test_draft_kernel_is_checked_when_promoted(world: World,
                                               caplog: pytest.LogCaptureFixture) -> None:
    p = world.plugin()
    assert p.mod.kabi_build_promoted in koji.plugin.callbacks["postBuildPromote"]
    draft = world.add(world.rpms.k2, draft=True)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _complete(draft)
    world.make_task.assert_not_called()
    assert "skipped until promoted" in caplog.text
    promoted = dict(draft, draft=False)
    koji.plugin.run_callbacks("postBuildPromote", draft_release=draft["release"],
                              target_release=draft["release"], build=promoted,
                              user=world.users["kojiadmin"])
    world.make_task.assert_called_once_with("kabiCheck", [draft["id"], {}], channel="kabi",
                                            priority=25, owner=world.users["kojiadmin"]["id"])
    kmod = world.build(KMODS["kmod-ok"])
    koji.plugin.run_callbacks("postBuildPromote", draft_release="1", target_release="1",
                              build=kmod, user=world.users["alice"])
    assert world.make_task.call_count == 1


def test_check_drafts_checks_at_completion_and_not_again_when_promoted(world: World) -> None:
    world.plugin(check_drafts=True)
    draft = world.add(world.rpms.k2, draft=True)
    _complete(draft)
    koji.plugin.run_callbacks("postBuildPromote", draft_release=draft["release"],
                              target_release=draft["release"], build=dict(draft, draft=False),
                              user=world.users["kojiadmin"])
    world.make_task.assert_called_once_with("kabiCheck", [draft["id"], {}], channel="kabi",
                                            priority=25, owner=world.users["kojiadmin"]["id"])


def test_hook_errors_never_fail_the_kernel_build(world: World,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    world.plugin()
    k2 = world.kernel(2)
    world.make_task.side_effect = koji.GenericError("No such channel: kabi")
    with caplog.at_level(logging.INFO):
        _complete(k2)  # Koji would raise CallbackError here if the hook raised
        koji.plugin.run_callbacks("postBuildPromote", draft_release="x", target_release="y",
                                  build=k2, user=world.users["kojiadmin"])
    assert world.make_task.call_count == 2
    assert caplog.text.count(f"cannot schedule kabiCheck for build {k2['id']}") == 2
    assert "No such channel: kabi" in caplog.text
    world.data.mocks["get_build"].side_effect = koji.GenericError("No such build: 1")
    with caplog.at_level(logging.INFO):
        _complete({k: v for k, v in k2.items() if k != "owner_id"})  # owner lookup fails
        _complete(None)  # garbage in: still nothing raised
    assert world.make_task.call_count == 2
    assert caplog.text.count(f"cannot schedule kabiCheck for build {k2['id']}") == 3
    assert "Error running" not in caplog.text  # Koji's ignore_error net was never needed


# --------------------------------------------------------------------------- kabi.rebuild


def test_rebuild_needs_the_kabi_permission_or_admin(world: World) -> None:
    p = world.plugin()
    k2 = world.kernel(2)
    world.login(None)
    with pytest.raises(koji.ActionNotAllowed, match="must be logged in"):
        p.call("kabi.rebuild", K2)
    world.login("bob")
    with pytest.raises(koji.ActionNotAllowed, match=r"kabi\.rebuild needs the kabi permission"):
        p.call("kabi.rebuild", K2)
    world.make_task.assert_not_called()
    world.login("alice")
    p.call("kabi.rebuild", K2)
    world.make_task.assert_called_once_with("kabiCheck", [k2["id"], {"dry_run": False}],
                                            channel="kabi", priority=25)
    world.login("kojiadmin")
    p.call("kabi.rebuild", k2["id"])
    assert world.make_task.call_count == 2


def test_rebuild_permission_is_configurable(world: World) -> None:
    p = world.plugin(rebuild_permission="kabi-admin", channel="kabi-x", priority=7)
    k2 = world.kernel(2)
    world.login("alice")  # has "kabi", not "kabi-admin"
    with pytest.raises(koji.ActionNotAllowed, match="needs the kabi-admin permission"):
        p.call("kabi.rebuild", K2)
    world.login("carol")
    p.call("kabi.rebuild", K2)
    world.make_task.assert_called_once_with("kabiCheck", [k2["id"], {"dry_run": False}],
                                            channel="kabi-x", priority=7)


def test_rebuild_refuses_non_kernel_and_unfinished_builds(world: World) -> None:
    p = world.plugin()
    world.login("alice")
    with pytest.raises(koji.GenericError, match=f"{KMODS['kmod-ok']} is not a kernel build"):
        p.call("kabi.rebuild", KMODS["kmod-ok"])
    for state in ("BUILDING", "FAILED", "DELETED"):
        kernel = world.add(world.rpms.k2, state=state)
        with pytest.raises(koji.GenericError, match=f"{K2} is not COMPLETE"):
            p.call("kabi.rebuild", kernel["id"])
    with pytest.raises(koji.GenericError, match="No such build"):
        p.call("kabi.rebuild", "kernel-9-9.el9")
    world.make_task.assert_not_called()


def test_rebuild_task_options(world: World) -> None:
    p = world.plugin()
    k1, k2 = world.kernel(1), world.kernel(2)
    world.login("alice")
    p.call("kabi.rebuild", K2, dry_run=1, against=K1, tag=world.tag_id("el9-kernel"))
    world.make_task.assert_called_once_with(
        "kabiCheck", [k2["id"], {"dry_run": True, "against": k1["id"], "tag": "el9-kernel"}],
        channel="kabi", priority=25)
    with pytest.raises(koji.GenericError, match="No such build"):
        p.call("kabi.rebuild", K2, against="kernel-5.14.0-0.el9")
    with pytest.raises(koji.GenericError, match="No such tagInfo"):
        p.call("kabi.rebuild", K2, tag="el9-nope")
    assert world.make_task.call_count == 1


# --------------------------------------------------------------------------- the policy test


def test_policy_reference_is_the_kernel_tag_the_rules_pair_with_the_kmod_tag(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    p = world.plugin()
    kmods = sorted(KMODS.values())
    assert p.allowed("kmods9-testing", kmods) == set(kmods)  # kernel 1 in el9-kernel
    world.kernel(2)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert p.decide("kmods9-testing", KMODS["kmod-crc"]) == (False, REASON)
        assert p.decide("kmods9-testing", KMODS["kmod-gone"]) == (False, REASON)
    assert (f"kmod-crc-1.0-1.el9.x86_64 does not match {K2}: 0 missing, 2 CRC mismatches"
            in caplog.text)
    assert f"kmod-gone-2.0-3.el9.x86_64 does not match {K2}: 1 missing, 0 CRC" in caplog.text
    assert p.allowed("kmods9-testing", kmods) == {KMODS["kmod-ok"]}
    world.kernel(3)  # same kABI as kernel 2 for every kmod
    assert p.allowed("kmods9-testing", kmods) == {KMODS["kmod-ok"]}


def test_policy_kernel_in_the_destination_tag_comes_first(world: World) -> None:
    """A kernel visible in the destination tag (itself or by inheritance) beats the pair."""
    p = world.plugin()
    world.kernel(2)
    assert p.decide("kmods9-build", KMODS["kmod-crc"]) == (False, REASON)  # inherits kernel 2
    assert p.decide("kmods9-build", KMODS["kmod-ok"]) == (True, "")
    world.data.tag_build("kmods9-testing", world.kernel(1))
    assert p.decide("kmods9-testing", KMODS["kmod-crc"]) == (True, "")  # kernel 1 is there


def test_policy_argument_names_the_kernel_tag(world: World) -> None:
    p = world.plugin(policy_default=False)
    world.kernel(2)
    policy = gate("el9-kernel")
    assert p.allowed("kmods9-release", sorted(KMODS.values()), policy) == {KMODS["kmod-ok"]}
    # without the argument kmods9-release has no kernel and no pair: the default (false)
    assert p.decide("kmods9-release", KMODS["kmod-ok"]) == (False, REASON)


def test_policy_argument_names_a_kernel_package(world: World) -> None:
    """``kabi_compatible kernel`` looks for that package, not the rules' kernel_packages."""
    p = world.plugin(rules=dict(RULES, kernel_packages=["kernel-rt"]))
    world.kernel(2)
    assert p.decide("kmods9-testing", KMODS["kmod-crc"]) == (True, "")  # no kernel-rt: default
    assert p.decide("kmods9-testing", KMODS["kmod-crc"], gate("kernel")) == (False, REASON)
    assert p.decide("kmods9-testing", KMODS["kmod-ok"], gate("kernel")) == (True, "")


def test_policy_is_true_for_builds_that_are_not_kmods(world: World) -> None:
    p = world.plugin(policy_default=False)
    world.kernel(2)
    assert p.allowed("kmods9-testing", [K2, K1, PLAIN]) == {K2, K1, PLAIN}
    untag = {"tag": None, "fromtag": world.tag_id("kmods9-testing"),
             "build": world.build(KMODS["kmod-crc"])["id"], "operation": "untag"}
    context.policy = realkojihub.hub_policies(
        p.mod, untag=f"kabi_compatible :: allow\nall :: deny {REASON}\n")
    assert world.kojihub.check_policy("untag", untag) == (True, "")


def _no_kernel(world: World) -> tuple[str, str]:
    return "kmods9-release", KMODS["kmod-ok"]


def _unreadable_kmod(world: World) -> tuple[str, str]:
    world.kernel(2)
    kmod = world.build(KMODS["kmod-crc"])
    path = world.data.file_of(kmod, "kmod-crc", "x86_64")
    rf.truncate_copy(path, path, 300)  # ends inside the header
    return "kmods9-testing", kmod["nvr"]


def _missing_kmod_file(world: World) -> tuple[str, str]:
    world.kernel(2)
    kmod = world.build(KMODS["kmod-crc"])
    world.data.file_of(kmod, "kmod-crc", "x86_64").unlink()
    return "kmods9-testing", kmod["nvr"]


def _kernel_without_the_kmods_arch(world: World) -> tuple[str, str]:
    world.add([r for r in world.rpms.k2 if not r.name.endswith(".aarch64.rpm")], "el9-kernel")
    return "kmods9-testing", KMODS["kmod-ok"]  # x86_64 fine, aarch64 not checkable


def _kernel_tag_missing(world: World) -> tuple[str, str]:
    world.kernel(2)
    del world.data.tags[world.tag_id("el9-kernel")]
    return "kmods9-testing", KMODS["kmod-crc"]


@pytest.mark.parametrize("situation,logged", [
    (_no_kernel, "no kernel build (kernel) in this tag"),
    (_unreadable_kmod, "kmod-crc-1.0-1.el9.x86_64.rpm"),
    (_missing_kmod_file, "kmod-crc-1.0-1.el9.x86_64.rpm"),
    (_kernel_without_the_kmods_arch, "has no symbols for the arch of kmod-ok"),
    (_kernel_tag_missing, "No such tagInfo: 'el9-kernel'"),
])
@pytest.mark.parametrize("default", [True, False])
def test_policy_returns_the_default_when_it_cannot_decide(
        world: World, caplog: pytest.LogCaptureFixture, situation: Any, logged: str,
        default: bool) -> None:
    """No kernel, an unreadable or missing kmod RPM, a kernel lacking one of the kmod's
    arches, a paired kernel tag gone: the answer is policy_default, with the reason logged
    (kmod-crc is broken by kernel 2, so a decided answer would be a deny)."""
    p = world.plugin(policy_default=default)
    tag, nvr = situation(world)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert p.decide(tag, nvr) == ((True, "") if default else (False, REASON))
    assert logged in caplog.text


def test_policy_reads_at_most_policy_max_rpms(world: World,
                                              caplog: pytest.LogCaptureFixture) -> None:
    p = world.plugin(policy_max_rpms=1)
    world.kernel(2)
    assert p.decide("kmods9-testing", KMODS["kmod-gone"]) == (False, REASON)  # one RPM
    with caplog.at_level(logging.WARNING, logger=LOGGER):  # two RPMs: not checked, default
        assert p.decide("kmods9-testing", KMODS["kmod-crc"]) == (True, "")
    assert f"{KMODS['kmod-crc']} has 2 RPMs (> policy_max_rpms)" in caplog.text


def test_policy_never_raises(world: World, caplog: pytest.LogCaptureFixture) -> None:
    import psycopg2

    p = world.plugin(policy_default=False)
    world.kernel(2)
    test = p.mod.KabiCompatibleTest("kabi_compatible")
    kmod = world.build(KMODS["kmod-ok"])["id"]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert test.run({"tag": 999999, "build": kmod}) is False
        assert test.run({"tag": world.tag_id("kmods9-testing")}) is False  # no build
        world.data.mocks["get_build"].side_effect = psycopg2.OperationalError("server closed")
        assert test.run({"tag": world.tag_id("kmods9-testing"), "build": kmod}) is False
    assert "No such tagInfo: 999999" in caplog.text
    assert "kabi_compatible: failed; returning False" in caplog.text and "server closed" in \
        caplog.text


def test_policy_refusal_through_assert_policy(world: World) -> None:
    """What ``tagBuild`` does with the policy: ``assert_policy`` raises ActionNotAllowed."""
    p = world.plugin()
    world.kernel(2)
    context.policy = realkojihub.hub_policies(p.mod, tag=gate())
    for nvr, ok in ((KMODS["kmod-ok"], True), (KMODS["kmod-nvidia"], False)):
        data = {"tag": world.tag_id("kmods9-testing"), "build": world.build(nvr)["id"],
                "operation": "tag"}
        if ok:
            world.kojihub.assert_policy("tag", data)
        else:
            with pytest.raises(koji.ActionNotAllowed,
                               match=f"policy violation \\(tag\\): {REASON}"):
                world.kojihub.assert_policy("tag", data)


def test_policy_caches_headers_and_kernels_per_process(world: World) -> None:
    p = world.plugin()
    world.kernel(2)
    kmods = sorted(KMODS.values())
    assert p.allowed("kmods9-testing", kmods) == {KMODS["kmod-ok"]}
    for path in list(world.data.topdir.rglob("*.rpm")):
        path.unlink()  # every answer now comes from what the process already parsed
    assert p.allowed("kmods9-testing", kmods) == {KMODS["kmod-ok"]}


def test_policy_sees_kernel_rpms_imported_after_a_first_check(world: World) -> None:
    p = world.plugin(policy_default=False)
    first = [r for r in world.rpms.k2 if not r.name.endswith(".aarch64.rpm")]
    k2 = world.add(first, "el9-kernel")
    assert p.decide("kmods9-testing", KMODS["kmod-ok"]) == (False, REASON)  # aarch64 unknown
    world.data.add_rpms(k2, [r for r in world.rpms.k2 if r.name.endswith(".aarch64.rpm")])
    fresh = world.plugin(policy_default=False)  # a hub process started now
    assert fresh.decide("kmods9-testing", KMODS["kmod-ok"]) == (True, "")
    assert p.decide("kmods9-testing", KMODS["kmod-ok"]) == (True, "")  # the running one


def test_policy_denies_a_kmod_broken_on_one_arch_when_another_cannot_be_checked(
        world: World) -> None:
    p = world.plugin()  # policy_default = true
    world.add([r for r in world.rpms.k2 if not r.name.endswith(".aarch64.rpm")], "el9-kernel")
    check = p.call("kabi.check", KMODS["kmod-crc"], tag="kmods9-testing")
    assert _x86(check)["compatible"] is False  # x86_64: two CRCs differ, known for sure
    assert p.decide("kmods9-testing", KMODS["kmod-crc"]) == (False, REASON)


# --------------------------------------------------------------------------- read-only calls


def _x86(result: dict) -> dict:
    (row,) = [v for v in result["verdicts"] if v["key"] == "x86_64"]
    return row


def test_check_kmod_against_the_kernel_of_a_tag(world: World) -> None:
    p = world.plugin()
    before = p.call("kabi.check", KMODS["kmod-crc"], tag="kmods9-testing")
    assert (before["kernel"], before["compatible"]) == (K1, True)
    world.kernel(2)
    after = p.call("kabi.check", KMODS["kmod-crc"], tag="kmods9-testing")
    assert (after["kind"], after["kernel"], after["compatible"]) == ("kmod-check", K2, False)
    assert {v["key"]: v["compatible"] for v in after["verdicts"]} == {
        "x86_64": False, "aarch64": True}
    x86 = _x86(after)
    assert x86["missing"] == []
    mismatched = {m["symbol"]: m for m in x86["mismatched"]}
    assert set(mismatched) == set(world.rpms.changed[:2])
    # the CRCs are the ones rpm -qp prints for the kmod and for the new kernel
    core = next(r for r in world.rpms.k2 if r.name == f"kernel-core-{K2[7:]}.x86_64.rpm")
    kmod = next(r for r in world.rpms.kmods["kmod-crc"] if r.name.endswith(".x86_64.rpm"))
    provided = crcs(oracle.rpm_query_deps(core, "provides"))
    required = crcs(oracle.rpm_query_deps(kmod, "requires"))
    for sym, m in mismatched.items():
        assert int(m["required"], 16) == required[sym] != provided[sym] == int(m["provided"], 16)
    # kernel 2 ships its stablelist, which has the first changed symbol on it
    assert mismatched[world.rpms.changed[0]]["stable"] is True
    assert mismatched[world.rpms.changed[1]]["stable"] is False


def test_check_kmod_against_a_named_kernel_and_arches(world: World) -> None:
    p = world.plugin()
    world.kernel(2)
    assert p.call("kabi.check", KMODS["kmod-crc"], kernel=K1)["compatible"] is True
    aarch = p.call("kabi.check", KMODS["kmod-crc"], kernel=K2, arches="aarch64")
    assert aarch["compatible"] is True and [v["key"] for v in aarch["verdicts"]] == ["aarch64"]
    gone = p.call("kabi.check", world.build(KMODS["kmod-gone"])["id"],
                  kernel=world.kernel(2)["id"])
    assert [m["symbol"] for m in _x86(gone)["missing"]] == world.rpms.removed[:1]
    assert _x86(gone)["mismatched"] == []
    ok = p.call("kabi.check", KMODS["kmod-ok"], kernel=K2)
    assert ok["compatible"] is True and len(ok["verdicts"]) == 2
    with pytest.raises(koji.GenericError, match=r"no kmod package .* for s390x"):
        p.call("kabi.check", KMODS["kmod-ok"], kernel=K2, arches=["s390x"])


def test_check_kernel_build_finds_its_previous_kernel_and_the_broken_kmods(
        world: World) -> None:
    p = world.plugin()
    world.kernel(2)
    result = p.call("kabi.check", K2)
    assert (result["kind"], result["previous"], result["stablelist"]) == ("kernel-check", K1,
                                                                          True)
    assert {v["nvr"] for v in result["verdicts"] if not v["compatible"]} == BROKEN_BY_K2
    (x86,) = [d for d in result["delta"]["deltas"] if d["key"] == "x86_64"]
    assert {c["symbol"] for c in x86["changed"]} >= set(world.rpms.changed)
    assert {r["symbol"] for r in x86["removed"]} == set(world.rpms.removed)
    world.kernel(3)
    k3 = p.call("kabi.check", K3, kernel=K2)
    assert k3["previous"] == K2 and k3["stablelist"] is False
    assert {v["nvr"] for v in k3["verdicts"] if not v["compatible"]} == BROKEN_BY_K2
    assert {d["key"]: len(d["changed"]) for d in k3["delta"]["deltas"]} == {"x86_64": 1,
                                                                           "aarch64": 0}


def test_check_argument_errors(world: World) -> None:
    p = world.plugin()
    with pytest.raises(koji.GenericError, match="kmod-nope-1-1: no such build"):
        p.call("kabi.check", "kmod-nope-1-1")
    with pytest.raises(koji.GenericError, match="give kernel= or tag= for a kmod build"):
        p.call("kabi.check", KMODS["kmod-ok"])
    with pytest.raises(koji.GenericError, match=f"{PLAIN}: not a kmod build"):
        p.call("kabi.check", PLAIN)
    with pytest.raises(koji.GenericError, match=f"{PLAIN}: not a kmod build"):
        p.call("kabi.check", PLAIN, kernel=K1)
    with pytest.raises(koji.GenericError, match="kmods9-release: no kernel build"):
        p.call("kabi.check", KMODS["kmod-ok"], tag="kmods9-release")
    # a kernel in a tag the rules do not watch: an error, not an empty answer
    with pytest.raises(koji.GenericError, match="el9-other: not a watched kernel tag"):
        p.call("kabi.check", K1, tag="el9-other")


def test_delta_of_two_kernels(world: World) -> None:
    p = world.plugin()
    world.kernel(2)
    world.kernel(3)
    d = p.call("kabi.delta", K1, K2, arches=["x86_64"])
    assert (d["old"], d["new"]) == (K1, K2)
    (x86,) = d["deltas"]
    assert x86["key"] == "x86_64" and x86["breaking"] is True
    assert {c["symbol"] for c in x86["changed"]} >= set(world.rpms.changed)
    assert {r["symbol"] for r in x86["removed"]} == set(world.rpms.removed)
    assert x86["new_count"] - x86["old_count"] == len(x86["added"]) - len(x86["removed"])
    d23 = {row["key"]: row for row in p.call("kabi.delta", K2, K3)["deltas"]}
    assert len(d23["x86_64"]["changed"]) == 1 and d23["x86_64"]["breaking"] is True
    assert d23["aarch64"]["changed"] == [] and d23["aarch64"]["breaking"] is False
    assert [r["key"] for r in p.call("kabi.delta", K2, K3, arches="aarch64")["deltas"]] == [
        "aarch64"]
    with pytest.raises(koji.GenericError, match=f"{KMODS['kmod-ok']}: not a kernel build"):
        p.call("kabi.delta", K1, KMODS["kmod-ok"])
    with pytest.raises(koji.GenericError, match="no such build"):
        p.call("kabi.delta", "kernel-0-0", K2)


def test_affected_kmods_of_a_kernel(world: World) -> None:
    p = world.plugin()
    world.kernel(2)
    world.kernel(3)
    result = p.call("kabi.affected", K2)  # the rules' kmod tags for this kernel
    assert result["previous"] is None and result["delta"] is None
    assert {v["nvr"] for v in result["verdicts"] if not v["compatible"]} == BROKEN_BY_K2
    assert {v["nvr"] for v in result["verdicts"]} == set(KMODS.values())  # not the plain one
    against = p.call("kabi.affected", K3, against=K2)
    assert {d["key"]: len(d["changed"]) for d in against["delta"]["deltas"]} == {
        "x86_64": 1, "aarch64": 0}
    assert {v["nvr"] for v in against["verdicts"] if not v["compatible"]} == BROKEN_BY_K2
    arm = p.call("kabi.affected", K2, tags=["kmods9-testing"], arches=["aarch64"])
    assert {(v["nvr"], v["key"]) for v in arm["verdicts"]} == {
        (KMODS["kmod-ok"], "aarch64"), (KMODS["kmod-crc"], "aarch64")}
    assert arm["compatible"] is True
    empty = p.call("kabi.affected", K2, tags="kmods9-release")
    assert empty["verdicts"] == [] and empty["compatible"] is True


def test_calls_over_whole_tags_are_bounded_and_say_how_to_run_them_as_a_task(
        world: World) -> None:
    """kabi.check of a kernel and kabi.affected check every kmod build of the tags in a hub
    request thread: over call_max_kmod_builds that is a task's work."""
    world.kernel(2)
    in_tag = len(world.kojihub.readTaggedBuilds(world.tag_id("kmods9-testing"), latest=True))
    assert in_tag == len(KMODS) + 1  # and the plain package
    p = world.plugin(call_max_kmod_builds=in_tag - 1)
    why = (rf"{in_tag} kmod builds in kmods9-testing: over call_max_kmod_builds={in_tag - 1} "
           rf"for a hub call; check them in a task: koji kabi-rebuild --dry-run {K2}")
    with pytest.raises(koji.GenericError, match=why):
        p.call("kabi.check", K2)
    with pytest.raises(koji.GenericError, match=why):
        p.call("kabi.affected", K2)
    # a kmod build is one build, whatever the limit
    assert p.call("kabi.check", KMODS["kmod-crc"], kernel=K2)["kind"] == "kmod-check"
    wide = world.plugin(call_max_kmod_builds=in_tag)
    assert {v["nvr"] for v in wide.call("kabi.check", K2)["verdicts"]} == set(KMODS.values())
