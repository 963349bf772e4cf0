"""Ranged HTTP reads of RPM headers (koji_kabi.readers.remote) and SessionView's deps.

Against a local file server that counts the bytes it writes to the socket per path: a
kernel RPM padded with payload is never read past its header + 64 KiB, whether the server
honours Range or not; the deps read over HTTP equal the local header reader's.  Against an
in-memory hub behind koji's own ``MultiCallSession``: getRPMDeps answers become the same
``Dependencies``, in multicall batches, with faults that name the call.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import koji
import pytest

from koji_kabi.errors import KabiError
from koji_kabi.koji.cache import DirCache
from koji_kabi.koji.views import SessionView, deps_from_header, kernel_from_rpms, kmods_from_rpms
from koji_kabi.readers.packages import Dependencies
from koji_kabi.readers.remote import FIRST_RANGE, HeaderFetcher
from koji_kabi.readers.rpmheader import read_rpm_file
from tests.support import rpmfactory as rf
from tests.support.httpfiles import serve

PAYLOAD = 24 << 20  # so that reading the payload would show


class NoHub:
    """A session whose every hub call is recorded and fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        raise AssertionError(f"hub call {name}")


@dataclass
class Site:
    root: Path  # laid out like Koji's topdir: packages/<n>/<v>/<r>/<arch>/<nvra>.rpm
    paths: list[Path]  # the RPMs, kernel build then kmod build
    builds: list[dict]  # Koji-like build dicts
    rpms: list[dict]  # Koji-like RPM dicts, as paths
    bad: Path  # a truncated kernel-core
    junk: Path  # not an RPM

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    @property
    def core(self) -> Path:
        return next(p for p in self.paths if p.name.startswith("kernel-core-"))

    def pairs(self) -> list[tuple[dict, dict]]:
        """Each RPM with its build, as the checks pass them to ``deps``."""
        by_id = {b["id"]: b for b in self.builds}
        return [(by_id[r["build_id"]], r) for r in self.rpms]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (scripts/bootstrap.sh --test installs it)")
    root = tmp_path_factory.mktemp("topdir")
    cache = tmp_path_factory.mktemp("remote-cache")
    tables = rf.per_arch_tables(rf.random_symbols(3000, seed=41), ("x86_64",), seed=42)
    some = dict(sorted(tables["x86_64"].items())[:120])
    made = [rf.kernel_build("kernel", "5.14.0", "9.el9", ("x86_64",), tables,
                            split=("core", "modules"), payload_bytes=PAYLOAD),
            rf.kmod_build("kmod-remote", "1.0", "1.el9", "x86_64", some)]
    paths: list[Path] = []
    builds: list[dict] = []
    rpms: list[dict] = []
    for build_id, build in enumerate(made, 1):
        builds.append({"id": build_id, "name": build.name, "version": build.version,
                       "release": build.release, "nvr": build.nvr})
        out = root / "packages" / build.name / build.version / build.release / "x86_64"
        for path in rf.build_rpms(build, out, cache_dir=cache, srpm=False):
            hdr = read_rpm_file(str(path))
            paths.append(path)
            rpms.append({"id": 100 + len(rpms), "build_id": build_id, "name": hdr.name,
                         "version": hdr.version, "release": hdr.release, "arch": hdr.arch,
                         "payloadhash": hdr.digest})
    (root / "bad").mkdir()
    site = Site(root, paths, builds, rpms, root / "bad" / "core.rpm", root / "bad" / "junk.rpm")
    rf.truncate_copy(site.core, site.bad, read_rpm_file(str(site.core)).header_bytes - 100)
    rf.make_not_rpm(site.junk)
    return site


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
def test_only_the_header_is_read(site: Site, ranges: bool) -> None:
    with serve(site.root, ranges) as srv:
        fetcher = HeaderFetcher(workers=1)
        for path in site.paths:
            local = read_rpm_file(str(path))
            before = fetcher.bytes_read
            assert fetcher.header(f"{srv.url}/{site.rel(path)}") == local
            assert fetcher.bytes_read - before <= local.header_bytes + FIRST_RANGE, path.name
        srv.settle()
    core, hdr = site.rel(site.core), read_rpm_file(str(site.core)).header_bytes
    assert hdr > FIRST_RANGE  # the kernel needs a second request
    assert srv.sent[core] >= hdr  # the count sees what went out
    if ranges:
        for path in site.paths:
            limit = read_rpm_file(str(path)).header_bytes + FIRST_RANGE
            assert srv.sent[site.rel(path)] <= limit, path.name
        assert [r for p, r, _ in srv.log if p == core] == [
            f"bytes=0-{FIRST_RANGE - 1}", f"bytes={FIRST_RANGE}-{hdr - 1}"]
        assert [s for p, _, s in srv.log if p == site.rel(site.paths[-1])] == [206]
    else:
        # what sat in socket buffers when the client hung up was written too; the rest
        # of the 24 MB payload was not
        assert srv.sent[core] < site.core.stat().st_size - 8 * 1024 * 1024
        assert {s for _, _, s in srv.log} == {200}


