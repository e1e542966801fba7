"""Delivery: which callback a remote change gets and what the helper records once it is handled
(§3), deletes of keys not held, long absences (§8), restores and a vault that lost a collection
(§9), and the ordering clauses that keep one write one version through reinstalls, lost answers
and edit/delete conflicts (ORD-1, ORD-5, ORD-6).

Every assertion reads only what the harness observes of any implementation: the callbacks and
their answers, what the helper's calls return or raise, each device's local copy through the
public API, and the fake vault's documents in the original helper's fields (DATA-2: ``key``,
``data``, ``creationDate``, ``modificationDate``, ``deletionDate``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.impl import Helper
from simulator.world import World
from simulator.world.app import AppModel

DAY = 86400.0
FIELDS = ("key", "data", "creationDate", "modificationDate", "deletionDate")
"""The original helper's fields of an entry document (DATA-2)."""


def _documents(world: World, context: str = "notes") -> list[dict[str, Any]] | None:
    """The fake vault's entry documents of ``context`` in the original's fields, sorted; None
    on a live vault (whose documents the harness does not read)."""
    if world.server.live:
        return None
    name = "backup_" + context
    if name not in world.server.vault.collection_names():
        return []
    docs = [
        {field_: doc.get(field_) for field_ in FIELDS}
        for doc in world.server.vault.documents(name)
        if isinstance(doc.get("key"), str)
    ]
    return sorted(docs, key=lambda d: (d["key"], str(d["modificationDate"]), repr(d["data"])))


def _held(world: World, context: str = "notes") -> dict[str, list[Any]] | None:
    """Key -> what each of its documents on the fake vault holds (its data, or ``"<deleted>"``
    for a tombstone): a key with two documents shows both. None on a live vault."""
    docs = _documents(world, context)
    if docs is None:
        return None
    held: dict[str, list[Any]] = {}
    for doc in docs:
        held.setdefault(doc["key"], []).append(
            "<deleted>" if doc["deletionDate"] is not None else doc["data"]
        )
    return held


def _live(world: World, context: str = "notes") -> dict[str, Any] | None:
    """The live entries on the fake vault (keys with one live document and no other); None on
    a live vault."""
    held = _held(world, context)
    if held is None:
        return None
    return {key: values[0] for key, values in held.items() if values != ["<deleted>"]}


# -- CB-1, CB-2: insertion or modification -------------------------------------------------------


@clause("CB-1", level="core")
def test_a_key_the_device_does_not_hold_arrives_as_an_insertion(brh_sim: Sim) -> None:
    """CB-1: ``on_insert`` is called for a remote live entry whose key the device does not
    hold: one it never had, one it deleted and synced (another device writes it again later),
    and one it deleted offline before another device edited it (the edit is the newer write).
    None of them goes to ``on_modify``; each lands in the local copy and the app."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("gone", "first")
        await tablet.put("offline", "first")
        await world.advance(5)
        await sync_all(world)
        await phone.remove("gone")
        await world.advance(5)
        await sync_all(world)
        assert "gone" not in tablet.local()
        world.disconnect("phone")
        await phone.remove("offline")
        await world.advance(MINUTE)
        await tablet.put("gone", "written again")
        await tablet.put("offline", "edited later")
        await tablet.put("new", "never seen")
        await world.advance(5)
        await tablet.sync()
        world.reconnect("phone")
        calls = phone.app.calls.total
        assert await phone.sync()
        delivered = sorted(phone.app.calls.since(calls))
        assert delivered == [
            ("insert", "gone", "written again"),
            ("insert", "new", "never seen"),
            ("insert", "offline", "edited later"),
        ], delivered
        expected = {"gone": "written again", "new": "never seen", "offline": "edited later"}
        assert phone.local() == phone.app.items == expected
        await world.advance(5)
        await sync_all(world)
        assert tablet.local() == tablet.app.items == expected

    brh_sim.run(scenario)


@clause("CB-2", level="core")
def test_a_newer_version_of_a_key_the_device_holds_arrives_as_a_modification(
    brh_sim: Sim,
) -> None:
    """CB-2: ``on_modify`` is called for a remote newer version of a key the device holds
    live: one it synced earlier, and one it created itself offline and had not uploaded yet
    when another device's later write of the same key arrived. Neither goes to ``on_insert``."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("shared", 1)
        await world.advance(5)
        await sync_all(world)
        world.disconnect("phone")
        await phone.put("mine", "the phone's draft")
        await world.advance(MINUTE)
        await tablet.put("shared", 2)
        await tablet.put("mine", "the tablet's later write")
        await world.advance(5)
        await tablet.sync()
        world.reconnect("phone")
        calls = phone.app.calls.total
        assert await phone.sync()
        delivered = sorted(phone.app.calls.since(calls))
        assert delivered == [
            ("modify", "mine", "the tablet's later write"),
            ("modify", "shared", 2),
        ], delivered
        expected = {"mine": "the tablet's later write", "shared": 2}
        assert phone.local() == phone.app.items == expected
        await world.advance(5)
        await sync_all(world)
        assert tablet.local() == expected

    brh_sim.run(scenario)


