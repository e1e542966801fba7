"""Whether each fault of :data:`simulator.faults.FAULTS` is on in a world, read from its links
and its vault server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.world.world import World

__all__ = ["FAULT_ON"]

FAULT_ON: dict[str, Callable[[World, str], bool]] = {
    "partition": lambda world, name: world.links[name].partitioned,
    "cut_answers": lambda world, name: world.links[name].answers_lost,
    "disconnect": lambda world, name: world.links[name].down,
    "lossy": lambda world, name: (
        bool(world.links[name].request_loss) or bool(world.links[name].answer_loss)
    ),
    "slow_link": lambda world, name: world.links[name].latency != world.latency,
    "expire_token": lambda world, name: name in world.server.expired,
    "freeze": lambda world, _: world.server.frozen,
    "take_down": lambda world, _: world.server.unavailable,
    "server_errors": lambda world, _: (
        bool(world.server.error_before) or bool(world.server.error_after)
    ),
    "upsert_race": lambda world, _: bool(world.server.upsert_race),
    "slow_vault": lambda world, _: bool(world.server.slow),
    "commit_lag": lambda world, _: bool(world.server.commit_lag),
}
"""Whether each fault of :data:`simulator.faults.FAULTS` is on (for a device's name, or "")."""
