"""Checks of what the app passes in: keys, context names and entry data.

Data must be something a Hive vault can store, since the helper writes it into a vault document
with ``{"$set": {"key": ..., "data": ..., ...}}`` over JSON. What that rules out, and why:

* integers outside signed 64 bits (BSON has int32 and int64 only; pymongo refuses larger ones);
* NaN and infinities (BSON doubles, but JSON, the wire to the node, cannot carry them);
* lone surrogates in strings or field names (BSON text is UTF-8, which cannot encode them);
* NUL in field names (BSON field names are NUL-terminated cstrings; string values may hold NUL);
* field names starting with ``$``, at any depth: MongoDB 4.4, which Hive's deployment runs,
  refuses them in a document written by an update ("The dollar ($) prefixed field ... is not
  valid for storage", ``storage_validation.cpp``). MongoDB 5.0 accepts them below the top level;
  dotted names are stored by both and are accepted here;
* more than :data:`MAX_DATA_NESTING` levels of objects and arrays: MongoDB's limits page allows
  100 levels of nesting in a document, counting the document itself, and ``data`` is one of its
  fields;
* an entry whose document would exceed 16 MiB.
"""

from __future__ import annotations

import json
import math
from typing import Any

from brh.errors import InvalidArgumentError
from brh.wire import CONTEXT_NAME, MAX_DOCUMENT_BYTES

__all__ = [
    "MAX_DATA_NESTING",
    "MAX_KEY_LENGTH",
    "check_context_name",
    "check_key",
    "encode_data",
]

MAX_KEY_LENGTH = 1024
MAX_DATA_NESTING = 99
"""Levels of objects and arrays ``data`` may have: with the document around it, MongoDB's 100."""

_DOCUMENT_OVERHEAD = 1024  # bytes our fields and the vault's add around ``data``
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""``json.dumps(data, ensure_ascii=False, separators=(",", ":"))`` without a new encoder a call."""


def _has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a surrogate code point (UTF-8, hence BSON, cannot encode it)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_key(key: object) -> None:
    """A key is a non-empty string of at most 1024 characters without NUL or lone surrogates."""
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
    if _has_lone_surrogate(key):
        raise InvalidArgumentError(
            "key",
            f"{key!r} holds a lone surrogate, which UTF-8 (and so a vault) cannot encode",
        )


def check_context_name(name: object) -> None:
    """A context name the vault can use in ``backup_<name>``."""
    if not isinstance(name, str) or not CONTEXT_NAME.fullmatch(name):
        raise InvalidArgumentError(
            "name",
            f"{name!r} is not a usable context name: 1 to 100 characters, letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
        )


def encode_data(key: str, data: Any) -> str:
    """The compact JSON of ``data``, after checking that a vault can store it (see the module
    docstring); :class:`InvalidArgumentError` naming ``data`` and where the problem is."""
    if not _plain_json(data, MAX_DATA_NESTING):
        _check_json(data, "data", MAX_DATA_NESTING)  # says what is wrong and where (or accepts)
    encoded = _encode(data)
    size = len(encoded.encode("utf-8")) + len(key.encode("utf-8")) + _DOCUMENT_OVERHEAD
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidArgumentError(
            "data",
            f"encodes to {size} bytes with its key; the vault's document limit is "
            f"{MAX_DOCUMENT_BYTES} bytes (16 MiB)",
        )
    return encoded


def _plain_json(value: Any, room: int) -> bool:
    """A quick yes for the common case: exact dicts with plain string keys, lists, ASCII strings,
    64-bit ints, bools, None and finite floats, within ``room`` levels. False means "ask
    _check_json" (which also accepts what this cannot vouch for cheaply)."""
    kind = type(value)
    if kind is dict:
        if room <= 0:
            return False
        for name, item in value.items():
            if type(name) is not str or not name.isascii() or name[:1] == "$" or "\x00" in name:
                return False
            kind = type(item)
            if kind is str:
                if not item.isascii():
                    return False
            elif kind is int:
                if not _INT64_MIN <= item <= _INT64_MAX:
                    return False
            elif not (kind is bool or item is None or _plain_json(item, room - 1)):
                return False
        return True
    if kind is list:
        return room > 0 and all(_plain_json(item, room - 1) for item in value)
    if kind is str:
        return bool(value.isascii())
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    if kind is bool or value is None:
        return True
    return kind is float and math.isfinite(value)


def _check_json(value: Any, path: str, room: int) -> None:
    """Refuse what JSON cannot carry faithfully or a vault cannot store (module docstring)."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if _has_lone_surrogate(value):
            raise InvalidArgumentError(
                "data", f"{path} holds a lone surrogate, which UTF-8 (and so a vault) cannot encode"
            )
        return
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:  # never printed: it may have 10,000 digits
            raise InvalidArgumentError(
                "data",
                f"{path} is an integer outside the signed 64-bit range a vault stores "
                f"(-2**63 to 2**63 - 1): it has {value.bit_length()} bits",
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError("data", f"{path} is {value!r}, which JSON cannot carry")
        return
    if isinstance(value, list | dict) and room <= 0:
        raise InvalidArgumentError(
            "data",
            f"nests deeper than {MAX_DATA_NESTING} levels at {path}; with the document around "
            "it that exceeds the 100 levels a vault (MongoDB) stores",
        )
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", room - 1)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            _check_name(name, path)
            _check_json(item, f"{path}[{name!r}]", room - 1)
        return
    raise InvalidArgumentError(
        "data",
        f"{path} is a {type(value).__name__}, which is not JSON (use dict, list, str, int, "
        "float, bool or None)",
    )


def _check_name(name: Any, path: str) -> None:
    """A field name inside ``data`` (see the module docstring for each rule)."""
    if not isinstance(name, str):
        raise InvalidArgumentError(
            "data", f"{path} has a non-string key {name!r}; JSON object keys are strings"
        )
    if "\x00" in name:
        raise InvalidArgumentError(
            "data",
            f"{path} has the field name {name!r} with NUL, which BSON field names cannot hold",
        )
    if _has_lone_surrogate(name):
        raise InvalidArgumentError(
            "data",
            f"{path} has the field name {name!r} with a lone surrogate, which UTF-8 (and so a "
            "vault) cannot encode",
        )
    if name.startswith("$"):
        raise InvalidArgumentError(
            "data",
            f"{path} has the field name {name!r} starting with '$', which MongoDB 4.4 (run by "
            "Hive nodes) refuses in a document written by an update",
        )
