"""The rules file (YAML): which kernels to watch, which kmod tags go with them, how to rebuild.

Validated strictly when loaded, so a typo is one clear error at start-up instead of a
silently ignored setting at 3 a.m.  See ``conf/rules.yaml`` for a commented example.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from koji_kabi.errors import KabiError

MODES = ("scratch", "draft", "build")


@dataclass(frozen=True)
class PackageRule:
    """Per-kmod-package overrides."""

    mode: Optional[str] = None
    target: Optional[str] = None
    opt_out: bool = False


@dataclass(frozen=True)
class Watch:
    """One watched kernel tag and the kmod tags checked against its kernels."""

    kernel_tag: str
    kmod_tags: tuple[str, ...]
    target: Optional[str]
    packages: tuple[str, ...]
    mode: Optional[str] = None


@dataclass(frozen=True)
class Limits:
    max_per_task: int = 50
    max_in_flight: int = 200
    priority: int = 30
    hold_back_free_tasks: int = 0  # 0: never hold back
    hold_back_seconds: int = 600


@dataclass(frozen=True)
class Rules:
    kernel_packages: tuple[str, ...] = ("kernel", "kernel-rt")
    watches: tuple[Watch, ...] = ()
    mode: str = "scratch"
    dry_run: bool = False
    limits: Limits = field(default_factory=Limits)
    packages: Mapping[str, PackageRule] = field(default_factory=dict)
    source: str = ""

    def watches_for(self, package: str) -> tuple[Watch, ...]:
        return tuple(w for w in self.watches if package in w.packages)

    def watch_for_tag(self, kernel_tag: str) -> Optional[Watch]:
        return next((w for w in self.watches if w.kernel_tag == kernel_tag), None)

    def watch_for_kmod_tag(self, kmod_tag: str) -> Optional[Watch]:
        return next((w for w in self.watches if kmod_tag in w.kmod_tags), None)

    def mode_for(self, package: str, watch: Optional[Watch] = None) -> str:
        rule = self.packages.get(package)
        if rule and rule.mode:
            return rule.mode
        return (watch.mode if watch and watch.mode else None) or self.mode

    def target_for(self, package: str, watch: Optional[Watch] = None) -> Optional[str]:
        rule = self.packages.get(package)
        if rule and rule.target:
            return rule.target
        return watch.target if watch else None

    def opted_out(self, package: str) -> bool:
        rule = self.packages.get(package)
        return bool(rule and rule.opt_out)


class _Reader:
    """Typed access to one YAML mapping that remembers where it is, for error lines."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise KabiError(source, f"{where or 'top level'}: expected a mapping")
        self.data, self.where, self.source = data, where, source
        self.seen: set[str] = set()

    def _err(self, key: str, problem: str) -> KabiError:
        path = f"{self.where}.{key}" if self.where else key
        return KabiError(self.source, f"{path}: {problem}")

    def get(self, key: str, kind: type, default: Any) -> Any:
        self.seen.add(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._err(key, f"expected an integer, got {value!r}")
        if kind is bool and not isinstance(value, bool):
            raise self._err(key, f"expected true or false, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise self._err(key, f"expected a string, got {value!r}")
        if kind is list:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise self._err(key, "expected a list of names")
            return tuple(value)
        if kind is dict and not isinstance(value, dict):
            raise self._err(key, "expected a mapping")
        return value

    def mode(self, key: str) -> Optional[str]:
        value = self.get(key, str, None)
        if value is not None and value not in MODES:
            raise self._err(key, f"must be one of {', '.join(MODES)}, got {value!r}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self._err(unknown[0], "unknown setting")


def parse_rules(data: Any, source: str) -> Rules:
    top = _Reader(data, "", source)
    kernel_packages = top.get("kernel_packages", list, ("kernel", "kernel-rt"))
    rebuild = _Reader(top.get("rebuild", dict, {}), "rebuild", source)
    mode = rebuild.mode("mode") or "scratch"
    dry_run = rebuild.get("dry_run", bool, False)
    limits = Limits(
        max_per_task=rebuild.get("max_per_task", int, Limits.max_per_task),
        max_in_flight=rebuild.get("max_in_flight", int, Limits.max_in_flight),
        priority=rebuild.get("priority", int, Limits.priority),
        hold_back_free_tasks=rebuild.get("hold_back_free_tasks", int, 0),
        hold_back_seconds=rebuild.get("hold_back_seconds", int, Limits.hold_back_seconds),
    )
    rebuild.done()
    watches = []
    top.seen.add("watch")
    raw_watches = top.data.get("watch") or []
    if not isinstance(raw_watches, list):
        raise KabiError(source, "watch: expected a list of entries")
    for i, entry in enumerate(raw_watches):
        w = _Reader(entry, f"watch[{i}]", source)
        kernel_tag = w.get("kernel_tag", str, None)
        if not kernel_tag:
            raise KabiError(source, f"watch[{i}].kernel_tag: required")
        kmod_tags = w.get("kmod_tags", list, ())
        if not kmod_tags:
            raise KabiError(source, f"watch[{i}].kmod_tags: required (a list of tags)")
        watches.append(Watch(kernel_tag, kmod_tags, w.get("target", str, None),
                             w.get("packages", list, kernel_packages), w.mode("mode")))
        w.done()
    packages = {}
    for name, entry in (top.get("packages", dict, {}) or {}).items():
        p = _Reader(entry, f"packages.{name}", source)
        packages[str(name)] = PackageRule(p.mode("mode"), p.get("target", str, None),
                                          p.get("opt_out", bool, False))
        p.done()
    top.done()
    return Rules(kernel_packages, tuple(watches), mode, dry_run, limits, packages, source)


def load_rules(path: str) -> Rules:
    """Read and validate a rules file; every problem is a :class:`KabiError` naming it."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise KabiError(path, exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise KabiError(where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_rules(data, path)
