"""Several devices sharing one fake vault, on virtual time (SPEC §3–§9).

Each test is a short story; its docstring names the clauses and, where it applies, the weakness
of the original helper (W1–W14) it guards against.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from brh import BackupRestoreHelper, Entry, RetryPolicy
from simulator.timeloop import run
from tests.support import EPOCH, Device, close_all, fake_vault, flaky, settle, vault_live

HOUR = 3600.0


async def test_two_devices_converge_and_nothing_echoes() -> None:
    """SYNC-1, CB-1, CB-2, CB-3, CB-4: changes flow both ways; no device hears its own writes."""
    vault = fake_vault()
    a, b = Device("a", vault), Device("b", vault)
    await a.put("x", 1)
    await a.put("y", 2)
    await settle(a, b)
    await b.put("x", 10)
    await b.remove("y")
    await settle(a, b)
    assert a.app.items == b.app.items == a.local() == b.local() == vault_live(vault) == {"x": 10}
    assert a.app.calls == [("modify", "x", 10), ("delete", "y", 2)]
    assert b.app.calls == [("insert", "x", 1), ("insert", "y", 2)]
    await close_all(a, b)


async def test_contexts_sync_in_registration_order() -> None:
    """API-1, SYNC-1: contexts are visited in the order they were registered."""
    vault = fake_vault()
    a = Device("a", vault, contexts=("zeta", "alpha"))
    b = Device("b", vault, contexts=("zeta", "alpha"), auto_sync=False)
    await a.put("k1", 1, "alpha")
    await a.put("k2", 2, "zeta")
    await settle(a)
    order: list[str] = []
    for name, app in b.apps.items():

        def refuse(kind: str, entry: Entry, name: str = name) -> bool:
            order.append(name)
            return True

        app.refuse = refuse
    await b.helper.sync()
    assert order == ["zeta"]  # zeta first, and the refusal stopped the pass (CB-6)
    await close_all(a, b)


async def test_writes_start_a_debounced_pass_by_themselves() -> None:
    """SYNC-3, OFF-1: upsert returns before any request; one pass follows the debounce."""
    vault = fake_vault()
    a = Device("a", vault, debounce=0.5)
    for i in range(5):
        await a.put(f"k{i}", i)
        assert vault.request_count == 0  # never waits for the network
    await asyncio.sleep(0.4)
    assert vault.request_count == 0
    await asyncio.sleep(0.2)
    assert vault_live(vault) == {f"k{i}": i for i in range(5)}
    ops = vault.counts_by_op()
    assert ops.get("query", 0) == 1  # a single pass
    await close_all(a)


async def test_single_flight_and_shared_results() -> None:
    """SYNC-2: while a pass runs, concurrent sync() calls share one waiting pass."""
    vault = fake_vault()
    a = Device("a", vault)
    await a.put("x", 1)
    await settle(a)
    b = Device("b", vault, auto_sync=False)

    async def slow_insert(entry: Entry) -> bool:
        await asyncio.sleep(10)
        return True

    b.helper.add_sync_context("slow", slow_insert, slow_insert, slow_insert)
    await a.helper.upsert_database_entry("notes", "y", 2)
    await settle(a)
    vault.reset_log()
    first = asyncio.ensure_future(b.helper.sync())
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(b.helper.sync()) for _ in range(5)]
    results = await asyncio.gather(first, *others)
    assert all(results)
    assert results[1] is results[5]  # the waiting pass is shared
    assert vault.counts_by_op()["query"] <= 2 * 2 + 2  # two passes, not six
    await close_all(a, b)


async def test_late_upload_is_still_pulled() -> None:
    """SYNC-4, OFF-3 (W1): an entry edited offline long before its upload still reaches others."""
    inner = fake_vault()
    b_link = flaky(inner)
    a = Device("a", inner)
    b = Device("b", b_link)
    b_link.down = True
    await b.put("x", "written offline at t=0")
    await asyncio.sleep(300)
    await a.put("y", "a's own")
    assert await a.helper.sync()  # a's cursor moves past t=300
    await asyncio.sleep(200)
    assert b.helper.pending_count("notes") == 1  # queued while offline
    b_link.down = False
    await asyncio.sleep(HOUR)  # b's scheduled retry uploads it, no trigger needed
    assert vault_live(inner)["x"] == "written offline at t=0"
    assert await a.helper.sync()
    assert a.app.items["x"] == "written offline at t=0"
    await close_all(a, b)


async def test_each_context_keeps_its_own_cursor() -> None:
    """SYNC-5, SYNC-6 (W3): a refused context does not lose changes to another's progress; a
    context added later pulls everything already on the vault."""
    vault = fake_vault()
    a = Device("a", vault, contexts=("one", "two"))
    b = Device("b", vault, contexts=("one", "two"), auto_sync=False)
    await a.put("p", 1, "two")
    await settle(a)
    b.apps["two"].refuse = lambda kind, entry: True
    assert not await b.helper.sync()
    await asyncio.sleep(100)
    await a.put("q", 2, "one")
    await settle(a)
    b.apps["two"].refuse = None
    assert await b.helper.sync()
    assert b.apps["two"].items == {"p": 1} and b.apps["one"].items == {"q": 2}
    # a context registered later starts from nothing and pulls everything
    a.add_context("three")
    await a.put("old", "from before", "three")
    await settle(a)
    await asyncio.sleep(10 * HOUR)
    late = b.add_context("three")
    assert await b.helper.sync()
    assert late.items == {"old": "from before"}
    await close_all(a, b)


async def test_lost_answers_are_retried_without_duplicates() -> None:
    """SYNC-7, ORD-5: a create and an update whose answers were lost leave one document each."""
    inner = fake_vault()
    link = flaky(inner)
    a = Device("a", link)
    b = Device("b", inner)
    link.lose_answers = 1
    await a.put("x", 1)
    await asyncio.sleep(HOUR)  # the failed pass retries by itself
    link.lose_answers = 1
    await a.put("x", 2)
    await asyncio.sleep(HOUR)
    await settle(a, b)
    docs = inner.documents("backup_notes")
    assert [(d["key"], d["data"]) for d in docs] == [("x", 2)]
    assert b.app.items == {"x": 2} and a.helper.pending_count("notes") == 0
    await close_all(a, b)


async def test_backup_continues_while_the_app_refuses() -> None:
    """SYNC-8, CB-6: after a refusal the pass still uploads local changes of every context,
    and makes no further callback."""
    vault = fake_vault()
    a = Device("a", vault, contexts=("one", "two"))
    b = Device("b", vault, contexts=("one", "two"), auto_sync=False)
    await a.put("r1", 1, "one")
    await a.put("r2", 2, "two")
    await settle(a)
    b.apps["one"].refuse = lambda kind, entry: True
    await b.put("mine1", "b1", "one")
    await b.put("mine2", "b2", "two")
    result = await b.helper.sync()
    assert not result and result.refused == ("one", "r1")
    assert b.apps["two"].calls == []  # no callback after the refusal, in any context
    assert vault_live(vault, "one")["mine1"] == "b1"
    assert vault_live(vault, "two")["mine2"] == "b2"
    await close_all(a, b)


async def test_paged_pull_survives_updates_between_pages() -> None:
    """SYNC-9, COST-2: pulls are paged; a document updated mid-pull is neither lost nor
    delivered twice at the same version."""
    vault = fake_vault()
    a = Device("a", vault)
    for i in range(10):
        await a.put(f"k{i}", i)
        await asyncio.sleep(1)
    await settle(a)
    b = Device("b", vault, page_size=3, auto_sync=False)
    touched = False

    def on_insert(entry: Entry) -> bool:
        nonlocal touched
        if entry.key == "k4" and not touched:
            touched = True
            # another device rewrites an early document while b is between pages
            asyncio.get_running_loop().create_task(a.put("k0", "changed"))
        b.app.items[entry.key] = entry.data
        b.app.calls.append(("insert", entry.key, entry.data))
        return True

    b.helper._contexts["notes"].on_insert = on_insert
    vault.reset_log()
    assert await b.helper.sync()
    assert vault.counts_by_op()["query"] >= 4  # ceil(10 / 3) pages, at least
    await settle(a, b)
    assert b.app.items == {**{f"k{i}": i for i in range(1, 10)}, "k0": "changed"}
    inserts = [key for kind, key, _ in b.app.calls if kind == "insert"]
    assert sorted(inserts) == sorted(set(inserts))
    await close_all(a, b)


async def test_refusal_is_retried_with_backoff_and_no_trigger() -> None:
    """RETRY-1, RETRY-2, CB-7, SYNC-6 (W6): a refused change is delivered again later, on its
    own, after a delay within the policy's bounds."""
    vault = fake_vault()
    a = Device("a", vault)
    await a.put("x", 1)
    await settle(a)
    policy = RetryPolicy(initial_delay=10, max_delay=1000, multiplier=2, jitter=0.5)
    b = Device("b", vault, retry=policy)
    times: list[float] = []

    def refuse(kind: str, entry: Entry) -> bool:
        times.append(asyncio.get_running_loop().time())
        return len(times) <= 3

    b.app.refuse = refuse
    start = asyncio.get_running_loop().time()
    await b.helper.sync()
    await asyncio.sleep(2 * HOUR)
    assert b.app.items == {"x": 1} and len(times) == 4
    gaps = [t2 - t1 for t1, t2 in zip([start, *times[1:]], times[1:], strict=False)]
    for n, gap in enumerate(gaps, start=1):
        nominal = 10 * 2 ** (n - 1)
        assert nominal * 0.5 <= gap <= nominal + 0.1, (n, gap)
    assert b.helper.last_result is not None and b.helper.last_result.completed
    await close_all(a, b)


