"""Tests of hivevault.vault.FakeVault: Hive's database service semantics, in memory."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InvalidParameterError,
    ObjectId,
    ServerError,
    Vault,
    VaultError,
)
from hivevault import limits, mongo
from hivevault.collection import Collection
from hivevault.planner import PLAN_CACHE_SIZE, compile_plan
from hivevault.vault import MAX_DOCUMENT_BYTES, FakeVault, VaultRequest
from tests.unstorable import ACCEPTED, UNSTORABLE, Case, nest

T = TypeVar("T")


class StepClock:
    """A test clock: returns ``now`` and can be moved by hand (forwards or backwards)."""

    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def make(clock: StepClock | None = None, *collections: str) -> FakeVault:
    vault = FakeVault(clock=clock or StepClock())
    for name in collections:
        run(vault.create_collection(name))
    return vault


def state(vault: FakeVault) -> dict[str, list[dict[str, Any]]]:
    return {name: vault.documents(name) for name in vault.collection_names()}


def test_fake_vault_implements_the_protocol() -> None:
    """FakeVault offers every method of brh.vault.Vault."""
    assert isinstance(FakeVault(clock=StepClock()), Vault)


def test_methods_complete_without_awaiting() -> None:
    """The coroutines never suspend: one send() finishes them (no hidden latency)."""
    vault = make(None, "c")
    coroutine: Coroutine[Any, Any, Any] = vault.insert_one("c", {"a": 1})
    with pytest.raises(StopIteration):
        coroutine.send(None)


# -- collections ---------------------------------------------------------------------------------


def test_create_is_not_idempotent() -> None:
    """Creating an existing collection raises AlreadyExistsError (HTTP 455)."""
    vault = make(None, "c")
    with pytest.raises(AlreadyExistsError) as info:
        run(vault.create_collection("c"))
    assert info.value.status == 455
    run(vault.create_collection("b"))
    assert vault.collection_names() == ["b", "c"]


OPERATIONS: dict[str, Callable[[FakeVault, str], Awaitable[Any]]] = {
    "delete_collection": lambda v, c: v.delete_collection(c),
    "insert_one": lambda v, c: v.insert_one(c, {"a": 1}),
    "insert_many": lambda v, c: v.insert_many(c, [{"a": 1}]),
    "update_one": lambda v, c: v.update_one(c, {}, {"$set": {"a": 1}}, upsert=True),
    "update_many": lambda v, c: v.update_many(c, {}, {"$set": {"a": 1}}, upsert=True),
    "delete_one": lambda v, c: v.delete_one(c, {}),
    "delete_many": lambda v, c: v.delete_many(c, {}),
    "find_one": lambda v, c: v.find_one(c, {}),
    "find_many": lambda v, c: v.find_many(c, {}),
    "query": lambda v, c: v.query(c, {}),
    "count_documents": lambda v, c: v.count_documents(c, {}),
}


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_missing_collection_is_404_internal_code_4(op: str) -> None:
    """Every operation on a missing collection raises CollectionNotFoundError (404/4)."""
    vault = make(None, "other")
    with pytest.raises(CollectionNotFoundError) as info:
        run(OPERATIONS[op](vault, "missing"))
    assert (info.value.status, info.value.internal_code) == (404, 4)
    assert vault.collection_names() == ["other"]


def test_delete_collection_drops_its_documents() -> None:
    """Deleting a collection removes it and its documents; re-creating starts empty."""
    vault = make(None, "c")
    run(vault.insert_one("c", {"a": 1}))
    run(vault.delete_collection("c"))
    assert vault.collection_names() == []
    run(vault.create_collection("c"))
    assert vault.documents("c") == []


@pytest.mark.parametrize(
    "name", ["", "a$b", "a\0b", "system.users", 5, None, "scripts", "__collection_metadata__"]
)
@pytest.mark.parametrize("op", ["create_collection", *sorted(OPERATIONS)])
def test_invalid_collection_names(name: Any, op: str) -> None:
    """Bad or Hive-internal collection names are InvalidParameterError (400) for every call."""
    vault = make(None, "c")
    call = OPERATIONS.get(op, FakeVault.create_collection)
    with pytest.raises(InvalidParameterError) as info:
        run(call(vault, name))
    assert info.value.status == 400
    assert vault.collection_names() == ["c"]


# -- server stamps and ids -----------------------------------------------------------------------


def test_insert_stamps_created_and_modified_from_the_vault_clock() -> None:
    """Insert sets created = modified = int(clock()), overwriting the client's fields."""
    clock = StepClock(1000.9)
    vault = make(clock, "c")
    run(vault.insert_one("c", {"modified": 1, "a": 1, "created": "x"}))
    run(vault.insert_one("c", {"a": 2}, timestamp=False))
    first, second = vault.documents("c")
    assert first == {"_id": first["_id"], "modified": 1000, "a": 1, "created": 1000}
    assert second == {"_id": second["_id"], "a": 2}


def test_update_stamps_modified_only_and_upsert_insert_stamps_both() -> None:
    """Update sets modified on every matched document; an upsert-insert also sets created."""
    clock = StepClock(100)
    vault = make(clock, "c")
    run(vault.insert_many("c", [{"k": 1}, {"k": 1}, {"k": 2}]))
    clock.now = 200
    result = run(vault.update_many("c", {"k": 1}, {"$set": {"created": 5, "v": 1}}))
    assert (result.matched_count, result.modified_count) == (2, 2)
    assert [(d["created"], d["modified"]) for d in vault.documents("c")] == [
        (5, 200),
        (5, 200),
        (100, 100),
    ]
    clock.now = 300
    result = run(vault.update_one("c", {"k": 3}, {"$set": {"v": 3}}, upsert=True))
    assert result.upserted_id is not None
    new = run(vault.find_one("c", {"_id": result.upserted_id}))
    assert new == {"_id": result.upserted_id, "created": 300, "k": 3, "modified": 300, "v": 3}


