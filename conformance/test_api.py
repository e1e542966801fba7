"""The helper's API (SPEC §1), its data on the vault (§2), its errors (§11) and the callbacks'
own copies (CB-9), judged from outside.

Every assertion reads only what the harness observes of any implementation: what the helper's
calls return or raise, the callbacks and their answers, each device's local copy through the
public API, the requests on a device's link (their count) and the fake vault's documents in the
original helper's fields. Tests that write to or read from the fake vault directly are skipped
on a live vault (the reason is given).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from brh import Entry, HelperClosedError
from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.impl import MissingOperationError, read_entry
from simulator.live import UnsupportedFault
from simulator.world import World
from simulator.world.app import AppModel


def _fake_vault_only(world: World, why: str) -> None:
    """Skip on a live vault: the test reads or writes the fake vault's documents directly."""
    if world.server.live:
        raise UnsupportedFault(f"{why}: needs the fake vault's documents")


def _documents(world: World, context: str) -> list[dict[str, Any]]:
    """The fake vault's documents of a context's collection (``backup_<context>``), as stored."""
    collection = "backup_" + context
    if collection not in world.server.vault.collection_names():
        return []
    return world.server.vault.documents(collection)


def _runs(sequence: list[str]) -> list[str]:
    """``sequence`` with consecutive repeats collapsed: ``a a b a`` gives ``a b a``."""
    return [item for i, item in enumerate(sequence) if i == 0 or sequence[i - 1] != item]


async def _error_of(call: Callable[[], Awaitable[Any]], what: str) -> Exception:
    """The error ``call()`` raised; an AssertionError if it returned. An operation the
    implementation does not offer is the harness's error, raised as it is."""
    try:
        await call()
    except MissingOperationError:
        raise
    except Exception as exc:  # any implementation's own error type will do
        return exc
    raise AssertionError(f"{what} was accepted")


# -- API-1: contexts sync in registration order -------------------------------------------------

ORDER = ("photos", "contacts", "notes")
"""Registration order: neither the names' order nor its reverse, nor the order of the writes."""


@clause("API-1", level="core")
def test_contexts_sync_in_the_order_they_were_registered(brh_sim: Sim) -> None:
    """API-1: contexts registered as photos, contacts, notes sync in that order. A fresh
    device's first pass delivers every change of photos, then of contacts, then of notes,
    although they were written in the opposite order; a later pass delivers new changes in the
    same order; and the device's own offline changes are uploaded in that order too (the order
    the vault created their documents in)."""

    async def scenario(world: World) -> None:
        tablet = world.add_device("tablet")
        for context in reversed(ORDER):
            for i in range(2):
                await tablet.put(f"{context}-{i}", i, context)
        await world.advance(5)
        assert await tablet.sync()
        await world.advance(MINUTE)

        phone = world.add_device("phone")
        delivered: list[str] = []
        for context in ORDER:

            def note(kind: str, entry: Entry, context: str = context) -> bool:
                delivered.append(context)
                return False  # never refuse: only note the order

            phone.apps[context].refuse = note
        world.disconnect("phone")
        for context in reversed(ORDER):
            await phone.put(f"{context}-mine", "from the phone", context)
        await world.advance(MINUTE)
        world.reconnect("phone")
        assert await phone.sync()
        assert len(delivered) == 6 and _runs(delivered) == list(ORDER), (
            f"a first pass delivered the contexts' changes in this order: {delivered}"
        )
        if not world.server.live:
            mine = sorted(
                (str(doc["_id"]), context)
                for context in ORDER
                for doc in _documents(world, context)
                if doc.get("key") == f"{context}-mine"
            )
            assert [context for _, context in mine] == list(ORDER), (
                f"the phone's uploads reached the vault in this order: {mine}"
            )

        await world.advance(MINUTE)
        delivered.clear()
        for context in reversed(ORDER):
            await tablet.put(f"{context}-later", "later", context)
        await world.advance(5)
        assert await tablet.sync()
        await world.advance(5)
        assert await phone.sync()
        assert delivered == list(ORDER), (
            f"a later pass delivered the contexts' changes in this order: {delivered}"
        )

    brh_sim.run(scenario, contexts=ORDER)


