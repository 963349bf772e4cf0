"""Plugin settings from Koji-style INI files (read with ``koji.read_config_files``).

Validated strictly: an unknown option or a bad value is one clear error naming the file,
so a typo never silently turns a feature off.
"""

from __future__ import annotations

import configparser
from dataclasses import MISSING, dataclass, fields
from typing import Any

from koji_kabi.errors import KabiError


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
    try:
        return cls(**values)
    except ValueError as exc:  # a value the dataclass itself refuses
        raise KabiError(source, f"[{section}] {exc}") from None


@dataclass(frozen=True)
class HubSettings:
    """``/etc/koji-hub/plugins/kabi.conf``, section ``[kabi]``."""

    rules: str
    channel: str = "kabi"
    priority: int = 25
    owner: str = ""  # user owning kabiCheck tasks; empty: the kernel build's owner
    check_drafts: bool = False
    rebuild_permission: str = "kabi"
    policy_default: bool = True  # kabi_compatible when it cannot decide
    policy_max_rpms: int = 64  # bounded work per policy call
    cache_entries: int = 4096
    claims_dir: str = ""  # empty: <topdir>/work/kabi/claims


@dataclass(frozen=True)
class BuilderSettings:
    """``/etc/kojid/plugins/kabi.conf``, section ``[kabi]``."""

    rules: str
    cache_dir: str = "/var/cache/koji-kabi"
    cache_max_mb: int = 512
    settle_seconds: int = 60
    settle_timeout: int = 3600
    tag_wait: int = 900
    poll: float = 10.0
    fanout_min_kmods: int = 300
    batch: int = 100
    deps_source: str = "topurl"  # topurl: ranged reads of RPM headers; hub: getRPMDeps

    def __post_init__(self) -> None:
        if self.deps_source not in ("hub", "topurl"):
            raise ValueError(f"deps_source: must be hub or topurl, not {self.deps_source!r}")


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
