"""Checks of what the app passes in: keys, context names and entry data."""

from __future__ import annotations

import json
import math
from typing import Any

from brh.errors import InvalidArgumentError
from brh.wire import CONTEXT_NAME, MAX_DOCUMENT_BYTES

__all__ = ["MAX_KEY_LENGTH", "check_context_name", "check_key", "encode_data"]

MAX_KEY_LENGTH = 1024
_DOCUMENT_OVERHEAD = 1024  # bytes our fields and the vault's add around ``data``
_MAX_DEPTH = 200
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""``json.dumps(data, ensure_ascii=False, separators=(",", ":"))`` without a new encoder a call."""


def check_key(key: object) -> None:
    """A key is a non-empty string of at most 1024 characters without NUL."""
    if not isinstance(key, str):
        raise InvalidArgumentError("key", f"must be a str, got {type(key).__name__} {key!r}")
    if not key:
        raise InvalidArgumentError("key", "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(
            "key", f"is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
        )
    if "\x00" in key:
        raise InvalidArgumentError("key", "must not contain NUL characters")


def check_context_name(name: object) -> None:
    """A context name the vault can use in ``backup_<name>``."""
    if not isinstance(name, str) or not CONTEXT_NAME.fullmatch(name):
        raise InvalidArgumentError(
            "name",
            f"{name!r} is not a usable context name: 1 to 100 characters, letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
        )


def encode_data(key: str, data: Any) -> str:
    """The compact JSON of ``data``, after checking it is JSON and fits in a vault document."""
    if not _plain_json(data, 0):
        _check_json(data, "data", 0)  # finds what is wrong and says where (or accepts it)
    encoded = _encode(data)
    size = len(encoded.encode("utf-8")) + len(key.encode("utf-8")) + _DOCUMENT_OVERHEAD
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidArgumentError(
            "data",
            f"encodes to {size} bytes with its key; the vault's document limit is "
            f"{MAX_DOCUMENT_BYTES} bytes (16 MiB)",
        )
    return encoded


def _plain_json(value: Any, depth: int) -> bool:
    """A quick yes for the common case: exact dicts with string keys, lists, strings, ints,
    bools, None and finite floats, not nested too deep. False means "ask _check_json"."""
    kind = type(value)
    if kind is dict:
        if depth >= _MAX_DEPTH:
            return False
        for name, item in value.items():
            if type(name) is not str:
                return False
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue
            if not _plain_json(item, depth + 1):
                return False
        return True
    if kind is list:
        return depth < _MAX_DEPTH and all(_plain_json(item, depth + 1) for item in value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    return kind is float and math.isfinite(value)


def _check_json(value: Any, path: str, depth: int) -> None:
    """Reject what JSON cannot carry faithfully (non-string keys, NaN, sets, objects...)."""
    if depth > _MAX_DEPTH:
        raise InvalidArgumentError("data", f"nests deeper than {_MAX_DEPTH} levels at {path}")
    if value is None or isinstance(value, bool | str | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError("data", f"{path} is {value!r}, which JSON cannot carry")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise InvalidArgumentError(
                    "data", f"{path} has a non-string key {name!r}; JSON object keys are strings"
                )
            _check_json(item, f"{path}[{name!r}]", depth + 1)
        return
    raise InvalidArgumentError(
        "data",
        f"{path} is a {type(value).__name__}, which is not JSON (use dict, list, str, int, "
        "float, bool or None)",
    )
