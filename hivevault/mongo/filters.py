"""Filters: compiling a MongoDB query document once into a predicate over documents."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from brh.vault import InvalidParameterError, ObjectId, ServerError
from hivevault.mongo.paths import _lookup, _split
from hivevault.mongo.values import MISSING, _rank, _token, is_document

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


# -- regular expressions ------------------------------------------------------------------------
#
# MongoDB evaluates $regex with PCRE, a backtracking engine; so did this module, with Python's
# ``re``, and ``^(a+)+$`` against 26 letters took seconds, doubling with each letter, while the
# vault served nobody else. Patterns now run on RE2 (the ``google-re2`` package), whose time is
# linear in the text whatever the pattern. What that means for MongoDB's PCRE semantics:
#
# * supported as in PCRE: literals, classes (POSIX ``[[:alpha:]]`` too), ``.``, anchors ``^``
#   ``$`` ``\A`` ``\z`` ``\Z`` ``\b`` ``\B``, greedy and lazy quantifiers (``{n,m}`` up to
#   1000), groups, named groups, alternation, inline flags ``(?i)`` ``(?m)`` ``(?s)``, escapes
#   ``\d`` ``\w`` ``\s`` (ASCII, as PCRE without UCP), ``\p{L}`` Unicode classes, and the
#   options i, m, s and x (x is applied here: unescaped whitespace and ``#`` comments outside
#   classes are dropped before RE2 sees the pattern);
# * ``$`` without m and ``\Z`` match at the end or before a final newline, as in PCRE
#   (rewritten to ``(?:\n?\z)``, which consumes that newline: a pattern that goes on to match
#   it, such as ``a$\n``, does not match);
# * refused with a 400 naming the pattern: backreferences (``\1``, ``\k<name>``), look-ahead
#   and look-behind, atomic groups, possessive quantifiers, recursion, conditionals, ``\C``
#   and callouts, which need backtracking; a pattern PCRE itself rejects is a 500, as on Hive;
# * a pattern whose RE2 program exceeds :data:`_RE2_MAX_MEM` is refused too.
#
# Without google-re2 installed (it comes with the ``server`` extra), $regex is refused.

try:
    import re2
except ImportError:  # pragma: no cover - the dev and server extras install it
    re2 = None

_RE2_MAX_MEM: Final = 4 << 20
"""Bytes RE2 may use for one pattern's program and its DFA cache (RE2 falls back to a slower,
still linear, simulation when the cache fills)."""
_REGEX_LETTERS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_END_OF_TEXT: Final = r"(?:\n?\z)"


def _regex(pattern: Any, options: Any) -> Any:
    """The compiled RE2 regex of a ``$regex`` (a string, or a Python ``re.Pattern`` whose flags
    i, m, s, x count) with ``$options``."""
    if not isinstance(options, str):
        raise ServerError("$options has to be a string")
    letters = ""
    if isinstance(pattern, re.Pattern):
        flags, pattern = pattern.flags, pattern.pattern
        letters = "".join(letter for letter, flag in _REGEX_LETTERS.items() if flags & flag)
    if not isinstance(pattern, str):
        raise ServerError("$regex has to be a string")
    for letter in options:
        if letter not in _REGEX_LETTERS:
            raise ServerError(f"$regex: invalid flag in regex options: {letter}")
    letters = "".join(sorted(set(letters + options)))
    return _compile_regex(pattern, letters)


@functools.lru_cache(maxsize=128)
def _compile_regex(pattern: str, letters: str) -> Any:
    if re2 is None:
        raise InvalidParameterError(
            "$regex needs the google-re2 package (a linear-time regex engine), which this "
            "installation lacks: pip install 'brh[server]'"
        )
    inline = "".join(letter for letter in letters if letter in "ims")
    text = _translate(pattern, extended="x" in letters, multiline="m" in letters)
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(f"(?{inline}){text}" if inline else text, options)
    except re2.error as exc:
        flags = 0
        for letter in letters:
            flags |= _REGEX_LETTERS[letter]
        try:
            re.compile(pattern, flags)  # Python's engine stands in for PCRE here
        except (re.error, RecursionError, OverflowError) as invalid:
            raise ServerError(f"$regex: invalid regular expression: {invalid}") from None
        raise InvalidParameterError(
            f"$regex {pattern[:200]!r} is not supported by this vault: it evaluates regular "
            "expressions in linear time (RE2), without backreferences, look-around, atomic "
            f"groups, possessive quantifiers or recursion ({exc})"
        ) from None


def _translate(pattern: str, *, extended: bool, multiline: bool) -> str:
    """``pattern`` in RE2's syntax: PCRE's ``$`` and ``\\Z`` (end, or before a final newline),
    and the x option (unescaped whitespace and ``#`` comments outside classes dropped)."""
    if not extended and "Z" not in pattern and ("$" not in pattern or multiline):
        return pattern  # the commonest case: nothing to rewrite
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            escaped = pattern[i + 1]
            if escaped == "Z" and not in_class:
                out.append(_END_OF_TEXT)
            elif escaped.isspace() and extended:
                out.append(f"\\x{{{ord(escaped):x}}}")
            else:
                out.append(pattern[i : i + 2])
            i += 2
        elif in_class:
            if c == "[" and pattern.startswith("[:", i) and ":]" in pattern[i + 2 :]:
                end = pattern.index(":]", i + 2) + 2  # a POSIX class, [:alpha:]
                out.append(pattern[i:end])
                i = end
                continue
            in_class = c != "]"
            out.append(c)
            i += 1
        elif c == "[":
            in_class = True
            start = i
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):  # a ']' first in a class is literal
                i += 1
            out.append(pattern[start:i])
        elif extended and c.isspace():
            i += 1
        elif extended and c == "#":
            newline = pattern.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif c == "$" and not multiline:
            out.append(_END_OF_TEXT)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _regex_test(rx: Any) -> Test:
    """Whether a string value matches ``rx`` (an RE2 regex, or a Python pattern to convert)."""
    if isinstance(rx, re.Pattern):
        rx = _regex(rx, "")
    search = rx.search
    return lambda c: type(c) is str and search(c) is not None


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
        query = _compile(spec)
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
    return [_compile(c) for c in clauses]


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


