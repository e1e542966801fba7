"""Scenarios of the original helper's weaknesses, W1 to W14: each shows one, and that brh
does not have it (the weaknesses are numbered as in ``original-helper.md``)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from brh import Entry, ReentrantCallError
from simulator.scenarios.moves import (
    HOUR,
    MINUTE,
    add_context_later,
    incremental_checkpoint,
    join_with_contexts,
    sync_all,
    wait_for,
)
from simulator.scenarios.registry import scenario
from simulator.world import World


@scenario(
    "w1-late-upload",
    "an entry edited offline long before its upload still reaches every device",
    weakness="W1",
    clauses=("SYNC-4", "SYNC-6", "OFF-3"),
    options={"full_sync_interval": None},
)
async def w1_late_upload(world: World) -> None:
    """The tablet edits at t≈100 s while offline and uploads at t≈500 s; the phone and the
    laptop pulled at t≈300 s. With a cursor of edit times (W1) they would never see the edit."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet", offset=-HOUR)
    laptop = world.add_device("laptop")
    await phone.put("shared", "v1 from the phone")
    await world.advance(5)
    await sync_all(world)
    world.note("the tablet (clock an hour slow) goes offline and edits at t≈100 s")
    world.disconnect("tablet")
    await world.advance(95)
    await tablet.put("shared", "edited on the tablet, offline")
    await tablet.put("late", "created on the tablet at t≈100 s, uploaded at t≈500 s")
    world.note("the phone and the laptop keep syncing: their cursors settle past t≈100 s")
    for i in range(6):
        await phone.put(f"p{i}", i)
        await world.advance(MINUTE)
        await laptop.sync()
    world.note("the tablet comes back and uploads edits stamped long before the cursors")
    world.reconnect("tablet")
    await tablet.sync()
    await world.advance(MINUTE)
    world.note(
        "a second late upload: the laptop writes into a partition; it lands after newer edits"
    )
    world.partition("laptop")
    await laptop.put("held", "sent into a partition")
    await world.advance(40)
    await phone.put("p-after", "after the partition")
    world.heal("laptop")
    await world.advance(5 * MINUTE)
    await phone.sync()
    await tablet.sync()
    await incremental_checkpoint(world)


@scenario(
    "w2-clock-skew",
    "devices whose clocks are hours apart agree on the last writer; a slow clock's newer edit wins",
    weakness="W2",
    clauses=("ORD-1", "ORD-2", "ORD-3"),
)
async def w2_clock_skew(world: World) -> None:
    """The phone runs two hours fast, the laptop three hours slow and the tablet drifts fast.
    Last-writer-wins by wall clock (W2) would keep the phone's older edits."""
    phone = world.add_device("phone", offset=2 * HOUR)
    laptop = world.add_device("laptop", offset=-3 * HOUR)
    tablet = world.add_device("tablet", drift_ppm=5000)
    await phone.put("x", "phone, clock +2 h")
    await phone.put("y", "phone, clock +2 h")
    await world.advance(10)
    await sync_all(world)
    world.note("the laptop (clock -3 h) saw the phone's versions and now edits x: it must win")
    await laptop.put("x", "laptop, after seeing the phone's edit")
    await world.advance(10)
    await sync_all(world)
    world.note("the tablet edits y; then the laptop edits y again, its clock still 5 h behind")
    await tablet.put("y", "tablet")
    await world.advance(30)
    await laptop.sync()
    await laptop.put("y", "laptop, last")
    await world.advance(30)
    world.note("offline edits of one key on all three: version order decides, the same for all")
    for name in ("phone", "laptop", "tablet"):
        world.disconnect(name)
    await phone.put("z", "phone offline")
    await world.advance(1)
    await laptop.put("z", "laptop offline")
    await world.advance(1)
    await tablet.put("z", "tablet offline")
    await world.advance(MINUTE)
    for name in ("laptop", "tablet", "phone"):
        world.reconnect(name)
    await world.advance(5 * MINUTE)


