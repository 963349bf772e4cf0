"""The ``kabiCheck`` work, from a kernel build in Koji to verdicts, rebuilds and a report.

It reaches Koji only through two small protocols: :class:`~koji_kabi.koji.views.KojiView`
for what it reads and :class:`~koji_kabi.koji.views.TaskHost` for what the task does on
the hub (count FREE tasks, claim rebuilds, create subtasks).  The builder plugin passes a
:class:`~koji_kabi.koji.views.SessionView` as both; unit tests pass an in-memory fake, so
this module's logic is tested without a hub and what crosses the hub is tested on a real
one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from koji_kabi.analysis.rebuild import KmodBuild, RebuildRequest, combine, plan
from koji_kabi.errors import KabiError, fault_message
from koji_kabi.koji.checks import (
    FetchRpm,
    check_kernel_build,
    get_build,
    kmod_builds_in,
    previous_kernel,
    stablelists_of,
)
from koji_kabi.koji.rules import Rules, Watch
from koji_kabi.koji.settings import CheckOptions
from koji_kabi.koji.views import KojiView, RpmsOnce, TaskHost
from koji_kabi.readers.packages import is_kernel_symbol_rpm
from koji_kabi.report.jsondoc import document, to_json
from koji_kabi.results import RebuildDecision

log = logging.getLogger("koji_kabi.koji.pipeline")


@dataclass(frozen=True)
class Context:
    """What the task runs with: Koji reads, the task's hub actions, host-side services.

    ``view`` is one object for the whole task, so what it learnt (build paths, HTTP
    connections, caches) is reused; the builder gives the same SessionView as ``host``.
    Frozen: whatever the view needs (its batch size, cache) is given when it is made.
    """

    view: KojiView
    host: TaskHost
    rules: Rules
    task_id: Optional[int] = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    fanout: Optional[Callable[[list[dict]], list[dict]]] = None  # runs per-arch subtasks
    fetch: Optional[FetchRpm] = None  # makes an RPM readable here (for the stablelists)
    #: uploads a kmod build's SRPM to the hub's work area: build id -> path under work/
    stage_srpm: Optional[Callable[[int], str]] = None
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        log.info(message)
        self.notes.append(message)


# --------------------------------------------------------------------------- inputs

def settle(ctx: Context, build: dict, opts: CheckOptions) -> list[dict]:
    """The build's RPMs once complete.

    A task build or a CG import lands all RPMs in one transaction; ``koji import`` adds
    them one call at a time after the build is already COMPLETE, so wait until the RPM
    set has not changed for ``settle_seconds``.
    """
    rpms = ctx.view.rpms([build["id"]])[0]
    if build.get("task_id") or build.get("cg_id"):
        return rpms
    deadline = ctx.clock() + opts.settle_timeout
    last = sorted(r["id"] for r in rpms)
    stable_since = ctx.clock()
    while ctx.clock() < deadline:
        has_kernel = any(is_kernel_symbol_rpm(r["name"]) for r in rpms)
        if has_kernel and ctx.clock() - stable_since >= opts.settle_seconds:
            return rpms
        ctx.sleep(opts.poll)
        rpms = ctx.view.rpms([build["id"]])[0]
        ids = sorted(r["id"] for r in rpms)
        if ids != last:
            last, stable_since = ids, ctx.clock()
    ctx.note(f"RPM set of {build['nvr']} still changing after {opts.settle_timeout}s; "
             "checking what is there")
    return rpms


def choose_watch(ctx: Context, build: dict, opts: CheckOptions) -> Watch:
    """The rules entry for this kernel: by tag, or the package's only entry."""
    package = build["package_name"]
    if opts.tag:
        watch = ctx.rules.watch_for_tag(opts.tag)
        if watch is None:
            raise KabiError(opts.tag, "not a watched kernel tag in the rules")
        return watch
    candidates = ctx.rules.watches_for(package)
    if not candidates:
        raise KabiError(build["nvr"], f"no watch rule for kernel package {package}")
    if len(candidates) == 1:
        return candidates[0]
    deadline = ctx.clock() + opts.tag_wait
    while True:
        tags = set(ctx.view.build_tags(build["id"]))
        for watch in candidates:
            if watch.kernel_tag in tags:
                return watch
        if ctx.clock() >= deadline:
            raise KabiError(build["nvr"], "not tagged into any watched kernel tag ("
                            + ", ".join(w.kernel_tag for w in candidates) + ")")
        ctx.sleep(opts.poll)


