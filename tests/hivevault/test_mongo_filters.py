"""Tests of hivevault.mongo's filters: equality, paths and arrays, comparisons across types, sets,
logic and the other query operators, as MongoDB evaluates them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from brh.vault import ObjectId, ServerError
from hivevault.mongo import (
    compile_filter,
    matches,
)

OID_A = ObjectId("000000010000000000000001")
OID_B = ObjectId("000000020000000000000000")


def ids(docs: list[dict[str, Any]], filter: dict[str, Any]) -> list[Any]:
    return [d["_id"] for d in docs if matches(d, filter)]


# -- equality, paths, arrays ---------------------------------------------------------------------


def test_scalar_equality_and_dotted_paths() -> None:
    """A plain value is equality; dotted paths reach into embedded documents."""
    doc = {"a": 1, "b": {"c": "x", "d": {"e": True}}}
    assert matches(doc, {"a": 1})
    assert not matches(doc, {"a": 2})
    assert matches(doc, {"b.c": "x"})
    assert matches(doc, {"b.d.e": True})
    assert not matches(doc, {"b.c.z": "x"})
    assert matches(doc, {})


def test_int_and_float_are_equal_but_bool_is_not_a_number() -> None:
    """Numbers compare by value across int/float; true is not 1 (different BSON types)."""
    assert matches({"a": 1}, {"a": 1.0})
    assert not matches({"a": True}, {"a": 1})
    assert not matches({"a": 1}, {"a": True})
    assert matches({"a": False}, {"a": False})


def test_scalar_equality_matches_array_elements() -> None:
    """``{f: v}`` matches an array field containing v, and the whole array by equality."""
    doc = {"tags": ["red", "blue"], "n": [1, [2, 3]]}
    assert matches(doc, {"tags": "blue"})
    assert matches(doc, {"tags": ["red", "blue"]})
    assert not matches(doc, {"tags": ["blue", "red"]})
    assert matches(doc, {"n": [2, 3]})
    assert not matches(doc, {"n": 2})  # only one level of array is unwound


def test_embedded_document_equality_is_exact_and_ordered() -> None:
    """Whole embedded documents are equal only with the same fields in the same order."""
    doc = {"e": {"x": 1, "y": 2}}
    assert matches(doc, {"e": {"x": 1, "y": 2}})
    assert not matches(doc, {"e": {"y": 2, "x": 1}})
    assert not matches(doc, {"e": {"x": 1}})


def test_paths_through_arrays_of_documents_and_indexes() -> None:
    """``a.b`` visits each embedded document of array a; ``a.1`` is an index."""
    doc = {"a": [{"b": 1}, {"b": 2}, {"c": 3}], "s": [10, 20]}
    assert matches(doc, {"a.b": 2})
    assert matches(doc, {"a.c": 3})
    assert matches(doc, {"a.1.b": 2})
    assert not matches(doc, {"a.0.b": 2})
    assert matches(doc, {"s.1": 20})
    assert not matches(doc, {"s.5": 20})
    assert matches(doc, {"a.b": {"$gt": 1}})


def test_null_matches_missing_and_ne_null_excludes_it() -> None:
    """``{f: null}`` matches null and missing fields; ``$ne: null`` excludes both."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "f": None},
        {"_id": 2},
        {"_id": 3, "f": 0},
        {"_id": 4, "f": [None, 1]},
    ]
    assert ids(docs, {"f": None}) == [1, 2, 4]
    assert ids(docs, {"f": {"$eq": None}}) == [1, 2, 4]
    assert ids(docs, {"f": {"$ne": None}}) == [3]
    assert ids(docs, {"g.h": None}) == [1, 2, 3, 4]


def test_exists() -> None:
    """``$exists`` tests presence, whatever the value (null counts as present)."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "f": None},
        {"_id": 2},
        {"_id": 3, "a": [{"f": 1}]},
        {"_id": 4, "a": [1]},
    ]
    assert ids(docs, {"f": {"$exists": True}}) == [1]
    assert ids(docs, {"f": {"$exists": False}}) == [2, 3, 4]
    assert ids(docs, {"a.f": {"$exists": True}}) == [3]
    assert ids(docs, {"a.f": {"$exists": False}}) == [1, 2, 4]


def test_ne_on_arrays_excludes_when_any_element_matches() -> None:
    """``$ne`` is the negation of equality, which matches any element."""
    assert not matches({"t": ["a", "b"]}, {"t": {"$ne": "a"}})
    assert matches({"t": ["a", "b"]}, {"t": {"$ne": "c"}})
    assert matches({}, {"t": {"$ne": "c"}})


# -- comparison and type bracketing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [("$gt", [3, 4]), ("$gte", [2, 3, 4]), ("$lt", [1]), ("$lte", [1, 2])],
)
def test_comparison_operators_on_numbers(op: str, expected: list[int]) -> None:
    """``$gt/$gte/$lt/$lte`` compare numbers, ints and floats together."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "n": 1},
        {"_id": 2, "n": 2.0},
        {"_id": 3, "n": 2.5},
        {"_id": 4, "n": 10**20},
    ]
    assert ids(docs, {"n": {op: 2}}) == expected