def test_a_poison_entry_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """RETRY-3: a key refused many times in a row is logged with its key and reported."""

    async def main() -> None:
        vault = fake_vault()
        a = Device("a", vault)
        await a.put("poison", 1)
        await settle(a)
        b = Device("b", vault, stuck_threshold=3)
        b.app.refuse = lambda kind, entry: entry.key == "poison"
        await b.helper.sync()
        await asyncio.sleep(HOUR)
        stuck = b.helper.stuck_entries()
        assert [(s.context, s.key) for s in stuck] == [("notes", "poison")]
        assert stuck[0].refusals >= 3
        assert b.helper.last_result is not None and b.helper.last_result.stuck == tuple(stuck)
        b.app.refuse = None
        await asyncio.sleep(HOUR)
        assert b.helper.stuck_entries() == [] and b.app.items == {"poison": 1}
        await close_all(a, b)

    with caplog.at_level(logging.WARNING, logger="brh"):
        run(main(), start=EPOCH)
    assert any(
        "'poison'" in r.getMessage() and "in a row" in r.getMessage() for r in caplog.records
    )


async def test_vault_errors_are_retried_until_it_is_back() -> None:
    """RETRY-4, OFF-3: an unreachable vault leaves changes queued; they upload when it returns."""
    inner = fake_vault()
    link = flaky(inner)
    a = Device("a", link)
    link.down = True
    for i in range(3):
        await a.put(f"k{i}", i)
    result = await a.helper.sync()
    assert not result and result.reason == "vault_error" and "unreachable" in (result.error or "")
    assert a.helper.pending_count("notes") == 3
    await asyncio.sleep(HOUR)
    assert inner.collection_names() == []
    link.down = False
    await asyncio.sleep(HOUR)
    assert vault_live(inner) == {"k0": 0, "k1": 1, "k2": 2}
    assert a.helper.pending_count("notes") == 0
    await close_all(a)


