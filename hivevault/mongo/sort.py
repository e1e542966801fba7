"""Sorting: ordering documents by one or more fields as MongoDB does."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from brh.vault import ObjectId, ServerError
from hivevault.mongo.paths import _lookup, _split
from hivevault.mongo.values import (
    _EMPTY_ARRAY,
    _NUMBER,
    _OBJECTID,
    _STRING,
    MISSING,
    Document,
    _token,
    is_document,
)


class _Descending:
    """Wraps a sort token so that it orders in reverse (for mixed-direction sorts)."""

    __slots__ = ("token",)

    def __init__(self, token: tuple[Any, ...]) -> None:
        self.token = token

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.token < self.token)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and bool(self.token == other.token)


def _parse_sort(spec: Sequence[tuple[str, int]] | Mapping[str, int]) -> list[tuple[Any, int]]:
    items = list(spec.items()) if is_document(spec) else spec
    if not isinstance(items, (list, tuple)):
        raise ServerError(f"bad sort specification: {spec!r}")
    fields = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ServerError(f"bad sort specification: {item!r}")
        path, direction = item
        if type(direction) is not int or direction not in (1, -1):
            raise ServerError(f"bad sort specification: direction of {path!r} must be 1 or -1")
        fields.append((_split(path, "sort"), direction))
    return fields


def sort_paths(spec: Sequence[tuple[str, int]] | Mapping[str, int]) -> list[tuple[Any, int]]:
    """``spec`` checked, as ``[(path parts, 1 | -1), ...]``; :class:`ServerError` if malformed
    (what :func:`sort_documents` checks first)."""
    return _parse_sort(spec)


def ascending_token(value: Any) -> tuple[Any, ...]:
    """What an ascending sort on a top-level field orders a document by when the field holds
    ``value`` (:data:`MISSING` when absent): a natively comparable tuple, in MongoDB's order
    (an array by its smallest element; an empty array before null)."""
    kind = type(value)
    if kind is str:
        return (_STRING, value)
    if (kind is int or kind is float) and value == value:
        return (_NUMBER, 1, value)
    if kind is ObjectId:
        return (_OBJECTID, value.hex)
    if kind is not list:
        return _token(value)
    if not value:
        return (_EMPTY_ARRAY,)
    return min([_token(element) for element in value])


def ascending_key(value: Any, last: Any) -> tuple[Any, ...]:
    """:func:`ascending_token` of ``value`` with ``last`` appended, flat: such keys order as the
    pairs ``(token, last)`` would (tokens of one BSON class have one length), and compare
    faster."""
    kind = type(value)
    if (kind is int or kind is float) and value == value:
        return (_NUMBER, 1, value, last)
    return (*ascending_token(value), last)


def _sort_token(doc: Mapping[str, Any], parts: tuple[str, ...], descending: bool) -> Any:
    if len(parts) == 1:
        value = doc.get(parts[0], MISSING)
        kind = type(value)
        if kind is str:
            return (_STRING, value)
        if (kind is int or kind is float) and value == value:
            return (_NUMBER, 1, value)
        if kind is ObjectId:
            return (_OBJECTID, value.hex)
        if kind is not list:
            return _token(value)
        if not descending:
            return ascending_token(value)
        candidates = [value]
    else:
        candidates = []
        _lookup(doc, parts, 0, candidates)
    tokens: list[tuple[Any, ...]] = []
    for candidate in candidates:
        if type(candidate) is list:
            tokens.extend(_token(element) for element in candidate)
        else:
            tokens.append(_token(candidate))
    if not tokens:  # only empty arrays: they sort before null
        return (_EMPTY_ARRAY,)
    return max(tokens) if descending else min(tokens)


def sort_key(spec: Sequence[tuple[str, int]] | Mapping[str, int]) -> Callable[[Any], Any]:
    """A ``key=`` function ordering documents by ``[(field, 1 | -1), ...]`` as MongoDB does."""
    fields = _parse_sort(spec)

    def key(doc: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            _sort_token(doc, parts, False) if d == 1 else _Descending(_sort_token(doc, parts, True))
            for parts, d in fields
        )

    return key


def sort_documents(
    docs: Sequence[Document], spec: Sequence[tuple[str, int]] | Mapping[str, int]
) -> list[Document]:
    """``docs`` in ``spec`` order; stable (ties keep their given order); no copies are made."""
    fields = _parse_sort(spec)
    if not fields:
        return list(docs)
    direction = fields[0][1]
    if any(d != direction for _, d in fields):
        return sorted(docs, key=sort_key(spec))
    descending = direction == -1
    if len(fields) == 1:
        parts = fields[0][0]
        return sorted(docs, key=lambda d: _sort_token(d, parts, descending), reverse=descending)
    paths = [parts for parts, _ in fields]
    return sorted(
        docs,
        key=lambda d: tuple([_sort_token(d, parts, descending) for parts in paths]),
        reverse=descending,
    )
