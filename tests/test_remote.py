"""Ranged HTTP reads of RPM headers (koji_kabi.remote) and the topurl deps source.

Against a local file server that counts the bytes it writes to the socket per path: a
kernel RPM padded with payload is never read past its header + 64 KiB, whether the server
honours Range or not; the deps read over HTTP equal the local header reader's.
"""

from __future__ import annotations

import re
import shutil
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest

from koji_kabi.cache import DirCache
from koji_kabi.errors import KabiError
from koji_kabi.kojiclient import DEP_PROVIDE, DEP_REQUIRE, SessionView, deps_from_header
from koji_kabi.remote import FIRST_RANGE, HeaderFetcher
from koji_kabi.rpmheader import read_rpm_file
from tests.support import rpmfactory as rf

PAYLOAD = 24 << 20  # so that reading the payload would show


class FileServer(ThreadingHTTPServer):
    """Serves ``root`` on 127.0.0.1, honouring single ``Range: bytes=a-[b]`` or not."""

    def __init__(self, root: Path, ranges: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.ranges = root, ranges
        self.sent: Counter[str] = Counter()  # path -> body bytes written to the socket
        self.log: list[tuple[str, Optional[str], int]] = []  # (path, Range, status)
        self.busy = 0  # GETs being answered
        self.cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def settle(self) -> None:
        """Wait until no GET is being answered, so that the counts are final."""
        with self.cond:
            assert self.cond.wait_for(lambda: self.busy == 0, timeout=60)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the fetcher's pooled sessions expect
    server: FileServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.cond:
            self.server.busy += 1
        try:
            self._answer(self.server)
        finally:
            with self.server.cond:
                self.server.busy -= 1
                self.server.cond.notify_all()

    def _answer(self, srv: FileServer) -> None:
        rel = urllib.parse.unquote(self.path).lstrip("/")
        path = srv.root / rel
        size = path.stat().st_size if ".." not in rel.split("/") and path.is_file() else -1
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "") if srv.ranges else None
        start, end = (int(m[1]), min(int(m[2] or size - 1), size - 1)) if m else (0, size - 1)
        status = 404 if size < 0 else 416 if m and start >= size else 206 if m else 200
        with srv.cond:
            srv.log.append((rel, rng, status))
        if status >= 400:
            self.send_error(status)
            return
        self.send_response(status)
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        with path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := memoryview(f.read(min(left, 65536)))):
                left -= len(chunk)
                while chunk:
                    try:
                        n = self.connection.send(chunk)
                    except OSError:  # the client hung up: what was written is counted
                        self.close_connection = True
                        return
                    with srv.cond:
                        srv.sent[rel] += n
                    chunk = chunk[n:]


@contextmanager
def serve(root: Path, ranges: bool = True) -> Iterator[FileServer]:
    """A running :class:`FileServer`, shut down and closed on exit."""
    srv = FileServer(root, ranges)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


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
        HeaderFetcher(workers=1, timeout=5).header(gone)
    assert str(exc.value).startswith(f"{gone}: cannot fetch: ")
    assert "\n" not in str(exc.value)


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
    from koji_kabi.settings import BuilderSettings, load_settings

    conf = tmp_path / "kabi.conf"
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = ftp\n")
    with pytest.raises(KabiError, match=r"kabi\.conf: \[kabi\] deps_source: must be hub or "
                                        r"topurl, not 'ftp'"):
        load_settings(BuilderSettings, str(conf))
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = hub\n")
    assert load_settings(BuilderSettings, str(conf)).deps_source == "hub"