def test_comparisons_bracket_by_type() -> None:
    """A comparison only matches values of the operand's BSON type class."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "v": 5},
        {"_id": 2, "v": "5"},
        {"_id": 3, "v": True},
        {"_id": 4, "v": None},
        {"_id": 5},
        {"_id": 6, "v": {"x": 1}},
        {"_id": 7, "v": OID_B},
    ]
    assert ids(docs, {"v": {"$gt": 0}}) == [1]
    assert ids(docs, {"v": {"$gt": ""}}) == [2]
    assert ids(docs, {"v": {"$gte": False}}) == [3]
    assert ids(docs, {"v": {"$lt": {"x": 2}}}) == [6]
    assert ids(docs, {"v": {"$gt": OID_A}}) == [7]
    assert ids(docs, {"v": {"$gte": None}}) == [4, 5]
    assert ids(docs, {"v": {"$lte": None}}) == [4, 5]
    assert ids(docs, {"v": {"$gt": None}}) == []


def test_comparison_on_strings_and_arrays() -> None:
    """Strings compare by code point; an array matches if any element does."""
    assert matches({"s": "abc"}, {"s": {"$gt": "abb", "$lt": "abd"}})
    assert not matches({"s": "B"}, {"s": {"$gt": "a"}})
    assert matches({"n": [1, 9]}, {"n": {"$gt": 5}})
    assert matches({"n": [1, 9]}, {"n": {"$gt": 5, "$lt": 2}})  # each condition on any element
    assert not matches({"n": [1, 9]}, {"n": {"$elemMatch": {"$gt": 5, "$lt": 2}}})


def test_nan_only_equals_nan() -> None:
    """NaN matches only NaN equality, never an ordering comparison."""
    nan = float("nan")
    assert matches({"x": nan}, {"x": nan})
    assert matches({"x": nan}, {"x": {"$gte": nan}})
    assert not matches({"x": nan}, {"x": {"$lt": 1}})
    assert not matches({"x": 1}, {"x": {"$gt": nan}})


# -- sets and logic ------------------------------------------------------------------------------


def test_in_and_nin() -> None:
    """``$in`` matches any listed value (null matches missing; regexes match); ``$nin`` not."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "v": "a"},
        {"_id": 2, "v": 2},
        {"_id": 3},
        {"_id": 4, "v": ["x", "b"]},
    ]
    assert ids(docs, {"v": {"$in": ["a", 2.0]}}) == [1, 2]
    assert ids(docs, {"v": {"$in": [None]}}) == [3]
    assert ids(docs, {"v": {"$in": [re.compile("^b")]}}) == [4]
    assert ids(docs, {"v": {"$nin": ["a", "x"]}}) == [2, 3]
    assert ids(docs, {"v": {"$in": []}}) == []
    with pytest.raises(ServerError, match=r"\$in needs an array"):
        matches({}, {"v": {"$in": "a"}})


def test_and_or_nor() -> None:
    """``$and``/``$or``/``$nor`` combine clauses; each needs a non-empty array of documents."""
    docs = [{"_id": 1, "a": 1, "b": 1}, {"_id": 2, "a": 1, "b": 2}, {"_id": 3, "a": 2, "b": 2}]
    assert ids(docs, {"$and": [{"a": 1}, {"b": 2}]}) == [2]
    assert ids(docs, {"$or": [{"a": 2}, {"b": 1}]}) == [1, 3]
    assert ids(docs, {"$nor": [{"a": 2}, {"b": 1}]}) == [2]
    assert ids(docs, {"a": 1, "$or": [{"b": 2}, {"b": 3}]}) == [2]
    bad: object
    for bad in ([], {}, [1]):
        with pytest.raises(ServerError, match=r"\$or"):
            matches({}, {"$or": bad})


