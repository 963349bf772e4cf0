"""Read kernels and kmods from any Koji hub with its standard calls, in multicall batches.

Used by the builder task and the CLI plugin; needs no hub plugin, so it works against a
public hub today.  Only the client library (``koji.ClientSession``) is used, never the
hub's code.  Round trips grow with (builds + RPMs) / batch, not with RPMs × arches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional, Protocol

from koji_kabi.errors import KabiError, fault_message
from koji_kabi.koji.cache import DirCache, ParsedCache
from koji_kabi.model import Kernel, KmodRequirements, SymbolTable
from koji_kabi.readers.packages import (
    Triple,
    is_kernel_symbol_rpm,
    kernel_from_parts,
    kernel_from_tables,
    kernel_table_from_provides,
    kmod_from_deps,
    relevant_deps,
)

DEP_REQUIRE, DEP_PROVIDE = 0, 1  # koji.DEP_REQUIRE / koji.DEP_PROVIDE
TASK_FREE = 0  # koji.TASK_STATES["FREE"]
BATCH = 100


class DepsCache(Protocol):
    """Parsed dependencies per RPM, keyed by content (see :mod:`koji_kabi.koji.cache`)."""

    def get(self, key: str) -> Optional[list[Triple]]: ...

    def put(self, key: str, deps: list[Triple]) -> None: ...


def rpm_key(rpm: dict, dep_type: Optional[int]) -> str:
    """Content address of an RPM's deps: its NVRA and payload hash (same file, same deps)."""
    nvra = f"{rpm['name']}-{rpm['version']}-{rpm['release']}.{rpm['arch']}"
    kind = {DEP_PROVIDE: "P", DEP_REQUIRE: "R", None: "A"}[dep_type]
    return f"{nvra}:{rpm.get('payloadhash') or rpm['id']}:{kind}"


def _multicall(session: Any, calls: Sequence[tuple[str, tuple]], batch: int,
               what: str) -> list[Any]:
    """Run calls in multicall batches; a fault names the call that failed."""
    if not calls:
        return []
    import koji

    results: list[Any] = []
    for start in range(0, len(calls), batch):
        chunk = calls[start:start + batch]
        with session.multicall(strict=False, batch=batch) as m:
            pending = [getattr(m, name)(*args) for name, args in chunk]
        for (name, args), call in zip(chunk, pending):
            try:
                results.append(call.result)
            except koji.GenericError as exc:
                raise KabiError(f"{what} {args[0]}",
                                f"hub call {name} failed: {fault_message(exc)}") from None
    return results


def get_builds(session: Any, builds: Sequence[Any], batch: int = BATCH) -> list[dict]:
    """Build dicts for ids/NVRs; an unknown build is an error naming it."""
    infos = _multicall(session, [("getBuild", (b,)) for b in builds], batch, "build")
    for ref, info in zip(builds, infos):
        if not info:
            raise KabiError(str(ref), "no such build")
    return infos


def build_rpms(session: Any, build_ids: Sequence[int], batch: int = BATCH) -> list[list[dict]]:
    """The RPMs of each build (one ``listBuildRPMs`` per build, batched)."""
    return _multicall(session, [("listBuildRPMs", (b,)) for b in build_ids], batch, "build")


def rpm_deps(session: Any, rpms: Sequence[dict], dep_type: Optional[int], batch: int = BATCH,
             cache: Optional[DepsCache] = None) -> list[list[Triple]]:
    """Relevant deps of each RPM; only cache misses go to the hub.

    With ``dep_type`` None both requires and provides come in one call; a provide is
    then marked by a ``P:`` prefix on its name (see :func:`split_deps`).
    """
    out: list[Optional[list[Triple]]] = [None] * len(rpms)
    missing = []
    for i, rpm in enumerate(rpms):
        hit = cache.get(rpm_key(rpm, dep_type)) if cache is not None else None
        if hit is None:
            missing.append(i)
        else:
            out[i] = hit
    for start in range(0, len(missing), batch):  # batch by batch: the answers are big
        chunk = missing[start:start + batch]
        answers = _multicall(session, [("getRPMDeps", (rpms[i]["id"], dep_type))
                                       for i in chunk], batch, "rpm")
        for i, deps in zip(chunk, answers):
            triples = relevant_deps((d["name"], d["flags"], d["version"]) for d in deps or ()
                                    if dep_type is not None or d["type"] == DEP_REQUIRE)
            if dep_type is None:
                triples += [("P:" + n, f, v) for n, f, v in relevant_deps(
                    (d["name"], d["flags"], d["version"]) for d in deps or ()
                    if d["type"] == DEP_PROVIDE)]
            out[i] = triples
            if cache is not None:
                cache.put(rpm_key(rpms[i], dep_type), triples)
    return [o or [] for o in out]


