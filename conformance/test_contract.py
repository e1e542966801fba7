"""The parts of the contract the older suites did not drive: local-only deletes, the app acting
on what a callback just gave it while the pass goes on, overlapping ``sync()`` calls, pulls
spanning pages, several contexts with pending work, bad input, and days of tombstones.

Every assertion reads only what the harness observes of any implementation: the vault's
documents in the original helper's fields (DATA-2), the callbacks and their answers, what the
helper's calls return, and each device's local copy through the public API. None reads an event
or a structure only the reference has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from brh import InvalidArgumentError
from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.world import World


def _vault_live(world: World, context: str = "notes") -> dict[str, object] | None:
    """The vault's live entries, read from the fake vault's documents (DATA-2 fields); None on
    a live vault, whose documents the harness does not read."""
    return None if world.server.live else world.vault_live(context)


# -- API-3: delete(..., locally_only=True) ------------------------------------------------------


@clause("API-3", "SYNC-10", "CB-1", level="core")
def test_a_local_only_delete_forgets_the_entry_on_this_device_only(brh_sim: Sim) -> None:
    """API-3: ``delete_database_entry(..., locally_only=True)`` forgets the local copy and
    tells nobody: the vault and the other devices keep the entry, a new device restores it, and
    no incremental pass brings it back (its version was already processed). SYNC-10, CB-1: a
    full pass reads the vault again and restores it through the insertion callback."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", {"n": 1})
        await phone.put("y", 2)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        both = {"x": {"n": 1}, "y": 2}
        assert tablet.local() == both

        await world.forget("phone", "x")
        assert phone.local() == {"y": 2}
        assert await phone.get("x") is None
        assert await phone.get("y") is not None
        calls = phone.app.calls.total
        for _ in range(3):
            await world.advance(MINUTE)
            await sync_all(world)
        assert phone.local() == {"y": 2}, "an incremental pass brought a local-only delete back"
        assert phone.app.calls.since(calls) == []
        assert _vault_live(world) in (None, both), "a local-only delete reached the vault"
        assert tablet.local() == tablet.app.items == both
        late = world.add_device("late")
        await late.sync()
        assert late.app.items == late.local() == both

        assert await phone.sync(full=True)
        assert phone.local() == both
        assert phone.app.calls.since(calls) == [("insert", "x", {"n": 1})]
        assert phone.app.items == both

    brh_sim.run(scenario)


@clause("API-3", "CB-1", level="core")
def test_a_key_deleted_locally_only_comes_back_when_another_device_edits_it(brh_sim: Sim) -> None:
    """API-3, CB-1: after a local-only delete the device does not hold the key, so another
    device's later edit of it arrives through the insertion callback; and the device's own new
    write of the key after forgetting it is an ordinary write that reaches everyone."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("x", "first")
        await tablet.put("y", "first")
        await world.advance(5)
        await sync_all(world)
        await world.forget("phone", "x")
        await world.forget("phone", "y")
        await world.advance(MINUTE)
        calls = phone.app.calls.total
        await tablet.put("x", "edited on the tablet")
        await world.advance(5)
        await sync_all(world)
        assert phone.app.calls.since(calls) == [("insert", "x", "edited on the tablet")]
        await world.advance(MINUTE)
        await phone.put("y", "written again on the phone")
        await world.advance(5)
        await sync_all(world)
        expected = {"x": "edited on the tablet", "y": "written again on the phone"}
        assert phone.local() == tablet.local() == expected
        assert phone.app.items == tablet.app.items == expected

    brh_sim.run(scenario)


# -- ORD-7, CB-7: the app acts on what it was just given while the pass goes on ------------------


@clause("ORD-7", "CB-7", "API-2", level="robust")
def test_the_app_deletes_a_key_it_was_just_given_while_the_pass_goes_on(brh_sim: Sim) -> None:
    """ORD-7, CB-7 (regression delete-what-was-just-given): b's app is slow (10 s a
    callback). Its pass pulls x and y in one page; x's insertion is accepted at t~10 and, while
    the pass waits on y's callback, the app reads x (API-2: the delivered version) and deletes
    it from its own task. The delete acts on the delivered version and wins everywhere."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", "given")
        await a.put("y", "slow")
        await world.advance(5)
        await a.sync()
        world.behave("b", mode="slow", delay=10.0)
        running = asyncio.ensure_future(b.sync())
        await world.advance(15)
        assert not running.done(), "b's pass should still be in y's callback"
        assert b.app.items == {"x": "given"}, b.app.calls
        entry = await b.get("x")
        assert entry is not None and entry.data == "given", (
            f"get_database_entry returned {entry!r} for a key whose callback returned True"
        )
        assert b.local() == {"x": "given"}
        await b.remove("x")
        await running
        assert "x" not in b.local(), "the delivered version overwrote the app's later delete"
        world.behave("b", mode="apply")
        await world.advance(MINUTE)
        await sync_all(world, rounds=3)
        assert a.local() == b.local() == {"y": "slow"}
        assert a.app.items == b.app.items == {"y": "slow"}

    brh_sim.run(scenario)


