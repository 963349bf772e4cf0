"""Ranged HTTP reads of RPM headers (koji_kabi.readers.remote) and the topurl deps source.

Against a local file server that counts the bytes it writes to the socket per path: a
kernel RPM padded with payload is never read past its header + 64 KiB, whether the server
honours Range or not; the deps read over HTTP equal the local header reader's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.koji.cache import DirCache
from koji_kabi.koji.views import DEP_PROVIDE, DEP_REQUIRE, SessionView, deps_from_header
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


def _view(session: NoHub, cache: Optional[DirCache], site: Site, topurl: str) -> SessionView:
    """A topurl view that knows the builds' paths (as if it had read them from the hub)."""
    view = SessionView(session=session, cache=cache, topurl=topurl)
    view.seen(site.builds)
    return view


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


@pytest.mark.parametrize("dep_type", [DEP_PROVIDE, DEP_REQUIRE, None])
def test_topurl_deps_equal_local_header_deps(site: Site, dep_type: Optional[int]) -> None:
    hub = NoHub()
    with serve(site.root) as srv:
        got = _view(hub, None, site, srv.url + "/").deps(site.rpms, dep_type)
    assert got == [deps_from_header(read_rpm_file(str(p)), dep_type) for p in site.paths]
    assert {p for p, _, _ in srv.log} == {site.rel(p) for p in site.paths}
    kernel = sum(n.startswith(("kernel(", "P:kernel(")) for n, _, _ in got[site.paths.index(
        site.core)])
    kmod = sum(n.startswith("kernel(") for n, _, _ in got[-1])
    assert (kernel, kmod) == (0 if dep_type == DEP_REQUIRE else 3000,
                              0 if dep_type == DEP_PROVIDE else 120)
    assert hub.calls == []


def test_topurl_view_consults_the_cache_first(site: Site, tmp_path: Path) -> None:
    hub = NoHub()
    with serve(site.root) as srv:
        first = _view(hub, DirCache(str(tmp_path / "cache")), site, srv.url).deps(site.rpms, None)
        srv.settle()
        assert {p for p, _, _ in srv.log} == {site.rel(p) for p in site.paths}
        assert all(srv.sent[site.rel(p)] > 0 for p in site.paths)
        srv.log.clear()
        srv.sent.clear()
        cache = DirCache(str(tmp_path / "cache"))  # what the first view left on disk
        again = _view(hub, cache, site, srv.url).deps(site.rpms, None)
        srv.settle()
    assert again == first and any(first)
    assert cache.hits == len(site.rpms)
    assert srv.log == [] and not srv.sent
    assert hub.calls == []


def test_deps_source_setting_is_validated(tmp_path: Path) -> None:
    from koji_kabi.koji.settings import BuilderSettings, load_settings

    conf = tmp_path / "kabi.conf"
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = ftp\n")
    with pytest.raises(KabiError, match=r"kabi\.conf: \[kabi\] deps_source: must be hub or "
                                        r"topurl, got 'ftp'"):
        load_settings(BuilderSettings, str(conf))
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = hub\n")
    assert load_settings(BuilderSettings, str(conf)).deps_source == "hub"
