"""A real AMQP 1.0 broker for the real-Koji tier: Debian's RabbitMQ with its AMQP 1.0
plugin, one private node (own port, own data directory, own cookie), and a listener.

Koji's ``protonmsg`` hub plugin talks AMQP 1.0 to it; RabbitMQ's topic addresses start
with ``/topic/`` (protonmsg's ``topic_prefix`` documents that), so the hub publishes to
``/topic/koji.kabi.check.closed`` and a consumer of ``/topic/koji.kabi.#`` receives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
LISTENER = Path(__file__).with_name("amqp_listen.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: it has the proton bindings, as the hub's has
PROTONMSG_CONF = Path("/etc/koji-hub/plugins/protonmsg.conf")  # protonmsg hard-codes it


def unavailable() -> Optional[str]:
    if os.environ.get("KOJI_KABI_IT_AMQP", "").lower() in ("0", "no", "off"):
        return "message bus turned off (KOJI_KABI_IT_AMQP=0)"
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        return "no RabbitMQ (apt install rabbitmq-server)"
    if subprocess.run([SYSTEM_PYTHON, "-c", "import proton"], capture_output=True,
                      check=False).returncode != 0:
        return "no proton bindings for the hub's python3 (apt install python3-qpid-proton)"
    return None


class Broker:
    """One RabbitMQ node under ``home``, listening on 127.0.0.1:``port``."""

    def __init__(self, home: Path, port: int = int(os.environ.get("KOJI_KABI_IT_AMQP_PORT",
                                                                  "25672"))) -> None:
        self.home = home
        self.port = port
        self.url = f"amqp://127.0.0.1:{port}"
        self.node = f"kabi-it-{port}@localhost"

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.port + 1),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.home / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq"),
                "RABBITMQ_PID_FILE": str(self.home / "pid")}

    def _as_rabbitmq(self, tool: str, *args: str, timeout: float = 90) -> None:
        res = subprocess.run(["runuser", "-u", "rabbitmq", "--", str(RABBIT_BIN / tool),
                              *args], env=self._env(), capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({res.returncode}):\n"
                               f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")

    def running(self) -> bool:
        try:
            pid = int((self.home / "pid").read_text().split()[0])
            return "beam" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        except (OSError, ValueError, IndexError):
            return False

    def start(self) -> float:
        """Start the node if it is not running; the seconds it took."""
        started = time.monotonic()
        if self.running():
            return 0.0
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "enabled_plugins").write_text("[rabbitmq_amqp1_0].\n")
        # anonymous AMQP 1.0 clients (protonmsg without certificates) are "guest"
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.port}\nloopback_users = none\n")
        shutil.chown(self.home, "rabbitmq", "rabbitmq")
        for path in self.home.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self._as_rabbitmq("rabbitmq-server", "-detached")
        self._as_rabbitmq("rabbitmqctl", "-n", self.node, "wait", str(self.home / "pid"),
                          "--timeout", "60")
        return time.monotonic() - started

    def stop(self) -> None:
        if not self.running():
            return
        pid = int((self.home / "pid").read_text().split()[0])
        try:
            self._as_rabbitmq("rabbitmqctl", "-n", self.node, "stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def protonmsg_conf(self) -> str:
        """protonmsg's settings for this broker (its database queue on: denials need it)."""
        return ("[broker]\n"
                f"urls = {self.url}\n"
                "topic_prefix = /topic/koji\n"
                "connect_timeout = 10\n"
                "send_timeout = 60\n"
                "[message]\n"
                "extra_limit = 0\n"
                "[queue]\n"
                "enabled = true\n"
                "batch_size = 100\n"
                "max_age = 24\n")


class Listener:
    """A consumer of ``address`` in a process of its own; ``messages()`` so far."""

    def __init__(self, broker: Broker, address: str, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(LISTENER), broker.url, address,
                                      str(out)], stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not (out.exists() and out.read_text().startswith("ready\n")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"AMQP listener did not start: {self.proc.stderr.read()}")
            time.sleep(0.05)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines()[1:] if line]

    def wait_for(self, match: Any, count: int = 1, timeout: float = 120) -> list[dict]:
        """The first ``count`` messages for which ``match(message)`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if match(m)]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} messages in {timeout}s; "
                                     f"received: {self.messages()}")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


@contextlib.contextmanager
def listening(broker: Broker, address: str, out: Path) -> Iterator[Listener]:
    listener = Listener(broker, address, out)
    try:
        yield listener
    finally:
        listener.close()
