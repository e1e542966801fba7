"""What the original design document promises (level ``core``): a faithful implementation of
it should pass these. Every scenario runs on simulated devices sharing one vault, on virtual
time; assertions read only what the app sees (its model, filled by the three callbacks) and the
helper's local copy."""

from __future__ import annotations

from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.world import World


@clause("CB-1", "SYNC-1", level="core")
def test_an_entry_created_on_one_device_is_inserted_on_another(brh_sim: Sim) -> None:
    """CB-1: another device's new entry reaches the app through the insertion callback."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", {"text": "hello"})
        await world.advance(5)
        await sync_all(world)
        assert tablet.app.items == {"x": {"text": "hello"}}
        assert ("insert", "x", {"text": "hello"}) in tablet.app.calls
        assert tablet.local() == {"x": {"text": "hello"}}

    brh_sim.run(scenario)


@clause("CB-2", level="core")
def test_a_modification_reaches_the_other_device(brh_sim: Sim) -> None:
    """CB-2: a later edit of a key the device holds arrives through the modification callback."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await phone.put("x", 2)
        await world.advance(5)
        await sync_all(world)
        assert tablet.app.items == {"x": 2}
        assert ("modify", "x", 2) in tablet.app.calls

    brh_sim.run(scenario)


@clause("CB-3", level="core")
def test_a_deletion_reaches_the_other_device(brh_sim: Sim) -> None:
    """CB-3: a deletion on one device removes the entry on the other through on_delete."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await phone.put("y", 2)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await phone.remove("x")
        await world.advance(5)
        await sync_all(world)
        assert tablet.app.items == {"y": 2}
        assert [kind for kind, key, _ in tablet.app.calls if key == "x"][-1] == "delete"
        assert tablet.local() == {"y": 2}

    brh_sim.run(scenario)


@clause("RES-1", level="core")
def test_a_reinstalled_device_restores_everything(brh_sim: Sim) -> None:
    """RES-1: after a reinstall (empty local store) the first sync inserts every live entry,
    and no deleted one."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        for i in range(20):
            await phone.put(f"k{i}", {"n": i})
        await phone.remove("k3")
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        await world.reinstall("phone")
        assert phone.app.items == {}
        await phone.sync()
        expected = {f"k{i}": {"n": i} for i in range(20) if i != 3}
        assert phone.app.items == expected
        assert all(kind == "insert" for kind in phone.app.kinds())

    brh_sim.run(scenario)


@clause("RES-1", "SYNC-1", level="core", weakness="W3")
def test_a_fresh_device_restores_every_context_at_its_first_sync(brh_sim: Sim) -> None:
    """RES-1, SYNC-1 (W3): a device joining with an empty store restores the entries of every
    context, not only the first one's, at its first sync (one pass visits every context)."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("n1", "a note", context="notes")
        await phone.put("n2", "another note", context="notes")
        await phone.put("c1", "a contact", context="contacts")
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        tablet = world.add_device("tablet")
        assert await tablet.sync()
        assert tablet.apps["notes"].items == {"n1": "a note", "n2": "another note"}
        assert tablet.apps["contacts"].items == {"c1": "a contact"}
        assert tablet.local("contacts") == {"c1": "a contact"}

    brh_sim.run(scenario, contexts=("notes", "contacts"))


@clause("RES-2", "API-5", level="core")
def test_wiping_a_context_restores_it_at_the_next_sync(brh_sim: Sim) -> None:
    """RES-2: wipe_local_context_data forgets the local copy; the next sync restores it."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("a", 1)
        await tablet.put("b", 2)
        await world.advance(5)
        await sync_all(world)
        await world.wipe("phone", "notes")
        assert phone.local() == {}
        await phone.sync()
        assert phone.app.items == {"a": 1, "b": 2}

    brh_sim.run(scenario)


