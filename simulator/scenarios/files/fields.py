"""The kinds of value a scenario file's fields hold (the format: ``docs/scenario-files.md``).

Each kind is a :data:`Check`: it returns the value (converted if need be), or raises ValueError
saying what is wrong with it; the parser adds the file, the step and the field's name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from brh import InvalidArgumentError
from brh.validation import check_context_name, check_key
from simulator.scenarios.registry import WEAKNESSES
from simulator.world.app import MODES

Check = Callable[[Any], Any]
"""Validates one field's value and returns it (possibly converted); raises ValueError."""


def number(value: Any, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be <= {maximum:g}, got {value!r}")
    return float(value)


def seconds(value: Any) -> float:
    return number(value, minimum=0)


def signed_seconds(value: Any) -> float:
    return number(value)


def probability(value: Any) -> float:
    return number(value, minimum=0, maximum=1)


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be an integer >= 0, got {value!r}")
    return value


def positive_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be an integer >= 1, got {value!r}")
    return value


def instances(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"must be an integer >= 1 (helper instances sharing the device's store), got {value!r}"
        )
    return value


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def key(value: Any) -> str:
    try:
        check_key(value)
    except InvalidArgumentError as exc:
        raise ValueError(exc.problem) from None
    return str(value)


def mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}, got {value!r}")
    return str(value)


def json_value(value: Any, path: str = "") -> Any:
    """TOML values that are JSON (no dates, no NaN or infinity), as plain Python."""
    if isinstance(value, dict):
        return {k: json_value(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path or 'the value'} is {value!r}, which JSON cannot hold")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(
        f"{path or 'the value'} is a TOML {type(value).__name__}, which is not JSON "
        "(write dates as strings)"
    )


def contexts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list of context names, got {value!r}")
    names: list[str] = []
    for item in value:
        try:
            check_context_name(item)
        except InvalidArgumentError as exc:
            raise ValueError(f"{item!r}: {exc.problem}") from None
        if item in names:
            raise ValueError(f"{item!r} is listed twice")
        names.append(item)
    return tuple(names)


def weaknesses(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or any(w not in WEAKNESSES for w in items):
        raise ValueError(f"must be an id W1..W14 or a list of them, got {value!r}")
    return tuple(items)


def clauses(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ValueError(f"must be a list of SPEC clause ids, got {value!r}")
    return tuple(value)


def clause(value: Any) -> str:
    if not isinstance(value, str) or not _CLAUSE.match(value):
        raise ValueError(f"must be a SPEC clause id like 'SYNC-1', got {value!r}")
    return value


_CLAUSE = re.compile(r"^[A-Z]+-[0-9]+$")
