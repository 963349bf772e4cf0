"""Helpers shared by the Koji-facing tests: plugin loading with temp configs, a world."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import yaml

from tests.hubsim import install_standin

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
