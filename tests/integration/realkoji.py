"""The local real Koji of the integration tier, with koji-kabi installed as an admin would.

``../shared/realkoji`` brings up Koji's own hub (Apache + mod_wsgi + PostgreSQL), ``kojid``
and CLI from ``../shared/koji``.  This module builds the project's RPMs
(``scripts/build-rpms.sh``) and installs them (``rpm -U``), so the hub, kojid and the CLI
load the plugins from Koji's default plugin paths; it writes the plugin configuration and
the test hub's policy, and (re)starts the hub in one of three *phases*:

``plain``     the hub without the koji-kabi hub plugin (the CLI must still work);
``disabled``  the hub plugin with a broken configuration (it must disable itself, the hub
              must keep serving);
``full``      the hub plugin configured for the tier's rules.

The hub runs as ``www-data``: the clone and ``../shared`` may not be readable by it, so
the test plugins and configs it loads are copied under ``STAGE`` (``/srv/koji-kabi-it``).
``build`` tasks (the rebuilds) cannot run here (Debian has no mock): the channel policy
routes them to channels without hosts, where they stay FREE, and the ``build_rpm`` policy
denies any that a test assigns to the builder, which makes it fail as a real one would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tests.integration.broker import PROTONMSG_CONF, Broker
from tests.integration.broker import unavailable as no_broker

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(os.environ.get("REALKOJI_DIR") or REPO.parent / "shared" / "realkoji")
ROOT = Path(os.environ.get("REALKOJI_ROOT", "/srv/realkoji"))
STAGE = Path(os.environ.get("KOJI_KABI_IT_ROOT", "/srv/koji-kabi-it"))
PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
#: channels of the rebuild subtasks: as requested by koji-kabi ("default"), or not
HOLD_CHANNEL, STRAY_CHANNEL = "kabi-it-rebuilds", "kabi-it-strays"
PHASES = ("plain", "disabled", "full")
SCHEMA_SQL = Path("/usr/share/koji-kabi/kabi-schema.sql")
UPGRADE_SQL = Path("/usr/share/koji-kabi/kabi-schema-upgrade.sql")
#: the permission that lets the builder hosts make side tags (README "Rebuild strategies")
SIDETAG_PERM = "kabi-sidetag"
DENY = "deny kmod does not match the kABI of the kernel in this tag"


def unavailable() -> Optional[str]:
    """Why the local real Koji cannot run here, or None."""
    if os.environ.get("KOJI_KABI_IT", "").lower() in ("0", "no", "off"):
        return "real-Koji tier turned off (KOJI_KABI_IT=0)"
    if not (HARNESS / "up.sh").is_file():
        return f"no real Koji harness at {HARNESS} (../shared/realkoji beside the clone)"
    if os.geteuid() != 0:
        return "real-Koji tier needs root (it runs its own PostgreSQL, Apache and kojid)"
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        return "real-Koji tier needs Debian (the harness installs Apache/PostgreSQL with apt)"
    return None


def _run(argv: Sequence[str], env: Optional[dict[str, str]] = None, timeout: float = 900,
         what: str = "") -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=timeout,
                         stdin=subprocess.DEVNULL, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{what or argv[0]} failed ({res.returncode}):\n"
                           f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout


@dataclass
class Result:
    """A finished koji CLI run."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