MAX_FILTER_DEPTH: Final = 100
"""Levels of logical nesting a filter may have (``$and``, ``$or``, ``$nor``, ``$not``,
``$elemMatch``, the filter itself the first): MongoDB's query parser refuses deeper trees
(its limit is 100 since SERVER-13661)."""


def _too_deep() -> NoReturn:
    raise InvalidParameterError(
        f"the filter nests $and, $or, $nor, $not or $elemMatch more than {MAX_FILTER_DEPTH} "
        "levels deep, more than MongoDB accepts"
    )


def _check_depth(query: Mapping[str, Any], depth: int) -> None:
    """Refuse a filter whose logical tree is deeper than :data:`MAX_FILTER_DEPTH` (before
    compiling it, which recurses as deep)."""
    if depth > MAX_FILTER_DEPTH:
        _too_deep()
    for key, condition in query.items():
        if key in _LOGICAL and isinstance(condition, (list, tuple)):
            for clause in condition:
                if is_document(clause):
                    _check_depth(clause, depth + 1)
        elif _is_operator_doc(condition):
            _check_operator_depth(condition, depth)


def _check_operator_depth(ops: Mapping[str, Any], depth: int) -> None:
    for op, arg in ops.items():
        if op in ("$not", "$elemMatch") and is_document(arg):
            if op == "$not" or _is_operator_doc(arg):
                if depth >= MAX_FILTER_DEPTH:
                    _too_deep()
                _check_operator_depth(arg, depth + 1)
            else:
                _check_depth(arg, depth + 1)
        elif op == "$all" and isinstance(arg, (list, tuple)):
            for value in arg:
                if is_document(value) and is_document(value.get("$elemMatch")):
                    _check_operator_depth(value, depth)


def compile_filter(filter: Mapping[str, Any]) -> Predicate:
    """Validate ``filter`` once and return a predicate over documents."""
    if is_document(filter):
        _check_depth(filter, 1)
    return _compile(filter)


def _compile(filter: Mapping[str, Any]) -> Predicate:
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
