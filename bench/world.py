"""The corpus in the hub simulator: a Koji with the kernel series and every kmod build.

Kernels go to ``el9-kernel`` and kmods (with an SCM source each, so rebuilds can be
planned) to ``kmods9-testing``, as in tests/kojitest.py.  RPMs are hard-linked into
the hub's topdir; the imported state is pickled next to the corpus and reused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from tests.hubsim import State
from tests.kojitest import source_for

KERNEL_TAG, KMOD_TAG, TARGET = "el9-kernel", "kmods9-testing", "kmods9-el9"
_FORMAT = "1"


def _fresh(topdir: Path, root: Path, manifest: dict, log: Callable[[str], None]) -> State:
    state = State(str(topdir))
    state.add_user("alice", perms=["kabi"])
    state.add_host("builder1", channels=("default", "kabi"))
    state.add_tag(KERNEL_TAG)
    state.add_tag("kmods9-build", parents=[KERNEL_TAG])
    state.add_tag(KMOD_TAG)
    state.add_target(TARGET, "kmods9-build", KMOD_TAG)
    started = time.monotonic()
    for kernel in manifest["kernels"]:
        state.import_rpms([root / p for p in kernel["rpms"]], owner="kojiadmin",
                          task_id=True, tag=KERNEL_TAG, link=True)
    t_kernels = time.monotonic() - started
    builds = state.import_rpms([root / p for p in manifest["kmod_rpms"]], owner="alice",
                               task_id=True, tag=KMOD_TAG, link=True)
    for b in builds:  # one import call for all (each call is a hub transaction)
        state.db.build[b["id"]]["source"] = source_for(b["name"])
    log(f"hubsim: imported {len(manifest['kernels'])} kernels in {t_kernels:.1f}s and "
        f"{len(builds)} kmod builds in {time.monotonic() - started - t_kernels:.1f}s")
    return state


def load(root: Path, manifest: dict, log: Callable[[str], None] = print) -> tuple[State, float]:
    """The hub state for a corpus (imported once, then unpickled) and how long the import
    took (hubsim's cost, not ours: reported, not counted)."""
    hub_dir = root / ".hub"
    pickle_path = hub_dir / f"state-{_FORMAT}.pickle"
    stamp = hub_dir / "stamp"
    key = f"{_FORMAT}:{manifest['build_seconds']}:{len(manifest['files'])}"
    try:
        saved = json.loads(stamp.read_text())
    except (OSError, ValueError):
        saved = {}
    if pickle_path.exists() and saved.get("key") == key:
        shutil.rmtree(hub_dir / "topdir" / "work", ignore_errors=True)  # earlier runs' tasks
        return State.load(str(pickle_path)), saved["seconds"]
    if hub_dir.exists():
        shutil.rmtree(hub_dir)
    (hub_dir / "topdir").mkdir(parents=True)
    started = time.monotonic()
    state = _fresh(hub_dir / "topdir", root, manifest, log)
    seconds = time.monotonic() - started
    state.save(str(pickle_path))
    stamp.write_text(json.dumps({"key": key, "seconds": round(seconds, 1)}))
    os.sync()
    return state, seconds