# -- CB-5: what an accepted change leaves behind ---------------------------------------------


@clause("CB-5", level="core")
def test_an_accepted_change_is_recorded_even_when_the_app_declined_it(brh_sim: Sim) -> None:
    """CB-5: a callback that returns True has handled the change and the helper records the
    remote version as the local entry, also when the app returned True without applying it
    (it declined): ``get_database_entry`` and the local copy give the remote data (a new
    value, the same value written again, a new key), a later full pass delivers none of those
    versions again, and the device's own next edit of such a key reaches everyone."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("a", "first")
        await phone.put("b", "first")
        await world.advance(5)
        await sync_all(world)
        world.behave("tablet", mode="decline")
        await world.advance(MINUTE)
        await phone.put("a", "second")
        await phone.put("b", "first")  # a new version with the data the tablet has
        await phone.put("c", "new")
        await world.advance(5)
        await phone.sync()
        calls = tablet.app.calls.total
        assert await tablet.sync()
        delivered = sorted(tablet.app.calls.since(calls))
        assert delivered == [
            ("insert", "c", "new"),
            ("modify", "a", "second"),
            ("modify", "b", "first"),
        ], delivered
        assert tablet.app.items == {"a": "first", "b": "first"}  # it declined them all
        expected = {"a": "second", "b": "first", "c": "new"}
        assert tablet.local() == expected, "an accepted change was not recorded locally"
        for key, value in expected.items():
            entry = await tablet.get(key)
            assert entry is not None and entry.data == value, (key, entry)
        world.behave("tablet", mode="apply")
        await world.advance(MINUTE)
        calls = tablet.app.calls.total
        assert await tablet.sync(full=True)
        assert tablet.app.calls.since(calls) == [], (
            "a full pass delivered again versions the app had accepted: "
            f"{tablet.app.calls.since(calls)}"
        )
        await tablet.put("b", "edited on the tablet")
        await world.advance(5)
        await sync_all(world)
        final = {"a": "second", "b": "edited on the tablet", "c": "new"}
        assert phone.local() == phone.app.items == tablet.local() == final
        assert _live(world) in (None, final)

    brh_sim.run(scenario)


# -- CB-8: calls from inside a callback --------------------------------------------------------


@dataclass
class _CallingBackApp(AppModel):
    """An app whose insertion callback for ``trigger`` calls upsert, delete, wipe and sync of
    the helper running it, each awaited (time-boxed at a minute of virtual time), and notes how
    each one ended in ``outcomes``."""

    helper: Helper | None = None
    context: str = ""
    now: Callable[[], float] | None = None
    outcomes: dict[str, str] = field(default_factory=dict)

    async def on_insert(self, entry: Any) -> bool:
        if entry.key == "trigger" and not self.outcomes:
            await self._call_back()
        return self._handle("insert", entry)

    async def _call_back(self) -> None:
        helper, context, now = self.helper, self.context, self.now
        assert helper is not None and now is not None
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "upsert": lambda: helper.upsert_database_entry(context, "from-callback", 1),
            "delete": lambda: helper.delete_database_entry(context, "kept"),
            "wipe": lambda: helper.wipe_local_context_data(context),
            "sync": lambda: helper.sync(),
        }
        for name, call in calls.items():
            started = now()
            try:
                await asyncio.wait_for(call(), timeout=MINUTE)
            except TimeoutError:
                self.outcomes[name] = "hung for a minute (a deadlock)"
            except Exception as error:  # any implementation's own error type will do
                text = f"{type(error).__name__}: {error}"
                took = now() - started
                says_why = "reentr" in text.lower().replace("-", "") or "callback" in text.lower()
                if took > 1.0:
                    self.outcomes[name] = f"raised only after {took:.1f} s: {text}"
                elif not says_why:
                    self.outcomes[name] = f"raised without saying why: {text}"
                else:
                    self.outcomes[name] = "refused"
            else:
                self.outcomes[name] = "went through"


@clause("CB-8", level="robust", weakness="W11")
def test_every_call_from_inside_a_callback_fails_at_once_and_changes_nothing(
    brh_sim: Sim,
) -> None:
    """CB-8 (W11): from inside a callback the app calls upsert, delete, wipe_local_context_data
    and sync of the helper running it, each awaited. Every one fails at once (within a second
    of virtual time) with an error that says it is a re-entrant call from a callback, and
    changes nothing: the pass ends and delivers the change, the entry the callback tried to
    delete stays, the context is not wiped, the attempted write is stored nowhere."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        phone.add_context("inbox")
        tablet = world.add_device("tablet")
        app = _CallingBackApp(context="inbox", now=world.now)
        tablet.add_context("inbox", app)
        app.helper = tablet.impl_for("inbox")
        await phone.put("kept", "held", context="inbox")
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await phone.put("trigger", "go", context="inbox")
        await world.advance(5)
        await phone.sync()
        done, _ = await asyncio.wait([asyncio.ensure_future(tablet.sync())], timeout=10 * MINUTE)
        assert done, "the pass never ended: a call from its callback deadlocked it"
        assert set(app.outcomes) == {"upsert", "delete", "wipe", "sync"}, app.outcomes
        wrong = {name: how for name, how in app.outcomes.items() if how != "refused"}
        assert not wrong, f"calls from inside a callback that did not fail at once: {wrong}"
        expected = {"kept": "held", "trigger": "go"}
        assert tablet.local("inbox") == app.items == expected
        await world.advance(MINUTE)
        await sync_all(world)
        assert tablet.local("inbox") == phone.local("inbox") == expected
        assert phone.apps["inbox"].calls == [], list(phone.apps["inbox"].calls)

    # The devices get their one context, with the calling-back app, here (not from the world).
    brh_sim.run(scenario, contexts=())