@scenario(
    "w3-refused-context",
    "a context whose app refuses changes for a while never loses them, and never holds up or "
    "moves another context's cursor",
    weakness="W3",
    clauses=("SYNC-5", "SYNC-6", "SYNC-8", "CB-7"),
    contexts=("one", "two"),
    options={"full_sync_interval": None},
)
async def w3_refused_context(world: World) -> None:
    """Context ``one`` syncs fine while the tablet's app refuses ``two`` for ten minutes: with
    one shared watermark (W3), ``two``'s changes would be skipped for good."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    await phone.put("a", "one/a", context="one")
    await phone.put("a", "two/a", context="two")
    await world.advance(5)
    await sync_all(world)
    world.note("the tablet's app refuses every change of context 'two'")
    world.behave("tablet", context="two", mode="refuse", refusals=1_000_000)
    for i in range(10):
        await phone.put(f"k{i}", f"one/{i}", context="one")
        await phone.put(f"k{i}", f"two/{i}", context="two")
        await tablet.put(f"t{i}", f"tablet one/{i}", context="one")
        await world.advance(MINUTE)
    world.note("the tablet's app accepts 'two' again; only its own retries deliver")
    world.behave("tablet", context="two", mode="apply")
    await world.advance(5 * MINUTE)
    await incremental_checkpoint(world)


@scenario(
    "w3-two-instances",
    "two helper instances on one device share its local store; one's refusals never cost the "
    "other (or itself) a change",
    weakness="W3",
    clauses=("SYNC-5", "SYNC-6", "CB-7", "RETRY-1"),
    contexts=("one", "two"),
    options={"full_sync_interval": None},
)
async def w3_two_instances(world: World) -> None:
    """The tablet's app runs two helpers on one store: ``one`` in the first, ``two`` in the
    second. The second's app refuses for ten minutes while the first syncs on; with one watermark
    shared by both (W3), the refused changes would be skipped for good."""
    phone = world.add_device("phone")
    world.add_device("tablet", instances=2)
    await phone.put("a", "one/a", context="one")
    await phone.put("a", "two/a", context="two")
    await world.advance(5)
    await sync_all(world)
    world.note("the tablet's second helper (context 'two') has its changes refused")
    world.behave("tablet", context="two", mode="refuse", refusals=1_000_000)
    for i in range(10):
        await phone.put(f"k{i}", f"one/{i}", context="one")
        await phone.put(f"k{i}", f"two/{i}", context="two")
        await world.advance(MINUTE)
    world.behave("tablet", context="two", mode="apply")
    await world.advance(5 * MINUTE)
    await incremental_checkpoint(world)


@scenario(
    "w3-context-added-later",
    "a context registered after an hour of syncing another still pulls every old entry",
    weakness="W3",
    clauses=("SYNC-5", "RES-1"),
    contexts=("one", "two"),
    options={"full_sync_interval": None},
)
async def w3_context_added_later(world: World) -> None:
    """The phone writes context ``two`` early; the tablet syncs only ``one`` for an hour, then an
    app update registers ``two``. An inherited watermark (W3) would skip the old entries."""
    phone = world.add_device("phone")
    tablet = join_with_contexts(world, "tablet", ("one",))
    for i in range(5):
        await phone.put(f"old{i}", f"two/old{i}", context="two")
    await phone.put("a", "one/a", context="one")
    await world.advance(5)
    await sync_all(world)
    world.note("an hour of syncing context 'one' only on the tablet")
    for i in range(6):
        await tablet.put(f"t{i}", i, context="one")
        await phone.put(f"p{i}", i, context="one")
        await world.advance(10 * MINUTE)
        await tablet.sync()
    add_context_later(world, "tablet", "two")
    await tablet.sync()
    await tablet.put("new", "tablet's first entry in two", context="two")
    await world.advance(MINUTE)
    await incremental_checkpoint(world)


@scenario(
    "w4-upsert-race",
    "three devices create one key at the same moment while the vault's upsert races",
    weakness="W4",
    clauses=("ORD-4", "SYNC-7", "CB-4"),
)
async def w4_upsert_race(world: World) -> None:
    """Without a unique index two racing upserts both insert (W4): readers must pick the
    highest version and delete the dominated duplicate."""
    devices = [world.add_device(name) for name in ("phone", "tablet", "laptop")]
    world.note("the vault's upsert checks, waits half a second, then inserts")
    world.upsert_race(0.5)
    for device in devices:
        await device.put("x", f"created on the {device.name}")
        await device.put("y", f"created on the {device.name}")
    await world.advance(10)
    await sync_all(world)
    world.note("a second race, on a key one device deletes right after creating it")
    for device in devices:
        await device.put("z", f"created on the {device.name}")
    await devices[0].remove("z")
    await world.advance(10)
    world.stop_upsert_race()
    await world.advance(MINUTE)


@scenario(
    "w4-offline-creators",
    "devices that each created the same keys offline converge on one document per key",
    weakness=("W4", "W14"),
    clauses=("ORD-2", "ORD-4", "SYNC-7"),
)
async def w4_offline_creators(world: World) -> None:
    """Three offline devices (clocks apart) create the same keys and reconnect at once."""
    names = ("phone", "tablet", "laptop")
    offsets = (0.0, -10 * MINUTE, 7.0)
    devices = [world.add_device(n, offset=o) for n, o in zip(names, offsets, strict=True)]
    for name in names:
        world.disconnect(name)
    for step, device in enumerate(devices):
        await device.put("profile", {"by": device.name, "step": step})
        await device.put(f"own-{device.name}", device.name)
        await device.put("settings", {"theme": device.name})
        await world.advance(2)
    await world.advance(MINUTE)
    world.note("all three reconnect at the same instant")
    world.upsert_race(0.2)
    for name in names:
        world.reconnect(name)
    await world.advance(2 * MINUTE)
    world.stop_upsert_race()
    await sync_all(world)


@scenario(
    "w5-tombstone-retention",
    "old tombstones are purged, and a device away for longer than the retention still "
    "deletes, without resurrecting anything",
    weakness="W5",
    clauses=("DEL-2", "DEL-3", "SYNC-10", "ORD-6"),
    options={"tombstone_retention": HOUR, "purge_interval": 10 * MINUTE},
)
async def w5_tombstone_retention(world: World) -> None:
    """The laptop is away for three hours (retention: one hour) while the others delete; the
    tombstones are purged meanwhile. The laptop must delete, not re-upload (DEL-3)."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    laptop = world.add_device("laptop")
    for key in "abcdef":
        await phone.put(key, f"{key} v1")
    await world.advance(5)
    await sync_all(world)
    world.note("the laptop goes away for three hours")
    world.disconnect("laptop")
    await world.advance(MINUTE)
    await phone.remove("a")
    await phone.remove("b")
    await tablet.sync()
    await tablet.remove("c")
    await world.advance(MINUTE)
    world.note("the laptop, offline, edits 'a' after the phone deleted it, and deletes 'e'")
    await laptop.put("a", "a edited on the laptop after the phone's delete")
    await laptop.remove("e")
    world.note("three hours of edits elsewhere: the vault stamps move, tombstones get purged")
    for i in range(18):
        await phone.put("tick", i)
        await world.advance(10 * MINUTE)
        await tablet.sync()
    world.note("the laptop comes back")
    world.reconnect("laptop")
    await laptop.sync()
    await world.advance(MINUTE)
    await sync_all(world)


