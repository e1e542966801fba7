"""What the original helper lacks (level ``robust``): late uploads, writes the vault commits
late, clock skew, per-context progress, concurrent creators, retries, delete/edit conflicts,
ties, crashes, lost answers.

Tests that demonstrate one of the original's weaknesses (``../shared/reference/
original-helper.md``) name it; the legacy baseline fails each of them."""

from __future__ import annotations

import asyncio
import contextlib
import math

from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.world import World
from simulator.world.device import SimDevice


@clause("SYNC-4", level="robust", weakness="W1")
def test_an_edit_uploaded_late_still_reaches_a_device_that_synced_meanwhile(brh_sim: Sim) -> None:
    """SYNC-4 (W1): B edits offline at t=100 and uploads at t=500; A synced at t=300. A's
    next sync must still see B's edit (pulls follow the vault's order, not edit times)."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("seed", 0)
        await world.advance(5)
        await sync_all(world)
        world.disconnect("b")
        await world.advance(100)
        await b.put("x", "edited offline")
        await world.advance(200)
        await a.put("other", 1)
        await a.sync()
        await world.advance(200)
        world.reconnect("b")
        await b.sync()
        await world.advance(5)
        await a.sync()
        assert a.app.items.get("x") == "edited offline"

    brh_sim.run(scenario)


@clause("ORD-2", "ORD-3", level="robust", weakness="W2")
def test_a_device_whose_clock_is_behind_does_not_lose_its_newer_edit(brh_sim: Sim) -> None:
    """ORD-3 (W2): a device an hour behind sees B's version, then edits: its edit is newer
    and must win everywhere, whatever the clocks say."""

    async def scenario(world: World) -> None:
        slow, b = world.add_device("slow", offset=-3600), world.add_device("b")
        await b.put("x", "from b")
        await world.advance(5)
        await sync_all(world)
        assert slow.app.items == {"x": "from b"}
        await world.advance(MINUTE)
        await slow.put("x", "newer, from the slow clock")
        await world.advance(5)
        await sync_all(world, rounds=3)
        assert b.app.items == {"x": "newer, from the slow clock"}
        assert slow.app.items == {"x": "newer, from the slow clock"}
        assert slow.local() == {"x": "newer, from the slow clock"}

    brh_sim.run(scenario)


@clause("SYNC-5", "SYNC-6", level="robust", weakness="W3")
def test_a_refusal_in_one_context_does_not_skip_its_changes_for_good(brh_sim: Sim) -> None:
    """SYNC-5 (W3): context "notes" syncs, "contacts" is refused; the refused change must be
    delivered later (each context keeps its own progress)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("n1", "note", context="notes")
        await phone.put("c1", "contact", context="contacts")
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        tablet.apps["contacts"].refuse = lambda kind, entry: True
        await tablet.sync()
        assert tablet.apps["notes"].items == {"n1": "note"}
        assert tablet.apps["contacts"].items == {}
        tablet.apps["contacts"].refuse = None
        await world.advance(MINUTE)
        await tablet.sync()
        await world.advance(MINUTE)
        await tablet.sync()
        assert tablet.apps["contacts"].items == {"c1": "contact"}

    brh_sim.run(scenario, contexts=("notes", "contacts"))


@clause("SYNC-4", level="robust", weakness="W2")
def test_a_device_whose_clock_is_ahead_still_receives_later_changes(brh_sim: Sim) -> None:
    """SYNC-4 (W2): a device whose clock runs an hour ahead syncs; a minute later another
    device writes. The fast device's next sync must see those writes: pulls follow the vault's
    stamps, never a device clock."""

    async def scenario(world: World) -> None:
        fast, b = world.add_device("fast", offset=3600), world.add_device("b")
        await b.put("x", "before")
        await world.advance(5)
        await sync_all(world)
        assert fast.app.items == {"x": "before"}
        await world.advance(MINUTE)
        await b.put("x", "edited later")
        await b.put("y", "written later")
        await world.advance(5)
        await b.sync()
        await world.advance(5)
        await fast.sync()
        assert fast.app.items == {"x": "edited later", "y": "written later"}

    brh_sim.run(scenario)


async def commit_late(
    world: World, writer: SimDevice, key: str, value: object, lag_for: float
) -> tuple[int, asyncio.Future[bool]]:
    """At the start of a vault second, ``writer`` writes ``key`` and syncs: the upload is
    stamped in that second and becomes visible 4 s later (the vault's commit lag, on for
    ``lag_for`` seconds, then off for later writes). The second, and the sync still running."""
    vault_clock = world.server.clock
    await world.advance(math.ceil(vault_clock()) - vault_clock() + 0.05)  # a second begins
    second = math.floor(vault_clock())
    world.commit_lag(4.0, exact=True)
    await writer.put(key, value)
    committing = asyncio.ensure_future(writer.sync())
    await world.advance(lag_for)
    world.commit_at_once()
    return second, committing


