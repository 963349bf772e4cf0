"""The RPMs: built with rpmbuild from koji-kabi.spec, each file where Koji looks, one version.

The real-Koji tier installs these RPMs and runs the hub, kojid and CLI from them
(tests/integration/test_install.py); here: what each package holds, without Koji.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import koji_kabi
from koji_kabi.koji.rules import load_rules
from koji_kabi.koji.settings import BuilderSettings, HubSettings, load_settings

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "koji-kabi.spec"


def _q(rpm: Path, *query: str) -> list[str]:
    return subprocess.run(["rpm", "-qp", *query, str(rpm)], capture_output=True, text=True,
                          check=True).stdout.splitlines()


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("rpmbuild") is None:
        pytest.skip("no rpmbuild (scripts/bootstrap.sh installs it)")
    out = tmp_path_factory.mktemp("rpms")
    subprocess.run([str(REPO / "scripts" / "build-rpms.sh"), str(out)], check=True,
                   capture_output=True)
    return {_q(p, "--qf", "%{NAME}")[0]: p for p in out.glob("*.noarch.rpm")}


def test_one_version_for_the_spec_setup_py_and_the_library() -> None:
    spec = re.search(r"^Version:\s*(\S+)", SPEC.read_text(), re.M).group(1)
    setup = subprocess.run(["python3", "setup.py", "--version"], cwd=REPO, text=True,
                           capture_output=True, check=True).stdout.split()[-1]
    assert spec == setup == koji_kabi.__version__


def test_four_packages_as_koji_ships_its_plugins(rpms: dict[str, Path]) -> None:
    assert set(rpms) == {"python3-koji-kabi", "koji-kabi-hub", "koji-kabi-builder",
                         "python3-koji-kabi-cli"}
    files = {name: set(_q(p, "-l")) for name, p in rpms.items()}
    assert "/usr/lib/koji-hub-plugins/kabi_hub.py" in files["koji-kabi-hub"]
    assert "/usr/share/koji-kabi/kabi-schema.sql" in files["koji-kabi-hub"]
    assert "/usr/lib/koji-builder-plugins/kabi_builder.py" in files["koji-kabi-builder"]
    (cli,) = files["python3-koji-kabi-cli"]
    assert re.fullmatch(r"/usr/lib/python3\.\d+/site-packages/koji_cli_plugins/kabi\.py", cli)
    lib = files["python3-koji-kabi"]
    assert "/usr/bin/koji-kabi" in lib
    (site,) = {f.rsplit("/koji_kabi/", 1)[0] for f in lib if "/koji_kabi/" in f}
    shipped = {f.rsplit("/koji_kabi/", 1)[1] for f in lib
               if "/koji_kabi/" in f and f.endswith((".py", ".json"))}
    wanted = {str(p.relative_to(REPO / "koji_kabi")) for p in (REPO / "koji_kabi").rglob("*")
              if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    assert shipped == wanted, site
    names = sorted(files)  # no path (file or directory) in two packages
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not files[a] & files[b], (a, b)


def test_configs_are_noreplace_and_parse(rpms: dict[str, Path]) -> None:
    configs = {}
    for name in ("koji-kabi-hub", "koji-kabi-builder"):
        for line in _q(rpms[name], "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"):
            path, _, flags = line.partition(" ")
            if "c" in flags:
                assert "n" in flags, line
                configs[path] = name
    assert configs == {"/etc/koji-hub/plugins/kabi.conf": "koji-kabi-hub",
                       "/etc/koji-hub/plugins/kabi-rules.yaml": "koji-kabi-hub",
                       "/etc/kojid/plugins/kabi.conf": "koji-kabi-builder"}
    # what the spec installs there are these files, and they are valid as shipped
    hub = load_settings(HubSettings, str(REPO / "conf" / "kabi-hub.conf"))
    assert hub.rules == "/etc/koji-hub/plugins/kabi-rules.yaml"
    load_settings(BuilderSettings, str(REPO / "conf" / "kabi-builder.conf"))
    load_rules(str(REPO / "conf" / "rules.yaml"))


def test_requires_name_the_distributions_packages(rpms: dict[str, Path]) -> None:
    lib = {r.split()[0] for r in _q(rpms["python3-koji-kabi"], "--requires")}
    assert {"python3-koji", "python3-rpm", "python3-pyyaml", "python3-requests"} <= lib
    assert not lib & {"koji", "rpm", "pyyaml", "requests"}  # PyPI's names
    for name, needs in (("koji-kabi-hub", "koji-hub"), ("koji-kabi-builder", "koji-builder"),
                        ("python3-koji-kabi-cli", "koji")):
        requires = {r.split()[0] for r in _q(rpms[name], "--requires")}
        assert {needs, "python3-koji-kabi"} <= requires, name
