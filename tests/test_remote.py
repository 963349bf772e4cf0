"""Ranged HTTP reads of RPM headers (koji_kabi.remote) and the topurl deps source.

Against the hub simulator's ``/kojifiles``, which counts the bytes it sends per path:
a kernel RPM padded with payload is never read past its header + 64 KiB, with Range
support and without it; the deps equal the local header reader's and ``getRPMDeps``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from koji_kabi.cache import DirCache
from koji_kabi.errors import KabiError
from koji_kabi.kojiclient import DEP_PROVIDE, DEP_REQUIRE, SessionView
from koji_kabi.remote import FIRST_RANGE, HeaderFetcher
from koji_kabi.rpmheader import read_rpm_file
from tests.hubsim import HubServer, State
from tests.support import rpmfactory as rf

PAYLOAD = 24 << 20  # so that reading the payload would show


@dataclass
class World:
    state: State
    kernel: list[Path]
    kmod: list[Path]
    bad: Path  # a truncated kernel-core

    def rel(self, path: Path) -> str:
        """Path under topdir (what /kojifiles serves) of an imported RPM."""
        return str(Path(self.state.rpm_file(path.name[:-4])).relative_to(self.state.topdir))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (scripts/bootstrap.sh --test installs it)")
    out = tmp_path_factory.mktemp("remote-rpms")
    cache = tmp_path_factory.mktemp("remote-cache")
    tables = rf.per_arch_tables(rf.random_symbols(3000, seed=41), ("x86_64",), seed=42)
    kernel = rf.build_rpms(rf.kernel_build("kernel", "5.14.0", "9.el9", ("x86_64",), tables,
                                           split=("core", "modules"), payload_bytes=PAYLOAD),
                           out / "kernel", cache_dir=cache, srpm=False)
    some = dict(sorted(tables["x86_64"].items())[:120])
    kmod = rf.build_rpms(rf.kmod_build("kmod-remote", "1.0", "1.el9", "x86_64", some),
                         out / "kmod", cache_dir=cache, srpm=False)
    core = next(p for p in kernel if p.name.startswith("kernel-core-"))
    state = State()
    state.add_tag("el9-kernel")
    state.import_rpms(kernel, tag="el9-kernel")
    state.import_rpms(kmod, tag="el9-kernel")
    bad = Path(state.topdir) / "bad" / core.name
    bad.parent.mkdir()
    rf.truncate_copy(core, bad, read_rpm_file(str(core)).header_bytes - 100)
    yield World(state, kernel, kmod, bad)
    state.cleanup()


def _core(world: World) -> Path:
    return next(p for p in world.kernel if p.name.startswith("kernel-core-"))


@pytest.mark.parametrize("ignore_range", [False, True], ids=["range", "no-range"])
def test_only_the_header_is_read(world: World, ignore_range: bool) -> None:
    with HubServer(world.state, ignore_range=ignore_range) as hub:
        fetcher = HeaderFetcher(workers=1)
        for path in world.kernel + world.kmod:
            local = read_rpm_file(str(path))
            before = fetcher.bytes_read
            remote = fetcher.header(f"{hub.topurl}/{world.rel(path)}")
            assert remote.digest == local.digest and remote.provides == local.provides
            assert remote.requires == local.requires and remote.nvra == local.nvra
            assert remote.header_bytes == local.header_bytes
            got = fetcher.bytes_read - before  # what came off the connection
            assert got <= local.header_bytes + FIRST_RANGE, path.name
        core = _core(world)
        hdr = read_rpm_file(str(core)).header_bytes
        assert hdr > FIRST_RANGE  # the kernel needs a second request
        sent = hub.bytes_served[world.rel(core)]
        if ignore_range:
            # the server also counts what sat in socket buffers when the client hung up;
            # the rest of the 24 MB payload was never sent
            assert sent < core.stat().st_size - 8 * 1024 * 1024
            assert all(r["status"] == 200 for r in hub.file_requests)
        else:
            assert sent <= hdr + FIRST_RANGE
            ranges = [r["range"] for r in hub.file_requests if r["path"] == world.rel(core)]
            assert ranges == [f"bytes=0-{FIRST_RANGE - 1}", f"bytes={FIRST_RANGE}-{hdr - 1}"]
            small = world.rel(world.kmod[0])
            assert [r["status"] for r in hub.file_requests if r["path"] == small] == [206]


def test_errors_are_one_line_naming_the_url(world: World) -> None:
    with HubServer(world.state) as hub:
        fetcher = HeaderFetcher(workers=1)
        url = f"{hub.topurl}/packages/nope/1/1/x86_64/nope-1-1.x86_64.rpm"
        with pytest.raises(KabiError) as exc:
            fetcher.header(url)
        assert str(exc.value) == f"{url}: HTTP 404 Not Found"
        bad = f"{hub.topurl}/bad/{world.bad.name}"
        with pytest.raises(KabiError, match="truncated RPM: file ends inside the header"):
            fetcher.header(bad)
        port = hub.port
    with pytest.raises(KabiError) as exc:
        HeaderFetcher(workers=1, timeout=5).header(f"http://127.0.0.1:{port}/x.rpm")
    assert str(exc.value).startswith(f"http://127.0.0.1:{port}/x.rpm: cannot fetch: ")
    assert "\n" not in str(exc.value)


def test_not_an_rpm_over_http(world: World, tmp_path: Path) -> None:
    junk = Path(world.state.topdir) / "bad" / "junk.rpm"
    rf.make_not_rpm(junk)
    with HubServer(world.state, ignore_range=True) as hub, \
            pytest.raises(KabiError, match="not an RPM file"):
        HeaderFetcher(workers=1).header(f"{hub.topurl}/bad/junk.rpm")


@pytest.mark.parametrize("dep_type", [DEP_PROVIDE, DEP_REQUIRE, None])
def test_topurl_deps_equal_hub_deps(world: World, tmp_path: Path, dep_type) -> None:
    with HubServer(world.state) as hub:
        session = hub.client()
        (kernel,) = session.getLatestBuilds("el9-kernel", package="kernel")
        (kmod,) = session.getLatestBuilds("el9-kernel", package="kmod-remote")
        rpms = [r for b in (kernel, kmod) for r in session.listBuildRPMs(b["id"])]
        over_hub = SessionView(session).deps(rpms, dep_type)
        hub.reset_log()
        view = SessionView(session, topurl=hub.topurl + "/")  # builds not seen: getBuild
        assert view.deps(rpms, dep_type) == over_hub
        assert not hub.calls("getRPMDeps") and len(hub.calls("getBuild")) == 2
        assert hub.round_trips == 1  # one multicall for both builds
        assert any(over_hub)


def test_topurl_view_consults_the_cache_first(world: World, tmp_path: Path) -> None:
    cache = DirCache(str(tmp_path / "cache"))
    with HubServer(world.state) as hub:
        session = hub.client()
        view = SessionView(session, cache, topurl=hub.topurl)
        builds = view.latest(["el9-kernel"])[0]  # the view learns the builds' paths
        rpms = [r for b in builds for r in view.rpms([b["id"]])[0]]
        hub.reset_log()
        first = view.deps(rpms, None)
        assert hub.round_trips == 0 and len(hub.file_requests) >= len(rpms)
        hub.reset_log()
        again = SessionView(session, cache, topurl=hub.topurl).deps(rpms, None)
        assert again == first
        assert hub.round_trips == 0 and hub.file_requests == []


def test_deps_source_setting_is_validated(tmp_path: Path) -> None:
    from koji_kabi.settings import BuilderSettings, load_settings

    conf = tmp_path / "kabi.conf"
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = ftp\n")
    with pytest.raises(KabiError, match=r"kabi\.conf: \[kabi\] deps_source: must be hub or "
                                        r"topurl, not 'ftp'"):
        load_settings(BuilderSettings, str(conf))
    conf.write_text("[kabi]\nrules = /r.yaml\ndeps_source = hub\n")
    assert load_settings(BuilderSettings, str(conf)).deps_source == "hub"


def test_kabicheck_with_topurl_gives_the_hub_answer(pipeline_rpms, tmp_path: Path) -> None:
    """The builder task with ``deps_source = topurl`` reads headers over HTTP, asks the hub
    for no deps at all, and reports exactly what the hub-deps task reports."""
    from tests.hubsim import kojid_options, run_task_handler
    from tests.kojitest import close_env, import_kernel, make_env, write_ini

    env = make_env(pipeline_rpms, tmp_path, rebuild={"dry_run": True})
    try:
        k2 = import_kernel(env, pipeline_rpms.k2)
        reports = {}
        for source in ("hub", "topurl"):
            env.builder._loaded.clear()
            write_ini(env.tmp / "builder.conf", rules=env.tmp / "rules.yaml",
                      cache_dir=env.tmp / f"cache-{source}", settle_seconds=0, poll=0.01,
                      tag_wait=0, deps_source=source)
            task = env.state.make_task("kabiCheck", [k2["id"], {}], owner="kojiadmin",
                                       channel="kabi")
            opts = kojid_options(str(env.tmp / "kojid"), topdir=env.state.topdir,
                                 topurl=env.hub.topurl, server=env.hub.url)
            env.hub.reset_log()
            run_task_handler(env.builder.KabiCheckTask, task, env.host, opts)
            deps_calls = len(env.hub.calls("getRPMDeps"))
            rpm_gets = [r for r in env.hub.file_requests if r["path"].endswith(".rpm")
                        and "/kernel-abi-stablelists-" not in r["path"]]  # a payload read
            assert (deps_calls > 0, not rpm_gets) == ((True, True) if source == "hub"
                                                      else (False, False)), source
            report = json.loads(env.hub.client().downloadTaskOutput(task, "kabi-report.json"))
            reports[source] = {k: report[k] for k in ("arches", "summary", "skipped")}
        assert reports["hub"] == reports["topurl"]
        assert reports["topurl"]["summary"]["incompatible"] == 5
    finally:
        close_env(env)


def test_arch_subtask_over_topurl_reuses_the_builds_it_read(pipeline_rpms,
                                                            tmp_path: Path) -> None:
    from koji_kabi.pipeline import check_arch_job
    from tests.kojitest import close_env, import_kernel, make_env

    env = make_env(pipeline_rpms, tmp_path)
    try:
        k2 = import_kernel(env, pipeline_rpms.k2)
        client = env.hub.client()
        k1 = client.getBuild("kernel-5.14.0-1.el9")
        kmods = client.getLatestBuilds("kmods9-testing")
        job = {"arch": "x86_64", "build_id": k2["id"], "previous_id": k1["id"],
               "kmod_build_ids": [b["id"] for b in kmods],
               "kmod_tags": ["kmods9-testing"] * len(kmods)}
        env.hub.reset_log()
        result = check_arch_job(SessionView(client, topurl=env.hub.topurl), job)
        assert not env.hub.calls("getRPMDeps")
        assert len(env.hub.calls("getBuild")) == 2 + len(kmods)  # one batch, not two
        assert {v["rpm"] for v in result["verdicts"] if not v["compatible"]} == {
            f"{n}.x86_64" for n in ("kmod-crc-1.0-1.el9", "kmod-gone-2.0-3.el9",
                                    "kmod-optout-1.0-1.el9", "kmod-nosrc-1.0-1.el9",
                                    "kmod-nvidia-550.1-1.el9")}
    finally:
        close_env(env)