def vault_stamps(world: World) -> dict[str, int]:
    """Each key's vault stamp in ``backup_notes`` (to check what a scenario set up)."""
    return {d["key"]: d["modified"] for d in world.server.vault.documents("backup_notes")}


@clause("SYNC-4", level="robust", weakness="W1")
def test_a_write_still_committing_when_a_device_pulls_reaches_it_incrementally(
    brh_sim: Sim,
) -> None:
    """SYNC-4 (W1): the vault stamps a write when it handles it, and the write becomes visible
    up to the overlap later. A's write x1 is stamped in one second but commits 4 s later; C's
    x0, a second later, is visible at once. B pulls in between, after the vault's clock passed
    x0's second: it gets x0, so its cursor is past x1's stamp while x1 is not visible yet. B's
    following incremental passes (it synced a minute before: no restore, no full pass) must
    still deliver x1; a cursor that settles once the vault's clock passes it never reads x1,
    and neither does a watermark of edit times (x1 was edited first)."""

    async def scenario(world: World) -> None:
        a, b, c = world.add_device("a"), world.add_device("b"), world.add_device("c")
        await a.put("seed", 0)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        vault_clock = world.server.clock
        second, committing = await commit_late(world, a, "x1", "stamped first, committing", 1.15)
        await c.put("x0", "stamped a second later, visible at once")
        await c.sync()
        await world.advance(second + 2.6 - vault_clock())
        await b.sync()
        await world.advance(0.6)
        await b.sync()  # the vault's clock is past x0's second; x1 is still committing
        assert b.app.items.get("x0") == "stamped a second later, visible at once"
        assert "x1" not in b.app.items, "x1 was visible before its commit lag ended"
        await committing
        stamps = vault_stamps(world)
        assert stamps["x1"] == second < stamps["x0"], f"the writes' stamps are off: {stamps}"
        for _ in range(3):
            await world.advance(10)
            await b.sync()
        assert b.app.items.get("x1") == "stamped first, committing"

    brh_sim.run(scenario)


@clause("SYNC-10", "SYNC-4", level="robust", weakness="W1")
def test_a_write_committing_during_a_full_pass_reaches_it_incrementally(brh_sim: Sim) -> None:
    """SYNC-10, SYNC-4 (W1): a full pass reads what is visible while it runs. A's write x1 is
    stamped just before B's full pass and commits 4 s later, after the pass has read
    everything. B's following incremental passes must still deliver x1: a full pass that
    leaves its cursor at the vault's clock (as it began or as it ended), as if nothing stamped
    before could still appear, never reads x1 again."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("seed", 0)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        assert await b.sync()  # b has a cursor, and knows the vault's clock of now
        value = "stamped before the full pass, committing during it"
        second, committing = await commit_late(world, a, "x1", value, 1.5)
        assert await b.sync()  # its answers tell b the vault's clock is past x1's second
        assert await b.sync(full=True)
        assert "x1" not in b.app.items, "x1 was visible before its commit lag ended"
        await committing
        assert vault_stamps(world)["x1"] == second, f"x1's stamp is off: {vault_stamps(world)}"
        for _ in range(3):
            await world.advance(10)
            await b.sync()
        assert b.app.items.get("x1") == value

    brh_sim.run(scenario)


@clause("ORD-4", "RES-1", level="robust", weakness="W4")
def test_two_devices_creating_one_key_at_once_leave_one_entry(brh_sim: Sim) -> None:
    """ORD-4 (W4): two devices create the same key at the same moment over slow links; after
    they sync, a new device restores exactly one entry for that key (one callback)."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        world.slow_link("a", (0.5, 1.0))
        world.slow_link("b", (0.5, 1.0))
        await asyncio.gather(a.put("x", "from a"), b.put("x", "from b"))
        await asyncio.gather(a.sync(), b.sync())
        world.fast_link("a")
        world.fast_link("b")
        await world.advance(MINUTE)
        await sync_all(world, rounds=3)
        late = world.add_device("late")
        await late.sync()
        await world.advance(5)
        await late.sync()
        assert [key for _, key, _ in late.app.calls] == ["x"], late.app.calls
        assert late.app.items == a.app.items == b.app.items

    brh_sim.run(scenario)