# -- DEL-3, DEL-4 ------------------------------------------------------------------------------


@clause("DEL-3", "SYNC-10", level="robust")
def test_a_device_away_for_longer_than_the_retention_still_gets_the_deletions(
    brh_sim: Sim,
) -> None:
    """DEL-3, SYNC-10: the laptop syncs, then is offline for 33 days (the default tombstone
    retention is 30); meanwhile the phone deletes two entries and edits a third on day 1 and
    writes now and then, so the tombstones may be purged. Back online, the laptop's first sync
    delivers both deletions to ``on_delete``, the edit to ``on_modify`` and the new entry to
    ``on_insert``; it uploads nothing back (the vault keeps neither deleted entry live) and
    the phone is told nothing."""

    async def scenario(world: World) -> None:
        phone, laptop = world.add_device("phone"), world.add_device("laptop")
        for key in ("a", "b", "c"):
            await phone.put(key, f"entry {key}")
        await world.advance(5)
        await sync_all(world)
        assert laptop.app.items == {"a": "entry a", "b": "entry b", "c": "entry c"}
        world.disconnect("laptop")
        await world.advance(DAY)
        await phone.remove("a")
        await phone.remove("b")
        await phone.put("c", "edited")
        await world.advance(5)
        await phone.sync()
        for week in range(4):  # the vault's stamps move on (retention is measured in them)
            await world.advance(8 * DAY)
            await phone.put("diary", week)
            await phone.sync()
            await world.advance(5)
            await phone.sync()
        world.reconnect("laptop")
        phone_calls, calls = phone.app.calls.total, laptop.app.calls.total
        await laptop.sync()
        delivered = sorted((kind, key) for kind, key, _ in laptop.app.calls.since(calls))
        assert delivered == [
            ("delete", "a"),
            ("delete", "b"),
            ("insert", "diary"),
            ("modify", "c"),
        ], laptop.app.calls.since(calls)
        final = {"c": "edited", "diary": 3}
        assert laptop.local() == laptop.app.items == final
        await world.advance(MINUTE)
        await sync_all(world)
        assert phone.app.calls.since(phone_calls) == []
        assert phone.local() == laptop.local() == final
        assert _live(world) in (None, final)

    brh_sim.run(scenario)