@clause("ORD-7", "CB-7", "API-2", level="robust")
def test_the_app_edits_a_key_it_was_just_given_while_the_pass_goes_on(brh_sim: Sim) -> None:
    """ORD-7, CB-7: as above, but the app edits x (from its own task, after x's callback
    returned, while the pass is busy with y's): the local copy shows the delivered version
    until then, and the edit wins everywhere."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", "given")
        await a.put("y", "slow")
        await world.advance(5)
        await a.sync()
        world.behave("b", mode="slow", delay=10.0)
        running = asyncio.ensure_future(b.sync())
        await world.advance(15)
        assert not running.done(), "b's pass should still be in y's callback"
        entry = await b.get("x")
        assert entry is not None and entry.data == "given", (
            f"get_database_entry returned {entry!r} for a key whose callback returned True"
        )
        await b.put("x", "edited on b")
        await running
        assert b.local().get("x") == "edited on b"
        world.behave("b", mode="apply")
        await world.advance(MINUTE)
        await sync_all(world, rounds=3)
        expected = {"x": "edited on b", "y": "slow"}
        assert a.local() == b.local() == expected
        assert a.app.items == b.app.items == expected

    brh_sim.run(scenario)


# -- SYNC-2: overlapping sync() calls ----------------------------------------------------------


@clause("SYNC-2", "CB-4", level="robust")
def test_a_sync_called_while_a_pass_runs_is_answered_by_a_later_pass(brh_sim: Sim) -> None:
    """SYNC-2: the phone's app is slow (10 s a callback) and its pass is inside the first
    callback when the tablet uploads a new entry; two sync() calls made then both wait for a
    pass that starts after them, so when they return the new entry was delivered; they share
    that pass (both complete), and no two passes ran at once (CB-4: no change was delivered
    twice)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await tablet.put("early", 1)
        await world.advance(5)
        await tablet.sync()
        world.behave("phone", mode="slow", delay=10.0)
        first = asyncio.ensure_future(phone.sync())
        await world.advance(3)
        assert not first.done()
        await tablet.put("late", 2)
        await tablet.sync()
        await world.advance(1)
        assert not first.done(), "the phone's first pass should still be in its callback"
        second = asyncio.ensure_future(phone.sync())
        third = asyncio.ensure_future(phone.sync())
        assert await first
        await asyncio.wait({second, third}, return_when=asyncio.FIRST_COMPLETED)
        assert phone.app.items == {"early": 1, "late": 2}, (
            "a sync() called after the tablet's upload returned before that upload reached the "
            f"phone's app: {phone.app.calls}"
        )
        assert await second and await third
        assert sorted(phone.app.calls) == [("insert", "early", 1), ("insert", "late", 2)]
        assert phone.local() == {"early": 1, "late": 2}

    brh_sim.run(scenario)


# -- SYNC-9: pulls spanning pages, many entries sharing a stamp at each boundary ---------------

PAGE = 4
"""The page size asked of the helper (``page_size``) in the paging tests; an implementation
that ignores the option pulls in pages of its own size, and these tests then page less."""


@clause("SYNC-9", "SYNC-4", "RES-1", "CB-4", level="robust")
def test_pulls_spanning_pages_with_many_entries_sharing_one_stamp(brh_sim: Sim) -> None:
    """SYNC-9, RES-1: the tablet uploads 10 entries in one vault second and 13 in the next (a
    link without latency), so page boundaries fall inside runs of equal stamps. A new device's
    first pass delivers every one of them, once. SYNC-4, CB-4: 9 more land in the same second
    as the last ones it read; its next pass delivers exactly those, paging again, and no
    version twice."""

    async def scenario(world: World) -> None:
        tablet = world.add_device("tablet")

        async def upload(entries: dict[str, int]) -> None:
            for key, value in entries.items():
                await tablet.put(key, value)
            await tablet.sync()
            await world.advance(0.1)  # a pass the writes started by themselves ends too
            assert tablet.local().items() >= entries.items()

        first = {f"a{i:02}": i for i in range(10)}
        second = {f"b{i:02}": i for i in range(13)}
        await upload(first)
        await world.advance(1)
        await upload(second)
        phone = world.add_device("phone")
        assert await phone.sync()
        restored = {**first, **second}
        assert phone.app.items == restored, f"{len(restored) - len(phone.app.items)} missing"
        assert sorted(phone.app.calls) == sorted(("insert", k, v) for k, v in restored.items())
        third = {f"c{i:02}": i for i in range(9)}
        await upload(third)
        calls = phone.app.calls.total
        assert await phone.sync()
        assert sorted(phone.app.calls.since(calls)) == sorted(
            ("insert", k, v) for k, v in third.items()
        )
        assert phone.local() == phone.app.items == {**restored, **third}
        await world.advance(MINUTE)
        assert await phone.sync()
        assert phone.app.calls.total == calls + len(third)

    brh_sim.run(scenario, latency=(0.0, 0.0), helper_options={"page_size": PAGE})