def split_deps(deps: list[Triple]) -> tuple[list[Triple], list[Triple]]:
    """(requires, provides) of a combined list from ``rpm_deps(..., None)``."""
    req = [t for t in deps if not t[0].startswith("P:")]
    prov = [(n[2:], f, v) for n, f, v in deps if n.startswith("P:")]
    return req, prov


def _nvr(build: dict) -> str:
    return build.get("nvr") or f"{build['name']}-{build['version']}-{build['release']}"


def _wanted(rpm: dict, arches: Optional[Iterable[str]]) -> bool:
    name = rpm["name"]
    if rpm["arch"] == "src" or name.endswith(("-debuginfo", "-debugsource")):
        return False
    return not arches or rpm["arch"] in arches


def nvra(rpm: dict) -> str:
    return f"{rpm['name']}-{rpm['version']}-{rpm['release']}.{rpm['arch']}"


#: How deps are fetched for a list of RPM dicts: over XML-RPC, or from headers on disk.
DepsOf = Callable[[Sequence[dict], Optional[int]], list[list[Triple]]]


def kernel_from_rpms(build: dict, rpms: Sequence[dict], deps_of: DepsOf,
                     arches: Optional[Iterable[str]] = None,
                     parsed: Optional[ParsedCache] = None) -> Kernel:
    """A kernel build's symbol tables from the provides of its kernel-symbol RPMs.

    With ``parsed``, each RPM's table is taken from (and kept in) that cache.
    """
    arches = set(arches) if arches else None
    chosen = [r for r in rpms if _wanted(r, arches) and is_kernel_symbol_rpm(r["name"])]
    if not chosen:
        raise KabiError(_nvr(build), "not a kernel build: no kernel-core/modules RPMs"
                        + (f" for {', '.join(sorted(arches))}" if arches else ""))
    if parsed is None:
        deps = deps_of(chosen, DEP_PROVIDE)
        parts = [(r["name"], r["arch"], d, nvra(r)) for r, d in zip(chosen, deps)]
        return kernel_from_parts(_nvr(build), parts)
    tables: list[Optional[SymbolTable]] = [None] * len(chosen)
    todo = []
    for i, r in enumerate(chosen):
        found, tables[i] = parsed.table(rpm_key(r, DEP_PROVIDE), nvra(r))
        if not found:
            todo.append(i)
    for i, deps in zip(todo, deps_of([chosen[i] for i in todo], DEP_PROVIDE)):
        r = chosen[i]
        tables[i] = kernel_table_from_provides(deps, r["arch"], r["name"], nvra(r))
        parsed.put_table(rpm_key(r, DEP_PROVIDE), tables[i])
    return kernel_from_tables(_nvr(build), tables)


def kmods_from_rpms(builds: Sequence[dict], rpms_by_build: Sequence[Sequence[dict]],
                    deps_of: DepsOf, arches: Optional[Iterable[str]] = None,
                    parsed: Optional[ParsedCache] = None,
                    on_error: Optional[Callable[[KabiError], None]] = None
                    ) -> list[tuple[dict, KmodRequirements]]:
    """Each kmod package (per arch) of the given builds, with the build it came from.

    Packages of those builds without ``kernel()`` requires (userspace tools,
    ``-common``) are passed over.  With ``parsed``, each RPM's requirements are taken
    from (and kept in) that cache: a warm check reads and parses no dependencies.  An
    RPM whose dependencies are malformed raises, or with ``on_error`` is passed to it
    and left out: one bad package must not stop the check of a whole tag.
    """
    arches = set(arches) if arches else None
    chosen: list[tuple[dict, dict]] = []
    for build, rpms in zip(builds, rpms_by_build):
        chosen.extend((build, r) for r in rpms or () if _wanted(r, arches))
    kmods: list[Optional[KmodRequirements]] = [None] * len(chosen)
    if parsed is not None:
        for i, (build, rpm) in enumerate(chosen):
            kmods[i] = parsed.kmod(rpm_key(rpm, None), _nvr(build), rpm["name"], nvra(rpm))
    todo = [i for i, k in enumerate(kmods) if k is None]
    both = deps_of([chosen[i][1] for i in todo], None) if todo else []
    for i, deps in zip(todo, both):
        build, rpm = chosen[i]
        req, prov = split_deps(deps)
        try:
            kmods[i] = kmod = kmod_from_deps(nvr=_nvr(build), name=rpm["name"],
                                             arch=rpm["arch"], provides=prov, requires=req,
                                             source=nvra(rpm))
        except KabiError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        if parsed is not None:
            parsed.put_kmod(rpm_key(rpm, None), kmod)
    return [(build, kmod) for (build, _rpm), kmod in zip(chosen, kmods)
            if kmod is not None and kmod.is_kmod]


