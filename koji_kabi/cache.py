"""A persistent, content-addressed cache of parsed RPM dependencies for builders.

Keyed by the RPM's NVRA and payload hash (the same file always has the same deps), one
small file per entry written atomically (temp file + rename), so concurrent tasks on a
builder share it safely and a kmod RPM is read once in its life.  Bounded in size: the
least recently used entries go first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import Optional

from koji_kabi.packages import Triple

_VERSION = "1"


class DirCache:
    def __init__(self, path: str, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._written = 0
        os.makedirs(path, exist_ok=True)

    def _file(self, key: str) -> str:
        digest = hashlib.sha256(f"{_VERSION}:{key}".encode()).hexdigest()
        return os.path.join(self.path, digest[:2], digest[2:])

    def get(self, key: str) -> Optional[list[Triple]]:
        path = self._file(key)
        try:
            with open(path, encoding="utf-8") as f:
                stored_key, deps = json.load(f)
        except (OSError, ValueError):
            self.misses += 1
            return None
        if stored_key != key:  # a hash collision or a foreign file: treat as a miss
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return [(n, f, v) for n, f, v in deps]

    def put(self, key: str, deps: list[Triple]) -> None:
        path = self._file(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump([key, deps], f, separators=(",", ":"))
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