# -- CB-6, SYNC-8: several contexts with pending work, a refusal in one -------------------------


@clause("CB-6", "SYNC-8", "SYNC-5", "RETRY-1", level="robust", weakness="W6")
def test_a_refusal_in_one_context_halts_every_later_delivery_but_no_upload(brh_sim: Sim) -> None:
    """Three contexts, each with remote changes for the phone and local changes the phone made
    offline. The phone's app refuses the first change of the second context. CB-6: the pass
    makes no further callback, in that context or the third; it reports that it did not
    complete. SYNC-8: it still uploads the phone's changes of all three contexts (the tablet
    receives them; W6: the original skips them). SYNC-5, RETRY-1: the changes left undelivered
    arrive later, without an outside trigger."""
    contexts = ("notes", "contacts", "photos")

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for context in contexts:
            await tablet.put(f"{context}-1", "from the tablet", context)
            await tablet.put(f"{context}-2", "from the tablet", context)
        await world.advance(5)
        await tablet.sync()
        world.disconnect("phone")
        for context in contexts:
            await phone.put(f"{context}-mine", "from the phone", context)
        await world.advance(MINUTE)
        refusing = {"contacts"}
        for context in contexts:
            phone.apps[context].refuse = lambda kind, entry, c=context: c in refusing
        world.reconnect("phone")
        calls = {context: phone.apps[context].calls.total for context in contexts}
        assert not await phone.sync(), "a pass with a refused change reported it completed"
        made = {c: phone.apps[c].calls.since(calls[c]) for c in contexts}
        assert len(made["notes"]) == 2 and len(made["contacts"]) == 1 and made["photos"] == [], (
            f"callbacks after the refusal: {made}"
        )
        await world.advance(1)
        for context in contexts:
            refusing.discard(context)
        await tablet.sync()
        for context in contexts:
            assert tablet.apps[context].items.get(f"{context}-mine") == "from the phone", (
                f"the phone's {context} change was not uploaded after the refusal"
            )
        await world.advance(10 * MINUTE)  # the helper retries by itself
        for context in contexts:
            expected = {
                f"{context}-1": "from the tablet",
                f"{context}-2": "from the tablet",
                f"{context}-mine": "from the phone",
            }
            assert phone.apps[context].items == phone.local(context) == expected

    brh_sim.run(scenario, contexts=contexts)


# -- ERR-1, ERR-2: bad input gets a clear error and changes nothing -----------------------------


def _nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


async def _refused(call: Awaitable[Any], argument: str) -> str:
    """Await ``call``; it must raise an error naming ``argument`` (the ``argument`` attribute
    of an InvalidArgumentError, else the message). Returns the message."""
    try:
        await call
    except Exception as exc:  # any implementation's own error type will do
        named = getattr(exc, "argument", None)
        if isinstance(exc, InvalidArgumentError):
            assert named == argument, f"the error names {named!r}, not {argument!r}: {exc}"
        else:
            assert argument in str(exc), f"the error does not name {argument!r}: {exc!r}"
        return str(exc)
    raise AssertionError(f"accepted, where the argument {argument!r} is bad (ERR-1)")


BAD_KEYS = ("", "a\x00b", "k" * 1025)
BAD_DATA: dict[str, Any] = {
    "a field name starting with $": {"$set": {"x": 1}},
    "a nested field name starting with $": {"ok": [{"$inc": 1}]},
    "a field name with NUL": {"a\x00b": 1},
    "an integer beyond 64 bits": 2**63,
    "100 levels of nesting": _nested(100),
}


