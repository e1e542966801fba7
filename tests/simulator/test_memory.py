"""Issue 3, memory that stays flat over long simulator runs: what the simulator keeps is bounded
by the key space and the device count, not by the number of writes, callbacks or passes."""

from __future__ import annotations

from typing import Any, cast

import pytest

from brh import Entry, hlc
from brh.vault import NetworkError
from brh.wire import document_fields, version_filter
from simulator.cli.explore import SwarmConfig, _workload, choose_config
from simulator.world import Outcome, World, simulate
from simulator.world.app import CALLS_KEPT, AppModel, Behaviour, CallLog
from simulator.world.checkers import Checker


def test_a_call_log_counts_every_call_and_keeps_the_last_ones() -> None:
    """Issue 3 (memory flat over long runs): an app model's callback log counts all its calls
    but keeps only the most recent ``limit``."""
    log = CallLog(limit=3)
    assert log == [] and log.total == 0 and log.dropped == 0
    calls = [("insert", f"k{i}", i) for i in range(5)]
    for call in calls[:3]:
        log.append(call)
    assert log == calls[:3] and calls[:3] == log and len(log) == 3
    assert log.since(1) == calls[1:3] and log[-1] == calls[2] and log[1:] == calls[1:3]
    for call in calls[3:]:
        log.append(call)
    assert log.total == 5 and len(log) == 3 and log.dropped == 2
    assert list(log) == calls[2:] and calls[4] in log and calls[0] not in log
    assert log.since(2) == calls[2:] and log.since(5) == []
    with pytest.raises(LookupError, match="dropped"):
        log.since(1)  # the calls after the first one are not all kept any more
    # a log that dropped calls cannot show them all: it equals no list, not even its tail
    assert log != calls[2:] and log != calls
    assert log == CallLog(calls, limit=3) and log != CallLog(calls[2:], limit=3)
    assert "2 older dropped" in repr(log)
    log.clear()
    assert log == [] and log.total == 0
    assert CallLog().limit == CALLS_KEPT
    with pytest.raises(ValueError, match="limit"):
        CallLog(limit=0)


def test_an_app_that_refuses_remembers_one_change_per_key() -> None:
    """Issue 3 (memory flat over long runs): an app in mode ``refuse`` still refuses each change
    ``refusals`` times and then accepts it, while what it remembers to do so stays one record
    per key, however many changes it was offered."""
    app = AppModel(behaviour=Behaviour(mode="refuse", refusals=2))
    for stamp in range(1, 201):
        for key in ("a", "b", "c"):
            entry = Entry(key, stamp, 0, stamp)
            assert [app._handle("modify", entry) for _ in range(3)] == [False, False, True]
            assert app._handle("modify", entry)  # accepted once, accepted from then on
            assert app.items[key] == stamp
    assert len(app._refused) == 3  # one record per key, not one per change (600 here)
    assert app.calls.total == 200 * 3 * 4 and len(app.calls) == CALLS_KEPT


def _ledger(world: World, context: str, key: str) -> list[Any]:
    return [write.data for write in world.checker.ledger.get((context, key), [])]


def test_a_reinstall_keeps_only_the_abandoned_writes_that_reached_the_vault() -> None:
    """Issue 3 (memory flat over long runs), ORD-2, OFF-4: of the writes a reinstall abandons,
    the checker keeps the one that reached the vault (its answer was lost: it may be the final
    value, and is) and forgets the one no request ever carried, so that the ledger stays
    bounded by the key space; the run passes every check."""
    seen: dict[str, list[Any]] = {}

    async def scenario(world: World) -> None:
        phone, _tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", "first")
        await world.advance(5)
        world.links["phone"].lose_answers = 1
        await phone.put("x", "landed")
        await world.advance(5)  # its upload applied; the answer will never come back
        seen["vault"] = [world.vault_live("notes")["x"]]
        world.partition("phone")  # and the retries vanish
        await world.advance(45)
        await phone.put("x", "never sent")
        await world.advance(5)
        await world.reinstall("phone")
        seen["at the reinstall"] = _ledger(world, "notes", "x")
        world.heal("phone")
        await world.advance(1)
        seen["decided"] = _ledger(world, "notes", "x")
        await world.advance(60)
        seen["final"] = [world.vault_live("notes").get("x")]

    outcome = simulate(scenario, seed=1)
    assert outcome.findings == [], [str(f) for f in outcome.findings]
    assert seen["vault"] == ["landed"]
    assert seen["at the reinstall"] == ["first", "landed", "never sent"]
    assert seen["decided"] == ["first", "landed"]
    assert seen["final"] == ["landed"]  # the abandoned write that landed is the final value


