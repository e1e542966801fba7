"""The protocol's schema, its validator, its JSON lines and its error model (no processes)."""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from brh import HelperClosedError, InvalidArgumentError, ReentrantCallError, UnknownContextError
from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InvalidParameterError,
    NetworkError,
    ObjectId,
    ServerError,
    UnauthorizedError,
    Vault,
    VaultError,
    VaultFrozenError,
    VaultNotFoundError,
)
from conformance.protocol import messages
from conformance.protocol.errors import (
    CallbackRaisedError,
    ImplementationError,
    command_error_from_wire,
    command_error_to_wire,
    request_error_from_wire,
    request_error_to_wire,
)
from conformance.protocol.messages import (
    COMMANDS,
    SCHEMA,
    VAULT_OPS,
    MessageError,
    load_schema,
    parse,
    render,
)
from conformance.protocol.validator import SchemaError, Violation, check_schema, validate

OID = ObjectId("684ee18000000000000000a1")


def examples() -> list[tuple[str, str, Any]]:
    return [
        (sender, kind, example)
        for sender, declared in SCHEMA["messages"].items()
        for kind, message in declared.items()
        for example in message["schema"].get("examples", [])
    ]


@pytest.mark.parametrize(("sender", "kind", "example"), examples())
def test_every_example_is_a_valid_message(sender: Any, kind: str, example: Any) -> None:
    """The examples the reference shows are themselves checked against the schema."""
    assert example["type"] == kind
    messages.check_message(sender, example)
    assert parse(json.dumps(example), sender)["type"] == kind


def test_every_message_type_has_an_example() -> None:
    for sender, declared in SCHEMA["messages"].items():
        for kind, message in declared.items():
            assert message["schema"].get("examples"), f"{sender} {kind} has no example"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"type": "vault", "id": 1, "op": "query", "args": {"collection": 3, "filter": {}}},
            "sent a 'vault' message that breaks the protocol: args.collection: expected "
            "string, got the number 3",
        ),
        ({"type": "idle"}, "an 'idle' message that breaks the protocol: wake_at: is missing"),
        (
            {"type": "idle", "wake_at": None, "extra": 1},
            "extra: is not allowed here (allowed: type, wake_at)",
        ),
        ({"type": "tick", "now": 1, "mono": 1}, "type: 'tick' is not a message type"),
        ({"wake_at": 1}, "type: is missing"),
        (
            {"type": "vault", "id": 1, "op": "upsert", "args": {}},
            "op: unknown op 'upsert' (expected one of ['count_documents'",
        ),
        (
            {"type": "result", "id": 1, "ok": False},
            "'result' message that breaks the protocol: error: is missing (required)",
        ),
        (
            {"type": "result", "id": 1, "ok": False, "error": {"kind": "oops", "message": ""}},
            'error.kind: expected one of "invalid_argument", "unknown_context"',
        ),
        (
            {"type": "callback", "id": -1, "context": "n", "kind": "insert", "entry": {}},
            "id: must be at least 0, got -1",
        ),
        (
            {"type": "vault", "id": True, "op": "find_one", "args": {}},
            "id: expected integer, got true",
        ),
        (
            {
                "type": "vault",
                "id": 1,
                "op": "query",
                "args": {"collection": "c", "filter": {}, "sort": [["modified", 2]]},
            },
            "args.sort[0][1]: expected one of 1, -1, got the number 2",
        ),
        (
            {
                "type": "vault",
                "id": 1,
                "op": "insert_one",
                "args": {"collection": "c", "document": {"_id": {"$oid": "XYZ"}}},
            },
            'args.document._id.$oid: the string "XYZ" does not match the pattern',
        ),
        ([1, 2], "a line that breaks the protocol: expected a JSON object, got an array"),
    ],
)
def test_a_bad_message_names_its_type_and_field(line: Any, expected: str) -> None:
    with pytest.raises(MessageError) as raised:
        parse(json.dumps(line), "implementation")
    assert expected in str(raised.value)
    assert str(raised.value).startswith("the implementation sent ")
    assert "line: " in str(raised.value)  # the offending line is quoted


def test_lines_that_are_not_json() -> None:
    for line, expected in [
        (b"hello", "not JSON"),
        (b'{"type":"idle","wake_at":NaN}', "NaN is not JSON"),
    ]:
        with pytest.raises(MessageError, match=expected):
            parse(line, "implementation")
    with pytest.raises(MessageError, match="not JSON"):
        render({"type": "idle", "wake_at": float("inf")}, "implementation")


