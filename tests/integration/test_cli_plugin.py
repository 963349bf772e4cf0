"""The koji CLI plugin on the real hub WITHOUT the koji-kabi hub plugin (any Koji).

The real ``koji`` command of ../shared/koji, with the installed CLI plugin on the profile's
``plugin_paths``, against the real hub: the read-only commands (``kabi-check``,
``kabi-delta``) use only Koji's standard calls; ``kabi-rebuild`` says in one line that the
hub lacks the plugin.  The outputs are kept to compare with a hub that has the plugin
(tests/integration/test_cli_with_plugin.py).
"""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.integration.conftest import CLI_MANY, CliWorld
from tests.integration.kit import note
from tests.integration.realkoji import Result
from tests.integration.worlds import ARM, X86
from tests.support.results import valid

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("plain")]
ARCHES = (X86, ARM)


def ok(res: Result, code: int) -> Result:
    """Exit status ``code``, and never a traceback."""
    assert res.returncode == code, res
    assert "Traceback" not in res.stderr, res
    return res


def one_line_error(res: Result, *words: str) -> str:
    ok(res, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res
    for word in words:
        assert word in lines[0], res
    return lines[0]


def verdict_line(out: str, kmod_rpm: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(kmod_rpm + " on ")]
    return line


def symbol_rows(out: str) -> dict[str, list[str]]:
    """{symbol: [required, provided, stable]} from the verdict tables."""
    rows = {}
    for ln in out.splitlines():
        cells = ln.split()
        if ln.startswith("  ") and len(cells) == 4 and cells[0] != "symbol":
            rows[cells[0]] = cells[1:]
    return rows


def hexcrc(value: int | None) -> str:
    return "missing" if value is None else f"0x{value:08x}"


def read_only(w: CliWorld) -> list[tuple[str, ...]]:
    """Commands whose output must not depend on the hub plugin."""
    n, t = w.nvr, w.tags
    return [("kabi-check", n["OK"], "--kernel", n["K2"]),
            ("kabi-check", n["CRC"], "--tag", t["kernel"], "--json"),
            ("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag", t["kmods"]),
            ("kabi-delta", n["K1"], n["K2"], "--summary"),
            ("kabi-check", "kmod-nope-1-1", "--kernel", n["K2"])]


def test_help_lists_the_commands(cli_world: CliWorld) -> None:
    res = ok(cli_world.koji("help"), 0)
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.startswith("        ")}
    assert "kABI against a kernel" in lines["kabi-check"]
    assert "kABI symbol delta" in lines["kabi-delta"]
    assert "rebuild the kmods it breaks" in lines["kabi-rebuild"]
    res = ok(cli_world.koji("kabi-check", "--help"), 0)
    assert "--kernel=NVR" in res.stdout and "--kmod-tag=TAG" in res.stdout


def test_kmod_compatible(cli_world: CliWorld) -> None:
    n = cli_world.nvr
    res = ok(cli_world.koji("kabi-check", n["OK"], "--kernel", n["K2"]), 0)
    for arch in ARCHES:
        assert verdict_line(res.stdout, f"{n['OK']}.{arch}") == (
            f"{n['OK']}.{arch} on {n['K2']} ({arch}): compatible (20 symbols)")
    assert res.stdout.rstrip().endswith("2 compatible, 0 incompatible")


def test_kmod_incompatible_names_symbols_and_crcs_per_arch(cli_world: CliWorld) -> None:
    n, s = cli_world.nvr, cli_world.series
    k1, k2 = s.tables["K1"][X86], s.tables["K2"][X86]
    res = ok(cli_world.koji("kabi-check", n["CRC"], "--kernel", n["K2"]), 1)
    assert verdict_line(res.stdout, f"{n['CRC']}.{X86}").endswith(
        "INCOMPATIBLE - 0 missing, 2 CRC mismatch of 12 symbols")
    assert verdict_line(res.stdout, f"{n['CRC']}.{ARM}").endswith("compatible (10 symbols)")
    changed = s.changed[X86][:2]
    assert symbol_rows(res.stdout) == {c: [hexcrc(k1[c]), hexcrc(k2[c]), "-"] for c in changed}
    assert ["symbol", "required", "provided", "stable"] in [
        ln.split() for ln in res.stdout.splitlines()]
    assert res.stdout.rstrip().endswith("1 compatible, 1 incompatible")

    removed = s.removed[X86][0]
    res = ok(cli_world.koji("kabi-check", n["GONE"], "--kernel", n["K2"]), 1)
    assert "INCOMPATIBLE - 1 missing, 0 CRC mismatch of 6 symbols" in res.stdout
    assert symbol_rows(res.stdout) == {removed: [hexcrc(k1[removed]), "missing", "-"]}
    # against the kernel it was built for, everything loads
    ok(cli_world.koji("kabi-check", n["CRC"], "--kernel", n["K1"]), 0)