def test_stamps_follow_a_clock_that_steps_backwards() -> None:
    """Stamps come from the host clock as it is: no monotonicity is promised."""
    clock = StepClock(500)
    vault = make(clock, "c")
    run(vault.insert_one("c", {"k": "a"}))
    clock.now = 400
    run(vault.insert_one("c", {"k": "b"}))
    run(vault.update_one("c", {"k": "a"}, {"$set": {"v": 1}}))
    docs = vault.documents("c")
    assert [(d["created"], d["modified"]) for d in docs] == [(500, 400), (400, 400)]
    assert docs[0]["_id"].hex[:8] == f"{500:08x}"
    assert docs[1]["_id"].hex[:8] == f"{400:08x}"


def test_client_stamp_updates_clash_as_in_hive() -> None:
    """Hive adds ``$set.modified`` to the update: a client ``$inc`` of it is a conflict."""
    vault = make(None, "c")
    run(vault.insert_one("c", {"k": 1}))
    with pytest.raises(ServerError, match="conflict"):
        run(vault.update_one("c", {"k": 1}, {"$inc": {"modified": 1}}))
    with pytest.raises(ServerError, match="conflict"):
        run(vault.update_one("c", {"k": 1}, {"$set": {"created": 1}}, upsert=True))
    run(vault.update_one("c", {"k": 1}, {"$inc": {"modified": 1}}, timestamp=False))


def test_object_ids_are_deterministic_and_increasing() -> None:
    """Ids are clock seconds + a per-vault counter: equal runs give equal ids, in order."""

    def ids() -> list[ObjectId]:
        clock = StepClock(1_700_000_000)
        vault = make(clock, "c")
        out = list(run(vault.insert_many("c", [{"n": 1}, {"n": 2}])).inserted_ids)
        clock.now += 1
        out += run(vault.insert_one("c", {"n": 3})).inserted_ids
        return out

    first = ids()
    assert first == ids()
    assert first == sorted(first) and len(set(first)) == 3
    assert first[0] == ObjectId(f"{1_700_000_000:08x}{0:016x}")
    assert first[2] == ObjectId(f"{1_700_000_001:08x}{2:016x}")


def test_failed_inserts_do_not_consume_ids() -> None:
    """A failing request changes nothing, not even the id counter."""
    vault = make(StepClock(7), "c")
    with pytest.raises(InvalidParameterError):
        run(vault.insert_one("c", {"big": "x" * MAX_DOCUMENT_BYTES}))
    oid = run(vault.insert_one("c", {})).inserted_ids[0]
    assert oid == ObjectId(f"{7:08x}{0:016x}")


def test_client_ids_are_kept_and_duplicates_rejected() -> None:
    """A document's own ``_id`` is kept (first); a duplicate is a duplicate-key error."""
    oid = ObjectId("65a1b2c3d4e5f60718293a4b")
    vault = make(None, "c")
    assert run(vault.insert_one("c", {"a": 1, "_id": oid})).inserted_ids == [oid]
    assert list(vault.documents("c")[0]) == ["_id", "a", "created", "modified"]
    before = state(vault)
    with pytest.raises(ServerError, match="duplicate key"):
        run(vault.insert_one("c", {"_id": oid, "a": 2}))
    with pytest.raises(InvalidParameterError, match="ObjectId"):
        run(vault.insert_one("c", {"_id": "mine"}))
    assert state(vault) == before


# -- upserts and the absence of unique indexes ----------------------------------------------------


def test_no_unique_index_two_upserts_of_one_key_both_insert() -> None:
    """Only ``_id`` is unique: upserts of one key with different filters both insert."""
    vault = make(None, "c")
    first = run(vault.update_one("c", {"key": "k", "rev": 1}, {"$set": {"v": 1}}, upsert=True))
    second = run(vault.update_one("c", {"key": "k", "rev": 2}, {"$set": {"v": 2}}, upsert=True))
    assert first.upserted_id is not None and second.upserted_id is not None
    assert first.upserted_id != second.upserted_id
    assert run(vault.count_documents("c", {"key": "k"})) == 2
    run(vault.insert_one("c", {"key": "k"}))
    assert run(vault.count_documents("c", {"key": "k"})) == 3


def test_upsert_seeds_from_filter_and_set_on_insert() -> None:
    """An upsert inserts the filter's equalities plus the update and ``$setOnInsert``."""
    vault = make(StepClock(10), "c")
    result = run(
        vault.update_one(
            "c",
            {"key": "k", "meta.kind": "note", "n": {"$gt": 1}},
            {"$set": {"v": 1}, "$setOnInsert": {"first": True}},
            upsert=True,
        )
    )
    assert (result.matched_count, result.modified_count) == (0, 0)
    doc = run(vault.find_one("c", {"key": "k"}))
    assert doc == {
        "_id": result.upserted_id,
        "created": 10,
        "first": True,
        "key": "k",
        "meta": {"kind": "note"},
        "modified": 10,
        "v": 1,
    }
    again = run(vault.update_one("c", {"key": "k"}, {"$setOnInsert": {"first": False}}))
    assert (again.matched_count, again.upserted_id) == (1, None)
    assert run(vault.find_one("c", {"key": "k"})) == doc  # same second: no change at all


def test_update_without_match_or_upsert_changes_nothing() -> None:
    """No match and no upsert: matched 0, nothing inserted."""
    vault = make(None, "c")
    result = run(vault.update_many("c", {"k": 1}, {"$set": {"v": 1}}))
    assert (result.matched_count, result.modified_count, result.upserted_id) == (0, 0, None)
    assert vault.documents("c") == []


def test_replacement_updates_are_refused_as_by_pymongo() -> None:
    """Hive calls update_one/update_many, which accept only ``$`` operators."""
    vault = make(None, "c")
    run(vault.insert_one("c", {"k": 1}))
    before = state(vault)
    for timestamp in (True, False):
        with pytest.raises(ServerError, match=r"\$ operators"):
            run(vault.update_one("c", {"k": 1}, {"k": 2}, timestamp=timestamp))
    with pytest.raises(ServerError, match="empty"):
        run(vault.update_one("c", {"k": 1}, {}, timestamp=False))
    assert state(vault) == before
    run(vault.update_one("c", {"k": 1}, {}))  # with stamps, the update is {"$set": {modified}}


