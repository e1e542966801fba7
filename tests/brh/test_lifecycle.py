"""Deletion, retention, restore and wipe (SPEC §8, §9, SYNC-10)."""

from __future__ import annotations

import asyncio
from typing import Any

from brh import Entry
from brh.store import LocalStore
from tests.support import Device, close_all, fake_vault, settle, vault_live

DAY = 86400.0


async def test_fresh_device_restores_everything_however_old() -> None:
    """RES-1: a fresh store gets one insertion per live vault entry and none for tombstones."""
    vault = fake_vault()
    a = Device("a", vault)
    for i in range(30):
        await a.put(f"k{i:02}", {"i": i})
        await asyncio.sleep(DAY / 3)  # written over ten days
    for i in range(0, 30, 3):
        await a.remove(f"k{i:02}")
    await settle(a)
    await asyncio.sleep(20 * DAY)
    phone = Device("phone", vault)
    assert await phone.helper.sync()
    assert phone.app.items == vault_live(vault)
    assert len(phone.app.items) == 20
    assert phone.app.kinds() == ["insert"] * 20
    await close_all(a, phone)


async def test_wipe_clears_everything_and_the_next_sync_restores() -> None:
    """RES-2, API-5: wiping drops data, cursor, known versions and pending changes together."""
    vault = fake_vault()
    a = Device("a", vault)
    await a.put("x", 1)
    await a.put("y", 2)
    await settle(a)
    a.helper.auto_sync = False
    await a.put("unsent", "lost with the wipe, like a reinstall")
    await a.helper.wipe_local_context_data("notes")
    assert a.helper.store.entries("notes", include_deleted=True) == []
    assert a.helper.store.context_state("notes").cursor is None
    a.app.items.clear()
    a.app.calls.clear()
    assert await a.helper.sync()
    assert a.app.calls == [("insert", "x", 1), ("insert", "y", 2)]
    assert "unsent" not in vault_live(vault)
    await close_all(a)


async def test_wipe_during_a_pass_leaves_that_context_alone() -> None:
    """RES-2: a pass running while the context is wiped does not write its cursor back."""
    vault = fake_vault()
    a = Device("a", vault)
    for i in range(3):
        await a.put(f"k{i}", i)
    await settle(a)
    b = Device("b", vault, auto_sync=False)
    started = asyncio.Event()

    async def slow_insert(entry: Entry) -> bool:
        started.set()
        await asyncio.sleep(10)
        b.app.items[entry.key] = entry.data
        return True

    b.helper._contexts["notes"].on_insert = slow_insert
    running = asyncio.ensure_future(b.helper.sync())
    await started.wait()
    await b.helper.wipe_local_context_data("notes")
    result = await running
    assert not result
    assert b.helper.store.context_state("notes").cursor is None
    b.app.items.clear()
    assert await b.helper.sync()
    assert b.app.items == {"k0": 0, "k1": 1, "k2": 2}
    await close_all(a, b)


async def test_tombstones_are_purged_after_the_retention() -> None:
    """DEL-1, DEL-2 (W5): a tombstone stays until the retention passes, then is purged from the
    vault and from local stores."""
    vault = fake_vault()
    options: dict[str, Any] = {"tombstone_retention": 10 * DAY, "purge_interval": DAY}
    a, b = Device("a", vault, **options), Device("b", vault, **options)
    await a.put("gone", 1)
    await a.put("kept", 2)
    await settle(a, b)
    await a.remove("gone")
    await settle(a, b)
    tomb = [d for d in vault.documents("backup_notes") if d["key"] == "gone"]
    assert tomb and tomb[0]["deletionDate"] is not None  # soft delete
    for _ in range(12):
        await asyncio.sleep(DAY)
        await a.put("kept", "touched daily")  # vault stamps move on
        await settle(a, b)
    assert [d["key"] for d in vault.documents("backup_notes")] == ["kept"]
    for device in (a, b):
        assert device.helper.store.get("notes", "gone") is None
    await close_all(a, b)


async def test_a_device_away_longer_than_the_retention_resyncs_fully() -> None:
    """DEL-3, SYNC-10: deletions whose tombstones were purged while a device was away still
    reach it, through a full pass."""
    vault = fake_vault()
    options: dict[str, Any] = {"tombstone_retention": 10 * DAY, "purge_interval": DAY}
    a = Device("a", vault, **options)
    phone_store = LocalStore()  # kept by the test while the helper is closed
    away = Device("away", vault, store=phone_store, **options)
    await a.put("x", 1)
    await a.put("y", 2)
    await settle(a, away)
    await away.helper.close()
    await a.remove("x")
    for _ in range(15):
        await asyncio.sleep(DAY)
        await a.put("y", "daily")
        await settle(a)
    assert "x" not in {d["key"] for d in vault.documents("backup_notes")}  # purged
    back = Device("away", vault, store=phone_store, **options)
    back.app.items.update({"x": 1, "y": 2})
    assert await back.helper.sync()
    assert back.app.items == {"y": "daily"} and back.local() == {"y": "daily"}
    assert ("delete", "x", 1) in back.app.calls
    await a.helper.close()


async def test_full_sync_heals_entries_the_vault_lost() -> None:
    """SYNC-10, API-4: sync(full=True) re-reads everything; an entry the vault lost (not a purged
    tombstone: this device synced recently) is uploaded again from the device's copy."""
    vault = fake_vault()
    a, b = Device("a", vault), Device("b", vault)
    await a.put("x", 1)
    await a.put("y", 2)
    await settle(a, b)
    await vault.delete_many("backup_notes", {"key": "x"})  # lost behind everyone's back
    vault.reset_log()
    assert await b.helper.sync()
    assert vault.counts_by_op() == {"query": 1}  # an incremental pass cannot notice
    assert await b.helper.sync(full=True)
    assert b.app.items == {"x": 1, "y": 2} and b.app.calls == [
        ("insert", "x", 1),
        ("insert", "y", 2),
    ]
    assert vault_live(vault) == {"x": 1, "y": 2}
    await close_all(a, b)


async def test_a_lost_collection_is_uploaded_again() -> None:
    """RES-3: if the vault loses a context's collection, the devices upload their copies again."""
    vault = fake_vault()
    a = Device("a", vault)
    await a.put("x", 1)
    await a.remove("x")
    await a.put("y", 2)
    await settle(a)
    await vault.delete_collection("backup_notes")
    result = await a.helper.sync()
    assert not result and result.reason == "vault_error"
    await asyncio.sleep(DAY)  # the scheduled retry recreates and re-uploads
    assert vault_live(vault) == {"y": 2}
    await close_all(a)