@clause("DEL-4", level="core")
def test_deleting_a_key_not_held_live_writes_nothing_to_the_vault(brh_sim: Sim) -> None:
    """DEL-4: the phone deletes a key it never had, a key it already deleted, and a key it
    forgot locally (``locally_only``) that the vault and the tablet still hold. None of these
    deletes changes anything: the vault's documents are exactly what they were (no tombstone
    for the unknown key, the old tombstone untouched, the forgotten key still live), and the
    tablet keeps its entries and is told nothing."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("kept", 1)
        await tablet.put("doomed", 2)
        await tablet.put("forgotten", 3)
        await world.advance(5)
        await sync_all(world)
        await phone.remove("doomed")
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        before = _documents(world)
        calls = tablet.app.calls.total
        await world.forget("phone", "forgotten")
        await phone.remove("never")
        await phone.remove("doomed")
        await phone.remove("forgotten")
        await world.advance(MINUTE)
        await sync_all(world)
        local = phone.local()  # (whether "forgotten" comes back is API-3's business)
        assert local.get("kept") == 1 and "never" not in local and "doomed" not in local, local
        assert await phone.get("never") is None
        assert tablet.local() == tablet.app.items == {"kept": 1, "forgotten": 3}
        assert tablet.app.calls.since(calls) == [], tablet.app.calls.since(calls)
        after = _documents(world)
        assert after == before, f"deletes of keys not held changed the vault:\n{before}\n{after}"

    brh_sim.run(scenario)


# -- RES-1, RES-3 ------------------------------------------------------------------------------


@clause("RES-1", "CB-4", level="core")
def test_a_restore_after_a_reinstall_gives_back_own_old_writes_and_everyone_elses(
    brh_sim: Sim,
) -> None:
    """RES-1: a device reinstalled on an empty store (same device id) delivers at its first
    sync an insertion for every live entry, however old: its own earlier writes (CB-4: after a
    reinstall those are no echoes) and the other device's, written 40 days before; and no
    callback for the entries deleted on either device."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for i in range(4):
            await phone.put(f"p{i}", {"from": "phone", "n": i})
        await tablet.put("t0", "from the tablet")
        await phone.put("gone-p", 0)
        await tablet.put("gone-t", 0)
        await world.advance(5)
        await sync_all(world)
        await phone.remove("gone-p")
        await tablet.remove("gone-t")
        await world.advance(5)
        await sync_all(world)
        await world.advance(40 * DAY)
        await tablet.put("recent", "written today")
        await world.advance(5)
        await tablet.sync()
        await world.reinstall("phone")
        assert await phone.sync()
        expected: dict[str, Any] = {f"p{i}": {"from": "phone", "n": i} for i in range(4)}
        expected.update({"t0": "from the tablet", "recent": "written today"})
        assert sorted(phone.app.calls) == sorted(("insert", k, v) for k, v in expected.items())
        assert phone.app.items == phone.local() == expected

    brh_sim.run(scenario)


@clause("RES-3", "DATA-1", level="robust", weakness="W14")
def test_a_collection_the_vault_lost_is_filled_again_from_the_devices(brh_sim: Sim) -> None:
    """RES-3: the vault loses the context's collection (an operator reset). The devices hold
    the backup: their next passes create the collection again (DATA-1) and upload every local
    entry, with its data, along with a change made since; a device that never synced restores
    every entry, once; no device's app is told of a deletion. (W14: the original no longer
    tolerates a missing collection in its incremental path.)"""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("a", {"n": 1})
        await phone.put("b", "from the phone")
        await tablet.put("c", "from the tablet")
        await tablet.put("d", "deleted")
        await world.advance(5)
        await sync_all(world)
        await tablet.remove("d")
        await world.advance(MINUTE)
        await sync_all(world)
        await world.lose_collection("notes")
        calls = {device.name: device.app.calls.total for device in (phone, tablet)}
        await phone.put("after", "written after the reset")
        for _ in range(3):
            await world.advance(MINUTE)
            await sync_all(world)
        expected = {
            "a": {"n": 1},
            "b": "from the phone",
            "c": "from the tablet",
            "after": "written after the reset",
        }
        assert _live(world) in (None, expected), _held(world)
        for device in (phone, tablet):
            assert device.local() == device.app.items == expected, device.name
            told = device.app.calls.since(calls[device.name])
            assert all(kind != "delete" for kind, _, _ in told), (device.name, told)
        late = world.add_device("late")
        assert await late.sync()
        assert sorted(late.app.calls) == sorted(("insert", k, v) for k, v in expected.items())

    brh_sim.run(scenario)