def test_modified_count_counts_real_changes() -> None:
    """A document whose content does not change is matched but not modified."""
    clock = StepClock(50)
    vault = make(clock, "c")
    run(vault.insert_many("c", [{"k": 1, "v": 1}, {"k": 1, "v": 2}]))
    result = run(vault.update_many("c", {"k": 1}, {"$set": {"v": 1}}, timestamp=False))
    assert (result.matched_count, result.modified_count) == (2, 1)
    result = run(vault.update_many("c", {"k": 1}, {"$set": {"v": 1.0}}, timestamp=False))
    assert (result.matched_count, result.modified_count) == (2, 2)  # int -> double is a change


# -- natural order, skip, limit, sort, projection -------------------------------------------------


def seeded(n: int = 5) -> FakeVault:
    clock = StepClock(1000)
    vault = make(clock, "c")
    for i in range(n):
        clock.now = 1000 + (i * 7) % n  # modified out of insertion order
        run(vault.insert_one("c", {"i": i, "even": i % 2 == 0}))
    return vault


def test_one_operations_take_the_first_match_in_natural_order() -> None:
    """update_one, delete_one and find_one act on the first match in insertion order."""
    vault = seeded()
    first = run(vault.find_one("c", {"even": True}))
    assert first is not None and first["i"] == 0
    run(vault.update_one("c", {"even": False}, {"$set": {"hit": True}}))
    assert [d["i"] for d in vault.documents("c") if d.get("hit")] == [1]
    run(vault.delete_one("c", {"even": True}))
    assert [d["i"] for d in vault.documents("c")] == [1, 2, 3, 4]
    assert run(vault.find_one("c", {"i": 99})) is None
    run(vault.update_one("c", {"i": 1}, {"$set": {"late": 1}}))
    assert [d["i"] for d in vault.documents("c")] == [1, 2, 3, 4]  # updates keep their place


def test_delete_many() -> None:
    """delete_many removes every match and nothing else."""
    vault = seeded()
    run(vault.delete_many("c", {"even": True}))
    assert [d["i"] for d in vault.documents("c")] == [1, 3]
    run(vault.delete_many("c", {}))
    assert vault.documents("c") == []


def test_find_many_skip_and_limit() -> None:
    """find_many returns matches in natural order; skip/limit window them; limit 0 is all."""
    vault = seeded()
    everything = run(vault.find_many("c", {}))
    assert [d["i"] for d in everything] == [0, 1, 2, 3, 4]
    assert [d["i"] for d in run(vault.find_many("c", {}, skip=1, limit=2))] == [1, 2]
    assert [d["i"] for d in run(vault.find_many("c", {"even": True}, skip=1))] == [2, 4]
    assert len(run(vault.find_many("c", {}, limit=0))) == 5
    assert run(vault.find_many("c", {}, skip=9)) == []


def test_query_sorts_then_windows_then_projects() -> None:
    """query sorts (stably), then skips/limits, then projects."""
    vault = seeded()
    result = run(
        vault.query(
            "c",
            {"i": {"$gte": 1}},
            sort=[("modified", -1), ("i", 1)],
            skip=1,
            limit=2,
            projection={"i": 1, "modified": 1, "_id": 0},
        )
    )
    ranked = sorted(vault.documents("c")[1:], key=lambda d: (-d["modified"], d["i"]))
    assert result == [{"i": d["i"], "modified": d["modified"]} for d in ranked[1:3]]
    plain = run(vault.query("c", {}, projection={"even": 0}))
    assert [sorted(d) for d in plain] == [["_id", "created", "i", "modified"]] * 5


def test_count_documents_with_skip_and_limit() -> None:
    """count_documents counts matches after skip, at most limit; a 0 limit is refused."""
    vault = seeded()
    assert run(vault.count_documents("c", {})) == 5
    assert run(vault.count_documents("c", {"even": True})) == 3
    assert run(vault.count_documents("c", {}, skip=2)) == 3
    assert run(vault.count_documents("c", {}, skip=2, limit=2)) == 2
    assert run(vault.count_documents("c", {}, skip=7)) == 0
    with pytest.raises(ServerError, match="positive"):
        run(vault.count_documents("c", {}, limit=0))


# -- size limit and atomicity --------------------------------------------------------------------


