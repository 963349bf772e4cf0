"""Read kernels and kmods from any Koji hub with its standard calls, in multicall batches.

Used by the builder task and the CLI plugin; needs no hub plugin, so it works against a
public hub today.  Only the client library (``koji.ClientSession``) is used, never the
hub's code.  Round trips grow with (builds + RPMs) / batch, not with RPMs × arches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional, Protocol

from koji_kabi.errors import KabiError, fault_message
from koji_kabi.koji.cache import RpmCache, nvra, rpm_key
from koji_kabi.model import Kernel, KmodRequirements, SymbolTable
from koji_kabi.readers.packages import (
    Dependencies,
    is_kernel_symbol_rpm,
    kernel_from_tables,
    kernel_table_from_provides,
    kmod_from_deps,
)

BATCH = 100

#: An RPM with the build it belongs to (whose fields place the RPM's file in Koji).
BuildRpm = tuple[dict, dict]


def _multicall(session: Any, calls: Sequence[tuple[str, tuple]], batch: int,
               what: str) -> list[Any]:
    """The answers of calls made in one multicall (koji sends ``batch`` calls a request);
    a fault names the call that failed."""
    if not calls:
        return []
    import xmlrpc.client

    import koji

    with session.multicall(strict=False, batch=batch) as m:
        pending = [getattr(m, name)(*args) for name, args in calls]
    results: list[Any] = []
    for (name, args), call in zip(calls, pending):
        try:
            results.append(call.result)
        except (koji.GenericError, xmlrpc.client.Fault) as exc:
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


def rpm_deps(session: Any, rpms: Sequence[dict], batch: int = BATCH) -> list[Dependencies]:
    """Each RPM's dependencies from one ``getRPMDeps`` (all kinds) per RPM, batched."""
    import koji

    out: list[Dependencies] = []
    # one multicall per batch: a kernel RPM's answer is 30,000 dicts, and those of all the
    # RPMs of a tag at once would take gigabytes before they are cut down to what is kept
    for start in range(0, len(rpms), batch):
        calls = [("getRPMDeps", (r["id"],)) for r in rpms[start:start + batch]]
        for answer in _multicall(session, calls, batch, "rpm"):
            triples = [(d["type"], (d["name"], d["flags"], d["version"])) for d in answer or ()]
            out.append(Dependencies.relevant(
                [t for kind, t in triples if kind == koji.DEP_REQUIRE],
                [t for kind, t in triples if kind == koji.DEP_PROVIDE]))
    return out


def _nvr(build: dict) -> str:
    return build.get("nvr") or f"{build['name']}-{build['version']}-{build['release']}"


def _wanted(rpm: dict, arches: Optional[Iterable[str]]) -> bool:
    name = rpm["name"]
    if rpm["arch"] == "src" or name.endswith(("-debuginfo", "-debugsource")):
        return False
    return not arches or rpm["arch"] in arches


#: How deps are read for (build, rpm) pairs: :meth:`KojiView.deps`.
DepsOf = Callable[[Sequence[BuildRpm]], list[Dependencies]]


def kernel_from_rpms(build: dict, rpms: Sequence[dict], deps_of: DepsOf,
                     arches: Optional[Iterable[str]] = None,
                     cache: Optional[RpmCache] = None) -> Kernel:
    """A kernel build's symbol tables from the provides of its kernel-symbol RPMs.

    With ``cache``, each RPM's table is taken from (and kept in) it.
    """
    arches = set(arches) if arches else None
    chosen = [r for r in rpms if _wanted(r, arches) and is_kernel_symbol_rpm(r["name"])]
    if not chosen:
        raise KabiError(_nvr(build), "not a kernel build: no kernel-core/modules RPMs"
                        + (f" for {', '.join(sorted(arches))}" if arches else ""))
    keys = [rpm_key(r) for r in chosen]
    found = [cache.table(k, nvra(r)) if cache is not None else (False, None)
             for k, r in zip(keys, chosen)]
    tables: list[Optional[SymbolTable]] = [table for _hit, table in found]
    todo = [i for i, (hit, _table) in enumerate(found) if not hit]
    for i, deps in zip(todo, deps_of([(build, chosen[i]) for i in todo]) if todo else ()):
        r = chosen[i]
        tables[i] = kernel_table_from_provides(deps.provides, r["arch"], r["name"], nvra(r))
        if cache is not None:
            cache.put_table(keys[i], tables[i])
    return kernel_from_tables(_nvr(build), tables)


def kmods_from_rpms(builds: Sequence[dict], rpms_by_build: Sequence[Sequence[dict]],
                    deps_of: DepsOf, arches: Optional[Iterable[str]] = None,
                    cache: Optional[RpmCache] = None,
                    on_error: Optional[Callable[[KabiError], None]] = None
                    ) -> list[tuple[dict, KmodRequirements]]:
    """Each kmod package (per arch) of the given builds, with the build it came from.

    Packages of those builds without ``kernel()`` requires (userspace tools,
    ``-common``) are passed over.  With ``cache``, each RPM's requirements are taken
    from (and kept in) it: a warm check reads and parses no dependencies.  An RPM whose
    dependencies are malformed raises, or with ``on_error`` is passed to it and left
    out: one bad package must not stop the check of a whole tag.
    """
    arches = set(arches) if arches else None
    chosen: list[BuildRpm] = []
    for build, rpms in zip(builds, rpms_by_build):
        chosen.extend((build, r) for r in rpms or () if _wanted(r, arches))
    keys = [rpm_key(r) for _b, r in chosen]
    kmods: list[Optional[KmodRequirements]] = [
        cache.kmod(k, _nvr(b), r["name"], nvra(r)) if cache is not None else None
        for k, (b, r) in zip(keys, chosen)]
    todo = [i for i, k in enumerate(kmods) if k is None]
    for i, deps in zip(todo, deps_of([chosen[i] for i in todo]) if todo else ()):
        build, rpm = chosen[i]
        try:
            kmods[i] = kmod = kmod_from_deps(nvr=_nvr(build), name=rpm["name"],
                                             arch=rpm["arch"], provides=deps.provides,
                                             requires=deps.requires, source=nvra(rpm))
        except KabiError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        if cache is not None:
            cache.put_kmod(keys[i], kmod)
    return [(build, kmod) for (build, _rpm), kmod in zip(chosen, kmods)
            if kmod is not None and kmod.is_kmod]


