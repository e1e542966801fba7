"""The legacy baseline (``conformance.implementations.legacy``) run on the simulator.

Everyday flows work on it; each weakness of the original helper a test names (W1, W2, ...)
actually happens on it; and the very same scenario run on the reference helper does not show it.
Each scenario is written once and run on both implementations: ``impl.legacy`` says which outcome
to expect. Both run through the same harness path (a factory and a store directory), so the
scenarios only use the common :class:`simulator.impl.Helper` API.

The scenarios assert the specific outcome rather than calling ``World.settle()``: on the legacy
the checkers would flag the run anyway, but they would not say which weakness did it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conformance.implementations import legacy
from simulator.impl import Factory, Helper, reference_factory
from simulator.timeloop import run
from simulator.world import START, World

T = TypeVar("T")

MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Impl:
    name: str
    factory: Factory
    legacy: bool
    """True: the original's weaknesses are expected to show."""


LEGACY = Impl("legacy", legacy.factory, legacy=True)
REFERENCE = Impl("reference", reference_factory, legacy=False)
both = pytest.mark.parametrize("impl", [LEGACY, REFERENCE], ids=lambda impl: impl.name)


def play(
    impl: Impl,
    tmp_path: Path,
    scenario: Callable[[World], Awaitable[T]],
    *,
    contexts: tuple[str, ...] = ("notes",),
) -> T:
    """Run ``scenario`` in a fresh world of ``impl`` devices on virtual time; return its result."""

    async def main() -> T:
        world = World(1, contexts=contexts, factory=impl.factory, workdir=tmp_path)
        try:
            return await scenario(world)
        finally:
            await world.close()

    return run(main(), start=START)


def documents(world: World, key: str, context: str = "notes") -> list[dict[str, Any]]:
    """The vault's documents of ``key`` (duplicates included)."""
    return [d for d in world.server.vault.documents("backup_" + context) if d.get("key") == key]


async def sync_rounds(world: World, rounds: int = 3) -> None:
    """Every device syncs incrementally, in join order, ``rounds`` times, a minute apart."""
    for _ in range(rounds):
        for device in world.devices.values():
            await device.sync()
        await world.advance(MINUTE)


# -- the legacy helper itself ----------------------------------------------------------------


def test_legacy_meets_the_helper_protocol(tmp_path: Path) -> None:
    """The factory builds something the simulator can drive (simulator.impl.Helper)."""

    async def scenario(world: World) -> bool:
        return isinstance(world.add_device("a").impl, Helper)

    assert play(LEGACY, tmp_path, scenario)


def test_legacy_stores_the_original_document_format(tmp_path: Path) -> None:
    """Wire compatibility: one ``backup_<context>`` document per entry with the original's
    fields, dates in milliseconds of the writing device's clock."""

    async def scenario(world: World) -> dict[str, Any]:
        a = world.add_device("a", offset=-HOUR)
        await a.put("x", {"n": 1})
        await world.advance(5)
        [doc] = documents(world, "x")
        return doc

    doc = play(LEGACY, tmp_path, scenario)
    assert doc["data"] == {"n": 1} and doc["deletionDate"] is None
    assert doc["creationDate"] == doc["modificationDate"] == int((START - HOUR) * 1000)


# -- everyday flows work on both -------------------------------------------------------------


@both
def test_create_modify_delete_reach_the_other_device(impl: Impl, tmp_path: Path) -> None:
    """A creation, an edit and a deletion made on one device reach the other's helper and app;
    the world then settles with no finding, but on the legacy the cost of its idle pass (it asks
    the vault about every key it stores, W9, COST-1)."""

    async def scenario(world: World) -> list[Any]:
        a, b = world.add_device("a"), world.add_device("b")
        seen: list[Any] = []
        await a.put("x", "created on a")
        await world.advance(5)
        await b.sync()
        seen.append((b.local(), dict(b.app.items)))
        await b.put("x", "edited on b")
        await world.advance(5)
        await a.sync()
        seen.append((a.local(), dict(a.app.items)))
        await a.remove("x")
        await world.advance(5)
        await b.sync()
        seen.append((b.local(), b.app.items))
        seen.append([str(f) for f in await world.settle()])
        return seen

    created, edited, deleted, findings = play(impl, tmp_path, scenario)
    assert created == ({"x": "created on a"}, {"x": "created on a"})
    assert edited == ({"x": "edited on b"}, {"x": "edited on b"})
    assert deleted == ({}, {})
    if impl.legacy:
        assert findings and all("[COST-1] cost" in f for f in findings), findings
    else:
        assert findings == []


