"""The fake vault's indexes on ``key`` and ``modified`` and its kept filter plans: they make
answers faster and never different; a keyset page looks at its own documents only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brh.vault import (
    ObjectId,
    ServerError,
    VaultError,
)
from hivevault import mongo
from hivevault.collection import Collection
from hivevault.planner import AT_BOUND, PAST_BOUND, PLAN_CACHE_SIZE, compile_plan
from hivevault.vault import FakeVault
from tests.hivevault.support import StepClock, check_indexes, make, run, state

# -- the key and modified indexes --------------------------------------------------------------
#
# The indexes only pre-select candidates; these tests check that they never change an answer: each
# random history is replayed on a second vault whose collections scan every document, every query
# is also answered by brute force (``mongo.matches`` over ``vault.documents``), and the indexes are
# compared with ones rebuilt from scratch after every step.

_KEYS = ["a", "b", "c"]
_key_values = st.one_of(
    st.sampled_from(_KEYS),
    st.lists(st.one_of(st.sampled_from(_KEYS), st.integers(0, 2), st.none()), max_size=3),
    st.integers(0, 2),
    st.none(),
    st.just({"k": "a"}),
)
_stamps = st.integers(0, 12)
# (NaN and infinities are no longer stored or accepted in filters: no client can send them.)
_modified_values = st.one_of(
    _stamps,
    st.sampled_from([2.5, -1.0, -0.0, 1e308, True, None, "3", [], [1, 5.5, "x"]]),
    st.lists(st.one_of(_stamps, st.sampled_from([2.5, 7.5, -1e308, False, "9"])), max_size=3),
)
_bound = st.one_of(_stamps, st.sampled_from([2.5, 1e308, -1e308, -0.0]))
# Ids like the ones the vault makes (its clock's seconds, then a counter), to page after.
_ids = st.builds(lambda s, n: ObjectId(f"{s:08x}{n:016x}"), st.integers(0, 8), st.integers(0, 40))


@st.composite
def _index_filters(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """Filters of the shapes the indexes use (and some they must not be fooled by)."""
    shape = draw(st.integers(0, 13 if depth < 2 else 5))
    if shape == 12:  # a bound on _id (a pass paging by _id), alone or with another condition
        op = draw(st.sampled_from(["$gt", "$gt", "$gte", "$eq", None]))
        oid = draw(_ids)
        bounded: dict[str, Any] = {"_id": oid if op is None else {op: oid}}
        if op is not None and draw(st.booleans()):
            bounded["_id"]["$lte"] = draw(_ids)
        if draw(st.booleans()):
            bounded["x"] = {"$ne": draw(st.integers(0, 2))}
        return bounded
    if shape == 13:  # _id compared in ways that bound nothing
        return {"_id": draw(st.sampled_from([{"$gt": "x"}, {"$gte": 0}, {"$ne": None}]))}
    if shape >= 10:  # the helper's pull filters (brh.core), keyset page and overlap window
        stamp, lower = draw(_stamps), draw(_stamps)
        tie = draw(st.sampled_from(["_id", "x"]))
        past = draw(_ids) if tie == "_id" else 0
        after = {"$or": [{"modified": {"$gt": stamp}}, {"modified": stamp, tie: {"$gt": past}}]}
        window = {
            "$or": [
                {"modified": {"$gt": lower}},
                {"modified": {"$gte": lower - 3, "$lte": lower}, "x": {"$nin": [1]}},
            ]
        }
        return {"$and": [window, after]} if shape == 10 else after
    if shape == 0:
        return {"key": draw(st.sampled_from([*_KEYS, "z"]))}
    if shape == 1:
        return {"key": {"$eq": draw(st.sampled_from(_KEYS))}}
    if shape == 2:
        return {"key": {"$in": draw(st.lists(st.sampled_from([*_KEYS, "z"]), max_size=3))}}
    if shape == 3:
        op = draw(st.sampled_from(["$gte", "$gt", "$eq"]))
        condition: dict[str, Any] = {op: draw(_bound)}
        if draw(st.booleans()):
            condition["$lte"] = draw(_stamps)
        return {"modified": condition}
    if shape == 4:
        return {"modified": draw(_bound)}
    if shape == 5:  # not bounds: must fall back to a scan
        return draw(
            st.sampled_from(
                [
                    {},
                    {"modified": {"$lt": 3}},
                    {"modified": {"$not": {"$gte": 2}}},
                    {"key": {"$ne": "a"}},
                    {"key": {"$in": ["a", 1]}},
                    {"x": 1},
                ]
            )
        )
    if shape in (6, 7):
        op = "$or" if shape == 6 else "$and"
        branches = draw(st.lists(_index_filters(depth + 1), min_size=1, max_size=3))
        return {op: branches}
    combined = draw(_index_filters(depth + 1))
    extra = draw(_index_filters(depth + 1))
    return {**extra, **combined}


_updates = st.one_of(
    st.fixed_dictionaries({"$set": st.fixed_dictionaries({"key": _key_values})}),
    st.fixed_dictionaries({"$set": st.fixed_dictionaries({"modified": _modified_values})}),
    st.just({"$unset": {"key": ""}}),
    st.just({"$unset": {"modified": ""}}),
    st.just({"$rename": {"key": "old"}}),
    st.just({"$rename": {"old": "key"}}),
    st.just({"$rename": {"modified": "key"}}),
    st.fixed_dictionaries({"$set": st.fixed_dictionaries({"x": st.integers(0, 2)})}),
)


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:  # an id of the client's own, out of insertion order
        doc["_id"] = draw(_ids)
    if draw(st.booleans()):
        doc["key"] = draw(_key_values)
    if draw(st.booleans()):
        doc["modified"] = draw(_modified_values)
    if draw(st.booleans()):
        doc["x"] = draw(st.integers(0, 2))
    return doc


_writes = st.one_of(
    st.tuples(st.just("insert"), _documents(), st.booleans()),
    st.tuples(st.just("update_one"), _index_filters(), _updates, st.booleans(), st.booleans()),
    st.tuples(st.just("update_many"), _index_filters(), _updates, st.booleans(), st.booleans()),
    st.tuples(st.just("delete_one"), _index_filters()),
    st.tuples(st.just("delete_many"), _index_filters()),
)
_steps = st.one_of(
    _writes,
    st.tuples(st.just("clock"), st.integers(-2, 3)),
    st.tuples(st.just("recreate")),
    # writes in a transaction, then undone (True) or kept (vaultd brackets each request so)
    st.tuples(st.just("transaction"), st.lists(_writes, min_size=1, max_size=4), st.booleans()),
)


def _outcome(call: Callable[[], Awaitable[Any]]) -> str:
    """The strict text of a call's result or error (repr tells 1 from 1.0 and True)."""
    try:
        return repr(("ok", run(call())))
    except VaultError as exc:
        return repr(("error", type(exc).__name__, str(exc)))


