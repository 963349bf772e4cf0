"""The ``kabi.*`` hub calls on the real hub, with their permission checks, and the CLI's
``kabi-rebuild`` against a hub that has the plugin.

Read-only calls (``check``, ``delta``, ``affected``) answer anyone; ``rebuild`` needs the
``kabi`` permission or admin; ``claimRebuilds`` only the host running the kabiCheck task.
"""

from __future__ import annotations

import time

import koji
import pytest
import yaml

from koji_kabi.koji.rules import parse_rules, rules_data
from tests.integration.conftest import RULES_INTERVAL, CliWorld, MainWorld, rules_text
from tests.integration.kit import FAILED, note
from tests.integration.test_cli_plugin import ok, one_line_error, read_only
from tests.integration.worlds import ARM, X86
from tests.support.results import valid

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]


def test_check_a_kmod_against_a_kernel_or_a_tag(main_world: MainWorld) -> None:
    w, s = main_world, main_world.series
    anon = w.kit.anon
    ok_ = anon.kabi.check(s.kmod_nvr["kmod-ok"], kernel=s.kernel_nvr["K2"])
    assert ok_["compatible"] is True and {v["key"] for v in ok_["verdicts"]} == {X86, ARM}
    bad = anon.kabi.check(s.kmod_nvr["kmod-crc"], tag=w.names["kmods"])
    latest = anon.getLatestBuilds(w.names["kernel"], package="kernel")[0]["nvr"]
    assert bad["kernel"] == latest and bad["compatible"] is False
    x86 = next(v for v in bad["verdicts"] if v["key"] == X86)
    assert {m["symbol"] for m in x86["mismatched"]} == set(s.changed[X86][:2])
    arm = next(v for v in bad["verdicts"] if v["key"] == ARM)
    assert arm["compatible"] is True
    old = anon.kabi.check(s.kmod_nvr["kmod-crc"], kernel=s.kernel_nvr["K1"])
    assert old["compatible"] is True


def test_check_delta_affected_of_kernels(main_world: MainWorld) -> None:
    w, s = main_world, main_world.series
    anon = w.kit.anon
    kernel = anon.kabi.check(s.kernel_nvr["K2"])
    assert valid(kernel, "kernel-check")["previous"] == s.kernel_nvr["K1"]
    assert {v["nvr"] for v in kernel["verdicts"] if not v["compatible"]} == {
        s.kmod_nvr[k] for k in ("kmod-crc", "kmod-gone", "kmod-optout", "kmod-nosrc",
                                "kmod-nvidia")}
    d = anon.kabi.delta(s.kernel_nvr["K1"], s.kernel_nvr["K2"], arches=[X86])
    (row,) = valid(d, "delta")["deltas"]
    assert row["key"] == X86 and row["breaking"] is True
    assert {c["symbol"] for c in row["changed"]} == set(s.changed[X86])
    affected = anon.kabi.affected(s.kernel_nvr["K2"], against=s.kernel_nvr["K1"])
    assert {v["nvr"] for v in affected["verdicts"] if not v["compatible"]} == {
        v["nvr"] for v in kernel["verdicts"] if not v["compatible"]}
    assert {r["key"] for r in valid(affected, "kernel-check")["delta"]["deltas"]} == {X86, ARM}


def test_the_cli_and_the_hub_give_the_same_answer(main_world: MainWorld) -> None:
    """``koji kabi-check --json`` (the CLI plugin's own reads over standard calls and the
    files URL) and ``kabi.check`` (the hub, from its database and storage) answer the
    same question with the same document: a kernel (its delta, its kmods' verdicts with
    its own stablelist, its rebuilds) and a kmod against a tag's kernel."""
    w, s = main_world, main_world.series
    questions = [((s.kernel_nvr["K2"],), {}),
                 ((s.kmod_nvr["kmod-crc"], "--tag", w.names["kmods"]),
                  {"tag": w.names["kmods"]})]
    for args, kwargs in questions:
        for _attempt in range(3):  # a rebuild's state may move between the two reads
            before = w.kit.anon.kabi.check(args[0], **kwargs)
            res = w.kit.rk.koji("kabi-check", *args, "--json", user=None)
            if before == w.kit.anon.kabi.check(args[0], **kwargs):
                break
        assert res.returncode == (0 if before["compatible"] else 1), res
        assert valid(res.stdout) == before, args
        note(f"koji kabi-check {' '.join(args)} --json == kabi.check: kind {before['kind']}, "
             f"{len(before['verdicts'])} verdicts, stablelist {before.get('stablelist')}, "
             f"{len(before.get('rebuilds', ()))} rebuilds")


def test_call_errors_are_clear_faults(main_world: MainWorld) -> None:
    anon = main_world.kit.anon
    with pytest.raises(koji.GenericError, match="kmod-nope-1-1: no such build"):
        anon.kabi.check("kmod-nope-1-1")
    with pytest.raises(koji.GenericError, match="give kernel= or tag="):
        anon.kabi.check(main_world.series.kmod_nvr["kmod-ok"])


