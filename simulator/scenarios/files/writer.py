"""Writing a scenario file: :func:`dumps` gives the text :func:`~simulator.scenarios.files.loads`
reads back to the same scenario (the conformance state machine records its runs with it)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from brh import RetryPolicy
from simulator.scenarios.files.runner import ScenarioSpec

__all__ = ["dumps"]


def dumps(spec: ScenarioSpec) -> str:
    """``spec`` as scenario file text: :func:`loads` reads it back to the same scenario.

    Values must be what a file can hold (TOML has no null: a ``None`` helper option is written
    ``"none"``, a ``None`` inside a value is refused).
    """
    lines = [f"name = {_toml(spec.name)}"]
    if spec.description:
        lines.append(f"description = {_toml(spec.description)}")
    if spec.weaknesses:
        lines.append(f"weakness = {_toml(list(spec.weaknesses))}")
    if spec.clauses:
        lines.append(f"clauses = {_toml(list(spec.clauses))}")
    lines.append(f"contexts = {_toml(list(spec.contexts))}")
    if spec.check_each_step:
        lines.append("check_each_step = true")
    options = {k: v for k, v in spec.options.items() if k != "retry"}
    if options:
        lines += ["", "[options]"]
        for name, value in options.items():
            lines.append(f"{name} = {_toml('none' if value is None else value)}")
    retry = spec.options.get("retry")
    if isinstance(retry, RetryPolicy):
        lines += ["", "[options.retry]"]
        for f in fields(RetryPolicy):
            lines.append(f"{f.name} = {_toml(getattr(retry, f.name))}")
    for device in spec.devices:
        lines += ["", "[[devices]]", f"name = {_toml(device.name)}"]
        if device.offset:
            lines.append(f"offset = {_toml(device.offset)}")
        if device.drift_ppm:
            lines.append(f"drift_ppm = {_toml(device.drift_ppm)}")
        if device.contexts is not None:
            lines.append(f"contexts = {_toml(list(device.contexts))}")
        if device.instances != 1:
            lines.append(f"instances = {_toml(device.instances)}")
        if device.share_contexts:
            lines.append("share_contexts = true")
    for step in spec.steps:
        lines += ["", "[[steps]]"]
        if step.at is not None:
            lines.append(f"at = {_toml(step.at)}")
        lines.append(f"do = {_toml(step.verb)}")
        for name, value in step.fields.items():
            lines.append(f"{_toml_key(name)} = {_toml(value)}")
    return "\n".join(lines) + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml(value: Any) -> str:
    """One TOML value (strings, numbers, booleans, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"dumps: {value!r} cannot be written in a scenario file")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml(v)}" for k, v in value.items())
        return "{" + items + "}" if items else "{}"
    raise ValueError(f"dumps: {value!r} cannot be written in a scenario file (TOML has no null)")