# -- ORD-1, ORD-5, ORD-6 -----------------------------------------------------------------------


@clause("ORD-1", "ORD-2", level="robust")
def test_a_reinstalled_device_never_reissues_a_version_of_its_old_installation(
    brh_sim: Sim,
) -> None:
    """ORD-1: a version names one write for ever. The phone has seen the tablet's version from
    a clock an hour ahead, so its writes count up from it; it writes x, is reinstalled with
    its old device id, restores only the tablet's entry (its app refuses that one, which ends
    the pass before x) and writes x again: the new installation's clock stands exactly where
    the old one's stood. That write is a new version, not the old one: every device ends with
    the same value of x (ORD-2), in its app and its local copy."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet", offset=3600)
        await tablet.put("s", "from the tablet")
        await tablet.sync()
        await world.advance(5)
        await phone.sync()
        assert phone.app.items == {"s": "from the tablet"}
        await phone.put("x", "first")
        await phone.sync()
        await world.advance(5)
        await tablet.sync()
        assert tablet.app.items.get("x") == "first"
        await world.reinstall("phone")
        phone.app.refuse = lambda kind, entry: entry.key == "s"
        assert not await phone.sync(), "the refused restore reported that it completed"
        await phone.put("x", "second")
        phone.app.refuse = None
        await world.advance(MINUTE)
        await sync_all(world, rounds=3)
        assert phone.app.items.get("x") in ("first", "second"), phone.app.items
        assert phone.local() == phone.app.items == tablet.local() == tablet.app.items, (
            f"phone {phone.local()}, tablet {tablet.local()}"
        )
        assert _live(world) in (None, phone.local())

    brh_sim.run(scenario)


@clause("ORD-5", "SYNC-8", level="robust")
def test_writes_whose_answers_were_lost_are_retried_without_duplicates_or_lost_edits(
    brh_sim: Sim,
) -> None:
    """ORD-5: writes whose answers were lost are retried safely. The phone creates x and the
    vault's answer is lost; the retry's pulls are cut short by a refusal in an earlier context
    (SYNC-8: the uploads still go), so only the retried upload can settle it. Then the phone
    edits y, that answer is lost too, and it edits y again before the retry. In the end the
    vault holds exactly one document for each key, with the last data, and every device
    shows it; a new device restores each entry once."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("y", "first", context="notes")
        await world.advance(5)
        await sync_all(world)
        world.links["phone"].lose_answers = 1  # the answer of the phone's next write
        await phone.put("x", "created", context="notes")
        await world.advance(5)  # its pass is waiting for the answer that never comes
        await tablet.put("i", "for the inbox", context="inbox")
        await tablet.sync()
        phone.apps["inbox"].refuse = lambda kind, entry: True
        await world.advance(MINUTE)  # the phone retries: refused in the inbox, uploads notes
        phone.apps["inbox"].refuse = None
        await world.advance(MINUTE)
        await sync_all(world)
        world.links["phone"].lose_answers = 1
        await phone.put("y", "second", context="notes")
        await world.advance(5)  # applied; the answer is lost
        await phone.put("y", "third", context="notes")
        await world.advance(MINUTE)
        await sync_all(world, rounds=3)
        expected = {"x": "created", "y": "third"}
        held = _held(world, "notes")
        assert held in (None, {key: [value] for key, value in expected.items()}), (
            f"the vault's documents: {held}"
        )
        for device in (phone, tablet):
            assert device.local("notes") == device.apps["notes"].items == expected, device.name
        late = world.add_device("late")
        assert await late.sync()
        assert sorted(late.apps["notes"].calls) == sorted(
            ("insert", k, v) for k, v in expected.items()
        )

    brh_sim.run(scenario, contexts=("inbox", "notes"))


