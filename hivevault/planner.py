"""The query planner: what a request's filter tells the indexes, worked out once.

A filter is compiled into a predicate (:func:`hivevault.mongo.compile_filter`) together with
the two facts the indexes of :mod:`hivevault.collection` can use: the strings the top-level
``key`` of every match must be one of, and a number the top-level ``modified`` of every match
reaches. Either may be unknown (None); the predicate always decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hivevault import mongo
from hivevault.arguments import check_mapping

__all__ = ["PLAN_CACHE_SIZE", "Number", "Plan", "compile_plan", "simple_key"]

Number = int | float


def _is_operators(value: Any) -> bool:
    """True for a non-empty document of ``$`` operators (as the filter compiler decides)."""
    return mongo.is_document(value) and bool(value) and str(next(iter(value))).startswith("$")


def _key_set(filter: Mapping[str, Any]) -> set[str] | None:
    """Strings, one of which the top-level ``key`` of every match must equal, or None.

    "Equal" as a filter means it: ``key`` is the string or an array holding it. From
    ``{"key": "k"}``, ``{"key": {"$eq": "k", ...}}`` and ``{"key": {"$in": [strings]}}``; the
    smallest of the sets of ``$and`` clauses (not their intersection: ``["a", "b"]`` matches
    both ``{"key": "a"}`` and ``{"key": "b"}``), and the union over ``$or`` branches if each has
    one. ``filter`` has already been compiled, hence validated (``$and`` and ``$or`` hold
    non-empty lists of documents).
    """
    found: set[str] | None = None
    if "key" in filter:
        condition = filter["key"]
        if type(condition) is str:
            found = {condition}
        elif _is_operators(condition):
            eq = condition.get("$eq", mongo.MISSING)
            values = condition.get("$in", mongo.MISSING)
            if type(eq) is str:
                found = {eq}
            elif isinstance(values, (list, tuple)) and all(type(v) is str for v in values):
                found = set(values)
    if "$and" in filter:
        for clause in filter["$and"]:
            keys = _key_set(clause)
            if keys is not None and (found is None or len(keys) < len(found)):
                found = keys
    if "$or" in filter:
        union: set[str] = set()
        for branch in filter["$or"]:
            keys = _key_set(branch)
            if keys is None:
                break
            union |= keys
        else:
            if found is None or len(union) < len(found):
                found = union
    return found


def _modified_bound(filter: Mapping[str, Any]) -> Number | None:
    """A number that the top-level ``modified`` of every match reaches, or None.

    From ``{"modified": {"$gte"|"$gt"|"$eq": n}}`` and ``{"modified": n}`` (n an exact int or
    float, not NaN), the largest over ``$and`` clauses, the smallest over ``$or`` branches if
    each has one. ``filter`` has already been compiled, hence validated.
    """
    bound: Number | None = None
    if "modified" in filter:
        condition = filter["modified"]
        kind = type(condition)
        if kind is int or kind is float:  # _is_number, inlined (this runs for every request)
            if condition == condition:
                bound = condition
        elif _is_operators(condition):
            for op in ("$gt", "$gte", "$eq"):
                value = condition.get(op, condition)  # the condition itself: absent
                if (type(value) is int or type(value) is float) and value == value:
                    bound = value if bound is None else max(bound, value)
    if "$and" in filter:
        for clause in filter["$and"]:
            found = _modified_bound(clause)
            if found is not None:
                bound = found if bound is None else max(bound, found)
    if "$or" in filter:
        lowest: Number | None = None
        for branch in filter["$or"]:
            found = _modified_bound(branch)
            if found is None:
                break
            lowest = found if lowest is None else min(lowest, found)
        else:
            if lowest is not None:
                bound = lowest if bound is None else max(bound, lowest)
    return bound


# -- compiled filters -----------------------------------------------------------------------------
#
# A request's filter is compiled once into a predicate, and what the indexes need to know about it
# is worked out with it. Most filters are not worth caching (a helper's pull names its cursor
# and the versions of its overlap window, a push the version it replaces): keying and keeping
# them cost more than compiling. The single-condition ones are, and repeat: a quiet helper polls
# with the same ``{"modified": {"$gt": cursor}}`` until something changes, and reads or writes
# ``{"key": k}`` over a bounded key space. Those plans are kept, per vault, under a cheap key.

PLAN_CACHE_SIZE = 256
"""Simple plans a vault keeps (it forgets them all when full: no bookkeeping on a hit)."""


class Plan:
    """A compiled filter and what the indexes need to know about it."""

    __slots__ = ("bound", "keys", "predicate")

    def __init__(self, filter: Mapping[str, Any]) -> None:
        self.predicate = mongo.compile_filter(filter)  # validates first
        self.keys = _key_set(filter)
        self.bound = _modified_bound(filter)


def compile_plan(filter: Any) -> Plan:
    """The plan of a request's filter; :class:`InvalidParameterError` if not a document, or if
    it holds what no client can send (:func:`hivevault.mongo.check_wire`)."""
    mongo.check_wire(check_mapping(filter, "filter"), "filter")
    return Plan(filter)


def simple_key(filter: Any) -> tuple[Any, ...] | None:
    """A cache key for a one-condition filter, ``{field: string}`` or ``{field: {op: value}}``
    with a string or a number (not NaN) as value, or None for any other filter.

    The value's type is part of the key (``1``, ``1.0`` and ``True`` are equal in Python but not
    for MongoDB)."""
    if type(filter) is not dict or len(filter) != 1:
        return None
    ((field, condition),) = filter.items()
    kind = type(condition)
    if kind is str:
        return (field, condition)
    if kind is dict and len(condition) == 1:
        ((op, value),) = condition.items()
        kind = type(value)
        if kind is str or ((kind is int or kind is float) and value == value):
            return (field, op, value, kind)
    return None
