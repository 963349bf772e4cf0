"""Koji's own hub code, for unit tests of the hub plugin (the way Koji tests its plugins).

The real ``kojihub`` package comes from Koji's unmodified source beside the project
(``<repo>/../shared/koji``), appended to ``sys.path`` after site-packages so ``koji`` stays
the venv's client library.  Only the hub functions that touch the database are patched:
:class:`HubData` answers them from real RPM files laid out under a temp topdir where
``koji.pathinfo`` puts them.  The plugin is loaded and registered as the hub does it
(``koji.plugin.PluginTracker``, ``kojixmlrpc.HandlerRegistry``, ``kojixmlrpc.get_policy``)
with a temp config named by ``KOJI_KABI_HUB_CONFIG``, which it reads at import.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Optional
from unittest import mock

import koji
import koji.plugin
from koji.context import context

REPO = Path(__file__).resolve().parent.parent
KOJI_SOURCE = REPO.parent / "shared" / "koji"
PLUGIN_DIR = REPO / "koji_kabi_hub"
PLUGIN = "kabi_hub"
CONFIG_ENV = "KOJI_KABI_HUB_CONFIG"

#: kojihub functions that read or write the database, patched by :meth:`HubData.patched`
PATCHED = ("get_build", "list_rpms", "get_tag", "readTaggedBuilds", "make_task")

_REAL: dict[str, ModuleType] = {}  # the real kojihub modules, imported once per process


def unavailable() -> Optional[str]:
    """Why Koji's hub code cannot be used here, or None."""
    if not (KOJI_SOURCE / "kojihub" / "kojihub.py").is_file():
        return (f"Koji's source is not at {KOJI_SOURCE} (<repo>/../shared/koji): the hub "
                "plugin unit tests import its real kojihub module")
    try:
        import psycopg2  # noqa: F401  (kojihub.db imports it)
    except ImportError as exc:
        return f"the real kojihub needs psycopg2 ({exc}): pip install psycopg2-binary"
    return None


def _kojihub_names() -> list[str]:
    return [n for n in sys.modules if n == "kojihub" or n.startswith("kojihub.")]


