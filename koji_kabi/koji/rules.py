"""The rules file (YAML): which kernels to watch, which kmod tags go with them, how to rebuild.

Validated strictly when loaded, so a typo is one clear error at start-up instead of a
silently ignored setting at 3 a.m.  See ``conf/rules.yaml`` for a commented example.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from koji_kabi.errors import KabiError

MODES = ("scratch", "draft", "build")
#: how a rebuild gets the new kernel (README "Rebuild strategies")
STRATEGIES = ("buildroot", "macro", "srpm")
#: what rpm accepts as a macro name (and sidetag's editSideTag checks again)
MACRO = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
#: what Koji accepts as a tag, target or package name (and no glob or space)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.+-]*")
#: smallest value of each number in ``rebuild:``
MINIMUM = {"max_per_task": 0, "max_in_flight": 1, "priority": 0, "hold_back_free_tasks": 0,
           "hold_back_seconds": 0}


@dataclass(frozen=True)
class PackageRule:
    """Per-kmod-package overrides."""

    mode: Optional[str] = None
    target: Optional[str] = None
    opt_out: bool = False
    strategy: Optional[str] = None
    macro: Optional[str] = None


@dataclass(frozen=True)
class Watch:
    """One watched kernel tag and the kmod tags checked against its kernels."""

    kernel_tag: str
    kmod_tags: tuple[str, ...]
    target: Optional[str]
    packages: tuple[str, ...]
    mode: Optional[str] = None
    strategy: Optional[str] = None


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
    strategy: str = "buildroot"
    macro: str = "kversion"

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

    def strategy_for(self, package: str, watch: Optional[Watch] = None) -> str:
        rule = self.packages.get(package)
        if rule and rule.strategy:
            return rule.strategy
        return (watch.strategy if watch and watch.strategy else None) or self.strategy

    def macro_for(self, package: str) -> str:
        """The RPM macro a ``macro`` rebuild sets to the kernel's version-release."""
        rule = self.packages.get(package)
        return (rule.macro if rule and rule.macro else None) or self.macro

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
        if kind is int and key in MINIMUM and value < MINIMUM[key]:
            raise self._err(key, f"must be at least {MINIMUM[key]}, got {value}")
        if kind is bool and not isinstance(value, bool):
            raise self._err(key, f"expected true or false, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise self._err(key, f"expected a string, got {value!r}")
        if kind is list:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise self._err(key, "expected a list of names")
            bad = next((v for v in value if not NAME.fullmatch(v)), None)
            if bad is not None:
                raise self._err(key, f"not a Koji name: {bad!r}")
            return tuple(value)
        if kind is dict and not isinstance(value, dict):
            raise self._err(key, "expected a mapping")
        return value

    def name(self, key: str) -> Optional[str]:
        """A tag, target or package name."""
        value = self.get(key, str, None)
        if value is not None and not NAME.fullmatch(value):
            raise self._err(key, f"not a Koji name: {value!r}")
        return value

    def mode(self, key: str) -> Optional[str]:
        return self.choice(key, MODES)

    def choice(self, key: str, choices: tuple[str, ...]) -> Optional[str]:
        value = self.get(key, str, None)
        if value is not None and value not in choices:
            raise self._err(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def macro(self, key: str) -> Optional[str]:
        value = self.get(key, str, None)
        if value is not None and not MACRO.fullmatch(value):
            raise self._err(key, f"not an RPM macro name: {value!r}")
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
    strategy = rebuild.choice("strategy", STRATEGIES) or "buildroot"
    macro = rebuild.macro("macro") or "kversion"
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
        kernel_tag = w.name("kernel_tag")
        if not kernel_tag:
            raise KabiError(source, f"watch[{i}].kernel_tag: required")
        kmod_tags = w.get("kmod_tags", list, ())
        if not kmod_tags:
            raise KabiError(source, f"watch[{i}].kmod_tags: required (a list of tags)")
        watches.append(Watch(kernel_tag, kmod_tags, w.name("target"),
                             w.get("packages", list, kernel_packages), w.mode("mode"),
                             w.choice("strategy", STRATEGIES)))
        w.done()
    packages = {}
    for name, entry in (top.get("packages", dict, {}) or {}).items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise KabiError(source, f"packages: not a Koji package name: {name!r}")
        p = _Reader(entry, f"packages.{name}", source)
        packages[name] = PackageRule(p.mode("mode"), p.name("target"),
                                     p.get("opt_out", bool, False),
                                     p.choice("strategy", STRATEGIES), p.macro("macro"))
        p.done()
    top.done()
    return Rules(kernel_packages, tuple(watches), mode, dry_run, limits, packages, source,
                 strategy, macro)


def rules_data(rules: Rules) -> dict:
    """The mapping that :func:`parse_rules` reads back into the same rules (the one
    serialiser: how the hub hands its rules to builders and clients)."""
    limits = rules.limits
    return {
        "kernel_packages": list(rules.kernel_packages),
        "watch": [{k: v for k, v in (("kernel_tag", w.kernel_tag),
                                     ("kmod_tags", list(w.kmod_tags)), ("target", w.target),
                                     ("packages", list(w.packages)), ("mode", w.mode),
                                     ("strategy", w.strategy))
                   if v is not None} for w in rules.watches],
        "rebuild": {"mode": rules.mode, "dry_run": rules.dry_run,
                    "strategy": rules.strategy, "macro": rules.macro,
                    "max_per_task": limits.max_per_task, "max_in_flight": limits.max_in_flight,
                    "priority": limits.priority,
                    "hold_back_free_tasks": limits.hold_back_free_tasks,
                    "hold_back_seconds": limits.hold_back_seconds},
        "packages": {name: {k: v for k, v in (("mode", r.mode), ("target", r.target),
                                              ("opt_out", r.opt_out), ("strategy", r.strategy),
                                              ("macro", r.macro)) if v not in (None, False)}
                     for name, r in sorted(rules.packages.items())},
    }


def load_rules(path: str) -> Rules:
    """Read and validate a rules file; every problem is a :class:`KabiError` naming it."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise KabiError(path, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise KabiError(path, "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise KabiError(where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_rules(data, path)


class RulesFile:
    """The hub's rules file, re-read when it changes, so an admin edits it without a restart.

    A change is noticed within ``interval`` seconds (one ``stat`` per interval, whoever
    asks).  A file that became invalid keeps the last good rules in force; its problem is
    reported once per change (``on_problem``) and stays visible in :attr:`problem`.
    """

    def __init__(self, path: str, interval: float = 2.0,
                 on_problem: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.interval, self.on_problem, self.clock = path, interval, on_problem, clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self.rules = load_rules(path)  # invalid at start: the caller's error
        self.problem: Optional[str] = None
        self._checked = clock()

    def _stat(self) -> Optional[tuple[int, int, int]]:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Rules:
        with self._lock:
            now = self.clock()
            if now - self._checked >= self.interval:
                self._checked = now
                stamp = self._stat()
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self.rules, self.problem = load_rules(self.path), None
                    except KabiError as exc:
                        self.problem = str(exc)
                        if self.on_problem is not None:
                            self.on_problem(self.problem)
            return self.rules
