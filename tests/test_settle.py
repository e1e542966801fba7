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