@clause("RES-2", "CB-4", level="core")
def test_a_wiped_context_is_restored_in_full_long_after_earlier_syncs(brh_sim: Sim) -> None:
    """RES-2: a device that synced many times (its progress long settled) wipes a context; the
    next sync restores every live entry, its own old writes included, as insertions, and no
    deleted one (CB-4: after a wipe those are not echoes)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("a", 1)
        await tablet.put("doomed", 0)
        await phone.put("mine", "from the phone")
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await tablet.put("a", 2)
        await tablet.remove("doomed")
        await world.advance(5)
        await sync_all(world)
        await world.advance(10 * MINUTE)
        await sync_all(world)
        expected = {"a": 2, "mine": "from the phone"}
        assert phone.app.items == expected
        await world.wipe("phone", "notes")
        before = phone.app.calls.total
        await phone.sync()
        assert phone.app.items == expected
        assert phone.local() == expected
        restored = sorted(phone.app.calls.since(before))
        assert restored == [("insert", "a", 2), ("insert", "mine", "from the phone")], restored

    brh_sim.run(scenario)


@clause("OFF-1", "OFF-3", level="core")
def test_changes_made_offline_sync_once_back_online(brh_sim: Sim) -> None:
    """OFF-1, OFF-3: writes succeed without the network and reach the vault when it is back."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.disconnect("phone")
        await phone.put("x", "written offline")
        await phone.put("y", "also offline")
        assert phone.local() == {"x": "written offline", "y": "also offline"}
        await world.advance(10 * MINUTE)
        world.reconnect("phone")
        await phone.sync()
        await world.advance(5)
        await tablet.sync()
        assert tablet.app.items == {"x": "written offline", "y": "also offline"}

    brh_sim.run(scenario)


@clause("CB-6", "API-4", level="core")
def test_a_refusal_halts_the_pass(brh_sim: Sim) -> None:
    """CB-6: a callback returning False ends the pass at once: no later callback in it, and
    sync() reports that it did not complete."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for key in ("a", "b", "c"):
            await phone.put(key, key.upper())
        await world.advance(5)
        await phone.sync()
        tablet.app.refuse = lambda kind, entry: True
        completed = await tablet.sync()
        assert not completed
        assert tablet.app.calls.total == 1, tablet.app.calls
        assert tablet.app.items == {}

    brh_sim.run(scenario)


@clause("CB-5", "CB-7", level="core")
def test_a_refused_change_is_delivered_by_a_later_sync(brh_sim: Sim) -> None:
    """CB-5, CB-7: after the app refused a change, a later sync delivers it again; once
    accepted it is not delivered a third time."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await world.advance(5)
        await phone.sync()
        tablet.app.refuse = lambda kind, entry: True
        await tablet.sync()
        assert tablet.app.items == {}
        tablet.app.refuse = None
        await world.advance(MINUTE)
        assert await tablet.sync()
        assert tablet.app.items == {"x": 1}
        deliveries = tablet.app.calls.total
        await world.advance(MINUTE)
        await tablet.sync()
        assert tablet.app.calls.total == deliveries

    brh_sim.run(scenario)


@clause("SYNC-1", "DATA-5", level="core")
def test_contexts_are_independent(brh_sim: Sim) -> None:
    """SYNC-1, DATA-5: each context syncs its own entries; one key in two contexts is two
    entries."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", "a note", context="notes")
        await phone.put("x", "a contact", context="contacts")
        await world.advance(5)
        await sync_all(world)
        assert tablet.apps["notes"].items == {"x": "a note"}
        assert tablet.apps["contacts"].items == {"x": "a contact"}

    brh_sim.run(scenario, contexts=("notes", "contacts"))


@clause("DEL-4", level="core")
def test_deleting_an_unknown_key_changes_nothing(brh_sim: Sim) -> None:
    """DEL-4: deleting a key the device does not hold is not an error and changes nothing."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await phone.remove("nope")
        await world.advance(5)
        await sync_all(world)
        assert phone.local() == {"x": 1}
        assert tablet.app.items == {"x": 1}
        assert all(key != "nope" for _, key, _ in tablet.app.calls)

    brh_sim.run(scenario)


@clause("CB-4", level="core")
def test_a_device_is_not_told_about_its_own_writes(brh_sim: Sim) -> None:
    """CB-4 (the design document's "information is different" rule): syncing the device that
    wrote an entry makes no callback for it."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("x", 1)
        await phone.put("y", 2)
        await phone.remove("y")
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        await phone.sync()
        assert phone.app.calls == []

    brh_sim.run(scenario)
