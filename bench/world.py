"""The corpus on the benchmark's own real Koji: the hub and kojid of ../shared/realkoji.

The benchmark never touches the real-Koji test tier's instance (``/srv/realkoji``, ports
18080/18443/55432, staging ``/srv/koji-kabi-it``): :func:`realkoji` puts :data:`INSTANCE`
into the environment before ``tests/integration/realkoji.py`` is imported (it reads it
at import) and checks that it took.

Kernels go to ``bench-<stamp>-kernel`` and kmods (each with an SCM source, so rebuilds can
be planned) to ``bench-<stamp>-kmods`` by content-generator imports (``CGImport``), the
stamp naming the corpus.  The hub keeps its state between runs: a corpus whose import
finished (a marker in the kmod tag's ``extra``, with the import's duration) is not
imported again.  Every scale's corpus has the same NVRs, so builds of another corpus on
the hub mean a reset of this instance's database and storage first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

from tests.pipeline_rpms import source_for

#: the benchmark's realkoji instance (the test tier's defaults are never used)
INSTANCE = {"REALKOJI_ROOT": "/srv/realkoji-bench", "REALKOJI_HTTP_PORT": "28080",
            "REALKOJI_HTTPS_PORT": "28443", "REALKOJI_PGPORT": "55433",
            "KOJI_KABI_IT_ROOT": "/srv/koji-kabi-bench",
            "KOJI_KABI_IT_AMQP": "0"}  # no message bus: the check's own time only
TIER_PATHS = ("/srv/realkoji", "/srv/koji-kabi-it")  # the test tier's: never ours
MARK = "koji_kabi_bench"  # kmod tag extra: the finished import
FORMAT = "2"
WORKERS = 4  # parallel CG imports of kmod builds (the hub serves 2 x 4 threads)
BATCH = 100


def realkoji() -> ModuleType:
    """``tests.integration.realkoji`` bound to the benchmark's instance."""
    os.environ.update(INSTANCE)
    from tests.integration import realkoji as rk

    if (str(rk.ROOT), str(rk.STAGE)) != (INSTANCE["REALKOJI_ROOT"],
                                         INSTANCE["KOJI_KABI_IT_ROOT"]):
        raise RuntimeError(f"tests.integration.realkoji was imported before the benchmark "
                           f"set its instance: ROOT={rk.ROOT}, STAGE={rk.STAGE}")
    return rk


def unavailable() -> Optional[str]:
    """Why the benchmark's real hub cannot run here, or None."""
    return realkoji().unavailable()


def stamp_of(manifest: dict) -> str:
    """A short name for one corpus (its parameters and what rpmbuild made)."""
    key = (f"{FORMAT}:{manifest['params']['scale']}:{manifest['build_seconds']}:"
           f"{len(manifest['files'])}:{manifest['bytes']}")
    return hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Names:
    """Tags and target of one corpus on the hub."""

    kernel: str
    build: str
    kmods: str
    target: str

    @classmethod
    def of(cls, stamp: str) -> Names:
        p = f"bench-{stamp}"
        return cls(f"{p}-kernel", f"{p}-build", f"{p}-kmods", p)


def rules_text(names: Names) -> str:
    """The rules of hub and kojid: one watch for the corpus tags, rebuilds dry-run."""
    import yaml

    return yaml.safe_dump({
        "kernel_packages": ["kernel"],
        "watch": [{"kernel_tag": names.kernel, "kmod_tags": [names.kmods],
                   "target": names.target}],
        "rebuild": {"mode": "scratch", "dry_run": True},
    }, sort_keys=False)


def kmod_groups(root: Path, manifest: dict) -> dict[str, list[Path]]:
    """Kmod build NVR -> its RPM files (the SRPM included)."""
    out: dict[str, list[Path]] = {}
    for rel in manifest["kmod_rpms"]:
        path = root / rel
        out.setdefault(path.name.rsplit(".", 2)[0], []).append(path)
    return out


