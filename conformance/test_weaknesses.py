"""The original helper's remaining weaknesses (level ``robust``): tombstones kept for ever (W5),
a vault round trip per stored key on every pass (W9), lost cancellations (W10), re-entrant
callbacks (W11), non-atomic local writes (W12), key collisions (W13) and the rest of W14.

Each test judges only what the harness observes: the vault's requests and contents, callback
calls and answers, command results, and each device's local copy through the helper API. So it
catches any implementation with that class of bug, not only the legacy baseline
(``conformance.implementations.legacy``), which fails every one of them. Waits that a broken
implementation could make endless are time-boxed on virtual time and reported as failures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from brh import Entry
from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.impl import Helper
from simulator.live import UnsupportedFault
from simulator.world import World
from simulator.world.app import AppModel

DAY = 86_400.0


def needs_the_vault_clock(world: World, why: str) -> None:
    """Skip on a live vault: its clock runs in real time, not the world's virtual time."""
    if world.server.live:
        raise UnsupportedFault(f"{why}: needs the vault's clock to follow virtual time")


def vault_documents(world: World, context: str, key: str) -> list[dict[str, Any]]:
    """Every document of ``key`` in the context's collection, duplicates and tombstones
    included, read straight from the fake vault (not through any device's link)."""
    collection = "backup_" + context
    if collection not in world.server.vault.collection_names():
        return []
    return [d for d in world.server.vault.documents(collection) if d.get("key") == key]


@clause("DEL-2", level="robust", weakness="W5")
def test_tombstones_are_collected_from_the_vault_after_the_retention(brh_sim: Sim) -> None:
    """DEL-2 (W5): a deletion's tombstone does not stay on the vault for ever: once it is
    older than the retention (30 days by default, in vault stamps) and the devices keep being
    used and synced daily, no document of the deleted key is left; the live entries stay."""

    async def scenario(world: World) -> None:
        needs_the_vault_clock(world, "tombstones 30 days old")
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("gone", "deleted soon")
        await phone.put("kept", "stays")
        await world.advance(5)
        await sync_all(world)
        await phone.remove("gone")
        await world.advance(5)
        await sync_all(world)
        assert tablet.app.items == {"kept": "stays"}
        for day in range(33):  # the app is used every day (retention is in vault stamps)
            await world.advance(DAY)
            await phone.put("daily", day)
            await world.advance(5)
            await sync_all(world, rounds=1)
        assert vault_documents(world, "notes", "gone") == [], "the tombstone was kept"
        assert [d.get("data") for d in vault_documents(world, "notes", "kept")] == ["stays"]
        assert phone.local() == tablet.local() == {"kept": "stays", "daily": 32}

    brh_sim.run(scenario)


@clause("COST-1", "COST-2", level="robust", weakness="W9")
def test_a_pass_costs_requests_for_what_changed_not_for_every_stored_key(brh_sim: Sim) -> None:
    """COST-1, COST-2 (W9): with 40 entries stored and synced, an idle pass costs at most one
    pull and two purge requests (the context's), and a pass after one local edit at most a few
    more, never a request per stored key. Counted on the device's link to the vault."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        for i in range(40):
            await phone.put(f"k{i}", i)
        await world.advance(5)
        for _ in range(3):  # until the pull cursor has settled (SYNC-4)
            await phone.sync()
            await world.advance(10)
        link = world.links["phone"]
        before = link.requests
        assert await phone.sync()
        idle = link.requests - before
        assert idle <= 3, f"an idle pass over 40 stored entries cost {idle} vault requests"
        await world.advance(10)
        before = link.requests
        await phone.put("k7", "edited")
        await world.advance(5)  # the write's own pass, if the helper starts one
        assert await phone.sync()
        edit = link.requests - before
        assert edit <= 8, f"pushing one edit among 40 stored entries cost {edit} vault requests"

    brh_sim.run(scenario)


@clause("OFF-1", level="robust", weakness="W10")
def test_a_write_during_a_long_pass_returns_at_once_even_if_a_sync_is_asked_meanwhile(
    brh_sim: Sim,
) -> None:
    """OFF-1 (W10): a device is restoring 20 entries into a slow app (2 s a callback)
    when the app writes and, at once, asks for a sync. The write must return at once (it never
    waits for the network, nor for the running pass, however the pass is stopped or joined),
    and the new entry still reaches the other device."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for i in range(20):
            await phone.put(f"k{i}", i)
        await world.advance(5)
        await phone.sync()
        world.behave("tablet", mode="slow", delay=2)
        running = asyncio.ensure_future(tablet.sync())
        await world.advance(5)  # the pass is delivering
        started = world.now()
        write = asyncio.ensure_future(tablet.put("mine", "written during the pass"))
        asked = asyncio.ensure_future(tablet.sync())  # the app also asks for a sync
        done, _ = await asyncio.wait([write], timeout=MINUTE)
        took = world.now() - started
        assert done, "the write had not returned a minute after it was made"
        assert took <= 1.0, f"the write took {took:.1f} s: it waited for the running pass"
        world.behave("tablet", mode="apply")
        await asyncio.wait([running, asked], timeout=10 * MINUTE)
        await world.advance(MINUTE)
        await sync_all(world)
        assert phone.app.items.get("mine") == "written during the pass"

    brh_sim.run(scenario)