async def test_restart_on_the_same_store_resumes(tmp_path: Path) -> None:
    """OFF-4, OFF-2: pending changes, cursor and clock survive a restart of the process."""
    vault = fake_vault()
    path = tmp_path / "a.sqlite"
    a = Device("a", vault, store=path, auto_sync=False)
    await a.put("x", "before")
    await a.helper.sync()
    await a.put("y", "pending at shutdown")
    seen = a.helper.store.clock()
    await a.helper.close()
    a2 = Device("a", vault, store=path, auto_sync=False, offset=-2 * HOUR)  # clock stepped back
    assert a2.helper.pending_count("notes") == 1
    vault.reset_log()
    assert await a2.helper.sync()
    pull = [r for r in vault.requests if r.op == "query"]
    assert len(pull) >= 1 and vault.counts_by_op().get("create_collection", 0) == 0
    assert vault_live(vault) == {"x": "before", "y": "pending at shutdown"}
    await a2.put("x", "after restart")
    record = a2.helper.store.get("notes", "x")
    assert seen is not None and record is not None and record.version > seen
    await a2.helper.close()


async def test_a_slow_clock_never_loses_a_later_edit() -> None:
    """ORD-2, ORD-3 (W2): a device hours behind edits after seeing a version; its edit wins
    on every device."""
    vault = fake_vault()
    a = Device("a", vault, offset=-3 * HOUR)
    b = Device("b", vault)
    c = Device("c", vault, offset=+1 * HOUR)
    await b.put("x", "b's version")
    await settle(a, b, c)
    await asyncio.sleep(60)
    await a.put("x", "a's later edit")
    await settle(a, b, c)
    for device in (a, b, c):
        assert device.app.items == {"x": "a's later edit"}, device.name
        assert device.local() == {"x": "a's later edit"}
    assert vault_live(vault) == {"x": "a's later edit"}
    await close_all(a, b, c)


