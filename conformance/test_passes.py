"""The sync pass as the vault sees it (SPEC §4 and §10): the order of a pass's requests, the
passes writes start by themselves, per-context cursors, full passes, and what passes cost.

Every assertion reads what the harness observes of any implementation: the requests a device
sends through its link to the vault (:meth:`simulator.world.link.Link.record`: operation,
collection, filter, when, and how many documents each answer carried), the vault's documents in
the original helper's fields, the callbacks and their answers, and each device's local copy
through the public API. Nothing reads an event or a structure only the reference has.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.live import UnsupportedFault
from simulator.world import World
from simulator.world.device import SimDevice
from simulator.world.link import Sent
from simulator.world.server import WRITES

HOUR = 3600.0


_READS = frozenset({"find_one", "find_many", "query", "count_documents"})


def _read(sent: Sent) -> bool:
    return sent.op in _READS


def _write(sent: Sent) -> bool:
    """A request that changes documents (creating a collection is not one)."""
    return sent.op in WRITES and not sent.op.endswith("_collection")


def _pulls(log: Sequence[Sent], collection: str | None = None) -> list[Sent]:
    """The pull requests of a log: reads of a collection that name no key (a read of one key,
    as after a compare-and-set that failed, is not a pull)."""
    return [
        s
        for s in log
        if _read(s) and s.key is None and (collection is None or s.collection == collection)
    ]


def _returned(log: Sequence[Sent]) -> int:
    """Documents the answers of a log's requests carried."""
    return sum(s.documents or 0 for s in log)


def _ops(log: Sequence[Sent]) -> str:
    """A log in short, for failure messages."""
    return ", ".join(f"{s.op}({s.collection})" for s in log) or "nothing"


def _record(world: World, device: str) -> list[Sent]:
    """Log the requests ``device`` sends from now on (see :class:`Sent`)."""
    log: list[Sent] = []
    world.links[device].log = log
    return log


async def _pass_after_writes(world: World, device: SimDevice, log: list[Sent]) -> None:
    """Let the pass the device's writes started by themselves run (SYNC-3); if they started
    none (that is SYNC-3's test's finding, not this test's), sync."""
    await world.advance(2)
    if not log:
        await device.sync()
        await world.advance(1)


def _needs_the_fake_vault(world: World, why: str) -> None:
    if world.server.live:
        raise UnsupportedFault(f"{why}: needs the fake vault")


# -- SYNC-1: contexts in registration order, each pulled then pushed ----------------------------


@clause("SYNC-1", "CB-1", level="core")
def test_a_pass_visits_contexts_in_registration_order_pulling_before_pushing(
    brh_sim: Sim,
) -> None:
    """SYNC-1: three contexts registered as notes, contacts, photos (not their alphabetical
    order), each with changes from the tablet and local changes the phone made offline. The
    phone's pass sends its first request for each context in registration order, and for each
    one pulls before it pushes and pushes before it visits the next context. CB-1: the remote
    changes are delivered and the local ones reach the tablet; of two keys both devices
    edited, each keeps the later edit on both devices: the phone's of one, the tablet's of the
    other (a pass that pushed first could overwrite that newer remote edit)."""
    contexts = ("notes", "contacts", "photos")

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for context in contexts:
            await phone.put("mine", "first", context)
            await phone.put("theirs", "first", context)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        for context in contexts:
            await tablet.put("mine", "the tablet's edit", context)
        await world.advance(5)
        await tablet.sync()
        await world.advance(MINUTE)
        world.disconnect("phone")  # the phone's changes wait for its next pass
        for context in contexts:
            await phone.put(f"{context}-local", "from the phone", context)
            await phone.put("mine", "the phone's later edit", context)
            await phone.put("theirs", "the phone's edit", context)
        await world.advance(MINUTE)
        for context in contexts:
            await tablet.put(f"{context}-remote", "from the tablet", context)
            await tablet.put("theirs", "the tablet's later edit", context)
        await world.advance(5)
        await tablet.sync()
        await world.advance(MINUTE)
        world.reconnect("phone")
        log = _record(world, "phone")
        assert await phone.sync()
        order = [f"backup_{context}" for context in contexts]
        never = len(log)  # a context the pass never sent a request for comes "last"
        first = [next((i for i, s in enumerate(log) if s.collection == c), never) for c in order]
        assert never not in first and first == sorted(first), (
            f"contexts visited out of registration order {order}: {_ops(log)}"
        )
        for number, collection in enumerate(order):
            mine = [(i, s) for i, s in enumerate(log) if s.collection == collection]
            pull = next((i for i, s in mine if _pulls([s])), None)
            push = next((i for i, s in mine if _write(s)), None)
            assert pull is not None and push is not None, f"{collection}: {_ops(log)}"
            assert pull < push, f"{collection} pushed before it pulled: {_ops(log)}"
            if number + 1 < len(order):
                assert push < first[number + 1], (
                    f"{order[number + 1]} was visited before {collection} pushed: {_ops(log)}"
                )
        await tablet.sync()
        for context in contexts:
            expected = {
                "mine": "the phone's later edit",
                "theirs": "the tablet's later edit",
                f"{context}-remote": "from the tablet",
                f"{context}-local": "from the phone",
            }
            assert phone.local(context) == tablet.local(context) == expected, context
            assert phone.apps[context].items == tablet.apps[context].items == expected

    brh_sim.run(scenario, contexts=contexts)