# -- API-2: upsert inserts or replaces; get returns the live entry or nothing ------------------


@clause("API-2", level="core")
def test_upsert_inserts_or_replaces_and_get_returns_the_live_entry(brh_sim: Sim) -> None:
    """API-2: ``get_database_entry`` returns nothing for a key never written, the data of the
    last upsert after an insert and after a replace, nothing once the key is deleted (locally
    or on another device), and the new data when a deleted key is written again; nothing for
    the same key in another context. Another device's local copy follows."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")

        async def data_of(device: Any, key: str, context: str = "notes") -> Any:
            entry = await device.get(key, context)
            if entry is None:
                return None
            assert entry.key == key, f"get_database_entry({key!r}) returned key {entry.key!r}"
            return ("data", entry.data)

        assert await data_of(phone, "x") is None
        await phone.put("x", {"v": 1})
        assert await data_of(phone, "x") == ("data", {"v": 1})
        await phone.put("x", {"v": 2})
        assert await data_of(phone, "x") == ("data", {"v": 2}), "an upsert did not replace"
        await phone.put("y", [1, 2])
        assert await data_of(phone, "x", "contacts") is None
        await phone.remove("x")
        assert await data_of(phone, "x") is None, "a deleted entry is still returned"
        assert phone.local() == {"y": [1, 2]}
        await phone.put("x", "written again")
        assert await data_of(phone, "x") == ("data", "written again"), (
            "a key deleted and written again is not returned"
        )
        assert phone.local() == {"x": "written again", "y": [1, 2]}
        await world.advance(5)
        await sync_all(world)
        assert await data_of(tablet, "x") == ("data", "written again")
        assert await data_of(tablet, "y") == ("data", [1, 2])
        assert tablet.local() == {"x": "written again", "y": [1, 2]}

        await world.advance(MINUTE)
        await tablet.remove("y")
        await tablet.put("x", "replaced on the tablet")
        await world.advance(5)
        await sync_all(world)
        assert await data_of(phone, "y") is None, "a key deleted on another device is returned"
        assert await data_of(phone, "x") == ("data", "replaced on the tablet")
        assert phone.local() == tablet.local() == {"x": "replaced on the tablet"}

    brh_sim.run(scenario, contexts=("notes", "contacts"))


# -- API-4: sync() reports whether the pass completed -------------------------------------------


@clause("API-4", level="robust", weakness="W14")
def test_sync_reports_whether_its_pass_completed(brh_sim: Sim) -> None:
    """API-4: ``sync()`` is truthy when its pass completed and falsy when it did not: a
    callback refused a change, the vault was down (W14: the original reports success), the
    vault refused the writes (frozen); and truthy again once the same work goes through.
    ``sync(full=True)`` completes too, and re-delivers nothing the device already has."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        assert await phone.sync(), "a pass with nothing to do reported it did not complete"
        await world.advance(5)
        await tablet.put("a", "from the tablet")
        await world.advance(5)
        assert await tablet.sync()

        phone.app.refuse = lambda kind, entry: True
        assert not await phone.sync(), "a pass whose callback refused reported it completed"
        phone.app.refuse = None
        await world.advance(MINUTE)
        assert await phone.sync()
        assert phone.app.items == {"a": "from the tablet"}

        world.take_down()
        await phone.put("b", "written while the vault was down")
        await world.advance(5)
        assert not await phone.sync(), "a pass that reached no vault reported it completed"
        world.bring_up()
        await world.advance(MINUTE)
        assert await phone.sync()

        world.freeze()
        await phone.put("c", "written while the vault was frozen")
        await world.advance(5)
        assert not await phone.sync(), "a pass whose uploads failed reported it completed"
        world.unfreeze()
        await world.advance(MINUTE)
        assert await phone.sync()

        calls = phone.app.calls.total
        assert await phone.sync(full=True), "a full pass with nothing new did not complete"
        assert phone.app.calls.since(calls) == [], "a full pass re-delivered known versions"
        await world.advance(5)
        assert await tablet.sync()
        expected = {
            "a": "from the tablet",
            "b": "written while the vault was down",
            "c": "written while the vault was frozen",
        }
        assert tablet.app.items == phone.local() == expected

    brh_sim.run(scenario)


