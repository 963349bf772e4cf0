"""What a kabiCheck task on the real kojid cost, read from outside: the hub's log, Apache's
access log and ``/proc`` of kojid's task process.

* Hub round trips: the hub logs each call it dispatches (``Handling method M for session
  S (#N)``, also each call inside a multicall, then its ``Params``) and each reply
  (``Returning B bytes after T seconds``), with Apache's ``[pid P:tid T]``.  kojid runs a
  task in a forked child with its own subsession, so the task's requests are those of
  builder1's sessions other than kojid's main one (the session that polls
  ``host.getTasks``): call numbers 0..N of each, uploads included.
* HTTP: ``GET /kojifiles/...`` lines of Apache's access log (status, body bytes ``%b``).
* Peak RSS: ``VmHWM`` of kojid's child processes, sampled while the task runs (with
  ``rchar`` of ``/proc/PID/io``: bytes its read() calls returned, sockets included).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

_ENTRY = re.compile(r"\[pid (\d+):tid (\d+)\].*? \[(\w+)\] m=\S* u=(\S*) p=\d+ r=\S+ "
                    r"([\w.]+): (.*)$")
_HANDLING = re.compile(r"Handling method (\S+) for session (\S+) \(#(\S+)\)")
_FIRST_INT = re.compile(r"\((\d+),")
_RETURNING = re.compile(r"Returning (\d+) bytes after ([\d.]+) seconds")
_GET = re.compile(r'"GET (/kojifiles/\S+) HTTP/[\d.]+" (\d{3}) (\d+|-)')
#: calls only kojid's main loop makes (its session is not the task's)
MAIN_LOOP = {"host.getTasks", "host.updateHost", "host.getHostTasks", "subsession",
             "host.openTask"}


@dataclass
class Call:
    method: str
    session: str
    callnum: str
    user: str
    first: Optional[int] = None  # the first positional argument, when an int


@dataclass
class HubCalls:
    """The task's requests to the hub."""

    round_trips: int
    methods: Counter[str]
    requests: dict[tuple[str, str], list[Call]]  # (session, callnum) -> calls in it
    hub_seconds: float  # the hub's time answering them (its "Returning ... after" lines)
    reply_bytes: int  # XML-RPC replies the hub sent for them

    def carrying(self, methods: set[str], ids: dict[str, set[int]]) -> int:
        """Requests with a call of ``methods`` whose first argument is in ``ids[method]``."""
        return sum(1 for calls in self.requests.values()
                   if any(c.method in methods and c.first in ids[c.method] for c in calls))


def hub_calls(log_text: str, user: str = "builder1") -> HubCalls:
    """The requests of ``user``'s sessions other than kojid's main loop, from the hub log."""
    calls: list[Call] = []
    pending: dict[tuple[str, str], deque[Call]] = {}  # (pid, tid) -> awaiting its Params
    current: dict[tuple[str, str], tuple[str, str]] = {}  # (pid, tid) -> its request
    answered: dict[tuple[str, str], tuple[int, float]] = {}  # request -> (bytes, seconds)
    for line in log_text.splitlines():
        m = _ENTRY.search(line)
        if not m or m[5] != "koji.xmlrpc":
            continue
        thread, message = (m[1], m[2]), m[6]
        h = _HANDLING.match(message)
        if h:
            call = Call(h[1], h[2], h[3], m[4])
            calls.append(call)
            current.setdefault(thread, (call.session, call.callnum))
            if call.method != "uploadFile":  # the hub logs no Params for uploads
                pending.setdefault(thread, deque()).append(call)
        elif message.startswith("Params: ") and pending.get(thread):
            first = _FIRST_INT.match(message[len("Params: "):])
            pending[thread].popleft().first = int(first[1]) if first else None
        elif (r := _RETURNING.match(message)) and thread in current:
            answered[current.pop(thread)] = (int(r[1]), float(r[2]))
    main = {c.session for c in calls if c.method in MAIN_LOOP}
    mine = [c for c in calls if c.user == user and c.session not in main]
    requests: dict[tuple[str, str], list[Call]] = {}
    last: dict[str, int] = {}
    for c in mine:
        requests.setdefault((c.session, c.callnum), []).append(c)
        last[c.session] = max(last.get(c.session, -1), int(c.callnum))
    # uploads (rawUpload) take a call number but log no ``Handling`` line: count numbers
    done = [answered[k] for k in requests if k in answered]
    return HubCalls(sum(n + 1 for n in last.values()), Counter(c.method for c in mine),
                    requests, sum(t for _n, t in done), sum(n for n, _t in done))


def file_gets(access_log: str) -> dict[str, list[tuple[int, int]]]:
    """``/kojifiles`` path -> [(status, body bytes)] of each GET."""
    out: dict[str, list[tuple[int, int]]] = {}
    for path, status, size in _GET.findall(access_log):
        out.setdefault(path, []).append((int(status), 0 if size == "-" else int(size)))
    return out


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])  # kB
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                out["rchar"] = int(line.split()[1])
    return out


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (all its threads')."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def rss_mb(pid: int) -> Optional[float]:
    try:
        return _status(pid)["VmRSS"] / 1024
    except (OSError, KeyError):
        return None


@dataclass
class TaskSampler:
    """Samples kojid's children every ``interval`` seconds until stopped."""

    kojid: int
    interval: float = 0.01
    peak: dict[int, dict[str, int]] = field(default_factory=dict)  # pid -> last sample
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def start(self) -> TaskSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in children(self.kojid):
                try:
                    sample = _status(pid)
                except OSError:
                    continue  # gone (or a zombie): its last sample stays
                if "VmHWM" in sample:
                    self.peak[pid] = sample
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def hwm_mb(self) -> Optional[float]:
        """The largest peak RSS of a task process seen."""
        return max((s["VmHWM"] for s in self.peak.values()), default=0) / 1024 or None

    @property
    def rchar(self) -> Optional[int]:
        return sum(s.get("rchar", 0) for s in self.peak.values()) if self.peak else None


def other_tier_running() -> bool:
    """Whether processes of the real-Koji test tier's instance (/srv/realkoji) run."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"/srv/realkoji/" in cmd:
            return True
    return False