@scenario(
    "w6-refusal-and-retry",
    "refusing and flaky apps get their changes by retries alone, and their local changes are "
    "uploaded meanwhile",
    weakness="W6",
    clauses=("RETRY-1", "RETRY-2", "RETRY-3", "SYNC-8", "CB-6", "CB-7"),
    contexts=("notes", "contacts"),
)
async def w6_refusal_and_retry(world: World) -> None:
    """The tablet's app refuses each change four times, the laptop's refuses half at random.
    Nobody calls sync() on them: the original helper (W6) would never try again."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    laptop = world.add_device("laptop")
    world.behave("tablet", mode="refuse", refusals=4)
    world.behave("laptop", mode="flaky", probability=0.5)
    for i in range(5):
        await phone.put(f"n{i}", f"note {i}", context="notes")
        await phone.put(f"c{i}", f"contact {i}", context="contacts")
    await world.advance(2)
    world.note("the tablet and the laptop write while their apps refuse: uploads must go on")
    await tablet.put("t-note", "written while refusing", context="notes")
    await tablet.put("t-contact", "written while refusing", context="contacts")
    await laptop.put("l-note", "written while refusing", context="notes")
    await world.advance(10 * MINUTE)
    world.note("the phone edits again; the others get it by their own retries")
    await phone.put("n0", "note 0, edited")
    await phone.remove("c1", context="contacts")
    await world.advance(10 * MINUTE)


@scenario(
    "w7-edit-versus-delete",
    "a remote edit against a local delete (and the reverse) is settled by version order, "
    "never left both deleted and live",
    weakness="W7",
    clauses=("ORD-6", "CB-1", "CB-3"),
)
async def w7_edit_versus_delete(world: World) -> None:
    """The tablet deletes x offline, then the phone edits x; the phone edits y, then the tablet
    deletes y offline. The original (W7) would leave x deleted and current on the tablet."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet", offset=-5 * MINUTE)
    for key in ("x", "y", "w"):
        await phone.put(key, f"{key} v1")
    await world.advance(5)
    await sync_all(world)
    world.disconnect("tablet")
    world.note("the tablet deletes x offline; the phone edits x later: the edit is newer")
    await tablet.remove("x")
    await world.advance(MINUTE)
    await phone.put("x", "x edited on the phone after the tablet's delete")
    world.note("the phone edits y; the tablet deletes y offline later: the delete is newer")
    await phone.put("y", "y edited on the phone")
    await world.advance(MINUTE)
    await tablet.remove("y")
    world.note("both edit and delete w within the same second")
    await tablet.put("w", "w edited on the tablet")
    await phone.remove("w")
    await world.advance(MINUTE)
    world.reconnect("tablet")
    await world.advance(2 * MINUTE)
    await sync_all(world)


