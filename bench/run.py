"""The koji-kabi benchmark: scenarios at CBS scale, baselines on the same data, targets.

    scripts/bench.sh [--scale small|medium|full]      (or: python -m bench.run ...)

Scenarios (each: wall time, hub round trips, HTTP requests, bytes read, peak RSS):

1. ``koji-kabi delta`` of two kernel builds, all arches, from RPM files;
2. ``koji-kabi affected`` / ``series`` / ``check`` over the whole corpus directory;
3. the builder's ``kabiCheck`` task end to end on a REAL Koji: the hub (Apache + mod_wsgi
   + PostgreSQL) and kojid of ../shared/realkoji, a separate instance of the benchmark's
   own (bench/world.py), the corpus imported into it once; cold (empty cache) and warm
   (kmods cached, only the new kernel is read), with deps from the hub (``getRPMDeps``)
   and from ranged reads of Koji's ``topurl`` (Apache); plus RPM headers from a server
   that ignores Range (tests/support/httpfiles.py);
4. the ``kabi_compatible`` policy test, cold and warm, through Koji's real policy engine
   on Koji's real ``kojihub`` module in this process, its database functions patched to
   answer from the corpus RPM files (tests/realkojihub.py);
5. baselines: the seed's shell method (``rpm -qp --provides | grep | sort -u``, ``comm``)
   and ``createrepo_c`` + ``dnf repoclosure`` per arch over one kernel plus all kmods,
   whose verdicts must equal ours.

The CLI runs as a child (bench/child.py), so its peak RSS (``os.wait4``) is its own; the
kabiCheck task is kojid's forked task process, measured from outside (bench/probe.py).
Without the real hub here (not root, not Debian, no ../shared/realkoji) scenario 3 is
skipped with one line saying why.  Prints a table and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import corpus, probe, world  # noqa: E402
from koji_kabi.koji.views import deps_from_header  # noqa: E402
from koji_kabi.readers.remote import FIRST_RANGE, HeaderFetcher  # noqa: E402
from koji_kabi.readers.rpmheader import read_rpm_file  # noqa: E402
from tests.support import httpfiles, oracle  # noqa: E402

SLACK = FIRST_RANGE  # bytes a reader may read past a header: 64 KiB
PER_KMOD_CALLS = {"listBuildRPMs", "getRPMDeps", "getBuild"}
TASK_TIMEOUT = 3600.0
CLOSED = 2  # koji.TASK_STATES["CLOSED"]


@dataclass
class Row:
    name: str
    seconds: float
    round_trips: Optional[int] = None
    http: Optional[int] = None
    bytes_read: Optional[int] = None
    rss_mb: Optional[float] = None
    note: str = ""
    baseline: str = ""  # the fact (seconds of a baseline) this row is compared with


@dataclass
class Target:
    what: str
    goal: str
    measured: str
    met: Optional[bool]


@dataclass
class Bench:
    scale: str
    root: Path
    manifest: dict
    log: Callable[[str], None] = print
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kabi-bench-")))
    skipped: dict[str, str] = field(default_factory=dict)  # scenario -> why
    hub: Optional[world.HubWorld] = None
    runs: dict[str, dict[str, dict]] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    @property
    def arches(self) -> list[str]:
        return list(self.manifest["params"]["arches"])

    @property
    def kernels(self) -> list[dict]:
        return self.manifest["kernels"]

    def kdir(self, i: int) -> Path:
        return self.root / self.kernels[i]["dir"]

    @property
    def kmod_dir(self) -> Path:
        return self.root / "kmods"

    def row(self, row: Row) -> Row:
        self.rows.append(row)
        self.log(f"  {row.name}: {row.seconds:.2f}s"
                 + (f", {row.round_trips} hub round trips" if row.round_trips is not None else "")
                 + (f", {row.http} HTTP GETs" if row.http is not None else "")
                 + (f", {_mb(row.bytes_read)} read" if row.bytes_read is not None else "")
                 + (f", peak RSS {row.rss_mb:.0f} MB" if row.rss_mb is not None else ""))
        return row

    def target(self, what: str, goal: str, measured: str, met: Optional[bool]) -> None:
        self.targets.append(Target(what, goal, measured, met))

    def child(self, mode: str, spec: dict, stdout: Optional[Path] = None) -> dict:
        """Run bench/child.py; its report plus process wall time and peak RSS."""
        spec = dict(spec, out=str(self.tmp / f"child-{len(self.rows)}-{time.time_ns()}.json"),
                    stdout=stdout is not None)
        spec_path = Path(spec["out"] + ".spec")
        spec_path.write_text(json.dumps(spec))
        out = open(stdout, "w") if stdout else subprocess.DEVNULL  # noqa: SIM115
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "bench.child", mode, str(spec_path)],
                                cwd=str(ROOT), stdout=out)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        if stdout:
            out.close()
        if not os.path.exists(spec["out"]):
            raise RuntimeError(f"bench child {mode} failed (exit {proc.returncode})")
        report = json.loads(Path(spec["out"]).read_text())
        report["wall"] = wall
        report["rss_mb"] = usage.ru_maxrss / 1024
        return report

    def header_bytes(self, path: Path) -> int:
        return read_rpm_file(str(path)).header_bytes

    def kernel_rpms(self, i: int) -> list[Path]:
        """The RPMs of kernel ``i`` that carry kernel() provides (what a reader must read)."""
        return sorted(p for p in self.kdir(i).glob("kernel-core-*.rpm"))

    # ------------------------------------------------------------------ 1, 2: the CLI
    def cli(self) -> None:
        self.log("1-2. koji-kabi on RPM files")
        old, new = self.kdir(len(self.kernels) - 2), self.kdir(len(self.kernels) - 1)
        rep = self.child("cli", {"argv": ["delta", str(old), str(new), "--summary"]})
        self.facts["delta_seconds"] = rep["wall"]
        self.row(Row("1. `koji-kabi delta` K2 K3 (all arches)", rep["wall"],
                     bytes_read=sum(rep["rpm_bytes"].values()), rss_mb=rep["rss_mb"],
                     baseline="shell_seconds"))
        over = []
        for path in self.kernel_rpms(len(self.kernels) - 2) + self.kernel_rpms(
                len(self.kernels) - 1):
            got, hdr = rep["rpm_bytes"].get(str(path), 0), self.header_bytes(path)
            over.append(got - hdr)
        self.facts["local_over"] = max(over)
        size = self.kernel_rpms(len(self.kernels) - 1)[0].stat().st_size
        self.target("kernel RPM bytes read, local files", "<= header + 64 KiB",
                    f"header + {max(over) / 1024:.1f} KiB at most (file {_mb(size)})",
                    max(over) <= SLACK)
        kernels_dir = self.root / "kernels"
        rep = self.child("cli", {"argv": ["affected", str(old), str(new), "--kmods",
                                          str(self.kmod_dir)]})
        self.row(Row("2. `koji-kabi affected` K2 K3 --kmods (all kmods)", rep["wall"],
                     bytes_read=sum(rep["rpm_bytes"].values()), rss_mb=rep["rss_mb"],
                     baseline="repoclosure_cold"))
        rep = self.child("cli", {"argv": ["series", str(kernels_dir), "--kmods",
                                          str(self.kmod_dir)]})
        self.row(Row(f"2. `koji-kabi series` ({len(self.kernels)} kernels, all kmods)",
                     rep["wall"], bytes_read=sum(rep["rpm_bytes"].values()),
                     rss_mb=rep["rss_mb"]))
        out = self.tmp / "check.json"
        rep = self.child("cli", {"argv": ["check", str(self.kmod_dir), "--kernel", str(new),
                                          "--json"]}, stdout=out)
        self.facts["check_seconds"] = rep["wall"]
        self.row(Row("2. `koji-kabi check` all kmods vs K3 (the repoclosure question)",
                     rep["wall"], bytes_read=sum(rep["rpm_bytes"].values()),
                     rss_mb=rep["rss_mb"], baseline="repoclosure_cold"))
        broken: dict[str, set[str]] = {a: set() for a in self.arches}
        for v in json.loads(out.read_text())["verdicts"]:
            if not v["compatible"]:
                broken.setdefault(v["key"].split("+")[0], set()).add(v["rpm"])  # N-V-R.arch
        self.facts["cli_broken"] = _names(broken)

    # ------------------------------------------------------------------ 3: kabiCheck
    def hub_up(self) -> bool:
        """The benchmark's real hub + kojid with the corpus; False (and why) if not here."""
        reason = world.unavailable()
        if reason:
            self.skipped["3"] = reason
            self.log(f"3. kabiCheck on the real Koji skipped: {reason}")
            return False
        self.log("3. real Koji: hub + kojid of ../shared/realkoji "
                 f"({world.INSTANCE['REALKOJI_ROOT']})")
        self.hub = world.HubWorld(self.root, self.manifest, self.log)
        seconds, now = self.hub.up()
        self.facts.update(import_seconds=seconds, imported_now=now,
                          tier_running=probe.other_tier_running(),
                          load_before=os.getloadavg())
        admin = self.hub.kit.admin
        self.builds = [admin.getBuild(k["nvr"], strict=True) for k in self.kernels]
        builds, rpms = self.hub.kmod_ids()
        self.kmod_ids = {"getBuild": builds, "listBuildRPMs": builds, "getRPMDeps": rpms}
        self.facts["kojid_rss"] = probe.rss_mb(self.hub.kojid_pid())
        self.cache_root = self.hub.rk.cache.parent / "bench-cache"  # kojid (root) writes
        shutil.rmtree(self.cache_root, ignore_errors=True)
        return True

    def hub_down(self) -> None:
        if self.hub is not None:
            self.facts["tier_running"] = (self.facts.get("tier_running")
                                          or probe.other_tier_running())
            self.facts["load_after"] = os.getloadavg()
            self.hub.down()

    def kabi_check(self, kernel: int, mode: str, cache: Path, name: Optional[str]) -> dict:
        """One kabiCheck of kernel ``kernel`` (dry run) as the real kojid runs it."""
        assert self.hub is not None
        rk, kit = self.hub.rk, self.hub.kit
        rk.write_builder_conf(cache_dir=cache, settle_seconds=0, poll=0.1, tag_wait=0,
                              fanout_min_kmods=10 ** 9, deps_source=mode)
        hub_mark, access_mark = rk.log_mark(), rk.log_mark("httpd-access.log")
        sampler = probe.TaskSampler(self.hub.kojid_pid()).start()
        try:
            task_id = kit.admin.kabi.rebuild(self.builds[kernel]["id"], dry_run=True)
            info = kit.wait(task_id, "kabiCheck", timeout=TASK_TIMEOUT)
        finally:
            sampler.stop()
        if info["state"] != CLOSED:
            raise RuntimeError(f"kabiCheck {task_id} failed: "
                               f"{kit.admin.getTaskResult(task_id, raise_fault=False)}")
        time.sleep(0.5)  # the WSGI processes' last log lines
        calls = probe.hub_calls(rk.log_since(hub_mark))
        gets = probe.file_gets(rk.log_since(access_mark, "httpd-access.log"))
        rep: dict[str, Any] = {
            "task_id": task_id, "seconds": info["completion_ts"] - info["start_ts"],
            "queued": info["start_ts"] - info["create_ts"],
            "result": kit.admin.getTaskResult(task_id),
            "round_trips": calls.round_trips,
            "per_kmod_trips": calls.carrying(PER_KMOD_CALLS, self.kmod_ids),
            "methods": dict(calls.methods),
            "http": sum(len(v) for v in gets.values()),
            "http_bytes": sum(size for v in gets.values() for _status, size in v),
            "served": {p: sum(size for _status, size in v) for p, v in gets.items()},
            "statuses": sorted({status for v in gets.values() for status, _size in v}),
            "rss_mb": sampler.hwm_mb, "rchar": sampler.rchar,
            "hub_seconds": calls.hub_seconds, "reply_bytes": calls.reply_bytes}
        if os.environ.get("BENCH_DEBUG"):
            print(json.dumps({k: v for k, v in rep.items() if k != "served"}, default=str))
        report = kit.report(task_id)
        rep["broken"] = _names({a["arch"]: {v["rpm"] for v in a["verdicts"]
                                            if not v["compatible"]} for a in report["arches"]})
        if name:
            r = rep["result"]
            self.row(Row(name, rep["seconds"], rep["round_trips"], rep["http"],
                         rep["http_bytes"] if mode == "topurl" else rep["rchar"],
                         rep["rss_mb"], note=f"{r['kmod_builds']} kmod builds, "
                         f"{r['incompatible']} incompatible; the hub answering "
                         f"{rep['hub_seconds']:.1f} s of it; queued {rep['queued']:.1f} s",
                         baseline="repoclosure_warm" if "warm" in name else "repoclosure_cold"))
        return rep

    def task(self) -> None:
        self.log("3. kabiCheck end to end (kabi.rebuild -> real hub -> kojid's task process)")
        new = len(self.kernels) - 1
        prime = self.cache_root / "primed"
        self.kabi_check(new - 1, "topurl", prime, None)  # kmods (and K2) cached, not K3
        runs: dict[str, dict[str, dict]] = {}
        for mode in ("hub", "topurl"):
            cold = self.cache_root / f"cold-{mode}"
            runs[mode] = {"cold": self.kabi_check(
                new, mode, cold, f"3. kabiCheck K3, deps from {mode}, cold (empty cache)")}
            warm = self.cache_root / f"warm-{mode}"
            shutil.copytree(prime, warm)
            runs[mode]["warm"] = self.kabi_check(
                new, mode, warm, f"3. kabiCheck K3, deps from {mode}, warm (kmods cached)")
        self.runs = runs
        faster = min(runs, key=lambda m: runs[m]["cold"]["seconds"] + runs[m]["warm"]["seconds"])
        self.facts["faster_source"] = faster
        d = runs["topurl"]  # the shipped default (conf/kabi-builder.conf)
        self.facts["task_cold"] = d["cold"]["seconds"]
        self.facts["task_warm"] = d["warm"]["seconds"]
        self.target("kabiCheck end to end, cold (deps_source=topurl)", "<= 30 s",
                    f"{d['cold']['seconds']:.1f} s (hub: {runs['hub']['cold']['seconds']:.1f} s)",
                    d["cold"]["seconds"] <= 30)
        self.target("kabiCheck end to end, warm (deps_source=topurl)", "<= 3 s",
                    f"{d['warm']['seconds']:.2f} s (hub: {runs['hub']['warm']['seconds']:.2f} s)",
                    d["warm"]["seconds"] <= 3)
        kmods = len(self.manifest["kmods"])
        batches = -(-kmods // 100)
        for mode in ("topurl", "hub"):
            for kind in ("cold", "warm"):
                r = runs[mode][kind]
                met: Optional[bool] = r["per_kmod_trips"] <= 2 * batches
                note = ""
                if mode == "hub" and not met:  # informational: not the default source
                    met, note = None, ("; getRPMDeps is one call per RPM, so kmods x arches "
                                       "/ 100 batches: why topurl is the default")
                self.target(f"hub round trips, deps from {mode}, {kind}",
                            f"round trips carrying per-kmod calls <= 2 x ceil(kmods/100) = "
                            f"{2 * batches} (kmods x arches / 100 = "
                            f"{kmods * len(self.arches) // 100})",
                            f"{r['round_trips']} in all, {r['per_kmod_trips']} carrying "
                            f"per-kmod calls{note}", met)
        sampled = [r["rss_mb"] for m in runs.values() for r in m.values() if r["rss_mb"]]
        rss = max(sampled, default=0.0)
        self.target("peak RSS of the builder task", "<= 300 MB",
                    f"{rss:.0f} MB (kojid's task process, VmHWM sampled; max of "
                    f"{len(sampled)} runs)", bool(sampled) and rss <= 300)
        self._http_bytes(runs["topurl"]["cold"])

    def _http_bytes(self, run: dict) -> None:
        """Bytes Apache sent per kernel-core RPM in the cold topurl check (Range honoured)."""
        over = []
        for i in (len(self.kernels) - 2, len(self.kernels) - 1):
            for path in self.kernel_rpms(i):
                sent = [n for p, n in run["served"].items() if p.endswith("/" + path.name)]
                if sent:
                    over.append(sent[0] - self.header_bytes(path))
        self.target("kernel RPM bytes read over HTTP, Range (Apache access log)",
                    "<= header + 64 KiB",
                    f"header + {max(over, default=0) / 1024:.1f} KiB at most ({len(over)} "
                    f"kernel-core RPMs; statuses {', '.join(map(str, run['statuses']))})",
                    bool(over) and max(over) <= SLACK)

    def no_range(self) -> None:
        """Kernel-core headers from a server that ignores Range (tests/support/httpfiles)."""
        paths = self.kernel_rpms(len(self.kernels) - 1)
        worst_client = worst_server = 0
        seconds = 0.0
        with httpfiles.serve(self.kdir(len(self.kernels) - 1), ranges=False) as srv:
            fetcher = HeaderFetcher(workers=1)
            for path in paths:
                before = fetcher.bytes_read
                started = time.monotonic()
                hdr = fetcher.header(f"{srv.url}/{path.name}")
                seconds += time.monotonic() - started
                worst_client = max(worst_client, fetcher.bytes_read - before - hdr.header_bytes)
                srv.settle()  # the server stopped writing: its count is final
                worst_server = max(worst_server, srv.sent[path.name] - hdr.header_bytes)
            statuses = {status for _p, _r, status in srv.log}
        self.row(Row(f"3. K3 kernel-core headers, server ignoring Range ({len(paths)} RPMs)",
                     seconds, http=len(srv.log), bytes_read=sum(srv.sent.values()),
                     note="streamed, closed after the header (tests/support/httpfiles.py, "
                     f"status {', '.join(map(str, sorted(statuses)))})"))
        self.target("kernel RPM bytes read over HTTP, server ignores Range (client side)",
                    "<= header + 64 KiB", f"header + {worst_client / 1024:.1f} KiB at most; "
                    f"the server had pushed header + {_mb(worst_server)} into socket buffers "
                    f"of a {_mb(paths[0].stat().st_size)} file when the client closed",
                    worst_client <= SLACK)

    # ------------------------------------------------------------------ 4: policy
    def policy(self) -> None:
        """``check_policy('tag', ...)`` on Koji's real kojihub, DB functions patched."""
        from tests import realkojihub

        reason = realkojihub.unavailable()
        if reason:
            self.skipped["4"] = reason
            self.log(f"4. policy test skipped: {reason}")
            return
        self.log("4. kabi_compatible policy test (Koji's kojihub module, DB functions patched)")
        self.facts["load_policy"] = os.getloadavg()
        self.facts["tier_running_policy"] = probe.other_tier_running()
        from koji.context import context

        names = world.Names.of(world.stamp_of(self.manifest))
        rules = self.tmp / "policy-rules.yaml"
        rules.write_text(world.rules_text(names))
        conf = self.tmp / "policy-kabi.conf"
        conf.write_text(f"[kabi]\nrules = {rules}\n")
        deny = "deny kmod does not match the kABI of the kernel in this tag"
        policy = f"tag {names.kmods} :: {{\n    kabi_compatible !! {deny}\n}}\nall :: allow\n"
        groups = world.kmod_groups(self.root, self.manifest)
        chosen = [k["name"] + "-1.0-1.el9" for k in self.manifest["kmods"][:201]]
        truth = self.manifest["truth"][self.kernels[-1]["nvr"]]
        broken = {n for names_ in truth.values() for n in names_}
        with realkojihub.real_kojihub() as kojihub:
            data = realkojihub.HubData(self.tmp / "policy-topdir")
            with realkojihub.hub_context(data.topdir), data.patched(kojihub):
                admin = data.add_user("kojiadmin", ["admin"])
                alice = data.add_user("alice", ["kabi"])
                data.add_tag(names.kernel)
                data.add_tag(names.build, parents=[names.kernel])
                tag_id = data.add_tag(names.kmods)["id"]
                kernel = data.import_build([self.root / p for p in self.kernels[-1]["rpms"]],
                                           admin)
                data.tag_build(names.kernel, kernel)
                kmods = []
                for nvr in chosen:
                    build = data.import_build(groups[nvr], alice)
                    data.tag_build(names.kmods, build)
                    kmods.append(build)
                mod = realkojihub.load_plugin(conf)
                if mod.DISABLED:
                    raise RuntimeError(f"hub plugin disabled: {mod.DISABLED}")
                context.policy = realkojihub.hub_policies(mod, tag=policy)
                realkojihub.login(kojihub, alice)
                wrong: list[str] = []

                def decide(build: dict) -> float:
                    started = time.perf_counter()
                    allowed, _reason = kojihub.check_policy(
                        "tag", {"tag": tag_id, "build": build["id"], "operation": "tag"},
                        default="deny")
                    seconds = time.perf_counter() - started
                    if allowed == (build["name"] in broken):
                        wrong.append(build["nvr"])
                    return seconds

                cold = decide(kmods[0])
                new_kmod = [decide(b) for b in kmods[1:]]
                again = [decide(b) for b in kmods[1:]]
        started = time.perf_counter()  # what the cold call parses, for the record
        for path in self.kernel_rpms(len(self.kernels) - 1):
            deps_from_header(read_rpm_file(str(path)))
        self.facts["k3_parse"] = time.perf_counter() - started
        self.facts["policy_kmods"] = len(kmods)
        denied = sum(1 for b in kmods if b["name"] in broken)
        verdicts = (f"{denied} of {len(kmods)} denied, as the generator's truth" if not wrong
                    else f"{len(set(wrong))} verdicts DIFFER from the generator's truth")
        self.row(Row("4. policy: first call (kernel K3 read, all arches)", cold,
                     note=verdicts))
        self.row(Row(f"4. policy: kmod not seen before, median of {len(new_kmod)}",
                     statistics.median(new_kmod), note=f"p95 {_p95(new_kmod) * 1000:.1f} ms"))
        self.row(Row(f"4. policy: repeated kmod, median of {len(again)}",
                     statistics.median(again), note=f"p95 {_p95(again) * 1000:.1f} ms"))
        self.target("policy test, cold (first call of a hub process)", "<= 300 ms",
                    f"{cold * 1000:.0f} ms", cold <= 0.3)
        self.target("policy test, warm (kernel cached; new kmod each call)", "<= 20 ms",
                    f"median {statistics.median(new_kmod) * 1000:.1f} ms, "
                    f"p95 {_p95(new_kmod) * 1000:.1f} ms", _p95(new_kmod) <= 0.02)

    # ------------------------------------------------------------------ 5: baselines
    def shell_method(self) -> None:
        self.log("5. baseline: the seed's shell method")
        env = oracle._env()
        started = time.monotonic()
        lists = {}
        for i in (len(self.kernels) - 2, len(self.kernels) - 1):
            for path in self.kernel_rpms(i):
                out = self.tmp / f"{path.name}.syms"
                with open(out, "w") as f:
                    rpmq = subprocess.Popen(["rpm", "-qp", "--provides", str(path)],
                                            stdout=subprocess.PIPE, env=env,
                                            stderr=subprocess.DEVNULL)
                    grep = subprocess.Popen(["grep", "kernel("], stdin=rpmq.stdout,
                                            stdout=subprocess.PIPE, env=env)
                    rpmq.stdout.close()
                    sort = subprocess.Popen(["sort", "-u"], stdin=grep.stdout, stdout=f,
                                            env=env)
                    grep.stdout.close()
                    sort.wait()
                    grep.wait()
                    rpmq.wait()
                lists.setdefault(path.name.rsplit(".", 2)[-2], []).append(out)
        changed = 0
        for files in lists.values():
            res = subprocess.run(["comm", "-3", str(files[0]), str(files[1])], env=env,
                                 capture_output=True, text=True, check=True)
            changed += len(res.stdout.splitlines())
        seconds = time.monotonic() - started
        self.facts["shell_seconds"] = seconds
        self.row(Row("5. baseline: rpm -qp --provides | grep | sort -u; comm (K2 K3)",
                     seconds, note=f"{changed} lines differ"))

    def repoclosure(self) -> None:
        self.log("5. baseline: createrepo_c + dnf repoclosure, per arch, K3 + all kmods")
        createrepo, dnf = shutil.which("createrepo_c"), shutil.which("dnf")
        if not createrepo or not dnf:
            self.log("  createrepo_c or dnf missing: baseline skipped")
            return
        env = oracle._env()
        new = len(self.kernels) - 1
        cold = warm = 0.0
        broken: dict[str, set[str]] = {}
        kmod_rpms = [self.root / p for p in self.manifest["kmod_rpms"]]
        for arch in self.arches:
            work = self.tmp / f"repoclosure-{arch}"
            repo = work / "repo"
            repo.mkdir(parents=True)
            for p in list(self.kdir(new).glob("*.rpm")) + kmod_rpms:
                parts = p.name.rsplit(".", 2)
                if parts[-2] in (arch, "noarch"):
                    os.link(p, repo / p.name)
            started = time.monotonic()
            subprocess.run([createrepo, "--quiet", "--no-database", str(repo)], env=env,
                           check=True)
            argv = oracle.repoclosure_argv(dnf, repo, work, arch)
            res = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            cold += time.monotonic() - started
            started = time.monotonic()
            res = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            warm += time.monotonic() - started
            result = oracle._parse_repoclosure(res.stdout)
            if res.returncode not in (0, 1):
                raise RuntimeError(f"dnf repoclosure failed: {res.stderr}")
            broken[arch] = {nevra for nevra in result}
        self.facts["repoclosure_cold"] = cold
        self.facts["repoclosure_warm"] = warm
        self.facts["repoclosure_broken"] = _names(broken)
        self.row(Row(f"5. baseline: createrepo_c + dnf repoclosure, cold ({len(self.arches)} "
                     "arches)", cold))
        self.row(Row("5. baseline: dnf repoclosure on its warm metadata", warm))

    # ------------------------------------------------------------------ verdicts
    def compare(self) -> None:
        truth = self.manifest["truth"][self.kernels[-1]["nvr"]]
        expected = {a: sorted(f"{n}-1.0-1.el9.{a}" for n in names) for a, names in truth.items()}
        ours = {"koji-kabi check": self.facts["cli_broken"]}
        if self.runs:
            ours = {"kabiCheck (hub)": self.runs["hub"]["cold"]["broken"],
                    "kabiCheck (topurl)": self.runs["topurl"]["cold"]["broken"],
                    "kabiCheck warm": self.runs["topurl"]["warm"]["broken"], **ours}
        rc = self.facts.get("repoclosure_broken")
        same = all(v == (rc if rc is not None else expected) for v in ours.values())
        count = sum(len(v) for v in expected.values())
        self.target("verdicts identical to dnf repoclosure (per arch)",
                    "same incompatible kmod packages",
                    (f"{count} incompatible kmod packages of "
                     f"{len(self.manifest['kmod_rpms']) - len(self.manifest['kmods'])}; "
                     + (f"identical in all {len(ours)} of our runs" if same else "DIFFERENT: "
                        + json.dumps({k: _diff(v, rc or expected) for k, v in ours.items()}))
                     + ("" if rc is not None else " (no repoclosure: vs generator truth)")
                     + ("; equal to the generator's truth" if rc == expected else
                        "; NOT equal to the generator's truth" if rc is not None else "")),
                    same if rc is not None else None)
        if rc is not None:
            ratio = self.facts["repoclosure_cold"] / self.facts["check_seconds"]
            task = (f"; kabiCheck cold: "
                    f"{self.facts['repoclosure_cold'] / self.facts['task_cold']:.1f}x"
                    if "task_cold" in self.facts else "")
            self.target("from RPM files, empty cache, vs createrepo_c + dnf repoclosure",
                        ">= 5x faster",
                        f"{ratio:.1f}x (`koji-kabi check` {self.facts['check_seconds']:.1f} s vs "
                        f"{self.facts['repoclosure_cold']:.1f} s){task}", ratio >= 5)
            if "task_warm" in self.facts:
                ratio = self.facts["repoclosure_warm"] / self.facts["task_warm"]
                self.target("warm cache vs dnf repoclosure on warm metadata", ">= 10x faster",
                            f"{ratio:.1f}x (kabiCheck warm {self.facts['task_warm']:.2f} s vs "
                            f"{self.facts['repoclosure_warm']:.1f} s)", ratio >= 10)

    def table(self) -> str:
        lines = ["| scenario | wall s | vs baseline | hub round trips | HTTP GETs | bytes read "
                 "| peak RSS | notes |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for r in self.rows:
            base = self.facts.get(r.baseline) if r.baseline else None
            vs = f"{base / r.seconds:.1f}x" if base else ""
            name = r.name.replace("|", "\\|")
            lines.append(f"| {name} | {_secs(r.seconds)} | {vs} | {_opt(r.round_trips)} | "
                         f"{_opt(r.http)} | {_mb(r.bytes_read) if r.bytes_read is not None else ''}"
                         f" | {f'{r.rss_mb:.0f} MB' if r.rss_mb is not None else ''} | {r.note} |")
        return "\n".join(lines)

    def target_table(self) -> str:
        lines = ["| target | goal | measured | met |", "| --- | --- | --- | --- |"]
        for t in self.targets:
            met = {True: "met", False: "**missed**", None: "n/a"}[t.met]
            lines.append(f"| {t.what} | {t.goal} | {t.measured} | {met} |")
        return "\n".join(lines)

    def corpus_text(self) -> str:
        m, p = self.manifest, self.manifest["params"]
        core = self.kernel_rpms(len(self.kernels) - 1)[0]
        hdr = self.header_bytes(core)
        kmod = self.root / m["kmod_rpms"][1]
        if "3" in self.skipped:
            hub = f"Scenario 3 (the real hub) was skipped: {self.skipped['3']}."
        else:
            when = ("in this run" if self.facts.get("imported_now") else
                    "in an earlier run: the hub keeps its state, a corpus already there is "
                    "not imported again")
            hub = (f"Importing it into the real hub (kernels one at a time, each tagged, then "
                   f"the kmod builds {world.WORKERS} at a time, all by `CGImport` with an SCM "
                   f"source; package lists and tagging) took "
                   f"{self.facts['import_seconds']:.0f} s, {when}.")
        return (f"Scale **{self.scale}**: {len(self.kernels)} kernel builds x "
                f"{len(p['arches'])} arches ({', '.join(p['arches'])}), {p['symbols']:,} "
                f"`kernel()` provides per arch; churn per kernel {p['changed_frac']:.0%} CRCs "
                f"changed, +{p['added']} / -{p['removed']} symbols; {len(m['kmods']):,} kmod "
                f"builds ({len(m['kmod_rpms']):,} RPMs with the SRPMs) requiring "
                f"{p['min_requires']}-{p['max_requires']} symbols per arch; kernel-core RPMs "
                f"{_mb(core.stat().st_size)} (header {_mb(hdr)}), a kmod RPM "
                f"~{kmod.stat().st_size // 1024} KiB.  {len(m['files']):,} RPMs, "
                f"{_mb(m['bytes'])}, built with rpmbuild in {m['build_seconds']:.0f} s.  "
                + hub)

    def misses_text(self) -> str:
        """Why a target was missed, for the ones this machine missed."""
        out = []
        missed = {t.what for t in self.targets if t.met is False}
        rc_cold, rc_warm = self.facts.get("repoclosure_cold"), self.facts.get("repoclosure_warm")
        m, p = self.manifest, self.manifest["params"]
        packages = len(m["kmod_rpms"]) - len(m["kmods"])  # binary kmod RPMs (not SRPMs)
        requires = sum(k["requires"] for k in m["kmods"]) * len(self.arches)
        if any(w.startswith("from RPM files") for w in missed) and rc_cold:
            out.append(
                f"- **5x faster than createrepo_c + dnf repoclosure from RPM files**: 5x would "
                f"be {rc_cold / 5:.2f} s for all arches.  `koji-kabi check` reads every kmod "
                f"RPM header ({len(m['kmod_rpms']):,} files) and turns their {requires:,} "
                "`kernel()` requires into Python objects (a bulk, regex-validated parse: "
                "~0.4-0.6 us a dependency, plus ~0.15 us for the rpm bindings to hand each "
                "one over), after ~0.15 s of interpreter start-up; createrepo_c and libsolv "
                "do the same work in C.  The kernels' payloads, which createrepo_c reads in "
                "full, are a small part of its time on this corpus.")
        if any(w.startswith("warm cache") for w in missed) and rc_warm:
            warm = self.runs["topurl"]["warm"]
            out.append(
                f"- **10x faster than dnf repoclosure on warm metadata**: 10x would be "
                f"{rc_warm / 10:.2f} s.  The warm kabiCheck is the whole task on a real hub: "
                f"Koji metadata over XML-RPC ({warm['round_trips']} requests to the hub, "
                f"getLatestBuilds and listBuildRPMs of all {len(m['kmods']):,} kmod builds "
                "answered from PostgreSQL, every RPM dict through koji's pure-Python XML-RPC "
                f"unmarshaller), reading the new kernel's headers ({len(self.arches)} x "
                f"{p['symbols']:,} provides), loading {packages:,} cached kmod tables, "
                f"verdicts and fingerprints of {packages:,} packages, the delta and the report "
                "upload.  dnf reads libsolv's prepared solv files in C, from local files.")
        for kind in ("cold", "warm"):
            if f"kabiCheck end to end, {kind} (deps_source=topurl)" in missed:
                r = self.runs["topurl"][kind]
                out.append(
                    f"- **kabiCheck end to end, {kind}**: {r['seconds']:.1f} s on kojid, of "
                    f"which the hub spent {r['hub_seconds']:.1f} s answering the task's "
                    f"{r['round_trips']} requests ({_mb(r['reply_bytes'])} of XML-RPC "
                    "replies; its log has every SQL statement, `KojiDebug = On`); the rest "
                    "is the task process and the transfers.  " + self._load_text())
        if "policy test, cold (first call of a hub process)" in missed:
            out.append(
                "- **policy test, cold**: the first call parses the kernel's headers, "
                f"{len(self.kernel_rpms(len(self.kernels) - 1))} kernel-core RPMs with "
                f"{p['symbols']:,} provides each; reading and splitting their deps alone "
                f"took {self.facts['k3_parse']:.2f} s in the same process right after.  "
                + self._load_text(("load_policy",), "when it ran"))
        if not out:
            return ""
        return "## Missed targets: why\n\n" + "\n".join(out) + "\n"

    def _load_text(self, keys: tuple[str, ...] = ("load_before", "load_after"),
                   when: str = "around scenario 3") -> str:
        load = [self.facts[k] for k in keys if self.facts.get(k)]
        if not load:
            return ""
        tier = self.facts.get("tier_running_policy" if keys == ("load_policy",)
                              else "tier_running")
        return (f"Load average {' / '.join(f'{x[0]:.2f}' for x in load)} {when} on "
                f"{os.cpu_count()} cores"
                + ("; the real-Koji test tier ran on this machine meanwhile." if tier
                   else "."))

    def hub_text(self) -> str:
        """How scenario 3 ran (or why not), for RESULTS.md."""
        if "3" in self.skipped:
            return f"- Scenario 3 skipped: {self.skipped['3']}.\n"
        inst = world.INSTANCE
        load = self.facts.get("load_before"), self.facts.get("load_after")
        loads = " / ".join(f"{x[0]:.2f}" for x in load if x)
        tier = ("**was running** on this machine during scenario 3 (its load is in\n  our "
                "times)" if self.facts.get("tier_running") else "was not running")
        kojid = self.facts.get("kojid_rss")
        return f"""\
- kabiCheck (3): Koji's real hub (Apache + mod_wsgi + PostgreSQL) and kojid from
  ../shared/koji, brought up by ../shared/realkoji as a separate instance of the
  benchmark's own ({inst['REALKOJI_ROOT']}, ports {inst['REALKOJI_HTTP_PORT']}/\
{inst['REALKOJI_HTTPS_PORT']}/{inst['REALKOJI_PGPORT']}, koji-kabi installed into
  {inst['KOJI_KABI_IT_ROOT']} by tests/integration/realkoji.py), on the same machine.  Each
  check is a task created by `kabi.rebuild(K, dry_run=True)` on the hub and run by kojid
  in its forked task process; kojid re-reads the plugin settings (cache_dir, deps_source)
  in each task.  One task, no per-arch fan-out (`fanout_min_kmods` spreads it over
  builders in production), dry-run rules.  Cold: an empty cache_dir; warm: a cache_dir
  primed by a check of the previous kernel, so only the new kernel is read.  The harness
  runs the hub with `KojiDebug = On` (every SQL statement is logged), which a production
  hub would not: hub-side time includes that.
- The real-Koji test tier's own instance {tier}; load average before / after
  scenario 3: {loads} (other work on this machine competes with all these times).
- kabiCheck *wall s*: the task's run from the hub's task record (`start_ts` ->
  `completion_ts`: kojid's task process from opening to closing the task, report upload
  included; the queueing before it, in the notes, is not).  *hub round trips*: every
  request of the task's own session (kojid's subsession for the task), read from the
  hub's log of each call (call numbers 0..N: a multicall counts once, uploads included);
  "carrying per-kmod calls": requests with a getBuild / listBuildRPMs of a kmod build or
  a getRPMDeps of a kmod RPM (arguments from the hub's `Params` log lines).  *HTTP GETs*
  and, with `topurl`, *bytes read*: `GET /kojifiles` lines of Apache's access log and
  their `%b` body bytes; with deps from the hub, *bytes read* is the task process's
  `rchar` (`/proc/PID/io`: its read() calls, cache files and XML-RPC replies).  *peak RSS*:
  `VmHWM` of kojid's task process, sampled every 10 ms from `/proc` while the task runs
  (pages it still shares with kojid after the fork count too; kojid's own RSS: \
{f"{kojid:.0f} MB" if kojid else "not read"}).
"""

    def results_md(self) -> str:
        mem = _meminfo()
        cpu = _cpu_model()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        n_kmods = self.facts.get("policy_kmods")
        policy = (f"- Scenario 4 skipped: {self.skipped['4']}." if "4" in self.skipped else f"""\
- Policy test (4): Koji's real `kojihub` module (../shared/koji) in the benchmark
  process, the plugin loaded and its policy test registered as the hub does it, one
  `kojihub.check_policy('tag', ...)` call per row through Koji's real policy engine.  The
  hub's database functions (get_build, list_rpms, get_tag, readTaggedBuilds) are patched
  by tests/realkojihub.py to answer from the corpus RPM files (K3 and {n_kmods} kmod builds,
  copied under a temp topdir where `koji.pathinfo` puts them) through autospec mocks in
  memory: the database is not ours to measure, so no database time is in these numbers.
  Cold: the first call after the plugin's import (the kernel's headers read); warm: the
  kernel cached.""")
        return f"""# Benchmark results

Command: `scripts/bench.sh --scale {self.scale}` (bench/run.py).  Date: {now}.
Machine: {os.cpu_count()} cores ({cpu}), {mem} memory, {platform.platform()},
Python {platform.python_version()}.

{self.corpus_text()}

## Targets

{self.target_table()}

{self.misses_text()}
## Scenarios

{self.table()}

- *wall s*: the whole process for `koji-kabi` and the baselines; the task's run on kojid
  for kabiCheck (below); one `check_policy` call for the policy test.
- *vs baseline*: the baseline's time / ours (above 1: faster than the baseline).  Baselines:
  the seed's `rpm -qp --provides | grep | sort -u` + `comm` for `delta`; createrepo_c +
  dnf repoclosure from the RPM files (cold) for `affected`, `check` and cold kabiChecks;
  dnf repoclosure on its warm metadata for warm kabiChecks.  All per arch, summed.
- CLI *bytes read*: RPM bytes read by koji-kabi's own file reads; *peak RSS*: the
  process's own (`os.wait4`).
{self.hub_text()}- Server ignoring Range: tests/support/httpfiles.py, a stdlib HTTP server counting
  the bytes it writes to the socket (*bytes read* there: what it had written when the
  client hung up); the Range case is Apache of the real hub, from its access log.
{policy}
- Faster deps source measured: **{self.facts.get('faster_source', 'not measured')}**
  (`deps_source` in conf/kabi-builder.conf; `topurl` is the default).
"""


def _names(broken: dict[str, set[str]]) -> dict[str, list[str]]:
    return {a: sorted(v) for a, v in sorted(broken.items())}


def _diff(a: dict, b: dict) -> dict:
    out = {}
    for arch in sorted(set(a) | set(b)):
        x, y = set(a.get(arch, ())), set(b.get(arch, ()))
        if x != y:
            out[arch] = {"only ours": sorted(x - y)[:5], "only theirs": sorted(y - x)[:5]}
    return out


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def _secs(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s:.2f}"


def _opt(v: Optional[int]) -> str:
    return "" if v is None else str(v)


def _mb(n: Optional[int]) -> str:
    if n is None:
        return ""
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def _meminfo() -> str:
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        return f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--scale", choices=sorted(corpus.SCALES), default="small")
    ap.add_argument("--corpus", type=Path, default=corpus.DEFAULT_OUT)
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md",
                    help="where to write the results (default bench/RESULTS.md)")
    ap.add_argument("--no-baselines", action="store_true", help="skip rpm/comm and dnf")
    args = ap.parse_args(argv)
    manifest = corpus.build(args.scale, args.corpus)
    b = Bench(args.scale, args.corpus / args.scale, manifest)
    started = time.monotonic()
    try:
        import rpm

        rpm.setVerbosity(rpm.RPMLOG_EMERG)
        b.cli()
        try:
            if b.hub_up():
                b.task()
        finally:
            b.hub_down()  # the real hub is left down, whatever happened
        b.no_range()
        b.policy()
        if not args.no_baselines:
            b.shell_method()
            b.repoclosure()
        b.compare()
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    print()
    print(b.table())
    print()
    print(b.target_table())
    args.results.write_text(b.results_md())
    print(f"\nwritten: {args.results} ({time.monotonic() - started:.0f} s)")
    return 0 if all(t.met is not False for t in b.targets) else 1


if __name__ == "__main__":
    sys.exit(main())
