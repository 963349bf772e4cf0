"""Message bodies: every builder's output is valid against message.schema.json, and the
schema refuses what a consumer could not rely on."""

from __future__ import annotations

import copy
from typing import Optional

import jsonschema
import pytest

from koji_kabi.analysis.outcome import OUTCOMES
from koji_kabi.koji import messages

VALIDATOR = jsonschema.Draft202012Validator(messages.schema())
SUMMARY = {"kernel": "kernel-5.14.0-2.el9", "previous": "kernel-5.14.0-1.el9",
           "dry_run": False, "kmod_builds_checked": 3, "compatible": 1,
           "delta": {"x86_64": {"added": 1, "removed": 2, "changed": 3},
                     "aarch64": {"added": 0, "removed": 0, "changed": 0}},
           "broken": [{"nvr": "kmod-a-1-1.el9", "package": "kmod-a", "symbols": 2},
                      {"nvr": "kmod-b-1-1.el9", "package": "kmod-b", "symbols": 1}],
           "rebuilds": {"submitted": 1, "duplicate": 1}, "rebuild_task_ids": [12]}


def test_the_schema_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(messages.schema())


def test_a_closed_check() -> None:
    m = messages.check_finished(10, "kernel-5.14.0-2.el9", SUMMARY)
    VALIDATOR.validate(m.body)
    assert m.topic == messages.CHECK_CLOSED and m.body["state"] == "closed"
    assert m.body["rebuilds"] == {"submitted": 1, "deferred": 0, "duplicate": 1}
    assert list(m.body["delta"]) == ["aarch64", "x86_64"]
    assert m.props == {"type": "KabiCheck", "task_id": 10, "state": "closed",
                       "kernel": "kernel-5.14.0-2.el9", "previous": "kernel-5.14.0-1.el9",
                       "broken": 2, "rebuilds_submitted": 1}
    assert all(isinstance(v, (str, int)) for v in m.props.values())  # AMQP-filterable


def test_a_failed_check_has_its_error_and_no_findings() -> None:
    m = messages.check_finished(11, "kernel-5.14.0-2.el9", None, "no such build")
    VALIDATOR.validate(m.body)
    assert m.topic == messages.CHECK_FAILED
    assert (m.body["state"], m.body["error"], m.body["broken"]) == ("failed",
                                                                    "no such build", [])


def test_a_rebuild_and_a_denial() -> None:
    r = messages.rebuild_submitted(10, 12, "kmod-a", "kmod-a-1-1.el9", "kernel-5.14.0-2.el9",
                                   "ab" * 8, "git+https://src/kmod-a#0f0f", "kmods-el9")
    d = messages.tag_denied("kmods-el9-gated", "kmod-a-1-1.el9", "kernel-5.14.0-2.el9",
                            "tag", "kmod-a-1-1.el9 does not match", None)
    for m in (r, d):
        VALIDATOR.validate(m.body)
    assert (r.topic, d.topic) == (messages.REBUILD_SUBMITTED, messages.TAG_DENIED)
    assert d.props["user"] == "" and d.body["user"] is None


@pytest.mark.parametrize("spoil", [
    lambda b: b.pop("broken"),
    lambda b: b.update(schema=2),
    lambda b: b.update(state="open"),
    lambda b: b["rebuilds"].update(submitted=-1),
    lambda b: b["delta"]["x86_64"].update(moved=1),
    lambda b: b.update(event="rebuild"),  # a check body is no rebuild
])
def test_the_schema_refuses_a_spoiled_body(spoil) -> None:
    body = copy.deepcopy(dict(messages.check_finished(10, "kernel-5.14.0-2.el9",
                                                      SUMMARY).body))
    spoil(body)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(body)


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("build", [None, "kmod-a-1-2.el9"])
def test_a_finished_rebuild_for_each_outcome(outcome: str, build: Optional[str]) -> None:
    m = messages.rebuild_finished(10, 12, "kmod-a", "kmod-a-1-1.el9", "kernel-5.14.0-2.el9",
                                  outcome, "matches kernel-5.14.0-2.el9 (x86_64)", build)
    VALIDATOR.validate(m.body)
    assert m.topic == "kabi.rebuild.finished" == messages.REBUILD_FINISHED
    assert (m.body["event"], m.body["outcome"], m.body["build"]) == ("rebuild-finished",
                                                                     outcome, build)
    assert (m.body["task_id"], m.body["check_task_id"]) == (12, 10)
    assert m.props["outcome"] == outcome and m.props["type"] == "KabiRebuildFinished"
    assert all(isinstance(v, (str, int)) for v in m.props.values())  # AMQP-filterable


@pytest.mark.parametrize("outcome", ["", "Fixed", "judging", "broken"])
def test_a_finished_rebuild_with_an_unknown_outcome_is_refused(outcome: str) -> None:
    m = messages.rebuild_finished(10, 12, "kmod-a", "kmod-a-1-1.el9", "kernel-5.14.0-2.el9",
                                  outcome, "", None)
    assert not VALIDATOR.is_valid(m.body)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(m.body)


@pytest.mark.parametrize("spoil", [
    lambda b: b.pop("detail"),
    lambda b: b.update(build=""),  # an empty NVR is no build
    lambda b: b.update(task_id=0),
    lambda b: b.update(event="rebuild"),  # a finished rebuild is no submitted one
])
def test_the_schema_refuses_a_spoiled_finished_rebuild(spoil) -> None:
    body = copy.deepcopy(dict(messages.rebuild_finished(
        10, 12, "kmod-a", "kmod-a-1-1.el9", "kernel-5.14.0-2.el9", OUTCOMES[0], "", None).body))
    VALIDATOR.validate(body)
    spoil(body)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(body)
