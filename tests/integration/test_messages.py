"""Messages on a real broker: what koji-kabi publishes through Koji's protonmsg plugin.

The hub loads Koji's own ``protonmsg`` (from the Koji source it runs) next to koji-kabi,
configured for a private RabbitMQ node with its AMQP 1.0 plugin (tests/integration/
broker.py); a consumer in a process of its own receives ``/topic/koji.kabi.#``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from koji_kabi.koji import messages
from tests.integration.broker import Listener, listening
from tests.integration.conftest import STAMP, MainWorld, builder_settings, fault_scenario
from tests.integration.kit import CLOSED, FAILED, Kit, note
from tests.integration.realkoji import RealKoji
from tests.integration.worlds import source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]


@pytest.fixture(scope="module")
def bus(realkoji: RealKoji, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    if realkoji.no_messages:
        pytest.skip(realkoji.no_messages)
    out = tmp_path_factory.mktemp("bus") / "messages.jsonl"
    with listening(realkoji.broker, "/topic/koji.kabi.#", out) as listener:
        yield listener


def _valid(body: dict) -> None:
    jsonschema.Draft202012Validator(messages.schema()).validate(body)


def _event(event: str, **fields: object):
    return lambda m: m["body"].get("event") == event and all(
        m["body"].get(k) == v for k, v in fields.items())


def _identity(m: dict) -> tuple:
    """What a consumer deduplicates on (README: at-least-once delivery)."""
    b = m["body"]
    return (b["event"], b["task_id"])


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(messages.schema())


def test_a_check_and_its_rebuilds_are_published_once_after_commit(
        koji_phase: Kit, rpm_dirs, bus: Listener) -> None:
    kit = koji_phase
    s, n = fault_scenario(kit, rpm_dirs, "msg", 101)
    k2 = kit.cg_build(s.kernels["K2"], source_for("kernel", STAMP))
    kit.tag_build(n["kernel"], k2["id"])
    (task,) = kit.wait_kabi(k2["id"])
    assert task["state"] == CLOSED, kit.admin.getTaskResult(task["id"], raise_fault=False)
    result = kit.admin.getTaskResult(task["id"])
    (closed,) = bus.wait_for(_event("check", task_id=task["id"]))
    body = closed["body"]
    _valid(body)
    assert (body["state"], body["kernel"], body["previous"]) == (
        "closed", s.kernel_nvr["K2"], s.kernel_nvr["K1"])
    assert {b["nvr"] for b in body["broken"]} == {s.kmod_nvr[k] for k in s.kmods}
    assert all(b["symbols"] == 1 for b in body["broken"])
    assert body["rebuilds"] == {"submitted": 2, "deferred": 0, "duplicate": 0}
    assert sorted(body["rebuild_task_ids"]) == sorted(result["rebuild_task_ids"])
    assert body["delta"] == result["delta"] and body["dry_run"] is False
    assert closed["props"]["kernel"] == s.kernel_nvr["K2"]
    assert closed["props"]["state"] == "closed" and closed["props"]["broken"] == 2
    rebuilt = bus.wait_for(_event("rebuild", check_task_id=task["id"]), count=2)
    for m in rebuilt:
        _valid(m["body"])
        assert m["body"]["kernel"] == s.kernel_nvr["K2"]
        child = kit.admin.getTaskInfo(m["body"]["task_id"], request=True)
        assert child["parent"] == task["id"] and child["method"] == "build"
        assert child["request"][0] == m["body"]["source"]
    assert {m["body"]["package"] for m in rebuilt} == set(s.kmods)
    time.sleep(3)  # anything queued twice would be here by now
    ours = [m for m in bus.messages() if m["body"].get("task_id") == task["id"]
            or m["body"].get("check_task_id") == task["id"]]
    # protonmsg delivers at least once: a send that ends in proton's error is repeated
    # from its database queue, identical; what this hub queued is one message per event
    assert len({_identity(m) for m in ours}) == 3
    assert len({json.dumps(m["body"], sort_keys=True) for m in ours}) == 3
    note("kabi.check.closed body: " + json.dumps(body, sort_keys=True))


def test_a_failed_check_is_published_with_its_error(main_world: MainWorld,
                                                    bus: Listener) -> None:
    w = main_world
    with builder_settings(w.kit.rk, rules="/nonexistent/rules.yaml"):
        task_id = w.kit.admin.kabi.rebuild(w.builds["K2"]["id"], dry_run=True)
        assert w.kit.wait(task_id)["state"] == FAILED
    (failed,) = bus.wait_for(_event("check", task_id=task_id))
    _valid(failed["body"])
    assert failed["body"]["state"] == "failed" and failed["props"]["state"] == "failed"
    assert failed["body"]["kernel"] == w.builds["K2"]["nvr"]
    assert failed["body"]["error"] == ("kabi builder plugin: /nonexistent/rules.yaml: "
                                       "No such file or directory")


def test_a_denied_tag_build_is_queued_by_protonmsg_and_sent_with_the_next_messages(
        main_world: MainWorld, bus: Listener, realkoji: RealKoji) -> None:
    """The denial rolls its request back; the message is kept in protonmsg's database
    queue and goes out when protonmsg next sends."""
    w = main_world
    nvr = w.series.kmod_nvr["kmod-crc"]
    refused = w.kit.rk.koji("tag-build", "--wait", w.names["gated"], nvr)
    assert refused.returncode != 0 and "policy violation (tag)" in refused.stderr, refused
    w.kit.listed(w.names["gated"], f"kmod-flush{STAMP}")  # a committed call with a message
    (denied,) = bus.wait_for(_event("tag-denied", build=nvr))
    _valid(denied["body"])
    kernel = w.kit.anon.getLatestBuilds(w.names["kernel"], package="kernel")[0]["nvr"]
    assert denied["body"]["tag"] == w.names["gated"] and denied["body"]["kernel"] == kernel
    assert denied["body"]["operation"] == "tag" and denied["body"]["user"] == "kojiadmin"
    assert "x86_64 0 missing, 2 CRC mismatches" in denied["body"]["reason"]
    left = realkoji.psql("-c", "SELECT count(*) FROM proton_queue WHERE address = "
                               "'kabi.tag.denied'")
    assert left.strip() == "0"  # sent, so protonmsg removed it
    time.sleep(2)
    assert len(bus.wait_for(_event("tag-denied", build=nvr))) == 1
    assert len([m for m in bus.messages() if _event("tag-denied", build=nvr)(m)]) == 1


def test_messages_reach_the_broker_through_koji_protonmsg(realkoji: RealKoji,
                                                          bus: Listener) -> None:
    """Not a copy of protonmsg: the hub loaded Koji's own plugin."""
    assert "protonmsg" in realkoji.env("full")["REALKOJI_HUB_PLUGINS"].split()
    assert Path(realkoji.env("full")["REALKOJI_HUB_PLUGIN_PATH"].split(":")[-1],
                "protonmsg.py").is_file()