# -- SYNC-3: writes start a pass by themselves, after a debounce that coalesces them -----------


@clause("SYNC-3", level="core")
def test_writes_start_one_pass_by_themselves_after_a_short_debounce(brh_sim: Sim) -> None:
    """SYNC-3: five upserts 10 ms apart, and nobody calls sync(): the device sends requests
    by itself within a second, in one pass (one pull: the writes coalesce), and the entries
    reach the vault and the other device. A delete alone starts a pass too."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("before", 0)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        await world.advance(MINUTE)
        log = _record(world, "phone")
        start = asyncio.get_running_loop().time()
        written = {f"k{i}": i for i in range(5)}
        for key, value in written.items():
            await phone.put(key, value)
            await asyncio.sleep(0.01)
        await world.advance(2)
        assert log, "five writes and two seconds later the device had sent nothing by itself"
        assert log[0].at - start <= 1.0, (
            f"the first request came {log[0].at - start:.2f} s after the first write"
        )
        passes = _pulls(log)
        assert len(passes) == 1, (
            f"five writes 10 ms apart started {len(passes)} passes (each pass pulls), not one: "
            f"{_ops(log)}"
        )
        calls = tablet.app.calls.total
        await tablet.sync()
        assert tablet.local() == {"before": 0, **written}
        assert sorted(tablet.app.calls.since(calls)) == [
            ("insert", k, v) for k, v in written.items()
        ]

        await world.advance(MINUTE)
        log = _record(world, "phone")
        await phone.remove("k0")
        await world.advance(2)
        assert len(_pulls(log)) == 1 and any(_write(s) for s in log), (
            f"a delete did not start a pass by itself: {_ops(log)}"
        )
        await tablet.sync()
        assert "k0" not in tablet.local() and "k0" not in tablet.app.items

    brh_sim.run(scenario)


# -- SYNC-5: a cursor per context -------------------------------------------------------------


@clause("SYNC-5", "RES-1", level="robust", weakness="W3")
def test_each_context_pulls_from_its_own_cursor(brh_sim: Sim) -> None:
    """SYNC-5 (W3): the tablet writes a contact, and an hour later a note. A fresh phone
    (contexts registered notes, then contacts) restores both at its first pass: pulling the
    notes never moves the contacts' cursor. The same an hour apart again, incrementally. A
    context the phone registers later (photos, written by the tablet hours before) starts with
    no cursor: its first pass delivers everything in it (RES-1)."""
    contexts = ("notes", "contacts")

    async def scenario(world: World) -> None:
        tablet = world.add_device("tablet")
        await tablet.put("c-old", "an old contact", "contacts")
        await world.advance(5)
        await tablet.sync()
        await world.advance(HOUR)
        await tablet.put("n-new", "a newer note", "notes")
        await world.advance(5)
        await tablet.sync()
        await world.advance(MINUTE)
        phone = world.add_device("phone")
        assert await phone.sync()
        assert phone.apps["notes"].items == {"n-new": "a newer note"}
        assert phone.apps["contacts"].items == {"c-old": "an old contact"}, (
            "a fresh device did not restore a context whose entries are older than another's"
        )
        await world.advance(MINUTE)
        await sync_all(world)

        await tablet.put("c2", "a contact", "contacts")
        await world.advance(5)
        await tablet.sync()
        await world.advance(HOUR)
        await tablet.put("n2", "a note an hour later", "notes")
        await world.advance(5)
        await tablet.sync()
        await world.advance(MINUTE)
        assert await phone.sync()
        assert phone.local("contacts") == {"c-old": "an old contact", "c2": "a contact"}
        assert phone.local("notes") == {"n-new": "a newer note", "n2": "a note an hour later"}

        tablet.add_context("photos")
        await tablet.put("p-old", "an old photo", "photos")
        await world.advance(5)
        await tablet.sync()
        for _ in range(3):
            await world.advance(HOUR)
            await sync_all(world)
        phone.add_context("photos")
        assert await phone.sync()
        assert phone.apps["photos"].items == {"p-old": "an old photo"}, (
            "a context registered later did not pull what was written before"
        )
        assert phone.local("photos") == {"p-old": "an old photo"}

    brh_sim.run(scenario, contexts=contexts)


# -- SYNC-10: a full pass re-reads everything ----------------------------------------------------


@clause("SYNC-10", "CB-4", level="robust")
def test_a_full_pass_uploads_again_what_the_vault_lost(brh_sim: Sim) -> None:
    """SYNC-10: the vault loses the document of a synced entry (nobody deleted it). A full pass
    of a device holding it uploads it again: the vault has it live with its data, a device
    installed afterwards restores it, and no deletion is delivered (the device was not away,
    so it is no purged deletion). CB-4: the uploader is not told of its own upload; the other
    device, which holds the entry, at most of a new version of it with the same data."""

    async def scenario(world: World) -> None:
        _needs_the_fake_vault(world, "the vault losing a document")
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        entries = {"a": 1, "b": {"n": 2}, "c": 3}
        for key, value in entries.items():
            await phone.put(key, value)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        await world.server.vault.delete_many("backup_notes", {"key": "b"})
        assert world.vault_live("notes") == {"a": 1, "c": 3}
        calls = {d.name: d.app.calls.total for d in (phone, tablet)}
        await world.advance(MINUTE)
        assert await tablet.sync(full=True)
        assert world.vault_live("notes") == entries, "a full pass did not upload the lost entry"
        await world.advance(5)
        assert await phone.sync(full=True)
        await sync_all(world)
        for device in (phone, tablet):
            assert device.local() == device.app.items == entries, device.name
        assert tablet.app.calls.since(calls["tablet"]) == [], "its own upload echoed"
        told = phone.app.calls.since(calls["phone"])
        assert told in ([], [("modify", "b", {"n": 2})]), (
            f"the phone, which holds b, was told {told} of its upload by the tablet"
        )
        late = world.add_device("late")
        assert await late.sync()
        assert late.app.items == entries

    brh_sim.run(scenario)


# -- SYNC-11: a full pass at least every full_sync_interval -------------------------------------


@clause("SYNC-11", "SYNC-10", level="robust")
def test_a_device_syncing_every_hour_still_gets_its_daily_full_pass(brh_sim: Sim) -> None:
    """SYNC-11: the vault's clock steps two hours back, so an entry written then is stamped
    below the cursor of a device that had synced, where an incremental pull cannot see it. The
    device keeps syncing every hour; its periodic full pass (default once a day, by the device
    clock) still delivers the entry within 25 hours."""

    async def scenario(world: World) -> None:
        _needs_the_fake_vault(world, "a vault clock stepping back")
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("before", 1)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        world.jump_clock("vault", -2 * HOUR)
        await phone.put("after", 2)
        await world.advance(5)
        await phone.sync()
        for _ in range(25):
            await world.advance(HOUR)
            await tablet.sync()
            if "after" in tablet.app.items:
                break
        assert tablet.app.items == {"before": 1, "after": 2}, (
            "a device syncing every hour had no full pass in 25 hours"
        )

    brh_sim.run(scenario)


# -- COST-1: an idle pass --------------------------------------------------------------------


@clause("COST-1", level="robust", weakness="W9")
def test_an_idle_pass_costs_one_request_per_context_whatever_is_stored(brh_sim: Sim) -> None:
    """COST-1 (W9): a device with 30 notes and 10 contacts stored and synced, its cursors
    settled (passes a minute apart): an idle pass costs one request per context and its
    answers carry no document. After 60 more notes arrive and settle, an idle pass costs the
    same: nothing grows with the number of stored entries."""
    contexts = ("notes", "contacts")

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")

        async def settled_idle_pass(stored: int) -> None:
            for _ in range(2):
                await world.advance(MINUTE)
                await sync_all(world, rounds=1)
            await world.advance(MINUTE)
            log = _record(world, "phone")
            assert await phone.sync()
            returned = _returned(log)
            assert len(log) <= len(contexts) and returned == 0, (
                f"an idle pass with {stored} entries stored cost {len(log)} requests "
                f"({_ops(log)}) returning {returned} documents; at most {len(contexts)} "
                "requests and no document"
            )

        for i in range(30):
            await phone.put(f"n{i}", i, "notes")
        for i in range(10):
            await phone.put(f"c{i}", i, "contacts")
        await world.advance(5)
        await settled_idle_pass(40)
        for i in range(60):
            await tablet.put(f"t{i}", i, "notes")
        await world.advance(5)
        await tablet.sync()
        await settled_idle_pass(100)
        assert len(phone.local("notes")) == 90

    brh_sim.run(scenario, contexts=contexts)


# -- COST-2: pushes and pulls ---------------------------------------------------------------

PAGE = 4
"""The page size asked of the helpers (``page_size``). One that ignores the option (a process:
options do not cross the protocol) pulls in pages of its own (500 by default), in fewer
requests: the bounds below hold for any page size of at least this."""


@clause("COST-2", "COST-3", level="robust", weakness="W9")
def test_pushes_cost_a_request_per_change_and_pulls_a_request_per_page(brh_sim: Sim) -> None:
    """COST-2 (W9): with 9 entries synced everywhere, the phone makes 8 changes (4 edits, a
    delete, 3 new keys). Its pass costs one request per change plus its pull. The tablet pulls
    the 8 changed documents in ceil(8 / page_size) requests (no empty page after the last
    full one), each document at most once more than it takes (one look-ahead per page). A new
    device restores the 12 documents in ceil(12 / page_size) + 1 requests in all, the one more
    being its collection's creation (COST-3). After 2 more changes, a full pass of the tablet
    costs at most two requests per page (a page, and a read of what changed in it)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for i in range(9):
            await phone.put(f"k{i}", i)
        await world.advance(5)
        await sync_all(world)
        for _ in range(2):
            await world.advance(MINUTE)
            await sync_all(world, rounds=1)
        await world.advance(MINUTE)

        log = _record(world, "phone")
        for i in range(4):
            await phone.put(f"k{i}", f"edited {i}")
        await phone.remove("k4")
        for i in range(3):
            await phone.put(f"new{i}", i)
        changes = 8
        await _pass_after_writes(world, phone, log)
        writes = [s for s in log if _write(s)]
        assert len(writes) <= changes and len(log) <= changes + 1, (
            f"pushing {changes} changes cost {len(log)} requests: {_ops(log)}"
        )

        await world.advance(MINUTE)
        log = _record(world, "tablet")
        calls = tablet.app.calls.total
        assert await tablet.sync()
        assert len(tablet.app.calls.since(calls)) == changes
        pages = math.ceil(changes / PAGE)
        returned = _returned(log)
        assert len(log) <= pages and changes <= returned <= changes + pages, (
            f"pulling {changes} changed documents (page size {PAGE}) cost {len(log)} "
            f"requests returning {returned} documents: {_ops(log)}"
        )

        await phone.put("k5", "edited again")
        await phone.put("new0", "edited again")
        await _pass_after_writes(world, phone, _record(world, "phone"))
        await world.advance(MINUTE)
        log = _record(world, "tablet")
        assert await tablet.sync(full=True)
        stored, pages = 12, math.ceil(12 / PAGE)
        assert tablet.app.items["k5"] == tablet.app.items["new0"] == "edited again"
        assert len(log) <= 2 * pages, (
            f"a full pass over {stored} documents, 2 of them changed (page size {PAGE}), cost "
            f"{len(log)} requests, not at most {2 * pages}: {_ops(log)}"
        )
        await phone.put("k5", 5)
        await phone.put("new0", 0)
        await _pass_after_writes(world, phone, _record(world, "phone"))

        late = world.add_device("late")
        log = _record(world, "late")
        assert await late.sync()
        stored = 12
        expected = {
            **{f"k{i}": f"edited {i}" for i in range(4)},
            **{f"k{i}": i for i in range(5, 9)},
            **{f"new{i}": i for i in range(3)},
        }
        assert late.app.items == late.local() == expected
        budget = math.ceil(stored / PAGE) + 1
        assert len(log) <= budget, (
            f"restoring {stored} documents (page size {PAGE}) cost {len(log)} requests, "
            f"not at most {budget}: {_ops(log)}"
        )
        assert [s.op for s in log].count("create_collection") == 1, _ops(log)

    brh_sim.run(scenario, helper_options={"page_size": PAGE})


