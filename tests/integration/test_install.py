"""koji-kabi installed from its RPMs: the real hub, kojid and koji CLI load it from the
places Koji looks by default.

The tier builds the RPMs with ``scripts/build-rpms.sh`` and installs them with ``rpm -U``
(realkoji.py); the hub's ``PluginPath`` and kojid's ``pluginpath`` start with Koji's
defaults, ``/usr/lib/koji-hub-plugins`` and ``/usr/lib/koji-builder-plugins``, and the
CLI profile names no koji-kabi path at all.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.kit import CLOSED, Kit
from tests.integration.realkoji import ROOT, RealKoji

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]


def _owner(path: str) -> str:
    return subprocess.run(["rpm", "-qf", "--qf", "%{NAME}", path], capture_output=True,
                          text=True, check=True).stdout


def test_the_hub_loads_the_plugin_and_library_the_rpms_installed(koji_phase: Kit) -> None:
    where = koji_phase.admin.kabi_it.loadedFrom()
    assert where["_koji_plugin__kabi_hub"] == "/usr/lib/koji-hub-plugins/kabi_hub.py"
    assert _owner(where["_koji_plugin__kabi_hub"]) == "koji-kabi-hub"
    assert _owner(where["koji_kabi"]) == "python3-koji-kabi"
    # Koji's own protonmsg, from the Koji source the hub runs (koji-hub-plugins on Fedora)
    assert where["_koji_plugin__protonmsg"] == str(ROOT / "src/plugins/hub/protonmsg.py")


def test_kojid_loads_the_plugin_the_rpm_installed(koji_phase: Kit) -> None:
    task_id = koji_phase.admin.makeTask("kabiItWhere", [], channel="kabi")
    assert koji_phase.wait(task_id)["state"] == CLOSED
    where = koji_phase.admin.getTaskResult(task_id)
    assert where["_koji_plugin__kabi_builder"] == \
        "/usr/lib/koji-builder-plugins/kabi_builder.py"
    assert _owner(where["_koji_plugin__kabi_builder"]) == "koji-kabi-builder"
    assert _owner(where["koji_kabi"]) == "python3-koji-kabi"


def test_the_koji_cli_finds_the_installed_plugin_by_itself(realkoji: RealKoji) -> None:
    profile = (ROOT / "etc" / "koji.conf").read_text()
    assert "kabi" not in profile  # no plugin_paths entry of ours
    res = realkoji.koji("kabi-delta", "--help", user=None)
    assert res.returncode == 0 and "kabi-delta" in res.stdout, res
    assert _owner(str(realkoji.cli_plugin_dir / "kabi.py")) == "python3-koji-kabi-cli"


def test_the_configs_are_noreplace_and_the_requires_are_the_distributions(
        realkoji: RealKoji) -> None:
    flags = subprocess.run(["rpm", "-q", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]",
                            "koji-kabi-hub", "koji-kabi-builder"], capture_output=True,
                           text=True, check=True).stdout
    configs = {line.split()[0] for line in flags.splitlines() if len(line.split()) == 2}
    assert configs == {"/etc/koji-hub/plugins/kabi.conf",
                       "/etc/koji-hub/plugins/kabi-rules.yaml", "/etc/kojid/plugins/kabi.conf"}
    assert all("n" in line.split()[1] for line in flags.splitlines() if len(line.split()) == 2)
    requires = subprocess.run(["rpm", "-q", "--requires", "python3-koji-kabi"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert {"python3-koji", "python3-rpm", "python3-pyyaml", "python3-requests"} <= \
        set(requires)
    assert "koji" not in requires and "rpm" not in requires  # never PyPI's names
