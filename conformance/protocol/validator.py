"""A validator for the subset of JSON Schema (2020-12) that ``schema.json`` uses.

Why not the ``jsonschema`` package: it would be the project's first runtime dependency (with
``referencing`` and the compiled ``rpds-py`` behind it) for what fits in this module, and its
errors would still need rewording: a protocol violation must name the field (``args.filter``)
and say what was expected in words an implementer in any language understands. To make sure the
schema never relies on a keyword this module would silently ignore, :func:`check_schema` refuses
every keyword it does not implement.

Keywords: ``type``, ``const``, ``enum``, ``oneOf``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``minimum``,
``maximum``, ``minLength``, ``pattern``, ``if``/``then``/``else`` and local ``$ref``
(``#/$defs/Name``); ``description``, ``title``, ``examples``, ``default`` and ``$comment`` are
annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SchemaError", "Violation", "check_schema", "describe", "resolve", "validate"]

Schema = Mapping[str, Any]

ASSERTIONS = frozenset(
    {
        "type",
        "const",
        "enum",
        "oneOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "pattern",
        "if",
        "then",
        "else",
        "$ref",
    }
)
ANNOTATIONS = frozenset({"description", "title", "examples", "default", "$comment"})
_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})


class SchemaError(ValueError):
    """The schema itself uses something this validator does not implement."""


class Violation(ValueError):
    """A value does not match its schema: ``path`` names the field, ``problem`` says why."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '(the message)'}: {problem}")
        self.path = path
        self.problem = problem


def resolve(root: Schema, ref: str) -> Schema:
    """The schema a local ``$ref`` (``#/$defs/Name``) points at."""
    if not ref.startswith("#/"):
        raise SchemaError(f"$ref {ref!r}: only local references ('#/...') are supported")
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"$ref {ref!r}: nothing at {part!r}")
        node = node[part]
    if not isinstance(node, Mapping):
        raise SchemaError(f"$ref {ref!r} does not point at a schema")
    return node


def check_schema(schema: Any, root: Schema, where: str = "schema") -> None:
    """Refuse keywords this validator does not implement, unknown types and dangling refs."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema must be an object or a boolean, got {schema!r}")
    unknown = set(schema) - ASSERTIONS - ANNOTATIONS
    if unknown:
        raise SchemaError(f"{where}: unsupported keyword(s) {sorted(unknown)}")
    types = schema.get("type")
    for name in [types] if isinstance(types, str) else list(types or []):
        if name not in _TYPES:
            raise SchemaError(f"{where}: unknown type {name!r}")
    if "$ref" in schema:
        resolve(root, schema["$ref"])
    if "pattern" in schema:
        re.compile(schema["pattern"])
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, root, f"{where}.properties.{name}")
    for keyword in ("items", "additionalProperties", "if", "then", "else"):
        if keyword in schema:
            check_schema(schema[keyword], root, f"{where}.{keyword}")
    for keyword in ("oneOf", "prefixItems"):
        for index, sub in enumerate(schema.get(keyword, [])):
            check_schema(sub, root, f"{where}.{keyword}[{index}]")


def describe(value: Any) -> str:
    """A JSON value in words, for error messages: ``the string 'x'``, ``an object``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, list):
        return f"an array of {len(value)} item(s)"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__} (not JSON)"


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    return isinstance(value, Mapping)  # "object"


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, and 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _matches(value: Any, schema: Any, root: Schema) -> bool:
    try:
        validate(value, schema, root)
    except Violation:
        return False
    return True


def validate(value: Any, schema: Any, root: Schema, path: str = "") -> None:
    """Raise :class:`Violation` (naming the field) unless ``value`` matches ``schema``."""
    if schema is True:
        return
    if schema is False:
        raise Violation(path, f"no value is allowed here, got {describe(value)}")
    if "$ref" in schema:
        validate(value, resolve(root, schema["$ref"]), root, path)
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        if not any(_is_type(value, name) for name in types):
            raise Violation(path, f"expected {' or '.join(types)}, got {describe(value)}")
    if "const" in schema and not _equal(value, schema["const"]):
        raise Violation(path, f"expected {json.dumps(schema['const'])}, got {describe(value)}")
    if "enum" in schema and not any(_equal(value, option) for option in schema["enum"]):
        options = ", ".join(json.dumps(option) for option in schema["enum"])
        raise Violation(path, f"expected one of {options}, got {describe(value)}")
    if "oneOf" in schema:
        _one_of(value, schema["oneOf"], root, path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise Violation(path, f"must be at least {schema['minimum']}, got {value!r}")
        if "maximum" in schema and value > schema["maximum"]:
            raise Violation(path, f"must be at most {schema['maximum']}, got {value!r}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise Violation(path, f"must have at least {schema['minLength']} character(s)")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise Violation(
                path, f"{describe(value)} does not match the pattern {schema['pattern']}"
            )
    if isinstance(value, list):
        _array(value, schema, root, path)
    if isinstance(value, Mapping):
        _object(value, schema, root, path)
    if "if" in schema:
        branch = "then" if _matches(value, schema["if"], root) else "else"
        if branch in schema:
            validate(value, schema[branch], root, path)


def _one_of(value: Any, options: list[Any], root: Schema, path: str) -> None:
    matching = [option for option in options if _matches(value, option, root)]
    if len(matching) == 1:
        return
    if all(isinstance(option, Mapping) and "const" in option for option in options):
        listed = ", ".join(json.dumps(option["const"]) for option in options)
        raise Violation(path, f"expected one of {listed}, got {describe(value)}")
    if not matching:
        # Say why it failed against each alternative: usually one is the intended shape.
        reasons = []
        for option in options:
            try:
                validate(value, option, root, path)
            except Violation as exc:
                reasons.append(str(exc))
        raise Violation(path, "matches none of the allowed shapes (" + "; ".join(reasons) + ")")
    raise Violation(path, f"matches {len(matching)} of the allowed shapes; exactly one must match")


def _array(value: list[Any], schema: Schema, root: Schema, path: str) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise Violation(path, f"must have at least {schema['minItems']} item(s), has {len(value)}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise Violation(path, f"must have at most {schema['maxItems']} item(s), has {len(value)}")
    prefix = schema.get("prefixItems", [])
    for index, item in enumerate(value):
        if index < len(prefix):
            validate(item, prefix[index], root, f"{path}[{index}]")
        elif "items" in schema:
            validate(item, schema["items"], root, f"{path}[{index}]")


def _object(value: Mapping[str, Any], schema: Schema, root: Schema, path: str) -> None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise Violation(_child(path, name), "is missing (required)")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], root, _child(path, name))
        elif extra is False:
            allowed = ", ".join(properties) or "none"
            raise Violation(_child(path, name), f"is not allowed here (allowed: {allowed})")
        elif extra is not True:
            validate(item, extra, root, _child(path, name))