def previous_build(ctx: Context, build: dict, watch: Watch,
                   opts: CheckOptions) -> Optional[dict]:
    """The kernel to compare with: as asked, else the latest other build of the package
    in the watched tag as it was when this build was created."""
    if opts.against:
        return get_build(ctx.view, opts.against)
    return previous_kernel(ctx.view, build, watch.kernel_tag)


def recorded_sources(ctx: Context, builds: list[dict]) -> dict[int, Optional[str]]:
    """The SCM URL each build was built from: ``build.source``, else its task's request.

    Tag listings (``getLatestBuilds``) carry no ``source``: those builds are read in full.
    """
    partial = [b["id"] for b in builds if "source" not in b]
    if partial:
        full = {b["id"]: b for b in ctx.view.builds(partial)}
        builds = [full.get(b["id"], b) for b in builds]
    out = {b["id"]: b.get("source") for b in builds}
    need = [b for b in builds if not out[b["id"]] and b.get("task_id")]
    # a task that cannot be read (None) only loses that build's source
    for b, request in zip(need, ctx.view.task_requests([b["task_id"] for b in need])):
        if request and isinstance(request[0], str):
            out[b["id"]] = request[0]
    return out


# --------------------------------------------------------------------------- per arch

def kernel_stablelists(view: KojiView, build: dict, fetch: Optional[FetchRpm],
                       notes: Optional[list[str]] = None) -> dict:
    """The kernel's stablelists, or none (with a note) when they cannot be read."""
    if fetch is None:
        return {}
    try:
        return stablelists_of(view, build, fetch)
    except (KabiError, OSError) as exc:
        if notes is not None:
            notes.append(f"stablelist not used: {exc}")
        return {}


def check_arch_job(view: KojiView, job: dict, fetch: Optional[FetchRpm] = None) -> dict:
    """One arch of a check, from build ids: what a fan-out subtask runs and returns."""
    ids = [job["build_id"]] + ([job["previous_id"]] if job["previous_id"] else [])
    builds = view.builds(ids + list(job["kmod_build_ids"]))  # one batch for them all
    kernel, previous = builds[0], (builds[1] if job["previous_id"] else None)
    kmods = [dict(b, kabi_tag=t) for b, t in zip(builds[len(ids):], job["kmod_tags"])]
    lists = kernel_stablelists(view, kernel, fetch)
    return dict(to_json(check_kernel_build(view, kernel, previous, kmods, [job["arch"]], lists,
                                           job["watched_tags"])), arch=job["arch"])


# --------------------------------------------------------------------------- submit