def test_rebuild_needs_the_kabi_permission(main_world: MainWorld) -> None:
    w = main_world
    k2 = w.builds["K2"]
    with pytest.raises(koji.GenericError):  # anonymous: not logged in
        w.kit.anon.kabi.rebuild(k2["nvr"])
    bob = w.kit.rk.session("bob")
    with pytest.raises(koji.ActionNotAllowed, match="needs the kabi permission"):
        bob.kabi.rebuild(k2["nvr"])
    alice = w.kit.rk.session("alice")
    task_id = alice.kabi.rebuild(k2["nvr"], dry_run=True)
    info = w.kit.admin.getTaskInfo(task_id, request=True)
    assert info["method"] == "kabiCheck" and list(info["request"]) == [k2["id"],
                                                                       {"dry_run": True}]
    assert info["owner"] == w.kit.admin.getUser("alice")["id"]
    assert w.kit.admin.getChannel(info["channel_id"])["name"] == "kabi"
    assert w.kit.wait(task_id)["state"] == 2
    admin_task = w.kit.admin.kabi.rebuild(k2["nvr"], dry_run=True)  # admin may
    assert w.kit.wait(admin_task)["state"] == 2
    with pytest.raises(koji.GenericError, match="not a kernel build"):
        alice.kabi.rebuild(w.series.kmod_nvr["kmod-ok"])


def _other_host(w: MainWorld):
    """An exclusive session of a second host, builder2 (no kojid runs as it)."""
    if not w.kit.admin.getHost("builder2"):
        w.kit.admin.addHost("builder2", ["x86_64"])
    session = w.kit.rk.session("builder2")
    session.exclusiveSession(force=True)
    return session


def test_submitting_rebuilds_is_for_the_host_running_the_check(main_world: MainWorld) -> None:
    w = main_world
    task = w.landing("K2")
    rebuild = [{"key": "0" * 64, "package": "kmod-x", "fingerprint": "f", "nvr": "kmod-x-1-1",
                "kernel": "k", "label": "kabi-x", "arglist": ["git+https://x#1", "t", {}],
                "channel": "default", "priority": 20}]
    with pytest.raises(koji.AuthError, match="is not a host"):
        w.kit.rk.session("alice").kabi.submitRebuilds(task["id"], rebuild, 10)
    other = _other_host(w)
    with pytest.raises(koji.ActionNotAllowed, match=f"does not own task {task['id']}"):
        other.kabi.submitRebuilds(task["id"], rebuild, 10)
    with pytest.raises(koji.ParameterError, match="rebuilds must be a list of rebuilds"):
        other.kabi.submitRebuilds(task["id"], "all of them")
    with pytest.raises(koji.ParameterError, match="rebuild key must be a sha256 hex digest"):
        other.kabi.submitRebuilds(task["id"], [dict(rebuild[0], key="x; drop table")], 10)
    assert w.kit.rebuilds(task["id"]) and not [
        c for c in w.kit.rebuilds(task["id"]) if c["label"] == "kabi-x"]


def test_cli_read_only_answers_are_the_same_with_the_hub_plugin(cli_world: CliWorld) -> None:
    if not cli_world.expected:
        pytest.skip("the hub without the plugin was not tested in this run")
    rk = cli_world.kit.rk
    mark = rk.log_mark()
    for args in read_only(cli_world):
        res = cli_world.koji(*args)
        assert (res.returncode, res.stdout, res.stderr) == cli_world.expected[args], res
    # the checks are the CLI's own (standard calls); the hub plugin only lent its rules
    # and its record of rebuilds (none for these kernels)
    assert {m for m, _u in rk.requests_since(mark) if m.startswith("kabi.")} <= {
        "kabi.rules", "kabi.rebuilds"}


def test_cli_rebuild_creates_a_check(main_world: MainWorld, cli_world: CliWorld) -> None:
    w = main_world
    k1, k2 = w.builds["K1"], w.builds["K2"]
    res = ok(cli_world.koji("kabi-rebuild", k2["nvr"], "--nowait", "--dry-run", user="alice"),
             0)
    lines = res.stdout.splitlines()
    task_id = int(lines[0].split(": ")[1])
    assert lines[0] == f"Created task: {task_id}"
    assert lines[1].startswith("Task info: ") and lines[1].endswith(f"taskID={task_id}")
    info = w.kit.admin.getTaskInfo(task_id, request=True)
    assert list(info["request"]) == [k2["id"], {"dry_run": True}]
    res = ok(cli_world.koji("kabi-rebuild", k2["nvr"], "--nowait", "--quiet", "--against",
                            k1["nvr"], "--dry-run", user="alice"), 0)
    assert res.stdout == ""
    mine = [t for t in w.kit.kabi_tasks(k2["id"]) if t["id"] > task_id]
    assert [t["request"][1] for t in mine] == [{"dry_run": True, "against": k1["id"]}]
    for t in (task_id, mine[0]["id"]):
        assert w.kit.wait(t)["state"] == 2