def _import_real() -> None:
    """Import Koji's kojihub package from KOJI_SOURCE, whatever else ``kojihub`` names."""
    if str(KOJI_SOURCE) not in sys.path:
        sys.path.append(str(KOJI_SOURCE))  # after site-packages: koji stays the venv's
    hidden = {n: sys.modules.pop(n) for n in _kojihub_names()}
    try:
        pkg = KOJI_SOURCE / "kojihub"
        spec = importlib.util.spec_from_file_location(
            "kojihub", pkg / "__init__.py", submodule_search_locations=[str(pkg)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["kojihub"] = module
        spec.loader.exec_module(module)
        importlib.import_module("kojihub.kojixmlrpc")
        _REAL.update({n: sys.modules[n] for n in _kojihub_names()})
    finally:
        for name in _kojihub_names():
            del sys.modules[name]
        sys.modules.update(hidden)


@contextlib.contextmanager
def real_kojihub() -> Iterator[ModuleType]:
    """``import kojihub`` gives Koji's real hub module meanwhile; sys.modules is restored
    afterwards (another test's stand-in, if any, comes back)."""
    if not _REAL:
        _import_real()
    saved = {n: sys.modules.pop(n) for n in _kojihub_names()}
    sys.modules.update(_REAL)
    try:
        yield _REAL["kojihub"]
    finally:
        for name in _kojihub_names():
            del sys.modules[name]
        sys.modules.update(saved)


def load_plugin(config: Path) -> ModuleType:
    """Import ``kabi_hub`` fresh, as the hub does (``PluginTracker``), reading ``config``."""
    old = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = str(config)
    tracker = koji.plugin.PluginTracker(path=[str(PLUGIN_DIR)])
    try:
        return tracker.load(PLUGIN)
    finally:
        sys.modules.pop(tracker.prefix + PLUGIN, None)
        if old is None:
            del os.environ[CONFIG_ENV]
        else:
            os.environ[CONFIG_ENV] = old


@contextlib.contextmanager
def registered(plugin: ModuleType) -> Iterator[Any]:
    """The plugin's calls and callbacks registered as the hub registers them; the global
    callback lists are restored afterwards."""
    before = {cbtype: list(funcs) for cbtype, funcs in koji.plugin.callbacks.items()}
    registry = sys.modules["kojihub.kojixmlrpc"].HandlerRegistry()
    registry.register_plugin(plugin)
    try:
        yield registry
    finally:
        for cbtype, funcs in before.items():
            koji.plugin.callbacks[cbtype][:] = funcs


def hub_policies(plugin: ModuleType, **policies: str) -> dict:
    """Rule sets built as the hub builds them: Koji's policy tests plus the plugin's."""
    kojixmlrpc = sys.modules["kojihub.kojixmlrpc"]
    return kojixmlrpc.get_policy({"policy": policies, "Plugins": PLUGIN}, {PLUGIN: plugin})


@contextlib.contextmanager
def hub_context(topdir: Path) -> Iterator[Any]:
    """A clean request context (anonymous, no policies) and ``koji.pathinfo`` at ``topdir``."""
    saved = dict(context.__dict__)
    old_topdir = koji.pathinfo.topdir
    context._threadclear()
    context.environ = {}
    context.opts = {"DisableURLSessions": True, "MissingPolicyOk": False}
    context.policy = {}
    koji.pathinfo.topdir = str(topdir)
    try:
        yield context
    finally:
        koji.pathinfo.topdir = old_topdir
        context._threadclear()
        context.__dict__.update(saved)


def login(kojihub: ModuleType, user: Optional[dict]) -> Any:
    """``context.session``: Koji's real ``auth.Session``, anonymous or logged in as ``user``
    (its permissions come from the patched ``auth.get_user_perms``)."""
    session = kojihub.auth.Session()  # no session headers: anonymous, no database
    if user is not None:
        session.logged_in = True
        session.user_id = user["id"]
        session.user_data = dict(user)
    context.session = session
    return session


class HubData:
    """A small Koji behind the patched hub functions: users, tags, builds and their RPMs.

    Builds are made from real RPM files (their headers read as ``kojihub.import_rpm``
    reads them) copied to ``koji.pathinfo.build(build)/koji.pathinfo.rpm(rpm)`` under
    ``topdir``.  The fakes have the real functions' signatures (autospec), answer with the
    real functions' fields, and raise the real functions' errors.
    """

    def __init__(self, topdir: Path) -> None:
        self.topdir = topdir
        self.pathinfo = koji.PathInfo(topdir=str(topdir))
        self.users: dict[int, dict] = {}
        self.perms: dict[int, list[str]] = {}
        self.tags: dict[int, dict] = {}
        self.parents: dict[int, list[int]] = {}
        self.builds: dict[int, dict] = {}
        self.rpms: dict[int, list[dict]] = {}
        self.listing: list[tuple[int, int, int]] = []  # (tag id, build id, event)
        self.mocks: dict[str, mock.MagicMock] = {}
        self._event = itertools.count(1000)
        self._ids = itertools.count(1)
        self._tasks = itertools.count(500)

    # ---------------------------------------------------------------- building the world

    def add_user(self, name: str, perms: Iterable[str] = ()) -> dict:
        user = {"id": next(self._ids), "name": name}
        self.users[user["id"]] = user
        self.perms[user["id"]] = list(perms)
        return user

    def add_tag(self, name: str, parents: Sequence[str] = ()) -> dict:
        tag = {"id": next(self._ids), "name": name, "arches": "x86_64 aarch64",
               "perm_id": None, "perm": None, "locked": False, "maven_support": False,
               "maven_include_all": False, "extra": {}}
        self.tags[tag["id"]] = tag
        self.parents[tag["id"]] = [self._tag(p)["id"] for p in parents]
        return tag

    def import_build(self, paths: Sequence[Path], owner: dict, state: str = "COMPLETE",
                     draft: bool = False) -> dict:
        """A build of these RPM files (named by their source RPM), files in place."""
        infos = [self._rpminfo(p) for p in paths]
        src = next((i for i in infos if i["arch"] == "src"), None)
        nvr = koji.parse_NVRA(src["_file"].name if src else infos[0]["sourcerpm"])
        build_id = next(self._ids)
        event = next(self._event)
        build = {
            "id": build_id, "build_id": build_id, "package_id": next(self._ids),
            "package_name": nvr["name"], "name": nvr["name"], "version": nvr["version"],
            "release": nvr["release"], "epoch": None, "draft": draft,
            "nvr": "%(name)s-%(version)s-%(release)s" % nvr,
            "state": koji.BUILD_STATES[state], "task_id": None,
            "owner_id": owner["id"], "owner_name": owner["name"],
            "volume_id": 0, "volume_name": "DEFAULT",
            "creation_event_id": event, "creation_time": "2025-07-01 12:00:00+00:00",
            "creation_ts": 1751371200.0 + event, "start_time": None, "start_ts": None,
            "completion_time": None, "completion_ts": None, "promotion_time": None,
            "promotion_ts": None, "promoter_id": None, "promoter_name": None,
            "cg_id": None, "cg_name": None, "source": None, "extra": None,
        }
        self.builds[build_id] = build
        self.rpms[build_id] = []
        self._place(build, infos)
        return dict(build)

    def add_rpms(self, build: dict, paths: Sequence[Path]) -> None:
        """More RPM files into an existing build (``koji import`` of the next file)."""
        self._place(self.builds[build["id"]], [self._rpminfo(p) for p in paths])

    def tag_build(self, tag: str, build: dict) -> None:
        self.listing.append((self._tag(tag)["id"], build["id"], next(self._event)))

    def file_of(self, build: dict, rpm_name: str, arch: str) -> Path:
        """Where an RPM of a build lies under topdir."""
        rpm = next(r for r in self.rpms[build["id"]]
                   if r["name"] == rpm_name and r["arch"] == arch)
        return Path(self.pathinfo.build(build)) / self.pathinfo.rpm(rpm)

    def _tag(self, name: str) -> dict:
        return next(t for t in self.tags.values() if t["name"] == name)

    def _rpminfo(self, path: Path) -> dict:
        hdr = koji.get_rpm_header(str(path))
        info = koji.get_header_fields(hdr, ["name", "version", "release", "epoch",
                                            "sourcepackage", "arch", "buildtime", "sourcerpm"])
        if info["sourcepackage"] == 1:
            info["arch"] = "src"
        info["payloadhash"] = koji.hex_string(koji.get_header_field(hdr, "sigmd5"))
        info["size"] = path.stat().st_size
        info["_file"] = path
        return info

    def _place(self, build: dict, infos: Sequence[dict]) -> None:
        for info in infos:
            path = info.pop("_file")
            rpm = {"id": next(self._ids), "name": info["name"], "version": info["version"],
                   "release": info["release"], "arch": info["arch"], "epoch": info["epoch"],
                   "draft": build["draft"], "payloadhash": info["payloadhash"],
                   "size": info["size"], "buildtime": info["buildtime"],
                   "build_id": build["id"], "buildroot_id": None, "external_repo_id": 0,
                   "external_repo_name": "INTERNAL", "metadata_only": False, "extra": None}
            if path.name != "%(name)s-%(version)s-%(release)s.%(arch)s.rpm" % rpm:
                raise ValueError(f"bad filename: {path.name}")
            dest = Path(self.pathinfo.build(build)) / self.pathinfo.rpm(rpm)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            self.rpms[build["id"]].append(rpm)

    # ---------------------------------------------------------------- the patched calls

    def get_build(self, buildInfo: Any, strict: bool = False) -> Optional[dict]:
        if isinstance(buildInfo, int):
            found = self.builds.get(buildInfo)
        elif isinstance(buildInfo, (str, dict)):
            want = koji.parse_NVR(buildInfo) if isinstance(buildInfo, str) else buildInfo
            if not all(k in want for k in ("name", "version", "release")):
                raise koji.GenericError("did not provide name, version, and release")
            found = next((b for b in self.builds.values()
                          if all(b[k] == want[k] for k in ("name", "version", "release"))),
                         None)
        else:
            raise koji.GenericError("Invalid type for argument: %r" % type(buildInfo))
        if found is None and strict:
            raise koji.GenericError("No such build: %r" % (buildInfo,))
        return dict(found) if found else None

    def list_rpms(self, buildID: Optional[int] = None, buildrootID: Any = None,
                  imageID: Any = None, componentBuildrootID: Any = None, hostID: Any = None,
                  arches: Any = None, queryOpts: Any = None, draft: Any = None) -> list[dict]:
        wanted = [arches] if isinstance(arches, str) else arches
        return [dict(r) for r in self.rpms.get(buildID, [])
                if not wanted or r["arch"] in wanted]

    def get_tag(self, tagInfo: Any, strict: bool = False, event: Any = None,
                blocked: bool = False) -> Optional[dict]:
        if isinstance(tagInfo, dict):
            tagInfo = tagInfo.get("id", tagInfo.get("name"))
        key = "id" if isinstance(tagInfo, int) else "name"
        found = next((t for t in self.tags.values() if t[key] == tagInfo), None)
        if found is None:
            if strict:
                raise koji.GenericError("No such tagInfo: %r" % (tagInfo,))
            return None
        out = dict(found)
        if event is not None:
            out["query_event"] = event
        return out

    def readTaggedBuilds(self, tag: int, event: Optional[int] = None, inherit: bool = False,
                         latest: Any = False, package: Optional[str] = None,
                         owner: Optional[str] = None, type: Any = None, extra: bool = False,
                         draft: Optional[bool] = None) -> list[dict]:
        if not isinstance(tag, int):  # the real query compares tag_id with it
            raise koji.GenericError("readTaggedBuilds takes a tag id, not %r" % (tag,))
        order = [tag]
        for tag_id in order:  # inheritance: parents after children, each once
            order += [p for p in self.parents.get(tag_id, []) if p not in order]
        out, seen = [], set()
        for tag_id in order if inherit else [tag]:
            rows = sorted(((ev, bid) for t, bid, ev in self.listing
                           if t == tag_id and (event is None or ev <= event)), reverse=True)
            for ev, bid in rows:  # most recently tagged first
                build = self.builds[bid]
                if (build["state"] != koji.BUILD_STATES["COMPLETE"]
                        or (package and build["name"] != package)
                        or (owner and build["owner_name"] != owner)
                        or (draft is not None and build["draft"] != draft)):
                    continue
                if latest and build["package_id"] in seen:
                    continue
                seen.add(build["package_id"])
                out.append(dict(build, tag_id=tag_id, tag_name=self.tags[tag_id]["name"],
                                create_event=ev))
        return out

    def make_task(self, method: str, arglist: list, **opts: Any) -> int:
        return next(self._tasks)

    def get_user_perms(self, user_id: int, with_groups: bool = True,
                       inheritance_data: bool = False) -> list[str]:
        return list(self.perms.get(user_id, []))

    @contextlib.contextmanager
    def patched(self, kojihub: ModuleType) -> Iterator[dict[str, mock.MagicMock]]:
        """Patch :data:`PATCHED` in ``kojihub`` and ``kojihub.kojihub`` (where Koji's own
        policy tests look them up) and ``auth.get_user_perms``.  Autospecced: a call the
        real function would refuse fails here too."""
        with contextlib.ExitStack() as stack:
            for name in PATCHED:
                fake = mock.create_autospec(getattr(kojihub.kojihub, name),
                                            side_effect=getattr(self, name))
                self.mocks[name] = fake
                for module in (kojihub, kojihub.kojihub):
                    stack.enter_context(mock.patch.object(module, name, fake))
            perms = mock.create_autospec(kojihub.auth.get_user_perms,
                                         side_effect=self.get_user_perms)
            stack.enter_context(mock.patch.object(kojihub.auth, "get_user_perms", perms))
            yield self.mocks