def test_abandoned_writes_are_decided_only_once_no_late_request_can_land() -> None:
    """Issue 3 (memory flat over long runs), ORD-2: an abandoned write is not forgotten while a
    request of the old installation is still on its way (late: its client gave up): here that
    request lands after the reinstall and its write is the final value, which the checker
    accepts."""
    seen: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone, _tablet = world.add_device("phone", auto_sync=False), world.add_device("tablet")
        await phone.put("x", "first")
        await phone.sync()
        await world.advance(5)
        await phone.put("x", "late")
        record = phone.helper.store.get("notes", "x")
        assert record is not None and record.base is not None
        link = world.links["phone"]
        link.latency = (40.0, 40.0)  # the upload arrives 40 s later, its client gives up at 30
        upload = link.update_one(
            "backup_notes",
            version_filter("x", record.base),
            {"$set": document_fields("x", record.data, record.creation_date, None, record.version)},
        )
        with pytest.raises(NetworkError):
            await upload  # what the helper's push would have seen
        await world.reinstall("phone")
        link.latency = world.latency
        seen["late"] = link.late
        await world.advance(1)
        seen["kept while late"] = _ledger(world, "notes", "x")
        await world.advance(30)
        seen["after it landed"] = _ledger(world, "notes", "x")
        seen["late after"] = link.late
        await world.advance(60)
        seen["vault"] = world.vault_live("notes").get("x")

    outcome = simulate(scenario, seed=1)
    assert outcome.findings == [], [str(f) for f in outcome.findings]
    assert seen["late"] == 1 and seen["late after"] == 0
    assert seen["kept while late"] == ["first", "late"]
    assert seen["after it landed"] == ["first", "late"]  # the vault holds it: kept
    assert seen["vault"] == "late"  # the final value


def _run_and_measure(config: SwarmConfig) -> tuple[Outcome, World, int]:
    """Run a swarm configuration; also return its world and the ledger's size at the end of
    the workload (before the settle phase)."""
    kept: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        kept["world"] = world
        await _workload(world, config)
        kept["ledger"] = len(world.checker.writes)

    outcome = simulate(scenario, seed=config.seed, contexts=config.contexts)
    return outcome, kept["world"], kept["ledger"]


def test_a_long_run_with_reinstalls_keeps_a_ledger_the_size_of_its_key_space() -> None:
    """Issue 3 (memory flat over long runs): 8 simulated hours of a swarm seed with reinstalls
    and device clocks hours ahead (writes abandoned with versions newer than anything uploaded
    later) end with a ledger of a few writes per key (it held 288 writes of 8 keys before
    abandoned writes were decided); the abandoned writes it keeps are those the vault holds."""
    config = choose_config(12, duration=8 * 3600.0)
    assert {"reinstall", "jump_clock"} <= set(config.faults) and config.keys == 8
    outcome, world, ledger = _run_and_measure(config)
    assert outcome.findings == [], [str(f) for f in outcome.findings]
    assert outcome.events["write"] > 400 and outcome.events["device"] > 10
    assert ledger <= 4 * config.keys * len(config.contexts), ledger
    checker = world.checker
    assert checker.undecided == []
    held = checker._vault_versions(set(config.contexts))
    for write in checker.writes:
        if write.abandoned:
            assert write.version.encode() in held[(write.context, write.key)], write