@dataclass
class _ReenteringApp(AppModel):
    """An app whose insertion callback writes through the helper and awaits it (a bug the
    helper must survive: CB-8); each attempt's outcome goes to ``outcomes``."""

    helper: Helper | None = None
    context: str = ""
    outcomes: list[str] = field(default_factory=list)

    async def on_insert(self, entry: Entry) -> bool:
        assert self.helper is not None
        call = self.helper.upsert_database_entry(self.context, "from-callback", entry.key)
        try:
            await asyncio.wait_for(call, timeout=MINUTE)
        except TimeoutError:
            self.outcomes.append("hung")
        except Exception as error:  # the error CB-8 asks for (any implementation's type)
            self.outcomes.append(f"raised {type(error).__name__}")
        else:
            self.outcomes.append("returned")
        return self._handle("insert", entry)


@clause("CB-8", level="robust", weakness="W11")
def test_a_callback_awaiting_a_write_gets_an_error_instead_of_a_deadlock(brh_sim: Sim) -> None:
    """CB-8 (W11): an app's callback calls upsert and awaits it. The call must fail at once
    with an error (time-boxed here at a minute of virtual time: longer is a deadlock), and the
    pass must still end and deliver the change; the attempted write is never stored."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        app = _ReenteringApp(context="inbox")
        phone.add_context("inbox")
        tablet.add_context("inbox", app)
        app.helper = tablet.impl_for("inbox")
        await sync_all(world)
        await world.advance(MINUTE)
        await phone.put("x", "from the phone", context="inbox")
        await world.advance(5)
        await phone.sync()
        done, _ = await asyncio.wait([asyncio.ensure_future(tablet.sync())], timeout=5 * MINUTE)
        assert done, "the pass never ended: the callback's write deadlocked it"
        assert len(app.outcomes) == 1 and app.outcomes[0].startswith("raised"), (
            f"the callback's own write: {app.outcomes} (it must fail at once with an error)"
        )
        assert app.items == {"x": "from the phone"}
        assert tablet.local("inbox") == {"x": "from the phone"}

    # The devices get their one context, with the re-entering app, here (not from the world).
    brh_sim.run(scenario, contexts=())


@dataclass
class _SpawningApp(AppModel):
    """An app whose insertion callback starts a write through the helper in a task of its own
    and returns without awaiting it (the other shape of the CB-8 bug)."""

    helper: Helper | None = None
    context: str = ""
    spawned: list[asyncio.Future[None]] = field(default_factory=list)

    def on_insert(self, entry: Entry) -> bool:
        assert self.helper is not None
        write = self.helper.upsert_database_entry(self.context, entry.key, "re-stamped")
        self.spawned.append(asyncio.ensure_future(write))
        return self._handle("insert", entry)


@clause("CB-8", "CB-4", level="robust", weakness="W11")
def test_a_write_spawned_by_a_callback_fails_and_echoes_nothing(brh_sim: Sim) -> None:
    """CB-8, CB-4 (W11): a fresh device restores 5 entries into an app whose callback starts a
    write of the entry it was given in a task and returns at once. Each spawned write must fail
    with an error (time-boxed at a minute of virtual time); the restore completes with the
    original data, and the other device is told nothing (no re-stamped echo)."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        phone.add_context("inbox")
        for i in range(5):
            await phone.put(f"k{i}", i, context="inbox")
        await world.advance(5)
        await phone.sync()
        await world.advance(MINUTE)
        tablet = world.add_device("tablet")
        app = _SpawningApp(context="inbox")
        tablet.add_context("inbox", app)
        app.helper = tablet.impl_for("inbox")
        await asyncio.wait([asyncio.ensure_future(tablet.sync())], timeout=5 * MINUTE)
        for _ in range(3):
            await world.advance(MINUTE)
            await tablet.sync()
        done, hung = await asyncio.wait(app.spawned, timeout=MINUTE) if app.spawned else ((), ())
        assert not hung, f"{len(hung)} writes spawned by a callback never ended"
        succeeded = [w for w in done if w.exception() is None]
        assert len(app.spawned) == 5 and not succeeded, (
            f"{len(succeeded)} of {len(app.spawned)} writes spawned by a callback went through"
        )
        expected = {f"k{i}": i for i in range(5)}
        assert tablet.local("inbox") == app.items == expected
        await phone.sync()
        assert phone.apps["inbox"].calls.total == 0, list(phone.apps["inbox"].calls)

    brh_sim.run(scenario, contexts=())


CRASH_DELAYS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0)
"""Seconds after a write starts at which a crash test kills the device (then a few loop turns
more): a background persistence of any of these delays is caught in the middle."""
CRASH_TURNS = 3
"""Turns of the event loop after each delay (crashes between two consecutive local writes)."""