@clause("ERR-1", "ERR-2", level="robust")
def test_bad_input_gets_an_error_naming_the_argument_and_changes_nothing(brh_sim: Sim) -> None:
    """ERR-1: upserts with bad keys (empty, with NUL, over 1024 characters) or data a vault
    cannot store ($-names, NUL in a name, an integer beyond 64 bits, 100 levels of nesting)
    and deletes with bad keys raise an error naming ``key`` or ``data``; ERR-2: an unregistered
    context is an error too. None of them changes anything: the local copy, the vault and the
    other device keep only the good entry, and no pass is held up by them."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        helper = phone.impl_for("notes")
        await phone.put("good", {"n": 1})
        await world.advance(5)
        await sync_all(world)
        for key in BAD_KEYS:
            await _refused(helper.upsert_database_entry("notes", key, 1), "key")
            await _refused(helper.delete_database_entry("notes", key), "key")
        for data in BAD_DATA.values():
            await _refused(helper.upsert_database_entry("notes", "good", data), "data")
            await _refused(helper.upsert_database_entry("notes", "new", data), "data")
        try:
            await helper.upsert_database_entry("nope", "k", 1)
        except Exception as exc:  # ERR-2: any error that says which context
            assert "nope" in str(exc), f"the error does not name the context: {exc!r}"
        else:
            raise AssertionError("an upsert into an unregistered context was accepted (ERR-2)")
        assert phone.local() == {"good": {"n": 1}}
        await world.advance(MINUTE)
        assert await phone.sync(), "a pass after refused input did not complete"
        await world.advance(5)
        await sync_all(world)
        assert phone.local() == tablet.local() == {"good": {"n": 1}}
        assert tablet.app.calls == [("insert", "good", {"n": 1})]
        assert _vault_live(world) in (None, {"good": {"n": 1}})

    brh_sim.run(scenario)


# -- DEL-1..3: days of tombstones --------------------------------------------------------------

DAY = 86400.0


def _vault_docs(world: World, key: str, context: str = "notes") -> list[dict[str, Any]] | None:
    """The fake vault's documents of ``key`` (duplicates included); None on a live vault."""
    if world.server.live:
        return None
    name = "backup_" + context
    if name not in world.server.vault.collection_names():
        return []
    return [doc for doc in world.server.vault.documents(name) if doc.get("key") == key]


@clause("DEL-1", "DEL-2", "DEL-3", "SYNC-10", level="robust", weakness="W5")
def test_forty_days_of_tombstones_purge_them_and_still_reach_a_device_away_all_along(
    brh_sim: Sim,
) -> None:
    """Three devices, default options, forty simulated days. DEL-1: a delete leaves a
    tombstone on the vault (``deletionDate`` set), and the other devices drop the entry.
    DEL-2 (W5): tombstones older than the retention (30 days) are gone from the vault by day
    40, while two devices write and sync every day. DEL-3, SYNC-10: the laptop, offline since day 1,
    still holds both entries; back online, it does a full pass and gets them as deletions
    (on_delete), without uploading them again; a new device restores only the live entry."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        laptop = world.add_device("laptop")
        for key in ("a", "b", "c"):
            await phone.put(key, f"entry {key}")
        await world.advance(5)
        await sync_all(world)
        assert laptop.app.items == {"a": "entry a", "b": "entry b", "c": "entry c"}
        world.disconnect("laptop")
        await world.advance(DAY)
        await phone.remove("a")
        await world.advance(5)
        await phone.sync()
        docs = _vault_docs(world, "a")
        assert docs is None or (docs and all(d.get("deletionDate") is not None for d in docs)), (
            f"DEL-1: a delete must leave a tombstone on the vault, found {docs}"
        )
        await tablet.sync()
        assert "a" not in tablet.app.items
        await world.advance(DAY)
        await tablet.remove("b")
        for day in range(40):  # a daily write moves the vault's stamps (DEL-2 measures in them)
            await phone.put("diary", day)
            await phone.sync()
            await tablet.sync()
            await world.advance(DAY)
        await phone.sync()
        await tablet.sync()
        for key in ("a", "b"):
            assert _vault_docs(world, key) in (None, []), (
                f"DEL-2: the tombstone of {key!r} is still on the vault after 40 days"
            )
        assert laptop.local() == {"a": "entry a", "b": "entry b", "c": "entry c"}
        world.reconnect("laptop")
        calls = laptop.app.calls.total
        await laptop.sync()
        await world.advance(5)
        await laptop.sync()
        delivered = laptop.app.calls.since(calls)
        assert sorted((kind, key) for kind, key, _ in delivered) == [
            ("delete", "a"),
            ("delete", "b"),
            ("insert", "diary"),
        ], delivered
        final = {"c": "entry c", "diary": 39}
        assert laptop.local() == laptop.app.items == final
        await world.advance(MINUTE)
        await sync_all(world)
        for device in (phone, tablet, laptop):
            assert device.local() == device.app.items == final, device.name
        assert _vault_live(world) in (None, final)
        late = world.add_device("late")
        await late.sync()
        assert sorted(late.app.calls) == [("insert", "c", "entry c"), ("insert", "diary", 39)]

    brh_sim.run(scenario)
