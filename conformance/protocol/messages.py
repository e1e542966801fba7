"""The protocol's messages as JSON lines, checked against ``schema.json`` both ways.

``schema.json`` declares every message once; this module loads it, and every line the harness
or the reference implementation writes (:func:`render`) or reads (:func:`parse`) is validated
against it. A violation is a :class:`MessageError` that names who sent which message type, the
field and what is wrong with it. ``python -m conformance.protocol.docs`` renders the same schema
as the message reference of ``PROTOCOL.md``.

ObjectIds travel as ``{"$oid": "<24 hex digits>"}`` (MongoDB Extended JSON): :func:`render`
encodes :class:`brh.vault.ObjectId` values that way and :func:`parse` decodes them back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from brh.vault import ObjectId
from conformance.protocol.validator import Violation, check_schema, describe, validate

__all__ = [
    "COMMANDS",
    "PROTOCOL_VERSION",
    "SCHEMA",
    "SCHEMA_PATH",
    "VAULT_OPS",
    "MessageError",
    "Sender",
    "check_message",
    "from_wire",
    "load_schema",
    "parse",
    "render",
    "to_wire",
]

Sender = Literal["harness", "implementation"]

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """The protocol schema, after checking it uses only what the validator implements."""
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for name, definition in schema["$defs"].items():
        check_schema(definition, schema, f"$defs.{name}")
    for sender, messages in schema["messages"].items():
        for kind, message in messages.items():
            check_schema(message["schema"], schema, f"messages.{sender}.{kind}")
    for section in ("commands", "vault"):
        for name, entry in schema[section].items():
            check_schema(entry["args"], schema, f"{section}.{name}.args")
            check_schema(entry["value"], schema, f"{section}.{name}.value")
    return schema


SCHEMA = load_schema()
PROTOCOL_VERSION: int = SCHEMA["protocol"]
COMMANDS: dict[str, Any] = SCHEMA["commands"]
"""Command name -> ``{"description", "immediate", "args", "value"}``."""
VAULT_OPS: dict[str, Any] = SCHEMA["vault"]
"""Vault operation -> ``{"description", "args", "value"}``."""

_WHO = {"harness": "the harness", "implementation": "the implementation"}


class MessageError(ValueError):
    """A line that breaks the protocol: who sent it, which message type, which field, why."""

    def __init__(
        self, sender: Sender, message_type: str | None, field: str, problem: str, line: str = ""
    ) -> None:
        article = "an" if message_type and message_type[0] in "aeiou" else "a"
        what = f"{article} {message_type!r} message" if message_type else "a line"
        where = f" {field}:" if field else ""
        shown = line if len(line) <= 300 else line[:297] + "..."
        super().__init__(
            f"{_WHO[sender]} sent {what} that breaks the protocol:{where} {problem}"
            + (f"\n  line: {shown}" if shown else "")
        )
        self.sender = sender
        self.message_type = message_type
        self.field = field
        self.problem = problem


_SCALARS = (str, int, float, bool, type(None))


def to_wire(value: Any) -> Any:
    """``value`` as plain JSON data: ObjectIds as ``{"$oid": hex}``, tuples as arrays."""
    # Exact type tests first: this walks every document of every reply, and the abstract
    # Mapping test is several times slower than a type comparison.
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or (kind is not ObjectId and isinstance(value, Mapping)):
        return {key: to_wire(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [to_wire(item) for item in value]
    if kind is ObjectId:
        return {"$oid": value.hex}
    return value


def from_wire(value: Any) -> Any:
    """Plain JSON data with every ``{"$oid": hex}`` turned into an :class:`ObjectId`."""
    kind = type(value)
    if kind is dict:
        if len(value) == 1 and "$oid" in value:
            try:
                return ObjectId(value["$oid"])
            except ValueError:
                pass  # not an ObjectId after all: the schema check reports it where it matters
        return {key: from_wire(item) for key, item in value.items()}
    if kind is list:
        return [from_wire(item) for item in value]
    return value


def _checked(sender: Sender, kind: str | None, schema: Any, value: Any, path: str) -> None:
    try:
        validate(value, schema, SCHEMA, path)
    except Violation as exc:
        raise MessageError(sender, kind, exc.path, exc.problem) from None


def check_message(sender: Sender, message: Any) -> None:
    """Raise :class:`MessageError` unless ``message`` (plain JSON data) is a valid message."""
    if not isinstance(message, dict):
        raise MessageError(sender, None, "", f"expected a JSON object, got {describe(message)}")
    kind = message.get("type")
    declared = SCHEMA["messages"][sender]
    if kind not in declared:
        problem = (
            "is missing"
            if "type" not in message
            else f"{kind!r} is not a message type {_WHO[sender]} sends"
        )
        raise MessageError(sender, None, "type", f"{problem} (expected one of {sorted(declared)})")
    _checked(sender, kind, declared[kind]["schema"], message, "")
    if kind == "command":
        _check_named(sender, kind, "name", message["name"], COMMANDS, message["args"])
    elif kind == "vault":
        _check_named(sender, kind, "op", message["op"], VAULT_OPS, message["args"])


def _check_named(
    sender: Sender, kind: str, field: str, name: str, table: dict[str, Any], args: Any
) -> None:
    if name not in table:
        raise MessageError(
            sender, kind, field, f"unknown {field} {name!r} (expected one of {sorted(table)})"
        )
    _checked(sender, kind, table[name]["args"], args, "args")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(line: bytes | str, sender: Sender) -> dict[str, Any]:
    """One received line as a message (ObjectIds decoded), or :class:`MessageError`."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    try:
        message = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise MessageError(sender, None, "", f"not JSON: {exc}", text) from None
    try:
        check_message(sender, message)
    except MessageError as exc:
        raise MessageError(sender, exc.message_type, exc.field, exc.problem, text) from None
    decoded: dict[str, Any] = from_wire(message)
    return decoded


def render(message: Mapping[str, Any], sender: Sender) -> bytes:
    """One message as a checked JSON line (UTF-8, ending in a newline)."""
    wire = to_wire(message)
    check_message(sender, wire)
    try:
        text = json.dumps(wire, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # NaN or infinity somewhere
        raise MessageError(sender, wire.get("type"), "", f"not JSON: {exc}") from None
    return text.encode("utf-8") + b"\n"


def is_finite_json(value: Any) -> bool:
    """Whether ``value`` is JSON data JSON can carry (finite numbers, string keys)."""
    if value is None or isinstance(value, bool | str | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(is_finite_json(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_finite_json(v) for k, v in value.items())
    return False