def test_kmod_against_the_latest_kernel_of_a_tag(cli_world: CliWorld) -> None:
    n = cli_world.nvr
    res = ok(cli_world.koji("kabi-check", n["CRC"], "--tag", cli_world.tags["kernel"]), 1)
    assert f"on {n['K2']} (x86_64): INCOMPATIBLE" in res.stdout  # K2 is the latest there


def test_kmod_json_and_arch(cli_world: CliWorld) -> None:
    n, s = cli_world.nvr, cli_world.series
    res = ok(cli_world.koji("kabi-check", n["CRC"], "--kernel", n["K2"], "--json"), 1)
    verdicts = valid(res.stdout, "kmod-check")["verdicts"]
    assert sorted((v["key"], v["compatible"]) for v in verdicts) == [(ARM, True), (X86, False)]
    x86 = next(v for v in verdicts if v["key"] == X86)
    assert x86["rpm"] == f"{n['CRC']}.{X86}" and x86["kernel"] == n["K2"]
    assert x86["missing"] == []
    assert {p["symbol"]: (p["required"], p["provided"]) for p in x86["mismatched"]} == {
        c: (hexcrc(s.tables["K1"][X86][c]), hexcrc(s.tables["K2"][X86][c]))
        for c in s.changed[X86][:2]}
    res = ok(cli_world.koji("kabi-check", n["CRC"], "--kernel", n["K2"], "--arch", ARM), 0)
    assert "x86_64" not in res.stdout and "(aarch64): compatible" in res.stdout
    res = ok(cli_world.koji("kabi-check", n["CRC"], "--kernel", n["K2"], "--arch", X86,
                            "--json"), 1)
    assert [v["key"] for v in valid(res.stdout, "kmod-check")["verdicts"]] == [X86]
    one_line_error(cli_world.koji("kabi-check", n["GONE"], "--kernel", n["K2"], "--arch", ARM),
                   n["GONE"], "no kmod package with kernel(symbol) = CRC requires for aarch64")


def test_kernel_against_old_kernel_lists_broken_kmods(cli_world: CliWorld) -> None:
    n, s, t = cli_world.nvr, cli_world.series, cli_world.tags
    res = ok(cli_world.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag",
                            t["kmods"]), 1)
    out = res.stdout
    assert out.startswith(f"kABI delta {n['K1']} -> {n['K2']}")
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("x86_64 "))
    assert row[1:6] == [str(len(s.tables["K1"][X86])), str(len(s.tables["K2"][X86])),
                        str(len(s.added[X86])), str(len(s.removed[X86])),
                        str(len(s.changed[X86]))]
    assert "breaking: yes" in out
    assert f"kmods in {t['kmods']} broken by {n['K2']}:" in out
    broken = {ln.split(" on ")[0] for ln in out.splitlines() if "INCOMPATIBLE" in ln}
    assert broken == {f"{n['CRC']}.{X86}", f"{n['GONE']}.{X86}"}
    # only the broken ones are shown; the count is of every kmod package in the tag
    assert out.rstrip().endswith("3 compatible, 2 incompatible")
    assert n["OK"] not in out
    assert set(symbol_rows(out)) == {*s.changed[X86][:2], s.removed[X86][0]}


def test_kernel_that_breaks_nothing_exits_0(cli_world: CliWorld) -> None:
    n, t = cli_world.nvr, cli_world.tags
    res = ok(cli_world.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag",
                            t["ok"]), 0)
    assert f"all 2 kmod packages in {t['ok']} are compatible with {n['K2']}" in res.stdout
    assert "breaking: yes" in res.stdout  # the delta itself breaks things, just not these


def test_kernel_json(cli_world: CliWorld) -> None:
    n, t = cli_world.nvr, cli_world.tags
    res = ok(cli_world.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag",
                            t["kmods"], "--json"), 1)
    data = valid(res.stdout, "kernel-check")
    assert (data["kernel"], data["previous"], data["kmod_tags"]) == (n["K2"], n["K1"],
                                                                     [t["kmods"]])
    assert {d["key"] for d in data["delta"]["deltas"]} == set(ARCHES)
    assert sorted((v["rpm"], v["compatible"]) for v in data["verdicts"]) == sorted([
        (f"{n['CRC']}.{ARM}", True), (f"{n['CRC']}.{X86}", False),
        (f"{n['GONE']}.{X86}", False), (f"{n['OK']}.{ARM}", True), (f"{n['OK']}.{X86}", True)])


