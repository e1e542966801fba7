"""Tests of hivevault.mongo: MongoDB query, update, sort and projection semantics."""

from __future__ import annotations

import contextlib
import copy
import itertools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brh.vault import InvalidParameterError, ObjectId, ServerError
from hivevault.mongo import (
    apply_update,
    clone,
    compare,
    compile_filter,
    identical,
    matches,
    project,
    sort_documents,
    sort_key,
    upsert_seed,
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


# -- updates ------------------------------------------------------------------------------------


def up(doc: dict[str, Any], update: dict[str, Any], *, insert: bool = False) -> dict[str, Any]:
    return apply_update(doc, update, is_insert=insert)


def test_set_creates_embedded_documents_and_array_slots() -> None:
    """``$set`` on a dotted path creates embedded documents; a numeric part indexes arrays."""
    assert up({"_id": 1}, {"$set": {"a.b.c": 1}}) == {"_id": 1, "a": {"b": {"c": 1}}}
    assert up({"a": [1, 2]}, {"$set": {"a.1": 9}}) == {"a": [1, 9]}
    assert up({"a": [1]}, {"$set": {"a.3": 9}}) == {"a": [1, None, None, 9]}
    assert up({"a": [{"x": 1}]}, {"$set": {"a.0.y": 2}}) == {"a": [{"x": 1, "y": 2}]}
    with pytest.raises(ServerError, match="Cannot create field 'b'"):
        up({"a": 5}, {"$set": {"a.b": 1}})
    with pytest.raises(ServerError, match="Cannot create field"):
        up({"a": [1]}, {"$set": {"a.x": 1}})


def test_new_fields_are_added_in_lexicographic_order() -> None:
    """MongoDB 5.0+ applies update fields in lexicographic order, whatever the operators."""
    result = up({"_id": 1, "m": 0}, {"$set": {"z": 1, "b": 1}, "$inc": {"a": 1}})
    assert list(result) == ["_id", "m", "a", "b", "z"]


def test_unset() -> None:
    """``$unset`` removes fields (missing ones are fine); in an array it writes null."""
    doc = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    assert up(doc, {"$unset": {"a": "", "b.c": 1, "x.y": 1}}) == {"b": {"d": 3}, "l": [1, 2]}
    assert up(doc, {"$unset": {"l.0": ""}})["l"] == [None, 2]


def test_inc_and_mul() -> None:
    """``$inc``/``$mul`` need numbers; a missing field becomes the increment (or 0)."""
    assert up({"n": 1}, {"$inc": {"n": 2, "m": 5}}) == {"n": 3, "m": 5}
    assert up({"n": 1}, {"$inc": {"n": 0.5}}) == {"n": 1.5}
    assert up({"n": 3}, {"$mul": {"n": 2, "m": 4, "f": 1.5}}) == {"n": 6, "f": 0.0, "m": 0}
    with pytest.raises(ServerError, match=r"\$inc.*non-numeric"):
        up({"n": "1"}, {"$inc": {"n": 1}})
    with pytest.raises(ServerError, match=r"\$inc.*non-numeric"):
        up({"n": True}, {"$inc": {"n": 1}})
    with pytest.raises(ServerError, match=r"\$inc.*non-numeric argument"):
        up({"n": 1}, {"$inc": {"n": "1"}})


def test_min_and_max_use_the_cross_type_order() -> None:
    """``$min``/``$max`` replace the value when the argument is lower/higher, across types."""
    assert up({"n": 5}, {"$min": {"n": 3}}) == {"n": 3}
    assert up({"n": 5}, {"$min": {"n": 7}}) == {"n": 5}
    assert up({"n": 5}, {"$max": {"n": 7, "m": 1}}) == {"n": 7, "m": 1}
    assert up({"n": 5}, {"$max": {"n": "a"}}) == {"n": "a"}  # strings sort after numbers
    assert up({"n": 5}, {"$min": {"n": None}}) == {"n": None}


def test_rename() -> None:
    """``$rename`` moves a value to a new path; a missing source is a no-op."""
    assert up({"a": 1, "b": 2}, {"$rename": {"a": "c.d"}}) == {"b": 2, "c": {"d": 1}}
    assert up({"b": 2}, {"$rename": {"a": "c"}}) == {"b": 2}
    with pytest.raises(ServerError, match="conflict"):
        up({"a": 1}, {"$rename": {"a": "a"}})
    with pytest.raises(ServerError, match="string"):
        up({"a": 1}, {"$rename": {"a": 5}})


def test_set_on_insert_applies_only_on_insert() -> None:
    """``$setOnInsert`` is ignored unless the update is an upsert's insert."""
    update = {"$set": {"a": 1}, "$setOnInsert": {"created": 7}}
    assert up({}, update) == {"a": 1}
    assert up({}, update, insert=True) == {"a": 1, "created": 7}


def test_push_and_modifiers() -> None:
    """``$push`` appends (``$each``, ``$position``, ``$slice``); the field must be an array."""
    assert up({}, {"$push": {"l": 1}}) == {"l": [1]}
    assert up({"l": [1]}, {"$push": {"l": [2]}}) == {"l": [1, [2]]}
    assert up({"l": [1]}, {"$push": {"l": {"$each": [2, 3]}}}) == {"l": [1, 2, 3]}
    assert up({"l": [1, 2]}, {"$push": {"l": {"$each": [0], "$position": 0}}}) == {"l": [0, 1, 2]}
    assert up({"l": [1, 2]}, {"$push": {"l": {"$each": [3], "$slice": -2}}}) == {"l": [2, 3]}
    assert up({"l": [1, 2]}, {"$push": {"l": {"k": 1}}}) == {"l": [1, 2, {"k": 1}]}
    with pytest.raises(ServerError, match="must be an array"):
        up({"l": 1}, {"$push": {"l": 2}})
    with pytest.raises(ServerError, match=r"\$sort"):
        up({"l": []}, {"$push": {"l": {"$each": [1], "$sort": 1}}})


def test_add_to_set() -> None:
    """``$addToSet`` appends values not already present (by BSON equality)."""
    assert up({"l": [1, "a"]}, {"$addToSet": {"l": 1.0}}) == {"l": [1, "a"]}
    assert up({"l": [1]}, {"$addToSet": {"l": True}}) == {"l": [1, True]}
    assert up({}, {"$addToSet": {"l": {"$each": [1, 2, 1]}}}) == {"l": [1, 2]}


def test_pull() -> None:
    """``$pull`` removes equal elements, elements meeting a condition, or matching documents."""
    assert up({"l": [1, 2, 1, 3]}, {"$pull": {"l": 1}}) == {"l": [2, 3]}
    assert up({"l": [1, 5, 7]}, {"$pull": {"l": {"$gte": 5}}}) == {"l": [1]}
    docs = [{"k": "a", "v": 1}, {"k": "b", "v": 2}]
    assert up({"l": docs}, {"$pull": {"l": {"k": "b"}}}) == {"l": [{"k": "a", "v": 1}]}
    assert up({}, {"$pull": {"l": 1}}) == {}


def test_pop() -> None:
    """``$pop`` removes the last (1) or first (-1) element."""
    assert up({"l": [1, 2, 3]}, {"$pop": {"l": 1}}) == {"l": [1, 2]}
    assert up({"l": [1, 2, 3]}, {"$pop": {"l": -1}}) == {"l": [2, 3]}
    assert up({"l": []}, {"$pop": {"l": 1}}) == {"l": []}
    with pytest.raises(ServerError, match=r"\$pop"):
        up({"l": [1]}, {"$pop": {"l": 2}})


def test_replacement_keeps_id() -> None:
    """An update without ``$`` keys replaces the document but keeps ``_id``."""
    assert up({"_id": OID_A, "a": 1}, {"b": 2}) == {"_id": OID_A, "b": 2}
    assert up({"_id": OID_A, "a": 1}, {"_id": OID_A, "b": 2}) == {"_id": OID_A, "b": 2}
    with pytest.raises(ServerError, match="_id"):
        up({"_id": OID_A}, {"_id": OID_B})


def test_invalid_updates() -> None:
    """Mixed keys, unknown operators, ``_id`` changes and path conflicts are rejected."""
    with pytest.raises(ServerError, match="mix"):
        up({}, {"$set": {"a": 1}, "b": 2})
    with pytest.raises(ServerError, match=r"\$frob"):
        up({}, {"$frob": {"a": 1}})
    with pytest.raises(ServerError, match=r"\$currentDate"):
        up({}, {"$currentDate": {"a": True}})
    with pytest.raises(ServerError, match="immutable"):
        up({"_id": OID_A}, {"$set": {"_id": OID_B}})
    with pytest.raises(ServerError, match="immutable"):
        up({"_id": OID_A}, {"$unset": {"_id": 1}})
    assert up({"_id": OID_A}, {"$set": {"_id": OID_A}}) == {"_id": OID_A}
    with pytest.raises(ServerError, match="conflict"):
        up({}, {"$set": {"a": 1}, "$inc": {"a": 1}})
    with pytest.raises(ServerError, match="conflict"):
        up({}, {"$set": {"a.b": 1, "a": {}}})
    with pytest.raises(ServerError, match="document of fields"):
        up({}, {"$set": 5})
    with pytest.raises(ServerError, match="positional"):
        up({}, {"$set": {"a.$": 1}})
    with pytest.raises(ServerError, match="empty field name"):
        up({}, {"$set": {"a..b": 1}})
    with pytest.raises(InvalidParameterError, match="unsupported value"):
        up({}, {"$set": {"a": {1, 2}}})


def test_update_never_mutates_or_aliases_its_inputs() -> None:
    """The result is a fresh deep copy: input document and update values stay untouched."""
    doc: dict[str, Any] = {"a": {"b": [1, 2]}, "n": 1}
    value = {"deep": [1]}
    update = {"$set": {"v": value}, "$push": {"a.b": 3}, "$inc": {"n": 1}}
    before = copy.deepcopy((doc, update))
    result = up(doc, update)
    assert (doc, update) == before
    result["v"]["deep"].append(2)
    result["a"]["b"].append(4)
    assert value == {"deep": [1]} and doc["a"]["b"] == [1, 2]


# -- upsert seeds -------------------------------------------------------------------------------


def test_upsert_seed_takes_equality_conditions() -> None:
    """An upsert starts from the filter's equalities (plain, ``$eq``, inside ``$and``)."""
    seed = upsert_seed(
        {
            "key": "k",
            "n": {"$eq": 3},
            "a.b": 1,
            "$and": [{"c": True}, {"d": {"$gt": 1}}],
            "e": {"$in": [1]},
            "r": re.compile("x"),
            "$or": [{"f": 1}, {"g": 2}],
        }
    )
    assert seed == {"key": "k", "n": 3, "a": {"b": 1}, "c": True}


def test_upsert_seed_rejects_overlapping_paths() -> None:
    """Two equalities on one path (or a path and its prefix) cannot both seed a document."""
    with pytest.raises(ServerError):
        upsert_seed({"a": 1, "$and": [{"a": 2}]})
    with pytest.raises(ServerError):
        upsert_seed({"a": {"x": 1}, "a.y": 2})


def test_upsert_insert_combines_seed_and_update() -> None:
    """The inserted document is the seed with the update (and ``$setOnInsert``) applied."""
    seed = upsert_seed({"key": "k", "v": {"$lt": 3}})
    update = {"$set": {"v": 1}, "$setOnInsert": {"created": 5}}
    assert apply_update(seed, update, is_insert=True) == {"key": "k", "v": 1, "created": 5}


# -- sort ---------------------------------------------------------------------------------------


def test_sort_uses_mongodbs_cross_type_order() -> None:
    """null/missing < numbers < strings < objects < arrays < ObjectId < bool."""
    docs: list[dict[str, Any]] = [
        {"_id": "bool", "v": False},
        {"_id": "oid", "v": OID_A},
        {"_id": "obj", "v": {"a": 1}},
        {"_id": "str", "v": "a"},
        {"_id": "num", "v": 2.5},
        {"_id": "null", "v": None},
        {"_id": "missing"},
        {"_id": "int", "v": -3},
        {"_id": "empty", "v": []},
    ]
    order = [d["_id"] for d in sort_documents(docs, [("v", 1)])]
    assert order == ["empty", "null", "missing", "int", "num", "str", "obj", "oid", "bool"]
    reverse = [d["_id"] for d in sort_documents(docs, [("v", -1)])]
    assert reverse == ["bool", "oid", "obj", "str", "num", "int", "null", "missing", "empty"]


def test_nan_sorts_before_every_other_number() -> None:
    """MongoDB orders NaN below all numbers (and equal to any other NaN)."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "v": -(10**9)},
        {"_id": 2, "v": float("nan")},
        {"_id": 3, "v": None},
    ]
    assert [d["_id"] for d in sort_documents(docs, [("v", 1)])] == [3, 2, 1]
    assert compare(float("nan"), float("-inf")) == -1
    assert compare(float("nan"), float("nan")) == 0


def test_sort_on_arrays_uses_min_ascending_and_max_descending() -> None:
    """An array sorts by its smallest element ascending and its largest descending."""
    docs: list[dict[str, Any]] = [
        {"_id": 1, "v": [1, 10]},
        {"_id": 2, "v": 5},
        {"_id": 3, "v": [3, 4]},
    ]
    assert [d["_id"] for d in sort_documents(docs, [("v", 1)])] == [1, 3, 2]
    assert [d["_id"] for d in sort_documents(docs, [("v", -1)])] == [1, 2, 3]


def test_multi_field_sort_and_stability() -> None:
    """Later fields break ties; remaining ties keep the given order."""
    docs = [
        {"_id": 1, "a": 1, "b": "x"},
        {"_id": 2, "a": 2, "b": "x"},
        {"_id": 3, "a": 1, "b": "y"},
        {"_id": 4, "a": 1, "b": "x"},
        {"_id": 5, "e": {"f": 0}},
    ]
    assert [d["_id"] for d in sort_documents(docs, [("b", 1), ("a", -1)])] == [5, 2, 1, 4, 3]
    assert [d["_id"] for d in sort_documents(docs, [("a", -1), ("b", -1)])] == [2, 3, 1, 4, 5]
    assert [d["_id"] for d in sort_documents(docs, [("e.f", -1)])] == [5, 1, 2, 3, 4]
    assert [d["_id"] for d in sort_documents(docs, {"a": 1})] == [5, 1, 3, 4, 2]
    keyed = sorted(docs, key=sort_key([("b", 1), ("a", -1)]))
    assert keyed == sort_documents(docs, [("b", 1), ("a", -1)])


@pytest.mark.parametrize("spec", [[("a", 2)], [("a", True)], [("a",)], "a", [("", 1)]])
def test_bad_sort_specifications(spec: Any) -> None:
    """Directions must be 1 or -1 and fields non-empty."""
    with pytest.raises(ServerError):
        sort_documents([], spec)


# -- projection ---------------------------------------------------------------------------------


DOC: dict[str, Any] = {"_id": OID_A, "a": 1, "b": {"c": 2, "d": 3}, "l": [{"x": 1, "y": 2}, 5]}


def test_inclusion_projection() -> None:
    """Inclusion keeps the listed paths (and ``_id`` unless excluded), in document order."""
    assert project(DOC, {"b.c": 1, "a": True}) == {"_id": OID_A, "a": 1, "b": {"c": 2}}
    assert project(DOC, {"a": 1, "_id": 0}) == {"a": 1}
    assert project(DOC, {"l.x": 1}) == {"_id": OID_A, "l": [{"x": 1}]}
    assert project(DOC, {"_id": 1}) == {"_id": OID_A}
    assert project(DOC, {"zz": 1}) == {"_id": OID_A}


def test_exclusion_projection() -> None:
    """Exclusion drops the listed paths and keeps everything else."""
    assert project(DOC, {"b.c": 0, "l.y": 0}) == {
        "_id": OID_A,
        "a": 1,
        "b": {"d": 3},
        "l": [{"x": 1}, 5],
    }
    assert project(DOC, {"_id": 0}) == {k: v for k, v in DOC.items() if k != "_id"}
    assert project(DOC, {"a": 0, "_id": 1}) == {"_id": OID_A, "b": DOC["b"], "l": DOC["l"]}
    assert project(DOC, None) == DOC and project(DOC, {}) == DOC


def test_invalid_projections() -> None:
    """Mixing inclusion and exclusion (other than ``_id``) and path collisions are errors."""
    with pytest.raises(ServerError, match="exclusion"):
        project(DOC, {"a": 1, "b": 0})
    with pytest.raises(ServerError, match="collision"):
        project(DOC, {"b": 1, "b.c": 1})
    with pytest.raises(ServerError, match="unsupported"):
        project(DOC, {"l": {"$slice": 1}})


def test_projection_returns_copies() -> None:
    """A projected document shares no mutable state with its source."""
    result = project(DOC, {"b": 1})
    result["b"]["c"] = 99
    assert DOC["b"]["c"] == 2


# -- copies and values ---------------------------------------------------------------------------


def test_clone_normalises_and_rejects() -> None:
    """Clones are plain JSON-like values; unsupported types and non-string keys are refused."""
    source: dict[str, Any] = {"t": (1, [2]), "d": {"e": OID_A}}
    copied = clone(source)
    assert copied == {"t": [1, [2]], "d": {"e": OID_A}}
    copied["t"][1].append(3)
    assert source["t"][1] == [2]
    with pytest.raises(InvalidParameterError):
        clone({"a": object()})
    with pytest.raises(InvalidParameterError):
        clone({1: "a"})


def test_identical_is_strict() -> None:
    """BSON identity distinguishes int/float/bool and field order."""
    assert identical({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]})
    assert not identical({"a": 1}, {"a": 1.0})
    assert not identical({"a": 1}, {"a": True})
    assert not identical({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert identical(float("nan"), float("nan"))


# -- properties ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["", "a", "b", "ab"]),
    st.sampled_from([OID_A, OID_B]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3),
    ),
    max_leaves=6,
)
documents = st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3)


@settings(max_examples=200, deadline=None)
@given(doc=documents, choices=st.lists(values, max_size=4), path=st.sampled_from(["a", "a.x"]))
def test_in_equals_any_of_eq(doc: dict[str, Any], choices: list[Any], path: str) -> None:
    """``{f: {$in: [v...]}}`` is ``$or`` of ``{f: {$eq: v}}``; ``$nin`` is its negation."""
    expected = any(matches(doc, {path: {"$eq": v}}) for v in choices)
    assert matches(doc, {path: {"$in": choices}}) == expected
    assert matches(doc, {path: {"$nin": choices}}) == (not expected)


@settings(max_examples=200, deadline=None)
@given(
    doc=documents,
    field=st.sampled_from(["a", "b.x", "c"]),
    value=values,
    op=st.sampled_from(["$set", "$unset", "$push", "$addToSet", "$max", "$min", "$inc"]),
)
def test_apply_update_never_mutates_its_input(
    doc: dict[str, Any], field: str, value: Any, op: str
) -> None:
    """Whatever happens (even an error), the input document and update are unchanged."""
    update = {op: {field: value}}
    before = copy.deepcopy((doc, update))
    with contextlib.suppress(ServerError):
        apply_update(doc, update, is_insert=False)
    assert identical(list(before), [doc, update])


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(documents, max_size=8),
    spec=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([1, -1])), max_size=2),
)
def test_sort_is_an_ordered_permutation(
    docs: list[dict[str, Any]], spec: list[tuple[str, int]]
) -> None:
    """Sorting returns the same documents, ordered by the spec's keys."""
    numbered = [{**d, "_n": i} for i, d in enumerate(docs)]
    result = sort_documents(numbered, spec)
    assert sorted(d["_n"] for d in result) == list(range(len(docs)))
    key = sort_key(spec)
    assert all(not key(b) < key(a) for a, b in itertools.pairwise(result))


@given(a=values, b=values)
def test_compare_is_antisymmetric(a: Any, b: Any) -> None:
    """The cross-type order is total: compare(a, b) == -compare(b, a)."""
    assert compare(a, b) == -compare(b, a)
    assert compare(a, a) == 0


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
def test_a_numeric_bound_on_a_top_level_field_matches_as_the_general_path(op: str) -> None:
    """The shortcut for ``{field: {op: number}}`` answers as the general operator code does
    (which a second, neutral condition selects): type bracketing, NaN, arrays, missing."""
    values: list[Any] = [0, 1, -1, 2.5, 1.0, float("nan"), float("inf"), True, None, "1"]
    values += [[], [1], [0, 3], [True], ["x", 2.0], [[1]], {"a": 1}, [float("nan")]]
    for bound in (0, 1, 1.0, 2.5, -1, float("inf"), float("-inf")):
        short, general = {"v": {op: bound}}, {"v": {op: bound, "$exists": True}}
        for doc in [{}, *({"v": value} for value in values)]:
            assert matches(doc, short) == matches(doc, general), (short, doc)