def test_documents_over_16_mib_are_refused_and_change_nothing() -> None:
    """MongoDB's 16 MiB limit: a larger insert or update fails with a 400 and changes
    nothing."""
    vault = make(None, "c")
    run(vault.insert_one("c", {"k": 1, "blob": "x" * (MAX_DOCUMENT_BYTES - 1000)}))
    before = state(vault)
    with pytest.raises(InvalidParameterError, match="too large"):
        run(vault.insert_one("c", {"k": 2, "blob": "é" * (MAX_DOCUMENT_BYTES // 2 + 1)}))
    with pytest.raises(InvalidParameterError, match="too large"):
        run(vault.update_one("c", {"k": 1}, {"$set": {"more": "y" * 2000}}))
    with pytest.raises(InvalidParameterError, match="too large"):
        run(vault.update_one("c", {"k": 3}, {"$set": {"b": "z" * MAX_DOCUMENT_BYTES}}, upsert=True))
    assert state(vault) == before
    assert [r.ok for r in vault.requests[-3:]] == [False, False, False]


# The vault argument is typed Any so that deliberately ill-typed calls need no type: ignore.
INVALID_CALLS: list[tuple[str, Callable[[Any], Awaitable[Any]], type[VaultError]]] = [
    ("filter type", lambda v: v.find_many("c", ["k"]), InvalidParameterError),
    ("update type", lambda v: v.update_one("c", {}, [1]), InvalidParameterError),
    ("negative skip", lambda v: v.find_many("c", {}, skip=-1), InvalidParameterError),
    ("negative limit", lambda v: v.query("c", {}, limit=-1), InvalidParameterError),
    ("negative count", lambda v: v.count_documents("c", {}, skip=-2), InvalidParameterError),
    ("bool limit", lambda v: v.find_many("c", {}, limit=True), InvalidParameterError),
    ("projection type", lambda v: v.query("c", {}, projection=[1]), InvalidParameterError),
    ("documents type", lambda v: v.insert_many("c", {"a": 1}), InvalidParameterError),
    ("no documents", lambda v: v.insert_many("c", []), InvalidParameterError),
    ("document type", lambda v: v.insert_many("c", [{"a": 1}, 5]), InvalidParameterError),
    ("bad value", lambda v: v.insert_one("c", {"a": {1, 2}}), InvalidParameterError),
    ("bad key", lambda v: v.insert_one("c", {"a": {1: 2}}), InvalidParameterError),
    (
        "flag type",
        lambda v: v.update_many("c", {}, {"$set": {"k": 0}}, upsert=1),
        InvalidParameterError,
    ),
    ("stamp flag", lambda v: v.insert_one("c", {}, timestamp="yes"), InvalidParameterError),
    ("bad operator", lambda v: v.delete_many("c", {"k": {"$foo": 1}}), ServerError),
    ("bad update", lambda v: v.update_many("c", {}, {"$inc": {"k": "1"}}), ServerError),
    ("bad sort", lambda v: v.query("c", {}, sort=[("k", 0)]), ServerError),
    ("bad projection", lambda v: v.query("c", {}, projection={"a": 1, "k": 0}), ServerError),
    ("partial update", lambda v: v.update_many("c", {}, {"$inc": {"n": 1}}), ServerError),
    ("bad upsert", lambda v: v.update_one("c", {"x": 1}, {"$bad": {}}, upsert=True), ServerError),
]


@pytest.mark.parametrize(
    ("what", "call", "error"), INVALID_CALLS, ids=[c[0] for c in INVALID_CALLS]
)
def test_invalid_requests_change_nothing(
    what: str, call: Callable[[Any], Awaitable[Any]], error: type[VaultError]
) -> None:
    """Every failing request is atomic: the error is typed and the data is unchanged."""
    vault = make(None, "c")
    run(vault.insert_many("c", [{"k": 1, "n": 1}, {"k": 2, "n": "two"}]))
    before = state(vault)
    with pytest.raises(error):
        run(call(vault))
    assert state(vault) == before
    assert vault.requests[-1].ok is False


def test_insert_many_ordered_keeps_the_documents_before_the_failure() -> None:
    """ordered=True stops at the first failing document; earlier ones stay inserted."""
    oid = ObjectId("65a1b2c3d4e5f60718293a4b")
    vault = make(None, "c")
    run(vault.insert_one("c", {"_id": oid}))
    with pytest.raises(ServerError, match="duplicate"):
        run(vault.insert_many("c", [{"n": 1}, {"_id": oid}, {"n": 3}]))
    assert [d.get("n") for d in vault.documents("c")] == [None, 1]
    with pytest.raises(ServerError, match="duplicate"):
        run(vault.insert_many("c", [{"n": 4}, {"_id": oid}, {"n": 5}], ordered=False))
    assert [d.get("n") for d in vault.documents("c")] == [None, 1, 4, 5]


# -- isolation, logging ---------------------------------------------------------------------------


def test_deep_copies_in_and_out() -> None:
    """Neither the caller's inputs nor returned documents alias the stored state."""
    vault = make(None, "c")
    document: dict[str, Any] = {"k": 1, "tags": ["a"], "meta": {"x": 1}}
    run(vault.insert_one("c", document))
    document["tags"].append("mutated")
    document["meta"]["x"] = 2
    found = run(vault.find_one("c", {"k": 1}))
    assert found is not None and found["tags"] == ["a"] and found["meta"] == {"x": 1}
    found["tags"].append("mutated")
    pushed = ["p"]
    run(vault.update_one("c", {"k": 1}, {"$push": {"tags": {"$each": pushed}}}))
    pushed.append("mutated")
    for result in (
        run(vault.find_many("c", {})),
        run(vault.query("c", {}, sort=[("k", 1)])),
        vault.documents("c"),
    ):
        assert result[0]["tags"] == ["a", "p"]
        result[0]["tags"].clear()
    assert vault.documents("c")[0]["tags"] == ["a", "p"]


def test_request_log() -> None:
    """Each call is logged with its operation, collection and outcome; counts always kept."""
    vault = FakeVault(clock=StepClock())
    run(vault.create_collection("c"))
    run(vault.insert_one("c", {"a": 1}))
    with pytest.raises(CollectionNotFoundError):
        run(vault.find_many("nope", {}))
    assert vault.requests == [
        VaultRequest("create_collection", "c", True, None),
        VaultRequest("insert_one", "c", True, None),
        VaultRequest(
            "find_many", "nope", False, "CollectionNotFoundError: Can not find collection nope"
        ),
    ]
    assert vault.request_count == 3
    assert vault.counts_by_op() == {"create_collection": 1, "insert_one": 1, "find_many": 1}
    vault.reset_log()
    assert (vault.requests, vault.request_count, vault.counts_by_op()) == ([], 0, {})
    assert len(vault.documents("c")) == 1

    quiet = FakeVault(clock=StepClock(), record=False)
    run(quiet.create_collection("c"))
    run(quiet.count_documents("c", {}))
    assert quiet.requests == [] and quiet.request_count == 2
    assert quiet.counts_by_op() == {"create_collection": 1, "count_documents": 1}


# -- journal and restore (durable copies) --------------------------------------------------------


class Replica:
    """A VaultJournal that rebuilds the vault's state from what it is told."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[tuple[str, ...]] = []

    def collection_created(self, name: str) -> None:
        assert name not in self.collections
        self.collections[name] = {}
        self.calls.append(("created", name))

    def collection_deleted(self, name: str) -> None:
        del self.collections[name]
        self.calls.append(("deleted", name))

    def document_stored(self, collection: str, oid: str, document: dict[str, Any]) -> None:
        assert document["_id"] == ObjectId(oid)
        self.collections[collection][oid] = mongo.copy_value(document)  # dicts keep their place
        self.calls.append(("stored", collection, oid))

    def document_deleted(self, collection: str, oid: str) -> None:
        del self.collections[collection][oid]
        self.calls.append(("removed", collection, oid))

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {name: list(docs.values()) for name, docs in sorted(self.collections.items())}


def test_journal_is_told_every_change_in_order() -> None:
    """A journal that replays what it is told holds the vault's exact state, natural order
    included (an update keeps its place, a delete and re-insert goes to the end)."""
    clock = StepClock()
    replica = Replica()
    vault = FakeVault(clock=clock, journal=replica)
    run(vault.create_collection("c"))
    run(vault.create_collection("gone"))
    run(vault.insert_many("c", [{"k": 1}, {"k": 2}, {"k": 3}]))
    run(vault.insert_one("gone", {"x": 1}))
    clock.now += 5
    run(vault.update_many("c", {"k": {"$gte": 2}}, {"$inc": {"n": 1}}))
    run(vault.update_one("c", {"k": 9}, {"$set": {"v": 1}}, upsert=True))
    run(vault.delete_one("c", {"k": 1}))
    run(vault.insert_one("c", {"k": 1}))
    run(vault.delete_collection("gone"))
    assert replica.state() == state(vault)
    assert [call[0] for call in replica.calls] == [
        "created", "created", "stored", "stored", "stored", "stored",
        "stored", "stored", "stored", "removed", "stored", "deleted",
    ]  # fmt: skip


def test_journal_hears_nothing_of_failed_requests_but_partial_inserts() -> None:
    """A refused request reports no change; an ordered insert_many that fails part-way reports
    the documents it kept (they are stored, so a durable copy must keep them too)."""
    replica = Replica()
    vault = FakeVault(clock=StepClock(), journal=replica)
    run(vault.create_collection("c"))
    oid = run(vault.insert_one("c", {"n": 0})).inserted_ids[0]
    replica.calls.clear()
    for call in (
        lambda: vault.create_collection("c"),
        lambda: vault.update_one("c", {}, {"$bad": 1}),
        lambda: vault.insert_one("c", {"_id": oid}),
        lambda: vault.delete_collection("missing"),
    ):
        with pytest.raises(VaultError):
            run(call())
    assert replica.calls == []
    with pytest.raises(ServerError, match="duplicate"):
        run(vault.insert_many("c", [{"n": 1}, {"_id": oid}, {"n": 3}]))
    assert [call[0] for call in replica.calls] == ["stored"]
    assert replica.state() == state(vault)


def test_restore_loads_a_saved_state_that_answers_as_the_original() -> None:
    """A vault restored from a journal's copy and the id counter answers every query as the
    original, keeps natural order, continues the _id sequence and uses its indexes."""
    clock = StepClock()
    replica = Replica()
    original = FakeVault(clock=clock, journal=replica)
    run(original.create_collection("c"))
    run(original.create_collection("empty"))
    run(original.insert_many("c", [{"key": k, "n": i} for i, k in enumerate("abcab")]))
    run(original.update_one("c", {"key": "a"}, {"$set": {"n": 10}}))
    run(original.delete_one("c", {"key": "c"}))

    copy = Replica()
    copy.collections = {"c": {}, "empty": {}}  # stands for the copy restore() loads from
    restored = FakeVault(clock=clock, journal=copy)
    restored.restore(
        {name: list(docs.values()) for name, docs in replica.collections.items()},
        original.id_counter,
    )
    assert state(restored) == state(original) and copy.calls == []
    for query in ({}, {"key": "a"}, {"key": {"$in": ["a", "b"]}}, {"n": {"$gt": 1}}):
        assert run(restored.find_many("c", query)) == run(original.find_many("c", query))
    clock.now += 1
    new_ids = [run(v.insert_one("c", {"key": "z"})).inserted_ids[0] for v in (original, restored)]
    assert new_ids[0] == new_ids[1]
    assert copy.calls == [("stored", "c", new_ids[1].hex)]  # the journal is attached again


@pytest.mark.parametrize(
    "collections, counter",
    [
        ({"c": [{"_id": "not an ObjectId"}]}, 0),
        ({"c": [{"_id": ObjectId("0" * 24)}, {"_id": ObjectId("0" * 24)}]}, 0),
        ({"system.x": []}, 0),
        ({}, -1),
    ],
)
def test_restore_refuses_a_state_it_could_not_have_saved(
    collections: dict[str, list[dict[str, Any]]], counter: int
) -> None:
    """restore() checks what it loads and changes nothing when it refuses."""
    vault = make(None, "kept")
    with pytest.raises((ValueError, VaultError)):
        vault.restore(collections, counter)
    assert vault.collection_names() == ["kept"]


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


@st.composite
def _index_filters(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """Filters of the shapes the indexes use (and some they must not be fooled by)."""
    shape = draw(st.integers(0, 11 if depth < 2 else 5))
    if shape >= 10:  # the helper's pull filters (brh.core), keyset page and overlap window
        stamp, lower = draw(_stamps), draw(_stamps)
        after = {"$or": [{"modified": {"$gt": stamp}}, {"modified": stamp, "x": {"$gt": 0}}]}
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
    if draw(st.booleans()):
        doc["key"] = draw(_key_values)
    if draw(st.booleans()):
        doc["modified"] = draw(_modified_values)
    if draw(st.booleans()):
        doc["x"] = draw(st.integers(0, 2))
    return doc


_steps = st.one_of(
    st.tuples(st.just("insert"), _documents(), st.booleans()),
    st.tuples(st.just("update_one"), _index_filters(), _updates, st.booleans(), st.booleans()),
    st.tuples(st.just("update_many"), _index_filters(), _updates, st.booleans(), st.booleans()),
    st.tuples(st.just("delete_one"), _index_filters()),
    st.tuples(st.just("delete_many"), _index_filters()),
    st.tuples(st.just("clock"), st.integers(-2, 3)),
    st.tuples(st.just("recreate")),
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


def _check_indexes(vault: FakeVault) -> None:
    """The indexes equal ones rebuilt from the documents, and ``_seq`` follows natural order."""
    for name in vault.collection_names():
        coll = vault._collections[name]
        fresh = Collection()
        for oid, doc in coll.docs.items():
            fresh.put(oid, doc)
        assert coll._by_key == fresh._by_key
        assert coll._odd_keys == fresh._odd_keys
        assert [(m, o) for m, _, o in coll._by_modified] == [
            (m, o) for m, _, o in fresh._by_modified
        ]
        assert sorted(coll.docs, key=coll._seq.__getitem__) == list(coll.docs)
        assert coll._by_modified == sorted(coll._by_modified)


_PULL_SORT = [("modified", 1), ("_id", 1)]


@settings(max_examples=100, deadline=None)
@given(
    initial=st.lists(_documents(), max_size=20),
    eager=st.booleans(),
    steps=st.lists(_steps, max_size=30),
    queries=st.lists(
        st.tuples(
            _index_filters(), st.integers(0, 2), st.sampled_from([None, 1, 3]), st.booleans()
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_indexes_never_change_an_answer(
    initial: list[dict[str, Any]],
    steps: list[tuple[Any, ...]],
    queries: list[tuple[dict[str, Any], int, int | None, bool]],
    eager: bool,
) -> None:
    """Random writes (changing ``key`` and ``modified`` too), then the shapes the indexes serve:
    every answer, error, stamp, id and log entry is the one of a vault that scans everything,
    and queries agree with ``mongo.matches`` over ``documents``."""
    with pytest.MonkeyPatch.context() as patch:
        if eager:  # use the modified index even when it leaves every document
            patch.setattr(Collection, "modified_share", 1.0)
        _replay_and_query(initial, steps, queries)


def _replay_and_query(
    initial: list[dict[str, Any]],
    steps: list[tuple[Any, ...]],
    queries: list[tuple[dict[str, Any], int, int | None, bool]],
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
        else:
            both(step)
        assert repr(state(vault)) == repr(state(reference))
        _check_indexes(vault)
    assert vault.requests == reference.requests

    docs = vault.documents("c")
    for filter, skip, limit, sort in queries:
        brute = [doc for doc in docs if mongo.matches(doc, filter)]
        window = slice(skip, None if limit is None else skip + limit)
        if sort:
            found = run(vault.query("c", filter, sort=_PULL_SORT, skip=skip, limit=limit))
            assert repr(found) == repr(mongo.sort_documents(brute, _PULL_SORT)[window])
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


def test_perform_runs_an_operation_at_once() -> None:
    """perform() gives what awaiting the protocol method gives, errors included."""
    vault = make(StepClock(), "c")
    result = vault.perform("update_one", ("c", {"key": "k"}, {"$set": {"v": 1}}), {"upsert": True})
    assert result.upserted_id is not None
    assert vault.perform("find_one", ("c", {"key": "k"}), {})["v"] == 1
    with pytest.raises(CollectionNotFoundError):
        vault.perform("query", ("missing", {}), {})
    with pytest.raises(AttributeError):
        vault.perform("documents", ("c",), {})


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # control characters, quotes, backslashes, non-ASCII, surrogates excluded
    # the values JSON writes longest for a byte of marshal, many in a row
    | st.lists(st.sampled_from([None, True, False, "\x00", '"', "\\", 0]), max_size=300)
    | st.text(alphabet='\x00\x01\x1f"\\', max_size=300),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(st.text(max_size=8), _json_values, max_size=6),
    with_id=st.booleans(),
    shared=st.text(min_size=1, max_size=50),
)
def test_the_cheap_size_bound_never_underestimates_the_encoding(
    fields: dict[str, Any], with_id: bool, shared: str
) -> None:
    """The 16 MiB check's shortcut: when it passes a document without encoding it, the
    document's JSON encoding (what the limit is measured on) is within the bound, whatever
    the values (escapes, booleans, big numbers, nesting, one string object repeated)."""
    doc: dict[str, Any] = {}
    if with_id:
        doc["_id"] = ObjectId("0123456789abcdef01234567")
    doc.update(fields)
    doc["repeated"] = [shared] * 20  # the same object: JSON writes it out each time
    bound = limits._json_bound(doc)
    assert bound is not None
    assert len(limits._encode(doc)) <= bound


@pytest.mark.parametrize(
    "value",
    [
        "\x00" * 1000,  # six JSON characters each
        '\x1f"\\' * 300,
        [None] * 1000,  # "null," for one byte
        [False] * 1000,  # "false," for one byte
        [0] * 1000,
        [[]] * 300,
        [{}] * 300,
        ["x" * 40] * 200,  # one string object, repeated: marshal 2 writes it out each time
        {"": {"": {"": {"": {}}}}},
    ],
    ids=["nul", "escapes", "nulls", "falses", "zeros", "lists", "documents", "shared", "deep"],
)
def test_the_cheap_size_bound_holds_for_the_worst_values(value: Any) -> None:
    """The 16 MiB check's shortcut, on the values JSON writes longest for each byte of
    marshal: the encoding never exceeds the bound."""
    doc = {"_id": ObjectId("0123456789abcdef01234567"), "value": value}
    bound = limits._json_bound(doc)
    assert bound is not None
    assert len(limits._encode(doc)) <= bound


def test_the_size_check_still_measures_documents_the_cheap_bound_cannot() -> None:
    """A document whose ObjectId is not its top-level ``_id`` has no cheap bound: it is
    encoded, and refused when too large."""
    clock = StepClock(1.0)
    vault = make(clock, "c")
    nested = {"ref": ObjectId("0123456789abcdef01234567")}
    assert limits._json_bound({"n": nested}) is None
    run(vault.insert_one("c", {"n": nested, "small": "x"}))
    with pytest.raises(InvalidParameterError, match="too large"):
        run(vault.insert_one("c", {"n": nested, "blob": "x" * MAX_DOCUMENT_BYTES}))


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


# -- what a vault cannot store (ERR-1 on the vault's side), and its limits -------------------------


def _entry_update(case: Case) -> dict[str, Any]:
    """The helper's kind of write of ``case``: its value as the key or as the data."""
    if case.argument == "key":
        return {"$set": {"key": case.value, "data": 1}}
    return {"$set": {"key": "k", "data": case.value}}


@pytest.mark.parametrize("case", UNSTORABLE, ids=lambda case: case.name)
def test_values_a_vault_cannot_store_are_400_and_change_nothing(case: Case) -> None:
    """ERR-1 (tests/unstorable.py), vault side: what the helper refuses up front, the fake vault
    refuses too, as an upsert, an update of an existing document and (but for a '$' field
    name, which MongoDB inserts) an insert: InvalidParameterError (400) whose message names
    the path and the reason, and nothing changes."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"n": 1}))
    before = state(vault)
    field = "key" if case.argument == "key" else "data"
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: vault.update_one("c", {"n": 2}, _entry_update(case), upsert=True),
        lambda: vault.update_many("c", {"n": 1}, _entry_update(case)),
    ]
    if case.name != "dollar-name":
        calls.append(lambda: vault.insert_one("c", {field: case.value}))
    for call in calls:
        with pytest.raises(InvalidParameterError) as info:
            run(call())
        assert case.message in str(info.value).lower()
        assert field in str(info.value) or case.name == "too-large"
    assert state(vault) == before
    assert vault.id_counter == 1


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_values_that_look_unstorable_but_are_not_are_stored_as_they_are(case: Case) -> None:
    """ERR-1 (tests/unstorable.py), vault side: the look-alikes are stored and read back
    exactly (types, field order), by upsert and by insert."""
    vault = make(StepClock(), "c")
    run(vault.update_one("c", {"n": 1}, _entry_update(case), upsert=True))
    field = "key" if case.argument == "key" else "data"
    run(vault.insert_one("c", {field: case.value}))
    found = run(vault.find_many("c", {}))
    assert [repr(doc[field]) for doc in found] == [repr(case.value)] * 2


def test_no_client_can_send_such_values_in_filters_either() -> None:
    """Filters, $pull conditions and paths with integers beyond 64 bits, NaN, lone surrogates
    or NUL are refused with a 400 naming the argument (no JSON client could send them)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"a": [1]}))
    filters: list[tuple[dict[str, Any], str]] = [
        ({"n": 2**64}, "filter.n"),
        ({"$or": [{"n": {"$in": [1, float("nan")]}}]}, "filter.$or.0.n.$in.1"),
        ({"s": "\ud800"}, "filter.s"),
        ({"a\x00b": 1}, "filter"),
        ({"a.\udc00": 1}, "filter"),
    ]
    for filter, where in filters:
        with pytest.raises(InvalidParameterError, match="^" + re.escape(where)):
            run(vault.find_many("c", filter))
    with pytest.raises(InvalidParameterError, match=r"\$pull a"):
        run(vault.update_one("c", {}, {"$pull": {"a": 2**70}}))
    with pytest.raises(InvalidParameterError, match="surrogate"):
        run(vault.query("c", {}, sort=[("\udc00", 1)]))
    with pytest.raises(InvalidParameterError, match="collection name"):
        run(vault.create_collection("c\udc00"))


def test_documents_nest_at_most_100_levels_the_document_itself_counted() -> None:
    """MongoDB's nesting limit: a document of 100 levels is stored, one of 101 is refused
    (400), whether inserted, written by $set, $push or $setOnInsert, or made by $rename."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"d": nest(99)}))
    run(vault.update_one("c", {}, {"$set": {"e": nest(99)}}))
    run(vault.update_one("c", {}, {"$set": {"a." * 98 + "b": [1]}}))  # 99 parts, an array
    before = state(vault)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: vault.insert_one("c", {"d": nest(100)}),
        lambda: vault.update_one("c", {}, {"$set": {"e": nest(100)}}),
        lambda: vault.update_one("c", {}, {"$set": {"a." * 99 + "b": []}}),
        lambda: vault.update_one("c", {}, {"$push": {"a." * 98 + "p": []}}),
        lambda: vault.update_one("c", {"z": 1}, {"$setOnInsert": {"s": nest(100)}}, upsert=True),
        lambda: vault.update_one("c", {}, {"$rename": {"d": "x.y"}}),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError, match=r"deeper than .*100 levels"):
            run(call())
    assert state(vault) == before


def test_a_600_part_path_is_refused_and_the_vault_goes_on_answering() -> None:
    """Limits, issue A.1: a $set with a 600-part path used to be stored, after which every
    read of the collection failed (copying the document blew Python's recursion limit). Paths
    have at most 100 parts, in updates, filters, sorts and projections: 400, nothing stored."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"k": 1}))
    long = ".".join(["a"] * 600)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: vault.update_one("c", {"k": 1}, {"$set": {long: 1}}),
        lambda: vault.update_one("c", {"k": 2}, {"$set": {long: 1}}, upsert=True),
        lambda: vault.find_many("c", {long: 1}),
        lambda: vault.query("c", {}, sort=[(long, 1)]),
        lambda: vault.query("c", {}, projection={long: 1}),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError, match="600 parts"):
            run(call())
    assert [doc["k"] for doc in run(vault.find_many("c", {}))] == [1]
    run(vault.find_many("c", {".".join(["a"] * 100): 1}))  # 100 parts: fine


def test_filters_nest_at_most_100_logical_levels_and_200_levels_of_json() -> None:
    """Limits, issue A.1: a filter whose $and/$or/$not/$elemMatch tree is deeper than
    MongoDB's 100 levels, or whose JSON nests past 200, is a 400 before it is compiled (it
    used to exhaust Python's recursion limit: a 500, or worse in a server thread)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"a": 1}))

    def ands(levels: int) -> dict[str, Any]:
        query: dict[str, Any] = {"a": 1}
        for _ in range(levels - 1):
            query = {"$and": [query]}
        return query

    def nots(levels: int) -> dict[str, Any]:
        condition: dict[str, Any] = {"$gt": 5}
        for _ in range(levels - 2):
            condition = {"$not": condition}
        return {"a": {"$not": condition}}

    assert len(run(vault.find_many("c", ands(100)))) == 1
    assert len(run(vault.find_many("c", nots(100)))) == 1
    for filter in (nots(101), {"a": {"$elemMatch": nots(100)}}):
        with pytest.raises(InvalidParameterError, match="more than 100 levels"):
            run(vault.find_many("c", filter))
    for filter in (ands(101), {"a": {"$elemMatch": ands(100)}}):  # also 201 levels of JSON
        with pytest.raises(InvalidParameterError, match=r"more than 100 levels|200 levels"):
            run(vault.find_many("c", filter))
    with pytest.raises(InvalidParameterError, match="200 levels"):
        run(vault.find_many("c", {"a": nest(250)}))
    with pytest.raises(InvalidParameterError, match="200 levels"):
        run(vault.find_many("c", ands(1000)))


def test_arithmetic_that_leaves_what_a_vault_stores_is_refused() -> None:
    """$inc and $mul whose result is beyond signed 64 bits or not finite are a 400 and change
    nothing (MongoDB refuses the integer overflow; JSON cannot carry the infinity)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"i": 2**62, "f": 1e308}))
    before = state(vault)
    updates: list[tuple[dict[str, Any], str]] = [
        ({"$inc": {"i": 2**62}}, "64-bit"),
        ({"$mul": {"i": -4}}, "64-bit"),
        ({"$inc": {"f": 1e308}}, "inf"),
        ({"$mul": {"f": 10}}, "inf"),
    ]
    for update, message in updates:
        with pytest.raises(InvalidParameterError, match=message):
            run(vault.update_one("c", {}, update))
    assert state(vault) == before
    run(vault.update_one("c", {}, {"$inc": {"i": 2**62 - 1}}))
    assert run(vault.find_one("c", {}))["i"] == 2**63 - 1  # type: ignore[index]


