"""Opening and decompressing what a person names: regular files only, within limits."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import threading
from pathlib import Path

import pytest

from koji_kabi.errors import KabiError
from koji_kabi.readers.files import decode_text, decompress, open_regular, read_content, text_lines
from koji_kabi.readers.inputs import load_kmods, scan
from koji_kabi.readers.stablelist import read_stablelist_dir


def _within(seconds: float, call):  # a reader that blocks fails the test instead of hanging
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the reader blocked"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "symvers"
    os.mkfifo(fifo)
    with pytest.raises(KabiError, match="not a regular file \\(a FIFO\\)"):
        _within(5, lambda: open_regular(str(fifo)))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused(device: str) -> None:
    with pytest.raises(KabiError, match="character device"):
        _within(5, lambda: read_content(device))


def test_inside_a_directory_special_files_are_skipped_with_their_reason(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a-fifo.rpm")
    os.symlink("/dev/zero", tmp_path / "zero.ko")
    loaded = _within(5, lambda: scan([str(tmp_path)]))
    reasons = sorted(str(e) for e in loaded.skipped)
    assert len(reasons) == 2 and all("not a regular file" in r for r in reasons)
    warned: list[KabiError] = []
    assert _within(5, lambda: load_kmods([str(tmp_path)], on_skip=warned.append)) == []
    assert len(warned) == 2


def test_stablelist_dirs_skip_a_fifo(tmp_path: Path) -> None:
    tree = tmp_path / "kabi-rhel90"
    tree.mkdir()
    (tree / "kabi_stablelist_x86_64").write_text("[rhel9_x86_64_stablelist]\n\tkmalloc\n")
    os.mkfifo(tree / "kabi_stablelist_aarch64")
    skipped: list[KabiError] = []
    lists = _within(5, lambda: read_stablelist_dir(str(tmp_path), skipped.append))
    assert set(lists) == {"x86_64"} and "FIFO" in str(skipped[0])
    with pytest.raises(KabiError, match="FIFO"):
        _within(5, lambda: read_stablelist_dir(str(tmp_path)))


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_every_concatenated_stream_is_read_and_the_limit_holds(compress) -> None:
    block = b"0x00000001\tsym\tvmlinux\tEXPORT_SYMBOL\t\n" * 1000
    two = compress(block) + compress(block)
    assert decompress(two, "x") == block * 2  # what zcat/xzcat/bzcat give
    with pytest.raises(KabiError, match="inflates past the 39000-byte limit"):
        decompress(compress(block * 40), "x", limit=39000)


def test_corrupt_streams_are_one_error() -> None:
    data = bytearray(gzip.compress(b"x" * 10000))
    data[20:40] = b"\xff" * 20
    with pytest.raises(KabiError, match="corrupt gzip data"):
        decompress(bytes(data), "x.gz")


def test_text_is_strict_utf8_and_split_at_newlines_only() -> None:
    with pytest.raises(KabiError, match=r"^x:3: not UTF-8 text \(byte 0xff"):
        decode_text(b"a\nb\nc\xffd\n", "x")
    assert list(text_lines("a\x1cb\u2028c\nd")) == ["a\x1cb\u2028c\n", "d"]