def test_a_long_run_keeps_bounded_callback_logs_and_refusal_records() -> None:
    """Issue 3 (memory flat over long runs): in 4 simulated hours of apps that refuse changes,
    each app model counts every callback but keeps at most ``CALLS_KEPT`` of them, and
    remembers at most one refused change per key."""
    config = SwarmConfig(seed=5, duration=4 * 3600.0, faults=("refuse",), keys=8, mean_gap=5.0)
    outcome, world, _ledger_size = _run_and_measure(config)
    assert outcome.findings == [], [str(f) for f in outcome.findings]
    apps = [app for device in world.devices.values() for app in device.apps.values()]
    assert max(app.calls.total for app in apps) > 10 * CALLS_KEPT
    assert all(len(app.calls) <= CALLS_KEPT for app in apps)
    assert any(app._refused for app in apps)
    assert all(len(app._refused) <= config.keys for app in apps)


def test_a_blind_write_keeps_its_latest_parents_and_the_checker_finds_the_rest() -> None:
    """Issue 3 (memory flat over long runs), ORD-2 (black box): the writes of an implementation
    whose versions the checker cannot read each keep only the latest writes their device had
    seen; what they supersede is found from those, so the record grows with the writes, not
    with their square."""
    checker = Checker(cast(World, None))  # these methods never read the world
    checker.record_blind_write("a", "notes", "x", deleted=False, data=1)  # 0
    checker.record_delivery("b", "notes", "insert", Entry("x", 1, 0, 0), accepted=True)
    checker.record_blind_write("b", "notes", "x", deleted=False, data=2)  # 1, after 0
    checker.record_delivery("a", "notes", "modify", Entry("x", 2, 0, 0), accepted=True)
    checker.record_blind_write("a", "notes", "x", deleted=False, data=3)  # 2, after 1 and 0
    checker.record_blind_write("c", "notes", "x", deleted=False, data=4)  # 3, saw nothing
    checker.record_delivery("c", "notes", "modify", Entry("x", 2, 0, 0), accepted=True)
    assert checker.seen[("c", "notes", "x")] == {1, 3}
    checker.record_delivery("c", "notes", "modify", Entry("x", 3, 0, 0), accepted=True)
    checker.record_delivery("c", "notes", "modify", Entry("x", 1, 0, 0), accepted=True)
    assert [w.parents for w in checker.blind] == [(), (0,), (1,), ()]
    assert checker.ancestors(checker.blind[2].parents) == {0, 1}
    assert checker.seen[("a", "notes", "x")] == {2}  # 2 stands for 1 and 0 as well
    assert checker.seen[("c", "notes", "x")] == {2, 3}  # 1 went, 0 never came: 2 holds them
    assert checker.ancestors(checker.seen[("c", "notes", "x")]) == {0, 1, 2, 3}
    checker.record_blind_write("c", "notes", "x", deleted=True, data=None)  # 4
    assert checker.blind[4].parents == (2, 3) and checker.seen[("c", "notes", "x")] == {4}


def test_the_version_caches_fill_in_the_first_hours_of_a_run_and_hold_no_more() -> None:
    """Issue 12 (the simulator's memory flat again from 16 to 64 simulated hours): the helper's
    process-wide caches of versions to and from text take about one version per write, so
    they must reach their bound early in a run, after which a longer run keeps no more. After
    6 simulated hours of swarm seed 3 (the memory benchmark's seed, 1,283 writes) both are
    full. At 4,096 entries each they were still filling at 16 h (3,541 writes) and held 3 MiB
    at 64 h: all of that run's growth over the 16 h run, which nothing else grew."""
    hlc._decode.cache_clear()
    hlc._encode.cache_clear()
    config = choose_config(3, duration=6 * 3600.0)
    outcome, _world, _ledger_size = _run_and_measure(config)
    assert outcome.findings == [], [str(f) for f in outcome.findings]
    writes = outcome.events["write"]
    assert writes > 1200, writes
    for cache in (hlc._decode, hlc._encode):
        info = cache.cache_info()
        assert info.maxsize is not None and info.currsize == info.maxsize < writes, info
        assert info.hits > 4 * info.misses, info  # still worth keeping: most lookups hit
