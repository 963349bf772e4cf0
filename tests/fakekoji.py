"""An in-memory Koji for the pipeline's unit tests: a ``KojiView`` and a ``TaskHost``.

Builds and RPMs come from real RPM files (their headers give names and deps); tags are
ordered lists of tagging events; claims are a dict.  Every answer is a plain look-up, so
a failing test points at the pipeline, not at a simulated hub.  What really crosses a
Koji hub is tested against a real one (``tests/integration``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import koji

from koji_kabi.errors import KabiError
from koji_kabi.koji.views import deps_from_header
from koji_kabi.readers.packages import Dependencies
from koji_kabi.readers.rpmheader import RpmHeader, read_rpm_file

PathLike = Union[str, Path]


@functools.cache
def _header(path: str) -> RpmHeader:
    """Headers of the session's fixture RPMs, read once however many fakes use them."""
    return read_rpm_file(path)


class FakeKoji:
    """Builds, RPMs, tags, task requests, claims and subtasks as plain Python data.

    One counter numbers builds, RPMs and tasks alike, so mixing up two kinds of id is a
    missing key instead of a plausible wrong answer.  Tag listings (``latest``) carry no
    ``source``, as Koji's ``getLatestBuilds`` does not.
    """

    cache = None  # no per-RPM cache: every check reads the headers' deps afresh

    def __init__(self) -> None:
        self.event = 0
        self._ids = itertools.count(1)
        self._builds: dict[int, dict] = {}
        self._rpms: dict[int, list[dict]] = {}  # build id -> RPM dicts, in import order
        self._headers: dict[int, RpmHeader] = {}  # rpm id -> header
        self._paths: dict[int, str] = {}  # rpm id -> file
        self.tags: dict[str, list[tuple[int, int]]] = {}  # tag -> [(event, build id)]
        self.requests: dict[int, list] = {}  # task id -> request
        self.task_faults: set[int] = set()  # tasks whose info cannot be read
        self.free = 0  # FREE tasks in "Koji"
        self.claims: dict[str, int] = {}  # claim key -> task that claimed it
        self.rebuild_of: dict[str, int] = {}  # claim key -> its rebuild task
        self.failed: set[str] = set()  # claim keys whose rebuild failed: claimable again
        self.failed_before: set[str] = set()  # failed for the same build and kernel
        self.claim_calls: list[list[dict]] = []
        self.subtasks: list[dict] = []

    # ------------------------------------------------------------------ test side

    def _tick(self) -> int:
        self.event += 1
        return self.event

    def add_tag(self, name: str) -> None:
        self.tags.setdefault(name, [])

    def add_task(self, request: list) -> int:
        """A task with that request (a build's ``build`` task, or a kabiCheck)."""
        task_id = next(self._ids)
        self.requests[task_id] = list(request)
        return task_id

    def add_build(self, paths: Iterable[PathLike], *, tag: Optional[str] = None,
                  source: Optional[str] = None, task_request: Optional[list] = None,
                  cg: bool = False) -> dict:
        """A COMPLETE build of the RPM files (all of one source RPM).

        ``task_request``: built by a ``build`` task with that request; ``cg``: a content
        generator import; neither: a ``koji import`` (RPMs may follow, see add_rpms).
        """
        paths = [str(p) for p in paths]
        (nvr,) = {_header(p).build_nvr for p in paths}
        nvr_parts = koji.parse_NVR(nvr)
        name, version, release = nvr_parts["name"], nvr_parts["version"], nvr_parts["release"]
        build_id = next(self._ids)
        task_id = None if task_request is None else self.add_task(task_request)
        self._builds[build_id] = {
            "id": build_id, "build_id": build_id, "nvr": nvr, "name": name,
            "package_name": name, "version": version, "release": release,
            "epoch": _header(paths[0]).epoch, "state": 1, "source": source,
            "task_id": task_id, "cg_id": 1 if cg else None,
            "creation_event_id": self._tick()}
        self._rpms[build_id] = []
        self.add_rpms(build_id, paths)
        if tag:
            self.tag(tag, build_id)
        return dict(self._builds[build_id])

    def add_rpms(self, build_id: int, paths: Iterable[PathLike]) -> None:
        for path in map(str, paths):
            hdr = _header(path)
            if hdr.build_nvr != self._builds[build_id]["nvr"]:
                raise ValueError(f"{path} is not an RPM of build {build_id}")
            rpm_id = next(self._ids)
            self._rpms[build_id].append({
                "id": rpm_id, "build_id": build_id, "name": hdr.name, "version": hdr.version,
                "release": hdr.release, "epoch": hdr.epoch,
                "arch": "src" if hdr.is_source else hdr.arch, "payloadhash": hdr.digest})
            self._headers[rpm_id], self._paths[rpm_id] = hdr, path

    def tag(self, tag: str, build_id: int) -> None:
        self.add_tag(tag)
        self.tags[tag].append((self._tick(), build_id))

    def fetch(self, build: dict, rpm: dict) -> str:
        """The pipeline's ``FetchRpm``: the RPM's own file."""
        return self._paths[rpm["id"]]

    # ------------------------------------------------------------------ KojiView

    def _find(self, ref: Any) -> Optional[dict]:
        if isinstance(ref, int):
            found = self._builds.get(ref)
        else:
            found = next((b for b in self._builds.values() if b["nvr"] == ref), None)
        return dict(found) if found else None

    def build(self, ref: Any) -> Optional[dict]:
        return self._find(ref)

    def builds(self, refs: Sequence[Any]) -> list[dict]:
        out = []
        for ref in refs:
            found = self._find(ref)
            if found is None:
                raise KabiError(str(ref), "no such build")
            out.append(found)
        return out

    def build_tags(self, build_id: int) -> list[str]:
        return [t for t, entries in self.tags.items() if any(b == build_id for _e, b in entries)]

    def task_requests(self, task_ids: Sequence[int]) -> list[Optional[list]]:
        return [None if t in self.task_faults or t not in self.requests
                else list(self.requests[t]) for t in task_ids]

    def rpms(self, build_ids: Sequence[int]) -> list[list[dict]]:
        return [[dict(r) for r in self._rpms[b]] for b in build_ids]

    def latest(self, tags: Sequence[str], package: Optional[str] = None,
               event: Optional[int] = None) -> list[list[dict]]:
        """Per tag, the last-tagged build of each package as of ``event``, newest first."""
        out = []
        for tag in tags:
            seen: set[str] = set()
            rows = []
            for ev, build_id in reversed(self.tags[tag]):
                b = self._builds[build_id]
                if (event is not None and ev > event) or b["package_name"] in seen \
                        or (package is not None and b["package_name"] != package):
                    continue
                seen.add(b["package_name"])
                rows.append({k: v for k, v in b.items() if k != "source"} | {"tag_name": tag})
            out.append(rows)
        return out

    def deps(self, rpms: Sequence[tuple[dict, dict]]) -> list[Dependencies]:
        """Each (build, rpm)'s deps; an RPM paired with another build is a caller's bug."""
        for build, rpm in rpms:
            if build["id"] != rpm["build_id"]:
                raise ValueError(f"RPM {rpm['id']} is not of build {build['id']}")
        return [deps_from_header(self._headers[r["id"]]) for _b, r in rpms]

    # ------------------------------------------------------------------ TaskHost

    def free_tasks(self) -> int:
        return self.free

    def submit_rebuilds(self, task_id: Optional[int], rebuilds: list[dict],
                        max_in_flight: int) -> dict:
        """A key is claimed once, unless its rebuild failed; every live claim is in
        flight; a rebuild this task already made (same label) is reported again."""
        self.claim_calls.append([dict(r) for r in rebuilds])
        in_flight = sum(1 for k in self.claims if k not in self.failed)
        mine = self.children(task_id)
        out = []
        for r in rebuilds:
            key = r["key"]
            if r["label"] in mine:
                out.append({"key": key, "status": "submitted", "task_id": mine[r["label"]],
                            "check_task_id": task_id})
            elif key in self.failed_before:
                out.append({"key": key, "status": "failed before", "task_id":
                            self.rebuild_of.get(key), "check_task_id": self.claims[key]})
            elif key in self.claims and key not in self.failed:
                out.append({"key": key, "status": "duplicate", "check_task_id": self.claims[key],
                            "task_id": self.rebuild_of.get(key)})
            elif in_flight >= max_in_flight:
                out.append({"key": key, "status": "deferred", "task_id": None,
                            "check_task_id": task_id})
            else:
                child = next(self._ids)
                self.subtasks.append({"id": child, "method": "build", "arglist": r["arglist"],
                                      "label": r["label"], "parent": task_id,
                                      "channel": r["channel"], "priority": r["priority"]})
                self.claims[key], self.rebuild_of[key] = int(task_id or 0), child
                self.failed.discard(key)
                in_flight += 1
                out.append({"key": key, "status": "submitted", "task_id": child,
                            "check_task_id": task_id})
        return {"rebuilds": out, "in_flight": in_flight}

    def children(self, task_id: Optional[int]) -> dict[str, int]:
        return {t["label"]: t["id"] for t in self.subtasks if t["parent"] == task_id}
