"""schema.json against the jsonschema package (issue 12, hygiene): a dev-only check that the
protocol's schema is a valid JSON Schema 2020-12 document, and that the project's small
validator (:mod:`conformance.protocol.validator`, kept because the suite has no runtime
dependency) and jsonschema agree on the worked transcripts and on broken copies of them."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from conformance.protocol.messages import SCHEMA, SCHEMA_PATH
from conformance.protocol.validator import Violation, validate
from tests.conformance.test_protocol_docs import transcripts


def _subschemas() -> list[tuple[str, Any]]:
    found = [(f"$defs.{name}", s) for name, s in SCHEMA["$defs"].items()]
    for sender, messages in SCHEMA["messages"].items():
        found += [(f"messages.{sender}.{kind}", m["schema"]) for kind, m in messages.items()]
    for section in ("commands", "vault"):
        for name, entry in SCHEMA[section].items():
            found += [(f"{section}.{name}.args", entry["args"])]
            found += [(f"{section}.{name}.value", entry["value"])]
    return found


def _with_root(schema: Any) -> Any:
    """A subschema made whole: ``$ref``s into the root's ``$defs`` resolve."""
    if isinstance(schema, bool):
        return schema
    return {**schema, "$defs": SCHEMA["$defs"]}


def test_schema_json_is_a_valid_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for where, schema in _subschemas():
        try:
            jsonschema.Draft202012Validator.check_schema(_with_root(schema))
        except jsonschema.SchemaError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"{SCHEMA_PATH.name} {where}: {exc.message}")


def _ours(value: Any, schema: Any) -> bool:
    try:
        validate(value, schema, SCHEMA)
    except Violation:
        return False
    return True


def _theirs(value: Any, schema: Any) -> bool:
    return bool(jsonschema.Draft202012Validator(_with_root(schema)).is_valid(value))


def _broken(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies of ``message`` with one field removed, retyped or added."""
    variants = []
    for field in message:
        missing = copy.deepcopy(message)
        del missing[field]
        variants.append(missing)
        retyped = copy.deepcopy(message)
        retyped[field] = [] if not isinstance(message[field], list) else "x"
        variants.append(retyped)
    variants.append({**copy.deepcopy(message), "unexpected": 1})
    return variants


def test_the_small_validator_and_jsonschema_agree_on_every_message() -> None:
    """Each transcript line and each broken copy of it: both accept, or both refuse."""
    checked = 0
    for session in transcripts():
        for direction, message in session:
            sender = "harness" if direction == ">" else "implementation"
            schema = SCHEMA["messages"][sender][message["type"]]["schema"]
            for value in [message, *_broken(message)]:
                assert _ours(value, schema) == _theirs(value, schema), (sender, value)
                checked += 1
    assert checked > 100
