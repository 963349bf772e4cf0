"""Helpers shared by the Koji-facing tests: plugin loading with temp configs, and a Koji
world (kernels, kmods of every kind, tags, rules) in the hub simulator."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import koji
import yaml

from tests.hubsim import HubServer, State, install_standin, kojid_options, run_task_handler
from tests.support import rpmfactory as rf

SOURCE = "git+https://src.example/rpms/{name}.git#{sha}"


def source_for(name: str) -> str:
    return SOURCE.format(name=name, sha=(name.encode().hex() * 40)[:40])


def write_rules(path: Path, **overrides: Any) -> Path:
    rules = {
        "kernel_packages": ["kernel"],
        "watch": [{"kernel_tag": "el9-kernel", "kmod_tags": ["kmods9-testing"],
                   "target": "kmods9-el9"}],
        "rebuild": {"mode": "scratch", "priority": 33},
        "packages": {"kmod-optout": {"opt_out": True}, "kmod-nvidia": {"mode": "build"}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(rules.get(key), dict):
            rules[key] = {**rules[key], **value}
        else:
            rules[key] = value
    path.write_text(yaml.safe_dump(rules))
    return path


def write_ini(path: Path, **settings: Any) -> Path:
    lines = ["[kabi]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                          for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def load_hub_plugin(state: Any, config: Optional[Path]) -> ModuleType:
    """Import koji_kabi_hub.kabi_hub fresh (it reads its config at import) on the stand-in."""
    install_standin(state)
    os.environ["KOJI_KABI_HUB_CONFIG"] = str(config) if config else "/nonexistent/kabi.conf"
    sys.modules.pop("koji_kabi_hub.kabi_hub", None)
    return importlib.import_module("koji_kabi_hub.kabi_hub")


def load_builder_plugin(config: Path) -> ModuleType:
    os.environ["KOJI_KABI_BUILDER_CONFIG"] = str(config)
    sys.modules.pop("koji_kabi_builder.kabi_builder", None)
    return importlib.import_module("koji_kabi_builder.kabi_builder")


ARCHES = ("x86_64", "aarch64")


@dataclass
class Rpms:
    k1: list[Path]
    k2: list[Path]
    k3: list[Path]
    kmods: dict[str, list[Path]]
    changed: list[str]  # x86_64 symbols whose CRC changed 1 -> 2
    removed: list[str]
    plain: list[Path]


def build_pipeline_rpms(out: Path, cache: Path) -> Rpms:
    """Two kernels and a third with the same kABI for every kmod; kmods of each kind."""
    old = rf.per_arch_tables(rf.random_symbols(400, seed=11), ARCHES, seed=12)
    churn = {a: rf.churn(old[a], changed_frac=0.1, removed=5, added=5, seed=13) for a in ARCHES}
    new = {a: churn[a].symbols for a in ARCHES}
    consumed_nowhere = sorted(set(new["x86_64"]) - set(churn["x86_64"].changed))[-1]
    newer = {a: dict(new[a]) for a in ARCHES}  # kernel 3: one unconsumed symbol changes
    newer["x86_64"][consumed_nowhere] ^= 0x1
    x = churn["x86_64"]
    stable = sorted(set(old["x86_64"]) - x.changed - x.removed - {consumed_nowhere})
    stable_a = sorted(set(old["aarch64"]) - churn["aarch64"].changed
                      - churn["aarch64"].removed)
    changed, removed = sorted(x.changed), sorted(x.removed)

    def req(names: list[str], arch: str = "x86_64") -> dict:
        return {s: old[arch][s] for s in names}

    kmod_defs = {
        "kmod-ok": rf.kmod_build("kmod-ok", "1.0", "1.el9", per_arch={
            "x86_64": req(stable[:30]), "aarch64": req(stable_a[:30], "aarch64")}),
        "kmod-crc": rf.kmod_build("kmod-crc", "1.0", "1.el9", per_arch={
            "x86_64": req(stable[30:40] + changed[:2]),
            "aarch64": req(stable_a[30:40], "aarch64")}),
        "kmod-gone": rf.kmod_build("kmod-gone", "2.0", "3.el9", "x86_64",
                                   req(stable[40:50] + removed[:1])),
        "kmod-optout": rf.kmod_build("kmod-optout", "1.0", "1.el9", "x86_64",
                                     req(stable[50:55] + changed[2:3])),
        "kmod-nosrc": rf.kmod_build("kmod-nosrc", "1.0", "1.el9", "x86_64",
                                    req(stable[55:60] + changed[3:4])),
        "kmod-nvidia": rf.kmod_build("kmod-nvidia", "550.1", "1.el9", "x86_64",
                                     req(stable[60:70] + changed[4:6])),
    }
    return Rpms(
        rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "1.el9", ARCHES, old,
                                      split=("core", "modules")), out / "k1", cache_dir=cache),
        rf.build_rpms(rf.kernel_build(
            "kernel", "5.14.0", "2.el9", ARCHES, new, split=("core", "modules"),
            # kernel 2 ships its kABI stablelist: the first changed symbol is on it
            extra_packages=[rf.stablelist_package({a: [changed[0], *stable[:20]]
                                                   for a in ARCHES})]),
            out / "k2", cache_dir=cache),
        rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "3.el9", ARCHES, newer,
                                      split=("core", "modules")), out / "k3", cache_dir=cache),
        {name: rf.build_rpms(b, out / name, cache_dir=cache) for name, b in kmod_defs.items()},
        changed, removed,
        rf.build_rpms(rf.plain_build("bash-completion-extra"), out / "plain", cache_dir=cache),
    )


@dataclass
class Env:
    state: State
    hub: HubServer
    hubmod: object
    builder: object
    tmp: Path
    host: koji.ClientSession

    def run(self, task_id: int) -> dict:
        opts = kojid_options(str(self.tmp / "kojid"), topdir=self.state.topdir,
                             server=self.hub.url)
        return run_task_handler(self.builder.KabiCheckTask, task_id, self.host, opts)

    def kabi_tasks(self, build: dict | None = None) -> list[dict]:
        """kabiCheck tasks (of one kernel build)."""
        tasks = self.state.tasks("kabiCheck")
        if build is None:
            return tasks
        return [t for t in tasks
                if self.state.task_info(t["id"], request=True)["request"][0] == build["id"]]

    def builds_submitted(self) -> list[dict]:
        out = []
        for parent in self.kabi_tasks():
            out += [c for c in self.state.task_children(parent["id"], request=True)
                    if c["method"] == "build"]
        return out


def make_env(rpms: Rpms, tmp: Path, **rule_overrides) -> Env:
    tmp.mkdir(parents=True, exist_ok=True)
    state = State()
    state.add_user("alice", perms=["kabi"])
    state.add_host("builder1", channels=("default", "kabi"))
    state.add_tag("el9-kernel")
    state.add_tag("kmods9-build", parents=["el9-kernel"])
    state.add_tag("kmods9-testing")
    state.add_target("kmods9-el9", "kmods9-build", "kmods9-testing")
    rules = write_rules(tmp / "rules.yaml", **rule_overrides)
    hub_conf = write_ini(tmp / "hub.conf", rules=rules, claims_dir=tmp / "claims")
    builder_conf = write_ini(tmp / "builder.conf", rules=rules, cache_dir=tmp / "cache",
                             settle_seconds=0, poll=0.01, tag_wait=0)
    hubmod = load_hub_plugin(state, hub_conf)
    assert hubmod.DISABLED is None, hubmod.DISABLED
    hub = HubServer(state).start()
    hub.load_plugin(hubmod)
    state.import_rpms(rpms.k1, owner="kojiadmin", task_id=True, tag="el9-kernel")
    for name, paths in rpms.kmods.items():
        # kmod-crc is a CG import: its source is on the build only (no build task)
        state.import_rpms(paths, owner="alice", tag="kmods9-testing",
                          task_id=None if name == "kmod-crc" else True,
                          source=None if name == "kmod-nosrc" else source_for(name))
    return Env(state, hub, hubmod, load_builder_plugin(builder_conf), tmp,
               hub.client("builder1"))


def close_env(e: Env) -> None:
    e.hub.unload_plugins()
    e.hub.stop()
    e.state.cleanup()


def import_kernel(env: Env, paths: list[Path]) -> dict:
    (build,) = env.state.import_rpms(paths, owner="kojiadmin", task_id=True, tag="el9-kernel")
    return build


