"""Tests of hivevault.vault.FakeVault: Hive's database service semantics, in memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InvalidParameterError,
    ObjectId,
    ServerError,
    Vault,
    VaultError,
)
from hivevault.vault import MAX_DOCUMENT_BYTES, FakeVault, VaultRequest
from tests.hivevault.support import StepClock, make, run, state


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
