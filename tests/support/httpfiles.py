"""A small stdlib HTTP file server that counts the bytes it writes, with or without Range.

Used by tests/test_remote.py (ranged header reads) and the benchmark (a server that
ignores Range).  ``sent`` counts the body bytes written to the socket per path, also when
the client hangs up early; ``log`` records each GET's path, Range header and status.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional


class FileServer(ThreadingHTTPServer):
    """Serves ``root`` on 127.0.0.1, honouring single ``Range: bytes=a-[b]`` or not."""

    def __init__(self, root: Path, ranges: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.ranges = root, ranges
        self.sent: Counter[str] = Counter()  # path -> body bytes written to the socket
        self.log: list[tuple[str, Optional[str], int]] = []  # (path, Range, status)
        self.busy = 0  # GETs being answered
        self.fail_next = 0  # answer this many more GETs with 503 (a hub being restarted)
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
            if srv.fail_next > 0:
                srv.fail_next -= 1
                status = 503
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