@clause("ORD-6", "ORD-2", level="robust", weakness="W7")
def test_edits_against_deletes_are_settled_by_version_never_both(brh_sim: Sim) -> None:
    """ORD-6 (W7): two devices, apart, edit and delete the same keys, each write of a pair a
    minute after the other; whichever device uploads first, the later write wins: x deleted
    on a then edited on b is live with b's data; y edited on a then deleted on b is deleted;
    z deleted on b then edited on a (a uploads last) is live with a's data; w edited on b then
    deleted on a (a uploads last) is deleted. Every device's app, local copy and
    ``get_database_entry`` agree: no entry is left both deleted and live."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        for key in ("x", "y", "z", "w"):
            await a.put(key, "original")
        await world.advance(5)
        await sync_all(world)
        world.disconnect("a")
        world.disconnect("b")
        await a.remove("x")
        await a.put("y", "edited on a")
        await b.remove("z")
        await b.put("w", "edited on b")
        await world.advance(MINUTE)
        await b.put("x", "edited on b")
        await b.remove("y")
        await a.put("z", "edited on a")
        await a.remove("w")
        await world.advance(5)
        world.reconnect("b")
        await b.sync()
        await world.advance(5)
        world.reconnect("a")
        await a.sync()
        await world.advance(5)
        await sync_all(world, rounds=2)
        expected = {"x": "edited on b", "z": "edited on a"}
        for device in (a, b):
            assert device.local() == device.app.items == expected, device.name
            for key in ("x", "y", "z", "w"):
                entry = await device.get(key)
                assert (None if entry is None else entry.data) == expected.get(key), (
                    device.name,
                    key,
                    entry,
                )
        assert _live(world) in (None, expected)

    brh_sim.run(scenario)


@clause("ORD-1", "ORD-2", level="robust")
def test_two_helpers_on_one_store_stamp_its_writes_in_the_order_they_are_made(
    brh_sim: Sim,
) -> None:
    """ORD-1: two helpers open the phone's one store (an app and its widget). The tablet, its
    clock an hour ahead, wrote four keys, and both helpers have seen them, so the phone's
    versions count up from the tablet's. Then the app writes each key through one helper,
    which uploads it, and writes it again through the other, alternating which goes first.
    Writes made through one store file are stamped in increasing order whichever helper makes
    them, so the later write of each key wins everywhere (ORD-2): in both helpers' local
    copies and on the tablet."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone", instances=2, share_contexts=True)
        tablet = world.add_device("tablet", offset=3600)
        for i in range(4):
            await tablet.put(f"k{i}", "from the tablet")
        await world.advance(5)
        await sync_all(world)
        expected = {}
        for i in range(4):
            first, last = (0, 1) if i % 2 == 0 else (1, 0)
            await phone.put(f"k{i}", f"through helper {first}", instance=first)
            await phone.impls[first].sync()  # only that helper: the other sees nothing new
            await phone.put(f"k{i}", f"through helper {last}", instance=last)
            expected[f"k{i}"] = f"through helper {last}"
        await world.advance(5)
        await sync_all(world, rounds=3)
        for number, helper in enumerate(phone.impls):
            assert helper.local_entries("notes") == expected, number
        assert tablet.local() == tablet.app.items == expected

    brh_sim.run(scenario)


@clause("ORD-1", "CB-5", level="robust")
def test_two_helpers_on_one_store_leave_the_app_with_the_newer_of_two_deliveries(
    brh_sim: Sim,
) -> None:
    """ORD-1, CB-5 (regression two-instances-older-delivery-returns-last): the phone's app and
    its widget share one store and one slow app. The second helper gives the app the tablet's
    older version of a key, and that callback takes 8 s; meanwhile the tablet writes a newer
    one, which the first helper gives the app in 1 s and records. The older callback returns
    last, so the app shows the older version: the helpers must still leave the app, and both
    helpers' local copies, with the newer one."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone", instances=2, share_contexts=True)
        tablet = world.add_device("tablet")
        await tablet.put("k", "older")
        await tablet.sync()
        world.behave("phone", mode="slow", delay=8.0)
        slow = asyncio.ensure_future(phone.impls[1].sync())  # the older one, for 8 s
        await world.advance(1)
        world.behave("phone", mode="slow", delay=1.0)
        await tablet.put("k", "newer")
        await tablet.sync()
        await phone.impls[0].sync()  # the newer one, in 1 s, recorded before the older returns
        await slow
        world.behave("phone", mode="apply")
        await world.advance(5)
        await sync_all(world, rounds=2)
        assert phone.app.items == {"k": "newer"}
        for number, helper in enumerate(phone.impls):
            assert helper.local_entries("notes") == {"k": "newer"}, number

    brh_sim.run(scenario)