@scenario(
    "w8-equal-timestamps",
    "writes made in the same millisecond on different devices (and on one device) never tie",
    weakness="W8",
    clauses=("ORD-1", "ORD-2"),
)
async def w8_equal_timestamps(world: World) -> None:
    """Identical clocks, and writes at the same virtual instant: strict comparisons on
    ``modificationDate`` (W8) would never converge."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    laptop = world.add_device("laptop")
    world.note("three devices write one key in the same millisecond")
    await phone.put("x", "phone")
    await tablet.put("x", "tablet")
    await laptop.put("x", "laptop")
    world.note("one device writes one key three times in the same millisecond")
    await phone.put("y", 1)
    await phone.put("y", 2)
    await phone.put("y", 3)
    await world.advance(5)
    await sync_all(world)
    world.note("a delete and an edit of one key in the same millisecond")
    await phone.remove("x")
    await tablet.put("x", "tablet again")
    await world.advance(5)
    await sync_all(world)
    world.note("two offline devices write one key at the same instant")
    world.disconnect("phone")
    world.disconnect("laptop")
    await phone.put("z", "phone offline")
    await laptop.put("z", "laptop offline")
    await world.advance(MINUTE)
    world.reconnect("laptop")
    world.reconnect("phone")
    await world.advance(2 * MINUTE)


@scenario(
    "w9-many-entries-idle",
    "four hundred entries, then an hour of idle syncs: each costs one request, whatever the size",
    weakness="W9",
    clauses=("COST-1", "COST-2", "SYNC-9"),
    options={"page_size": 100},
)
async def w9_many_entries_idle(world: World) -> None:
    """The original helper (W9) made one vault round trip per stored key on every sync."""
    phone = world.add_device("phone")
    world.add_device("tablet")
    for i in range(400):
        await phone.put(f"entry-{i:04}", {"i": i, "text": f"entry number {i}"})
    await world.advance(5)
    await sync_all(world)
    world.note("an hour of idle syncs on both devices, with one edit halfway")
    for i in range(12):
        if i == 6:
            await phone.put("entry-0007", {"i": 7, "text": "edited"})
        await world.advance(5 * MINUTE)
        await sync_all(world)


@scenario(
    "w10-writes-during-a-slow-pass",
    "writes, extra sync() calls and a close in the middle of a slow pass lose nothing and "
    "leave no pass stuck",
    weakness="W10",
    clauses=("SYNC-2", "ORD-7", "CB-7", "RETRY-5"),
)
async def w10_writes_during_a_slow_pass(world: World) -> None:
    """The original's cancel flag could be lost (W10); brh has no cancel flag, only writes that
    wait for no pass, single-flight sync() calls, and close(). This runs them all mid-pass."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    for i in range(12):
        await phone.put(f"k{i}", f"phone {i}")
    await world.advance(5)
    world.note("the tablet's app takes two seconds per change (it asks the user)")
    world.behave("tablet", mode="slow", delay=2.0)
    user_writes: list[asyncio.Task[None]] = []
    app = tablet.apps["notes"]
    observe = app.observer

    def user_edits_meanwhile(kind: str, entry: Entry) -> None:
        if observe is not None:
            observe(kind, entry)
        if entry.key == "k2" and not user_writes:  # the user edits k2 while asked about it
            world.note("the user edits k2 on the tablet while its callback for k2 waits")
            outside = contextvars.Context()  # a UI event, not a task of the callback
            user_writes.append(
                outside.run(asyncio.create_task, tablet.put("k2", "tablet's edit during k2"))
            )

    app.observer = user_edits_meanwhile
    calls = [asyncio.create_task(tablet.sync()) for _ in range(3)]
    await world.advance(5)
    world.note("while the pass delivers, the tablet writes and calls sync() three more times")
    await tablet.put("t0", "tablet")
    calls.extend(asyncio.create_task(tablet.sync()) for _ in range(3))
    await phone.put("k11", "phone edits a key not yet delivered")
    await world.advance(6)
    app.observer = observe
    await wait_for(list(user_writes))
    world.note("the tablet is closed in the middle of the pass (the only cancel brh has)")
    await world.crash("tablet")
    results = await wait_for(calls)
    world.note(f"sync() calls made before the close returned: {sorted({repr(r) for r in results})}")
    await world.restart("tablet")
    world.behave("tablet", mode="apply")
    await tablet.sync()
    await world.advance(MINUTE)


