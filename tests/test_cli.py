"""The koji-kabi command end to end: output, JSON, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import World
from tests.support.results import valid

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "koji_kabi.cli", *args], capture_output=True,
                          text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("koji-kabi: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_delta_exit_codes_and_json(world: World) -> None:
    old, new = str(world.kernel1), str(world.kernel2)
    proc = run("delta", old, new, "--summary")
    assert proc.returncode == 1 and "breaking: yes" in proc.stdout
    assert "x86_64+debug" in proc.stdout and "aarch64" in proc.stdout
    same = run("delta", new, new)
    assert same.returncode == 0 and "breaking: no" in same.stdout
    data = valid(run("delta", old, new, "--json", "--arch", "x86_64").stdout, "delta")
    assert {d["key"] for d in data["deltas"]} == {"x86_64", "x86_64+debug"}
    plain = next(d for d in data["deltas"] if d["key"] == "x86_64")
    truth = world.churn["x86_64"]
    assert {c["symbol"] for c in plain["changed"]} == truth.changed
    assert all(c["old"].startswith("0x") and c["new"].startswith("0x")
               for c in plain["changed"])
    assert {c["symbol"] for c in plain["removed"] if c["new"] is None} == truth.removed


def test_check_verdicts_and_exit_codes(world: World) -> None:
    ok = run("check", str(world.rpm(world.kmods, "kmod-ok")), "--kernel", str(world.kernel2))
    assert ok.returncode == 0 and ": compatible (60 symbols)" in ok.stdout
    bad = run("check", str(world.rpm(world.kmods, "kmod-crc")), "--kernel", str(world.kernel2),
              "--stablelist", str(world.rpm(world.misc, "kernel-abi-stablelists", "noarch")))
    assert bad.returncode == 1
    assert "INCOMPATIBLE - 0 missing, 3 CRC mismatch of 33 symbols" in bad.stdout
    assert "on the stablelist" in bad.stdout
    everything = valid(run("check", str(world.kmods), "--kernel", str(world.kernel2),
                           "--json").stdout, "verdicts")
    assert not everything["compatible"]
    verdicts = {v["rpm"]: v["compatible"] for v in everything["verdicts"]}
    assert verdicts["kmod-ok-1.0-1.el9.x86_64"] and verdicts["kmod-ok-1.0-1.el9.aarch64"]
    assert not verdicts["kmod-missing-1.0-1.el9.x86_64"]
    assert verdicts["kmod-consumer-1.0-1.el9.x86_64"]
    assert not verdicts["kmod-badksym-1.0-1.el9.x86_64"]


def test_affected_lists_only_touched_kmods(world: World) -> None:
    proc = run("affected", str(world.kernel1), str(world.kernel2), "--kmods", str(world.kmods),
               "--json")
    assert proc.returncode == 1
    data = valid(proc.stdout, "affected")
    touched = {a["nvr"] for imp in data["impact"] for a in imp["affected"]}
    assert touched == {"kmod-crc-1.0-1.el9", "kmod-missing-1.0-1.el9"}


@pytest.mark.parametrize("name,needle", [
    ("truncated.rpm", "truncated RPM"),
    ("not-an-rpm.rpm", "unrecognised content"),
])
def test_bad_input_is_one_line_exit_2(world: World, name: str, needle: str) -> None:
    path = str(world.misc / name)
    assert_one_line_error(run("delta", path, str(world.kernel2)), path, needle)


def test_wrong_roles_and_missing_files(world: World, tmp_path: Path) -> None:
    plain = str(world.rpm(world.misc, "bash-completion-extra", "noarch"))
    assert_one_line_error(run("check", plain, "--kernel", str(world.kernel2)), "not a kmod")
    assert_one_line_error(run("delta", plain, str(world.kernel2)), "not a kernel package")
    assert_one_line_error(run("delta", str(tmp_path / "nope.rpm"), str(world.kernel2)),
                          "No such file")
    assert_one_line_error(run("check", "--kernel"), "--kernel: expected one argument",
                          "koji-kabi check --help")


def test_directory_with_a_corrupt_file_warns_and_goes_on(world: World, tmp_path: Path) -> None:
    kmods = tmp_path / "kmods"
    kmods.mkdir()
    (kmods / "ok.rpm").symlink_to(world.rpm(world.kmods, "kmod-ok"))
    (kmods / "broken.rpm").symlink_to(world.misc / "truncated.rpm")
    proc = run("check", str(kmods), "--kernel", str(world.kernel2))
    assert proc.returncode == 0
    assert "broken.rpm: truncated RPM" in proc.stderr and "(skipped)" in proc.stderr


def test_series_on_the_bundled_examples() -> None:
    proc = run("series", str(EXAMPLES / "kernels"), "--kmods", str(EXAMPLES / "kmods"),
               "--symbol", "kmalloc_caches", "--json")
    assert proc.returncode == 1  # kmods built for 6.1.0-53 do not load on 6.1.0-56
    (report,) = valid(proc.stdout, "series")["reports"]
    assert report["kernels"] == ["6.1.0-53", "6.1.0-54", "6.1.0-55", "6.1.0-56"]
    by_kmod = {h["rpm"]: h for h in report["kmods"]}
    acpi = by_kmod["kmod-acpi-call-1.2.2-1.6.1.0.53.x86_64"]
    assert acpi["first_broken"] == "6.1.0-55" and acpi["rebuilds"] == ["6.1.0-55"]
    assert by_kmod["kmod-acpi-call-1.2.2-1.6.1.0.55.x86_64"]["verdicts"][-1]["compatible"]
    use = report["use"]
    assert use["unique"] == use["changed"] + use["unchanged"] + use["absent"]
    history = dict(report["crc_history"]["kmalloc_caches"])
    assert history["6.1.0-53"] == history["6.1.0-54"] != history["6.1.0-55"]
    text = run("series", str(EXAMPLES / "kernels"), "--kmods", str(EXAMPLES / "kmods")).stdout
    assert "Most consumed symbols" in text and "first broken by" in text


def _on_a_terminal(*args: str) -> tuple[subprocess.CompletedProcess, str]:
    """The command with stderr on a pseudo-terminal (stdout a pipe): (result, stderr)."""
    import os
    import pty

    main, side = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "koji_kabi.cli", *args],
                              stdout=subprocess.PIPE, stderr=side, text=True, timeout=120)
        os.close(side)
        side = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return proc, b"".join(chunks).decode()
    finally:
        os.close(main)
        if side >= 0:
            os.close(side)


def test_progress_on_a_terminal_quiet_rows_only(world: World) -> None:
    args = ("check", str(world.kmods), "--kernel", str(world.kernel2))
    proc, err = _on_a_terminal(*args)
    assert proc.returncode == 1
    assert f"koji-kabi: reading the kernel {world.kernel2}" in err
    assert f"koji-kabi: reading the kmods in {world.kmods}" in err
    assert "compatible, " in proc.stdout.splitlines()[-1]  # the counts
    quiet, err = _on_a_terminal(*args, "--quiet")
    assert quiet.returncode == 1 and "reading" not in err
    lines = quiet.stdout.splitlines()
    assert lines and all(" on " in ln or ln.startswith("  ") for ln in lines), lines
    assert ["symbol", "required", "provided", "stable"] not in [ln.split() for ln in lines]
    assert {ln for ln in lines if " on " in ln} == {
        ln for ln in proc.stdout.splitlines() if " on " in ln}
    piped = run(*args)  # not a terminal: no progress
    assert "reading" not in piped.stderr and piped.stdout == proc.stdout
