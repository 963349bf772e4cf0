"""Read an RPM's header, and only its header, from a file or any byte stream.

The reader walks the lead (96 bytes) and the signature header to find where the main
header ends, reads exactly up to there and hands the header blob to the ``rpm`` bindings.
It never reads the payload, so a 60 MB kernel RPM costs the same as a 1 MB one, and the
same code serves local files and ranged HTTP reads of Koji's download URL.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from itertools import repeat
from typing import BinaryIO, Callable, NamedTuple, Optional

from koji_kabi.errors import KabiError
from koji_kabi.readers.files import open_regular

LEAD_SIZE = 96
RPM_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
_INTRO = struct.Struct(">4s4xII")  # magic+version, reserved, index count, data size
#: Larger than any real header (kernel-core with 30k provides is ~2 MB): refuse garbage.
MAX_HEADER_BYTES = 256 * 1024 * 1024


class RpmDep(NamedTuple):
    name: str
    flags: int
    version: str


@dataclass(frozen=True)
class RpmHeader:
    """The fields koji-kabi needs from one RPM header."""

    name: str
    version: str
    release: str
    epoch: Optional[int]
    arch: str
    sourcerpm: Optional[str]  # None for a source RPM
    license: str
    provides: tuple[RpmDep, ...]
    requires: tuple[RpmDep, ...]
    filenames: tuple[str, ...]
    digest: str  # sha256 of the header blob: a content address for caches
    header_bytes: int  # offset where the header ends (bytes a reader needs)

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    @property
    def nvra(self) -> str:
        return f"{self.nvr}.{self.arch}"

    @property
    def is_source(self) -> bool:
        return self.sourcerpm is None

    @property
    def build_nvr(self) -> str:
        """The build this RPM belongs to: its source RPM's N-V-R."""
        if self.sourcerpm is None:
            return self.nvr
        srpm = self.sourcerpm
        for suffix in (".src.rpm", ".nosrc.rpm"):
            if srpm.endswith(suffix):
                return srpm[: -len(suffix)]
        return srpm


def _read_exact(read: Callable[[int], bytes], size: int, source: str, what: str) -> bytes:
    data = read(size)
    if len(data) != size:
        raise KabiError(source, f"truncated RPM: file ends inside the {what}")
    return data


def _section(read: Callable[[int], bytes], source: str, what: str) -> tuple[bytes, int]:
    """Read one header structure (intro + index + data); return (its bytes, size)."""
    intro = _read_exact(read, _INTRO.size, source, what)
    magic, count, size = _INTRO.unpack(intro)
    if magic[:3] != HEADER_MAGIC[:3]:
        raise KabiError(source, f"corrupt RPM: bad {what} magic")
    body_size = 16 * count + size
    if body_size > MAX_HEADER_BYTES:
        raise KabiError(source, f"corrupt RPM: {what} claims {body_size} bytes")
    body = _read_exact(read, body_size, source, what)
    return intro + body, _INTRO.size + body_size


def read_header_blob(stream: BinaryIO, source: str) -> tuple[bytes, int]:
    """Return (main header blob, end offset) reading nothing past the header."""
    return read_header_blob_from(stream.read, source)


def read_header_blob_from(read: Callable[[int], bytes], source: str) -> tuple[bytes, int]:
    """:func:`read_header_blob` over any ``read(n)``: each call asks for exactly the bytes
    the next structure needs, so an HTTP reader can fetch just those (koji_kabi.readers.remote)."""
    lead = read(LEAD_SIZE)
    if len(lead) < 4 or lead[:4] != RPM_MAGIC:
        raise KabiError(source, "not an RPM file (no RPM lead magic)")
    if len(lead) != LEAD_SIZE:
        raise KabiError(source, "truncated RPM: file ends inside the lead")
    signature, sig_size = _section(read, source, "signature header")
    pad = (8 - sig_size % 8) % 8
    _read_exact(read, pad, source, "signature header")
    header, hdr_size = _section(read, source, "header")
    _check_digest(signature[8:], header, source)
    return header[8:], LEAD_SIZE + sig_size + pad + hdr_size


_SIGTAG_SHA1, _SIGTAG_SHA256 = 269, 273
_STRING = 6