def _scan_everything(self: Collection, filter: Any) -> Any:
    return self.docs.items()


def _write(vault: FakeVault, step: tuple[Any, ...]) -> Awaitable[Any]:
    """The call of one random step on collection ``c``."""
    kind, *args = step
    if kind == "insert":
        return vault.insert_one("c", args[0], timestamp=args[1])
    if kind == "insert_many":  # the client's own stamps, to vary ``modified``
        return vault.insert_many("c", args[0], timestamp=False)
    method = getattr(vault, kind)
    if kind.startswith("update"):
        return method("c", args[0], args[1], upsert=args[2], timestamp=args[3])  # type: ignore[no-any-return]
    return method("c", *args)  # type: ignore[no-any-return]


_PULL_SORT = [("modified", 1), ("_id", 1)]
_ID_SORT = [("_id", 1)]
_sorts = st.sampled_from(
    [
        None,
        _PULL_SORT,
        _PULL_SORT,
        {"modified": 1, "_id": 1},
        [["modified", 1], ["_id", 1]],
        [("modified", 1)],
        [("modified", -1), ("_id", -1)],
        [("modified", 1), ("_id", -1)],
        [("modified", 1), ("_id", 1), ("x", 1)],
        _ID_SORT,
        _ID_SORT,
        {"_id": 1},
        [("_id", 1), ("x", -1)],
        [("_id", -1)],
    ]
)


_id_bounds = st.tuples(st.integers(0, 40), st.sampled_from(["$gt", "$gt", "$gte", "$eq", None]))
_id_walks = st.lists(
    st.tuples(
        st.sampled_from(["alone", "and", "or", "both"]),
        _id_bounds,
        _id_bounds,
        st.integers(0, 2),
        st.sampled_from([None, 1, 3]),
    ),
    max_size=4,
)


