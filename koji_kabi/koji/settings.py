"""Plugin settings from Koji-style INI files (read with ``koji.read_config_files``), and
the options of one ``kabiCheck`` (:class:`CheckOptions`: this builder's settings, then the
task's overrides).

Validated strictly: an unknown option or a bad value is one clear error naming the file
(or the task's options), so a typo never silently turns a feature off.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Callable, Optional, Union

from koji_kabi.errors import KabiError
from koji_kabi.koji.views import BATCH

_NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]*"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_build_ref(value: Any) -> bool:
    return _is_int(value) or isinstance(value, str)


def _are_names(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def _number(default: Any, low: float, high: float = float("inf")) -> Any:
    """A numeric setting and its range, checked when the file is read."""
    kind = (_is_number, "a number") if isinstance(default, float) else (_is_int, "an integer")
    return field(default=default, metadata={"range": (low, high), "kind": kind})


def _text(default: Any, form: str, what: str) -> Any:
    """A string setting and the form it must have (a regular expression)."""
    return field(default=default, metadata={"form": (form, what)})


def _task(test: Callable[[Any], bool], what: str) -> Any:
    """An option only a task sets (never a settings file); None: not given."""
    return field(default=None, metadata={"task": True, "kind": (test, what)})


def _problem(f: Any, value: Any) -> Optional[str]:
    """What is wrong with a setting's value (its kind, range or form), or None."""
    if "kind" in f.metadata:
        test, what = f.metadata["kind"]
        if not (value is None and "task" in f.metadata) and not test(value):
            return f"must be {what}, got {value!r}"
    if "range" in f.metadata:
        low, high = f.metadata["range"]
        if not low <= value <= high:  # also false for nan
            bound = f"at least {low}" if high == float("inf") else f"{low} to {high}"
            return f"must be {bound}, got {value}"
    if "form" in f.metadata:
        form, what = f.metadata["form"]
        if not re.fullmatch(form, value):
            return f"must be {what}, got {value!r}"
    return None


def _check(cls: Any, values: dict, section: str, source: str) -> None:
    for f in fields(cls):
        if f.name in values:
            problem = _problem(f, values[f.name])
            if problem:
                raise KabiError(source, f"[{section}] {f.name}: {problem}")


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
    """``cls`` from one section.  A field with ``options`` metadata (a dataclass) is made
    from the section's options named as that class's fields (all but the per-task ones)."""
    if not parser.has_section(section):
        raise KabiError(source, f"missing [{section}] section")
    nested = {f.name: f.metadata["options"] for f in fields(cls) if "options" in f.metadata}
    known = {f.name: (f, None) for f in fields(cls) if f.name not in nested}
    for attr, inner in nested.items():
        known.update({g.name: (g, attr) for g in fields(inner) if "task" not in g.metadata})
    values: dict = {}
    parts: dict = {attr: {} for attr in nested}
    for name in parser.options(section):
        if name not in known:
            raise KabiError(source, f"[{section}] {name}: unknown option")
        f, attr = known[name]
        kind = {"bool": bool, "int": int, "float": float}.get(str(f.type), str)
        value = _convert(parser, section, name, kind, source)
        (values if attr is None else parts[attr])[name] = value
    missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING
               and f.default_factory is MISSING]
    if missing:
        raise KabiError(source, f"[{section}] {missing[0]}: required")
    _check(cls, values, section, source)
    try:  # a value a dataclass itself refuses (CheckOptions checks its own)
        values.update({attr: nested[attr](**part) for attr, part in parts.items()})
        return cls(**values)
    except ValueError as exc:
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
    # kmod builds one kabi.check/kabi.affected call may check in a hub request thread;
    # more is a task's work (koji kabi-rebuild --dry-run)
    call_max_kmod_builds: int = _number(300, 0)
    cache_entries: int = _number(4096, 1)


TASK_OPTIONS = "kabiCheck options"  # the source named by a bad per-task override


@dataclass(frozen=True)
class CheckOptions:
    """Every option of one ``kabiCheck``, each with its one default here.

    The builder's ``[kabi]`` section may change the defaults of the tunables (all but the
    per-task ones: they are :attr:`BuilderSettings.check`); a task's options dict (from
    ``koji kabi-rebuild`` or the hub hook) overrides any option by name
    (:meth:`from_settings`).  Frozen and checked when made: a new object for every change.
    """

    # previous kernel build (id or NVR); default from the rules
    against: Union[int, str, None] = _task(_is_build_ref, "a build id or NVR")
    tag: Optional[str] = _task(_is_str, "a tag name")  # the watched kernel tag to use
    dry_run: Optional[bool] = _task(_is_bool, "true or false")  # overrides the rules
    arches: Optional[tuple[str, ...]] = _task(_are_names, "a list of arch names")
    # imported builds: RPM set unchanged this long = complete
    settle_seconds: int = _number(60, 0)
    settle_timeout: int = _number(3600, 0)
    # several watch entries for one kernel package: wait this long for the build's tag
    tag_wait: int = _number(900, 0)
    poll: float = _number(10.0, 0.1, 3600)
    fanout_min_kmods: int = _number(300, 1)  # fan out per arch at this many kmod builds
    batch: int = _number(BATCH, 1, 1000)  # hub calls per multicall (the task's SessionView)

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = _problem(f, getattr(self, f.name))
            if problem:
                raise ValueError(f"{f.name}: {problem}")

    @classmethod
    def from_settings(cls, settings: BuilderSettings,
                      overrides: Optional[Mapping[str, Any]] = None) -> CheckOptions:
        """The options of one task: the settings' defaults, then the task's overrides.

        An unknown name or a bad value is one :class:`KabiError` line; ``settings`` is
        unchanged (the answer is a new object).
        """
        if overrides is None:
            return settings.check
        if not isinstance(overrides, Mapping):
            raise KabiError(TASK_OPTIONS, f"must be a dict of options, got {overrides!r}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(str(name) for name in overrides if name not in names)
        if unknown:
            raise KabiError(TASK_OPTIONS, f"unknown option {unknown[0]!r}")
        values = dict(overrides)
        if isinstance(values.get("arches"), list):  # XML-RPC has no tuples
            values["arches"] = tuple(values["arches"])
        try:
            return replace(settings.check, **values)
        except ValueError as exc:
            raise KabiError(TASK_OPTIONS, str(exc)) from None


@dataclass(frozen=True)
class BuilderSettings:
    """``/etc/kojid/plugins/kabi.conf``, section ``[kabi]``.

    Its ``settle_seconds``, ``settle_timeout``, ``tag_wait``, ``poll``,
    ``fanout_min_kmods`` and ``batch`` are this builder's defaults for every check:
    :attr:`check`, declared (and checked) by :class:`CheckOptions`.
    """

    # empty: the hub's rules (kabi.rules); a path: this file instead
    rules: str = _text("", r"(|/.+)", "an absolute path or empty")
    cache_dir: str = _text("/var/cache/koji-kabi", r"/.+", "an absolute path")
    cache_max_mb: int = _number(512, 1)
    # topurl: ranged reads of RPM headers; hub: getRPMDeps
    deps_source: str = _text("topurl", "hub|topurl", "hub or topurl")
    check: CheckOptions = field(default_factory=CheckOptions,
                                metadata={"options": CheckOptions})


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
