"""Plugin settings from Koji-style INI files (read with ``koji.read_config_files``).

Validated strictly: an unknown option or a bad value is one clear error naming the file,
so a typo never silently turns a feature off.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from koji_kabi.errors import KabiError

_NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]*"


def _number(default: Any, low: float, high: float = float("inf")) -> Any:
    """A numeric setting and its range, checked when the file is read."""
    return field(default=default, metadata={"range": (low, high)})


def _text(default: Any, form: str, what: str) -> Any:
    """A string setting and the form it must have (a regular expression)."""
    return field(default=default, metadata={"form": (form, what)})


def _check(cls: Any, values: dict, section: str, source: str) -> None:
    for f in fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        if "range" in f.metadata:
            low, high = f.metadata["range"]
            if not low <= value <= high:  # also false for nan
                bound = f"at least {low}" if high == float("inf") else f"{low} to {high}"
                raise KabiError(source, f"[{section}] {f.name}: must be {bound}, got {value}")
        if "form" in f.metadata:
            form, what = f.metadata["form"]
            if not re.fullmatch(form, value):
                raise KabiError(source, f"[{section}] {f.name}: must be {what}, got "
                                        f"{value!r}")


def _convert(parser: configparser.RawConfigParser, section: str, name: str, kind: Any,
             source: str) -> Any:
    try:
        if kind is bool:
            return parser.getboolean(section, name)
        if kind is int:
            return parser.getint(section, name)
        if kind is float:
            return parser.getfloat(section, name)
    except ValueError as exc:
        raise KabiError(source, f"[{section}] {name}: {exc}") from None
    return parser.get(section, name)


def _from_section(cls: Any, parser: configparser.RawConfigParser, section: str,
                  source: str) -> Any:
    if not parser.has_section(section):
        raise KabiError(source, f"missing [{section}] section")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for name in parser.options(section):
        if name not in known:
            raise KabiError(source, f"[{section}] {name}: unknown option")
        kind = {"bool": bool, "int": int, "float": float}.get(str(known[name].type), str)
        values[name] = _convert(parser, section, name, kind, source)
    missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING]
    if missing:
        raise KabiError(source, f"[{section}] {missing[0]}: required")
    _check(cls, values, section, source)
    try:
        return cls(**values)
    except ValueError as exc:  # a value the dataclass itself refuses
        raise KabiError(source, f"[{section}] {exc}") from None


@dataclass(frozen=True)
class HubSettings:
    """``/etc/koji-hub/plugins/kabi.conf``, section ``[kabi]``."""

    rules: str = _text(MISSING, r"/.+", "an absolute path")
    channel: str = _text("kabi", _NAME, "a channel name")
    priority: int = _number(25, 0, 1000)
    # user owning kabiCheck tasks; empty: the kernel build's owner
    owner: str = _text("", f"(|{_NAME})", "a user name or empty")
    check_drafts: bool = False
    rebuild_permission: str = _text("kabi", _NAME, "a permission name")
    policy_default: bool = True  # kabi_compatible when it cannot decide
    policy_max_rpms: int = _number(64, 1)  # bounded work per policy call
    cache_entries: int = _number(4096, 1)


@dataclass(frozen=True)
class BuilderSettings:
    """``/etc/kojid/plugins/kabi.conf``, section ``[kabi]``."""

    # empty: the hub's rules (kabi.rules); a path: this file instead
    rules: str = _text("", r"(|/.+)", "an absolute path or empty")
    cache_dir: str = _text("/var/cache/koji-kabi", r"/.+", "an absolute path")
    cache_max_mb: int = _number(512, 1)
    settle_seconds: int = _number(60, 0)
    settle_timeout: int = _number(3600, 0)
    tag_wait: int = _number(900, 0)
    poll: float = _number(10.0, 0.1, 3600)
    fanout_min_kmods: int = _number(300, 1)
    batch: int = _number(100, 1, 1000)
    # topurl: ranged reads of RPM headers; hub: getRPMDeps
    deps_source: str = _text("topurl", "hub|topurl", "hub or topurl")


def read_settings(cls: Any, parser: configparser.RawConfigParser, source: str,
                  section: str = "kabi") -> Any:
    return _from_section(cls, parser, section, source)


def load_settings(cls: Any, path: str, section: str = "kabi") -> Any:
    """Read one plugin config file with Koji's reader; errors name the file."""
    import koji

    try:
        parser = koji.read_config_files([(path, True)], raw=True)
    except (koji.ConfigurationError, configparser.Error, OSError) as exc:
        raise KabiError(path, f"cannot read plugin configuration ({exc})") from None
    return read_settings(cls, parser, path, section)
