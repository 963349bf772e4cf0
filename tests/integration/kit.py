"""Driving the real hub from the tests: tags, imports of every kind, tasks, reports.

Builds reach the hub the three ways Koji makes them: ``koji import`` (the real CLI, RPM by
RPM, no task and no source), a content-generator import (``CGImport``, with an SCM
``source``) and a task build (the test kojid plugin's ``kabiItBuild``: ``host.initBuild`` +
``host.completeBuild``, the end of Koji's own ``build`` task).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

import koji

from tests.integration.realkoji import RealKoji
from tests.support.results import valid

OPEN_STATES = (koji.TASK_STATES["FREE"], koji.TASK_STATES["OPEN"],
               koji.TASK_STATES["ASSIGNED"])
CLOSED, FAILED, CANCELED = (koji.TASK_STATES[s] for s in ("CLOSED", "FAILED", "CANCELED"))
CG = "koji-kabi-it"
TIMEOUT = float(os.environ.get("KOJI_KABI_IT_TIMEOUT", "180"))
TIMINGS: list[str] = []


def note(line: str) -> None:
    """A measurement for the end-of-run summary."""
    TIMINGS.append(line)


def _srpm_first(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (not p.name.endswith(".src.rpm"), p.name))


class Kit:
    """Admin helpers over one real hub (a logged-in kojiadmin session)."""

    def __init__(self, rk: RealKoji) -> None:
        self.rk = rk
        self.admin = rk.session()
        self.anon = rk.session(None)

    def reconnect(self) -> None:
        """New sessions after a hub restart (the old ones died with the hub's processes)."""
        self.admin = self.rk.session()
        self.anon = self.rk.session(None)

    # ------------------------------------------------------------------ layout
    def tag(self, name: str, parent: Optional[str] = None,
            arches: str = "x86_64 aarch64") -> None:
        if not self.admin.getTag(name):
            self.admin.createTag(name, parent=parent, arches=arches)

    def target(self, name: str, build_tag: str, dest_tag: str) -> None:
        if not self.admin.getBuildTarget(name):
            self.admin.createBuildTarget(name, build_tag, dest_tag)

    def listed(self, tag: str, *packages: str) -> None:
        for package in packages:
            if not self.admin.checkTagPackage(tag, package):
                self.admin.packageListAdd(tag, package, owner="kojiadmin")

    def channel(self, name: str) -> None:
        if not self.admin.getChannel(name):
            self.admin.addChannel(name, description="koji-kabi test hub: no hosts")

    def user(self, name: str, *perms: str) -> None:
        if not self.admin.getUser(name):
            self.admin.createUser(name)
        have = set(self.admin.getUserPerms(name))
        for perm in perms:
            if perm not in have:
                self.admin.grantPermission(name, perm, create=True)

    # ------------------------------------------------------------------ imports
    def koji_import(self, paths: Sequence[Path]) -> str:
        """``koji import`` with the real CLI: SRPM first, then one call per RPM."""
        res = self.rk.koji("import", *map(str, _srpm_first(paths)))
        assert res.returncode == 0, res
        srpm = next(p for p in paths if p.name.endswith(".src.rpm"))
        return srpm.name[: -len(".src.rpm")]

    def upload(self, paths: Sequence[Path]) -> str:
        serverdir = f"kabi-it/{os.getpid()}-{time.time_ns()}"
        for p in paths:
            self.admin.uploadWrapper(str(p), serverdir)
        return serverdir

    def cg_import(self, paths: Sequence[Path], source: Optional[str],
                  task_id: Optional[int] = None) -> dict:
        """A content-generator import recording the SCM ``source`` on the build (and the
        task that made it: how a rebuild's result is imported here, where no build runs)."""
        me = self.admin.getLoggedInUser()["name"]
        if me not in self.admin.listCGs().get(CG, {}).get("users", []):
            self.admin.grantCGAccess(me, CG, create=True)
        srpm = next(p for p in paths if p.name.endswith(".src.rpm"))
        name, version, release = srpm.name[: -len(".src.rpm")].rsplit("-", 2)
        now = time.time()
        metadata = {
            "metadata_version": 0,
            "build": {"name": name, "version": version, "release": release,
                      "source": source, "start_time": now, "end_time": now, "extra": {},
                      **({"task_id": task_id} if task_id else {})},
            "buildroots": [{"id": 1, "host": {"os": "koji-kabi tests", "arch": "x86_64"},
                            "content_generator": {"name": CG, "version": "1"},
                            "container": {"type": "none", "arch": "x86_64"},
                            "tools": [], "components": [], "extra": {}}],
            "output": [{"buildroot_id": 1, "filename": p.name, "filesize": p.stat().st_size,
                        "arch": p.name.rsplit(".", 2)[-2], "type": "rpm",
                        "checksum": hashlib.md5(p.read_bytes()).hexdigest(),
                        "checksum_type": "md5"} for p in paths],
        }
        serverdir = self.upload(paths)
        return self.admin.CGImport(metadata, serverdir)

    def cg_build(self, paths: Sequence[Path], source: Optional[str],
                 task_id: Optional[int] = None) -> dict:
        """:meth:`cg_import`, returning the build."""
        return self.admin.getBuild(self.cg_import(paths, source, task_id)["build_id"])

    def task_build(self, paths: Sequence[Path], source: str, target: str = "",
                   draft: bool = False, record_source: bool = True) -> dict:
        """A build made by a task (kabiItBuild): returns the build, COMPLETE."""
        ordered = _srpm_first(paths)
        serverdir = self.upload(ordered)
        opts = {"srpm": f"{serverdir}/{ordered[0].name}",
                "rpms": [f"{serverdir}/{p.name}" for p in ordered[1:]],
                "draft": draft, "record_source": record_source}
        task_id = self.admin.makeTask("kabiItBuild", [source, target, opts], channel="default")
        info = self.wait(task_id, "kabiItBuild")
        assert info["state"] == CLOSED, self.admin.getTaskResult(task_id, raise_fault=False)
        return self.admin.getBuild(self.admin.getTaskResult(task_id))

    def tag_build(self, tag: str, nvr: Any) -> None:
        self.admin.tagBuildBypass(tag, nvr)

    def baseline(self, names: dict[str, str], kernel: Sequence[Path],
                 kmods: dict[str, Sequence[Path]], source: Callable[[str], str]) -> dict:
        """A scenario's starting point: its kmods CG-imported (with a source) and tagged,
        then its first kernel landed and checked; returns that kernel's build."""
        self.listed(names["kernel"], "kernel")
        self.listed(names["kmods"], *kmods)
        for name, paths in kmods.items():
            self.tag_build(names["kmods"], self.cg_build(paths, source(name))["id"])
        k1 = self.cg_build(kernel, source("kernel"))
        self.tag_build(names["kernel"], k1["id"])
        self.wait_kabi(k1["id"])
        return k1

    # ------------------------------------------------------------------ tasks
    def wait(self, task_id: int, what: str = "task", timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            info = self.admin.getTaskInfo(task_id)
            if info["state"] not in OPEN_STATES:
                return info
            if time.monotonic() > deadline:
                hint = " (still FREE: no builder took it)" if info["state"] == 0 else ""
                raise AssertionError(f"{what}: task {task_id} not finished after "
                                     f"{timeout:.0f}s{hint}")
            time.sleep(0.5)

    def kabi_tasks(self, build_id: int) -> list[dict]:
        """kabiCheck tasks of one build, oldest first, with their decoded request."""
        tasks = self.admin.listTasks(opts={"method": "kabiCheck", "decode": True},
                                     queryOpts={"order": "id"})
        return [t for t in tasks if (t.get("request") or [None])[0] == build_id]

    def wait_kabi(self, build_id: int, count: int = 1, timeout: float = TIMEOUT) -> list[dict]:
        """Wait until ``count`` kabiCheck tasks of the build exist and are finished."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.kabi_tasks(build_id)
            if len(tasks) >= count and all(t["state"] not in OPEN_STATES for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                raise AssertionError(f"build {build_id}: {len(tasks)} kabiCheck task(s), "
                                     f"states {[t['state'] for t in tasks]}, after {timeout}s")
            time.sleep(0.5)

    def run_check(self, build: Any, **opts: Any) -> dict:
        """A kabiCheck of ``build`` through kabi.rebuild, waited for; its task info."""
        task_id = self.admin.kabi.rebuild(build, **opts)
        info = self.wait(task_id, "kabiCheck")
        assert info["state"] == CLOSED, self.admin.getTaskResult(task_id, raise_fault=False)
        return info

    def report(self, task_id: int) -> dict:
        return valid(self.admin.downloadTaskOutput(task_id, "kabi-report.json"), "kabi-report")

    def rebuilds(self, task_id: int) -> list[dict]:
        """The ``build`` subtasks of a kabiCheck task, with their request."""
        return [c for c in self.admin.getTaskChildren(task_id, request=True)
                if c["method"] == "build"]

    def cancel_open_rebuilds(self) -> int:
        """Cancel every open ``build`` task on the hub (claims of cancelled rebuilds no
        longer count as in flight); returns how many."""
        tasks = self.admin.listTasks(opts={"method": "build", "state": list(OPEN_STATES)})
        for t in tasks:
            self.admin.cancelTask(t["id"])
        return len(tasks)

    def fail_rebuild(self, task_id: int) -> dict:
        """Let builder1 run a held rebuild: the test hub's build_rpm policy denies it, so
        the real build task fails as a broken one would."""
        self.admin.assignTask(task_id, "builder1", True, True)  # force, override
        info = self.wait(task_id, "build")
        assert info["state"] == FAILED, info
        return info