def latest_builds(session: Any, tags: Sequence[str], event: Optional[int] = None,
                  package: Optional[str] = None, batch: int = BATCH) -> list[list[dict]]:
    """``getLatestBuilds`` of each tag (with inheritance), batched."""
    calls = [("getLatestBuilds", (tag, event, package)) for tag in tags]
    return _multicall(session, calls, batch, "tag")


def deps_from_header(hdr: Any) -> Dependencies:
    """An RPM's dependencies from its header (``RpmHeader``: (name, flags, version) deps)."""
    return Dependencies.relevant(hdr.requires, hdr.provides)


class KojiView(Protocol):
    """What the checks and the ``kabiCheck`` pipeline read from Koji, whoever answers.

    A client session (:class:`SessionView`), the hub itself (``kabi_hub.HubView``, which
    answers the reads of :mod:`koji_kabi.koji.checks`) or, in unit tests, an in-memory fake.
    """

    #: per-RPM results kept across tasks (parsed kmods and kernel tables), or None
    cache: Optional[RpmCache]

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

    def deps(self, rpms: Sequence[BuildRpm]) -> list[Dependencies]:
        """The dependencies of each (build, rpm), in order."""
        ...


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
    then answers only small metadata calls.  The ``cache`` is consulted first either way.
    """

    def __init__(self, session: Any, cache: Optional[RpmCache] = None,
                 batch: int = BATCH, topurl: Optional[str] = None) -> None:
        self.session, self.cache, self.batch = session, cache, batch
        self.topurl = topurl.rstrip("/") if topurl else None
        self.fetcher: Any = None  # a remote.HeaderFetcher, made on first use

    def build(self, ref: Any) -> Optional[dict]:
        return self.session.getBuild(ref)

    def builds(self, refs: Sequence[Any]) -> list[dict]:
        return get_builds(self.session, refs, self.batch)

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
        return latest_builds(self.session, tags, event, package, self.batch)

    def deps(self, rpms: Sequence[BuildRpm]) -> list[Dependencies]:
        """From the cache, else from the headers over HTTP (``topurl``) or the hub."""
        keys = [rpm_key(r) for _b, r in rpms]
        found: dict[int, Dependencies] = {}
        if self.cache is not None:
            found = {i: d for i, k in enumerate(keys) if (d := self.cache.deps(k)) is not None}
        missing = [i for i in range(len(rpms)) if i not in found]
        if missing and self.topurl:
            got = self._deps_over_http([rpms[i] for i in missing])
        else:
            got = rpm_deps(self.session, [rpms[i][1] for i in missing], self.batch)
        for i, deps in zip(missing, got):
            found[i] = deps
            if self.cache is not None:
                self.cache.put_deps(keys[i], deps)
        return [found[i] for i in range(len(rpms))]

    def free_tasks(self) -> int:
        import koji

        return self.session.listTasks(opts={"state": [koji.TASK_STATES["FREE"]]},
                                      queryOpts={"countOnly": True})

    def submit_rebuilds(self, task_id: Optional[int], rebuilds: list[dict],
                        max_in_flight: int) -> dict:
        return self.session.kabi.submitRebuilds(task_id, rebuilds, max_in_flight)

    def children(self, task_id: Optional[int]) -> dict[str, int]:
        return {c["label"]: c["id"] for c in self.session.getTaskChildren(task_id)
                if c.get("label")}

    def rpm_url(self, build: dict, rpm: dict) -> str:
        """``<topurl>/packages/<name>/<version>/<release>/<arch>/<nvra>.rpm`` (``build``
        is the RPM's: its package name and volume place the file)."""
        import koji

        pathinfo = koji.PathInfo(topdir=self.topurl)
        return pathinfo.build(build) + "/" + pathinfo.rpm(rpm)

    def _deps_over_http(self, rpms: Sequence[BuildRpm]) -> list[Dependencies]:
        from koji_kabi.readers.remote import HeaderFetcher

        if self.fetcher is None:
            self.fetcher = HeaderFetcher()
        headers = self.fetcher.headers([self.rpm_url(b, r) for b, r in rpms])
        return [deps_from_header(hdr) for hdr in headers]


class RpmsOnce:
    """A view that lists each build's RPMs once, however many arches ask.

    The per-arch checks all need the RPM lists of the same kmod builds; asking once keeps
    hub round trips at kmods / batch instead of kmods x arches / batch.  Only for builds
    whose RPM set is final (complete kmods, a settled kernel).
    """

    def __init__(self, view: KojiView) -> None:
        self.view = view
        self._rpms: dict[int, list[dict]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)

    def rpms(self, build_ids: Sequence[int]) -> list[list[dict]]:
        missing = [b for b in dict.fromkeys(build_ids) if b not in self._rpms]
        if missing:
            self._rpms.update(zip(missing, self.view.rpms(missing)))
        return [self._rpms[b] for b in build_ids]