class RealKoji:
    """The hub, kojid and CLI of ``../shared/realkoji`` with koji-kabi installed."""

    def __init__(self, stamp: str) -> None:
        self.stamp = stamp
        self.phase: Optional[str] = None
        self.etc = STAGE / "etc"
        self.pki = STAGE / "pki"
        self.rules_path = self.etc / "rules.yaml"
        self.hub_conf = self.etc / "kabi-hub.conf"
        self.broken_hub_conf = self.etc / "kabi-hub-broken.conf"
        self.builder_conf = self.etc / "kabi-builder.conf"
        self.cache = STAGE / "cache"
        self.policy_file = ROOT / "etc" / "hub.conf.d" / "koji-kabi-it.conf"
        self.hub_url = "https://localhost:%s/kojihub" % os.environ.get("REALKOJI_HTTPS_PORT",
                                                                       "18443")
        port = os.environ.get("REALKOJI_HTTP_PORT", "18080")
        self.anon_url = f"http://127.0.0.1:{port}/kojihub"
        self.topurl = f"http://127.0.0.1:{port}/kojifiles"
        self.topdir = ROOT / "koji"
        self.ca = ROOT / "pki" / "ca.crt"
        self.started: list[float] = []
        self.up_mark = 0
        self.broker = Broker(STAGE / "broker")
        #: why there are no messages in phase full (None: protonmsg + a real broker)
        self.no_messages = no_broker()

    # ------------------------------------------------------------------ install
    def install(self) -> None:
        """Build this checkout's RPMs and install them as an admin would (``rpm -U``): the
        plugins land at Koji's default plugin paths, the library in the system Python's
        site-packages; the test plugins go to ``STAGE/it-plugins``."""
        if STAGE.exists():
            for sub in ("rpms", "it-plugins"):
                shutil.rmtree(STAGE / sub, ignore_errors=True)
        for d in (self.etc, self.pki, self.cache):
            d.mkdir(parents=True, exist_ok=True)
        _run([str(REPO / "scripts" / "build-rpms.sh"), str(self.rpms)], what="build-rpms.sh")
        # Debian: rpm's database knows none of the Requires (dpkg has them), and rpm wants
        # to be told that it is used on purpose
        debian = ["--force-debian"] if Path("/etc/debian_version").exists() else []
        _run(["rpm", "--initdb"], what="rpm --initdb")  # a fresh machine may have none yet
        _run(["rpm", "-U", "--nodeps", "--replacepkgs", "--replacefiles", *debian,
              *map(str, sorted(self.rpms.glob("*.noarch.rpm")))], what="rpm -U")
        for path in (self.hub_plugin_dir / "kabi_hub.py",
                     self.builder_plugin_dir / "kabi_builder.py",
                     self.cli_plugin_dir / "kabi.py", SCHEMA_SQL):
            assert path.is_file(), path
        plugins = STAGE / "it-plugins"
        for kind, source in (("hub", "hub_test_plugin.py"), ("builder", "kojid_test_plugin.py")):
            (plugins / kind).mkdir(parents=True)
            shutil.copy(Path(__file__).with_name(source), plugins / kind / "kabi_it.py")
        _run(["chmod", "-R", "a+rX", str(STAGE)])

    @property
    def rpms(self) -> Path:
        return STAGE / "rpms"

    #: Koji's defaults (hub.conf PluginPath, kojid.conf pluginpath), where the RPMs put them
    hub_plugin_dir = Path("/usr/lib/koji-hub-plugins")
    builder_plugin_dir = Path("/usr/lib/koji-builder-plugins")
    #: where the koji CLI always looks (cli/koji load_plugins: sys.prefix of Debian's python3)
    cli_plugin_dir = Path("/usr/lib") / PY / "site-packages" / "koji_cli_plugins"

    # ------------------------------------------------------------------ configs
    def write_configs(self, rules_text: str, gated_tag_glob: str) -> None:
        self.rules_path.write_text(rules_text)
        self.hub_conf.write_text(
            "[kabi]\n"
            f"rules = {self.rules_path}\n"
            "channel = kabi\n"
            "priority = 25\n")
        # an unknown option: the plugin must disable itself, never the hub
        self.broken_hub_conf.write_text(f"[kabi]\nrules = {self.rules_path}\nchanel = kabi\n")
        self.write_builder_conf()
        self.gated_tag_glob = gated_tag_glob
        _run(["chmod", "-R", "a+rX", str(self.etc)])

    def write_builder_conf(self, **settings: Any) -> None:
        """kojid's plugin settings (read by each task's own process: no restart needed)."""
        # no rules: the builder reads the hub's (kabi.rules)
        values = {"cache_dir": self.cache, "settle_seconds": 3, "poll": 1, "tag_wait": 60,
                  **settings}
        self.builder_conf.write_text("[kabi]\n" + "".join(f"{k} = {v}\n"
                                                          for k, v in values.items()))
        self.builder_conf.chmod(0o644)

    def _policy(self, phase: str) -> str:
        text = (
            "# koji-kabi integration tier (tests/integration/realkoji.py)\n"
            "[policy]\n"
            "channel =\n"
            f"    method build && match req_channel default :: use {HOLD_CHANNEL}\n"
            f"    method build :: use {STRAY_CHANNEL}\n"
            "    has req_channel :: req\n"
            "    is_child_task :: parent\n"
            "    all :: use default\n"
            "build_rpm =\n"
            "    all :: deny test hub: no mock, builds never run here\n"
            "sidetag =\n"
            f"    has_perm {SIDETAG_PERM} :: allow\n"
            "    all :: deny\n")
        if phase != "plain":  # kabi_compatible and kabi_rebuild exist only with the plugin
            text += (
                "build_from_srpm =\n"
                "    kabi_rebuild :: allow\n"
                "    has_perm admin :: allow\n"
                "    all :: deny\n"
                "tag =\n"
                f"    tag {self.gated_tag_glob} :: {{\n"
                f"        kabi_compatible !! {DENY}\n"
                "    }\n"
                "    all :: allow\n")
        return text

    # ------------------------------------------------------------------ lifecycle
    def env(self, phase: str) -> dict[str, str]:
        # Koji's own sidetag plugin, for the macro strategy's side tags
        hub_plugins = {"plain": "", "disabled": "kabi_hub",
                       "full": "kabi_hub kabi_it sidetag_hub"}[phase]
        if phase == "full" and self.no_messages is None:
            hub_plugins += " protonmsg"  # Koji's own, from the source the hub runs
        hub_conf = self.broken_hub_conf if phase == "disabled" else self.hub_conf
        env = dict(
            os.environ,
            REALKOJI_PYTHONPATH="",  # koji_kabi is in the system Python's site-packages
            REALKOJI_HUB_PLUGINS=hub_plugins,
            REALKOJI_HUB_PLUGIN_PATH=f"{self.hub_plugin_dir}:{STAGE / 'it-plugins' / 'hub'}:"
                                     f"{ROOT / 'src' / 'plugins' / 'hub'}",
            REALKOJI_BUILDER_PLUGINS="kabi_builder kabi_it",
            REALKOJI_BUILDER_PLUGIN_PATH=f"{self.builder_plugin_dir}:"
                                         f"{STAGE / 'it-plugins' / 'builder'}",
            REALKOJI_CLI_PLUGIN_PATH="",  # the koji CLI finds the installed one itself
            KOJI_KABI_HUB_CONFIG=str(hub_conf),
            KOJI_KABI_BUILDER_CONFIG=str(self.builder_conf),
        )
        if str(ROOT) != "/srv/realkoji":
            # up.sh copies its CLI profile to $HOME/.koji/config.d/realkoji.conf, which is
            # the default instance's: another instance keeps its copy under STAGE
            env["HOME"] = str(STAGE)
        return env

    def up(self, phase: str) -> float:
        """(Re)start hub and kojid in ``phase``; returns the seconds it took."""
        assert phase in PHASES, phase
        started = time.monotonic()
        self.up_mark = self.log_mark()  # the hub log of this start begins here
        self.policy_file.parent.mkdir(parents=True, exist_ok=True)
        self.policy_file.write_text(self._policy(phase))
        self.policy_file.chmod(0o644)
        if phase == "full" and self.no_messages is None:
            self.broker.start()
            PROTONMSG_CONF.parent.mkdir(parents=True, exist_ok=True)
            PROTONMSG_CONF.write_text(self.broker.protonmsg_conf())
            PROTONMSG_CONF.chmod(0o644)
        _run([str(HARNESS / "up.sh"), "--restart"], env=self.env(phase), what="realkoji up.sh")
        if phase == "full":
            if not self.has_schema():
                self.apply_schema()
            self.psql("-f", str(UPGRADE_SQL))  # what an admin does after an update
        self.phase = phase
        seconds = time.monotonic() - started
        self.started.append(seconds)
        return seconds

    # ------------------------------------------------------------------ database
    def psql(self, *args: str) -> str:
        """psql as the hub's database owner, on the harness's private PostgreSQL."""
        pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        return _run([str(pgbin / "psql"), "-h", str(ROOT / "pgsock"), "-p",
                     os.environ.get("REALKOJI_PGPORT", "55432"), "-U", "koji", "-d", "koji",
                     "-v", "ON_ERROR_STOP=1", "-qAt", *args], what="psql")

    def has_schema(self) -> bool:
        return self.psql("-c", "SELECT to_regclass('kabi_rebuild') IS NOT NULL").strip() == "t"

    def apply_schema(self) -> None:
        """What the README tells an admin: the installed SQL, applied once."""
        self.psql("-f", str(SCHEMA_SQL))

    def drop_schema(self) -> None:
        self.psql("-c", "DROP TABLE IF EXISTS kabi_rebuild",
                  "-c", "DELETE FROM locks WHERE name = 'kabi-rebuild'")

    # ------------------------------------------------------------------ faults
    @property
    def holds(self) -> Path:
        """Where the test hub plugin (hub_test_plugin.py) looks for hold files."""
        return self.topdir / "work" / "kabi-it-holds"

    def hold(self, when: str, method: str) -> Path:
        """Make the next ``method`` call wait at ``when`` (preCommit / postCommit) until
        the returned file is removed; ``held_pid`` tells which hub process waits."""
        self.holds.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.holds, "www-data", "www-data")
        (self.holds / f"held-{when}-{method}").unlink(missing_ok=True)
        path = self.holds / f"hold-{when}-{method}"
        path.touch()
        return path

    def held_pid(self, hold: Path, timeout: float = 120) -> int:
        held = hold.with_name(hold.name.replace("hold-", "held-", 1))
        deadline = time.monotonic() + timeout
        while not held.exists() or not held.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"no hub call reached {hold.name} in {timeout}s")
            time.sleep(0.1)
        return int(held.read_text())

    def kill_kojid(self) -> list[int]:
        """SIGKILL kojid and every process under it (its task processes have process
        groups of their own), as a crashed builder host would lose them; their pids."""
        root = int((ROOT / "run" / "kojid.pid").read_text().split()[0])
        parent = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(stat.parent.name)] = int(fields[1])
        doomed, grew = {root}, True
        while grew:
            more = {p for p, pp in parent.items() if pp in doomed} - doomed
            doomed |= more
            grew = bool(more)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        deadline = time.monotonic() + 30
        for pid in doomed:  # gone, not only dead: up.sh takes a zombie for a live kojid
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        (ROOT / "run" / "kojid.pid").unlink(missing_ok=True)
        return sorted(doomed)

    def kojid_alive(self) -> bool:
        try:
            pid = int((ROOT / "run" / "kojid.pid").read_text().split()[0])
            return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
        except (OSError, ValueError, IndexError):
            return False

    def start_kojid(self) -> None:
        """up.sh again with the same settings: it starts what is not running (kojid)."""
        assert self.phase is not None
        _run([str(HARNESS / "up.sh")], env=self.env(self.phase), what="realkoji up.sh")

    def down(self) -> None:
        with_policy = self.policy_file.exists()
        _run([str(HARNESS / "down.sh")], what="realkoji down.sh", timeout=120)
        self.broker.stop()
        if with_policy:
            self.policy_file.unlink()

    # ------------------------------------------------------------------ clients
    def session(self, user: Optional[str] = "kojiadmin") -> Any:
        """A logged-in ClientSession (SSL certificate of ``user``), or anonymous over http."""
        import koji

        if user is None:
            return koji.ClientSession(self.anon_url, {"anon_retry": True, "max_retries": 5})
        session = koji.ClientSession(self.hub_url, {"serverca": str(self.ca),
                                                    "anon_retry": True, "max_retries": 5})
        session.ssl_login(cert=str(self.cert(user)), serverca=str(self.ca))
        return session

    def cert(self, user: str) -> Path:
        """The client certificate of ``user`` (made on first use, signed by the hub's CA)."""
        if user in ("kojiadmin", "builder1"):
            return ROOT / "pki" / f"{user}.pem"
        pem = self.pki / f"{user}.pem"
        if not pem.exists():
            key, csr, crt = (self.pki / f"{user}.{ext}" for ext in ("key", "csr", "crt"))
            ext = self.pki / "client.ext"
            ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,"
                           "keyEncipherment\nextendedKeyUsage=clientAuth\n")
            _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                  "-out", str(csr), "-subj", f"/O=realkoji/OU=users/CN={user}"])
            _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca),
                  "-CAkey", str(ROOT / "pki" / "ca.key"), "-CAcreateserial", "-days", "30",
                  "-sha256", "-out", str(crt), "-extfile", str(ext)])
            pem.write_bytes(crt.read_bytes() + key.read_bytes())
            pem.chmod(0o600)
        return pem

    def koji(self, *args: str, user: Optional[str] = "kojiadmin", timeout: float = 300,
             env: Optional[dict[str, str]] = None) -> Result:
        """The koji CLI of the Koji source, with the profile up.sh wrote and the installed
        CLI plugin (argv list: no shell).  ``user=None``: ``--noauth``."""
        auth = ["--noauth"] if user is None else ["--cert", str(self.cert(user))]
        argv = [str(ROOT / "bin" / "koji"), "-p", "realkoji", *auth, *args]
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
                   "HOME": str(STAGE), **(env or {})}
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             env=run_env, stdin=subprocess.DEVNULL, check=False)
        return Result(argv, res.returncode, res.stdout, res.stderr)

    # ------------------------------------------------------------------ logs
    def log_mark(self, name: str = "httpd-error.log") -> int:
        path = ROOT / "log" / name
        return path.stat().st_size if path.exists() else 0

    def log_since(self, mark: int, name: str = "httpd-error.log") -> str:
        with open(ROOT / "log" / name, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def requests_since(self, mark: int) -> list[tuple[str, str]]:
        """(method, user) of each XML-RPC request the hub answered since ``mark`` of its
        log (``u=None``: anonymous; a multicall is one request)."""
        out = []
        for line in self.log_since(mark).splitlines():
            if "koji.xmlrpc: Returning " in line:
                fields = dict(f.split("=", 1) for f in line.split() if f[:2] in ("m=", "u="))
                out.append((fields.get("m", "?"), fields.get("u", "?")))
        return out


if __name__ == "__main__":  # python -m tests.integration.realkoji down
    if sys.argv[1:] == ["down"] and unavailable() is None:
        RealKoji("").down()
