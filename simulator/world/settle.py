"""The settle phase of a run (:meth:`simulator.world.World.settle`) and what it measures.

Every fault healed, every crashed device restarted, every device syncing *incrementally* until
quiet; then convergence is checked. A forced full pass follows only if some device diverges,
and it may repair only what the SPEC lets a full pass repair (:func:`full_pass_excuse`): a key
only it delivered is a SYNC-4 finding. Last, each device's idle pass is measured on its link
(COST-1, :func:`judge_idle_pass`), and the end-of-run checkers run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from simulator.world.checkers import Checker, Finding

if TYPE_CHECKING:
    from simulator.world.world import World

__all__ = ["full_pass_excuse", "judge_idle_pass", "settle"]

RETENTION = 30 * 86400.0
"""The reference's default ``tombstone_retention`` (DEL-2)."""
OVERLAP = 5.0
"""The reference's default ``overlap`` window (SYNC-4)."""


async def settle(world: World, *, max_rounds: int = 12) -> list[Finding]:
    """See :meth:`simulator.world.World.settle`."""
    world.heal_all()
    for name, device in world.devices.items():
        if not device.running:
            await world.restart(name)
    await world.advance(1)
    await _sync_until_quiet(world, max_rounds, full=False)
    missed = world.checker.divergence()
    if missed:
        shown = ", ".join(f"{d}/{c}/{k}" for d, c, k in sorted(missed)[:10])
        world.note(
            f"settle: {len(missed)} entries differ from the vault after incremental passes "
            f"({shown}); every device makes a full pass"
        )
        await _sync_until_quiet(world, max_rounds, full=True)
        _judge_full_pass(world, missed)
    if not world.server.live:
        await _measure_idle(world)
    world.checker.check_end()
    return world.checker.findings


async def _measure_idle(world: World) -> None:
    """COST-1, as the link counts it: once nothing changes anywhere, a device's pass costs
    at most one request per context plus two purge requests, and re-reads no document.

    Time first passes the overlap window (and a second), and every device makes one pass,
    after which every cursor is settled (SYNC-4); then each device makes two more passes,
    each measured on its link: the requests it sent and the documents the answers carried.
    At most one of the two may be the periodic full pass (SYNC-11, DEL-3), so only the
    cheaper one is judged; a pass that did not complete (an upload the vault keeps
    refusing, RETRY-6) had something to do and is not judged.
    """
    overlap = max(
        [float(d.options.get("overlap", OVERLAP)) for d in world.devices.values()] or [OVERLAP]
    )
    await world.advance(overlap + 1)
    for device in world.devices.values():
        if device.running:
            await device.sync()
    for name, device in world.devices.items():
        if not device.running:
            continue
        link = world.links[name]
        passes: list[tuple[int, int, Counter[tuple[str, str]], Counter[tuple[str, str]]]] = []
        for _ in range(2):
            sent, read = Counter(link.sent_by), Counter(link.documents_read)
            if not await device.sync():
                break
            ops = link.sent_by - sent
            docs = link.documents_read - read
            passes.append((ops.total(), docs.total(), ops, docs))
        else:
            requests, documents, ops, docs = min(passes, key=lambda p: (p[1], p[0]))
            judge_idle_pass(
                world.checker, name, len(device.contexts), requests, documents, ops, docs
            )


async def _sync_until_quiet(world: World, max_rounds: int, *, full: bool) -> None:
    """Rounds of passes (the first one full, with ``full``) until a round changes nothing."""
    for round_ in range(max_rounds):
        before = world.changes()
        results = [await d.sync(full=full and round_ == 0) for d in world.devices.values()]
        # quiet: no pass at all (a retry running in the background included) changed
        # anything during the whole round
        if all(results) and world.changes() == before:
            return
    world.checker.fail(
        "settle",
        "SYNC-1",
        f"still changing after {max_rounds} rounds of "
        f"{'passes' if full else 'incremental passes'} with every fault healed",
    )


def full_pass_excuse(world: World, device: str, context: str, key: str) -> str | None:
    """Why a full pass may legitimately be what brings ``key`` of ``context`` to ``device``
    (None: no clause says so, and an incremental pull should have): the vault's clock
    stepped back by more than the overlap window (SYNC-11), the device was away for more
    than half the tombstone retention (DEL-3), or it deleted the key ``locally_only``
    (API-3)."""
    if world.vault_stepped_back:
        return "the vault's clock stepped back by more than the overlap (SYNC-11)"
    if (context, key) in world.forgotten.get(device, set()):
        return "the device deleted it locally_only (API-3)"
    half = _half_retention(world, device)
    link = world.links.get(device)
    if half is not None and link is not None and link.longest_silence() > half:
        return "the device was away for over half the tombstone retention (DEL-3)"
    return None


def _half_retention(world: World, device: str) -> float | None:
    options = world.devices[device].options if device in world.devices else {}
    retention = options.get("tombstone_retention", RETENTION)
    if not isinstance(retention, int | float) or isinstance(retention, bool):
        return None
    return float(retention) / 2


def _judge_full_pass(world: World, missed: set[tuple[str, str, str]]) -> None:
    """SYNC-4: the keys the forced full pass delivered that no clause lets it deliver."""
    still = world.checker.divergence()
    repaired: dict[tuple[str, str], list[str]] = {}
    for device, context, key in sorted(missed - still):
        if full_pass_excuse(world, device, context, key) is None:
            repaired.setdefault((device, context), []).append(key)
    for (device, context), keys in sorted(repaired.items()):
        shown = ", ".join(repr(k) for k in keys[:10])
        more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
        world.checker.fail(
            "settle",
            "SYNC-4",
            f"{len(keys)} key(s) reached the device only through a forced full pass, "
            f"after incremental passes had gone quiet without them: {shown}{more} (no "
            "vault clock step, long absence or locally_only delete explains it)",
            [{"kind": "device", "device": device}],
            device=device,
            context=context,
        )


def judge_idle_pass(
    checker: Checker,
    device: str,
    contexts: int,
    requests: int,
    documents: int,
    sent: Mapping[tuple[str, str], int],
    read: Mapping[tuple[str, str], int],
) -> None:
    """COST-1 (W9): a pass with nothing to do, measured on the device's link (see
    :func:`_measure_idle`), sends at most three requests per context (a pull, and
    the two of a purge) and, its cursors settled, reads back no document: its work does
    not grow with the entries stored. The finding names the operations behind it."""
    budget = 3 * contexts
    if requests > budget:
        checker.fail(
            "cost",
            "COST-1",
            f"an idle pass (nothing changed anywhere) sent {requests} requests (budget "
            f"{budget}: a pull and two purge requests per context): {_tally(sent)}",
            device=device,
        )
    if documents:
        checker.fail(
            "cost",
            "COST-1",
            f"re-read {documents} unchanged documents in an idle pass, its cursors settled "
            f"(nothing changed anywhere): {_tally(read)}",
            device=device,
        )


def _tally(counts: Mapping[tuple[str, str], int]) -> str:
    """``30 × find_one on backup_notes, 1 × query on backup_notes``, the largest first."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} × {op} on {collection or '?'}" for (op, collection), n in ranked)