def latest_builds(session: Any, tags: Sequence[str], event: Optional[int] = None,
                  package: Optional[str] = None, batch: int = BATCH) -> list[list[dict]]:
    """``getLatestBuilds`` of each tag (with inheritance), batched."""
    calls = [("getLatestBuilds", (tag, event, package)) for tag in tags]
    return _multicall(session, calls, batch, "tag")


def deps_from_header(hdr: Any, dep_type: Optional[int]) -> list[Triple]:
    """The :func:`rpm_deps` answer for one RPM, from its header (``RpmHeader``)."""
    req = relevant_deps(hdr.requires)  # RpmDeps are (name, flags, version) tuples
    prov = relevant_deps(hdr.provides)
    if dep_type == DEP_PROVIDE:
        return prov
    if dep_type == DEP_REQUIRE:
        return req
    return req + [("P:" + n, f, v) for n, f, v in prov]


class KojiView(Protocol):
    """What the checks and the ``kabiCheck`` pipeline read from Koji, whoever answers.

    A client session (:class:`SessionView`), the hub itself (``kabi_hub.HubView``, which
    answers the reads of :mod:`koji_kabi.koji.checks`) or, in unit tests, an in-memory fake.
    """

    #: parsed per-RPM results kept across tasks, or None
    parsed: Optional[ParsedCache]

    def build(self, ref: Any) -> Optional[dict]: ...

    def builds(self, refs: Sequence[Any]) -> list[dict]:
        """Full build dicts (with ``source``), in order; an unknown one is a KabiError."""
        ...

    def build_tags(self, build_id: int) -> list[str]:
        """Names of the tags the build is in now."""
        ...

    def task_requests(self, task_ids: Sequence[int]) -> list[Optional[list]]:
        """Each task's request (its parameters); None for a task that cannot be read."""
        ...

    def rpms(self, build_ids: Sequence[int]) -> list[list[dict]]: ...

    def latest(self, tags: Sequence[str], package: Optional[str] = None,
               event: Optional[int] = None) -> list[list[dict]]: ...

    def deps(self, rpms: Sequence[dict], dep_type: Optional[int]) -> list[list[Triple]]: ...


class TaskHost(Protocol):
    """What the ``kabiCheck`` task does on the hub as its host: the only writes it makes."""

    def free_tasks(self) -> int:
        """How many tasks wait FREE in Koji (to hold rebuilds back while it is loaded)."""
        ...

    def submit_rebuilds(self, task_id: Optional[int], rebuilds: list[dict],
                        max_in_flight: int) -> dict:
        """``kabi.submitRebuilds``: claim each rebuild and create its ``build`` subtask in
        one hub transaction; ``{"rebuilds": [{key, status, task_id, check_task_id}],
        "in_flight": n}`` with status submitted, duplicate or deferred."""
        ...

    def children(self, task_id: Optional[int]) -> dict[str, int]:
        """The task's subtasks by label."""
        ...