# -- $regex: RE2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "options", "text", "found"),
    [
        ("^(a+)+$", "", "aaaa!", False),  # catastrophic for a backtracking engine (test_vaultd)
        ("^(a|aa)+$", "", "a" * 5000, True),
        ("ab$", "", "xab\n", True),  # PCRE's $: the end, or before a final newline
        ("ab$", "", "ab\nx", False),
        ("^b$", "m", "a\nb\nc", True),
        ("ab\\Z", "", "ab\n", True),
        ("A B # a comment\n C", "xi", "abc", True),
        ("a\\ b", "x", "a b", True),
        ("[#] x", "x", "#x", True),
        ("[[:digit:]]$", "", "a1", True),
        ("\\d", "", "\u0663", False),  # ASCII classes, as PCRE without UCP
        ("é", "i", "É", True),
    ],
)
def test_regex_runs_on_re2_with_pcre_semantics(
    pattern: str, options: str, text: str, found: bool
) -> None:
    """Limits, issue A.1 (regex cost): $regex is evaluated by RE2, linear in the text; the
    options i, m, s, x, PCRE's $ and \\Z and its ASCII \\d keep MongoDB's meaning."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"s": text}))
    filter = {"s": {"$regex": pattern, "$options": options}}
    assert len(run(vault.find_many("c", filter))) == int(found)


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "a(?=b)", "(?<!a)b", "(?>a+)b", "a++b", "(?(1)a|b)", "(?R)?"]
)
def test_regex_features_that_need_backtracking_are_400(pattern: str) -> None:
    """Limits, issue A.1: backreferences, look-around, atomic groups, possessive quantifiers,
    conditionals and recursion are not supported by a linear-time engine: a 400 that says so
    (a pattern PCRE itself rejects stays a 500, as on Hive)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"s": "ab"}))
    try:
        re.compile(pattern)
    except re.error:
        expected: type[VaultError] = ServerError  # Python's re knows no such construct either
    else:
        expected = InvalidParameterError
    with pytest.raises(expected, match=r"not supported|invalid regular expression"):
        run(vault.find_many("c", {"s": {"$regex": pattern}}))
    with pytest.raises(ServerError, match="invalid regular expression"):
        run(vault.find_many("c", {"s": {"$regex": "(ab"}}))


