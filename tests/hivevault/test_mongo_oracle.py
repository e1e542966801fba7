"""The fake vault's Mongo semantics against an independent engine (issue 12, hygiene): mongomock,
a dev-only oracle, answers the same random filters, sorts and updates on the same random
documents. The hand-written engine stays (it is 30-40x faster, see :mod:`hivevault.mongo`);
this keeps it honest on the shapes a backup helper and its users send.

The generators stay inside what mongomock itself models as MongoDB does: one BSON class per
field in a sort (mongomock orders mixed types its own way), no ``$regex`` (the vault runs RE2,
a documented subset), no booleans (mongomock takes ``False`` for ``0``, as Python does;
MongoDB keeps them apart), no stored nulls, no ``$size``
(mongomock counts an embedded document's fields; MongoDB matches arrays only), and on dotted
paths only conditions a missing field never meets (mongomock does not treat ``a.n`` as missing
when ``a`` is a scalar or null, where MongoDB and the fake vault do). Queries still
compare with null, which matches missing fields. Each exclusion is a place where the fake vault
was checked against MongoDB's documentation instead.
"""

from __future__ import annotations

from typing import Any

import mongomock
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hivevault.mongo import apply_update, matches, sort_documents

FIELDS = ("a", "b", "c")

scalars = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["", "x", "y", "xy"]))
stored_scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["", "x", "y", "xy"]))
values = st.one_of(
    stored_scalars,
    st.lists(st.one_of(st.integers(-5, 5), st.sampled_from(["x", "y"])), max_size=3),
    st.fixed_dictionaries({"n": st.integers(-5, 5)}),
)


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 8))
    docs = []
    for number in range(count):
        doc: dict[str, Any] = {"_id": number}
        for field in FIELDS:
            if draw(st.booleans()):
                doc[field] = draw(values)
        docs.append(doc)
    return docs


def _condition() -> st.SearchStrategy[Any]:
    comparable = st.one_of(st.integers(-5, 5), st.sampled_from(["", "x", "y"]))
    return st.one_of(
        scalars,
        st.builds(
            lambda op, value: {op: value},
            st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
            comparable,
        ),
        st.builds(lambda value: {"$ne": value}, scalars),
        st.builds(lambda items: {"$in": items}, st.lists(scalars, max_size=3)),
        st.builds(lambda items: {"$nin": items}, st.lists(scalars, max_size=3)),
        st.builds(lambda flag: {"$exists": flag}, st.booleans()),
    )


def _positive() -> st.SearchStrategy[Any]:
    """Conditions a missing field never meets (for dotted paths, see the module docstring)."""
    comparable = st.one_of(st.integers(-5, 5), st.sampled_from(["", "x", "y"]))
    return st.one_of(
        comparable,
        st.builds(
            lambda op, value: {op: value},
            st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
            comparable,
        ),
        st.builds(lambda items: {"$in": items}, st.lists(comparable, max_size=3)),
        st.just({"$exists": True}),
    )


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    top = st.builds(lambda p, c: {p: c}, st.sampled_from(FIELDS), _condition())
    dotted = st.builds(lambda p, c: {p: c}, st.sampled_from(["a.n", "b.n"]), _positive())
    return st.one_of(top, dotted)


filters = st.recursive(
    _leaf(),
    lambda inner: st.builds(
        lambda op, parts: {op: parts},
        st.sampled_from(["$and", "$or", "$nor"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=4,
)

ORACLE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _collection(docs: list[dict[str, Any]]) -> Any:
    collection = mongomock.MongoClient().db.c
    if docs:
        collection.insert_many([dict(d) for d in docs])
    return collection


@ORACLE
@given(documents(), filters)
def test_filters_match_what_the_oracle_finds(docs: list[dict[str, Any]], query: Any) -> None:
    expected = [d["_id"] for d in _collection(docs).find(query)]
    assert [d["_id"] for d in docs if matches(d, query)] == expected, query


@st.composite
def sortable(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """Documents whose sort fields each hold one BSON class (or are missing)."""
    kinds = {field: draw(st.sampled_from(["int", "str"])) for field in FIELDS}
    docs = []
    for number in range(draw(st.integers(0, 8))):
        doc: dict[str, Any] = {"_id": number}
        for field in FIELDS:
            if draw(st.integers(0, 3)):
                doc[field] = (
                    draw(st.integers(-3, 3))
                    if kinds[field] == "int"
                    else draw(st.sampled_from(["", "a", "b", "ab"]))
                )
        docs.append(doc)
    fields = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True))
    spec = [(field, draw(st.sampled_from([1, -1]))) for field in fields]
    return docs, [*spec, ("_id", 1)]


@ORACLE
@given(sortable())
def test_sorts_order_as_the_oracle_does(case: tuple[list[dict[str, Any]], Any]) -> None:
    docs, spec = case
    expected = [d["_id"] for d in _collection(docs).find({}).sort(spec)]
    assert [d["_id"] for d in sort_documents(list(docs), spec)] == expected, spec


updates = st.one_of(
    st.builds(lambda f, v: {"$set": {f: v}}, st.sampled_from([*FIELDS, "d.e"]), values),
    st.builds(lambda f: {"$unset": {f: ""}}, st.sampled_from(FIELDS)),
    st.builds(lambda f, n: {"$inc": {f: n}}, st.just("n"), st.integers(-3, 3)),
    st.builds(lambda f, n: {"$max": {f: n}}, st.just("n"), st.integers(-3, 3)),
    st.builds(lambda f, n: {"$min": {f: n}}, st.just("n"), st.integers(-3, 3)),
    st.builds(lambda f, v: {"$push": {f: v}}, st.just("list"), st.integers(-3, 3)),
    st.builds(lambda f: {"$pop": {f: 1}}, st.just("list")),
)


@ORACLE
@given(
    st.fixed_dictionaries(
        {"_id": st.just(1)},
        optional={
            "a": values,
            "n": st.integers(-5, 5),
            "list": st.lists(st.integers(-3, 3), max_size=3),
        },
    ),
    updates,
)
def test_updates_give_what_the_oracle_stores(doc: dict[str, Any], update: Any) -> None:
    collection = _collection([doc])
    try:
        collection.update_one({"_id": 1}, update)
    except (KeyError, TypeError):  # mongomock's own crashes ($pop on a missing field): no oracle
        assume(False)
    expected = collection.find_one({"_id": 1})
    assert apply_update(doc, update, is_insert=False) == expected, update
