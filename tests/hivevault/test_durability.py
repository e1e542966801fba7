"""The fake vault's durable copies: the journal it tells every change, a restore from a saved
state, and transactions (what vaultd keeps its SQLite file in step with).
"""

from __future__ import annotations

from typing import Any

import pytest

from brh.vault import (
    ObjectId,
    ServerError,
    VaultError,
)
from hivevault import mongo
from hivevault.vault import FakeVault
from tests.hivevault.support import StepClock, check_indexes, make, run, state

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
    check_indexes(vault)
    assert [d["i"] for d in run(vault.find_many("c", {"key": {"$in": ["k2", "k4"]}}))] == [2, 4]
    vault.begin()
    run(vault.delete_one("c", {"i": 1}))
    vault.commit()
    run(vault.delete_one("c", {"i": 3}))  # outside a transaction: nothing is noted
    assert [d["i"] for d in vault.documents("c")] == [0, 2, 4, 5]
    assert all(coll.undo is None for coll in vault._collections.values())
    with pytest.raises(RuntimeError):
        vault.rollback()
