"""What koji-kabi tells a message bus: one topic and body per event, built from results.

The hub plugin hands these to Koji's ``protonmsg`` hub plugin, which queues them with its
own messages and sends them after the transaction commits, under its ``topic_prefix``
(``koji.kabi.check.closed`` with the default prefix).  Bodies follow
``message.schema.json`` beside this module; each carries ``schema`` (its version), so a
consumer can tell a body it understands.  The properties are flat strings and numbers, for
brokers that filter on them (as protonmsg's own messages do).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("message.schema.json")
#: the topics, under protonmsg's topic_prefix
CHECK_CLOSED, CHECK_FAILED = "kabi.check.closed", "kabi.check.failed"
REBUILD_SUBMITTED, TAG_DENIED = "kabi.rebuild.submitted", "kabi.tag.denied"
REBUILD_FINISHED = "kabi.rebuild.finished"


@dataclass(frozen=True)
class Message:
    """One message: a topic, AMQP application properties and a JSON body."""

    topic: str
    props: Mapping[str, Any]
    body: Mapping[str, Any]


def schema() -> dict:
    """The JSON Schema of the bodies (for consumers and tests)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _counts(delta: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    return {arch: {k: int(c.get(k, 0)) for k in ("added", "removed", "changed")}
            for arch, c in sorted(delta.items())}


def check_finished(task_id: int, kernel: str, summary: Optional[Mapping[str, Any]],
                   error: Optional[str] = None) -> Message:
    """A kabiCheck task closed (``summary``: its result) or failed (``error``)."""
    s = summary or {}
    rebuilds = s.get("rebuilds") or {}
    broken = [{"nvr": b["nvr"], "package": b["package"], "symbols": int(b["symbols"])}
              for b in s.get("broken", ())]
    body = {
        "schema": SCHEMA_VERSION, "event": "check", "task_id": task_id,
        "state": "failed" if error is not None else "closed",
        "kernel": kernel, "previous": s.get("previous"),
        "dry_run": bool(s.get("dry_run", False)),
        "delta": _counts(s.get("delta") or {}),
        "kmod_builds": int(s.get("kmod_builds_checked", 0)),
        "compatible": int(s.get("compatible", 0)),
        "broken": broken,
        "rebuilds": {k: int(rebuilds.get(k, 0)) for k in ("submitted", "deferred",
                                                           "duplicate")},
        "rebuild_task_ids": [int(t) for t in s.get("rebuild_task_ids", ())],
        "error": error,
    }
    props = {"type": "KabiCheck", "task_id": task_id, "state": body["state"],
             "kernel": kernel, "previous": body["previous"] or "", "broken": len(broken),
             "rebuilds_submitted": body["rebuilds"]["submitted"]}
    return Message(CHECK_FAILED if error is not None else CHECK_CLOSED, props, body)


def rebuild_submitted(check_task_id: int, task_id: int, package: str, nvr: str,
                      kernel: str, fingerprint: str, source: str, target: str) -> Message:
    """A rebuild's build task was created (and its claim committed with it)."""
    body = {"schema": SCHEMA_VERSION, "event": "rebuild", "task_id": task_id,
            "check_task_id": check_task_id, "package": package, "nvr": nvr,
            "kernel": kernel, "fingerprint": fingerprint, "source": source,
            "target": target}
    props = {"type": "KabiRebuild", "task_id": task_id, "check_task_id": check_task_id,
             "package": package, "nvr": nvr, "kernel": kernel}
    return Message(REBUILD_SUBMITTED, props, body)


def rebuild_finished(check_task_id: int, task_id: int, package: str, nvr: str, kernel: str,
                     outcome: str, detail: str, build: Optional[str]) -> Message:
    """A rebuild ended, judged (:mod:`koji_kabi.analysis.outcome`) against its kernel."""
    body = {"schema": SCHEMA_VERSION, "event": "rebuild-finished", "task_id": task_id,
            "check_task_id": check_task_id, "package": package, "nvr": nvr,
            "kernel": kernel, "outcome": outcome, "detail": detail, "build": build}
    props = {"type": "KabiRebuildFinished", "task_id": task_id,
             "check_task_id": check_task_id, "package": package, "nvr": nvr,
             "kernel": kernel, "outcome": outcome}
    return Message(REBUILD_FINISHED, props, body)


def tag_denied(tag: str, build: str, kernel: str, operation: str, reason: str,
               user: Optional[str]) -> Message:
    """``kabi_compatible`` said no to tagging (or moving) a kmod build into a tag."""
    body = {"schema": SCHEMA_VERSION, "event": "tag-denied", "tag": tag, "build": build,
            "kernel": kernel, "operation": operation, "reason": reason, "user": user}
    props = {"type": "KabiTagDenied", "tag": tag, "build": build, "kernel": kernel,
             "user": user or ""}
    return Message(TAG_DENIED, props, body)