def test_rules_file_pairs_kmod_tags_and_kernel_tags(cli_world: CliWorld) -> None:
    w, n, t = cli_world, cli_world.nvr, cli_world.tags
    # a kmod: the kernel tag is the one the rules pair with a tag the kmod is in
    res = ok(w.koji("kabi-check", n["CRC"], "--rules", str(w.rules)), 1)
    assert f"on {n['K2']} (x86_64): INCOMPATIBLE" in res.stdout
    # a kernel: kmod tags (and the previous kernel) come from the rules
    res = ok(w.koji("kabi-check", n["K2"], KOJI_KABI_RULES=str(w.rules)), 1)
    assert res.stdout.startswith(f"kABI delta {n['K1']} -> {n['K2']}")
    assert f"kmods in {t['kmods']} broken by {n['K2']}:" in res.stdout
    # the default place: ~/.config/koji-kabi/rules.yaml
    home = w.home.parent / "home-with-rules"
    (home / ".config" / "koji-kabi").mkdir(parents=True, exist_ok=True)
    shutil.copy(w.rules, home / ".config" / "koji-kabi" / "rules.yaml")
    res = ok(w.koji("kabi-check", n["CRC"], HOME=str(home)), 1)
    assert f"on {n['K2']} (x86_64): INCOMPATIBLE" in res.stdout
    # without rules nothing says which kernel a kmod goes with
    one_line_error(w.koji("kabi-check", n["CRC"]), n["CRC"], "--kernel", "--tag")
    res = ok(w.koji("kabi-check", n["K2"]), 0)
    assert "no previous kernel to compare with" in res.stdout
    assert "no kmod tags (use --kmod-tag or a rules file)" in res.stdout
    # --tag names the kernel tag: the previous kernel is the one before K2 there
    res = ok(w.koji("kabi-check", n["K2"], "--tag", t["kernel"]), 0)
    assert res.stdout.startswith(f"kABI delta {n['K1']} -> {n['K2']}")


def test_bad_rules_file_is_one_line(cli_world: CliWorld) -> None:
    w = cli_world
    bad = w.home.parent / "bad-rules.yaml"
    bad.write_text("watch: [{kernel_tag: el9-kernel}]\n")
    one_line_error(w.koji("kabi-check", w.nvr["CRC"], "--rules", str(bad)), str(bad),
                   "kmod_tags")
    missing = str(w.home.parent / "missing.yaml")
    one_line_error(w.koji("kabi-check", w.nvr["CRC"], KOJI_KABI_RULES=missing), missing)


def test_unknown_build_is_one_clear_line(cli_world: CliWorld) -> None:
    w, n = cli_world, cli_world.nvr
    line = one_line_error(w.koji("kabi-check", "kmod-nope-1.0-1.el9", "--kernel", n["K2"]),
                          "kmod-nope-1.0-1.el9", "no such build")
    assert line == "koji: kmod-nope-1.0-1.el9: no such build"
    one_line_error(w.koji("kabi-check", n["OK"], "--kernel", "kernel-9-9"), "kernel-9-9",
                   "no such build")
    one_line_error(w.koji("kabi-delta", n["K1"], "kernel-9-9"), "kernel-9-9", "no such build")
    # not even an NVR: the hub's own fault, still one line and exit 2 (1 means incompatible)
    one_line_error(w.koji("kabi-check", "nonsense", "--kernel", n["K2"]), "nonsense")
    one_line_error(w.koji("kabi-check", n["OK"], "--tag", "no-such-tag"), "no-such-tag")


def test_not_a_kmod_nor_a_kernel(cli_world: CliWorld) -> None:
    w, n = cli_world, cli_world.nvr
    one_line_error(w.koji("kabi-check", n["PLAIN"], "--kernel", n["K2"]), n["PLAIN"],
                   "not a kmod build")
    one_line_error(w.koji("kabi-check", n["PLAIN"]), n["PLAIN"], "not a kmod build")
    one_line_error(w.koji("kabi-check", n["OK"], "--kernel", n["PLAIN"]), n["PLAIN"],
                   "not a kernel build")
    one_line_error(w.koji("kabi-delta", n["K1"], n["OK"]), n["OK"], "not a kernel build")


