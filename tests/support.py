"""Small shared pieces for the tests: devices on virtual time and a vault to share.

Every test runs on :func:`simulator.timeloop.run`, so timers (debounce, retry) fire on virtual
time and nothing sleeps for real. Device clocks are the loop's virtual time plus an offset that
a test may change at any moment (skew, jumps).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hivevault.vault import FakeVault
from simulator.world.app import AppModel
from simulator.world.device import SimDevice
from simulator.world.link import Link

EPOCH = 1_750_000_000.0
"""Virtual start time of every test (seconds since the epoch): realistic millisecond stamps."""


def now() -> float:
    return asyncio.get_running_loop().time()


def fake_vault() -> FakeVault:
    """A fake vault whose server clock is the virtual time."""
    return FakeVault(clock=now)


App = AppModel
Device = SimDevice


async def close_all(*devices: Device) -> None:
    """Close every device's helper."""
    for device in devices:
        await device.helper.close()


def vault_live(vault: FakeVault, context: str = "notes") -> dict[str, Any]:
    """The vault's live entries of a context, resolving duplicates by the highest version."""
    best: dict[str, dict[str, Any]] = {}
    for doc in vault.documents("backup_" + context):
        key = doc["key"]
        if key not in best or doc.get("brhVersion", "") > best[key].get("brhVersion", ""):
            best[key] = doc
    return {k: d["data"] for k, d in sorted(best.items()) if d.get("deletionDate") is None}


async def settle(*devices: Device, rounds: int = 4) -> None:
    """Sync every device in turn until a whole round changes nothing."""
    for _ in range(rounds):
        results = [await d.helper.sync() for d in devices]
        assert all(results), [r for r in results if not r]
        if all(r.delivered == 0 and r.pushed == 0 for r in results):
            break
    await asyncio.sleep(1)  # let debounced passes run out


def flaky(vault: FakeVault) -> Any:
    """A :class:`simulator.world.link.Link` to ``vault``, typed loosely for the tests."""
    return Link(vault)
