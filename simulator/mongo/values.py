"""BSON-like values: MongoDB's cross-type order, comparison, exact equality and deep copies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from brh.vault import InvalidParameterError, ObjectId

Document = dict[str, Any]


class _Missing:
    """The value of a path that is not in the document (sorts and compares like null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

_NOT_MAPPINGS: Final = frozenset({str, int, float, bool, type(None), list, tuple, ObjectId})
"""Types that are never a ``Mapping`` (an ``isinstance`` test against the ABC costs more)."""

# BSON comparison classes, in MongoDB's cross-type order (0 would be MinKey).
_EMPTY_ARRAY, _NULL, _NUMBER, _STRING, _OBJECT, _ARRAY, _OBJECTID, _BOOL, _REGEX = range(1, 10)
_RANKS: Final[dict[type, int]] = {
    str: _STRING,
    int: _NUMBER,
    float: _NUMBER,
    bool: _BOOL,
    type(None): _NULL,
    _Missing: _NULL,
    dict: _OBJECT,
    list: _ARRAY,
    tuple: _ARRAY,
    ObjectId: _OBJECTID,
    re.Pattern: _REGEX,
}


def is_document(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """True for a ``dict`` or any other ``Mapping`` (the fast tests first)."""
    kind = type(value)
    return kind is dict or (kind not in _NOT_MAPPINGS and isinstance(value, Mapping))


def _rank(value: Any) -> int:
    rank = _RANKS.get(type(value))
    if rank is not None:
        return rank
    for kind, kind_rank in (
        (bool, _BOOL),
        (int, _NUMBER),
        (float, _NUMBER),
        (str, _STRING),
        (Mapping, _OBJECT),
        (list, _ARRAY),
        (tuple, _ARRAY),
    ):
        if isinstance(value, kind):
            return kind_rank
    raise InvalidParameterError(f"unsupported value of type {type(value).__name__}: {value!r}")


def _token(value: Any) -> tuple[Any, ...]:
    """A natively comparable, hashable stand-in for ``value`` that follows BSON order."""
    rank = _rank(value)
    if rank == _NUMBER:
        return (rank, 0, 0) if value != value else (rank, 1, value)  # NaN sorts first
    if rank in (_STRING, _BOOL):
        return (rank, value)
    if rank == _NULL:
        return (rank,)
    if rank == _OBJECT:
        pairs = []
        for key, item in value.items():
            token = _token(item)
            pairs.append((token[0], key, token))  # field type, then name, then value
        return (rank, tuple(pairs))
    if rank == _ARRAY:
        return (rank, tuple(_token(item) for item in value))
    if rank == _OBJECTID:
        return (rank, value.hex)
    return (rank, value.pattern, value.flags)


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: MongoDB's order of two values, across types."""
    ta, tb = _token(a), _token(b)
    return (ta > tb) - (ta < tb)


def identical(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` are the same BSON value: same types and field order (1 != 1.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return len(a) == len(b) and all(
            ka == kb and identical(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if type(a) is list:
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (type(a) is float and a != a and b != b)


_SCALARS: Final = frozenset({str, int, float, bool, type(None), ObjectId})


def clone(value: Any) -> Any:
    """Deep copy of a JSON-like value as plain ``dict``/``list``/scalars (tuples become lists).

    Raises :class:`InvalidParameterError` for keys that are not strings and for values of other
    types (they have no JSON encoding).
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidParameterError(f"field names must be strings, got {key!r}")
            out[key] = clone(item)
        return out
    if kind is list or kind is tuple:
        return [clone(item) for item in value]
    # Subclasses (enum members, ...) become the plain value they stand for.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    raise InvalidParameterError(f"unsupported value of type {kind.__name__}: {value!r}")


def copy_value(value: Any) -> Any:
    """Fast deep copy of the dicts and lists in an already-cloned value (no checks).

    Tuples become lists; every other value is immutable and shared.
    """
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _SCALARS else copy_value(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else copy_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: copy_value(v) for k, v in value.items()}
    return value
