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

# -- what a vault can store ---------------------------------------------------------------------
#
# A vault stores BSON and Hive's wire is JSON, so some Python values have no place in it
# (``tests/unstorable.py`` holds the cases, shared with the helper's own checks):
#
# * integers outside signed 64 bits (BSON has int32 and int64; pymongo refuses the rest);
# * NaN and infinities (BSON doubles, but JSON cannot carry them);
# * text with lone surrogates (BSON text is UTF-8, which cannot encode them);
# * field names with NUL (BSON cstrings);
# * more than MAX_NESTING levels of objects and arrays in a stored document, the document
#   itself counted ("MongoDB supports no more than 100 levels of nesting for BSON documents",
#   MongoDB's limits page; the server code allows 180 levels today, maxBSONDepth 200 less 20,
#   so every document kept here is one MongoDB keeps);
# * in documents an update writes, field names starting with "$": MongoDB 4.4, which Hive's
#   deployment runs, refuses them at any depth (``storage_validation.cpp``: "The dollar ($)
#   prefixed field ... is not valid for storage"); 5.0 only refuses them at the top level.
#   Inserts keep 5.0's rules (such names are stored).
#
# These are InvalidParameterError (400): the request, not MongoDB, is at fault.

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_NESTING: Final = 100
"""Levels of objects and arrays a stored document may have, itself included."""
MAX_REQUEST_NESTING: Final = 200
"""Levels any argument (a filter, an update, a projection) may have: MongoDB's maxBSONDepth,
the nesting it accepts in a command at all."""


