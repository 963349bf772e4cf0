"""Our readers against independent oracles on real RPMs built with rpmbuild.

* provides/requires sets equal what ``rpm -qp --provides/--requires`` prints;
* our delta equals the talk's ``grep | sort -u | comm`` over those lists;
* our verdicts equal ``dnf repoclosure`` on a ``createrepo_c`` repo of kernel + kmods;
* headers are read without touching the payload.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from koji_kabi import KabiError, TableKey, delta_kernels, verdict
from koji_kabi.analysis.verdict import ksym_providers
from koji_kabi.readers.deps import parse_dep, parse_dump_line
from koji_kabi.readers.inputs import (
    kmod_from_file,
    load_kernel,
    load_kernels,
    load_kmods,
    load_stablelists,
)
from koji_kabi.readers.packages import kernel_table_from_header
from koji_kabi.readers.rpmheader import read_rpm_file, read_rpm_header
from tests.conftest import V, World
from tests.support import oracle
from tests.support import rpmfactory as rf

X86 = TableKey("x86_64")


def _oracle_kernel_deps(path: Path, kind: str) -> set[tuple[str, int]]:
    """(symbol, crc) of every kernel()/ksym() line rpm itself prints."""
    out = set()
    for line in oracle.rpm_query_deps(path, kind):
        name, flags, version = parse_dump_line(line)
        dep = parse_dep(name, flags, version)
        if dep is not None:
            out.add((dep.kind, dep.symbol, dep.crc))
    return out


def test_kernel_provides_equal_rpm_query(world: World) -> None:
    for rpm_path in sorted(world.kernel2.glob("kernel-*core-*.rpm")):
        table = kernel_table_from_header(read_rpm_file(str(rpm_path)), str(rpm_path))
        assert table is not None
        ours = {("kernel", s, c) for s, c in table.crcs.items()}
        assert ours == _oracle_kernel_deps(rpm_path, "provides"), rpm_path.name


def test_kmod_requires_equal_rpm_query(world: World) -> None:
    for rpm_path in sorted(world.kmods.glob("*.rpm")):
        kmod = kmod_from_file(str(rpm_path))
        ours = {("kernel", s, c) for s, c in kmod.requires.items()}
        ours |= {("ksym", s, c) for s, c in kmod.ksym_requires.items()}
        assert ours == _oracle_kernel_deps(rpm_path, "requires"), rpm_path.name


def test_delta_equals_sort_comm(world: World) -> None:
    old_core = world.rpm(world.kernel1, "kernel-core")
    new_core = world.rpm(world.kernel2, "kernel-core")
    old_lines = oracle.kernel_sym_lines(oracle.rpm_query_deps(old_core, "provides"))
    new_lines = oracle.kernel_sym_lines(oracle.rpm_query_deps(new_core, "provides"))
    only_old, only_new, both = oracle.comm_delta(old_lines, new_lines)
    kd = delta_kernels(load_kernel(str(old_core)), load_kernel(str(new_core)))
    (d,) = kd.deltas
    fmt = rf.format_crc
    assert set(only_old) == {f"kernel({c.symbol}) = {fmt(c.old_crc)}"
                             for c in d.removed + d.changed}
    assert set(only_new) == {f"kernel({c.symbol}) = {fmt(c.new_crc)}"
                             for c in d.added + d.changed}
    assert len(both) == d.unchanged_count
    truth = world.churn["x86_64"]
    assert {c.symbol for c in d.changed} == truth.changed
    assert {c.symbol for c in d.added} == truth.added
    assert {c.symbol for c in d.removed} == truth.removed


def test_directory_groups_builds_arches_and_flavours(world: World, tmp_path: Path) -> None:
    both = tmp_path / "both"
    both.mkdir()
    for src in list(world.kernel2.glob("*.rpm")) + list(world.kernel1.glob("*.rpm")):
        (both / src.name).symlink_to(src)
    k1, k2 = load_kernels([str(both)])
    assert (k1.nvr, k2.nvr) == ("kernel-5.14.0-1.el9", "kernel-5.14.0-2.el9")
    assert set(map(str, k2.tables)) == {"x86_64", "x86_64+debug", "aarch64", "aarch64+debug"}
    for arch in ("x86_64", "aarch64"):
        assert dict(k2.tables[TableKey(arch)].crcs) == world.new[arch]
        assert dict(k2.tables[TableKey(arch, "debug")].crcs) == world.new_debug[arch]
    kd = delta_kernels(k1, k2)
    assert {str(d.key) for d in kd.deltas} == set(map(str, k2.tables))


@pytest.mark.parametrize("arch", ["x86_64"])
def test_verdicts_equal_dnf_repoclosure(world: World, arch: str) -> None:
    if shutil.which("createrepo_c") is None or shutil.which("dnf") is None:
        pytest.skip("createrepo_c/dnf not installed (scripts/bootstrap.sh --test installs them)")
    kernel = load_kernel(str(world.kernel2))
    kmods = load_kmods([str(world.kmods)])
    providers = ksym_providers(kmods)
    ours = {m.nvr + "." + m.key.arch for m in kmods if m.key.arch == arch
            and not verdict(m, kernel, None, providers.get(arch)).compatible}
    rpms = [p for p in world.kernel2.glob(f"*.{arch}.rpm")] + list(world.kmods.glob("*.rpm"))
    try:
        broken = oracle.repoclosure(rpms, arch=arch)
    except oracle.ToolMissing as exc:
        pytest.skip(str(exc))
    theirs = {nevra for nevra in broken if nevra.startswith("kmod-")}
    assert ours == theirs
    assert ours == {"kmod-crc-1.0-1.el9.x86_64", "kmod-missing-1.0-1.el9.x86_64",
                    "kmod-badksym-1.0-1.el9.x86_64"}


def test_debug_flavour_kmod_is_checked_against_debug_table(world: World) -> None:
    kernel = load_kernel(str(world.kernel2))
    dbg = kmod_from_file(str(world.rpm(world.kmods, "kmod-dbg")))
    assert dbg.key == TableKey("x86_64", "debug")
    v = verdict(dbg, kernel)
    assert v.compatible and v.key == TableKey("x86_64", "debug")


class CountingReader(io.RawIOBase):
    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.bytes_read += len(data)
        return data


def test_header_only_reads_ignore_the_payload(tmp_path: Path) -> None:
    symbols = rf.random_symbols(30000, seed=7)
    build = rf.kernel_build("kernel", V, "9.el9", ("x86_64",), {"x86_64": symbols},
                            split=("core",), payload_bytes=20 * 1024 * 1024)
    (core,) = [p for p in rf.build_rpms(build, tmp_path, srpm=False)]
    reader = CountingReader(core)
    hdr = read_rpm_header(reader, str(core))  # type: ignore[arg-type]
    reader.f.close()
    size = core.stat().st_size
    assert size > 20 * 1024 * 1024
    assert reader.bytes_read == hdr.header_bytes < 4 * 1024 * 1024
    # a copy cut right after the header reads the same; one byte less is a clear error
    cut = rf.truncate_copy(core, tmp_path / "cut.rpm", hdr.header_bytes)
    table = kernel_table_from_header(read_rpm_file(str(cut)), "cut")
    assert table is not None and dict(table.crcs) == symbols
    short = rf.truncate_copy(core, tmp_path / "short.rpm", hdr.header_bytes - 1)
    with pytest.raises(KabiError, match="truncated RPM: file ends inside the header"):
        read_rpm_file(str(short))


@pytest.mark.parametrize("name,problem", [
    ("truncated.rpm", "truncated RPM"),
    ("not-an-rpm.rpm", "unrecognised content"),
])
def test_corrupt_files_give_one_clear_error(world: World, name: str, problem: str) -> None:
    path = str(world.misc / name)
    with pytest.raises(KabiError, match=problem) as err:
        load_kernel(path)
    assert str(err.value).startswith(path + ": ") and "\n" not in str(err.value)


def test_plain_rpm_is_neither_kernel_nor_kmod(world: World) -> None:
    plain = str(world.rpm(world.misc, "bash-completion-extra", "noarch"))
    with pytest.raises(KabiError, match="not a kernel package"):
        load_kernel(plain)
    with pytest.raises(KabiError, match="not a kmod"):
        kmod_from_file(plain)
    assert load_kmods([str(world.misc)], on_skip=lambda e: None) == []


def test_stablelist_from_the_rpm_payload(world: World) -> None:
    rpm_path = world.rpm(world.misc, "kernel-abi-stablelists", "noarch")
    lists = load_stablelists([str(rpm_path)])
    assert {a: sorted(lst.symbols) for a, lst in lists.items()} == world.stable
