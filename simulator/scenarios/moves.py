"""Moves the scenarios share: syncing every device, the incremental checkpoint, a device that
joins with some contexts only, a vault filled as a long-gone device left it, and time units."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from brh.hlc import Version
from brh.wire import collection_for, document_fields
from simulator.world import World
from simulator.world.device import SimDevice

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "add_context_later",
    "incremental_checkpoint",
    "join_with_contexts",
    "scenario_rng",
    "seed_vault",
    "sync_all",
    "wait_for",
]

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


async def sync_all(world: World) -> None:
    """Every running device runs one pass, in join order (the result is the checkers' business)."""
    for device in list(world.devices.values()):
        if device.running:
            await device.sync()


async def incremental_checkpoint(world: World, *, max_rounds: int = 12) -> None:
    """Heal everything, sync *incrementally* until quiet, and run the end checks now.

    The world's settle phase also checks after incremental passes first, and reports a change
    only its forced full pass delivered as one SYNC-4 finding per device; checking here names
    each key's convergence it broke (W1, W3). Findings go to the world's checker like any
    other. Such scenarios should also switch off
    the helper's own periodic full pass (``full_sync_interval=None``), which could repair the
    miss before the checkpoint (SYNC-11).
    """
    world.note("checkpoint: heal everything and sync incrementally until quiet, then check")
    world.heal_all()
    for name, device in list(world.devices.items()):
        if not device.running:
            await world.restart(name)
    await world.advance(1)
    for _round in range(max_rounds):
        before = world.changes()
        results = [await d.sync() for d in world.devices.values()]
        if all(results) and world.changes() == before:
            break  # quiet, as World.settle means it: no pass changed anything in a whole round
    else:
        world.checker.fail(
            "checkpoint",
            "SYNC-1",
            f"still changing after {max_rounds} rounds of incremental passes, every fault healed",
        )
    world.checker.check_end()


def join_with_contexts(
    world: World, name: str, contexts: tuple[str, ...], **device_options: Any
) -> SimDevice:
    """Add a device that registers only ``contexts`` (a subset of the world's) at first.

    World has no verb for this: the world's context list is narrowed while the device joins.
    The scenario must register the others later (``device.add_context``) before the end
    checks, which look at every context on every device.
    """
    unknown = set(contexts) - set(world.contexts)
    if unknown:
        raise ValueError(f"join_with_contexts: {sorted(unknown)} are not contexts of the world")
    every = world.contexts
    world.contexts = tuple(c for c in every if c in contexts)
    try:
        return world.add_device(name, **device_options)
    finally:
        world.contexts = every


def add_context_later(world: World, name: str, context: str) -> None:
    """Register ``context`` on a running device that joined without it."""
    world.note(f"{name} registers context {context!r} (an app update adds a feature)")
    world.device(name).add_context(context)


def scenario_rng(world: World) -> random.Random:
    """A generator for a scenario's own choices, seeded from the world's seed."""
    return random.Random(f"{world.seed}:scenario")


async def wait_for(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    """Await fire-and-forget tasks a scenario started, returning results or exceptions."""
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def seed_vault(
    world: World, context: str, *, live: int, legacy: int = 0, tombstones: int = 0
) -> None:
    """Fill ``context``'s collection as a device long gone left it, straight on the server.

    ``live`` brh documents (keys ``item-NNNNN``, written by device ``lost-phone``),
    ``legacy`` documents of the original helper (``legacy-NNNNN``: no ``brhVersion``), and
    ``tombstones`` deleted brh documents (``gone-NNNNN``), written one after another over the
    past year: each carries the vault stamps (``created``/``modified``) of its time. No
    acknowledged write backs them, so only the convergence checks look at them.
    """
    total = live + legacy + tombstones
    now = int(world.server.clock())
    step = max(1, int(360 * DAY) // max(1, total))
    first = now - int(365 * DAY)
    docs: list[dict[str, Any]] = []
    kinds = ["legacy"] * legacy + ["live"] * live + ["tombstone"] * tombstones
    counts = {"legacy": 0, "live": 0, "tombstone": 0}
    for n, kind in enumerate(kinds):
        stamp = first + n * step
        ms = stamp * 1000
        i = counts[kind]
        counts[kind] += 1
        if kind == "legacy":
            fields: dict[str, Any] = {
                "key": f"legacy-{i:05}",
                "data": {"n": i, "by": "the original helper"},
                "creationDate": ms,
                "modificationDate": ms,
                "deletionDate": None,
            }
        else:
            version = Version(ms, 0, "lost-phone")
            key = f"item-{i:05}" if kind == "live" else f"gone-{i:05}"
            deleted = ms if kind == "tombstone" else None
            fields = document_fields(key, {"n": i}, ms, deleted, version)
        docs.append({**fields, "created": stamp, "modified": stamp})
    collection = collection_for(context)
    vault = world.server.vault
    if collection not in vault.collection_names():
        await vault.create_collection(collection)
    if docs:
        await vault.insert_many(collection, docs, timestamp=False)
    world.note(
        f"the vault holds {collection} as a lost device left it over a year: {live} entries, "
        f"{legacy} written by the original helper, {tombstones} tombstones"
    )
