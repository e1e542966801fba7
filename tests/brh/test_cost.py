"""What a pass costs (SPEC §10): vault requests and local work (W9)."""

from __future__ import annotations

import asyncio

from simulator.timeloop import run
from tests.support import EPOCH, Device, fake_vault, settle


async def idle_cost(entries: int) -> tuple[dict[str, int], int]:
    """Requests and SQL statements of an idle pass on a device holding ``entries`` entries."""
    vault = fake_vault()
    a = Device("a", vault, contexts=("one", "two"), page_size=1000, auto_sync=False)
    for i in range(entries):  # one write a second, as an app would make them
        await a.helper.upsert_database_entry("one", f"k{i}", i)
        await asyncio.sleep(1)
    await settle(a)
    await asyncio.sleep(60)  # past the overlap window
    assert await a.helper.sync()
    vault.reset_log()
    statements: list[str] = []
    a.helper.store._db.set_trace_callback(statements.append)
    assert await a.helper.sync()
    a.helper.store._db.set_trace_callback(None)
    await a.helper.close()
    return vault.counts_by_op(), len(statements)


def test_an_idle_pass_costs_one_request_per_context_whatever_the_size() -> None:
    """COST-1 (W9): nothing to do = one request per context, and the same local work for 10 or
    2,000 stored entries (only the overlap window of recent stamps is re-read)."""
    small_requests, small_sql = run(idle_cost(10), start=EPOCH)
    large_requests, large_sql = run(idle_cost(2000), start=EPOCH)
    assert small_requests == large_requests == {"query": 2}
    assert small_sql == large_sql


async def test_k_changes_cost_k_writes() -> None:
    """COST-2, COST-3, DATA-1: pushing k entries costs k writes plus the pull; the first pass of
    a context creates ``backup_<context>`` once, and another device's first pass tolerates
    "already exists"."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    for i in range(500):
        await a.put(f"k{i}", i)
    assert await a.helper.sync()
    first = vault.counts_by_op()
    assert first["create_collection"] == 1
    assert first["update_one"] == 500
    await asyncio.sleep(60)
    assert await a.helper.sync()  # reads its own 500 writes back once (and purges)
    vault.reset_log()
    for i in range(7):
        await a.put(f"k{i}", "changed")
    assert await a.helper.sync()
    assert vault.counts_by_op() == {"query": 1, "update_one": 7}
    assert vault.collection_names() == ["backup_notes"]
    b = Device("b", vault, auto_sync=False)
    vault.reset_log()
    assert await b.helper.sync()  # create_collection answers 455, which is fine
    assert next((r.op, r.ok) for r in vault.requests) == ("create_collection", False)
    assert len(b.app.items) == 500
    await a.helper.close()
    await b.helper.close()


async def test_pull_cost_is_one_request_per_page() -> None:
    """COST-2, SYNC-9: m changed documents cost ceil(m / page_size) pull requests."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    for i in range(95):
        await a.put(f"k{i}", i)
    assert await a.helper.sync()
    b = Device("b", vault, auto_sync=False, page_size=10, tombstone_retention=None)
    assert await b.helper.sync()
    assert vault.counts_by_op()  # sanity
    vault.reset_log()
    await asyncio.sleep(60)
    for i in range(25):
        await a.put(f"k{i}", "again")
    assert await a.helper.sync()
    vault.reset_log()
    assert await b.helper.sync()
    assert vault.counts_by_op() == {"query": 3}
    assert len(b.app.items) == 95
    await a.helper.close()
    await b.helper.close()


async def test_idle_pulls_after_a_burst_skip_the_window_then_settle() -> None:
    """COST-1, SYNC-4: right after a burst the pull re-reads the overlap window but skips the
    versions it already processed; once writes in flight must have landed, it reads only newer
    stamps. A write landing late with an already-passed stamp is still found meanwhile."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    for i in range(50):
        await a.put(f"k{i}", i)  # one second: all stamped alike
    assert await a.helper.sync()
    b = Device("b", vault, auto_sync=False)
    assert await b.helper.sync()
    # a write stamped in the same second lands after b's pull (it was in flight)
    await vault.update_one(
        "backup_notes",
        {"key": "k0"},
        {"$set": {"data": "late", "brhVersion": "001750000000000.000999.z"}},
    )
    await asyncio.sleep(3)
    vault.reset_log()
    result = await b.helper.sync()
    assert result.pulled == 1 and b.app.items["k0"] == "late"  # only the late one
    await asyncio.sleep(60)
    assert await b.helper.sync()  # settles: from now on only newer stamps
    vault.reset_log()
    result = await b.helper.sync()
    assert result.pulled == 0 and vault.counts_by_op() == {"query": 1}
    state = b.helper.store.context_state("notes")
    assert state.settled and state.window == ()
    await a.put("new", 1)
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert b.app.items["new"] == 1
    assert not b.helper.store.context_state("notes").settled
    await a.helper.close()
    await b.helper.close()


async def test_a_pull_that_reads_a_burst_long_after_it_landed_settles_at_once() -> None:
    """COST-1, SYNC-4 (issue 15 item 6): a pull sent once the vault's clock had passed the
    burst's stamp + overlap + 1 s has read every write stamped up to it, so it settles the
    cursor itself: the next idle pull asks only for newer stamps, with no list of the versions
    it read (it used to wait for one more pull that found nothing new, and that pull named all
    of them: 360 KB after 10,000 entries). A write made afterwards is still read."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    for i in range(50):
        await a.put(f"k{i}", i)  # one vault second: all stamped alike
    assert await a.helper.sync()
    await asyncio.sleep(60)
    b = Device("b", vault, auto_sync=False)
    assert await b.helper.sync()
    assert len(b.app.items) == 50
    state = b.helper.store.context_state("notes")
    assert state.settled and state.window == ()
    vault.reset_log()
    examined = vault.examined
    result = await b.helper.sync()
    assert result.pulled == 0 and vault.counts_by_op() == {"query": 1}
    assert vault.examined == examined  # "modified > cursor": the index finds nothing
    await a.put("k0", "after")
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert b.app.items["k0"] == "after"
    await a.helper.close()
    await b.helper.close()


async def test_a_first_restore_costs_a_request_per_page_and_the_collection() -> None:
    """COST-2, COST-3, DEL-2 (issue 15): restoring N entries costs ceil(N / page_size) + 1
    requests, even when N is a whole number of pages: no empty page is asked for at the end
    (each page asks for one document more than it takes) and no purge is sent at a first
    pull (the purge interval starts there)."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    for i in range(30):
        await a.put(f"k{i:02d}", i)
    assert await a.helper.sync()
    vault.reset_log()
    b = Device("b", vault, auto_sync=False, page_size=10)
    result = await b.helper.sync()
    assert result and result.delivered == 30
    assert vault.counts_by_op() == {"create_collection": 1, "query": 3}
    assert result.requests == 4
    await a.helper.close()
    await b.helper.close()