def _id_walk(docs: list[dict[str, Any]], walk: tuple[Any, ...]) -> tuple[Any, ...]:
    """A query sorted by ``_id`` whose filter bounds ``_id`` by stored ids (the i-th in ``_id``
    order), as a pass paging by ``_id`` makes it: alone, in an ``$and`` with another clause or
    another bound, or in an ``$or`` of two bounds."""
    kind, first, second, skip, limit = walk
    ids = sorted(doc["_id"].hex for doc in docs) or ["0" * 24]

    def bound(pick: tuple[int, str | None]) -> dict[str, Any]:
        oid = ObjectId(ids[pick[0] % len(ids)])
        return {"_id": oid if pick[1] is None else {pick[1]: oid}}

    filter: dict[str, Any] = bound(first)
    if kind == "and":
        filter = {"$and": [filter, {"x": {"$ne": 1}}]}
    elif kind == "or":
        filter = {"$or": [filter, bound(second)]}
    elif kind == "both":
        filter = {"$and": [filter, bound(second)]}
    return filter, skip, limit, _ID_SORT


@settings(max_examples=100, deadline=None)
@given(
    initial=st.lists(_documents(), max_size=20),
    eager=st.booleans(),
    steps=st.lists(_steps, max_size=30),
    queries=st.lists(
        st.tuples(_index_filters(), st.integers(0, 2), st.sampled_from([None, 1, 3]), _sorts),
        min_size=1,
        max_size=8,
    ),
    walks=_id_walks,
)
def test_indexes_never_change_an_answer(
    initial: list[dict[str, Any]],
    steps: list[tuple[Any, ...]],
    queries: list[tuple[dict[str, Any], int, int | None, Any]],
    walks: list[tuple[Any, ...]],
    eager: bool,
) -> None:
    """Random writes (changing ``key`` and ``modified`` too), then the shapes the indexes serve:
    every answer, error, stamp, id and log entry is the one of a vault that scans everything,
    and queries agree with ``mongo.matches`` over ``documents``, sorted by ``mongo``'s sort
    when they have one (issue 15 item 4: a query sorted by ``(modified, _id)`` walks the
    ``modified`` index, and skip and limit stop the walk: the same answers, arrays,
    non-numbers, strict and keyset bounds included; and its follow-up: a query sorted by
    ``_id`` walks the ids from the filter's ``_id`` bound, ``$gt``/``$gte``/``$eq``, in
    ``$and`` and ``$or``, after inserts, updates, deletes and undone transactions)."""
    with pytest.MonkeyPatch.context() as patch:
        if eager:  # use the modified index even when it leaves every document
            patch.setattr(Collection, "modified_share", 1.0)
        _replay_and_query(initial, steps, queries, walks)


def _replay_and_query(
    initial: list[dict[str, Any]],
    steps: list[tuple[Any, ...]],
    queries: list[tuple[dict[str, Any], int, int | None, Any]],
    walks: list[tuple[Any, ...]],
) -> None:
    clock = StepClock(3.0)
    vault, reference = make(clock, "c"), make(clock, "c")

    def both(step: tuple[Any, ...]) -> None:
        got = _outcome(lambda: _write(vault, step))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Collection, "candidates", _scan_everything)
            want = _outcome(lambda: _write(reference, step))
        assert got == want

    if initial:
        both(("insert_many", initial))
    for step in steps:
        if step[0] == "clock":
            clock.now = max(0.0, clock.now + step[1])
        elif step[0] == "recreate":
            both(("delete_collection",))
            both(("create_collection",))
        elif step[0] == "transaction":
            _, writes, undone = step
            vault.begin()
            reference.begin()
            for write in writes:
                both(write)
            for each in (vault, reference):
                if undone:
                    each.rollback()
                else:
                    each.commit()
        else:
            both(step)
        assert repr(state(vault)) == repr(state(reference))
        check_indexes(vault)
    assert vault.requests == reference.requests

    docs = vault.documents("c")
    for filter, skip, limit, sort in [*queries, *(_id_walk(docs, walk) for walk in walks)]:
        brute = [doc for doc in docs if mongo.matches(doc, filter)]
        window = slice(skip, None if limit is None else skip + limit)
        if sort:
            found = run(vault.query("c", filter, sort=sort, skip=skip, limit=limit))
            assert repr(found) == repr(mongo.sort_documents(brute, sort)[window])
        else:
            found = run(vault.find_many("c", filter, skip=skip, limit=limit))
            assert repr(found) == repr(brute[window])
        assert repr(run(vault.find_one("c", filter))) == repr(brute[0] if brute else None)
        count = run(vault.count_documents("c", filter, skip=skip, limit=limit))
        assert count == len(brute[window])