class _Unstorable(Exception):
    """A value a vault cannot store; ``path`` is filled in (innermost last) on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def _refusal(error: _Unstorable, where: str) -> InvalidParameterError:
    path = "".join(f".{part}" for part in reversed(error.path))
    return InvalidParameterError(f"{where}{path} {error.reason}")


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds an unpaired surrogate code point (UTF-8 cannot encode it)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text_problem(text: str) -> str | None:
    if has_lone_surrogate(text):
        return "holds a lone surrogate, which UTF-8 (and so BSON) cannot encode"
    return None


def _int_problem(value: int) -> str | None:
    if INT64_MIN <= value <= INT64_MAX:
        return None  # never printed below: it may have thousands of digits
    return (
        "is an integer outside the signed 64-bit range a vault stores (-2**63 to 2**63 - 1): "
        f"it has {value.bit_length()} bits"
    )


def _float_problem(value: float) -> str | None:
    if value - value == 0.0:  # finite (NaN and infinities give NaN)
        return None
    return f"is {value!r}, which JSON cannot carry"


def _name_problem(name: str, dollar_names: bool) -> str | None:
    if "\x00" in name:
        return f"has the field name {name!r} with NUL, which BSON field names cannot hold"
    if has_lone_surrogate(name):
        return (
            f"has the field name {name!r} with a lone surrogate, which UTF-8 (and so BSON) "
            "cannot encode"
        )
    if not dollar_names and name[:1] == "$":
        return (
            f"has the field name {name!r} starting with '$', which MongoDB 4.4 (run by Hive "
            "nodes) refuses in a document written by an update"
        )
    return None


def scalar_problem(value: Any) -> str | None:
    """Why a vault cannot store the scalar ``value`` (int, float or str), or None."""
    kind = type(value)
    if kind is str:
        return _text_problem(value)
    if kind is int:
        return _int_problem(value)
    if kind is float:
        return _float_problem(value)
    return None


def clone(
    value: Any,
    room: int = MAX_NESTING,
    where: str = "value",
    *,
    dollar_names: bool = True,
) -> Any:
    """Deep copy of a JSON-like value as plain ``dict``/``list``/scalars (tuples become lists),
    checking that a vault can store it.

    ``room`` is how many levels of objects and arrays the value may have (a document itself
    takes one); ``dollar_names`` False also refuses field names starting with ``$`` (documents
    an update writes). Raises :class:`InvalidParameterError` naming ``where`` and the path for
    keys that are not strings, values of other types, and what a vault cannot store (see
    above).
    """
    try:
        return _clone(value, room, dollar_names)
    except _Unstorable as exc:
        raise _refusal(exc, where) from None


def _clone(value: Any, room: int, dollar_names: bool) -> Any:
    kind = type(value)
    if kind is str:
        if value.isascii():
            return value
        problem = _text_problem(value)
    elif kind is int:
        problem = _int_problem(value)
    elif kind is float:
        problem = _float_problem(value)
    elif kind is bool or value is None or kind is ObjectId:
        return value
    elif kind is dict or kind is list or kind is tuple or isinstance(value, Mapping):
        if room <= 0:
            raise _Unstorable(
                f"nests deeper than the {MAX_NESTING} levels a vault stores in a document"
            )
        if kind is list or kind is tuple:
            items: list[Any] = []
            for index, item in enumerate(value):
                try:
                    items.append(_clone(item, room - 1, dollar_names))
                except _Unstorable as exc:
                    exc.path.append(str(index))
                    raise
            return items
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidParameterError(f"field names must be strings, got {key!r}")
            if not key.isascii() or key[:1] == "$" or "\x00" in key:
                problem = _name_problem(key, dollar_names)
                if problem is not None:
                    raise _Unstorable(problem)
            try:
                out[key] = _clone(item, room - 1, dollar_names)
            except _Unstorable as exc:
                exc.path.append(key)
                raise
        return out
    # Subclasses (enum members, ...) become the plain value they stand for.
    elif isinstance(value, bool):
        return bool(value)
    elif isinstance(value, int):
        return _clone(int(value), room, dollar_names)
    elif isinstance(value, float):
        return _clone(float(value), room, dollar_names)
    elif isinstance(value, str):
        return _clone(str.__str__(value), room, dollar_names)
    else:
        raise InvalidParameterError(f"unsupported value of type {kind.__name__}: {value!r}")
    if problem is not None:
        raise _Unstorable(problem)
    return value


def nesting(value: Any) -> int:
    """Levels of objects and arrays in ``value`` (0 for a scalar; stops counting past
    :data:`MAX_REQUEST_NESTING`)."""
    return _nesting(value, MAX_REQUEST_NESTING + 1)


def _nesting(value: Any, limit: int) -> int:
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return 0
    if limit <= 0:
        return 1
    return 1 + max((_nesting(item, limit - 1) for item in items), default=0)


def check_wire(value: Any, where: str, room: int = MAX_REQUEST_NESTING) -> None:
    """Refuse what no client can send a vault inside an argument such as a filter: integers
    beyond 64 bits, NaN and infinities, lone surrogates in text or field names, NUL in field
    names, nesting deeper than ``room`` levels (the argument itself counted). Field names
    starting with ``$`` are operators here, and compiled regular expressions are accepted."""
    try:
        _check_wire(value, room)
    except _Unstorable as exc:
        raise _refusal(exc, where) from None


def _check_wire(value: Any, room: int) -> None:
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if room <= 0:
            raise _Unstorable(
                f"nests deeper than the {MAX_REQUEST_NESTING} levels a vault accepts in a request"
            )
        if kind is dict:
            for key, item in value.items():
                if type(key) is str and (not key.isascii() or "\x00" in key):
                    problem = _name_problem(key, True)
                    if problem is not None:
                        raise _Unstorable(problem)
                if type(item) is str and item.isascii():
                    continue
                try:
                    _check_wire(item, room - 1)
                except _Unstorable as exc:
                    exc.path.append(str(key))
                    raise
        else:
            for index, item in enumerate(value):
                if type(item) is str and item.isascii():
                    continue
                try:
                    _check_wire(item, room - 1)
                except _Unstorable as exc:
                    exc.path.append(str(index))
                    raise
        return
    if kind is str or kind is int or kind is float:
        problem = scalar_problem(value)
        if problem is not None:
            raise _Unstorable(problem)
    elif isinstance(value, Mapping):
        _check_wire(dict(value), room)


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