class SessionView:
    """:class:`KojiView` and :class:`TaskHost` over ``koji.ClientSession``: standard calls
    in multicall batches of ``batch`` (fixed here, once), and the hub plugin's
    ``kabi.submitRebuilds`` (with a kojid host session).

    With ``topurl`` (Koji's files URL), deps come from the RPM headers themselves, read
    with ranged HTTP GETs (:mod:`koji_kabi.readers.remote`) instead of ``getRPMDeps``: the hub
    then answers only small metadata calls.  The cache is consulted first either way.
    """

    def __init__(self, session: Any, cache: Optional[DepsCache] = None,
                 batch: int = BATCH, topurl: Optional[str] = None) -> None:
        self.session, self.cache, self.batch = session, cache, batch
        #: parsed kmod requirements and kernel tables, next to the deps (a DirCache)
        self.parsed = ParsedCache(cache) if isinstance(cache, DirCache) else None
        self.topurl = topurl.rstrip("/") if topurl else None
        self.fetcher: Any = None  # a remote.HeaderFetcher, made on first use
        self._builds: dict[int, dict] = {}  # build dicts seen, for download paths

    def build(self, ref: Any) -> Optional[dict]:
        return self.seen([self.session.getBuild(ref)])[0]

    def builds(self, refs: Sequence[Any]) -> list[dict]:
        return self.seen(get_builds(self.session, refs, self.batch))

    def build_tags(self, build_id: int) -> list[str]:
        return [t["name"] for t in self.session.listTags(build=build_id)]

    def task_requests(self, task_ids: Sequence[int]) -> list[Optional[list]]:
        if not task_ids:
            return []
        with self.session.multicall(strict=False, batch=self.batch) as m:
            calls = [m.getTaskInfo(t, request=True) for t in task_ids]
        out: list[Optional[list]] = []
        for call in calls:
            try:
                info = call.result
            except Exception:  # a fault for one task loses only that one
                info = None
            out.append(info.get("request") if info else None)
        return out

    def rpms(self, build_ids: Sequence[int]) -> list[list[dict]]:
        return build_rpms(self.session, build_ids, self.batch)

    def latest(self, tags: Sequence[str], package: Optional[str] = None,
               event: Optional[int] = None) -> list[list[dict]]:
        return [self.seen(b) for b in latest_builds(self.session, tags, event, package,
                                                    self.batch)]

    def deps(self, rpms: Sequence[dict], dep_type: Optional[int]) -> list[list[Triple]]:
        if not self.topurl:
            return rpm_deps(self.session, rpms, dep_type, self.batch, self.cache)
        return self._deps_over_http(rpms, dep_type)

    def free_tasks(self) -> int:
        return self.session.listTasks(opts={"state": [TASK_FREE]},
                                      queryOpts={"countOnly": True})

    def submit_rebuilds(self, task_id: Optional[int], rebuilds: list[dict],
                        max_in_flight: int) -> dict:
        return self.session.kabi.submitRebuilds(task_id, rebuilds, max_in_flight)

    def children(self, task_id: Optional[int]) -> dict[str, int]:
        return {c["label"]: c["id"] for c in self.session.getTaskChildren(task_id)
                if c.get("label")}

    def seen(self, builds: Any) -> Any:
        """Remember build dicts got elsewhere: their RPMs' download paths need them."""
        for b in builds or ():
            if b and self.topurl:
                self._builds.setdefault(b["id"], b)
        return builds

    def rpm_url(self, rpm: dict) -> str:
        """``<topurl>/packages/<name>/<version>/<release>/<arch>/<nvra>.rpm``."""
        import koji

        pathinfo = koji.PathInfo(topdir=self.topurl)
        return pathinfo.build(self._builds[rpm["build_id"]]) + "/" + pathinfo.rpm(rpm)

    def _deps_over_http(self, rpms: Sequence[dict], dep_type: Optional[int]
                        ) -> list[list[Triple]]:
        from koji_kabi.readers.remote import HeaderFetcher

        out: list[Optional[list[Triple]]] = [None] * len(rpms)
        missing = []
        for i, rpm in enumerate(rpms):
            hit = self.cache.get(rpm_key(rpm, dep_type)) if self.cache is not None else None
            if hit is None:
                missing.append(i)
            else:
                out[i] = hit
        unknown = sorted({rpms[i]["build_id"] for i in missing} - set(self._builds))
        for build in get_builds(self.session, unknown, self.batch):
            self._builds[build["id"]] = build
        if self.fetcher is None:
            self.fetcher = HeaderFetcher()
        headers = self.fetcher.headers([self.rpm_url(rpms[i]) for i in missing])
        for i, hdr in zip(missing, headers):
            out[i] = deps_from_header(hdr, dep_type)
            if self.cache is not None:
                self.cache.put(rpm_key(rpms[i], dep_type), out[i])
        return [o or [] for o in out]
