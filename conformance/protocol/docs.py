"""The message reference of ``PROTOCOL.md``, generated from ``schema.json``.

``python -m conformance.protocol.docs`` rewrites the part of ``PROTOCOL.md`` between the
``BEGIN MESSAGE REFERENCE`` and ``END MESSAGE REFERENCE`` markers; ``--check`` only reports
whether it is up to date (exit status 1 if not). ``tests/conformance/test_protocol_docs.py``
fails when the document and the schema drift apart, so the schema stays the one declaration of
every message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.protocol.messages import SCHEMA

__all__ = ["BEGIN", "END", "PROTOCOL_MD", "main", "reference", "section", "updated"]

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "PROTOCOL.md"
BEGIN = (
    "<!-- BEGIN MESSAGE REFERENCE: generated from conformance/protocol/schema.json by "
    "`python -m conformance.protocol.docs`; edit the schema, not this section -->"
)
END = "<!-- END MESSAGE REFERENCE -->"

_ARROWS = {"harness": "harness → implementation", "implementation": "implementation → harness"}


def _code(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    """Text that can sit in a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(name: str) -> str:
    return "def-" + name.lower()


def type_of(schema: Any) -> str:
    """A schema's type in words, with links to the shared definitions."""
    if schema is True or not isinstance(schema, Mapping):
        return "any JSON"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "const" in schema:
        return _code(schema["const"])
    if "enum" in schema:
        return " or ".join(_code(option) for option in schema["enum"])
    if "oneOf" in schema:
        options = schema["oneOf"]
        if all(isinstance(o, Mapping) and isinstance(o.get("const"), str) for o in options):
            return "string (one of the values under Meaning)"
        return " or ".join(type_of(option) for option in options)
    if "type" not in schema:
        return "any JSON"
    types = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
    return " or ".join(_one_type(name, schema) for name in types)


def _one_type(name: str, schema: Mapping[str, Any]) -> str:
    if name == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(type_of(item) for item in schema["prefixItems"]) + "]"
        if "items" in schema:
            return f"array of {type_of(schema['items'])}"
        return "array"
    if name in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{name} ({low} to {high})"
        if low is not None:
            return f"{name} (≥ {low})"
        return name
    if name == "string":
        if "pattern" in schema:
            return f"string matching `{schema['pattern']}`"
        if schema.get("minLength"):
            return "non-empty string"
    return name