def test_errors_are_one_line_naming_the_url(site: Site) -> None:
    with serve(site.root) as srv:
        fetcher = HeaderFetcher(workers=1)
        url = f"{srv.url}/packages/nope/1/1/x86_64/nope-1-1.x86_64.rpm"
        with pytest.raises(KabiError) as exc:
            fetcher.header(url)
        assert str(exc.value) == f"{url}: HTTP 404 Not Found"
        with pytest.raises(KabiError, match="truncated RPM: file ends inside the header"):
            fetcher.header(f"{srv.url}/{site.rel(site.bad)}")
        gone = f"{srv.url}/x.rpm"
    with pytest.raises(KabiError) as exc:
        HeaderFetcher(workers=1, timeout=5, retries=0).header(gone)
    assert str(exc.value).startswith(f"{gone}: cannot fetch: ")
    assert "\n" not in str(exc.value)


def test_server_errors_are_retried_with_backoff(site: Site) -> None:
    """A 503 (a web server being restarted) is retried; one that lasts is one line."""
    url = "/" + site.rel(next(p for p in site.paths if p.name.startswith("kmod-remote-")))
    with serve(site.root) as srv:
        srv.fail_next = 2
        hdr = HeaderFetcher(workers=1, backoff=0.01).header(srv.url + url)
        assert hdr.name == "kmod-remote"
        assert [status for _p, _r, status in srv.log] == [503, 503, 206]
        srv.fail_next = 10
        with pytest.raises(KabiError) as exc:
            HeaderFetcher(workers=1, retries=2, backoff=0.01).header(srv.url + url)
    assert str(exc.value) == f"{srv.url}{url}: HTTP 503 Service Unavailable"


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
def test_not_an_rpm_over_http(site: Site, ranges: bool) -> None:
    with serve(site.root, ranges) as srv, pytest.raises(KabiError, match="not an RPM file"):
        HeaderFetcher(workers=1).header(f"{srv.url}/{site.rel(site.junk)}")


def test_topurl_deps_equal_local_header_deps(site: Site) -> None:
    """A fresh view, told of no build before: each RPM's URL comes from the build it is
    paired with, and the hub is never asked."""
    hub = NoHub()
    with serve(site.root) as srv:
        got = SessionView(hub, topurl=srv.url + "/").deps(site.pairs())
    assert got == [deps_from_header(read_rpm_file(str(p))) for p in site.paths]
    assert all(isinstance(d, Dependencies) for d in got)
    assert {p for p, _, _ in srv.log} == {site.rel(p) for p in site.paths}
    core, kmod = got[site.paths.index(site.core)], got[-1]
    assert sum(n.startswith("kernel(") for n, _, _ in core.provides) == 3000
    assert not any(n.startswith("kernel(") for n, _, _ in core.requires)
    assert sum(n.startswith("kernel(") for n, _, _ in kmod.requires) == 120
    assert any(n.startswith("kmod(") for n, _, _ in kmod.provides)
    assert hub.calls == []


def test_topurl_view_consults_the_cache_first(site: Site, tmp_path: Path) -> None:
    hub = NoHub()
    with serve(site.root) as srv:
        first = SessionView(hub, DirCache(str(tmp_path / "cache")), topurl=srv.url).deps(
            site.pairs())
        srv.settle()
        assert {p for p, _, _ in srv.log} == {site.rel(p) for p in site.paths}
        assert all(srv.sent[site.rel(p)] > 0 for p in site.paths)
        srv.log.clear()
        srv.sent.clear()
        cache = DirCache(str(tmp_path / "cache"))  # what the first view left on disk
        again = SessionView(hub, cache, topurl=srv.url).deps(site.pairs())
        srv.settle()
    assert again == first and any(d.provides for d in first)
    assert cache.hits == len(site.rpms)
    assert srv.log == [] and not srv.sent
    assert hub.calls == []


def test_rpm_url_is_placed_by_the_build() -> None:
    """The build's package name and volume place a sub-package's file (koji.PathInfo)."""
    build = {"id": 7, "name": "kernel", "version": "5.14.0", "release": "9.el9",
             "volume_name": "archive"}
    rpm = {"id": 70, "build_id": 7, "name": "kernel-core", "version": "5.14.0",
           "release": "9.el9", "arch": "x86_64"}
    view = SessionView(NoHub(), topurl="https://koji.example/kojifiles/")
    assert view.rpm_url(build, rpm) == (
        "https://koji.example/kojifiles/vol/archive/packages/kernel/5.14.0/9.el9/x86_64/"
        "kernel-core-5.14.0-9.el9.x86_64.rpm")
    assert view.rpm_url(dict(build, volume_name="DEFAULT"), rpm).startswith(
        "https://koji.example/kojifiles/packages/kernel/")


