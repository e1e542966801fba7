"""The pull cursor settles on monotonic time, not on the device clock (SYNC-4)."""

from __future__ import annotations

import asyncio

from simulator.timeloop import run
from tests.support import EPOCH, Device, fake_vault


def test_a_device_clock_jump_does_not_settle_the_cursor_early() -> None:
    """SYNC-4: a device clock jumping a day forward right after a pull does not settle the
    cursor; a write landing in the same vault second is still read."""

    async def main() -> None:
        vault = fake_vault()
        a = Device("a", vault, auto_sync=False)
        b = Device("b", vault, auto_sync=False)
        await a.put("x", 1)
        assert await a.helper.sync()
        assert await b.helper.sync()
        b.clock.jump(86_400)  # the user sets the date a day ahead
        assert await b.helper.sync()
        assert not b.helper.store.context_state("notes").settled
        await a.put("y", "same vault second")
        assert await a.helper.sync()
        assert await b.helper.sync()
        assert b.app.items == {"x": 1, "y": "same vault second"}
        for _ in range(2):  # (the first of these is the periodic full pass the jump brought)
            await asyncio.sleep(10)
            assert await b.helper.sync()
        assert b.helper.store.context_state("notes").settled  # real time passed: now it may
        for device in (a, b):
            await device.helper.close()

    run(main(), start=EPOCH)


def test_a_crash_between_pages_does_not_skip_documents_sharing_a_stamp() -> None:
    """SYNC-4, SYNC-9, OFF-4: a settled cursor moved by a first page, then a crash: the restarted
    helper re-reads the stamp the page ended on instead of asking only for newer ones."""
    from brh import Entry
    from brh.store import LocalStore

    async def main() -> None:
        vault = fake_vault()
        a = Device("a", vault, auto_sync=False)
        await a.put("seed", 0)
        assert await a.helper.sync()
        store = LocalStore()
        b = Device("b", vault, store=store, auto_sync=False, page_size=2)
        assert await b.helper.sync()
        for _ in range(2):
            await asyncio.sleep(10)
            assert await b.helper.sync()
        assert store.context_state("notes").settled
        for i in range(5):  # five documents with one vault stamp: three pages of two
            await a.put(f"k{i}", i)
        assert await a.helper.sync()
        started = asyncio.Event()

        async def hang_on_the_third(entry: Entry) -> bool:
            if entry.key == "k2":
                started.set()
                await asyncio.sleep(3600)
            b.app.items[entry.key] = entry.data
            return True

        b.helper._contexts["notes"].on_insert = hang_on_the_third
        running = asyncio.ensure_future(b.helper.sync())
        await started.wait()
        await b.helper.close()  # the process dies in the second page
        await running
        again = Device("b", vault, store=store, auto_sync=False, page_size=2)
        assert await again.helper.sync()
        assert sorted(again.local()) == ["k0", "k1", "k2", "k3", "k4", "seed"]
        await a.helper.close()
        await again.helper.close()

    run(main(), start=EPOCH)