def _meaning(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return ""
    parts = [schema.get("description", "")]
    if "default" in schema:
        parts.append(f"Default: {_code(schema['default'])}.")
    options = schema.get("oneOf", [])
    if options and all(isinstance(o, Mapping) and "const" in o for o in options):
        parts.extend(f"{_code(o['const'])}: {o.get('description', '')}" for o in options)
    return "<br>".join(part for part in parts if part)


def _rows(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        field = prefix + name
        needed = "yes" if name in required else "no"
        rows.append(f"| `{field}` | {_cell(type_of(sub))} | {needed} | {_cell(_meaning(sub))} |")
        if isinstance(sub, Mapping) and "properties" in sub and "$ref" not in sub:
            rows.extend(_rows(sub, field + "."))
    return rows


def _table(schema: Mapping[str, Any], first: str = "Field") -> list[str]:
    rows = _rows(schema)
    if not rows:
        return ["No fields." if first == "Field" else "No arguments.", ""]
    lines = [f"| {first} | Type | Required | Meaning |", "|---|---|---|---|", *rows, ""]
    condition = schema.get("if", {}).get("properties", {})
    if condition:
        (name, test), *_ = condition.items()
        then = ", ".join(f"`{n}`" for n in schema.get("then", {}).get("required", []))
        other = ", ".join(f"`{n}`" for n in schema.get("else", {}).get("required", []))
        lines += [
            f"When `{name}` is {_code(test['const'])}, {then} is required; otherwise {other}.",
            "",
        ]
    if schema.get("additionalProperties", True) is False:
        lines += [f"No other {'fields' if first == 'Field' else 'arguments'} are allowed.", ""]
    return lines


def _example(example: Any) -> list[str]:
    return ["```json", json.dumps(example, ensure_ascii=False), "```", ""]


def reference(schema: Mapping[str, Any] = SCHEMA) -> str:
    """The generated message reference (Markdown, markers excluded)."""
    out: list[str] = [
        f"Protocol version {schema['protocol']}. Every line is one of these messages; a field "
        "marked required must be present, and no field that is not listed may be.",
        "",
    ]
    for sender, messages in schema["messages"].items():
        out += [f"### Messages {_ARROWS[sender]}", ""]
        for kind, message in messages.items():
            out += [
                f'<a id="{sender}-{kind}"></a>',
                f"#### `{kind}` ({_ARROWS[sender]})",
                "",
                message["description"],
                "",
                *_table(message["schema"]),
            ]
            for example in message["schema"].get("examples", []):
                out += _example(example)
    out += [
        "### Commands",
        "",
        "The `name` and `args` of a `command` message, and the `value` of its `result`.",
        "",
    ]
    for name, command in schema["commands"].items():
        when = (
            "within the command's own turn (immediate)"
            if command["immediate"]
            else "when the work is done (possibly turns later)"
        )
        out += [
            f'<a id="command-{name}"></a>',
            f"#### `{name}`",
            "",
            command["description"],
            "",
            f"Answered {when}.",
            "",
            *(
                [
                    "Optional: sent only to an implementation whose `hello` lists it in "
                    "`optional_commands`.",
                    "",
                ]
                if command.get("optional")
                else []
            ),
            *_table(command["args"], "Argument"),
            f"Value: {type_of(command['value'])}. {_meaning(command['value'])}".rstrip(),
            "",
        ]
    out += [
        "### Vault operations",
        "",
        "The `op` and `args` of a `vault` message, and the `value` of a successful `reply`. "
        "Arguments left out take their default.",
        "",
    ]
    for op, operation in schema["vault"].items():
        out += [
            f'<a id="vault-{op}"></a>',
            f"#### `{op}`",
            "",
            operation["description"],
            "",
            *_table(operation["args"], "Argument"),
            f"Value: {type_of(operation['value'])}.",
            "",
        ]
    out += ["### Shared definitions", ""]
    for name, definition in schema["$defs"].items():
        out += [f'<a id="{_anchor(name)}"></a>', f"#### {name}", ""]
        if "description" in definition:
            out += [definition["description"], ""]
        if "properties" in definition:
            out += _table(definition)
        else:
            out += [f"Type: {type_of(definition)}.", ""]
    return "\n".join(out).rstrip() + "\n"


def section(text: str) -> str:
    """The generated part of a PROTOCOL.md text (between the markers)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(
            "PROTOCOL.md must contain the BEGIN and END MESSAGE REFERENCE markers once each"
        )
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def updated(text: str, schema: Mapping[str, Any] = SCHEMA) -> str:
    """``text`` with its generated part regenerated from ``schema``."""
    section(text)  # the markers are there
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n\n{reference(schema)}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.protocol.docs",
        description="Regenerate the message reference of PROTOCOL.md from schema.json.",
    )
    parser.add_argument("path", nargs="?", type=Path, default=PROTOCOL_MD)
    parser.add_argument(
        "--check", action="store_true", help="only check; exit status 1 if it is out of date"
    )
    options = parser.parse_args(argv)
    text = options.path.read_text(encoding="utf-8")
    new = updated(text)
    if options.check:
        if new != text:
            print(
                f"{options.path}: the message reference is out of date; run "
                "python -m conformance.protocol.docs",
                file=sys.stderr,
            )
            return 1
        return 0
    if new != text:
        options.path.write_text(new, encoding="utf-8")
        print(f"{options.path}: message reference regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