# -- API-6, ERR-3: close ----------------------------------------------------------------------


async def _raises_closed(call: Callable[[], Awaitable[Any]], what: str) -> None:
    error = await _error_of(call, f"{what} after close()")
    assert isinstance(error, HelperClosedError) or "closed" in str(error).lower(), (
        f"{what} after close() raised {type(error).__name__}: {error} (expected a 'closed' error)"
    )


@clause("API-6", "ERR-3", level="robust")
def test_close_stops_the_running_pass_and_the_timers_and_later_calls_raise(
    brh_sim: Sim,
) -> None:
    """API-6: ``close()`` made while a pass waits on a slow callback returns at once (within a
    second of virtual time), and so does the ``sync()`` that waited for the pass, reporting it
    did not complete; nothing more is delivered and no request is sent after it. A helper
    closed while a failed pass's retry and a write's own pass are pending sends nothing once
    the vault is back. ERR-3: then every call (upsert, delete, get, sync, wipe, add a context)
    raises a "closed" error, and closing again is harmless."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        link = world.links["phone"]
        for i in range(3):
            await tablet.put(f"k{i}", i)
        await world.advance(5)
        assert await tablet.sync()

        world.behave("phone", mode="slow", delay=10.0)
        running = asyncio.ensure_future(phone.sync())
        await world.advance(5)
        assert not running.done(), "the phone's pass should be in its first callback"
        closing = asyncio.ensure_future(world.crash("phone"))
        done, _ = await asyncio.wait({closing}, timeout=1.0)
        assert done, "close() waited for the running pass instead of stopping it"
        closing.result()
        done, _ = await asyncio.wait({running}, timeout=1.0)
        assert done, "the sync() of a pass stopped by close() did not return"
        assert not running.cancelled(), "the sync() of a pass stopped by close() was cancelled"
        assert running.exception() is None, (
            f"the sync() of a pass stopped by close() raised {running.exception()!r}"
        )
        assert not running.result(), "a pass stopped by close() reported it completed"
        sent = link.requests
        await world.advance(10 * MINUTE)
        assert link.requests == sent, f"{link.requests - sent} requests sent after close()"
        keys = {key for _, key, _ in phone.app.calls}
        assert len(keys) <= 1, f"callbacks made after close(): {list(phone.app.calls)}"

        world.behave("phone", mode="apply")
        await world.restart("phone")
        world.take_down()
        await phone.put("during the outage", 1)
        await world.advance(3)  # its pass failed: a retry is due
        await phone.put("just written", 2)  # its own pass is due too
        helper = phone.impl
        await world.crash("phone")
        world.bring_up()
        sent = link.requests
        await world.advance(10 * MINUTE)
        assert link.requests == sent, f"{link.requests - sent} requests sent after close()"

        await _raises_closed(lambda: helper.upsert_database_entry("notes", "z", 1), "upsert")
        await _raises_closed(lambda: helper.delete_database_entry("notes", "k0"), "delete")
        await _raises_closed(lambda: read_entry(helper, "notes", "k0"), "get_database_entry")
        await _raises_closed(lambda: helper.sync(), "sync")
        await _raises_closed(lambda: helper.wipe_local_context_data("notes"), "wipe")
        app = AppModel()

        async def register() -> None:
            helper.add_sync_context("later", app.on_insert, app.on_modify, app.on_delete)

        await _raises_closed(register, "add_sync_context")
        await helper.close()  # closing twice is harmless
        assert tablet.app.calls.total == 0

    brh_sim.run(scenario)


# -- DATA-1: one collection per context, backup_<context> --------------------------------------


@clause("DATA-1", level="core")
def test_each_context_lives_in_its_own_backup_collection(brh_sim: Sim) -> None:
    """DATA-1: the entries of context ``notes`` go to the vault collection ``backup_notes``,
    those of ``contacts`` to ``backup_contacts``, and no other collection is made. The
    collection may exist already ("already exists" is no error): a device whose first pass
    finds ``backup_notes`` made by someone else, with an entry in the original helper's fields,
    completes its pass and restores that entry; so does a second device, for which both
    collections exist."""

    async def scenario(world: World) -> None:
        _fake_vault_only(world, "a collection made beforehand")
        vault = world.server.vault
        await vault.create_collection("backup_notes")
        ms = int(world.server.clock() * 1000)
        original = {"n": 1}
        await vault.insert_one(
            "backup_notes",
            {
                "key": "from the original",
                "data": original,
                "creationDate": ms,
                "modificationDate": ms,
                "deletionDate": None,
            },
        )
        await world.advance(MINUTE)
        phone = world.add_device("phone")
        await phone.put("n1", "a note", "notes")
        await phone.put("c1", "a contact", "contacts")
        await world.advance(5)
        assert await phone.sync(), "a pass did not complete where backup_notes existed already"
        assert phone.apps["notes"].items == {"from the original": original, "n1": "a note"}
        assert vault.collection_names() == ["backup_contacts", "backup_notes"]
        assert {d.get("key") for d in _documents(world, "notes")} == {"from the original", "n1"}
        assert {d.get("key") for d in _documents(world, "contacts")} == {"c1"}

        tablet = world.add_device("tablet")
        assert await tablet.sync(), "a pass did not complete where both collections existed"
        assert tablet.apps["notes"].items == {"from the original": original, "n1": "a note"}
        assert tablet.apps["contacts"].items == {"c1": "a contact"}
        assert vault.collection_names() == ["backup_contacts", "backup_notes"]

    brh_sim.run(scenario, contexts=("notes", "contacts"))


# -- DATA-2: the original helper's fields, dates in milliseconds -------------------------------


def _ms_near(value: Any, seconds: float, what: str) -> int:
    """``value`` must be integer milliseconds within a few seconds of ``seconds``."""
    assert type(value) is int, f"{what} is {value!r}: expected integer milliseconds"
    low, high = int(seconds * 1000) - 2_000, int(seconds * 1000) + 30_000
    assert low <= value <= high, (
        f"{what} is {value}, expected milliseconds since the epoch near {int(seconds * 1000)}"
    )
    return value


@clause("DATA-2", level="core")
def test_vault_documents_carry_the_original_helpers_fields_in_milliseconds(brh_sim: Sim) -> None:
    """DATA-2: each entry is one document with ``key``, ``data``, ``creationDate`` and
    ``modificationDate`` (integer milliseconds since the epoch) and ``deletionDate`` (null while
    live, milliseconds once deleted): created at the first write, modified at the last (an
    edit keeps the creation date), deleted at the delete."""

    async def scenario(world: World) -> None:
        _fake_vault_only(world, "reads the documents' fields")
        phone = world.add_device("phone")
        created = phone.clock()
        await phone.put("x", {"text": "first", "tags": ["a"]})
        await phone.put("y", [1, 2])
        await phone.put("z", "zed")
        await world.advance(5)
        assert await phone.sync()
        await world.advance(10 * MINUTE)
        edited = phone.clock()
        await phone.put("x", {"text": "edited", "tags": []})
        await phone.remove("y")
        await world.advance(5)
        assert await phone.sync()

        docs: dict[str, dict[str, Any]] = {}
        for doc in _documents(world, "notes"):
            key = doc.get("key")
            assert isinstance(key, str), f"a document without a string key: {doc}"
            assert key not in docs, f"two documents of key {key!r}"
            docs[key] = doc
        assert sorted(docs) == ["x", "y", "z"]
        x, y, z = docs["x"], docs["y"], docs["z"]
        assert x.get("data") == {"text": "edited", "tags": []}
        assert z.get("data") == "zed"
        x_created = _ms_near(x.get("creationDate"), created, "x's creationDate")
        _ms_near(x.get("modificationDate"), edited, "x's modificationDate after its edit")
        assert x_created < x["modificationDate"]
        assert x.get("deletionDate") is None, f"a live entry's deletionDate: {x['deletionDate']}"
        _ms_near(z.get("creationDate"), created, "z's creationDate")
        _ms_near(z.get("modificationDate"), created, "z's modificationDate")
        assert z.get("deletionDate") is None
        _ms_near(y.get("creationDate"), created, "y's creationDate")
        deleted = _ms_near(y.get("deletionDate"), edited, "y's deletionDate")
        _ms_near(y.get("modificationDate"), edited, "y's modificationDate after its delete")
        assert y["creationDate"] <= deleted

    brh_sim.run(scenario)


# -- DATA-5: local entries are addressed by (context, key) -------------------------------------

ADDRESSES: dict[str, dict[str, str]] = {
    "notes": {
        "x": "x in notes",
        "b_c": "b_c in notes",
        "cursor": "a key named like bookkeeping",
        "clock": "another",
        "device_id": "and another",
        "index": "a key named like the original's key list",
        "__proto__": "a key named like an object internal",
    },
    "a": {"x": "x in a", "b_c": "b_c in a"},
    "a_b": {"x": "x in a_b", "c": "c in a_b"},
}
"""One key in three contexts, keys that join with their context to the same text
(``a`` + ``b_c`` and ``a_b`` + ``c``), and keys named like a helper's bookkeeping."""