def test_usage_errors_exit_2(cli_world: CliWorld) -> None:
    w, n = cli_world, cli_world.nvr
    res = ok(w.koji("kabi-check"), 2)
    assert "give exactly one build" in res.stderr and "Usage: koji kabi-check" in res.stderr
    ok(w.koji("kabi-delta", n["K1"]), 2)
    # options of the other kind of build are an error, not silently ignored
    one_line_error(w.koji("kabi-check", n["OK"], "--kernel", n["K2"], "--against", n["K1"]),
                   n["OK"], "--against and --kmod-tag are for kernel builds")
    one_line_error(w.koji("kabi-check", n["K2"], "--kernel", n["K1"]), n["K2"],
                   "--kernel is for kmod builds")


def test_delta(cli_world: CliWorld) -> None:
    w, n, s = cli_world, cli_world.nvr, cli_world.series
    res = ok(w.koji("kabi-delta", n["K1"], n["K2"]), 1)
    out = res.stdout
    assert out.startswith(f"kABI delta {n['K1']} -> {n['K2']}") and "breaking: yes" in out
    for arch in ARCHES:
        assert f"{arch}: CRC changed ({len(s.changed[arch])})" in out
        assert f"{arch}: removed ({len(s.removed[arch])})" in out
        assert f"{arch}: added ({len(s.added[arch])})" in out
    sym = s.changed[X86][0]
    old, new = s.tables["K1"][X86][sym], s.tables["K2"][X86][sym]
    # the symbol may have changed on the other arch too (with other CRCs or the same)
    rows = [ln.split() for ln in out.splitlines() if ln.split()[:1] == [sym]]
    assert [sym, hexcrc(old), hexcrc(new), "-"] in rows, rows
    res = ok(w.koji("kabi-delta", n["K1"], n["K2"], "--summary"), 1)
    assert "CRC changed" not in res.stdout and "breaking: yes" in res.stdout
    assert len(res.stdout.splitlines()) < 8
    res = ok(w.koji("kabi-delta", n["K1"], n["K2"], "--json", "--arch", X86), 1)
    data = valid(res.stdout, "delta")
    (d,) = data["deltas"]
    assert d["key"] == X86 and data["breaking"] is True
    assert {c["symbol"] for c in d["changed"]} == set(s.changed[X86])
    assert {c["symbol"] for c in d["removed"]} == set(s.removed[X86])
    res = ok(w.koji("kabi-delta", n["K1"], n["K1"]), 0)
    assert "breaking: no" in res.stdout


def test_read_only_outputs_without_the_hub_plugin(cli_world: CliWorld) -> None:
    """Recorded here, compared on the hub with the plugin (test_cli_with_plugin.py)."""
    for args in read_only(cli_world):
        res = cli_world.koji(*args)
        cli_world.expected[args] = (res.returncode, res.stdout, res.stderr)
    assert [v[0] for v in cli_world.expected.values()] == [0, 1, 1, 1, 2]