@scenario(
    "w11-fire-and-forget-callbacks",
    "an app whose callbacks fire writes without awaiting them gets a re-entrant call error, "
    "and nothing is re-stamped, echoed or corrupted",
    weakness="W11",
    clauses=("CB-8", "CB-4"),
)
async def w11_fire_and_forget_callbacks(world: World) -> None:
    """Awaiting a write inside a callback is an API-level error (it raises at once, CB-8); this
    shows the fire-and-forget variant: the tablet's app re-stamps every restored entry from a
    task it spawns, which with the original (W11) cancelled the pass and echoed the entry."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    for i in range(5):
        await phone.put(f"k{i}", f"phone {i}")
    await world.advance(5)
    spawned: list[asyncio.Task[Any]] = []
    app = tablet.apps["notes"]
    observe = app.observer

    def misbehave(kind: str, entry: Entry) -> None:
        if observe is not None:
            observe(kind, entry)
        if kind != "delete":  # "save what I restored", fired and forgotten
            spawned.append(asyncio.create_task(tablet.put(entry.key, entry.data)))

    app.observer = misbehave
    world.note("the tablet's app re-stamps each restored entry from a task it does not await")
    await tablet.sync()
    await phone.put("k1", "phone edits k1")
    await world.advance(5)
    await tablet.sync()
    app.observer = observe
    outcomes = await wait_for(spawned)
    rejected = sum(isinstance(o, ReentrantCallError) for o in outcomes)
    world.note(f"{rejected} of {len(outcomes)} fire-and-forget writes were rejected (CB-8)")
    await world.advance(MINUTE)


@scenario(
    "w12-crash-mid-sync",
    "devices that crash in the middle of uploading, of restoring, and with a write's answer "
    "in flight resume without losing, duplicating or echoing anything",
    weakness="W12",
    clauses=("OFF-2", "OFF-4", "ORD-5", "CB-7", "CB-4"),
)
async def w12_crash_mid_sync(world: World) -> None:
    """Local writes of the original were neither atomic nor durable (W12)."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    for i in range(30):
        await phone.put(f"n{i:02}", {"i": i})
    await world.advance(0.6)
    world.note("the phone crashes while uploading its thirty entries")
    await world.crash("phone")
    await world.advance(10)
    await world.restart("phone")
    await phone.sync()
    world.note("the phone writes, the write applies on the vault, its answer is lost: crash")
    world.cut_answers("phone")
    await phone.put("n00", "edited; the answer of this upload is lost")
    await world.advance(1)
    await world.crash("phone")
    world.restore_answers("phone")
    await world.advance(5)
    await world.restart("phone")
    await phone.sync()
    world.note("the tablet crashes in the middle of restoring (its app is slow)")
    world.behave("tablet", mode="slow", delay=0.5)
    await tablet.put("t", "tablet")
    await world.advance(4)
    await world.crash("tablet")
    await world.advance(MINUTE)
    await world.restart("tablet")
    world.behave("tablet", mode="apply")
    await tablet.sync()
    world.note("a crash right after a write returned: the write is durable")
    await tablet.put("durable", "written just before the crash")
    await world.crash("tablet")
    await world.restart("tablet")
    await world.advance(MINUTE)