async def test_concurrent_creators_converge_and_duplicates_are_cleaned() -> None:
    """ORD-4 (W4): two devices create one key at once; everyone agrees and one document stays."""
    inner = fake_vault()
    links = [flaky(inner), flaky(inner)]
    for link in links:
        link.latency = 0.01
    a = Device("a", links[0], auto_sync=False)
    b = Device("b", links[1], auto_sync=False)
    await a.put("k", "from a")
    await b.put("k", "from b")  # same virtual millisecond: a tie on wall time
    await asyncio.gather(a.helper.sync(), b.helper.sync())
    assert len(inner.documents("backup_notes")) == 2  # the vault has no unique index
    await settle(a, b)
    assert a.app.items == b.app.items == {"k": "from b"}  # 'b' > 'a' breaks the tie (W8)
    assert [d["data"] for d in inner.documents("backup_notes")] == ["from b"]
    await close_all(a, b)


async def test_remote_edit_against_local_delete() -> None:
    """ORD-6, CB-1 (W7): the later of an edit and a delete wins; never both deleted and live."""
    vault = fake_vault()
    a, b = Device("a", vault, auto_sync=False), Device("b", vault, auto_sync=False)
    await a.put("x", 1)
    await a.put("y", 1)
    await settle(a, b)
    await a.remove("x")  # a deletes x offline, then b edits it later
    await asyncio.sleep(5)
    await b.put("x", "edited later")
    await b.remove("y")  # b deletes y, then a edits it later
    await asyncio.sleep(5)
    await a.put("y", "revived later")
    await settle(b, a)
    for device in (a, b):
        assert device.local() == {"x": "edited later", "y": "revived later"}, device.name
        record = device.helper.store.get("notes", "x")
        assert record is not None and record.deletion_date is None
    assert ("insert", "x", "edited later") in a.app.calls  # a did not hold x any more
    assert ("insert", "y", "revived later") in b.app.calls
    await close_all(a, b)


async def test_local_write_during_a_callback_wins() -> None:
    """ORD-7: the app writes a key while its modification callback for that key is running."""
    vault = fake_vault()
    a = Device("a", vault)
    b = Device("b", vault, auto_sync=False)
    await a.put("x", 1)
    await settle(a, b)
    await a.put("x", "remote")
    await settle(a)
    in_callback = asyncio.Event()

    async def slow_modify(entry: Entry) -> bool:
        in_callback.set()
        await asyncio.sleep(30)  # asking the user...
        return True

    b.helper._contexts["notes"].on_modify = slow_modify
    pass_task = asyncio.ensure_future(b.helper.sync())
    await in_callback.wait()
    await b.put("x", "typed meanwhile")  # from the app's own task, not the callback's
    assert await pass_task
    await settle(a, b)
    assert vault_live(vault) == {"x": "typed meanwhile"}
    assert a.app.items == {"x": "typed meanwhile"}
    await close_all(a, b)


