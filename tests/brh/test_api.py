"""The public API and its errors (SPEC §1, §11, CB-8, CB-9)."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import random
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brh import (
    BackupRestoreHelper,
    Entry,
    HelperClosedError,
    InvalidArgumentError,
    ReentrantCallError,
    SyncEvent,
    UnknownContextError,
)
from brh.entry import copy_json
from brh.hlc import Version
from brh.store import LocalStore, Record
from brh.validation import encode_data
from brh.wire import RemoteDoc
from simulator.timeloop import run
from tests.support import EPOCH, Device, close_all, fake_vault
from tests.unstorable import ACCEPTED, UNSTORABLE, Case, nest


def test_public_surface() -> None:
    """API-1: the names other code relies on are importable from ``brh``."""
    import brh

    for name in ["BackupRestoreHelper", "Entry", "SyncResult", "RetryPolicy", "LocalStore"]:
        assert name in brh.__all__ and hasattr(brh, name)


async def test_upsert_get_replace_and_dates() -> None:
    """API-2: upsert inserts then replaces; get returns the live entry with ms dates."""
    d = Device("a", fake_vault(), auto_sync=False)
    h = d.helper
    assert await h.get_database_entry("notes", "x") is None
    await h.upsert_database_entry("notes", "x", {"n": 1})
    first = await h.get_database_entry("notes", "x")
    await asyncio.sleep(2)
    await h.upsert_database_entry("notes", "x", {"n": 2})
    second = await h.get_database_entry("notes", "x")
    assert first is not None and second is not None
    assert first.data == {"n": 1} and second.data == {"n": 2}
    assert first.creation_date == int(EPOCH * 1000)
    assert second.creation_date == first.creation_date
    assert second.modification_date == int((EPOCH + 2) * 1000)
    assert second.deletion_date is None and not second.deleted
    await h.close()


async def test_delete_and_delete_locally_only() -> None:
    """API-3, DEL-1, DEL-4: a delete reaches the vault as a tombstone; locally_only does not."""
    vault = fake_vault()
    d = Device("a", vault, auto_sync=False)
    h = d.helper
    for key in ("x", "y"):
        await h.upsert_database_entry("notes", key, key)
    assert await h.sync()
    await h.delete_database_entry("notes", "x")
    await h.delete_database_entry("notes", "y", locally_only=True)
    await h.delete_database_entry("notes", "never-seen")  # DEL-4: nothing happens
    assert await h.get_database_entry("notes", "x") is None
    assert await h.get_database_entry("notes", "y") is None
    assert h.store.get("notes", "never-seen") is None
    assert await h.sync()
    docs = {doc["key"]: doc for doc in vault.documents("backup_notes")}
    assert docs["x"]["deletionDate"] is not None  # soft delete on the vault
    assert docs["y"]["deletionDate"] is None  # the vault was not told
    await h.close()


async def test_sync_result_is_truthy_iff_completed() -> None:
    """API-4: sync() returns a result that is truthy iff the pass completed."""
    vault = fake_vault()
    a, b = Device("a", vault), Device("b", vault, auto_sync=False)
    await a.put("x", 1)
    assert await a.helper.sync()
    b.app.refuse = lambda kind, entry: True
    result = await b.helper.sync()
    assert not result and result.reason == "refused" and result.refused == ("notes", "x")
    for d in (a, b):
        await d.helper.close()


async def test_wipe_touches_only_its_context() -> None:
    """API-5: wiping one context leaves the others alone."""
    d = Device("a", fake_vault(), contexts=("one", "two"), auto_sync=False)
    await d.put("k", 1, "one")
    await d.put("k", 2, "two")
    await d.helper.wipe_local_context_data("one")
    assert await d.helper.get_database_entry("one", "k") is None
    entry = await d.helper.get_database_entry("two", "k")
    assert entry is not None and entry.data == 2
    await d.helper.close()


async def test_close_refuses_further_calls_and_is_idempotent() -> None:
    """API-6, ERR-3: after close every call raises HelperClosedError; closing twice is fine."""
    vault = fake_vault()
    async with BackupRestoreHelper(vault, ":memory:", device_id="a", clock=lambda: EPOCH) as h:
        h.add_sync_context("notes", bool, bool, bool)
        await h.upsert_database_entry("notes", "k", 1)  # leaves a debounce timer armed
    assert h.closed
    await h.close()
    calls: list[Any] = [
        h.upsert_database_entry("notes", "k", 1),
        h.delete_database_entry("notes", "k"),
        h.get_database_entry("notes", "k"),
        h.sync(),
        h.wipe_local_context_data("notes"),
    ]
    for call in calls:
        with pytest.raises(HelperClosedError, match="after close"):
            await call
    with pytest.raises(HelperClosedError):
        h.add_sync_context("other", bool, bool, bool)
    await asyncio.sleep(10)  # the armed timer must not resurrect anything
    assert vault.request_count == 0


async def test_plain_and_async_callbacks() -> None:
    """API-7: plain functions and coroutine functions both work as callbacks."""
    vault = fake_vault()
    a, b = Device("a", vault), Device("b", vault)
    await a.put("x", 1)
    await a.helper.sync()
    await b.helper.sync()  # on_insert is plain
    await a.put("x", 2)
    await a.helper.sync()
    await b.helper.sync()  # on_modify is async
    assert b.app.kinds() == ["insert", "modify"] and b.app.items == {"x": 2}
    for d in (a, b):
        await d.helper.close()


def test_debug_logs_steps_without_payloads(caplog: pytest.LogCaptureFixture) -> None:
    """API-8: debug=True logs each step through logger 'brh'; data only with log_payloads."""

    async def main(log_payloads: bool) -> None:
        d = Device("a", fake_vault(), debug=True, log_payloads=log_payloads)
        await d.put("x", {"secret": "s3cr3t"})
        assert await d.helper.sync()
        await d.helper.close()

    with caplog.at_level(logging.DEBUG, logger="brh"):
        run(main(False), start=EPOCH)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "brh")
    assert "upsert notes/x" in text and "pushed" in text and "pass ends: completed" in text
    assert "s3cr3t" not in text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="brh"):
        run(main(True), start=EPOCH)
    assert "s3cr3t" in "\n".join(r.getMessage() for r in caplog.records)


def test_quiet_without_debug(caplog: pytest.LogCaptureFixture) -> None:
    """API-8: without debug, a normal pass logs nothing."""

    async def main() -> None:
        d = Device("a", fake_vault())
        await d.put("x", 1)
        assert await d.helper.sync()
        await d.helper.close()

    with caplog.at_level(logging.DEBUG, logger="brh"):
        run(main(), start=EPOCH)
    assert [r for r in caplog.records if r.name == "brh"] == []


def test_same_inputs_same_run() -> None:
    """API-9: with an injected clock and random generator (a simulated device seeds its own
    from its name), two runs are identical, incarnations and jitter included."""

    async def scenario() -> list[Any]:
        vault = fake_vault()
        a, b = Device("a", vault), Device("b", vault)
        b.app.refuse = lambda kind, entry: b.app.calls.total < 3  # refuse twice, then accept
        await a.put("x", 1)
        await a.put("y", 2)
        await asyncio.sleep(1)
        await b.helper.sync()
        await asyncio.sleep(600)  # retries happen on their own
        out = [vault.documents("backup_notes"), b.app.calls, asyncio.get_running_loop().time()]
        out.append([(r.op, r.collection, r.ok) for r in vault.requests])
        for d in (a, b):
            await d.helper.close()
        return out

    assert run(scenario(), start=EPOCH) == run(scenario(), start=EPOCH)


BAD_KEYS: list[tuple[Any, str]] = [
    ("", "empty"),
    (3, "must be a str"),
    (None, "must be a str"),
    ("k" * 1025, "limit"),
    ("a\x00b", "NUL"),
]
BAD_DATA: list[tuple[Any, str]] = [
    ({1, 2}, "set"),
    ({"a": float("nan")}, "nan"),
    ({1: "x"}, "non-string key"),
    (object(), "not JSON"),
    ({"big": "x" * (16 * 1024 * 1024)}, "16 MiB"),
]


@pytest.mark.parametrize(("key", "problem"), BAD_KEYS)
async def test_bad_keys_name_the_argument_and_change_nothing(key: Any, problem: str) -> None:
    """ERR-1: a bad key is refused, naming 'key', and nothing is written or synced."""
    vault = fake_vault()
    d = Device("a", vault)
    for call in (
        d.helper.upsert_database_entry("notes", key, 1),
        d.helper.delete_database_entry("notes", key),
        d.helper.get_database_entry("notes", key),
    ):
        with pytest.raises(InvalidArgumentError, match=problem) as info:
            await call
        assert info.value.argument == "key"
    await asyncio.sleep(5)
    assert d.helper.store.entries("notes", include_deleted=True) == []
    assert vault.request_count == 0  # no pass was started
    await d.helper.close()


@pytest.mark.parametrize(("data", "problem"), BAD_DATA)
async def test_bad_data_names_the_argument_and_changes_nothing(data: Any, problem: str) -> None:
    """ERR-1: data that is not JSON or exceeds 16 MiB is refused and the old value stays."""
    d = Device("a", fake_vault(), auto_sync=False)
    await d.helper.upsert_database_entry("notes", "k", "old")
    with pytest.raises(InvalidArgumentError, match=problem) as info:
        await d.helper.upsert_database_entry("notes", "k", data)
    assert info.value.argument == "data"
    entry = await d.helper.get_database_entry("notes", "k")
    assert entry is not None and entry.data == "old"
    await d.helper.close()


@pytest.mark.parametrize("name", ["", "has space", "$x", "x" * 101, "-lead", "a/b", 7, None, "ütf"])
def test_bad_context_names(name: Any) -> None:
    """ERR-1: context names the vault cannot use are refused, naming 'name'."""
    h = BackupRestoreHelper(fake_vault_sync(), ":memory:", device_id="a", clock=lambda: EPOCH)
    with pytest.raises(InvalidArgumentError) as info:
        h.add_sync_context(name, bool, bool, bool)
    assert info.value.argument == "name"


def fake_vault_sync() -> Any:
    from hivevault.vault import FakeVault

    return FakeVault(clock=lambda: EPOCH)


async def test_unknown_and_duplicate_contexts() -> None:
    """ERR-2: unknown contexts and duplicate registration are clear errors."""
    h = BackupRestoreHelper(fake_vault_sync(), ":memory:", device_id="a", clock=lambda: EPOCH)
    h.add_sync_context("notes", bool, bool, bool)
    with pytest.raises(InvalidArgumentError, match="already registered"):
        h.add_sync_context("notes", bool, bool, bool)
    with pytest.raises(UnknownContextError, match="add_sync_context") as info:
        await h.upsert_database_entry("nope", "k", 1)
    assert info.value.argument == "context"
    with pytest.raises(InvalidArgumentError, match="on_modify"):
        h.add_sync_context("other", bool, "not callable", bool)  # type: ignore[arg-type]
    await h.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("debounce", -1),
        ("page_size", 0),
        ("overlap", -1),
        ("tombstone_retention", 0),
        ("purge_interval", 0),
        ("stuck_threshold", 0),
        ("device_id", ""),
        ("clock", 5),
        ("retry", 3),
        ("store", 42),
        ("vault", object()),
    ],
)
def test_bad_constructor_options(option: str, value: Any) -> None:
    """ERR-1: a bad constructor option is refused with an error naming it."""
    kwargs: dict[str, Any] = {"vault": fake_vault_sync(), "store": ":memory:"}
    kwargs[option] = value
    vault, store = kwargs.pop("vault"), kwargs.pop("store")
    with pytest.raises(InvalidArgumentError) as info:
        BackupRestoreHelper(vault, store, **kwargs)
    assert info.value.argument == option


def test_store_belongs_to_one_device(tmp_path: Path) -> None:
    """ERR-4: reopening a store with another device id is refused; the same id is fine."""
    path = tmp_path / "device.sqlite"
    vault = fake_vault_sync()
    BackupRestoreHelper(vault, path, device_id="a").store.close()
    with pytest.raises(InvalidArgumentError, match="belongs") as info:
        BackupRestoreHelper(vault, path, device_id="b")
    assert info.value.argument == "device_id"
    again = BackupRestoreHelper(vault, path)
    assert again.device_id == "a"
    again.store.close()
    store = LocalStore(":memory:")
    helper = BackupRestoreHelper(vault, store, device_id="c")
    assert helper.store is store


async def test_reentrant_calls_fail_fast_with_a_reason() -> None:
    """CB-8 (W11): writes or syncs from inside a callback raise at once, never deadlock."""
    vault = fake_vault()
    a, b = Device("a", vault), Device("b", vault, auto_sync=False)
    errors: list[BaseException] = []
    spawned: list[asyncio.Task[None]] = []

    async def on_insert(entry: Entry) -> bool:
        for call in (
            b.helper.upsert_database_entry("notes", entry.key, "echo"),
            b.helper.delete_database_entry("notes", entry.key),
            b.helper.wipe_local_context_data("notes"),
            b.helper.sync(),
        ):
            try:
                await call
            except ReentrantCallError as exc:
                errors.append(exc)
        # fire-and-forget, as the original's apps did: fails inside the task
        spawned.append(asyncio.ensure_future(b.helper.upsert_database_entry("notes", "z", 1)))
        return True

    b.helper.add_sync_context("inbox", on_insert, bool, bool)
    await a.helper.upsert_database_entry("notes", "x", 1)
    a.helper.add_sync_context("inbox", bool, bool, bool)
    await a.helper.upsert_database_entry("inbox", "m", "hello")
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert len(errors) == 4
    assert "inside a sync callback" in str(errors[0]) and "'inbox'" in str(errors[0])
    with pytest.raises(ReentrantCallError):
        await spawned[0]
    assert b.helper.store.get("notes", "z") is None
    assert b.helper.store.get("inbox", "m") is not None  # the delivery itself went fine
    for d in (a, b):
        await d.helper.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


class _Flag(enum.IntEnum):
    ON = 1


@given(_json)
def test_copy_json_is_a_json_round_trip(value: Any) -> None:
    """CB-9: the copy a callback gets is what JSON would give back, sharing nothing mutable;
    values JSON normalises (subclasses, tuples, non-string keys) come back plain."""
    for original in (value, [value, _Flag.ON], {"t": (1, value)}, {1: value}):
        copied = copy_json(original)
        assert repr(copied) == repr(json.loads(json.dumps(original)))
        if isinstance(original, dict | list):
            assert copied is not original


def test_data_checks_find_what_json_cannot_carry_at_any_depth() -> None:
    """ERR-1: the data check accepts plain JSON up to 99 levels deep (MongoDB's 100 with the
    document around it) and names what is wrong below it (a NaN, a non-string key, a set),
    however the data is nested."""
    encode_data("k", nest(99))
    encode_data("k", nest(97, [1.5, True, None, "s", {"a": -0.0}]))
    for bad, message in [
        (nest(100), "deeper than 99"),
        (nest(5, float("nan")), "which JSON cannot carry"),
        (nest(6, {1: "a"}), "non-string key"),
        (nest(7, {1, 2}), "is a set"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            encode_data("k", bad)


@pytest.mark.parametrize("case", UNSTORABLE, ids=lambda case: case.name)
async def test_values_a_vault_cannot_store_are_refused_up_front(case: Case) -> None:
    """ERR-1 (tests/unstorable.py): data or a key a vault cannot store (integers beyond 64 bits,
    NaN, infinities, lone surrogates, NUL or a leading '$' in a field name, over 100 levels,
    over 16 MiB) is refused by upsert with InvalidArgumentError naming the argument and saying
    why, quickly (10**5000 is never turned into text), and nothing is written."""
    vault = fake_vault()
    d = Device("a", vault)
    await d.helper.upsert_database_entry("notes", "k", "old")
    await asyncio.sleep(5)
    requests = vault.request_count
    key, data = (case.value, "new") if case.argument == "key" else ("k", case.value)
    calls: list[Coroutine[Any, Any, object]] = [d.helper.upsert_database_entry("notes", key, data)]
    if case.argument == "key":
        calls += [
            d.helper.delete_database_entry("notes", key),
            d.helper.get_database_entry("notes", key),
        ]
    for call in calls:
        with pytest.raises(InvalidArgumentError) as info:
            await call
        assert info.value.argument == case.argument
        assert case.message in info.value.problem.lower()
    await asyncio.sleep(5)
    entry = await d.helper.get_database_entry("notes", "k")
    assert entry is not None and entry.data == "old"
    assert [r.key for r in d.helper.store.entries("notes", include_deleted=True)] == ["k"]
    assert vault.request_count == requests  # no pass was started
    await d.helper.close()


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
async def test_values_that_look_unstorable_but_are_not_reach_every_device(case: Case) -> None:
    """ERR-1 (tests/unstorable.py): the largest 64-bit integers, extreme finite floats, NUL in
    a string value, astral characters, dotted names, '$' after the first character and 99
    levels of nesting are accepted, stored by the vault and delivered as they were."""
    vault = fake_vault()
    a, b = Device("a", vault), Device("b", vault)
    key, data = (case.value, "v") if case.argument == "key" else ("k", case.value)
    await a.helper.upsert_database_entry("notes", key, data)
    assert await a.helper.sync()
    assert await b.helper.sync()
    entry = await b.helper.get_database_entry("notes", key)
    assert entry is not None and repr(entry.data) == repr(data)
    await close_all(a, b)


def test_the_values_the_app_gets_are_frozen_and_the_stores_are_plain() -> None:
    """Entry and SyncEvent, which the app and its listener get, are frozen dataclasses: they
    compare, hash, repr and replace, and refuse assignment. Record and RemoteDoc, internal to
    the helper, are plain slotted dataclasses (never changed once built); a Version is a tuple
    whose order is version order."""
    version = Version(1, 0, "d")
    values: list[Any] = [Entry("k", "v", 2, 3), SyncEvent("pass_started", "d", full=True)]
    for value in values:
        again = dataclasses.replace(value)
        assert again == value and repr(again) == repr(value) and again is not value
        assert hash(again) == hash(value)
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.key = "other"
    records: list[Any] = [
        Record("c", "k", {"a": 1}, 1, 2, None, version),
        RemoteDoc("k", 1, 2, 3, None, version, 7, None),
    ]
    for record in records:
        again = dataclasses.replace(record)
        assert again == record and repr(again) == repr(record) and again is not record
        assert not hasattr(record, "__dict__")  # slotted
    assert Entry("k", 1, 2, 3).deletion_date is None
    assert Record("c", "k", 1, 1, 2, None, version).base is None
    assert Version(1, 0, "a") < Version(1, 0, "b") < Version(1, 1, "") < Version(2, 0, "")
    assert Version.decode(version.encode()) == version and str(version) == version.encode()


async def test_callbacks_get_a_private_copy() -> None:
    """CB-9: mutating the entry's data in a callback does not change the helper's copy."""
    vault = fake_vault()
    a = Device("a", vault)
    b = BackupRestoreHelper(vault, ":memory:", device_id="b", clock=lambda: EPOCH)

    def on_insert(entry: Entry) -> bool:
        entry.data["list"].append("mutated")
        return True

    b.add_sync_context("notes", on_insert, bool, bool)
    await a.put("x", {"list": [1]})
    await a.helper.sync()
    assert await b.sync()
    entry = await b.get_database_entry("notes", "x")
    assert entry is not None and entry.data == {"list": [1]}
    await a.helper.close()
    await b.close()


def test_events_follow_the_work_in_order(caplog: pytest.LogCaptureFixture) -> None:
    """API-10: a listener sees passes, callbacks (with versions), uploads; if it raises, the
    sync goes on."""

    async def main() -> list[SyncEvent]:
        vault = fake_vault()
        a = Device("a", vault, auto_sync=False)
        await a.put("x", 1)
        assert await a.helper.sync()
        seen: list[SyncEvent] = []

        def listener(event: SyncEvent) -> None:
            seen.append(event)
            if event.kind == "callback":
                raise RuntimeError("observer bug")

        b = BackupRestoreHelper(
            vault,
            ":memory:",
            device_id="b",
            clock=lambda: EPOCH,
            listener=listener,
            auto_sync=False,
        )
        b.add_sync_context("notes", lambda e: e.key != "x", bool, bool)
        assert not await b.sync()  # refuses x
        b._contexts["notes"].on_insert = bool
        await b.upsert_database_entry("notes", "y", 2)
        assert await b.sync()
        await a.helper.close()
        await b.close()
        return seen

    with caplog.at_level(logging.ERROR, logger="brh"):
        events = run(main(), start=EPOCH)
    summary = [(e.kind, e.key, e.accepted) for e in events]
    assert summary == [
        ("pass_started", None, None),
        ("callback", "x", False),
        ("pass_finished", None, None),
        ("pass_started", None, None),
        ("callback", "x", True),
        ("pushed", "y", None),
        ("pass_finished", None, None),
    ]
    assert events[1].version is not None and ".a~" in events[1].version
    assert events[2].result is not None and events[2].result.reason == "refused"
    assert all(e.device == "b" for e in events)
    assert any("listener raised" in r.getMessage() for r in caplog.records)


def test_every_helper_draws_its_own_incarnation(tmp_path: Path) -> None:
    """ORD-1, API-9 (issue 11): by default the random generator is seeded by the operating
    system, so two installations of one device id (a reinstall) write under different
    incarnations; a helper given a seeded generator draws the same one each time, and a
    version names the device, then the incarnation."""

    async def main() -> list[str]:
        drawn = []
        for number in range(3):
            helper = BackupRestoreHelper(
                fake_vault(), tmp_path / f"store-{number}.sqlite", device_id="phone"
            )
            drawn.append(helper.incarnation)
            await helper.close()
        for _ in range(2):
            helper = BackupRestoreHelper(
                fake_vault(), ":memory:", device_id="phone", rng=random.Random(7)
            )
            helper.add_sync_context("notes", bool, bool, bool)
            await helper.upsert_database_entry("notes", "k", 1)
            record = helper.store.get("notes", "k")
            assert record is not None
            assert record.version.writer == f"phone~{helper.incarnation}"
            drawn.append(helper.incarnation)
            await helper.close()
        return drawn

    drawn = run(main(), start=EPOCH)
    assert all(len(i) == 8 and int(i, 16) >= 0 for i in drawn)
    assert len(set(drawn[:3])) == 3 and drawn[3] == drawn[4]