@scenario(
    "w13-tricky-names",
    "keys and contexts that collided in the original's flat store (a_b/c vs a/b_c, 'index') "
    "and keys with odd characters stay apart",
    weakness="W13",
    clauses=("DATA-5", "DATA-1", "ERR-1"),
    contexts=("a", "a_b", "index"),
)
async def w13_tricky_names(world: World) -> None:
    """In the original, entry ``(a_b, c)`` and ``(a, b_c)`` shared the storage key ``a_b_c``
    and an entry keyed ``index`` overwrote the context's key list (W13)."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    writes: list[tuple[str, str, Any]] = [
        ("a", "b_c", "a / b_c"),
        ("a_b", "c", "a_b / c"),
        ("a", "index", "a / index"),
        ("a_b", "index", "a_b / index"),
        ("index", "index", "index / index"),
        ("index", "a_index", "index / a_index"),
        ("a", "lastfullsyncdate", "the original's watermark name"),
        ("a", "$gt", "looks like an operator"),
        ("a", "a.b", "a dotted key"),
        ("a", "_id", "the vault's id field name"),
        ("a", " spaced  key ", "spaces"),
        ("a", "ключ-鍵-🔑", "unicode"),
        ("a", "k" * 1024, "the longest key"),
        ("a_b", "nested", {"a_b": {"c": [1, 2.5, None, True, "x"]}, "index": []}),
    ]
    for context, key, data in writes:
        await phone.put(key, data, context=context)
    await world.advance(5)
    await sync_all(world)
    world.note("the tablet deletes some of them; the phone edits others")
    await tablet.remove("b_c", context="a")
    await tablet.remove("index", context="index")
    await phone.put("c", "a_b / c edited", context="a_b")
    await phone.put("index", "a / index edited", context="a")
    await world.advance(MINUTE)
    world.note("a late joiner restores all three contexts")
    world.add_device("laptop")
    await world.advance(MINUTE)


@scenario(
    "w14-creation-date",
    "one key created at once on skewed clocks, edited, deleted and re-created converges "
    "(creation dates under stress; no checker reads them yet)",
    weakness="W14",
    clauses=("DATA-2", "ORD-2", "ORD-4"),
)
async def w14_creation_date(world: World) -> None:
    """``creationDate`` could flip when two devices created one key (W14). No checker looks at
    creation dates yet; this puts them under stress and checks convergence of the data."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet", offset=-HOUR)
    world.disconnect("tablet")
    await phone.put("x", "created on the phone")
    await world.advance(10)
    await tablet.put("x", "created on the tablet (clock an hour slow), offline")
    await world.advance(10)
    world.reconnect("tablet")
    await world.advance(MINUTE)
    await sync_all(world)
    world.note("edits keep the creation date; a delete then re-create starts a new one")
    await tablet.put("x", "edited on the tablet")
    await world.advance(10)
    await phone.sync()
    await phone.remove("x")
    await world.advance(10)
    await tablet.sync()
    await tablet.put("x", "re-created on the tablet")
    await world.advance(MINUTE)


@scenario(
    "w14-collection-vanishes",
    "when the vault loses a context's collection between incremental pulls, the devices "
    "upload their copies again",
    weakness="W14",
    clauses=("RES-3", "DATA-1", "RETRY-4"),
    contexts=("notes", "contacts"),
)
async def w14_collection_vanishes(world: World) -> None:
    """The original no longer tolerated a missing collection in its incremental path (W14).
    World has no verb for a vault that loses data, so this deletes the collection on the
    server directly."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    for i in range(4):
        await phone.put(f"n{i}", f"note {i}", context="notes")
        await tablet.put(f"c{i}", f"contact {i}", context="contacts")
    await world.advance(5)
    await sync_all(world)
    world.note("the vault loses the collection backup_notes (a reset on the node)")
    await world.server.vault.delete_collection("backup_notes")
    await phone.put("n-after", "written after the loss")
    await world.advance(5)
    await tablet.put("c-after", "contacts are unaffected", context="contacts")
    await world.advance(MINUTE)
    await sync_all(world)