# ---------------------------------------------------------------- deps from the hub


class MultiCallHub:
    """A hub behind koji's own ``MultiCallSession``: ``requests`` has the method names of
    each multiCall request sent; a ``fault`` RPM id answers with a fault."""

    logger = logging.getLogger("tests.multicallhub")

    def __init__(self, builds: list[dict], rpms: dict[int, list[dict]],
                 deps: dict[int, list[dict]]) -> None:
        self.builds = {b["id"]: b for b in builds}
        self.rpms, self.deps = rpms, deps
        self.requests: list[list[str]] = []
        self.faults: dict[int, tuple[int, str]] = {}  # rpm id -> (faultCode, faultString)

    def multicall(self, strict: bool = False, batch: Optional[int] = None) -> Any:
        return koji.MultiCallSession(self, strict=strict, batch=batch)

    def _callMethod(self, name: str, args: tuple, kwargs: dict) -> list:
        assert name == "multiCall", name
        (calls,) = args
        self.requests.append([c["methodName"] for c in calls])
        return [self._answer(c["methodName"], c["params"]) for c in calls]

    def _answer(self, method: str, params: tuple) -> Any:
        if method == "getRPMDeps" and params[0] in self.faults:
            code, text = self.faults[params[0]]
            return {"faultCode": code, "faultString": text}
        if method == "getRPMDeps":
            assert params == (params[0],)  # all kinds in one call
            return [self.deps[params[0]]]
        if method == "getBuild":
            return [self.builds.get(params[0])]
        if method == "listBuildRPMs":
            return [self.rpms[params[0]]]
        raise AssertionError(method)


def _dep(kind: int, name: str, version: str = "", flags: int = 0) -> dict:
    return {"type": kind, "name": name, "version": version, "flags": flags}


def _hub_world(kmods: int = 5) -> tuple[MultiCallHub, list[dict], dict[int, list[dict]]]:
    """A kernel build (id 1) with kernel-core, and ``kmods`` kmod builds, one RPM each."""
    builds = [{"id": 1, "name": "kernel", "version": "5.14.0", "release": "9.el9",
               "nvr": "kernel-5.14.0-9.el9"}]
    rpms = {1: [{"id": 10, "build_id": 1, "name": "kernel-core", "version": "5.14.0",
                 "release": "9.el9", "arch": "x86_64", "payloadhash": "core"}]}
    deps = {10: [_dep(koji.DEP_PROVIDE, "kernel(printk)", "0x00000001", 8),
                 _dep(koji.DEP_PROVIDE, "kernel(kmalloc)", "0x00000002", 8),
                 _dep(koji.DEP_PROVIDE, "kernel-uname-r", "5.14.0-9.el9.x86_64", 8),
                 _dep(koji.DEP_PROVIDE, "kernel-core", "5.14.0-9.el9", 8),
                 _dep(koji.DEP_REQUIRE, "/bin/sh"),
                 _dep(koji.DEP_CONFLICT, "kernel(printk)", "0x00000009", 8)]}
    for n in range(kmods):
        build_id, rpm_id = 2 + n, 20 + n
        builds.append({"id": build_id, "name": f"kmod-{n}", "version": "1", "release": "1",
                       "nvr": f"kmod-{n}-1-1"})
        rpms[build_id] = [{"id": rpm_id, "build_id": build_id, "name": f"kmod-{n}",
                           "version": "1", "release": "1", "arch": "x86_64",
                           "payloadhash": f"h{n}"}]
        deps[rpm_id] = [_dep(koji.DEP_REQUIRE, "kernel(printk)", "0x00000001", 8),
                        _dep(koji.DEP_REQUIRE, "kernel(kmalloc)", f"0x{n + 2:08x}", 8),
                        _dep(koji.DEP_REQUIRE, "glibc"),
                        _dep(koji.DEP_PROVIDE, f"kmod(m{n}.ko)"),
                        _dep(koji.DEP_OBSOLETE, "kernel(old_sym)", "0x00000001", 8)]
    return MultiCallHub(builds, rpms, deps), builds, rpms


def test_hub_deps_are_requires_and_provides() -> None:
    hub, builds, rpms = _hub_world(kmods=1)
    got = SessionView(hub).deps([(builds[0], rpms[1][0]), (builds[1], rpms[2][0])])
    assert got == [
        Dependencies(requires=(), provides=(("kernel(printk)", 8, "0x00000001"),
                                            ("kernel(kmalloc)", 8, "0x00000002"),
                                            ("kernel-uname-r", 8, "5.14.0-9.el9.x86_64"))),
        Dependencies(requires=(("kernel(printk)", 8, "0x00000001"),
                               ("kernel(kmalloc)", 8, "0x00000002")),
                     provides=(("kmod(m0.ko)", 0, ""),))]
    assert hub.requests == [["getRPMDeps", "getRPMDeps"]]  # one call per RPM, all kinds