def test_modified_index_serves_a_pull_in_natural_and_sorted_order() -> None:
    """A bound leaving few documents uses the index; answers keep natural or sorted order."""
    clock = StepClock(100.0)
    vault = make(clock, "c")
    for i in range(40):
        clock.now = 100.0 + (i * 7) % 40  # stamps out of insertion order
        run(vault.insert_one("c", {"key": f"k{i % 5}", "i": i}))
    run(vault.update_one("c", {"key": "k3"}, {"$set": {"modified": [1, 500]}}, timestamp=False))
    run(vault.update_many("c", {"i": {"$lt": 3}}, {"$set": {"modified": "late"}}, timestamp=False))
    coll = vault._collections["c"]
    pull = {"$or": [{"modified": {"$gt": 130}}, {"modified": 130, "i": {"$gt": 0}}]}
    assert len(list(coll.candidates(compile_plan(pull)))) < 40
    docs = vault.documents("c")
    brute = [d for d in docs if mongo.matches(d, pull)]
    chosen = [d["i"] for d in brute]
    assert 3 in chosen and 0 not in chosen and 0 < len(chosen) < 20  # [1, 500] is in; "late" out
    assert run(vault.find_many("c", pull)) == brute
    assert run(vault.query("c", pull, sort=_PULL_SORT)) == mongo.sort_documents(brute, _PULL_SORT)
    assert run(vault.count_documents("c", pull)) == len(brute)
    assert (
        run(vault.find_many("c", {"key": {"$in": ["k1", "k3"]}}, limit=2))
        == [d for d in docs if d["key"] in ("k1", "k3")][:2]
    )


def _bulk(size: int, stamp: float = 500.0) -> FakeVault:
    """A vault whose collection ``c`` holds ``size`` documents stamped in one vault second, ids
    not in insertion order (as after a client's bulk upload; ids of its own)."""
    vault = make(StepClock(stamp), "c")
    ids = [ObjectId(f"{(i * 7919) % size:024x}") for i in range(size)]
    run(vault.insert_many("c", [{"_id": oid, "key": f"k{i}"} for i, oid in enumerate(ids)]))
    return vault


def test_a_keyset_page_examines_its_window_not_the_collection() -> None:
    """Issue 15 item 4: paging through 3,000 documents of one stamp by ``(modified, _id)`` as the
    helper does (``brh.core.pull_filter``'s ``$or``, limit 250) gives MongoDB's order, and each
    page evaluates its filter on its own documents only (the walk starts past the previous
    page's ``(modified, _id)``), not on every document left."""
    vault = _bulk(3000)
    want = mongo.sort_documents(vault.documents("c"), _PULL_SORT)
    pages: list[list[dict[str, Any]]] = []
    after: tuple[int, ObjectId] | None = None
    while True:
        filter: dict[str, Any] = {}
        if after is not None:
            stamp, last = after
            filter = {
                "$or": [{"modified": {"$gt": stamp}}, {"modified": stamp, "_id": {"$gt": last}}]
            }
        vault.reset_log()
        page = run(vault.query("c", filter, sort=_PULL_SORT, limit=250))
        assert vault.examined == len(page), (len(pages), vault.examined)
        if not page:
            break
        pages.append(page)
        after = (page[-1]["modified"], page[-1]["_id"])
    assert [doc for page in pages for doc in page] == want
    assert [len(page) for page in pages] == [250] * 12


