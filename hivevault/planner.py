"""The query planner: what a request's filter tells the indexes, worked out once.

A filter is compiled into a predicate (:func:`hivevault.mongo.compile_filter`) together with
the three facts the indexes of :mod:`hivevault.collection` can use: the strings the top-level
``key`` of every match must be one of, a lower bound that the ``(modified, _id)`` of every match
is past (strict for ``$gt``; a keyset page's ``$or`` bounds the ``_id`` too), and a lower bound
on the ``_id`` of every match (a keyset page by ``_id`` alone). Each may be unknown (None); the
predicate always decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from brh.vault import ObjectId
from hivevault import mongo
from hivevault.arguments import check_mapping

__all__ = [
    "AT_BOUND",
    "PAST_BOUND",
    "PLAN_CACHE_SIZE",
    "Low",
    "Number",
    "Plan",
    "compile_plan",
    "id_low",
    "simple_key",
]

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


AT_BOUND = ""
"""Second part of a :data:`Low` that admits the bound itself (``$gte``, ``$eq``): below every
``_id`` hex."""
PAST_BOUND = "~"
"""Second part of a :data:`Low` that excludes the bound (``$gt``): above every ``_id`` hex (24
lowercase hex digits)."""

Low = tuple[Number, str]
"""A keyset lower bound ``(n, s)`` on ``(modified, _id hex)``: every match has a top-level
``modified`` that is a number or an array holding one, and

* if it is a number ``m``: ``(m, _id hex) > (n, s)``, comparing ``m`` and ``n`` as numbers and
  ``s`` as a string, so ``(n, AT_BOUND)`` is ``modified >= n``, ``(n, PAST_BOUND)`` is
  ``modified > n``, and ``(n, h)`` is "after ``(n, h)``" (a keyset page's ``$or``);
* if it is an array: its largest number is at least ``n``.

Bounds compare as tuples: the larger is the tighter (both parts are ordered as the index is)."""


_Bound = TypeVar("_Bound", Low, str)


def _tightened(
    filter: Mapping[str, Any],
    low: _Bound | None,
    bound_of: Callable[[Mapping[str, Any]], _Bound | None],
) -> _Bound | None:
    """``low`` (a document's own lower bound, or None) tightened by ``filter``'s ``$and``
    clauses (the largest of their bounds: each must hold) and ``$or`` branches (the smallest,
    if each has one: one must hold), each bound found by ``bound_of``."""
    if "$and" in filter:
        for clause in filter["$and"]:
            found = bound_of(clause)
            if found is not None and (low is None or found > low):
                low = found
    if "$or" in filter:
        lowest: _Bound | None = None
        for branch in filter["$or"]:
            found = bound_of(branch)
            if found is None:
                break
            if lowest is None or found < lowest:
                lowest = found
        else:
            if lowest is not None and (low is None or lowest > low):
                low = lowest
    return low


def _low(filter: Mapping[str, Any]) -> Low | None:
    """A :data:`Low` that every match of ``filter`` is past, or None.

    From ``{"modified": n}`` and ``{"modified": {"$gte"|"$gt"|"$eq": n}}`` (n an exact int or
    float, not NaN); with an equality on ``modified`` and ``{"_id": {"$gt": ObjectId}}`` in the
    same document, past that ``(modified, _id)``. The largest over ``$and`` clauses and over the
    conditions of one document; the smallest over ``$or`` branches if each has one. ``filter``
    has already been compiled, hence validated.
    """
    low: Low | None = None
    if "modified" in filter:
        condition = filter["modified"]
        kind = type(condition)
        equal: Number | None = None
        if kind is int or kind is float:  # _is_number, inlined (this runs for every request)
            if condition == condition:
                low = (condition, AT_BOUND)
                equal = condition
        elif _is_operators(condition):
            for op, past in (("$gt", PAST_BOUND), ("$gte", AT_BOUND), ("$eq", AT_BOUND)):
                value = condition.get(op, condition)  # the condition itself: absent
                if (type(value) is int or type(value) is float) and value == value:
                    bound = (value, past)
                    low = bound if low is None or bound > low else low
                    if op == "$eq":
                        equal = value
        if equal is not None and "_id" in filter:
            # Every match whose modified is a number has modified == equal (arrays keep the
            # bound on their largest number), so its (modified, _id) is past (equal, after).
            id_condition = filter["_id"]
            if _is_operators(id_condition):
                after = id_condition.get("$gt")
                if type(after) is ObjectId:
                    bound = (equal, after.hex)
                    low = bound if low is None or bound > low else low
    return _tightened(filter, low, _low)


def id_low(filter: Mapping[str, Any]) -> str | None:
    """A string that the ``_id`` hex of every match of ``filter`` is at least, or None.

    From ``{"_id": oid}`` and ``{"_id": {"$gte"|"$eq": oid}}`` (the hex itself) and
    ``{"_id": {"$gt": oid}}`` (the hex followed by :data:`PAST_BOUND`: above it and below every
    larger hex), ``oid`` an :class:`ObjectId` (every stored ``_id`` is one; a comparison with
    another type bounds nothing). The largest over ``$and`` clauses and over the conditions of
    one document; the smallest over ``$or`` branches if each has one. ``filter`` has already
    been compiled, hence validated.
    """
    low: str | None = None
    if "_id" in filter:
        condition = filter["_id"]
        if type(condition) is ObjectId:
            low = condition.hex
        elif _is_operators(condition):
            for op, past in (("$gt", PAST_BOUND), ("$gte", AT_BOUND), ("$eq", AT_BOUND)):
                value = condition.get(op)
                if type(value) is ObjectId and (low is None or value.hex + past > low):
                    low = value.hex + past
    return _tightened(filter, low, id_low)


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

    __slots__ = ("id_low", "keys", "low", "predicate")

    def __init__(self, filter: Mapping[str, Any]) -> None:
        self.predicate = mongo.compile_filter(filter)  # validates first
        self.keys = _key_set(filter)
        """Strings one of which every match's top-level ``key`` equals (None: unknown)."""
        self.low = _low(filter)
        """A keyset lower bound on every match's ``(modified, _id)`` (None: unknown)."""
        self.id_low = id_low(filter)
        """A string every match's ``_id`` hex is at least (None: unknown)."""


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