@both
def test_reinstall_restores_live_entries(impl: Impl, tmp_path: Path) -> None:
    """After a reinstall (store and app gone) the first sync restores every live entry and no
    deleted one."""

    async def scenario(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
        a = world.add_device("a")
        await a.put("x", 1)
        await a.put("y", [2])
        await a.put("gone", 3)
        await world.advance(5)
        await a.remove("gone")
        await world.advance(5)
        await world.reinstall("a")
        assert a.local() == {}
        await a.sync()
        return a.local(), a.app.items

    local, app = play(impl, tmp_path, scenario)
    assert local == app == {"x": 1, "y": [2]}


@both
def test_a_refusal_then_a_later_sync_delivers(impl: Impl, tmp_path: Path) -> None:
    """The app refuses a change once: that pass fails; a sync a minute later delivers it."""

    async def scenario(world: World) -> tuple[bool, bool, dict[str, Any]]:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", 1)
        await world.advance(5)
        world.behave("b", mode="refuse", refusals=1)
        first = bool(await b.sync())
        await world.advance(MINUTE)
        later = bool(await b.sync())
        return first, later, b.app.items

    first, later, app = play(impl, tmp_path, scenario)
    assert (first, later, app) == (False, True, {"x": 1})


@both
@pytest.mark.parametrize("settled", [True, False], ids=["after-a-second", "at-once"])
def test_a_crash_keeps_the_local_store(impl: Impl, tmp_path: Path, settled: bool) -> None:
    """An edit made offline survives a crash and a restart, and is uploaded afterwards. W12:
    the legacy persists its writes in the background, so a crash at once, right after the
    write returned, loses it; a crash a second later does not."""

    async def scenario(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
        a, b = world.add_device("a"), world.add_device("b")
        world.disconnect("a")
        await a.put("x", "written offline")
        if settled:
            await world.advance(1)
        await world.crash("a")
        await world.restart("a")
        after_restart = a.local()
        world.reconnect("a")
        await world.advance(5)
        await a.sync()
        await world.advance(5)
        await b.sync()
        return after_restart, b.local()

    after_restart, on_b = play(impl, tmp_path, scenario)
    lost = impl.legacy and not settled
    assert after_restart == on_b == ({} if lost else {"x": "written offline"})


# -- the weaknesses: shown by the legacy, absent from the reference -------------------------


@both
def test_w1_a_late_upload_is_never_pulled(impl: Impl, tmp_path: Path) -> None:
    """W1: b edits x offline at t≈100 and uploads it at t≈500; a synced at t≈300. The legacy
    pulls by edit time past a watermark of a's clock, so a's incremental syncs never see x."""

    async def scenario(world: World) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("seed", 0)
        await world.advance(5)
        await b.sync()
        world.disconnect("b")
        await world.advance(95)
        await b.put("x", "edited offline at t≈100")
        await world.advance(200)
        await a.sync()  # t≈300
        await world.advance(200)
        world.reconnect("b")
        await b.sync()  # t≈500: x reaches the vault
        await sync_rounds(world)
        return a.local(), documents(world, "x")

    on_a, on_vault = play(impl, tmp_path, scenario)
    assert [d["data"] for d in on_vault] == ["edited offline at t≈100"]
    if impl.legacy:
        assert "x" not in on_a
    else:
        assert on_a["x"] == "edited offline at t≈100"


@both
def test_w2_a_slow_clock_loses_its_newer_edit(impl: Impl, tmp_path: Path) -> None:
    """W2: b's clock is an hour slow. b sees a's edit of x, then edits x a minute later; by the
    wall clocks b's edit is older, so the legacy overwrites it with a's older data everywhere."""

    async def scenario(world: World) -> tuple[Any, Any, Any]:
        a, b = world.add_device("a"), world.add_device("b", offset=-HOUR)
        await a.put("x", "a's edit")
        await world.advance(5)
        await b.sync()
        await world.advance(MINUTE)
        await b.put("x", "b's newer edit")
        await world.advance(5)
        await sync_rounds(world)
        return a.local()["x"], b.local()["x"], b.app.items["x"]

    on_a, on_b, b_app = play(impl, tmp_path, scenario)
    winner = "a's edit" if impl.legacy else "b's newer edit"
    assert on_a == on_b == b_app == winner


@both
def test_w3_a_halted_context_is_skipped_for_good(impl: Impl, tmp_path: Path) -> None:
    """W3: context ``one`` succeeds and moves the one shared watermark, then ``two`` pulls from
    it: the legacy never even offers ``two``'s earlier entry (its first pass succeeds), where
    the reference halts on the refusal and delivers the entry later. Every later sync reports
    success, and the legacy never delivers the entry."""

    async def scenario(world: World) -> tuple[bool, list[bool], dict[str, Any]]:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("early", "two/early", context="two")
        await world.advance(5)
        world.behave("b", context="two", mode="refuse", refusals=1)
        first = bool(await b.sync())
        later: list[bool] = []
        for _ in range(3):
            await world.advance(MINUTE)
            later.append(bool(await b.sync()))
        return first, later, b.local("two")

    first, later, two = play(impl, tmp_path, scenario, contexts=("one", "two"))
    assert later == [True, True, True]
    if impl.legacy:
        assert first is True and two == {}
    else:
        assert first is False and two == {"early": "two/early"}


@both
def test_w3_a_fresh_device_restores_only_its_first_context(impl: Impl, tmp_path: Path) -> None:
    """W3: the legacy re-reads the one watermark before each context of a pass, so a fresh
    device's second context pulls from the watermark its first context has just written and
    restores nothing, for good; the reference restores both."""

    async def scenario(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
        a = world.add_device("a")
        await a.put("n", "one/n", context="one")
        await a.put("m", "two/m", context="two")
        await world.advance(5)
        await a.sync()
        await world.advance(MINUTE)
        b = world.add_device("b")
        await sync_rounds(world)
        return b.local("one"), b.local("two")

    one, two = play(impl, tmp_path, scenario, contexts=("one", "two"))
    assert one == {"n": "one/n"}
    assert two == ({} if impl.legacy else {"m": "two/m"})


@both
def test_w14_a_collection_that_cannot_be_created_is_skipped_and_the_pass_succeeds(
    impl: Impl, tmp_path: Path
) -> None:
    """W14: with the vault refusing writes, the first pass cannot create the collection: the
    legacy skips the context and reports success, the reference reports failure. Once the
    vault accepts writes again both upload the entry."""

    async def scenario(world: World) -> tuple[bool, list[Any]]:
        a = world.add_device("a")
        world.freeze()
        await a.put("x", 1)
        await world.advance(5)
        frozen = bool(await a.sync())
        world.unfreeze()
        await world.advance(5)
        await a.sync()
        return frozen, [d.get("data") for d in documents(world, "x")]

    frozen, uploaded = play(impl, tmp_path, scenario)
    assert frozen is impl.legacy
    assert uploaded == [1]


@both
def test_w4_racing_creators_leave_duplicates(impl: Impl, tmp_path: Path) -> None:
    """W4: a and b create x at the same moment; each upload finds no document, then inserts
    (the legacy never uses an atomic upsert), so the vault holds two documents for x, and
    nothing ever removes one."""

    async def scenario(world: World) -> tuple[int, int, Any, Any]:
        a, b = world.add_device("a"), world.add_device("b", offset=-1.0)
        for name in ("a", "b"):
            world.slow_link(name, (0.5, 0.5))  # lockstep: both look before either inserts
        await a.put("x", "created on a")
        await b.put("x", "created on b")
        await world.advance(30)
        raced = len(documents(world, "x"))
        for name in ("a", "b"):
            world.fast_link(name)
        await sync_rounds(world)
        return raced, len(documents(world, "x")), a.local()["x"], b.local()["x"]

    raced, after, on_a, on_b = play(impl, tmp_path, scenario)
    if impl.legacy:
        assert raced == after == 2
        # Incremental pulls never look back at the race (W1) and find_one answers with a's
        # document to both: b keeps its own creation for good.
        assert (on_a, on_b) == ("created on a", "created on b")
    else:
        assert after == 1
        assert on_a == on_b


@both
def test_w6_a_refusal_is_never_retried_and_blocks_uploads(impl: Impl, tmp_path: Path) -> None:
    """W6: b's app refuses a's entry once while b writes its own. The legacy's pass ends at the
    refusal, skipping b's upload, and nothing tries again: an hour later b still lacks a's
    entry and the vault still lacks b's."""

    async def scenario(world: World) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", "from a")
        await world.advance(5)
        world.behave("b", mode="refuse", refusals=1)
        await b.put("mine", "from b")
        await world.advance(HOUR)  # nobody calls sync() on b
        return b.local(), b.app.items, documents(world, "mine")

    local, app, uploaded = play(impl, tmp_path, scenario)
    if impl.legacy:
        assert local == app == {"mine": "from b"}
        assert uploaded == []
    else:
        assert local == app == {"mine": "from b", "x": "from a"}
        assert [d["data"] for d in uploaded] == ["from b"]


@both
def test_w7_a_remote_edit_leaves_a_local_delete_half_applied(impl: Impl, tmp_path: Path) -> None:
    """W7: a deletes x offline, then b edits x. When a syncs, the legacy's modification copies
    b's date and data but keeps a's deletionDate: a's record is deleted and current at once.
    The app was told to show b's edit, the helper's copy says deleted, and a's delete never
    reaches the vault."""

    async def scenario(world: World) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", "v1")
        await world.advance(5)
        await b.sync()
        world.disconnect("a")
        await a.remove("x")
        await world.advance(MINUTE)
        await b.put("x", "edited on b after a's delete")
        await world.advance(5)
        world.reconnect("a")
        await sync_rounds(world)
        return a.local(), a.app.items, documents(world, "x")

    local, app, on_vault = play(impl, tmp_path, scenario)
    assert app == {"x": "edited on b after a's delete"}
    assert [(d["data"], d["deletionDate"]) for d in on_vault] == [
        ("edited on b after a's delete", None)
    ]
    if impl.legacy:
        assert local == {}
    else:
        assert local == app


@both
def test_w8_equal_dates_never_converge(impl: Impl, tmp_path: Path) -> None:
    """W8: a and b (same clock) write x offline in the same millisecond with different data.
    Neither is strictly newer, so the legacy never pulls nor pushes either: they disagree
    forever."""

    async def scenario(world: World) -> tuple[Any, Any]:
        a, b = world.add_device("a"), world.add_device("b")
        world.disconnect("a")
        world.disconnect("b")
        before = world.now()
        await a.put("x", "from a")
        await b.put("x", "from b")
        assert world.now() == before  # the same instant on identical clocks
        world.reconnect("a")
        world.reconnect("b")
        await sync_rounds(world, rounds=4)
        return a.local()["x"], b.local()["x"]

    on_a, on_b = play(impl, tmp_path, scenario)
    if impl.legacy:
        assert (on_a, on_b) == ("from a", "from b")
    else:
        assert on_a == on_b


@both
def test_w9_an_idle_sync_asks_the_vault_about_every_key(impl: Impl, tmp_path: Path) -> None:
    """W9: with nothing to do, a legacy pass still sends one find_one per stored key (plus the
    collection creation and the pull); the reference's idle pass costs a few requests."""

    async def scenario(world: World) -> int:
        a = world.add_device("a")
        for i in range(40):
            await a.put(f"k{i}", i)
        await world.advance(5)
        await a.sync()
        await world.advance(5)
        before = world.links["a"].requests
        await a.sync()
        return world.links["a"].requests - before

    requests = play(impl, tmp_path, scenario)
    if impl.legacy:
        assert requests == 2 + 40
    else:
        assert requests <= 3


@both
def test_w13_an_entry_keyed_index_overwrites_the_key_list(impl: Impl, tmp_path: Path) -> None:
    """W13: the legacy stores entry k of context c under ``c_k`` and the key list under
    ``c_index``; an entry keyed ``index`` overwrites the list, so the other entries drop out
    of the local copy (and out of every later push)."""

    async def scenario(world: World) -> dict[str, Any]:
        a = world.add_device("a")
        world.disconnect("a")
        await a.put("x", 1)
        await a.put("index", 2)
        return a.local()

    local = play(impl, tmp_path, scenario)
    if impl.legacy:
        assert local == {}  # the list became an entry, then the entry became a list again
    else:
        assert local == {"x": 1, "index": 2}


@both
def test_holds_answers_as_the_local_copy_does(impl: Impl, tmp_path: Path) -> None:
    """The optional keyed lookup the callback checks use (``holds``) agrees with
    ``key in local_entries(context)`` on both: live, deleted, never written, a W7 record both
    deleted and current, and (legacy) entries that dropped out of the W13-overwritten index."""

    async def scenario(world: World) -> list[list[bool]]:
        a, b = world.add_device("a"), world.add_device("b")
        keys = ("x", "y", "z", "index", "never")
        seen: list[list[bool]] = []

        def check() -> None:
            local = a.impl.local_entries("notes")
            held = [a.holds("notes", key) for key in keys]
            assert held == [key in local for key in keys]
            seen.append(held)

        for key in ("x", "y", "z"):
            await a.put(key, f"{key} on a")
        await world.advance(5)
        await b.sync()
        check()
        world.disconnect("a")
        await a.remove("x")
        await a.remove("y")
        await b.put("x", "edited on b after a's delete")
        await world.advance(5)
        world.reconnect("a")
        await sync_rounds(world)
        check()
        world.disconnect("a")
        await a.put("index", 1)
        check()
        return seen

    seen = play(impl, tmp_path, scenario)
    assert seen[0] == [True, True, True, False, False]
    assert seen[1] == [not impl.legacy, False, True, False, False]  # W7 on the legacy
    assert seen[2] == ([False] * 5 if impl.legacy else [True, False, True, True, False])  # W13
