"""Small steps shared by the conformance tests."""

from __future__ import annotations

from simulator.world import World

__all__ = ["MINUTE", "sync_all"]

MINUTE = 60.0


async def sync_all(world: World, rounds: int = 2) -> None:
    """Each running device syncs in turn, ``rounds`` times (a few app launches would do that),
    with a second of virtual time after each round."""
    for _ in range(rounds):
        for device in world.devices.values():
            if device.running:
                await device.sync()
        await world.advance(1)