def test_command_args_are_checked_per_command() -> None:
    """A command's args follow its declaration in 'commands' (reported under args.*)."""
    base = {"type": "command", "id": 1, "now": 0.0, "mono": 0.0}
    good = {**base, "name": "upsert", "args": {"context": "n", "key": "k", "data": [None]}}
    messages.check_message("harness", good)
    with pytest.raises(MessageError, match=r"args\.key: is missing"):
        messages.check_message("harness", {**good, "args": {"context": "n", "data": 1}})
    with pytest.raises(MessageError, match="name: unknown name 'restart'"):
        messages.check_message("harness", {**base, "name": "restart", "args": {}})


def test_reply_needs_value_or_error() -> None:
    """if/then/else: ok true requires value, ok false requires error."""
    base = {"type": "reply", "id": 1, "now": 0.0, "mono": 0.0}
    messages.check_message("harness", {**base, "ok": True, "value": None})
    with pytest.raises(MessageError, match="value: is missing"):
        messages.check_message("harness", {**base, "ok": True})
    with pytest.raises(MessageError, match="error: is missing"):
        messages.check_message("harness", {**base, "ok": False, "value": 1})


def test_object_ids_travel_as_oid_objects() -> None:
    """ObjectIds anywhere (documents, filters, results) become {"$oid": hex} and come back."""
    message = {
        "type": "vault",
        "id": 4,
        "op": "query",
        "args": {"collection": "c", "filter": {"_id": {"$gt": OID}}, "sort": [("_id", 1)]},
    }
    line = render(message, "implementation")
    assert b'{"_id":{"$gt":{"$oid":"684ee18000000000000000a1"}}}' in line
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = parse(line, "implementation")
    assert back["args"]["filter"] == {"_id": {"$gt": OID}}
    assert back["args"]["sort"] == [["_id", 1]]


def test_unicode_and_newlines_stay_on_one_line() -> None:
    message = {"type": "result", "id": 1, "ok": True, "value": {"k": "a\nb\u2028c é"}}
    line = render(message, "implementation")
    assert line.count(b"\n") == 1
    assert parse(line, "implementation")["value"] == {"k": "a\nb\u2028c é"}