def submit(ctx: Context, requests: list[RebuildRequest], dry_run: bool
           ) -> list[RebuildDecision]:
    """Claim and submit rebuilds within the limits; every request gets a status line.

    Claims and subtasks are made by the hub in one call (``TaskHost.submit_rebuilds``), so
    a crash can never leave a claim without its rebuild; a re-run of the same task finds
    its rebuilds made.  If that call fails, the rebuilds the task already has are still
    reported as submitted and the others as not submitted, with the reason
    (:class:`SubmitFailed`).
    """
    limits = ctx.rules.limits
    out = []
    todo = requests[: limits.max_per_task]
    for r in requests[limits.max_per_task:]:
        out.append(_status(r, "deferred", f"over max_per_task={limits.max_per_task}"))
    if dry_run:
        return [_status(r, "dry-run", "would be submitted") for r in todo] + out
    if todo and limits.hold_back_free_tasks:
        waited = 0.0
        while ctx.host.free_tasks() > limits.hold_back_free_tasks:
            if waited >= limits.hold_back_seconds:
                return [_status(r, "deferred", "Koji is loaded (free tasks over "
                                f"{limits.hold_back_free_tasks})") for r in todo] + out
            ctx.sleep(30)
            waited += 30
    todo, unstaged = _staged(ctx, todo)
    out += unstaged
    if not todo:
        return out
    try:
        answer = ctx.host.submit_rebuilds(ctx.task_id, [{
            "key": r.claim_key, "package": r.package, "fingerprint": r.fingerprint,
            "nvr": r.nvr, "kernel": r.kernel, "label": _label(r),
            "arglist": [r.source, r.target, r.build_opts()], "channel": "default",
            "priority": limits.priority, "strategy": r.strategy,
            "macro": dict([r.macro]) if r.macro else None} for r in todo],
            limits.max_in_flight)
    except Exception as exc:  # the hub's answer is lost: what does the task have now?
        problem = fault_message(exc)
        made = _children_or_none(ctx) or {}
        lines = [_status(r, "submitted", f"build task {made[_label(r)]}", made[_label(r)])
                 if _label(r) in made else
                 _status(r, "not submitted", f"submitting failed: {problem}") for r in todo]
        if all(_label(r) in made for r in todo):  # made before the answer got lost
            ctx.note(f"the hub's answer to submitting rebuilds was lost ({problem}); "
                     "every rebuild exists")
            return lines + out
        raise SubmitFailed(problem, lines + out) from None
    by_key = {a["key"]: a for a in answer["rebuilds"]}
    for r in todo:
        a = by_key[r.claim_key]
        if a["status"] == "submitted":
            out.append(_status(r, "submitted", f"build task {a['task_id']}", a["task_id"]))
        elif a["status"] == "duplicate":
            out.append(_status(r, "duplicate", f"already submitted by task "
                               f"{a['check_task_id']} (build task {a['task_id']})"))
        elif a["status"] == "failed before":
            out.append(_status(r, "failed before", f"build task {a['task_id']} failed for "
                               "this kmod build and kernel; not resubmitted until either "
                               "changes", a["task_id"]))
        elif a["status"] == "not submitted":
            out.append(_status(r, "not submitted", a.get("detail") or "refused by the hub"))
        else:
            out.append(_status(r, "deferred", f"over max_in_flight={limits.max_in_flight}"))
    return out


def _staged(ctx: Context, requests: list[RebuildRequest]
            ) -> tuple[list[RebuildRequest], list[RebuildDecision]]:
    """Requests whose source is the build's SRPM get it uploaded to the hub's work area
    (as ``koji build`` does for a local SRPM); one that cannot is not submitted."""
    ready, failed = [], []
    for r in requests:
        if r.source:
            ready.append(r)
            continue
        try:
            if ctx.stage_srpm is None:
                raise KabiError(r.nvr, "this task cannot upload SRPMs")
            ready.append(replace(r, source=ctx.stage_srpm(r.build_id)))
        except Exception as exc:  # one rebuild, reported; never the whole check
            failed.append(_status(r, "not submitted",
                                  f"its SRPM could not be staged: {fault_message(exc)}"))
    return ready, failed


class SubmitFailed(Exception):
    """Submitting rebuilds failed; ``rebuilds`` says what is known of each."""

    def __init__(self, problem: str, rebuilds: list[RebuildDecision]) -> None:
        super().__init__(problem)
        self.rebuilds = rebuilds


def _children_or_none(ctx: Context) -> Optional[dict[str, int]]:
    try:
        return ctx.host.children(ctx.task_id)
    except Exception:  # the hub is gone: nothing is known
        return None


def _label(r: RebuildRequest) -> str:
    return f"kabi-{r.package}-{r.fingerprint[:12]}"


def _status(r: RebuildRequest, status: str, detail: str,
            task_id: Optional[int] = None) -> RebuildDecision:
    return RebuildDecision(r, status, detail, task_id)


# --------------------------------------------------------------------------- the task