@clause("DATA-5", level="robust", weakness="W13")
def test_local_entries_are_addressed_by_context_and_key(brh_sim: Sim) -> None:
    """DATA-5: one key written in three contexts is three entries; ``(a, b_c)`` and
    ``(a_b, c)`` are two; keys named like bookkeeping are entries like any other. Each
    context's local copy and ``get_database_entry`` show exactly what was written to it, before
    and after syncs; deleting x in one context and wiping another leave the rest alone; another
    device restores each context exactly."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for context, entries in ADDRESSES.items():
            for key, value in entries.items():
                await phone.put(key, value, context)

        async def check(expected: dict[str, dict[str, str]], when: str) -> None:
            for context, entries in expected.items():
                assert phone.local(context) == entries, f"{when}: context {context!r}"
                for key in {k for e in ADDRESSES.values() for k in e}:
                    entry = await phone.get(key, context)
                    got = None if entry is None else entry.data
                    assert got == entries.get(key), (
                        f"{when}: get_database_entry({context!r}, {key!r}) gave {got!r}"
                    )

        await check(ADDRESSES, "after the writes")
        await world.advance(5)
        assert await phone.sync()
        await check(ADDRESSES, "after a sync")

        await phone.remove("x", "notes")
        expected = {
            c: {k: v for k, v in e.items() if (c, k) != ("notes", "x")}
            for c, e in ADDRESSES.items()
        }
        await check(expected, "after deleting x in notes")
        await world.advance(5)
        await sync_all(world)
        for context, entries in expected.items():
            assert tablet.local(context) == tablet.apps[context].items == entries, context

        await world.wipe("phone", "a")
        await check({**expected, "a": {}}, "after wiping context a")
        assert await phone.sync()
        await check(expected, "after restoring context a")
        assert phone.apps["a"].items == expected["a"]

    brh_sim.run(scenario, contexts=tuple(ADDRESSES))


# -- DATA-6: documents that are not entries are skipped ----------------------------------------

PAGE = 4
"""The page size asked of the helper, so that pages mix entries and other documents."""


def _not_entries(ms: int) -> list[dict[str, Any]]:
    """Documents in a context's collection that are not entries (no string key, or no integer
    modificationDate)."""
    return [
        {"note": "a document without a key"},
        {"key": 42, "data": "a number for a key", "creationDate": ms, "modificationDate": ms},
        {"key": None, "data": "a null key", "modificationDate": ms, "deletionDate": None},
        {"key": ["a", "list"], "data": "a list for a key", "modificationDate": ms},
        {"key": "no date", "data": "no modificationDate", "creationDate": ms},
        {"key": "text date", "data": "a text date", "modificationDate": "yesterday"},
    ]


@clause("DATA-6", level="robust")
def test_documents_that_are_not_entries_are_skipped_and_never_stop_a_pass(brh_sim: Sim) -> None:
    """DATA-6: six documents that are not entries (no key, a number, null or list for a key,
    no modificationDate, a text one) are put in the context's collection between entries,
    across page boundaries (``page_size`` 4). The writer's passes still complete; a fresh
    device restores every entry and makes no callback for the others; later entries still
    arrive; the other documents stay as they were."""

    async def scenario(world: World) -> None:
        _fake_vault_only(world, "puts documents in the vault directly")
        vault = world.server.vault
        tablet = world.add_device("tablet")
        entries = {f"e{i}": i for i in range(5)}
        for key, value in entries.items():
            await tablet.put(key, value)
        await world.advance(5)
        assert await tablet.sync()
        junk = _not_entries(int(world.server.clock() * 1000))
        for doc in junk:
            await vault.insert_one("backup_notes", doc)
            await tablet.put(f"after {len(entries)}", len(entries))
            entries[f"after {len(entries)}"] = len(entries)
        await world.advance(5)
        assert await tablet.sync(), "a pass with other documents in the vault did not complete"

        phone = world.add_device("phone")
        assert await phone.sync(), "a first pass over other documents did not complete"
        assert phone.app.items == phone.local() == entries
        assert sorted(phone.app.calls) == sorted(("insert", k, v) for k, v in entries.items())
        await world.advance(MINUTE)
        await tablet.put("last", "written after")
        await world.advance(5)
        assert await tablet.sync()
        calls = phone.app.calls.total
        assert await phone.sync()
        assert phone.app.calls.since(calls) == [("insert", "last", "written after")]

        def strip(doc: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in doc.items() if k not in ("_id", "created", "modified")}

        left = [d for d in _documents(world, "notes") if strip(d) in junk]
        assert len(left) == len(junk), f"documents that are not entries were changed: {left}"
        # The end-of-run checks read the vault as entries; these documents have no part there.
        await vault.delete_many("backup_notes", {"_id": {"$in": [d["_id"] for d in left]}})

    brh_sim.run(scenario, helper_options={"page_size": PAGE})


# -- ERR-2: unknown contexts, contexts registered twice ----------------------------------------


@clause("ERR-2", "API-1", level="robust")
def test_an_unknown_context_and_a_second_registration_are_errors(brh_sim: Sim) -> None:
    """ERR-2: an upsert, a delete, a get and a wipe naming a context never registered each
    raise an error that names it; registering a context name a second time raises too
    (API-1: each context is registered once). None of them changes anything: the local copy
    and the vault keep what they had, and the first registration's callbacks still receive the
    context's changes (the second one's never)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        helper = phone.impl_for("notes")
        await phone.put("x", 1)
        await world.advance(5)
        await sync_all(world)

        calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("upsert", lambda: helper.upsert_database_entry("nope", "x", 2)),
            ("delete", lambda: helper.delete_database_entry("nope", "x")),
            ("get_database_entry", lambda: read_entry(helper, "nope", "x")),
            ("wipe", lambda: helper.wipe_local_context_data("nope")),
        ]
        for what, call in calls:
            error = await _error_of(call, f"{what} in an unregistered context")
            assert "nope" in str(error), f"{what}: the error does not name the context: {error!r}"

        intruder = AppModel()

        async def register_again() -> None:
            helper.add_sync_context(
                "notes", intruder.on_insert, intruder.on_modify, intruder.on_delete
            )

        await _error_of(register_again, "a second registration of context 'notes'")
        assert phone.local() == {"x": 1}
        assert await phone.sync()

        await world.advance(MINUTE)
        await tablet.put("x", 2)
        await tablet.put("y", 3)
        await world.advance(5)
        await sync_all(world)
        assert phone.app.items == phone.local() == {"x": 2, "y": 3}
        assert intruder.calls.total == 0, (
            f"the second registration's callbacks got {intruder.calls}"
        )

    brh_sim.run(scenario)


