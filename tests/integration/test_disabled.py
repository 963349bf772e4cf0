"""A broken hub-plugin configuration on the real hub: the plugin disables itself, the hub
keeps serving.

The hub is started with a ``kabi.conf`` holding an unknown option.  Koji takes a whole
hub offline when a plugin raises at import; koji-kabi must instead log one line, let its
hook do nothing, answer its calls with that reason, and let its policy test return the
configured default so the hub's tag policy keeps working.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import STAMP, CliWorld
from tests.integration.kit import Kit
from tests.integration.test_cli_plugin import one_line_error, read_only
from tests.integration.worlds import X86, build_series, source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("disabled")]


@pytest.fixture(scope="module")
def problem(koji_phase: Kit) -> str:
    rk = koji_phase.rk
    return f"{rk.broken_hub_conf}: [kabi] chanel: unknown option"


def test_the_hub_keeps_serving_and_says_why_once(koji_phase: Kit, problem: str) -> None:
    kit = koji_phase
    mark = kit.rk.log_mark()
    assert kit.anon.getAPIVersion() == 1
    assert kit.admin.getLoggedInUser()["name"] == "kojiadmin"
    assert "kabi.check" in kit.anon.system.listMethods()  # loaded, registered, disabled
    lines = [ln.split("koji.plugin.kabi: ", 1)[1]
             for ln in kit.rk.log_since(kit.rk.up_mark).splitlines()
             if "kabi hub plugin disabled" in ln]
    # one line per hub process that loaded the plugin (the hub runs 2 WSGI daemons)
    assert lines and set(lines) == {f"kabi hub plugin disabled: {problem}"}, lines
    assert len(lines) <= 2
    assert "Traceback" not in kit.rk.log_since(mark)


def test_calls_answer_with_the_reason(koji_phase: Kit, cli_world: CliWorld,
                                      problem: str) -> None:
    import koji

    for call in (lambda: koji_phase.anon.kabi.check(cli_world.nvr["CRC"]),
                 lambda: koji_phase.anon.kabi.delta(cli_world.nvr["K1"], cli_world.nvr["K2"]),
                 lambda: koji_phase.admin.kabi.rebuild(cli_world.nvr["K2"])):
        with pytest.raises(koji.GenericError, match="kabi hub plugin is disabled") as err:
            call()
        assert problem in str(err.value)
    line = one_line_error(cli_world.koji("kabi-rebuild", cli_world.nvr["K2"], "--nowait",
                                         user="alice"), "kabi hub plugin is disabled")
    assert problem in line


def test_the_hook_does_nothing(koji_phase: Kit, rpm_dirs) -> None:
    """A kernel landing while the plugin is disabled gets no check (with the plugin, the
    CG import's own transaction would have made one)."""
    out, cache = rpm_dirs
    s = build_series(out, cache, STAMP, "dis", 51, (X86,), 60, {})
    build_id = koji_phase.cg_import(s.kernels["K1"], source_for("kernel", STAMP))["build_id"]
    assert koji_phase.admin.getBuild(build_id)["state"] == 1  # COMPLETE
    assert koji_phase.kabi_tasks(build_id) == []


def test_the_policy_test_returns_its_default(koji_phase: Kit, cli_world: CliWorld) -> None:
    """kmod-crc is incompatible with the latest kernel, but a disabled test cannot tell:
    ``policy_default`` (true) keeps the hub's tag policy working."""
    kit = koji_phase
    gated = f"kit-{STAMP}-dis-gated"
    kit.tag(gated)
    kit.listed(gated, "kmod-crc")
    res = kit.rk.koji("tag-build", "--wait", gated, cli_world.nvr["CRC"])
    assert res.returncode == 0, res
    assert cli_world.nvr["CRC"] in {b["nvr"] for b in kit.admin.listTagged(gated)}


def test_read_only_cli_commands_still_work(cli_world: CliWorld) -> None:
    for args in read_only(cli_world)[:2]:
        res = cli_world.koji(*args)
        expected = cli_world.expected.get(args)
        assert res.returncode in (0, 1), res
        if expected:
            assert (res.returncode, res.stdout, res.stderr) == expected