def run_check(ctx: Context, build_ref: Any, opts: CheckOptions) -> dict:
    """The whole check; returns the report (JSON-able, CRCs as ``0x`` strings)."""
    started = ctx.clock()
    build = get_build(ctx.view, build_ref)
    if build["package_name"] not in ctx.rules.kernel_packages:
        raise KabiError(build["nvr"], f"{build['package_name']} is not a watched kernel "
                        "package (rules: kernel_packages)")
    log.info("kabiCheck of %s: waiting for its RPM set to settle", build["nvr"])
    rpms = settle(ctx, build, opts)
    arches = sorted({r["arch"] for r in rpms if r["arch"] not in ("src", "noarch")
                     and is_kernel_symbol_rpm(r["name"])})
    if opts.arches:
        arches = [a for a in arches if a in opts.arches]
    if not arches:
        raise KabiError(build["nvr"], "not a kernel build: no kernel-core/modules RPMs")
    watch = choose_watch(ctx, build, opts)
    previous = previous_build(ctx, build, watch, opts)
    kmods = kmod_builds_in(ctx.view, watch.kmod_tags)
    log.info("%d RPMs, arches %s; previous kernel %s; %d kmod builds in %s", len(rpms),
             ", ".join(arches), previous["nvr"] if previous else "none", len(kmods),
             ", ".join(watch.kmod_tags))
    if ctx.fanout is not None and len(arches) > 1 and len(kmods) >= opts.fanout_min_kmods:
        jobs = [{"arch": a, "build_id": build["id"],
                 "previous_id": previous["id"] if previous else None,
                 "kmod_build_ids": [b["id"] for b in kmods],
                 "kmod_tags": [b["kabi_tag"] for b in kmods],
                 "watched_tags": list(watch.kmod_tags)} for a in arches]
        per_arch = ctx.fanout(jobs)
    else:
        lists = kernel_stablelists(ctx.view, build, ctx.fetch, ctx.notes)
        view = RpmsOnce(ctx.view)
        per_arch = [dict(to_json(check_kernel_build(view, build, previous, kmods, [a], lists,
                                                    watch.kmod_tags)), arch=a)
                    for a in arches]
    by_build: dict[int, list[dict]] = {}
    for problem in dict.fromkeys(p for r in per_arch for p in r.get("unreadable", ())):
        ctx.note(f"kmod not checked: {problem}")
    for arch_result in per_arch:
        for k in arch_result["verdicts"]:
            by_build.setdefault(k["build_id"], []).append(k)
    sources = recorded_sources(ctx, [b for b in kmods if b["id"] in by_build
                                     and not all(r["compatible"] for r in by_build[b["id"]])])
    broken = []
    for build_id, rows in sorted(by_build.items()):
        if all(r["compatible"] for r in rows):
            continue
        symbols = sorted({p["symbol"] for r in rows for p in r["missing"] + r["mismatched"]})
        broken.append(KmodBuild(build_id, rows[0]["nvr"], rows[0]["package"],
                                sources.get(build_id), combine(r["fingerprint"] for r in rows),
                                tuple(symbols), rows[0]["tag"]))
    log.info("verdicts: %d kmod builds checked, %d incompatible", len(by_build), len(broken))
    requests, skipped = plan(broken, build["nvr"], ctx.rules, watch,
                             f"{build['version']}-{build['release']}")
    dry_run = ctx.rules.dry_run if opts.dry_run is None else opts.dry_run
    error = None
    try:
        rebuilds = submit(ctx, requests, dry_run)
    except SubmitFailed as exc:
        rebuilds, error = exc.rebuilds, f"submitting rebuilds failed: {exc}"
    compatible = sum(1 for rows in by_build.values() if all(r["compatible"] for r in rows))
    statuses = Counter(r.status for r in rebuilds)
    log.info("rebuilds: %s; %d skipped", ", ".join(
        f"{n} {status}" for status, n in sorted(statuses.items())) or "none", len(skipped))
    return document(
        "kabi-report", kernel=build["nvr"], kernel_build_id=build["id"],
        previous=previous["nvr"] if previous else None,
        kernel_tag=watch.kernel_tag, kmod_tags=list(watch.kmod_tags),
        arches=per_arch, dry_run=dry_run,
        summary={
            "kmod_builds": len(kmods), "kmod_builds_checked": len(by_build),
            "compatible": compatible, "incompatible": len(broken),
            "rebuilds_submitted": statuses["submitted"],
            "rebuilds": dict(statuses),
            "broken": [{"nvr": b.nvr, "package": b.package, "symbols": len(b.broken_symbols)}
                       for b in broken],
            "rebuild_task_ids": [r.task_id for r in rebuilds if r.task_id],
            "delta": {d["key"]: {"added": len(d["added"]), "removed": len(d["removed"]),
                                 "changed": len(d["changed"])}
                      for a in per_arch if a["delta"] for d in a["delta"]["deltas"]},
        },
        rebuilds=rebuilds,
        skipped=[{"nvr": s.nvr, "package": s.package, "reason": s.reason} for s in skipped],
        notes=list(ctx.notes),
        error=error,  # the report of a check that could not finish: the task fails
        seconds=round(ctx.clock() - started, 3),
    )
