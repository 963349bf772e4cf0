"""The .ko reader against `modprobe --dump-modversions` on real modules from the examples."""

from __future__ import annotations

import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from koji_kabi import KabiError
from koji_kabi.readers.inputs import kmod_from_file, load_kmods
from koji_kabi.readers.kofile import read_ko
from tests.support import oracle

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "kmods"


def _modules(tmp_path: Path) -> list[Path]:
    if shutil.which("rpm2archive") is None:
        pytest.skip("rpm2archive not installed (scripts/bootstrap.sh --test installs rpm2cpio)")
    out = []
    for rpm_path in sorted(EXAMPLES.glob("*.rpm"))[:4]:
        for name, data in oracle.rpm_payload(rpm_path).items():
            if name.endswith(".ko"):
                dest = tmp_path / rpm_path.stem / Path(name).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                out.append(dest)
    assert out
    return out


def _modprobe() -> str:
    for path in ("/usr/sbin/modprobe", "/sbin/modprobe", shutil.which("modprobe")):
        if path and Path(path).exists():
            return path
    pytest.skip("modprobe (package kmod) not installed")


def test_ko_modversions_equal_modprobe_dump(tmp_path: Path) -> None:
    modprobe = _modprobe()
    for ko in _modules(tmp_path):
        dump = subprocess.run([modprobe, "--dump-modversions", str(ko)], capture_output=True,
                              text=True, check=True).stdout
        expected = {line.split("\t")[1]: int(line.split("\t")[0], 16)
                    for line in dump.splitlines() if line.strip()}
        kmod = read_ko(ko.read_bytes(), str(ko))
        assert dict(kmod.requires) == expected, ko
        assert kmod.key.arch == "x86_64"


def test_ko_files_in_a_directory_and_compressed(tmp_path: Path) -> None:
    modules = _modules(tmp_path)
    xz = tmp_path / "packed" / (modules[0].name + ".xz")
    xz.parent.mkdir()
    xz.write_bytes(lzma.compress(modules[0].read_bytes()))
    assert dict(kmod_from_file(str(xz)).requires) == dict(kmod_from_file(str(modules[0])).requires)
    assert len(load_kmods([str(tmp_path)])) == len(modules) + 1


def test_truncated_ko_is_a_clear_error(tmp_path: Path) -> None:
    ko = _modules(tmp_path)[0]
    cut = tmp_path / "cut.ko"
    cut.write_bytes(ko.read_bytes()[:2000])
    with pytest.raises(KabiError, match=r"corrupt ELF|truncated ELF"):
        kmod_from_file(str(cut))