class HubWorld:
    """The benchmark's hub with the corpus imported (once), koji-kabi installed."""

    def __init__(self, root: Path, manifest: dict, log: Callable[[str], None] = print) -> None:
        self.mod = realkoji()
        from tests.integration.kit import Kit

        self._kit_class = Kit
        self.root, self.manifest, self.log = root, manifest, log
        self.stamp = stamp_of(manifest)
        self.names = Names.of(self.stamp)
        self.rk = self.mod.RealKoji(self.stamp)
        self.kit: Any = None
        self.up_seconds: list[float] = []

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> tuple[float, bool]:
        """Install koji-kabi, bring the hub up with the plugin, import the corpus if it is
        not there yet.  Returns the import's duration (now or when it was made) and whether
        it was made now."""
        for p in (self.mod.ROOT, self.mod.STAGE):
            if str(p).rstrip("/") in TIER_PATHS:
                raise RuntimeError(f"refusing to use the test tier's {p}")
        self.rk.install()
        self.rk.write_configs(rules_text(self.names), "bench-gated-none")
        self._up("full")
        self.kit = self._kit_class(self.rk)
        seconds = self.imported()
        if seconds is not None:
            self.log(f"real hub: corpus {self.stamp} already imported ({seconds:.0f} s then)")
            return seconds, False
        # no kernel hook while importing: it would queue kabiCheck tasks meanwhile
        self._up("plain")
        self.kit.reconnect()
        first = self.manifest["kernels"][0]["nvr"]
        if self.kit.admin.getBuild(first) is not None:
            self.reset()
        seconds = self.import_corpus()
        self._up("full")
        self.kit.reconnect()
        return seconds, True

    def _up(self, phase: str) -> None:
        seconds = self.rk.up(phase)
        self.up_seconds.append(seconds)
        self.log(f"real hub: up in phase {phase} in {seconds:.1f} s")

    def down(self) -> None:
        self.rk.down()
        self.log("real hub: down")

    def reset(self) -> None:
        """Another corpus (same NVRs) is on the hub: empty this instance's database and
        storage (README: the database-only reset)."""
        root = Path(self.mod.ROOT)
        self.log(f"real hub: another corpus's builds are there; resetting {root}")
        self.rk.down()
        for sub in ("pgdata", "koji"):
            shutil.rmtree(root / sub, ignore_errors=True)
        self._up("plain")
        self.kit.reconnect()

    def imported(self) -> Optional[float]:
        """Seconds the finished import of this corpus took, or None."""
        tag = self.kit.admin.getTag(self.names.kmods)
        mark = (tag or {}).get("extra", {}).get(MARK)
        return float(mark["seconds"]) if mark else None

    # ------------------------------------------------------------------ import
    def import_corpus(self) -> float:
        """Tags, package lists, CG imports of every build, tagging; the wall time."""
        admin, n = self.kit.admin, self.names
        groups = kmod_groups(self.root, self.manifest)
        started = time.monotonic()
        for channel in (self.mod.HOLD_CHANNEL, self.mod.STRAY_CHANNEL):
            self.kit.channel(channel)
        arches = " ".join(self.manifest["params"]["arches"])
        self.kit.tag(n.kernel, arches=arches)
        self.kit.tag(n.build, parent=n.kernel, arches=arches)
        self.kit.tag(n.kmods, arches=arches)
        self.kit.target(n.target, n.build, n.kmods)
        self._batched([("packageListAdd", (n.kernel, "kernel"), {"owner": "kojiadmin"})]
                      + [("packageListAdd", (n.kmods, nvr.rsplit("-", 2)[0]),
                          {"owner": "kojiadmin"}) for nvr in groups])
        for kernel in self.manifest["kernels"]:  # built, then tagged: the series in order
            self.kit.cg_import([self.root / p for p in kernel["rpms"]], source_for("kernel"))
            admin.tagBuildBypass(n.kernel, kernel["nvr"])
        t_kernels = time.monotonic() - started
        self.log(f"real hub: {len(self.manifest['kernels'])} kernels imported in "
                 f"{t_kernels:.1f} s")
        self._cg_import_all(list(groups.items()))
        t_kmods = time.monotonic() - started - t_kernels
        nvrs = list(groups)
        for i in range(0, len(nvrs), 4 * BATCH):
            admin.massTag(n.kmods, nvrs[i:i + 4 * BATCH])
        seconds = time.monotonic() - started
        self.log(f"real hub: {len(groups)} kmod builds imported in {t_kmods:.1f} s "
                 f"({WORKERS} in parallel); corpus import {seconds:.1f} s in all")
        admin.editTag2(n.kmods, extra={MARK: {
            "seconds": round(seconds, 1), "kernels_seconds": round(t_kernels, 1),
            "kmods_seconds": round(t_kmods, 1), "workers": WORKERS,
            "scale": self.manifest["params"]["scale"],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}})
        return seconds

    def _batched(self, calls: Sequence[tuple[str, tuple, dict]]) -> None:
        for i in range(0, len(calls), BATCH):
            with self.kit.admin.multicall(strict=True) as m:
                for method, args, kwargs in calls[i:i + BATCH]:
                    getattr(m, method)(*args, **kwargs)

    def _cg_import_all(self, builds: list[tuple[str, list[Path]]]) -> None:
        done = [0]
        lock = threading.Lock()

        def work(share: list[tuple[str, list[Path]]]) -> None:
            kit = self._kit_class(self.rk)  # its own sessions
            for nvr, paths in share:
                kit.cg_import(paths, source_for(nvr.rsplit("-", 2)[0]))
                with lock:
                    done[0] += 1
                    if done[0] % 200 == 0:
                        self.log(f"real hub: {done[0]}/{len(builds)} kmod builds")

        with ThreadPoolExecutor(WORKERS) as pool:
            for f in [pool.submit(work, builds[i::WORKERS]) for i in range(WORKERS)]:
                f.result()

    # ------------------------------------------------------------------ facts
    def kojid_pid(self) -> int:
        return int((Path(self.mod.ROOT) / "run" / "kojid.pid").read_text().split()[0])

    def kmod_ids(self) -> tuple[set[int], set[int]]:
        """Build ids and RPM ids of the kmods in the kmod tag (what per-kmod calls name)."""
        admin = self.kit.admin
        builds = [b["build_id"] for b in admin.listTagged(self.names.kmods, latest=True)]
        rpm_ids: set[int] = set()
        for i in range(0, len(builds), BATCH):
            with admin.multicall(strict=True) as m:
                calls = [m.listBuildRPMs(b) for b in builds[i:i + BATCH]]
            rpm_ids.update(r["id"] for c in calls for r in c.result)
        return set(builds), rpm_ids