def test_round_trips_do_not_grow_with_kmods_and_arches(cli_world: CliWorld) -> None:
    w, n = cli_world, cli_world.nvr
    rk = w.kit.rk

    def trips(tag: str) -> tuple[int, int]:
        mark = rk.log_mark()
        res = ok(w.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag", tag), 0)
        calls = [m for m, user in rk.requests_since(mark) if user == "None"]  # not kojid's
        return len(calls), int(res.stdout.split("all ")[1].split()[0])

    few, n_few = trips(w.tags["few"])
    many, n_many = trips(w.tags["many"])
    assert (n_few, n_many) == (4 * 2, CLI_MANY * 2)
    note(f"koji kabi-check of a kernel vs {n_few} / {n_many} kmod packages: {few} / {many} "
         "XML-RPC round trips")
    assert many == few <= 12, (few, many)


def test_rebuild_needs_the_hub_plugin(cli_world: CliWorld) -> None:
    line = one_line_error(cli_world.koji("kabi-rebuild", cli_world.nvr["K2"], "--nowait",
                                         user="alice"), "no koji-kabi hub plugin")
    assert line == "koji: this hub has no koji-kabi hub plugin (kabi.rebuild is unknown)"


def test_unreachable_hub_is_exit_2(cli_world: CliWorld) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = cli_world.home.parent / "dead.conf"
    conf.write_text(f"[dead]\nserver = http://127.0.0.1:{port}/kojihub\nmax_retries = 0\n"
                    f"plugin_paths = {cli_world.kit.rk.cli_plugin_dir}\n")
    n = cli_world.nvr
    for args in (("kabi-check", n["OK"], "--kernel", n["K2"]), ("kabi-delta", n["K1"], n["K2"])):
        res = ok(cli_world.koji("-c", str(conf), "-p", "dead", *args), 2)
        assert res.stderr.strip() == "Error: Unable to connect to server"


def test_build_ids_and_force_auth(cli_world: CliWorld) -> None:
    w, n = cli_world, cli_world.nvr
    ids = {k: w.kit.admin.getBuild(n[k])["id"] for k in ("K1", "K2", "CRC")}
    res = ok(w.koji("kabi-check", str(ids["CRC"]), "--kernel", str(ids["K2"])), 1)
    assert f"{n['CRC']}.{X86} on {n['K2']} (x86_64): INCOMPATIBLE" in res.stdout
    ok(w.koji("kabi-delta", str(ids["K1"]), str(ids["K2"]), "--summary"), 1)
    one_line_error(w.koji("kabi-check", "999999", "--kernel", n["K2"]), "999999: no such build")
    # --force-auth logs in even for read-only commands, as with Koji's own
    rk = w.kit.rk
    mark = rk.log_mark()
    ok(w.koji("--force-auth", "kabi-check", n["OK"], "--kernel", n["K2"], user="bob"), 0)
    assert ("getBuild", "bob") in rk.requests_since(mark)


def test_quiet_prints_rows_only(cli_world: CliWorld) -> None:
    """--quiet as koji's own commands have it: no headers, titles or counts, the rows."""
    n, t = cli_world.nvr, cli_world.tags
    res = ok(cli_world.koji("kabi-check", n["CRC"], "--kernel", n["K2"], "--quiet"), 1)
    lines = res.stdout.splitlines()
    assert ["symbol", "required", "provided", "stable"] not in [ln.split() for ln in lines]
    assert "incompatible" not in lines[-1] and len(symbol_rows(res.stdout)) == 2
    assert verdict_line(res.stdout, f"{n['CRC']}.{X86}").endswith(
        "INCOMPATIBLE - 0 missing, 2 CRC mismatch of 12 symbols")
    res = ok(cli_world.koji("kabi-delta", n["K1"], n["K2"], "--summary", "--quiet"), 1)
    assert sorted(ln.split()[0] for ln in res.stdout.splitlines()) == sorted(ARCHES)
    res = ok(cli_world.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag",
                            t["kmods"], "--quiet"), 1)
    assert "kABI delta" not in res.stdout and "broken by" not in res.stdout
    assert {ln.split(" on ")[0] for ln in res.stdout.splitlines() if " on " in ln} == {
        f"{n['CRC']}.{X86}", f"{n['GONE']}.{X86}"}
    assert res.stderr == ""


def test_event_checks_the_tags_as_they_were(cli_world: CliWorld) -> None:
    """--event / --ts as koji list-tagged has them: the kmod builds tagged then."""
    w, n, t = cli_world, cli_world.nvr, cli_world.tags
    history = w.kit.admin.queryHistory(tables=["tag_listing"], tag=t["kmods"])["tag_listing"]
    last = max(h["create_event"] for h in history)
    event = last - 1

    def tagged_at(e: int) -> set[str]:
        return {f"{h['name']}-{h['version']}-{h['release']}" for h in history
                if h["create_event"] <= e and (h["revoke_event"] is None
                                               or h["revoke_event"] > e)}

    assert tagged_at(event) < tagged_at(last)
    res = w.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag", t["kmods"],
                 "--json", "--event", str(event))
    assert "Traceback" not in res.stderr, res
    assert f"Querying at event {event} (" in res.stderr, res
    then = valid(res.stdout, "kernel-check")
    assert {v["nvr"] for v in then["verdicts"]} == tagged_at(event) - {n["PLAIN"]}
    assert res.returncode == (0 if then["compatible"] else 1)
    later = w.kit.admin.getEvent(last)["ts"] + 3600
    res = ok(w.koji("kabi-check", n["K2"], "--against", n["K1"], "--kmod-tag", t["kmods"],
                    "--json", "--ts", str(int(later))), 1)
    assert {v["nvr"] for v in valid(res.stdout)["verdicts"]} == tagged_at(last)
    one_line_error(w.koji("kabi-check", n["K2"], "--event", "999999999"),
                   "--event 999999999: no such event")