@clause("SYNC-7", "ORD-2", level="robust")
def test_a_new_entry_uploaded_late_does_not_overwrite_a_newer_one(brh_sim: Sim) -> None:
    """SYNC-7, ORD-2 (W4): A creates x over a slow link and starts a sync; while A's pass is
    between its pull and its upload, B creates x too (a later write) and uploads it first. A's
    upload must not overwrite B's newer version: both devices end with B's data."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await sync_all(world)
        world.slow_link("a", (1.0, 1.0))
        await a.put("x", "older, from a")
        running = asyncio.ensure_future(a.sync())
        await world.advance(1.5)
        await b.put("x", "newer, from b")
        await b.sync()
        await running
        world.fast_link("a")
        await world.advance(MINUTE)
        await sync_all(world, rounds=3)
        assert a.app.items == b.app.items == {"x": "newer, from b"}
        assert a.local() == b.local() == {"x": "newer, from b"}

    brh_sim.run(scenario)


@clause("RETRY-1", level="robust", weakness="W6")
def test_a_refused_change_is_retried_without_an_outside_trigger(brh_sim: Sim) -> None:
    """RETRY-1 (W6): after a refusal the helper tries again by itself: no app call, no write,
    only time passing."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await world.advance(5)
        await phone.sync()
        world.behave("tablet", mode="refuse", refusals=1)
        assert not await tablet.sync()
        assert tablet.app.items == {}
        await world.advance(10 * MINUTE)
        assert tablet.app.items == {"x": 1}

    brh_sim.run(scenario)


@clause("RETRY-1", "OFF-3", level="robust", weakness="W6")
def test_a_write_made_while_the_vault_is_down_uploads_by_itself(brh_sim: Sim) -> None:
    """RETRY-1, OFF-3 (W6): a write whose sync failed on a vault outage reaches the vault
    once it is back, with no further call from the app."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.take_down()
        await phone.put("x", "written during the outage")
        await world.advance(MINUTE)
        world.bring_up()
        await world.advance(10 * MINUTE)
        await tablet.sync()
        assert tablet.app.items == {"x": "written during the outage"}

    brh_sim.run(scenario)


@clause("SYNC-8", level="robust", weakness="W6")
def test_local_changes_are_pushed_even_when_a_remote_change_is_refused(brh_sim: Sim) -> None:
    """SYNC-8 (W6): one remote change keeps being refused; the device's own edits must still
    reach the vault (one refusal must not block everything)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("poison", "refused by the tablet")
        await world.advance(5)
        await phone.sync()
        tablet.app.refuse = lambda kind, entry: entry.key == "poison"
        await tablet.put("mine", "from the tablet")
        await world.advance(MINUTE)
        await tablet.sync()
        await world.advance(5)
        await phone.sync()
        assert phone.app.items.get("mine") == "from the tablet"
        tablet.app.refuse = None

    brh_sim.run(scenario)


@clause("ORD-6", level="robust", weakness="W7")
def test_a_remote_edit_after_a_local_delete_leaves_one_consistent_state(brh_sim: Sim) -> None:
    """ORD-6 (W7): A deletes x offline, then B edits x (a later write). After A syncs, x is
    live with B's data in A's app and in A's local copy alike (never deleted and live)."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", "original")
        await world.advance(5)
        await sync_all(world)
        world.disconnect("a")
        await a.remove("x")
        await world.advance(MINUTE)
        await b.put("x", "edited by b")
        await world.advance(5)
        await b.sync()
        world.reconnect("a")
        await a.sync()
        assert a.app.items == {"x": "edited by b"}
        assert a.local() == {"x": "edited by b"}

    brh_sim.run(scenario)


@clause("ORD-2", level="robust", weakness="W8")
def test_two_different_writes_in_the_same_millisecond_converge(brh_sim: Sim) -> None:
    """ORD-2 (W8): two devices write different data to one key at the same instant (equal
    modification dates); every device must end with the same value."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", "from a")
        await b.put("x", "from b")
        await world.advance(5)
        await sync_all(world, rounds=3)
        assert a.app.items == b.app.items
        assert a.local() == b.local() == a.app.items

    brh_sim.run(scenario)