def test_not() -> None:
    """``$not`` negates an operator expression or a regex, and matches missing fields."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "n": 1},
        {"_id": 2, "n": 5},
        {"_id": 3},
        {"_id": 4, "n": "abc"},
    ]
    assert ids(docs, {"n": {"$not": {"$gt": 2}}}) == [1, 3, 4]
    assert ids(docs, {"n": {"$not": re.compile("^a")}}) == [1, 2, 3]
    for bad in (5, {}, {"x": 1}):
        with pytest.raises(ServerError, match=r"\$not"):
            matches({}, {"n": {"$not": bad}})


def test_size_all_elem_match() -> None:
    """``$size`` counts elements; ``$all`` needs every value; ``$elemMatch`` one element."""
    doc = {"t": ["a", "b", "c"], "r": [{"k": "x", "v": 1}, {"k": "y", "v": 5}], "n": [3, 8]}
    assert matches(doc, {"t": {"$size": 3}})
    assert not matches(doc, {"t": {"$size": 2}})
    assert not matches({"t": "abc"}, {"t": {"$size": 3}})
    assert matches(doc, {"t": {"$all": ["c", "a"]}})
    assert not matches(doc, {"t": {"$all": ["c", "z"]}})
    assert not matches(doc, {"t": {"$all": []}})
    assert matches({"t": "a"}, {"t": {"$all": ["a"]}})
    assert matches(doc, {"r": {"$elemMatch": {"k": "y", "v": {"$gte": 5}}}})
    assert not matches(doc, {"r": {"$elemMatch": {"k": "x", "v": {"$gte": 5}}}})
    assert matches(doc, {"n": {"$elemMatch": {"$gt": 5, "$lt": 9}}})
    assert matches(doc, {"r": {"$all": [{"$elemMatch": {"k": "x"}}]}})
    with pytest.raises(ServerError, match=r"\$size"):
        matches(doc, {"t": {"$size": -1}})
    with pytest.raises(ServerError, match=r"\$size"):
        matches(doc, {"t": {"$size": "3"}})


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("string", ["s"]),
        ("number", ["i", "f", "big"]),
        ("int", ["i"]),
        ("long", ["big"]),
        ("double", ["f"]),
        ("null", ["z"]),
        ("bool", ["b"]),
        ("object", ["o"]),
        ("array", ["a"]),
        ("objectId", ["id"]),
        (2, ["s"]),
        (["bool", "null"], ["z", "b"]),
        ("date", []),
    ],
)
def test_type(alias: Any, expected: list[str]) -> None:
    """``$type`` matches BSON types by alias or code (ints and floats differ; bool apart)."""
    doc = {
        "s": "x",
        "i": 1,
        "f": 1.5,
        "big": 2**40,
        "z": None,
        "b": False,
        "o": {},
        "a": [],
        "id": OID_A,
    }
    assert [k for k in doc if matches(doc, {k: {"$type": alias}})] == expected
    assert not matches(doc, {"missing": {"$type": "null"}})


def test_type_unknown_alias_is_an_error() -> None:
    """An unknown ``$type`` alias is invalid MongoDB input."""
    with pytest.raises(ServerError, match="unknown type"):
        matches({}, {"a": {"$type": "strnig"}})


def test_regex_and_options() -> None:
    """``$regex`` searches strings (and array elements) with options i, m, s, x."""
    assert matches({"s": "Hello"}, {"s": {"$regex": "ell"}})
    assert not matches({"s": "Hello"}, {"s": {"$regex": "^h"}})
    assert matches({"s": "Hello"}, {"s": {"$regex": "^h", "$options": "i"}})
    assert matches({"s": "a\nb"}, {"s": {"$regex": "^b", "$options": "m"}})
    assert matches({"s": "a\nb"}, {"s": {"$regex": "a.b", "$options": "s"}})
    assert matches({"s": "ab"}, {"s": {"$regex": "a b # comment", "$options": "x"}})
    assert matches({"s": ["x", "yz"]}, {"s": {"$regex": "z$"}})
    assert matches({"s": "Hello"}, {"s": re.compile("^h", re.IGNORECASE)})
    assert not matches({"s": 5}, {"s": {"$regex": "5"}})
    with pytest.raises(ServerError, match="flag"):
        matches({}, {"s": {"$regex": "a", "$options": "q"}})
    with pytest.raises(ServerError, match="regular expression"):
        matches({}, {"s": {"$regex": "("}})
    with pytest.raises(ServerError, match=r"\$options needs a \$regex"):
        matches({}, {"s": {"$options": "i"}})


def test_unknown_operators_are_server_errors_naming_them() -> None:
    """Invalid MongoDB input surfaces as ServerError (Hive's 500) naming the operator."""
    with pytest.raises(ServerError, match=r"\$foo"):
        compile_filter({"a": {"$foo": 1}})
    with pytest.raises(ServerError, match=r"\$where"):
        compile_filter({"$where": "1"})
    with pytest.raises(ServerError, match=r"\$gt"):
        compile_filter({"$gt": 1})
    assert matches({"a": 1}, {"a": 1, "$comment": "ignored"})


def test_a_document_with_dollar_keys_after_the_first_is_literal() -> None:
    """Only a first key starting with ``$`` makes a condition an operator expression."""
    assert matches({"a": {"x": 1, "$y": 2}}, {"a": {"x": 1, "$y": 2}})
    with pytest.raises(ServerError, match="unknown operator: x"):
        compile_filter({"a": {"$gt": 1, "x": 2}})