def test_cli_rebuild_refusals_are_one_line(main_world: MainWorld, cli_world: CliWorld) -> None:
    w = main_world
    before = len(w.kit.kabi_tasks(w.builds["K2"]["id"]))
    line = one_line_error(cli_world.koji("kabi-rebuild", w.builds["K2"]["nvr"], "--nowait",
                                         user="bob"), "needs the kabi permission")
    assert line == "koji: kabi.rebuild needs the kabi permission"
    one_line_error(cli_world.koji("kabi-rebuild", w.series.kmod_nvr["kmod-ok"], "--nowait",
                                  user="alice"), w.series.kmod_nvr["kmod-ok"],
                   "not a kernel build")
    one_line_error(cli_world.koji("kabi-rebuild", "kernel-9-9", "--nowait", user="alice"),
                   "kernel-9-9")
    assert len(w.kit.kabi_tasks(w.builds["K2"]["id"])) == before


def test_cli_rebuild_waits_for_the_check_and_prints_its_report(main_world: MainWorld,
                                                              cli_world: CliWorld) -> None:
    w, s = main_world, main_world.series
    res = ok(cli_world.koji("kabi-rebuild", "--dry-run", s.kernel_nvr["K2"], "--wait",
                            user="alice"), 1)  # 1: the check found incompatible kmods
    assert res.stdout.startswith("Created task: ")
    assert f"kABI check of {s.kernel_nvr['K2']} (tag {w.names['kernel']})" in res.stdout
    assert f"previous kernel: {s.kernel_nvr['K1']}" in res.stdout
    assert "dry run: yes" in res.stdout
    assert "Kmod builds: 6 in the tags, 1 compatible, 5 incompatible" in res.stdout


def test_cli_rebuild_of_a_failing_check_exits_2(main_world: MainWorld,
                                                cli_world: CliWorld) -> None:
    """A check the builder cannot do (the tag given is not a watched kernel tag) fails the
    task; the command says why in one line and exits 2 (an error, not a verdict)."""
    w = main_world
    res = cli_world.koji("kabi-rebuild", "--dry-run", "--wait", "--tag", w.names["kmods"],
                         w.builds["K2"]["nvr"], user="alice")
    assert res.returncode == 2, res
    assert "Traceback" not in res.stderr
    assert f"{w.names['kmods']}: not a watched kernel tag in the rules" in res.stderr
    task_id = int(res.stdout.split("Created task:")[1].split()[0])
    assert w.kit.admin.getTaskInfo(task_id)["state"] == FAILED


def test_wrong_arguments_are_sentences_not_python(main_world: MainWorld) -> None:
    anon = main_world.kit.anon
    with pytest.raises(koji.ParameterError, match=r"build must be a build ID or an N-V-R, "
                                                   r"not \['x'\]"):
        anon.kabi.check(["x"])
    with pytest.raises(koji.ParameterError, match="arches must be an arch or a list"):
        anon.kabi.delta(main_world.builds["K1"]["nvr"], main_world.builds["K2"]["nvr"],
                        arches=7)
    with pytest.raises(koji.GenericError, match="kit-nope: not a watched kernel tag"):
        anon.kabi.check(main_world.builds["K2"]["nvr"], tag="kit-nope")
    with pytest.raises(koji.ParameterError, match="tags must be a tag name or a list"):
        anon.kabi.affected(main_world.builds["K2"]["nvr"], tags={"a": 1})


def test_the_rules_come_from_the_hub(main_world: MainWorld, cli_world: CliWorld) -> None:
    """Builders and clients read the hub's rules (kabi.rules); an edit of the hub's file
    is in force without a restart; a broken edit keeps the last good rules, and says so."""
    w = main_world
    rk = w.kit.rk
    answer = w.kit.anon.kabi.rules()
    assert answer["source"] == str(rk.rules_path) and answer["problem"] is None
    assert answer["rules"] == rules_data(parse_rules(yaml.safe_load(rules_text()), "x"))
    try:
        rk.rules_path.write_text(rules_text(priority=44))
        time.sleep(RULES_INTERVAL)
        assert w.kit.anon.kabi.rules()["rules"]["rebuild"]["priority"] == 44
        rk.rules_path.write_text("watch: [\n")
        time.sleep(RULES_INTERVAL)
        broken = w.kit.anon.kabi.rules()
        # the last good rules each hub process had (it may not have seen the 44 yet)
        assert broken["rules"]["rebuild"]["priority"] in (33, 44)
        assert broken["problem"].startswith(f"{rk.rules_path}:") and "YAML" in broken["problem"]
    finally:
        rk.rules_path.write_text(rules_text())
        time.sleep(RULES_INTERVAL)
    assert w.kit.anon.kabi.rules()["problem"] is None
    # the CLI: no --rules, no file of its own: the hub's rules pair the kmod's tag with
    # the main kernel tag (on a hub without the plugin this asks for --kernel or --tag)
    res = cli_world.koji("kabi-check", w.series.kmod_nvr["kmod-crc"])
    assert res.returncode == 1, res
    kernel = w.kit.anon.getLatestBuilds(w.names["kernel"], package="kernel")[0]["nvr"]
    assert f"on {kernel} (x86_64): INCOMPATIBLE" in res.stdout