@clause("OFF-4", "OFF-2", level="robust")
def test_a_crash_in_the_middle_of_a_sync_loses_nothing(brh_sim: Sim) -> None:
    """OFF-4: the device dies while uploading over a slow link; after a restart everything it
    wrote still reaches the other device."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.slow_link("phone", (0.2, 0.4))
        for i in range(30):
            await phone.put(f"k{i}", i)
        running = asyncio.ensure_future(phone.sync())
        await world.advance(3)
        await world.crash("phone")
        await asyncio.gather(running, return_exceptions=True)  # cut short by the crash
        world.fast_link("phone")
        await world.advance(MINUTE)
        await world.restart("phone")
        await phone.sync()
        await world.advance(5)
        await tablet.sync()
        assert tablet.app.items == {f"k{i}": i for i in range(30)}

    brh_sim.run(scenario)


@clause("OFF-2", "OFF-4", level="robust", weakness="W12")
def test_changes_acknowledged_just_before_a_crash_are_not_lost(brh_sim: Sim) -> None:
    """OFF-2, OFF-4 (W12): the app's upsert and delete return and the device dies at once,
    before any sync could start; after the restart its local copy has both changes and they
    still reach the other device."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("kept", 1)
        await phone.put("doomed", 2)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await phone.put("x", "written just before the crash")
        await phone.put("kept", 10)
        await phone.remove("doomed")
        await world.crash("phone")
        await world.advance(MINUTE)
        await world.restart("phone")
        expected = {"kept": 10, "x": "written just before the crash"}
        assert phone.local() == expected
        await phone.sync()
        await world.advance(5)
        await tablet.sync()
        assert tablet.app.items == expected

    brh_sim.run(scenario)


@clause("CB-7", "OFF-4", level="robust")
def test_a_change_whose_callback_was_cut_short_by_a_crash_is_delivered_after_restart(
    brh_sim: Sim,
) -> None:
    """CB-7, OFF-4: the tablet's app takes its time over incoming changes (a slow callback) and
    the tablet dies meanwhile; after the restart those changes are delivered again."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await phone.put("x", 2)
        await phone.put("y", "new")
        await world.advance(5)
        await phone.sync()
        world.behave("tablet", mode="slow", delay=30)
        running = asyncio.ensure_future(tablet.sync())
        await world.advance(10)
        await world.crash("tablet")
        await asyncio.gather(running, return_exceptions=True)  # cut short by the crash
        world.behave("tablet", mode="apply")
        await world.restart("tablet")
        await tablet.sync()
        assert tablet.app.items == {"x": 2, "y": "new"}
        assert ("modify", "x", 2) in tablet.app.calls
        assert ("insert", "y", "new") in tablet.app.calls

    brh_sim.run(scenario)


@clause("ORD-5", level="robust")
def test_writes_whose_answers_were_lost_create_no_duplicates(brh_sim: Sim) -> None:
    """ORD-5: the vault applies the uploads but the answers never arrive; once answers flow
    again, a new device restores each entry exactly once with the latest data."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("x", 1)
        await phone.put("y", 2)
        world.cut_answers("phone")
        with contextlib.suppress(Exception):
            await phone.sync()
        await world.advance(MINUTE)
        await phone.put("x", 3)
        world.restore_answers("phone")
        await world.advance(10 * MINUTE)
        await phone.sync()
        late = world.add_device("late")
        await late.sync()
        assert late.app.items == {"x": 3, "y": 2}
        assert sorted(key for _, key, _ in late.app.calls) == ["x", "y"], late.app.calls

    brh_sim.run(scenario)


@clause("SYNC-1", "CB-5", level="robust")
def test_three_devices_editing_through_faults_converge(brh_sim: Sim) -> None:
    """SYNC-1, CB-5: three devices edit and delete through a partition, a vault outage and a
    clock jump; after healing they all show the same entries as their local copies."""

    async def scenario(world: World) -> None:
        a, b, c = (world.add_device(n) for n in ("a", "b", "c"))
        world.jump_clock("c", -600)
        for i in range(6):
            await a.put(f"k{i}", f"a{i}")
        await world.advance(10)
        world.partition("b")
        await b.put("k1", "b1")
        await c.remove("k2")
        await world.advance(MINUTE)
        world.take_down()
        await a.put("k3", "a3 again")
        await world.advance(MINUTE)
        world.bring_up()
        world.heal("b")
        await world.advance(10 * MINUTE)
        await sync_all(world, rounds=3)
        assert a.app.items == b.app.items == c.app.items
        for device in (a, b, c):
            assert device.local() == device.app.items

    brh_sim.run(scenario)


@clause("SYNC-11", level="robust")
def test_entries_written_after_the_vault_clock_stepped_back_still_arrive(brh_sim: Sim) -> None:
    """SYNC-11: the vault's clock steps an hour back (its stamps go backwards); entries written
    then still reach a device that had synced before, at the latest within a day."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("before", 1)
        await world.advance(5)
        await sync_all(world)
        world.jump_clock("vault", -3600)
        await phone.put("after", 2)
        await world.advance(5)
        await phone.sync()
        await world.advance(25 * 3600)
        await tablet.sync()
        await world.advance(5)
        await tablet.sync()
        assert tablet.app.items == {"before": 1, "after": 2}

    brh_sim.run(scenario)
