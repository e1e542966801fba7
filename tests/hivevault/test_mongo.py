"""Tests of hivevault.mongo: sort, projection, copies and values, and properties of its
filters, updates and order (the filters and updates have modules of their own).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brh.vault import InvalidParameterError, ObjectId, ServerError
from hivevault.mongo import (
    apply_update,
    clone,
    compare,
    identical,
    matches,
    project,
    sort_documents,
    sort_key,
)

OID_A = ObjectId("000000010000000000000001")
OID_B = ObjectId("000000020000000000000000")


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
