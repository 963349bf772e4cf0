"""Read kernels and kmods from any Koji hub with its standard calls, in multicall batches.

Used by the builder task and the CLI plugin; needs no hub plugin, so it works against a
public hub today.  Only the client library (``koji.ClientSession``) is used, never the
hub's code.  Round trips grow with (builds + RPMs) / batch, not with RPMs × arches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional, Protocol

from koji_kabi.errors import KabiError
from koji_kabi.model import Kernel, KmodRequirements
from koji_kabi.packages import (
    Triple,
    is_kernel_symbol_rpm,
    kernel_from_parts,
    kmod_from_deps,
    relevant_deps,
)

DEP_REQUIRE, DEP_PROVIDE = 0, 1  # koji.DEP_REQUIRE / koji.DEP_PROVIDE
BATCH = 100


class DepsCache(Protocol):
    """Parsed dependencies per RPM, keyed by content (see :mod:`koji_kabi.cache`)."""

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
                raise KabiError(f"{what} {args[0]}", f"hub call {name} failed: {exc}") from None
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
    answers = _multicall(session, [("getRPMDeps", (rpms[i]["id"], dep_type)) for i in missing],
                         batch, "rpm")
    for i, deps in zip(missing, answers):
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
                     arches: Optional[Iterable[str]] = None) -> Kernel:
    """A kernel build's symbol tables from the provides of its kernel-symbol RPMs."""
    arches = set(arches) if arches else None
    chosen = [r for r in rpms if _wanted(r, arches) and is_kernel_symbol_rpm(r["name"])]
    if not chosen:
        raise KabiError(_nvr(build), "not a kernel build: no kernel-core/modules RPMs"
                        + (f" for {', '.join(sorted(arches))}" if arches else ""))
    deps = deps_of(chosen, DEP_PROVIDE)
    parts = [(r["name"], r["arch"], d, nvra(r)) for r, d in zip(chosen, deps)]
    return kernel_from_parts(_nvr(build), parts)


def kmods_from_rpms(builds: Sequence[dict], rpms_by_build: Sequence[Sequence[dict]],
                    deps_of: DepsOf, arches: Optional[Iterable[str]] = None
                    ) -> list[tuple[dict, KmodRequirements]]:
    """Each kmod package (per arch) of the given builds, with the build it came from.

    Packages of those builds without ``kernel()`` requires (userspace tools,
    ``-common``) are passed over.
    """
    arches = set(arches) if arches else None
    chosen: list[tuple[dict, dict]] = []
    for build, rpms in zip(builds, rpms_by_build):
        chosen.extend((build, r) for r in rpms or () if _wanted(r, arches))
    both = deps_of([r for _b, r in chosen], None)
    out = []
    for (build, rpm), deps in zip(chosen, both):
        req, prov = split_deps(deps)
        kmod = kmod_from_deps(nvr=_nvr(build), name=rpm["name"], arch=rpm["arch"],
                              provides=prov, requires=req, source=nvra(rpm))
        if kmod.is_kmod:
            out.append((build, kmod))
    return out


def latest_builds(session: Any, tags: Sequence[str], event: Optional[int] = None,
                  package: Optional[str] = None, batch: int = BATCH) -> list[list[dict]]:
    """``getLatestBuilds`` of each tag (with inheritance), batched."""
    calls = [("getLatestBuilds", (tag, event, package)) for tag in tags]
    return _multicall(session, calls, batch, "tag")


def deps_from_header(hdr: Any, dep_type: Optional[int]) -> list[Triple]:
    """The :func:`rpm_deps` answer for one RPM, from its header (``RpmHeader``)."""
    req = relevant_deps((d.name, d.flags, d.version) for d in hdr.requires)
    prov = relevant_deps((d.name, d.flags, d.version) for d in hdr.provides)
    if dep_type == DEP_PROVIDE:
        return prov
    if dep_type == DEP_REQUIRE:
        return req
    return req + [("P:" + n, f, v) for n, f, v in prov]


class KojiView(Protocol):
    """What the checks need from Koji, whoever answers: a client session or the hub."""

    def build(self, ref: Any) -> Optional[dict]: ...

    def rpms(self, build_ids: Sequence[int]) -> list[list[dict]]: ...

    def latest(self, tags: Sequence[str], package: Optional[str] = None,
               event: Optional[int] = None) -> list[list[dict]]: ...

    def deps(self, rpms: Sequence[dict], dep_type: Optional[int]) -> list[list[Triple]]: ...


class SessionView:
    """A :class:`KojiView` over ``koji.ClientSession``: standard calls, multicall batches."""

    def __init__(self, session: Any, cache: Optional[DepsCache] = None,
                 batch: int = BATCH) -> None:
        self.session, self.cache, self.batch = session, cache, batch

    def build(self, ref: Any) -> Optional[dict]:
        return self.session.getBuild(ref)

    def rpms(self, build_ids: Sequence[int]) -> list[list[dict]]:
        return build_rpms(self.session, build_ids, self.batch)

    def latest(self, tags: Sequence[str], package: Optional[str] = None,
               event: Optional[int] = None) -> list[list[dict]]:
        return latest_builds(self.session, tags, event, package, self.batch)

    def deps(self, rpms: Sequence[dict], dep_type: Optional[int]) -> list[list[Triple]]:
        return rpm_deps(self.session, rpms, dep_type, self.batch, self.cache)