# -- transactions (what vaultd brackets a request with) -------------------------------------------


def test_rollback_undoes_every_change_in_place_and_commit_keeps_them() -> None:
    """Issue A.2: a request whose changes cannot be stored is undone in memory, not by
    reloading the vault: after rollback the documents, their natural order (deleted ones go
    back to their place), the indexes, the collections and the _id counter are as before."""
    clock = StepClock(10.0)
    vault = make(clock, "c", "gone")
    run(vault.insert_many("c", [{"key": f"k{i}", "i": i} for i in range(6)]))
    run(vault.insert_one("gone", {"x": 1}))
    before, counter = repr(state(vault)), vault.id_counter
    vault.begin()
    clock.now = 20.0
    run(vault.delete_one("c", {"i": 2}))
    run(vault.update_many("c", {"i": {"$gt": 3}}, {"$set": {"key": "changed"}}))
    run(vault.delete_many("c", {"i": {"$in": [0, 5]}}))
    run(vault.insert_many("c", [{"key": "k2", "i": 2}, {"key": "new"}]))
    run(vault.update_one("c", {"key": "up"}, {"$set": {"v": 1}}, upsert=True))
    run(vault.create_collection("made"))
    run(vault.insert_one("made", {"y": 1}))
    run(vault.delete_collection("gone"))
    assert repr(state(vault)) != before
    vault.rollback()
    assert repr(state(vault)) == before
    assert vault.id_counter == counter
    _check_indexes(vault)
    assert [d["i"] for d in run(vault.find_many("c", {"key": {"$in": ["k2", "k4"]}}))] == [2, 4]
    vault.begin()
    run(vault.delete_one("c", {"i": 1}))
    vault.commit()
    run(vault.delete_one("c", {"i": 3}))  # outside a transaction: nothing is noted
    assert [d["i"] for d in vault.documents("c")] == [0, 2, 4, 5]
    assert all(coll.undo is None for coll in vault._collections.values())
    with pytest.raises(RuntimeError):
        vault.rollback()