@clause("OFF-2", "OFF-4", level="robust", weakness="W12")
def test_a_crash_at_any_point_of_a_write_leaves_the_key_usable(brh_sim: Sim) -> None:
    """OFF-2, OFF-4 (W12): the device dies while a write of a new key is under way, at every
    point of a grid: after each of :data:`CRASH_DELAYS` seconds and then 0 to 2 more turns of
    its event loop (so between any two of its local writes, whether made at once or persisted
    in the background). The unacknowledged write may be lost or kept, but the store must stay
    whole: after the restart the app writes the key again, and that acknowledged write is in
    the local copy and reaches the other device."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("before", 0)
        await world.advance(5)
        await sync_all(world)
        points: dict[str, str] = {}  # key -> where its first write was cut
        for delay in CRASH_DELAYS:
            for turns in range(CRASH_TURNS):
                key = f"x{len(points)}"
                points[key] = f"{key} (crash {delay} s + {turns} loop turns in)"
                write = asyncio.ensure_future(phone.put(key, "cut short"))
                if delay:
                    await asyncio.sleep(delay)
                for _ in range(turns):
                    await asyncio.sleep(0)
                await world.crash("phone")
                await asyncio.gather(write, return_exceptions=True)
                await world.restart("phone")
                await phone.put(key, "written again")
                await world.advance(5)
        expected = {"before": 0, **{key: "written again" for key in points}}
        local = phone.local()
        missing = [point for key, point in points.items() if local.get(key) != "written again"]
        assert local == expected, f"written again after a crash, not in the local copy: {missing}"
        await world.advance(MINUTE)
        await sync_all(world)
        assert tablet.app.items == expected

    brh_sim.run(scenario)


ODD_KEYS = ("index", "__proto__", "constructor", "toString", "hasOwnProperty", "x_y", "notes_x")
"""Keys that collide with object internals or the original's storage keys in some languages."""


@clause("DATA-5", "API-2", level="robust", weakness="W13")
def test_keys_that_look_like_internals_or_separators_are_ordinary_keys(brh_sim: Sim) -> None:
    """DATA-5 (W13): entries keyed ``index``, ``__proto__``, ``constructor`` and keys holding
    ``_`` (the separator the original joins context and key on) are entries like any other;
    and ``(a_b, c)`` and ``(a, b_c)`` are two entries. The writer's local copy has each with its
    own data, and another device restores them all."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        notes = {key: f"value of {key}" for key in ODD_KEYS}
        for key, value in notes.items():
            await phone.put(key, value, context="notes")
        await phone.put("b_c", "in context a", context="a")
        await phone.put("c", "in context a_b", context="a_b")
        await world.advance(5)
        assert phone.local("notes") == notes
        assert phone.local("a") == {"b_c": "in context a"}
        assert phone.local("a_b") == {"c": "in context a_b"}
        await sync_all(world)
        await world.advance(MINUTE)
        await sync_all(world)
        assert tablet.apps["notes"].items == notes
        assert tablet.apps["a"].items == {"b_c": "in context a"}
        assert tablet.apps["a_b"].items == {"c": "in context a_b"}
        assert tablet.local("notes") == notes

    brh_sim.run(scenario, contexts=("notes", "a", "a_b"))


@clause("API-4", "RETRY-1", level="robust", weakness="W14")
def test_a_pass_that_could_not_reach_the_collection_does_not_report_success(brh_sim: Sim) -> None:
    """API-4, RETRY-1 (W14): while the vault is down (503 to everything), and then while it
    refuses writes (its collection cannot even be created), a device's sync with a pending
    write reports that it did not complete; once the vault is back the write arrives."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.take_down()
        await phone.put("x", "written while the vault was down")
        await world.advance(5)
        assert not await phone.sync(), "sync() said it completed while the vault was down"
        world.bring_up()
        world.freeze()
        await world.advance(5)
        assert not await phone.sync(), "sync() said it completed while nothing could be written"
        world.unfreeze()
        await world.advance(10 * MINUTE)
        await sync_all(world)
        assert tablet.app.items == {"x": "written while the vault was down"}

    brh_sim.run(scenario)


@clause("SYNC-4", "SYNC-9", level="robust", weakness="W14")
def test_a_restore_delivers_entries_in_the_vaults_order(brh_sim: Sim) -> None:
    """SYNC-4, SYNC-9 (W14): pulls follow the vault's order of stamps, not the order documents
    happen to be stored in: after k0..k4 are written in turn and k0 and k2 edited later, a
    fresh device's restore delivers k1, k3, k4, then k0 and k2 in the order they were edited."""

    async def scenario(world: World) -> None:
        needs_the_vault_clock(world, "writes a few seconds apart with distinct stamps")
        phone = world.add_device("phone")
        for i in range(5):
            await phone.put(f"k{i}", i)
            await world.advance(2)
            await phone.sync()
        await world.advance(MINUTE)
        for i in (2, 0):
            await phone.put(f"k{i}", f"edited {i}")
            await world.advance(2)
            await phone.sync()
        await world.advance(MINUTE)
        tablet = world.add_device("tablet")
        await tablet.sync()
        assert [key for _, key, _ in tablet.app.calls] == ["k1", "k3", "k4", "k2", "k0"]

    brh_sim.run(scenario)