# -- CB-9: a callback gets its own copy ---------------------------------------------------------


@dataclass
class _ScribblingApp(AppModel):
    """An app that keeps a copy of what it is given in its model, then writes on the object it
    received (marks it seen, appends to its lists): the helper's copy must not change."""

    scribbled: int = 0

    def _apply(self, kind: str, entry: Entry) -> None:
        if kind != "delete":
            self.items[entry.key] = copy.deepcopy(entry.data)
        self.scribbled += _scribble(entry.data)


def _scribble(value: Any) -> int:
    """Change every dict and list inside ``value`` in place; how many were changed."""
    changed = 0
    if isinstance(value, dict):
        for item in list(value.values()):
            changed += _scribble(item)
        value["seen by the app"] = True
        changed += 1
    elif isinstance(value, list):
        for item in list(value):
            changed += _scribble(item)
        value.append("appended by the app")
        changed += 1
    return changed


@clause("CB-9", level="robust")
def test_a_callback_gets_its_own_copy_of_the_data(brh_sim: Sim) -> None:
    """CB-9: the tablet's app changes, in place, the data its callbacks receive (an insertion,
    then a modification, of nested objects and lists). The tablet's local copy,
    ``get_database_entry``, the vault and a device restoring later keep the data as written;
    and nothing is uploaded or delivered again because of it."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        phone.add_context("notes")
        tablet = world.add_device("tablet")
        app = _ScribblingApp()
        tablet.add_context("notes", app)
        first = {"x": {"tags": ["a", "b"], "meta": {"n": 1}}, "y": [{"deep": [1]}, 2]}
        for key, value in first.items():
            await phone.put(key, copy.deepcopy(value))
        await world.advance(5)
        assert await phone.sync()
        assert await tablet.sync()
        assert app.scribbled >= 2, "the app did not get the data to change"
        assert app.items == first
        assert tablet.local() == first, "the app's change to what it was given changed the entry"
        entry = await tablet.get("x")
        assert entry is not None and entry.data == first["x"]

        await world.advance(MINUTE)
        edited = {"tags": ["c"], "meta": {"n": 2}}
        await phone.put("x", copy.deepcopy(edited))
        await world.advance(5)
        assert await phone.sync()
        assert await tablet.sync()
        second = {**first, "x": edited}
        assert ("modify", "x") in [(kind, key) for kind, key, _ in app.calls]
        assert tablet.local() == app.items == second
        await world.advance(MINUTE)
        assert await tablet.sync()
        if not world.server.live:
            assert world.vault_live("notes") == second
        late = world.add_device("late")
        late.add_context("notes")
        assert await late.sync()
        assert late.apps["notes"].items == second
        calls = phone.apps["notes"].calls.total
        await world.advance(MINUTE)
        assert await phone.sync()
        assert phone.apps["notes"].calls.total == calls, "the app's changes reached the vault"

    brh_sim.run(scenario, contexts=())
