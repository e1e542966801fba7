"""vaultd's SQLite store: what a reopened store holds, changes undone when SQLite cannot store
them, one server per database file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from brh.vault import InvalidParameterError
from hivevault.vault import FakeVault
from tests.http_support import (
    ManualClock,
)
from tests.vaultd.support import EPOCH, apply, snapshot
from vaultd import store as store_module
from vaultd.store import StoreError, VaultStore
from vaultd.tokens import DEFAULT_SCOPE, Scope

# -- durability ---------------------------------------------------------------------------------


def test_a_reopened_store_has_everything_in_natural_order(tmp_path: Path) -> None:
    """A restarted server finds every collection and document, stamps included, in natural
    order (a replaced document keeps its place, a re-inserted one goes last), per scope, and
    continues the _id sequence."""
    clock = ManualClock(EPOCH)
    path = tmp_path / "vault.sqlite"
    other = Scope("bob", "app")

    async def write(store: VaultStore) -> None:
        for scope in (DEFAULT_SCOPE, other):
            await apply(store, scope, "create_collection", "c")
        await apply(store, DEFAULT_SCOPE, "create_collection", "dropped")
        await apply(store, DEFAULT_SCOPE, "insert_many", "c", [{"k": i} for i in range(4)])
        await apply(store, other, "insert_one", "c", {"k": "bob"})
        clock.now += 7
        await apply(store, DEFAULT_SCOPE, "update_one", "c", {"k": 0}, {"$set": {"v": 1}})
        await apply(store, DEFAULT_SCOPE, "delete_one", "c", {"k": 1})
        await apply(store, DEFAULT_SCOPE, "insert_one", "c", {"k": 1})
        await apply(store, DEFAULT_SCOPE, "delete_collection", "dropped")

    first = VaultStore(path, clock=clock)
    asyncio.run(write(first))
    before = {scope: snapshot(first, scope) for scope in (DEFAULT_SCOPE, other)}
    last_id = before[DEFAULT_SCOPE]["c"][-1]["_id"]
    first.close()

    second = VaultStore(path, clock=clock)
    assert {scope: snapshot(second, scope) for scope in (DEFAULT_SCOPE, other)} == before
    assert [d["k"] for d in before[DEFAULT_SCOPE]["c"]] == [0, 2, 3, 1]
    assert before[DEFAULT_SCOPE]["c"][0]["modified"] == EPOCH + 7
    new = asyncio.run(apply(second, DEFAULT_SCOPE, "insert_one", "c", {"k": 4})).inserted_ids[0]
    assert new > last_id
    second.close()


def test_a_change_sqlite_cannot_store_is_undone_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If writing a change to SQLite fails part-way (here: the 2nd document of an update_many),
    the request is a 500, and memory and file are both as before it."""
    store = VaultStore(tmp_path / "vault.sqlite", clock=ManualClock(EPOCH))
    asyncio.run(apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    asyncio.run(apply(store, DEFAULT_SCOPE, "insert_many", "c", [{"k": 1}, {"k": 2}]))
    before = snapshot(store, DEFAULT_SCOPE)
    original = store_module._Journal.document_stored
    calls = []

    def failing(self: Any, collection: str, oid: str, document: dict[str, Any]) -> None:
        calls.append(oid)
        if len(calls) == 2:
            raise store_module._JournalError("disk full")
        original(self, collection, oid, document)

    monkeypatch.setattr(store_module._Journal, "document_stored", failing)
    with pytest.raises(Exception, match="could not store the change: disk full") as info:
        asyncio.run(apply(store, DEFAULT_SCOPE, "update_many", "c", {}, {"$set": {"x": 1}}))
    assert getattr(info.value, "status", None) == 500
    monkeypatch.undo()
    assert snapshot(store, DEFAULT_SCOPE) == before
    store.close()
    reopened = VaultStore(tmp_path / "vault.sqlite")
    assert snapshot(reopened, DEFAULT_SCOPE) == before
    reopened.close()


def test_an_unexpected_failure_mid_request_is_undone_and_the_store_goes_on(tmp_path: Path) -> None:
    """A bug that raises after a change (not a vault error) rolls the change back in memory and
    on disk, and the next request runs normally (no transaction left open)."""
    store = VaultStore(tmp_path / "vault.sqlite")
    asyncio.run(apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    before = snapshot(store, DEFAULT_SCOPE)

    async def broken(vault: FakeVault) -> None:
        await vault.insert_one("c", {"half": "done"})
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(store.run(DEFAULT_SCOPE, broken))
    assert snapshot(store, DEFAULT_SCOPE) == before
    asyncio.run(apply(store, DEFAULT_SCOPE, "insert_one", "c", {"k": 1}))
    assert [d["k"] for d in snapshot(store, DEFAULT_SCOPE)["c"]] == [1]
    store.close()


def test_a_document_json_cannot_hold_is_refused_and_undone(tmp_path: Path) -> None:
    """An $inc that overflows to infinity cannot be stored as JSON: the vault refuses it
    (400) before anything reaches the journal, and nothing changed."""
    store = VaultStore(tmp_path / "vault.sqlite")
    asyncio.run(apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    asyncio.run(apply(store, DEFAULT_SCOPE, "insert_one", "c", {"n": 1e308}))
    before = snapshot(store, DEFAULT_SCOPE)
    with pytest.raises(InvalidParameterError, match="inf, which JSON cannot carry"):
        asyncio.run(apply(store, DEFAULT_SCOPE, "update_one", "c", {}, {"$inc": {"n": 1e308}}))
    assert snapshot(store, DEFAULT_SCOPE) == before
    store.close()


def test_one_server_per_database_file(tmp_path: Path) -> None:
    """A second store on a file in use is refused (its copy in memory would go stale);
    files that are not a brh-vault database are refused with a message naming them."""
    path = tmp_path / "vault.sqlite"
    first = VaultStore(path)
    with pytest.raises(StoreError, match="in use by another brh-vault server"):
        VaultStore(path)
    first.close()
    VaultStore(path).close()
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(StoreError, match="not a brh-vault database"):
        VaultStore(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"garbage\.sqlite"):
        VaultStore(garbage)