def test_hub_calls_go_in_multicall_batches() -> None:
    hub, builds, rpms = _hub_world(kmods=4)
    view = SessionView(hub, batch=2)
    assert [b["nvr"] for b in view.builds([b["id"] for b in builds])] == [
        b["nvr"] for b in builds]
    assert [len(r) for r in hub.requests] == [2, 2, 1]
    hub.requests.clear()
    assert view.rpms([1, 2, 3]) == [rpms[1], rpms[2], rpms[3]]
    assert [len(r) for r in hub.requests] == [2, 1]
    hub.requests.clear()
    pairs = [(b, r) for b in builds for r in rpms[b["id"]]]
    assert len(view.deps(pairs)) == 5
    assert hub.requests == [["getRPMDeps"] * 2, ["getRPMDeps"] * 2, ["getRPMDeps"]]
    hub.requests.clear()
    assert view.deps([]) == [] and hub.requests == []


def test_hub_faults_name_the_call() -> None:
    hub, builds, rpms = _hub_world(kmods=3)
    hub.faults[21] = (1000, "No such rpm: 21")  # koji.GenericError's code
    view = SessionView(hub, batch=2)
    pairs = [(b, r) for b in builds for r in rpms[b["id"]]]
    with pytest.raises(KabiError) as exc:
        view.deps(pairs)
    assert str(exc.value) == "rpm 21: hub call getRPMDeps failed: No such rpm: 21"
    hub.faults[21] = (4242, "a code koji does not know")  # raised as a plain Fault
    with pytest.raises(KabiError, match=r"^rpm 21: hub call getRPMDeps failed: .*does not"):
        view.deps(pairs)
    with pytest.raises(KabiError, match=r"^99: no such build$"):
        view.builds([1, 99])


def test_hub_deps_and_parsed_results_are_cached(tmp_path: Path) -> None:
    """Cold: deps from the hub, kept with the parsed tables and kmods; warm: nothing is
    asked of the hub, not even deps (the parsed results are enough)."""
    hub, builds, rpms = _hub_world(kmods=3)
    cache = DirCache(str(tmp_path))
    view = SessionView(hub, cache)
    kernel = kernel_from_rpms(builds[0], rpms[1], view.deps, cache=view.cache)
    kmods = kmods_from_rpms(builds[1:], [rpms[b["id"]] for b in builds[1:]], view.deps,
                            cache=view.cache)
    assert hub.requests == [["getRPMDeps"], ["getRPMDeps"] * 3]
    assert [m.label for _b, m in kmods] == [f"kmod-{n}-1-1.x86_64" for n in range(3)]
    assert cache.deps("kmod-0-1-1.x86_64:h0") == Dependencies(
        (("kernel(printk)", 8, "0x00000001"), ("kernel(kmalloc)", 8, "0x00000002")),
        (("kmod(m0.ko)", 0, ""),))
    hub.requests.clear()

    def no_deps(pairs: Any) -> Any:
        raise AssertionError(f"deps read for {pairs}")

    warm = DirCache(str(tmp_path))
    again = kernel_from_rpms(builds[0], rpms[1], no_deps, cache=warm)
    assert dict(again.tables[next(iter(again.tables))].crcs) == {"printk": 1, "kmalloc": 2}
    assert dict(next(iter(kernel.tables.values())).crcs) == {"printk": 1, "kmalloc": 2}
    warm_kmods = kmods_from_rpms(builds[1:], [rpms[b["id"]] for b in builds[1:]], no_deps,
                                 cache=warm)
    assert [(b["nvr"], dict(m.requires)) for b, m in warm_kmods] == [
        (b["nvr"], dict(m.requires)) for b, m in kmods]
    assert SessionView(hub, warm).deps([(builds[1], rpms[2][0])]) == [
        cache.deps("kmod-0-1-1.x86_64:h0")]
    assert hub.requests == []


def test_deps_source_setting_is_validated(tmp_path: Path) -> None:
    from koji_kabi.koji.settings import BuilderSettings, load_settings

    conf = tmp_path / "kabi.conf"
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = ftp\n")
    with pytest.raises(KabiError, match=r"kabi\.conf: \[kabi\] deps_source: must be hub or "
                                        r"topurl, got 'ftp'"):
        load_settings(BuilderSettings, str(conf))
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = hub\n")
    assert load_settings(BuilderSettings, str(conf)).deps_source == "hub"