async def test_the_app_deletes_a_key_it_was_just_given_while_the_pass_goes_on() -> None:
    """ORD-7, CB-5 (found by the deep state-machine search, seed 31): an insert callback
    returns True, and while the same pass is still busy with the next key, the app deletes the
    key it was just given. The helper already holds the delivered version (the app can read it
    back), so the delete is a real one: it reaches the vault and the other device. It was lost
    when a page's versions were stored only after the page's last callback: the delete found no
    local entry, did nothing, and the delivered version was stored after it."""
    vault = fake_vault()
    a = Device("a", vault)
    b = Device("b", vault, auto_sync=False)
    await a.put("x", "given")
    await a.put("y", "slow")
    await settle(a)
    in_callback = asyncio.Event()
    seen: list[object] = []

    async def slow_insert(entry: Entry) -> bool:
        if entry.key == "y":
            in_callback.set()
            await asyncio.sleep(30)  # asking the user...
        return True

    b.helper._contexts["notes"].on_insert = slow_insert
    pass_task = asyncio.ensure_future(b.helper.sync())
    await in_callback.wait()
    held = await b.helper.get_database_entry("notes", "x")
    seen.append(held.data if held is not None else None)
    await b.helper.delete_database_entry("notes", "x")  # from the app's own task
    assert await pass_task
    assert seen == ["given"]
    assert await b.helper.get_database_entry("notes", "x") is None
    await settle(b, a)
    assert vault_live(vault) == {"y": "slow"}
    assert a.local() == {"y": "slow"}
    await close_all(a, b)


async def test_declined_changes_are_not_redelivered() -> None:
    """CB-5: a callback may return True without applying; the helper records the version."""
    vault = fake_vault()
    a = Device("a", vault)
    b = BackupRestoreHelper(vault, ":memory:", device_id="b", clock=lambda: EPOCH)
    calls: list[str] = []

    def decline(entry: Entry) -> bool:
        calls.append(entry.key)
        return True  # the user said no: nothing applied, but handled

    b.add_sync_context("notes", decline, decline, decline)
    await a.put("x", 1)
    await settle(a)
    for _ in range(3):
        assert await b.sync()
    assert calls == ["x"]
    entry = await b.get_database_entry("notes", "x")
    assert entry is not None and entry.data == 1
    await a.helper.close()
    await b.close()


async def test_three_devices_with_skew_and_an_outage_converge() -> None:
    """OFF-3, ORD-2, SYNC-4: three devices, clocks skewed by hours, one offline for a while."""
    inner = fake_vault()
    c_link = flaky(inner)
    a = Device("a", inner, offset=-5 * HOUR)
    b = Device("b", inner, offset=+2 * HOUR)
    c = Device("c", c_link, offset=17.5)
    c_link.down = True
    for step in range(12):
        device = (a, b, c)[step % 3]
        await device.put(f"k{step % 5}", f"{device.name}{step}")
        if step % 4 == 3:
            await device.remove(f"k{(step + 1) % 5}")
        await asyncio.sleep(37)
    c_link.down = False
    await asyncio.sleep(HOUR)
    await settle(a, b, c)
    expected = vault_live(inner)
    for device in (a, b, c):
        assert device.local() == expected, device.name
        assert device.app.items == expected, device.name
    await close_all(a, b, c)


async def test_an_edit_after_a_lost_race_wins_even_with_a_slow_clock() -> None:
    """ORD-3: b's upload loses to a's newer version (seen in the pull) while b's
    app refuses it; b's next edit, made later, wins although b's clock is an hour slow."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    b = Device("b", vault, auto_sync=False, offset=-HOUR)
    await a.put("x", "first")
    await settle(a, b)
    await b.put("x", "b, older stamp")
    await a.put("x", "a, newer stamp")
    await settle(a)
    b.app.refuse = lambda kind, entry: True
    result = await b.helper.sync()  # b's push loses; delivering a's version is refused
    assert not result and result.refused == ("notes", "x")
    await asyncio.sleep(5)
    await b.put("x", "b, after seeing a's")
    b.app.refuse = None
    await settle(b, a)
    assert vault_live(vault) == {"x": "b, after seeing a's"}
    assert a.app.items == b.app.items == {"x": "b, after seeing a's"}
    await close_all(a, b)
