"""A small, pure evaluator of MongoDB query, update, sort and projection semantics.

The fake vault (:mod:`simulator.vault`) stores JSON-like documents (``dict``, ``list``, ``str``,
``int``, ``float``, ``bool``, ``None`` and :class:`~brh.vault.ObjectId`) and uses this module to
answer filters, updates, sorts and projections the way MongoDB does. Everything here is
deterministic, does no I/O, and never mutates its inputs: functions that build documents return
fresh deep copies (:func:`sort_documents` is the exception: it reorders the given objects).

Why not ``mongomock``: on this 2-core machine mongomock 4.3 took 83-105 ms for a
``find({"modified": {"$gte": X}})`` + sort over 10,000 documents and 1.1-1.4 ms over 100 (under
1,000 requests/s, far below the simulator's 20,000 requests/s); this evaluator, which compiles a
filter once into closures, takes 2-2.7 ms and 0.1-0.16 ms for the same queries.


Rules implemented (MongoDB 5.0+):

* Paths are dotted; a path through an array visits the embedded documents in it (``"a.b"``
  matches ``{"a": [{"b": 1}]}``), a numeric component indexes an array.
* Equality on an array field matches the whole array or any element; embedded documents compare
  field by field *in order*; ``{f: None}`` matches a missing ``f``; ``$ne: None`` excludes it.
* Comparisons bracket by type: ``$gt``/``$lt``/... only match values of the operand's BSON class
  (``int`` and ``float`` are one class, ``bool`` is not a number).
* Cross-type order (sort, ``$min``/``$max``): null/missing < numbers < strings < objects <
  arrays < ObjectId < bool; a sort on an array field uses its smallest element ascending and its
  largest descending; an empty array sorts before null.
* Invalid input (unknown ``$operator``, malformed argument) raises :class:`~brh.vault.ServerError`
  because Hive surfaces MongoDB's rejections as HTTP 500; values of unsupported Python types raise
  :class:`~brh.vault.InvalidParameterError` (they could not be sent as JSON at all).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeGuard

from brh.vault import InvalidParameterError, ObjectId, ServerError

__all__ = [
    "MISSING",
    "apply_update",
    "clone",
    "compare",
    "compile_filter",
    "compile_projection",
    "copy_value",
    "identical",
    "is_document",
    "matches",
    "project",
    "sort_documents",
    "sort_key",
    "upsert_seed",
]

Document = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]
ValuePredicate = Callable[[list[Any]], bool]
Test = Callable[[Any], bool]


class _Missing:
    """The value of a path that is not in the document (sorts and compares like null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

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
    """True for a ``dict`` or any other ``Mapping`` (the fast test first)."""
    return type(value) is dict or isinstance(value, Mapping)


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


# ---------------------------------------------------------------------------------------------
# Filters


def _lookup(value: Any, parts: tuple[str, ...], i: int, out: list[Any]) -> None:
    """Append to ``out`` every value reached by ``parts[i:]`` (MISSING where nothing is)."""
    if i == len(parts):
        out.append(value)
    elif type(value) is dict:
        item = value.get(parts[i], MISSING)
        if item is MISSING:
            out.append(MISSING)
        else:
            _lookup(item, parts, i + 1, out)
    elif type(value) is list:
        if parts[i].isdigit():
            index = int(parts[i])
            if index < len(value):
                _lookup(value[index], parts, i + 1, out)
            else:
                out.append(MISSING)
            return
        before = len(out)
        for element in value:
            if type(element) is dict:
                _lookup(element, parts, i, out)
        if len(out) == before:
            out.append(MISSING)
    else:
        out.append(MISSING)


def _any_value(test: Test) -> ValuePredicate:
    """Match if ``test`` holds for a candidate or, for an array candidate, any of its elements."""

    def predicate(candidates: list[Any]) -> bool:
        for candidate in candidates:
            if test(candidate):
                return True
            if type(candidate) is list:
                for element in candidate:
                    if test(element):
                        return True
        return False

    return predicate


def _negate(predicate: ValuePredicate) -> ValuePredicate:
    return lambda candidates: not predicate(candidates)


def _all_values(predicates: list[ValuePredicate]) -> ValuePredicate:
    if len(predicates) == 1:
        return predicates[0]

    def predicate(candidates: list[Any]) -> bool:
        return all(p(candidates) for p in predicates)

    return predicate


def _eq_test(value: Any) -> Test:
    kind = type(value)
    if value is None:
        return lambda c: c is None or c is MISSING
    if kind is str or kind is ObjectId:
        return lambda c: bool(c == value)
    if kind is bool:
        return lambda c: c is value
    if (kind is int or kind is float) and value == value:
        return lambda c: (type(c) is int or type(c) is float) and c == value
    rank, token = _rank(value), _token(value)
    return lambda c: c is not MISSING and _rank(c) == rank and _token(c) == token


def _regex(pattern: Any, options: Any) -> re.Pattern[str]:
    if not isinstance(options, str):
        raise ServerError("$options has to be a string")
    flags = 0
    if isinstance(pattern, re.Pattern):
        flags, pattern = pattern.flags, pattern.pattern
    if not isinstance(pattern, str):
        raise ServerError("$regex has to be a string")
    letters = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
    for letter in options:
        if letter not in letters:
            raise ServerError(f"$regex: invalid flag in regex options: {letter}")
        flags |= letters[letter]
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ServerError(f"$regex: invalid regular expression: {exc}") from None


def _regex_test(rx: re.Pattern[str]) -> Test:
    return lambda c: type(c) is str and rx.search(c) is not None


def _is_operator_doc(value: Any) -> bool:
    return is_document(value) and bool(value) and str(next(iter(value))).startswith("$")


def _value_test(value: Any) -> Test:
    """Equality with ``value``, or a regex match when ``value`` is a compiled pattern."""
    return _regex_test(value) if isinstance(value, re.Pattern) else _eq_test(value)


_COMPARATORS: Final = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def _compare_test(op: str, value: Any) -> Test:
    compare_op = _COMPARATORS[op]
    inclusive = op in ("$gte", "$lte")
    if value is None or (type(value) is float and value != value):  # null / NaN: only equality
        return _eq_test(value) if inclusive else (lambda c: False)
    kind = type(value)
    test: Test
    if kind is str:
        test = lambda c: type(c) is str and compare_op(c, value)  # noqa: E731
    elif kind is int or kind is float:
        test = lambda c: (type(c) is int or type(c) is float) and compare_op(c, value)  # noqa: E731
    else:
        rank, token = _rank(value), _token(value)
        test = lambda c: (  # noqa: E731
            c is not MISSING and _rank(c) == rank and compare_op(_token(c), token)
        )
    return test


def _in_test(values: Any, op: str) -> Test:
    if not isinstance(values, (list, tuple)):
        raise ServerError(f"{op} needs an array")
    strings: set[str] = set()
    numbers: set[int | float] = set()
    others: list[Test] = []
    for value in values:
        if _is_operator_doc(value):
            raise ServerError(f"cannot nest $ under {op}")
        if type(value) is str:
            strings.add(value)
        elif (type(value) is int or type(value) is float) and value == value:
            numbers.add(value)
        else:
            others.append(_value_test(value))

    def test(c: Any) -> bool:
        kind = type(c)
        if (kind is str and c in strings) or ((kind is int or kind is float) and c in numbers):
            return True
        return any(t(c) for t in others)

    return test


def _integer(value: Any, what: str) -> int:
    if type(value) is int or (type(value) is float and value.is_integer()):
        return int(value)
    raise ServerError(f"{what} must be an integer, got {value!r}")


_TYPE_CODES: Final = {
    1: "double", 2: "string", 3: "object", 4: "array", 5: "binData", 6: "undefined",
    7: "objectId", 8: "bool", 9: "date", 10: "null", 11: "regex", 12: "dbPointer",
    13: "javascript", 14: "symbol", 15: "javascriptWithScope", 16: "int", 17: "timestamp",
    18: "long", 19: "decimal", -1: "minKey", 127: "maxKey",
}  # fmt: skip
_TYPE_TESTS: Final[dict[str, Test]] = {
    "double": lambda v: type(v) is float,
    "string": lambda v: type(v) is str,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "objectId": lambda v: type(v) is ObjectId,
    "bool": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "regex": lambda v: isinstance(v, re.Pattern),
    "int": lambda v: type(v) is int and -(2**31) <= v < 2**31,
    "long": lambda v: type(v) is int and not -(2**31) <= v < 2**31,
    "number": lambda v: type(v) is int or type(v) is float,
}


def _type_test(spec: Any) -> Test:
    tests = []
    for item in spec if isinstance(spec, (list, tuple)) else [spec]:
        name = item if isinstance(item, str) else _TYPE_CODES.get(_integer(item, "$type code"))
        if name in _TYPE_TESTS:
            tests.append(_TYPE_TESTS[name])
        elif name not in _TYPE_CODES.values():  # real BSON types no JSON value has: never match
            raise ServerError(f"$type: unknown type name alias: {item!r}")
    return lambda c: any(t(c) for t in tests)


def _elem_match_predicate(spec: Any) -> ValuePredicate:
    if not is_document(spec):
        raise ServerError("$elemMatch needs an object")
    element_test: Test
    if spec and all(k.startswith("$") and k not in ("$and", "$or", "$nor") for k in spec):
        inner = _operators_predicate(spec)
        element_test = lambda e: inner([e])  # noqa: E731
    else:
        query = compile_filter(spec)
        element_test = lambda e: type(e) is dict and query(e)  # noqa: E731
    return lambda cands: any(type(c) is list and any(map(element_test, c)) for c in cands)


def _all_predicate(values: Any) -> ValuePredicate:
    if not isinstance(values, (list, tuple)):
        raise ServerError("$all needs an array")
    if not values:
        return lambda candidates: False
    parts = []
    for value in values:
        if is_document(value) and list(value) == ["$elemMatch"]:
            parts.append(_elem_match_predicate(value["$elemMatch"]))
        elif _is_operator_doc(value):
            raise ServerError("$all: no $ expressions allowed except $elemMatch")
        else:
            parts.append(_any_value(_value_test(value)))
    return _all_values(parts)


def _size_predicate(size: Any) -> ValuePredicate:
    n = _integer(size, "$size")
    if n < 0:
        raise ServerError("$size may not be negative")
    return lambda cands: any(type(c) is list and len(c) == n for c in cands)


def _not_predicate(spec: Any) -> ValuePredicate:
    if isinstance(spec, re.Pattern):
        return _negate(_any_value(_regex_test(spec)))
    if not _is_operator_doc(spec):
        raise ServerError("$not needs a regex or a non-empty document of operators")
    return _negate(_operators_predicate(spec))


def _exists_predicate(flag: Any) -> ValuePredicate:
    if flag:
        return lambda cands: any(c is not MISSING for c in cands)
    return lambda cands: all(c is MISSING for c in cands)


# Operators that hold for a field when their test holds for its value or one of its elements.
_ELEMENT_OPERATORS: Final[dict[str, Callable[[Any, Mapping[str, Any]], Test]]] = {
    "$eq": lambda arg, ops: _eq_test(arg),
    "$gt": lambda arg, ops: _compare_test("$gt", arg),
    "$gte": lambda arg, ops: _compare_test("$gte", arg),
    "$lt": lambda arg, ops: _compare_test("$lt", arg),
    "$lte": lambda arg, ops: _compare_test("$lte", arg),
    "$in": lambda arg, ops: _in_test(arg, "$in"),
    "$type": lambda arg, ops: _type_test(arg),
    "$regex": lambda arg, ops: _regex_test(_regex(arg, ops.get("$options", ""))),
}
# Operators that look at all the values a path reaches at once.
_FIELD_OPERATORS: Final[dict[str, Callable[[Any], ValuePredicate]]] = {
    "$ne": lambda arg: _negate(_any_value(_eq_test(arg))),
    "$nin": lambda arg: _negate(_any_value(_in_test(arg, "$nin"))),
    "$exists": _exists_predicate,
    "$not": lambda arg: _not_predicate(arg),
    "$size": _size_predicate,
    "$all": lambda arg: _all_predicate(arg),
    "$elemMatch": lambda arg: _elem_match_predicate(arg),
}


def _operator_parts(ops: Mapping[str, Any]) -> tuple[list[Test], list[ValuePredicate]]:
    if "$options" in ops and "$regex" not in ops:
        raise ServerError("$options needs a $regex")
    tests: list[Test] = []
    predicates: list[ValuePredicate] = []
    for op, arg in ops.items():
        if op in _ELEMENT_OPERATORS:
            tests.append(_ELEMENT_OPERATORS[op](arg, ops))
        elif op in _FIELD_OPERATORS:
            predicates.append(_FIELD_OPERATORS[op](arg))
        elif op != "$options":
            raise ServerError(f"unknown operator: {op}")
    return tests, predicates


def _operators_predicate(ops: Mapping[str, Any]) -> ValuePredicate:
    tests, predicates = _operator_parts(ops)
    return _all_values([_any_value(t) for t in tests] + predicates)


def _split(path: Any, what: str) -> tuple[str, ...]:
    if type(path) is not str and not isinstance(path, str):
        raise ServerError(f"{what}: field names must be strings, got {path!r}")
    parts = tuple(path.split(".")) if "." in path else (path,)
    if not all(parts):
        raise ServerError(f"{what}: empty field name in path {path!r}")
    return parts


def _field_predicate(path: str, condition: Any) -> Predicate:
    parts = _split(path, "filter")
    kind = type(condition)
    if len(parts) == 1 and (kind is str or kind is ObjectId):  # the commonest filter
        key = parts[0]
        return lambda d: (
            (v := d.get(key, MISSING)) == condition or (type(v) is list and condition in v)
        )
    if _is_operator_doc(condition):
        tests, predicates = _operator_parts(condition)
    else:
        tests, predicates = [_value_test(condition)], []
    general = _all_values([_any_value(t) for t in tests] + predicates)
    if len(parts) > 1:

        def predicate(doc: Mapping[str, Any]) -> bool:
            candidates: list[Any] = []
            _lookup(doc, parts, 0, candidates)
            return general(candidates)

        return predicate
    # Fast paths for a top-level field (one candidate value).
    key = parts[0]
    if predicates:
        return lambda doc: general([doc.get(key, MISSING)])
    if len(tests) == 1:
        test = tests[0]
        return lambda d: general([v]) if type(v := d.get(key, MISSING)) is list else test(v)
    return lambda d: (
        general([v]) if type(v := d.get(key, MISSING)) is list else all(t(v) for t in tests)
    )


def _clauses(op: str, clauses: Any) -> list[Predicate]:
    if not isinstance(clauses, (list, tuple)) or not clauses:
        raise ServerError(f"{op} argument must be a non-empty array")
    if not all(is_document(c) for c in clauses):
        raise ServerError(f"{op} argument's entries must be objects")
    return [compile_filter(c) for c in clauses]


def _and(subs: list[Predicate]) -> Predicate:
    return lambda doc: all(p(doc) for p in subs)


def _or(subs: list[Predicate]) -> Predicate:
    return lambda doc: any(p(doc) for p in subs)


def _nor(subs: list[Predicate]) -> Predicate:
    return lambda doc: not any(p(doc) for p in subs)


_LOGICAL: Final = {"$and": _and, "$or": _or, "$nor": _nor}


def compile_filter(filter: Mapping[str, Any]) -> Predicate:
    """Validate ``filter`` once and return a predicate over documents."""
    if not is_document(filter):
        raise ServerError(f"a filter must be a document, got {type(filter).__name__}")
    predicates: list[Predicate] = []
    for key, condition in filter.items():
        if not isinstance(key, str) or not key.startswith("$"):
            predicates.append(_field_predicate(key, condition))
        elif key in _LOGICAL:
            predicates.append(_LOGICAL[key](_clauses(key, condition)))
        elif key != "$comment":
            raise ServerError(f"unknown top level operator: {key}")
    return predicates[0] if len(predicates) == 1 else _and(predicates)


def matches(document: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """True if ``document`` satisfies the MongoDB ``filter``."""
    return compile_filter(filter)(document)


# ---------------------------------------------------------------------------------------------
# Updates


def _parent(doc: Document, parts: tuple[str, ...], create: bool) -> Any:
    """The dict or list holding ``parts[-1]``; embedded documents are made if ``create``."""
    current: Any = doc
    for i, part in enumerate(parts[:-1]):
        if type(current) is dict:
            item = current.get(part, MISSING)
            if item is MISSING:
                if not create:
                    return None
                item = current[part] = {}
        elif part.isdigit() and int(part) < len(current):
            item = current[int(part)]
        elif not create:
            return None
        elif part.isdigit():
            _put(current, part, {}, parts)
            item = current[int(part)]
        else:
            raise ServerError(f"Cannot create field {part!r} in array {'.'.join(parts[:i])!r}")
        if type(item) is not dict and type(item) is not list:
            if not create:
                return None
            raise ServerError(
                f"Cannot create field {parts[i + 1]!r} in element {{{part}: {item!r}}}"
            )
        current = item
    return current


def _get(container: Any, key: str) -> Any:
    if type(container) is dict:
        return container.get(key, MISSING)
    if key.isdigit() and int(key) < len(container):
        return container[int(key)]
    return MISSING


def _put(container: Any, key: str, value: Any, parts: tuple[str, ...]) -> None:
    if type(container) is dict:
        container[key] = value
    elif key.isdigit():
        index = int(key)
        container.extend([None] * (index + 1 - len(container)))
        container[index] = value
    else:
        raise ServerError(f"Cannot create field {key!r} in array {'.'.join(parts[:-1])!r}")


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _arithmetic(op: str, doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    path = ".".join(parts)
    if not _is_number(arg):
        raise ServerError(f"{op}: cannot apply with a non-numeric argument: {{{path}: {arg!r}}}")
    parent = _parent(doc, parts, create=True)
    current = _get(parent, parts[-1])
    if current is MISSING:
        value = arg if op == "$inc" else type(arg)(0)
    elif not _is_number(current):
        kind = type(current).__name__
        raise ServerError(f"{op}: cannot apply to a value of non-numeric type {kind} at {path!r}")
    else:
        value = current + arg if op == "$inc" else current * arg
    _put(parent, parts[-1], value, parts)


def _array_at(op: str, doc: Document, parts: tuple[str, ...], create: bool) -> list[Any] | None:
    """The array at ``parts`` (made empty if missing and ``create``); None if missing."""
    parent = _parent(doc, parts, create)
    current = MISSING if parent is None else _get(parent, parts[-1])
    if current is MISSING:
        if not create:
            return None
        current = []
        _put(parent, parts[-1], current, parts)
    if type(current) is not list:
        kind = type(current).__name__
        raise ServerError(f"{op}: the field {'.'.join(parts)!r} must be an array, not {kind}")
    return current


def _each(op: str, arg: Any, allowed: tuple[str, ...]) -> tuple[list[Any], Mapping[str, Any]]:
    if is_document(arg) and "$each" in arg:
        unknown = [k for k in arg if k not in allowed]
        if unknown:
            raise ServerError(f"{op}: unsupported modifier {unknown[0]}")
        if not isinstance(arg["$each"], (list, tuple)):
            raise ServerError(f"{op}: the argument to $each must be an array")
        return [clone(v) for v in arg["$each"]], arg
    return [clone(arg)], {}


def _push(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    values, modifiers = _each("$push", arg, ("$each", "$position", "$slice"))
    array = _array_at("$push", doc, parts, create=True)
    assert array is not None
    position = _integer(modifiers.get("$position", len(array)), "$position")
    array[position:position] = values
    if "$slice" in modifiers:
        keep = _integer(modifiers["$slice"], "$slice")
        array[:] = array[:keep] if keep >= 0 else array[len(array) + keep :]


def _add_to_set(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    values, _ = _each("$addToSet", arg, ("$each",))
    array = _array_at("$addToSet", doc, parts, create=True)
    assert array is not None
    for value in values:
        if not any(compare(value, e) == 0 for e in array):
            array.append(value)


def _pull(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    test: Test
    if _is_operator_doc(arg):
        inner = _operators_predicate(arg)
        test = lambda e: inner([e])  # noqa: E731
    elif is_document(arg):
        query = compile_filter(arg)
        test = lambda e: type(e) is dict and query(e)  # noqa: E731
    elif isinstance(arg, re.Pattern):
        test = _regex_test(arg)
    else:
        test = lambda e: compare(e, arg) == 0  # noqa: E731
    array = _array_at("$pull", doc, parts, create=False)
    if array is not None:
        array[:] = [e for e in array if not test(e)]


def _pop(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    if not _is_number(arg) or arg not in (1, -1):
        raise ServerError(f"$pop expects 1 or -1, found: {arg!r}")
    array = _array_at("$pop", doc, parts, create=False)
    if array:
        array.pop(-1 if arg == 1 else 0)


def _set(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    if len(parts) == 1:
        doc[parts[0]] = clone(arg)
        return
    _put(_parent(doc, parts, create=True), parts[-1], clone(arg), parts)


def _unset(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    parent = _parent(doc, parts, create=False)
    if type(parent) is dict:
        parent.pop(parts[-1], None)
    elif parent is not None and _get(parent, parts[-1]) is not MISSING:
        parent[int(parts[-1])] = None  # MongoDB nulls array elements rather than removing them


def _min_max(op: str, doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    parent = _parent(doc, parts, create=True)
    current = _get(parent, parts[-1])
    if current is MISSING or compare(arg, current) == (-1 if op == "$min" else 1):
        _put(parent, parts[-1], clone(arg), parts)


def _rename(doc: Document, parts: tuple[str, ...], target: tuple[str, ...]) -> None:
    parent = _parent(doc, parts, create=False)
    if parent is None or _get(parent, parts[-1]) is MISSING:
        return
    if type(parent) is not dict:
        raise ServerError(f"$rename: the source field {'.'.join(parts)!r} is an array element")
    value = parent.pop(parts[-1])
    destination = _parent(doc, target, create=True)
    if type(destination) is not dict:
        raise ServerError(f"$rename: the destination {'.'.join(target)!r} is an array element")
    destination[target[-1]] = value


_UPDATERS: Final[dict[str, Callable[[Document, tuple[str, ...], Any], None]]] = {
    "$set": _set,
    "$setOnInsert": _set,
    "$unset": _unset,
    "$inc": lambda d, p, a: _arithmetic("$inc", d, p, a),
    "$mul": lambda d, p, a: _arithmetic("$mul", d, p, a),
    "$min": lambda d, p, a: _min_max("$min", d, p, a),
    "$max": lambda d, p, a: _min_max("$max", d, p, a),
    "$push": _push,
    "$addToSet": _add_to_set,
    "$pull": _pull,
    "$pop": _pop,
    "$rename": _rename,
}


def _update_path(op: str, path: Any) -> tuple[str, ...]:
    parts = _split(path, op)
    if path.startswith("$") or ".$" in path:
        raise ServerError(f"{op}: positional and $-prefixed paths are not supported: {path!r}")
    return parts


def _order(parts: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _check_conflicts(paths: list[tuple[str, ...]], message: str) -> None:
    """Raise if a path repeats or is a prefix of another (``message`` gets both paths)."""
    whole: set[tuple[str, ...]] = set()
    below: dict[tuple[str, ...], tuple[str, ...]] = {}  # proper prefix -> a path extending it
    for parts in paths:
        clash = below.get(parts, parts if parts in whole else None)
        for i in range(1, len(parts)):
            if parts[:i] in whole:
                clash = parts[:i]
            below.setdefault(parts[:i], parts)
        if clash is not None:
            shorter, longer = (clash, parts) if len(clash) <= len(parts) else (parts, clash)
            raise ServerError(message.format(".".join(longer), ".".join(shorter)))
        whole.add(parts)


@functools.lru_cache(maxsize=1024)
def _update_plan(
    shape: tuple[tuple[str, tuple[Any, ...]], ...], is_insert: bool
) -> tuple[tuple[str, Any, tuple[str, ...], tuple[str, ...]], ...]:
    """The checked, ordered steps ``(op, field, path parts, $rename target)`` of an update.

    ``shape`` lists the update's operators with their field names (field/target pairs for
    ``$rename``): the plan depends on nothing else, so it is cached.
    """
    steps = []
    touched: list[tuple[str, ...]] = []
    for op, fields in shape:
        if op not in _UPDATERS:
            raise ServerError(f"unknown update operator: {op}")
        for item in fields:
            field, target = item if op == "$rename" else (item, "")
            parts = _update_path(op, field)
            touched.append(parts)
            target_parts = _update_path(op, target) if op == "$rename" else ()
            if target_parts:
                touched.append(target_parts)
            if op != "$setOnInsert" or is_insert:
                steps.append((op, field, parts, target_parts))
    _check_conflicts(touched, "Updating the path '{}' would create a conflict at '{}'")
    steps.sort(key=lambda step: _order(step[2]))
    return tuple(steps)


def _replace(document: Mapping[str, Any], replacement: Mapping[str, Any]) -> Document:
    out: Document = {}
    if "_id" in document:
        out["_id"] = copy_value(document["_id"])
        if "_id" in replacement and not identical(clone(replacement["_id"]), out["_id"]):
            raise ServerError("the (immutable) field '_id' was found to have been altered")
    for key, value in replacement.items():
        out[key] = clone(value)
    return out


def apply_update(
    document: Mapping[str, Any], update: Mapping[str, Any], *, is_insert: bool
) -> Document:
    """Return a copy of ``document`` with the MongoDB ``update`` applied (input untouched).

    An update without ``$`` keys replaces the document (keeping its ``_id``). ``$setOnInsert``
    applies only when ``is_insert``. Fields are processed in lexicographic path order, as in
    MongoDB 5.0+, so new fields are appended in that order.
    """
    if not is_document(update):
        raise ServerError(f"an update must be a document, got {type(update).__name__}")
    operators = [k for k in update if isinstance(k, str) and k.startswith("$")]
    if not operators:
        return _replace(document, update)
    if len(operators) != len(update):
        plain = next(k for k in update if k not in operators)
        raise ServerError(f"an update cannot mix $ operators with plain fields (found {plain!r})")
    shape: list[tuple[str, tuple[Any, ...]]] = []
    for op in operators:
        fields = update[op]
        if not is_document(fields):
            raise ServerError(f"{op} needs a document of fields, got {fields!r}")
        if op == "$rename":
            for target in fields.values():
                if not isinstance(target, str):
                    raise ServerError(f"$rename: the new name must be a string, got {target!r}")
            shape.append((op, tuple(fields.items())))
        else:
            shape.append((op, tuple(fields)))
    out: Document = copy_value(document)
    for op, field, parts, target in _update_plan(tuple(shape), is_insert):
        _UPDATERS[op](out, parts, target if op == "$rename" else update[op][field])
    if "_id" in document and ("_id" not in out or not identical(out["_id"], document["_id"])):
        raise ServerError("Performing an update on the path '_id' would modify the immutable field")
    return out


def upsert_seed(filter: Mapping[str, Any]) -> Document:
    """The document an upsert starts from: the filter's equality conditions, as fields.

    Top-level ``field: value`` and ``field: {"$eq": value}`` conditions count, also inside a
    top-level ``$and`` (or a one-clause ``$or``); dotted paths become embedded documents.
    """
    pairs: list[tuple[tuple[str, ...], Any]] = []

    def collect(query: Mapping[str, Any]) -> None:
        for key, condition in query.items():
            if key in ("$and", "$or") and isinstance(condition, (list, tuple)):
                if key == "$and" or len(condition) == 1:
                    for clause in condition:
                        if is_document(clause):
                            collect(clause)
            elif not isinstance(key, str) or key.startswith("$"):
                continue  # other operators ($or of several clauses, $nor, ...) seed nothing
            elif isinstance(condition, re.Pattern):
                pass  # a regex is not an equality
            elif not _is_operator_doc(condition):
                pairs.append((_split(key, "upsert"), condition))
            elif "$eq" in condition:
                pairs.append((_split(key, "upsert"), condition["$eq"]))

    collect(filter)
    _check_conflicts(
        [parts for parts, _ in pairs], "cannot infer the upsert document: '{}' and '{}' overlap"
    )
    seed: Document = {}
    for parts, value in pairs:
        target = seed
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = clone(value)
    return seed


# ---------------------------------------------------------------------------------------------
# Sort and projection


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


def _include(doc: Mapping[str, Any], tree: Mapping[str, Any]) -> Document:
    out: Document = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is True:
            out[key] = copy_value(value)
        elif sub is not None and type(value) is dict:
            out[key] = _include(value, sub)
        elif sub is not None and type(value) is list:
            out[key] = [_include(e, sub) for e in value if type(e) is dict]
    return out


def _exclude(doc: Mapping[str, Any], tree: Mapping[str, Any]) -> Document:
    out: Document = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is True:
            continue
        if sub is not None and type(value) is dict:
            out[key] = _exclude(value, sub)
        elif sub is not None and type(value) is list:
            out[key] = [_exclude(e, sub) if type(e) is dict else copy_value(e) for e in value]
        else:
            out[key] = copy_value(value)
    return out


def compile_projection(projection: Mapping[str, Any] | None) -> Callable[[Any], Document]:
    """Validate an inclusion or exclusion projection once; return a function applying it."""
    if not projection:
        return copy_value
    if not is_document(projection):
        raise ServerError(f"a projection must be a document, got {type(projection).__name__}")
    include_id = True
    chosen: dict[bool, list[tuple[str, ...]]] = {True: [], False: []}
    for path, flag in projection.items():
        if type(flag) not in (bool, int, float):
            raise ServerError(f"unsupported projection value for {path!r}: {flag!r}")
        parts = _update_path("projection", path)
        if parts == ("_id",):
            include_id = bool(flag)
        else:
            chosen[bool(flag)].append(parts)
    if chosen[True] and chosen[False]:
        field = ".".join(chosen[False][0])
        raise ServerError(f"Cannot do exclusion on field {field} in inclusion projection")
    inclusion = bool(chosen[True]) or (not chosen[False] and include_id)
    paths = chosen[inclusion] + ([("_id",)] if include_id == inclusion else [])
    _check_conflicts(paths, "projection: path collision at '{}' (and '{}')")
    tree: dict[str, Any] = {}
    for parts in paths:
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = True
    if inclusion:
        return lambda doc: _include(doc, tree)
    return lambda doc: _exclude(doc, tree)


def project(document: Mapping[str, Any], projection: Mapping[str, Any] | None) -> Document:
    """A projected deep copy of ``document`` (``_id`` is kept unless ``"_id": 0``)."""
    return compile_projection(projection)(document)
