"""Every JSON document a producer emits is checked against the one result schema."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from koji_kabi.report.jsondoc import SCHEMA_VERSION, schema


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def valid(doc: Any, kind: str | None = None) -> dict:
    """``doc`` (a dict or JSON text) if it is a valid result document (of ``kind``)."""
    if isinstance(doc, (str, bytes)):
        doc = json.loads(doc)
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    assert doc["schema"] == SCHEMA_VERSION
    if kind is not None:
        assert doc["kind"] == kind, doc["kind"]
    return doc
