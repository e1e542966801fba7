"""What happens when things go wrong inside the helper or the vault (SPEC SYNC-11, RETRY-3,
RETRY-5, CB-7, API-6, DATA-4)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from brh import Entry
from brh.store import LocalStore
from hivevault.vault import FakeVault
from simulator.timeloop import run
from tests.support import EPOCH, Device, settle, vault_live

HOUR = 3600.0


def stepping_vault() -> tuple[FakeVault, dict[str, float]]:
    """A fake vault whose clock is virtual time plus a settable step."""
    step = {"seconds": 0.0}
    vault = FakeVault(clock=lambda: asyncio.get_running_loop().time() + step["seconds"])
    return vault, step


async def test_a_vault_clock_step_back_is_repaired_by_the_periodic_full_pass() -> None:
    """SYNC-11: a write stamped an hour in the past is missed by incremental pulls and found by
    the next full pass, without any outside help."""
    vault, step = stepping_vault()
    a = Device("a", vault, full_sync_interval=600)
    b = Device("b", vault, full_sync_interval=600)
    await a.put("x", 1)
    await settle(a, b)
    step["seconds"] = -HOUR  # the vault host's clock steps back
    await a.put("y", "stamped an hour ago")
    await settle(a)
    assert await b.helper.sync()
    assert "y" not in b.app.items  # below the cursor: an incremental pull cannot see it
    await asyncio.sleep(601)
    assert await b.helper.sync()
    assert b.app.items == {"x": 1, "y": "stamped an hour ago"}
    for d in (a, b):
        await d.helper.close()


def test_a_crash_after_the_callback_redelivers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """RETRY-5, CB-7: the store fails right after a callback returned True; the pass reports an
    internal error, retries by itself, and the same version is delivered again."""

    async def main() -> None:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        a = Device("a", vault)
        await a.put("x", 1)
        await settle(a)
        b = Device("b", vault)
        real = b.helper.store.apply_remote
        failures = {"left": 1}

        def flaky_apply(*args: Any, **kwargs: Any) -> bool:
            if failures["left"]:
                failures["left"] -= 1
                raise OSError("disk I/O error")
            return real(*args, **kwargs)

        monkeypatch.setattr(b.helper.store, "apply_remote", flaky_apply)
        result = await b.helper.sync()
        assert (
            not result and result.reason == "internal_error" and "disk I/O" in (result.error or "")
        )
        await asyncio.sleep(HOUR)
        assert b.app.calls == [("insert", "x", 1), ("insert", "x", 1)]  # redelivered
        assert b.local() == {"x": 1}
        assert b.helper.last_result is not None and b.helper.last_result.completed
        for d in (a, b):
            await d.helper.close()

    with caplog.at_level(logging.ERROR, logger="brh"):
        run(main(), start=EPOCH)
    assert any("failed unexpectedly" in r.getMessage() for r in caplog.records)


async def test_close_during_a_pass_answers_every_waiter() -> None:
    """API-6, RETRY-5: closing while a pass runs resolves every sync() waiter with 'closed'."""
    vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
    a = Device("a", vault)
    await a.put("x", 1)
    await settle(a)
    b = Device("b", vault, auto_sync=False)

    async def forever(entry: Entry) -> bool:
        await asyncio.sleep(10 * HOUR)
        return True

    b.helper._contexts["notes"].on_insert = forever
    running = asyncio.ensure_future(b.helper.sync())
    await asyncio.sleep(1)
    waiting = asyncio.ensure_future(b.helper.sync())
    await asyncio.sleep(1)
    await b.helper.close()
    first, second = await asyncio.gather(running, waiting)
    assert (first.reason, second.reason) == ("closed", "closed")
    await a.helper.close()


async def test_a_refusal_streak_ends_when_a_local_write_wins() -> None:
    """RETRY-3: a key stops being reported stuck once its remote change no longer needs the app
    (here a newer local write superseded it)."""
    vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
    a = Device("a", vault)
    b = Device("b", vault, stuck_threshold=2)
    await a.put("k", "old")
    await settle(a, b)
    await a.put("k", "remote edit")
    await settle(a)
    b.app.refuse = lambda kind, entry: True
    for _ in range(3):
        await b.helper.sync()
    assert [s.key for s in b.helper.stuck_entries()] == ["k"]
    b.app.refuse = None
    await b.put("k", "local edit, newer")
    await asyncio.sleep(HOUR)
    assert b.helper.stuck_entries() == []
    assert vault_live(vault) == {"k": "local edit, newer"}
    for d in (a, b):
        await d.helper.close()


async def test_documents_written_by_the_original_helper() -> None:
    """DATA-4, DATA-2: a document in the original format is restored, and updating it replaces
    it in place (compare-and-set on its modificationDate) instead of adding a duplicate."""
    vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
    await vault.create_collection("backup_notes")
    await vault.insert_one(
        "backup_notes",
        {
            "key": "legacy",
            "data": {"from": "the TypeScript helper"},
            "creationDate": 1_600_000_000_000,
            "modificationDate": 1_600_000_000_000,
            "deletionDate": None,
        },
    )
    b = Device("b", vault, store=LocalStore())
    assert await b.helper.sync()
    assert b.app.calls == [("insert", "legacy", {"from": "the TypeScript helper"})]
    await b.put("legacy", {"from": "brh"})
    await settle(b)
    docs = vault.documents("backup_notes")
    assert len(docs) == 1 and docs[0]["data"] == {"from": "brh"}
    assert docs[0]["creationDate"] == 1_600_000_000_000 and "brhVersion" in docs[0]
    await b.helper.close()
