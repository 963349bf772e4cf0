"""Read RPM headers over HTTP (Koji's ``topurl``), fetching only the header's bytes.

A kernel RPM is tens of MB; its header (the ``kernel()`` provides) is a few. The
header parser of :mod:`koji_kabi.readers.rpmheader` asks for each structure's exact size, so
here every ``read(n)`` beyond what has arrived becomes one ``Range`` request for
exactly the missing bytes, after a first generous range (:data:`FIRST_RANGE`) that
holds a whole kmod header.  A server that ignores ``Range`` (answers ``200``) is read
as a stream that is closed as soon as the header is complete, so the payload is never
downloaded either way: bytes read per RPM <= header size + :data:`FIRST_RANGE`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from koji_kabi.errors import KabiError
from koji_kabi.readers.rpmheader import RpmHeader, parse_header_blob, read_header_blob_from

#: First request: lead + signature + a whole kmod header (kernel headers need one more).
FIRST_RANGE = 64 * 1024
#: Parallel connections for many small headers (a cold cache of thousands of kmods).
WORKERS = 4
#: Retries of a GET (they are idempotent) on connection failures, timeouts and 5xx, with
#: exponential backoff: 0.5, 1, 2, 4 s (a web server being restarted, a proxy hiccup).
RETRIES, BACKOFF = 4, 0.5


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


class _HttpReader:
    """``read(n)`` over one URL: ranged fetches, or a stream if Range is ignored."""

    def __init__(self, fetcher: HeaderFetcher, url: str) -> None:
        self.fetcher, self.url = fetcher, url
        self.buf = bytearray()  # bytes 0..len(buf) of the file
        self.pos = 0
        self.eof = False
        self.stream: Any = None  # the open 200 response, once the server ignored Range

    def read(self, n: int) -> bytes:
        want = self.pos + n
        if want > len(self.buf) and not self.eof:
            self._fill(want)
        data = bytes(self.buf[self.pos:want])
        self.pos += len(data)
        return data

    def _fill(self, want: int) -> None:
        if self.stream is None:
            start = len(self.buf)
            end = max(want, FIRST_RANGE if not start else 0) - 1
            resp = self.fetcher.get(self.url, {"Range": f"bytes={start}-{end}"})
            if resp.status_code == 206:
                body = self.fetcher.body(resp, self.url)
                self._check_range(resp, start)
                self.fetcher.count(len(body))
                self.buf += body
                if len(body) < end - start + 1:
                    self.eof = True  # the file ends before what we asked for
                return
            if resp.status_code == 416:  # asked past the end: the file is shorter
                resp.close()
                self.eof = True
                return
            self.stream = resp  # 200: Range ignored; read on, skip what we already have
            self._skip(start)
        self._stream_until(want)

    def _check_range(self, resp: Any, start: int) -> None:
        got = resp.headers.get("Content-Range", "")
        if not got.startswith(f"bytes {start}-"):
            raise KabiError(self.url, f"HTTP server sent the wrong range ({got or 'none'})")

    def _raw(self, n: int) -> bytes:
        try:
            data = self.stream.raw.read(n, decode_content=True)
        except Exception as exc:  # urllib3 errors: one line naming the URL
            raise KabiError(self.url, f"download failed: {_one_line(exc)}") from None
        self.fetcher.count(len(data or b""))
        return data or b""

    def _skip(self, count: int) -> None:
        while count > 0:
            data = self._raw(min(count, FIRST_RANGE))
            if not data:
                self.eof = True
                return
            count -= len(data)

    def _stream_until(self, want: int) -> None:
        while len(self.buf) < want:
            data = self._raw(want - len(self.buf))
            if not data:
                self.eof = True
                return
            self.buf += data

    def close(self) -> None:
        """Drop a streamed response: its connection is closed, the payload never read."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None


class HeaderFetcher:
    """RPM headers from URLs with pooled keep-alive connections (one session per thread).

    ``bytes_read`` and ``requests`` count what went over the wire, for benchmarks and
    tests.  ``session`` (a ``requests.Session``) replaces the default one, e.g. to set
    client certificates or a CA bundle; it is then used from the calling thread only.
    """

    def __init__(self, session: Any = None, timeout: float = 120.0, workers: int = WORKERS,
                 verify: Any = True, retries: int = RETRIES, backoff: float = BACKOFF) -> None:
        self.timeout, self.workers, self.verify = timeout, max(1, workers), verify
        self.retries, self.backoff = retries, backoff
        self._given = session
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pool: Optional[ThreadPoolExecutor] = None
        self.bytes_read = 0
        self.requests = 0

    def _session(self) -> Any:
        if self._given is not None:
            return self._given
        session = getattr(self._local, "session", None)
        if session is None:
            import requests
            from urllib3.util.retry import Retry

            session = requests.Session()
            n = self.retries
            retry = Retry(total=n, connect=n, read=n, status=n, backoff_factor=self.backoff,
                          status_forcelist=(500, 502, 503, 504),
                          allowed_methods=frozenset({"GET"}), raise_on_status=False)
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=4,
                                                    max_retries=retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def count(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_read += nbytes

    def get(self, url: str, headers: dict) -> Any:
        """A streamed GET; HTTP errors and connection failures are one-line KabiErrors."""
        import requests

        with self._lock:
            self.requests += 1
        try:
            resp = self._session().get(url, headers=dict(headers, **{
                "Accept-Encoding": "identity"}), stream=True, timeout=self.timeout,
                verify=self.verify)
        except requests.RequestException as exc:
            raise KabiError(url, f"cannot fetch: {_one_line(exc)}") from None
        if resp.status_code >= 400 and resp.status_code != 416:
            resp.close()
            raise KabiError(url, f"HTTP {resp.status_code} {resp.reason or ''}".rstrip())
        return resp

    @staticmethod
    def body(resp: Any, url: str) -> bytes:
        import requests

        try:
            return resp.content
        except requests.RequestException as exc:
            raise KabiError(url, f"download failed: {_one_line(exc)}") from None
        finally:
            resp.close()

    def header(self, url: str) -> RpmHeader:
        """The parsed header of the RPM at ``url``; errors name the URL."""
        reader = _HttpReader(self, url)
        try:
            blob, end = read_header_blob_from(reader.read, url)
        finally:
            reader.close()
        return parse_header_blob(blob, url, end)

    def headers(self, urls: Sequence[str]) -> list[RpmHeader]:
        """Headers of many RPMs, in order; fetched on a few connections in parallel."""
        if len(urls) < 2 or self.workers < 2 or self._given is not None:
            return [self.header(u) for u in urls]
        with self._lock:
            if self._pool is None:  # kept: its threads keep their keep-alive connections
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="kabi-http")
        return list(self._pool.map(self.header, urls))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def read_remote_header(url: str, fetcher: Optional[HeaderFetcher] = None) -> RpmHeader:
    """One RPM header from a URL (a throwaway fetcher unless one is given)."""
    return (fetcher or HeaderFetcher(workers=1)).header(url)
