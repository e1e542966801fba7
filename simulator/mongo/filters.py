"""Filters: compiling a MongoDB query document once into a predicate over documents."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from brh.vault import ObjectId, ServerError
from simulator.mongo.paths import _lookup, _split
from simulator.mongo.values import MISSING, _rank, _token, is_document

Predicate = Callable[[Mapping[str, Any]], bool]
ValuePredicate = Callable[[list[Any]], bool]
Test = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


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
        if type(value) is str:  # the commonest first
            strings.add(value)
        elif _is_operator_doc(value):
            raise ServerError(f"cannot nest $ under {op}")
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


def _field_predicate(path: str, condition: Any) -> Predicate:
    if type(path) is str and path and "." not in path:  # a top-level name (checked as _split)
        parts: tuple[str, ...] = (path,)
    else:
        parts = _split(path, "filter")
    kind = type(condition)
    if len(parts) == 1:
        key = parts[0]
        if kind is str or kind is ObjectId:  # the commonest filter
            return lambda d: (
                (v := d.get(key, MISSING)) == condition or (type(v) is list and condition in v)
            )
        if kind is dict and len(condition) == 1:
            ((op, value),) = condition.items()
            if op in _COMPARATORS and _is_number(value) and value == value:
                # A bound on a top-level number (a pull's stamp, a count): what the general
                # path below builds, with ``_compare_test`` inlined for a number.
                compare_op = _COMPARATORS[op]
                return lambda d: (
                    (
                        ((kind := type(v := d.get(key, MISSING))) is int or kind is float)
                        and compare_op(v, value)
                    )
                    # an array (rare): the general path, built when needed
                    or (kind is list and _any_value(_compare_test(op, value))([v]))
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
    if len(tests) == 2:  # a range: two bounds
        low, high = tests
        return lambda d: (
            general([v]) if type(v := d.get(key, MISSING)) is list else bool(low(v) and high(v))
        )
    return lambda d: (
        general([v]) if type(v := d.get(key, MISSING)) is list else all(t(v) for t in tests)
    )


def _clauses(op: str, clauses: Any) -> list[Predicate]:
    if not isinstance(clauses, (list, tuple)) or not clauses:
        raise ServerError(f"{op} argument must be a non-empty array")
    if not all(is_document(c) for c in clauses):
        raise ServerError(f"{op} argument's entries must be objects")
    return [compile_filter(c) for c in clauses]


# (Two clauses, the commonest case, without a generator per evaluated document.)


def _and(subs: list[Predicate]) -> Predicate:
    if len(subs) == 2:
        first, second = subs
        return lambda doc: bool(first(doc) and second(doc))
    return lambda doc: all(p(doc) for p in subs)


def _or(subs: list[Predicate]) -> Predicate:
    if len(subs) == 2:
        first, second = subs
        return lambda doc: bool(first(doc) or second(doc))
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
