"""Reading the files a person names: regular files only, never blocking, within limits.

Why: inputs can be hostile or just wrong.  ``open()`` on a FIFO blocks until a writer
comes, ``/dev/zero`` never ends, and a few KiB of gzip/bzip2/xz can inflate to
terabytes.  Every local reader opens through :func:`open_regular` and decompresses
through :func:`read_content`, so time and memory are bounded by the limits below and by
the file's real size — never by a size the input claims.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Callable

from koji_kabi.errors import KabiError

#: Decompressed size of one input: a kernel's symvers is ~2 MB, a large .ko ~100 MB.
MAX_CONTENT_BYTES = 256 * 1024 * 1024
#: Text inputs (symvers, dumps, stablelists): a kernel's provides are ~2 MB of text.
MAX_TEXT_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024

#: ``open`` of each reads every concatenated stream, as ``zcat`` does
_COMPRESSED: dict[bytes, tuple[str, Callable[[BinaryIO], BinaryIO]]] = {
    b"\x1f\x8b": ("gzip", gzip.open),
    b"\xfd7zXZ": ("xz", lzma.open),
    b"BZh": ("bzip2", bz2.open),
}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit}-byte"


def _os_error(path: str, exc: OSError) -> KabiError:
    return KabiError(path, exc.strerror or str(exc))


def open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; a :class:`KabiError` if not.

    ``O_NONBLOCK`` makes opening a FIFO return at once, so it can be refused instead of
    waiting for a writer forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise KabiError(path, f"not a regular file ({kind})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_head(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a regular file."""
    with open_regular(path) as f:
        try:
            return f.read(size)
        except OSError as exc:
            raise _os_error(path, exc) from None


def _bounded_read(f: BinaryIO, limit: int) -> bytearray:
    """At most ``limit`` + 1 bytes of ``f``, in chunks: never one allocation of ``limit``."""
    buf = bytearray()
    while len(buf) <= limit:
        chunk = f.read(min(_CHUNK, limit + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def decompress(data: bytes, source: str, limit: int = MAX_CONTENT_BYTES) -> bytes:
    """``data`` itself, or its gzip/xz/bzip2 decompression (every stream), at most ``limit``."""
    if data[:4] == _ZSTD_MAGIC:
        raise KabiError(source, "zstd-compressed input is not supported: decompress it first")
    for magic, (name, opener) in _COMPRESSED.items():
        if data.startswith(magic):
            try:
                with opener(io.BytesIO(data)) as f:
                    out = _bounded_read(f, limit)
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
                raise KabiError(source, f"corrupt {name} data ({exc})") from None
            if len(out) > limit:
                raise KabiError(source, f"{name} data inflates past the "
                                f"{_size(limit)} limit of one input")
            return bytes(out)
    return data


def read_content(path: str, limit: int = MAX_CONTENT_BYTES) -> bytes:
    """A regular file's contents, decompressed if gzip/xz/bzip2, at most ``limit`` bytes."""
    with open_regular(path) as f:
        try:
            if os.fstat(f.fileno()).st_size > limit:
                raise KabiError(path, f"larger than the {_size(limit)} limit of one input")
            data = _bounded_read(f, limit)
        except OSError as exc:
            raise _os_error(path, exc) from None
    if len(data) > limit:  # it grew while we read it
        raise KabiError(path, f"larger than the {_size(limit)} limit of one input")
    return decompress(bytes(data), path, limit)


def decode_text(data: bytes, source: str) -> str:
    """Strict UTF-8: bytes that are not text would make distinct names equal (U+FFFD)."""
    if len(data) > MAX_TEXT_BYTES:
        raise KabiError(source, f"text larger than the {_size(MAX_TEXT_BYTES)} limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise KabiError(f"{source}:{line}", f"not UTF-8 text "
                        f"(byte {data[exc.start]:#04x} at offset {exc.start})") from None


def text_lines(text: str) -> Iterator[str]:
    """Lines split at ``\\n`` only (``str.splitlines`` also splits at ``\\x1c``, U+2028 …)."""
    return iter(io.StringIO(text, newline="\n"))