def test_vault_operations_match_the_vault_protocol() -> None:
    """The schema's vault operations are brh.vault.Vault's methods: the same names, the same
    arguments, required exactly when Python has no default, and the same defaults."""
    methods = {
        name
        for name, member in inspect.getmembers(Vault, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    assert set(VAULT_OPS) == methods
    for op, declared in VAULT_OPS.items():
        parameters = dict(inspect.signature(getattr(Vault, op)).parameters)
        parameters.pop("self")
        args = declared["args"]
        assert set(args["properties"]) == set(parameters), op
        required = {n for n, p in parameters.items() if p.default is inspect.Parameter.empty}
        assert set(args.get("required", [])) == required, op
        for name, parameter in parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                assert args["properties"][name].get("default") == parameter.default, (op, name)


def test_every_command_is_declared_with_its_answer_timing() -> None:
    """Every command, which are answered within their turn, and which are optional (sent only
    to an implementation that announces them: ``holds``)."""
    assert set(COMMANDS) == {
        "add_context",
        "upsert",
        "delete",
        "sync",
        "wipe",
        "get",
        "local_entries",
        "holds",
        "close",
    }
    assert {name for name, c in COMMANDS.items() if c["immediate"]} == {
        "add_context",
        "get",
        "local_entries",
        "holds",
        "close",
    }
    assert {name for name, c in COMMANDS.items() if c.get("optional")} == {"holds"}


# -- the validator ------------------------------------------------------------------------------


def test_the_validator_refuses_keywords_it_does_not_implement(tmp_path: Path) -> None:
    """The schema cannot rely on a keyword the validator would silently ignore."""
    with pytest.raises(SchemaError, match=r"here: unsupported keyword\(s\) \['format'\]"):
        check_schema({"type": "string", "format": "date-time"}, {}, "here")
    with pytest.raises(SchemaError, match="nothing at 'Missing'"):
        check_schema({"$ref": "#/$defs/Missing"}, {"$defs": {}})
    with pytest.raises(SchemaError, match="unknown type 'text'"):
        check_schema({"type": "text"}, {})
    broken = copy.deepcopy(SCHEMA)
    broken["messages"]["implementation"]["idle"]["schema"]["propertyNames"] = {}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(SchemaError, match=r"messages.implementation.idle: unsupported"):
        load_schema(path)


@pytest.mark.parametrize(
    ("value", "schema", "ok"),
    [
        (1, {"type": "integer"}, True),
        (1.0, {"type": "integer"}, True),
        (1.5, {"type": "integer"}, False),
        (True, {"type": "integer"}, False),
        (True, {"type": "number"}, False),
        (1, {"const": True}, False),
        (True, {"const": True}, True),
        (1.0, {"enum": [1, -1]}, True),
        ([1, "a"], {"type": "array", "items": {"type": "integer"}}, False),
        (["a", 1], {"prefixItems": [{"type": "string"}, {"type": "integer"}]}, True),
        ([], {"minItems": 1}, False),
        (None, {"oneOf": [{"type": "null"}, {"type": "string"}]}, True),
        (None, {"oneOf": [{"type": "null"}, {}]}, False),  # two match: not exactly one
        ({"a": 1}, {"additionalProperties": {"type": "string"}}, False),
        ("", {"minLength": 1}, False),
        ("abc", {"pattern": "^a"}, True),
        ({}, False, False),
        ({}, True, True),
    ],
)
def test_validator_keywords(value: Any, schema: Any, ok: bool) -> None:
    if ok:
        validate(value, schema, {})
    else:
        with pytest.raises(Violation):
            validate(value, schema, {})


def test_one_of_explains_each_alternative() -> None:
    schema = {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/ObjectId"}]}
    with pytest.raises(Violation) as raised:
        validate({"$oid": 5}, schema, SCHEMA, "upserted_id")
    assert "upserted_id: matches none of the allowed shapes" in str(raised.value)
    assert "upserted_id.$oid: expected string, got the number 5" in str(raised.value)


# -- the error models ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "definite"),
    [
        (CollectionNotFoundError("no"), "collection_not_found", True),
        (AlreadyExistsError("no"), "already_exists", True),
        (VaultNotFoundError("no"), "vault_not_found", True),
        (VaultFrozenError("no"), "frozen", True),
        (UnauthorizedError("no"), "unauthorized", True),
        (InvalidParameterError("no"), "invalid_parameter", True),
        (ServerError("no", status=507), "server", False),
        (NetworkError("no", definite=True), "network", True),
        (NetworkError("no", definite=False), "network", False),
    ],
)
def test_vault_errors_round_trip(error: VaultError, kind: str, definite: bool) -> None:
    """Each typed vault error crosses the protocol as its kind and comes back as its class,
    saying whether the request may have taken effect."""
    wire = request_error_to_wire(error)
    validate(wire, {"$ref": "#/$defs/RequestError"}, SCHEMA)
    assert (wire["kind"], wire["definite"]) == (kind, definite)
    back = request_error_from_wire(wire)
    assert type(back) is type(error) and str(back) == "no"
    assert back.status == error.status
    if isinstance(error, NetworkError):
        assert isinstance(back, NetworkError) and back.definite == error.definite


def test_a_failing_callback_is_callback_raised() -> None:
    wire = request_error_to_wire(KeyError("boom"))
    assert wire == {"kind": "callback_raised", "message": "KeyError: 'boom'", "definite": True}
    assert isinstance(request_error_from_wire(wire), CallbackRaisedError)


def test_command_errors_round_trip() -> None:
    """The implementation's error comes back as the brh exception a caller would catch."""
    cases: list[tuple[Exception, type[Exception], dict[str, Any]]] = [
        (InvalidArgumentError("key", "must not be empty"), InvalidArgumentError, {}),
        (UnknownContextError("nope"), UnknownContextError, {"context": "nope"}),
        (ReentrantCallError("inside a callback"), ReentrantCallError, {}),
        (HelperClosedError("closed"), HelperClosedError, {}),
        (RuntimeError("disk full"), ImplementationError, {}),
    ]
    for error, expected, args in cases:
        wire = command_error_to_wire(error)
        validate(wire, {"$ref": "#/$defs/CommandError"}, SCHEMA)
        back = command_error_from_wire(wire, args)
        assert isinstance(back, expected), (error, back)
    back = command_error_from_wire(command_error_to_wire(UnknownContextError("nope")), {})
    assert isinstance(back, UnknownContextError) and back.argument == "context"
    renamed = command_error_to_wire(InvalidArgumentError("name", "bad"), {"name": "context"})
    assert renamed == {"kind": "invalid_argument", "argument": "context", "message": "bad"}
