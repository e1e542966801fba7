"""The reference's conformance factories (``conformance.implementations.reference``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

from conformance.implementations.reference import (
    FREQUENT_FULL_PASSES,
    factory,
    frequent_full_passes,
)
from simulator.impl import Installation, ReferenceHelper
from simulator.timeloop import run
from tests.support import EPOCH, fake_vault


async def full_passes(make: Callable[[Installation], ReferenceHelper], store: Path) -> int:
    """Full passes of a helper built by ``make`` that syncs every minute for ten minutes."""
    loop = asyncio.get_running_loop()
    installation = Installation(fake_vault(), store, loop.time, "d", random.Random(1))
    helper = make(installation)
    helper.add_sync_context("notes", lambda e: True, lambda e: True, lambda e: True)
    count = 0
    for _ in range(10):
        assert await helper.sync()
        count += helper.brh.store.context_state("notes").last_full_ms == loop.time() * 1000
        await asyncio.sleep(60)
    await helper.close()
    return count


def test_frequent_full_passes_makes_deep_searches_reach_the_full_pass(tmp_path: Path) -> None:
    """SYNC-11 (the deep-search factory): with a full pass every FREQUENT_FULL_PASSES seconds,
    ten minutes of passes a minute apart hold several full passes after the first pull; the
    plain factory (a full pass a day) holds only that first one."""
    assert FREQUENT_FULL_PASSES == 120.0
    assert run(full_passes(factory, tmp_path / "a"), start=EPOCH) == 1
    assert run(full_passes(frequent_full_passes, tmp_path / "b"), start=EPOCH) >= 4