def test_a_keyset_page_by_id_examines_its_window_not_the_collection() -> None:
    """Issue 15 item 4, follow-up: a full pass paging 2,000 documents by ``_id`` alone (sorted
    by ``_id``, ``{}`` then ``{"_id": {"$gt": last}}``, alone or in an ``$and`` with another
    clause, limit page + 1, a projection) gives MongoDB's order, and each page evaluates its
    filter on its own documents only (the walk starts past the previous page's last ``_id``),
    not on every document left."""
    vault = _bulk(2000)
    want = [{"_id": d["_id"], "key": d["key"]} for d in vault.documents("c")]
    want.sort(key=lambda doc: doc["_id"].hex)
    seen: list[dict[str, Any]] = []
    sizes: list[int] = []
    last: ObjectId | None = None
    while True:
        filter: dict[str, Any] = {}
        if last is not None:
            after = {"_id": {"$gt": last}}
            filter = after if len(sizes) % 2 else {"$and": [after, {"key": {"$ne": "none"}}]}
        vault.reset_log()
        page = run(vault.query("c", filter, sort=_ID_SORT, limit=251, projection={"key": 1}))
        assert vault.examined == len(page), (len(sizes), vault.examined)
        seen.extend(page[:250])
        sizes.append(len(page))
        if len(page) <= 250:
            break
        last = page[249]["_id"]
    assert seen == want
    assert sizes == [251] * 7 + [250]


def test_gt_on_modified_is_a_strict_bound() -> None:
    """Issue 15 item 4: after a bulk upload in one vault second, an idle poll with
    ``{"modified": {"$gt": that second}}`` evaluates its filter on no document (the index
    bound is strict), sorted or not; ``$gte`` still finds them all."""
    vault = _bulk(1000)
    stamp = vault.documents("c")[0]["modified"]
    for sort in (None, _PULL_SORT):
        vault.reset_log()
        assert run(vault.query("c", {"modified": {"$gt": stamp}}, sort=sort, limit=500)) == []
        assert run(vault.find_many("c", {"modified": {"$gt": stamp}})) == []
        assert run(vault.count_documents("c", {"modified": {"$gt": stamp}})) == 0
        assert vault.examined == 0
        assert len(run(vault.query("c", {"modified": {"$gte": stamp}}, sort=sort))) == 1000


def test_plans_bound_modified_and_id_as_a_keyset() -> None:
    """Issue 15 item 4: what a filter tells the ``modified`` index, ``(n, s)``: past ``n``
    (``$gt``), from ``n`` (``$gte``, equality), or past ``(n, _id)`` (a keyset page); the
    tightest over ``$and``, the loosest over ``$or``, nothing when a branch has none."""
    oid = ObjectId("0" * 23 + "7")
    page = {"$or": [{"modified": {"$gt": 5}}, {"modified": 5, "_id": {"$gt": oid}}]}
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"modified": {"$gt": 5}}, (5, PAST_BOUND)),
        ({"modified": {"$gte": 5}}, (5, AT_BOUND)),
        ({"modified": 5.5}, (5.5, AT_BOUND)),
        ({"modified": {"$eq": 5}, "_id": {"$gt": oid}}, (5, oid.hex)),
        ({"modified": {"$gte": 5}, "_id": {"$gt": oid}}, (5, AT_BOUND)),  # not an equality
        ({"modified": 5, "_id": {"$gt": "x"}}, (5, AT_BOUND)),  # not an ObjectId
        (page, (5, oid.hex)),
        ({"$and": [page, {"modified": {"$gte": 3}}]}, (5, oid.hex)),
        ({"$and": [page, {"modified": {"$gt": 5}}]}, (5, PAST_BOUND)),
        ({"$or": [page, {"modified": {"$gte": 5}}]}, (5, AT_BOUND)),
        ({"$or": [page, {"key": "a"}]}, None),
        ({"modified": {"$gt": 5, "$gte": 5}}, (5, PAST_BOUND)),
        ({"modified": {"$gt": True}}, None),
        ({"modified": {"$lt": 5}}, None),
    ]
    for filter, low in cases:
        assert compile_plan(filter).low == low, filter


