"""What is kept per RPM across checks, and the builders' persistent store of it.

:class:`RpmCache` is the one interface: an RPM's :class:`Dependencies`, its parsed kmod
requirements and its kernel symbol table, each under the RPM's content key
(:func:`rpm_key`: the same file always has the same deps).  No cache is ``None``.

:class:`DirCache` keeps them in a directory, one small file per entry written atomically
(temp file + rename), so concurrent tasks on a builder share it safely and a kmod RPM is
read once in its life.  Bounded in size: the least recently used entries go first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from typing import Any, Optional, Protocol

from koji_kabi.model import KmodRequirements, SymbolTable, TableKey
from koji_kabi.readers.packages import Dependencies

_VERSION = "2"


def nvra(rpm: dict) -> str:
    """``N-V-R.A`` of a Koji RPM dict."""
    return f"{rpm['name']}-{rpm['version']}-{rpm['release']}.{rpm['arch']}"


def rpm_key(rpm: dict) -> str:
    """An RPM's content key: its NVRA and payload hash (its Koji id if it has none)."""
    return f"{nvra(rpm)}:{rpm.get('payloadhash') or rpm['id']}"


class RpmCache(Protocol):
    """Per-RPM results kept across checks, each under the RPM's :func:`rpm_key`.

    Parsed results spare a warm check parsing the dependencies as well as reading them;
    parsing dominates it (two million ``kernel(sym) = crc`` requires over 2,000 kmods x 4
    arches).  Names and labels (N-V-R, source) are the caller's, so an entry is only what
    the RPM fixes.
    """

    def deps(self, key: str) -> Optional[Dependencies]: ...

    def put_deps(self, key: str, deps: Dependencies) -> None: ...

    def kmod(self, key: str, nvr: str, name: str, source: str
             ) -> Optional[KmodRequirements]: ...

    def put_kmod(self, key: str, kmod: KmodRequirements) -> None: ...

    def table(self, key: str, source: str) -> tuple[bool, Optional[SymbolTable]]:
        """(found, the RPM's kernel symbol table or None if it provides no symbols)."""
        ...

    def put_table(self, key: str, table: Optional[SymbolTable]) -> None: ...


class DirCache:
    """:class:`RpmCache` in a directory; ``hits`` and ``misses`` count its reads."""

    def __init__(self, path: str, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._written = 0
        os.makedirs(path, exist_ok=True)

    # ------------------------------------------------------------------ RpmCache

    def deps(self, key: str) -> Optional[Dependencies]:
        v = self._load(key + ":deps")
        if v is None:
            return None
        try:
            return Dependencies(tuple((n, f, ver) for n, f, ver in v["requires"]),
                                tuple((n, f, ver) for n, f, ver in v["provides"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put_deps(self, key: str, deps: Dependencies) -> None:
        self._store(key + ":deps", {"requires": deps.requires, "provides": deps.provides})

    def kmod(self, key: str, nvr: str, name: str, source: str) -> Optional[KmodRequirements]:
        v = self._load(key + ":kmod")
        if v is None:
            return None
        try:
            return KmodRequirements(
                nvr=nvr, name=name, key=TableKey(v["arch"], v["flavour"]),
                requires=_mapping(v["requires"]), source=source,
                ksym_requires=_mapping(v["ksym_requires"]),
                ksym_provides=_mapping(v["ksym_provides"]),
                modules=frozenset(map(sys.intern, v["modules"])), license=v["license"])
        except (KeyError, TypeError, ValueError):
            return None

    def put_kmod(self, key: str, kmod: KmodRequirements) -> None:
        self._store(key + ":kmod", {
            "arch": kmod.key.arch, "flavour": kmod.key.flavour,
            "requires": _pairs(kmod.requires), "ksym_requires": _pairs(kmod.ksym_requires),
            "ksym_provides": _pairs(kmod.ksym_provides), "modules": sorted(kmod.modules),
            "license": kmod.license})

    def table(self, key: str, source: str) -> tuple[bool, Optional[SymbolTable]]:
        v = self._load(key + ":table")
        if v is None:
            return False, None
        if not v:
            return True, None
        try:
            return True, SymbolTable(TableKey(v["arch"], v["flavour"]), _mapping(v["crcs"]),
                                     source)
        except (KeyError, TypeError, ValueError):
            return False, None

    def put_table(self, key: str, table: Optional[SymbolTable]) -> None:
        self._store(key + ":table", {} if table is None else {
            "arch": table.key.arch, "flavour": table.key.flavour,
            "crcs": _pairs(table.crcs)})

    # ------------------------------------------------------------------ the files

    def _file(self, key: str) -> str:
        digest = hashlib.sha256(f"{_VERSION}:{key}".encode()).hexdigest()
        return os.path.join(self.path, digest[:2], digest[2:])

    def _load(self, key: str) -> Any:
        """The JSON value stored under ``key``, or None."""
        path = self._file(key)
        try:
            with open(path, "rb") as f:
                stored_key, value = json.loads(f.read())
        except (OSError, ValueError, TypeError):
            self.misses += 1
            return None
        if stored_key != key:  # a hash collision or a foreign file: treat as a miss
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return value

    def _store(self, key: str, value: Any) -> None:
        """Keep a JSON-able value under ``key`` (atomically: readers never see half)."""
        path = self._file(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps([key, value], separators=(",", ":")))  # C encoder
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._written += os.path.getsize(path)
        if self._written > self.max_bytes // 10:
            self._written = 0
            self.prune()

    def prune(self) -> None:
        """Drop least recently used entries until the cache fits ``max_bytes``."""
        entries = []
        total = 0
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                p = os.path.join(root, name)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                entries.append((st.st_mtime, st.st_size, p))
                total += st.st_size
        entries.sort()
        for _mtime, size, p in entries:
            if total <= self.max_bytes * 0.8:
                break
            try:
                os.unlink(p)
                total -= size
            except OSError:
                pass


def _pairs(mapping: Any) -> list[Any]:
    """{symbol: crc} as [names joined by newlines, [crcs]]: loads in a few C calls."""
    return ["\n".join(mapping), list(mapping.values())]


def _mapping(pair: list[Any]) -> dict[str, int]:
    names, crcs = pair
    if not names:
        return {}
    return dict(zip(map(sys.intern, names.split("\n")), crcs))