# -- COST-3: one collection creation, at a context's first pass -----------------------------


def _creations(world: World, device: str) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    log = world.links[device].log or []
    for sent in log:
        if sent.op == "create_collection":
            counts[sent.collection] = counts.get(sent.collection, 0) + 1
    return counts


@clause("COST-3", "DATA-1", "OFF-4", level="robust")
def test_a_context_creates_its_collection_at_its_first_pass_only(brh_sim: Sim) -> None:
    """COST-3, DATA-1: a fresh device's first pass over an empty vault creates each context's
    collection once, before its pull: two requests per context. Later passes (writes, idle
    passes, a restart on the same store: OFF-4, and a full pass) create nothing; a second
    device creates each once too (the vault answers "already exists"), and a context
    registered later is created at its own first pass."""
    contexts = ("notes", "contacts")
    everyone = tuple(f"backup_{c}" for c in (*contexts, "photos"))

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        log = _record(world, "phone")
        assert await phone.sync()
        for collection in (f"backup_{c}" for c in contexts):
            mine = [s for s in log if s.collection == collection]
            assert [s.op for s in mine][:1] == ["create_collection"] and len(mine) == 2, (
                f"the first pass over an empty vault sent, for {collection}: {_ops(mine)}"
            )
        await phone.put("x", 1)
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        await phone.sync()
        await world.crash("phone")
        await world.restart("phone")
        await phone.put("y", 2, "contacts")
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        await phone.sync(full=True)
        created = _creations(world, "phone")
        assert created == dict.fromkeys(everyone[:2], 1), (
            f"the phone created collections {created}; once each, at its first pass"
        )
        tablet = world.add_device("tablet")
        _record(world, "tablet")
        await sync_all(world)
        for device in (phone, tablet):
            device.add_context("photos")
        await phone.put("p", 3, "photos")
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        assert tablet.apps["photos"].items == {"p": 3}
        for name in ("phone", "tablet"):
            created = _creations(world, name)
            assert created == dict.fromkeys(everyone, 1), (
                f"{name} created collections {created}; once each, at its first pass"
            )

    brh_sim.run(scenario, contexts=contexts)