def test_plans_bound_id_for_a_pass_by_id() -> None:
    """Issue 15 item 4, follow-up: what a filter tells the ``_id`` index, a string every
    match's ``_id`` hex is at least: the hex (``$gte``, ``$eq``, equality) or just past it
    (``$gt``); the tightest over ``$and`` and one document's conditions, the loosest over
    ``$or``, nothing when a branch has none or the value is not an ObjectId."""
    a, b = ObjectId("0" * 23 + "7"), ObjectId("0" * 23 + "9")
    past_a = a.hex + PAST_BOUND
    assert a.hex < past_a < b.hex
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({}, None),
        ({"_id": {"$gt": a}}, past_a),
        ({"_id": {"$gte": a}}, a.hex),
        ({"_id": {"$eq": a}}, a.hex),
        ({"_id": a}, a.hex),
        ({"_id": {"$gte": a, "$gt": a}}, past_a),
        ({"_id": {"$gt": a, "$gte": b}}, b.hex),
        ({"_id": {"$gt": "x"}}, None),
        ({"_id": {"$gte": 3}}, None),
        ({"_id": {"$lt": b}}, None),
        ({"_id": {"$in": [a]}}, None),
        ({"$and": [{"_id": {"$gt": a}}, {"key": "k"}]}, past_a),
        ({"$and": [{"_id": {"$gt": a}}, {"_id": {"$gte": b}}]}, b.hex),
        ({"$or": [{"_id": {"$gt": a}}, {"_id": b}]}, past_a),
        ({"$or": [{"_id": {"$gt": a}}, {"key": "k"}]}, None),
        ({"_id": {"$gt": a}, "$or": [{"_id": b}, {"_id": {"$gte": b}}]}, b.hex),
    ]
    for filter, low in cases:
        assert compile_plan(filter).id_low == low, filter


def test_a_key_array_matches_every_clause_of_an_and() -> None:
    """A document whose ``key`` is ``["a", "b"]`` matches ``{"key": "a"}`` and ``{"key": "b"}``
    both, so their ``$and`` finds it: the ``key`` index is asked for one clause's keys, not for
    their intersection (which is empty)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"key": ["a", "b"], "i": 1}))
    run(vault.insert_one("c", {"key": "a", "i": 2}))
    for filter in (
        {"$and": [{"key": "a"}, {"key": "b"}]},
        {"key": "b", "$and": [{"key": {"$in": ["a", "z"]}}]},
        {"$and": [{"key": "a"}, {"$or": [{"key": "b"}, {"key": "c"}]}]},
    ):
        assert [d["i"] for d in run(vault.find_many("c", filter))] == [1], filter
        assert run(vault.count_documents("c", filter)) == 1, filter


def test_filters_tell_equal_looking_values_apart() -> None:
    """1, 1.0 and True, field order and nesting are told apart (with the indexes and without),
    and each answer is the brute-force one, asked twice."""
    vault = make(StepClock(), "c")
    values: list[Any] = [1, 1.0, True, "1", [1], {"a": 1, "b": 2}, {"b": 2, "a": 1}, None]
    for value in values:
        run(vault.insert_one("c", {"v": value}, timestamp=False))
    docs = vault.documents("c")
    for _ in range(2):
        for value in values:
            for filter in ({"v": value}, {"v": {"$eq": value}}, {"v": {"$in": [value]}}):
                want = [d for d in docs if mongo.matches(d, filter)]
                assert repr(run(vault.find_many("c", filter))) == repr(want), filter


def test_simple_filter_plans_are_kept_bounded_and_told_apart_by_type() -> None:
    """A vault keeps the plans of one-condition filters (a quiet helper's polls repeat them):
    equal-in-Python values of different types are different filters for MongoDB, an invalid
    filter is refused every time and never kept, and at most a bounded number are kept."""
    vault = make(StepClock(5.0), "c")
    for value in (1, 1.0, True, "1"):
        run(vault.insert_one("c", {"v": value, "key": f"{type(value).__name__}"}))

    def keys(filter: dict[str, Any]) -> list[str]:
        return [doc["key"] for doc in run(vault.find_many("c", filter))]

    assert keys({"v": {"$eq": 1}}) == ["int", "float"]
    assert keys({"v": {"$eq": True}}) == ["bool"]
    assert keys({"v": "1"}) == ["str"]
    assert keys({"v": {"$eq": 1.0}}) == ["int", "float"]
    assert keys({"v": {"$gte": 1}}) == ["int", "float"]
    assert keys({"v": {"$eq": 1}}) == ["int", "float"]  # again, from the kept plan
    kept = len(vault._plans)
    assert kept == 4  # $eq 1, $eq 1.0, "1", $gte 1 ($eq True is not a number: not kept)
    for _ in range(2):
        with pytest.raises(ServerError, match="unknown operator"):
            run(vault.find_many("c", {"v": {"$nope": 1}}))
    assert len(vault._plans) == kept
    for i in range(600):
        run(vault.find_many("c", {"key": f"k{i}"}))
    assert 0 < len(vault._plans) <= PLAN_CACHE_SIZE
    assert keys({"key": "int"}) == ["int"]