_edge_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["\ud800", "a\udfff", "😀", "a\x00b"]),
)
_edge_names = st.one_of(
    st.text(max_size=3), st.sampled_from(["$x", "a.b", "", "a\x00", "\udc00", "a$", "😀"])
)
_edge_values = st.recursive(
    _edge_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_edge_names, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=_edge_values, depth=st.sampled_from([0, 0, 0, 95, 98, 99, 100]))
def test_the_helper_and_the_vault_refuse_exactly_the_same_data(data: Any, depth: int) -> None:
    """ERR-1: on any JSON-like data (edge integers and floats, surrogates, NUL, '$' and dotted
    names, nesting near the limit), brh's up-front check refuses exactly what the fake vault
    refuses when the helper's upsert writes it, and both accept the rest."""
    from brh.errors import InvalidArgumentError
    from brh.validation import encode_data

    data = nest(depth, data) if depth else data
    try:
        encode_data("k", data)
        helper_refuses = False
    except InvalidArgumentError:
        helper_refuses = True
    vault = make(StepClock(), "c")
    update = {"$set": {"key": "k", "data": data}}
    try:
        run(vault.update_one("c", {"key": "k"}, update, upsert=True))
        vault_refuses = False
    except InvalidParameterError:
        vault_refuses = True
    assert helper_refuses == vault_refuses