def _signature_strings(signature: bytes) -> dict[int, str]:
    """The STRING entries of a signature header blob (count, size, index, data)."""
    count, size = struct.unpack_from(">II", signature)
    store = 8 + 16 * count
    out = {}
    for i in range(count):
        tag, kind, offset, _n = struct.unpack_from(">IIiI", signature, 8 + 16 * i)
        if kind == _STRING and 0 <= offset < size:
            end = signature.find(b"\0", store + offset, store + size)
            if end >= 0:
                out[tag] = signature[store + offset:end].decode("ascii", "replace")
    return out


def _check_digest(signature: bytes, header: bytes, source: str) -> None:
    """The header's bytes against the SHA256 (or SHA1) the signature header records.

    The same check as ``rpm -K``, on exactly the bytes already read: a flipped bit in a
    CRC or a name is a corrupt RPM, not a different kernel.  (Headers without digests,
    from very old rpmbuilds, are taken as they are.)
    """
    digests = _signature_strings(signature)
    for tag, name, algorithm in ((_SIGTAG_SHA256, "SHA256", hashlib.sha256),
                                 (_SIGTAG_SHA1, "SHA1", hashlib.sha1)):
        if tag in digests:
            if algorithm(header).hexdigest() != digests[tag].lower():
                raise KabiError(source, f"corrupt RPM: header {name} digest mismatch")
            return


def _deps(hdr, names_tag: int, flags_tag: int, versions_tag: int) -> tuple[RpmDep, ...]:
    names = hdr[names_tag] or []
    flags = hdr[flags_tag] or []
    versions = hdr[versions_tag] or []
    # tuple.__new__ makes the same RpmDep as RpmDep(...), without a Python-level call
    return tuple(map(tuple.__new__, repeat(RpmDep), zip(names, flags, versions)))


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_header_blob(blob: bytes, source: str, header_bytes: int = 0) -> RpmHeader:
    """Decode a header blob with the rpm bindings into an :class:`RpmHeader`."""
    import rpm  # imported here: the rest of the package works without the bindings

    try:
        hdr = rpm.hdr(blob)
    except (rpm.error, TypeError, ValueError) as exc:
        raise KabiError(source, f"corrupt RPM header ({exc})") from None
    t = rpm
    for tag, what in ((t.RPMTAG_NAME, "name"), (t.RPMTAG_VERSION, "version"),
                      (t.RPMTAG_RELEASE, "release"), (t.RPMTAG_ARCH, "arch"),
                      (t.RPMTAG_SOURCERPM, "SOURCERPM")):
        value = _text(hdr[tag])
        if not value.isprintable() or " " in value:  # it names builds in every output
            raise KabiError(source, f"corrupt RPM: {what} {value!r} is not printable")
    return RpmHeader(
        name=_text(hdr[t.RPMTAG_NAME]),
        version=_text(hdr[t.RPMTAG_VERSION]),
        release=_text(hdr[t.RPMTAG_RELEASE]),
        epoch=hdr[t.RPMTAG_EPOCH],
        arch=_text(hdr[t.RPMTAG_ARCH]) if not hdr.isSource() else "src",
        sourcerpm=None if hdr.isSource() else _text(hdr[t.RPMTAG_SOURCERPM]) or None,
        license=_text(hdr[t.RPMTAG_LICENSE]),
        provides=_deps(hdr, t.RPMTAG_PROVIDENAME, t.RPMTAG_PROVIDEFLAGS, t.RPMTAG_PROVIDEVERSION),
        requires=_deps(hdr, t.RPMTAG_REQUIRENAME, t.RPMTAG_REQUIREFLAGS, t.RPMTAG_REQUIREVERSION),
        filenames=tuple(_text(f) for f in hdr[t.RPMTAG_FILENAMES] or ()),
        digest=hashlib.sha256(blob).hexdigest(),
        header_bytes=header_bytes,
    )


def read_rpm_header(stream: BinaryIO, source: str) -> RpmHeader:
    """Read and decode the header of the RPM in ``stream`` (positioned at its start)."""
    blob, end = read_header_blob(stream, source)
    return parse_header_blob(blob, source, end)


def read_rpm_file(path: str) -> RpmHeader:
    """Header of a local RPM file; errors name the file.

    Reads never ask for more than the file still holds, so a header claiming 256 MB in
    a 1 KB file costs 1 KB, not an allocation of what it claims.
    """
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size

        def read(n: int) -> bytes:
            return f.read(max(0, min(n, size - f.tell())))

        try:
            blob, end = read_header_blob_from(read, path)
        except OSError as exc:
            raise KabiError(path, exc.strerror or str(exc)) from None
    return parse_header_blob(blob, path, end)
