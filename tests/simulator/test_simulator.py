"""The simulator itself: determinism, fault verbs, checkers that bite, replay, the loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import brh.helper
from brh import RetryPolicy
from brh.core import RULES, Action, Decision, decide
from brh.store import EntryState, Record
from brh.vault import NetworkError
from brh.wire import RemoteDoc
from conformance.implementations import legacy
from simulator import scenarios
from simulator.cli.explore import SwarmConfig, choose_config, read_replay, run_config, write_replay
from simulator.impl import Callback, Helper, Installation, ReferenceHelper
from simulator.timeloop import VirtualDeadlock, run
from simulator.world import World, simulate


def test_same_seed_same_trace(tmp_path: Path) -> None:
    """Determinism: the same seed and code give a byte-identical trace; another seed differs."""
    config = choose_config(12)
    paths = [tmp_path / f"{n}.jsonl" for n in range(3)]
    run_config(config, trace_path=paths[0])
    run_config(config, trace_path=paths[1])
    run_config(choose_config(13), trace_path=paths[2])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert len(paths[0].read_bytes()) > 10_000


@pytest.mark.parametrize("seed", range(1, 9))
def test_the_reference_passes_swarm_seeds(seed: int) -> None:
    """SYNC-1, ORD-2, CB-4, CB-6, RETRY-1, COST-1: random faults and workloads, every checker
    passes on the reference helper."""
    config = choose_config(seed)
    outcome = run_config(config)
    assert outcome.findings == [], (config, [str(f) for f in outcome.findings])
    assert outcome.requests > 50


def _scripted(world: World) -> Any:
    async def go() -> None:
        a, b = world.add_device("a"), world.add_device("b", offset=-3600)
        await a.put("x", 1)
        await world.advance(5)
        world.partition("b")
        await b.put("x", "offline edit")
        await world.advance(60)
        world.heal("b")
        await world.advance(600)

    return go()


def test_checkers_catch_a_helper_that_echoes(monkeypatch: pytest.MonkeyPatch) -> None:
    """CB-4: a helper that tells a device about its own writes is caught."""

    def echoing(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
        decision = decide(local, remote)
        own = local is not None and remote.version == local.version and not local.deleted
        if own and decision.action in (Action.ECHO, Action.SKIP):
            return Decision(Action.MODIFY, remote)
        return decision

    monkeypatch.setattr(brh.helper, "RULES", replace(RULES, decide=echoing))
    outcome = simulate(_scripted, seed=1)
    assert "CB-4" in {f.clause for f in outcome.findings}


def test_checkers_catch_a_helper_that_ignores_remote_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SYNC-1, ORD-2: a helper that never applies remote modifications does not converge."""

    def deaf(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
        decision = decide(local, remote)
        return Decision(Action.SKIP, remote) if decision.action is Action.MODIFY else decision

    monkeypatch.setattr(brh.helper, "RULES", replace(RULES, decide=deaf))
    outcome = simulate(_scripted, seed=1)
    assert "SYNC-1" in {f.clause for f in outcome.findings}


def test_checkers_catch_a_helper_that_never_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """RETRY-1 (W6): a failed pass must be followed by another one without outside help."""
    from brh.scheduler import PassScheduler

    monkeypatch.setattr(PassScheduler, "_fire_retry", lambda self: None)

    async def scenario(world: World) -> None:
        a = world.add_device("a")
        world.disconnect("a")
        await a.put("x", 1)
        await world.advance(3600)

    outcome = simulate(scenario, seed=1)
    assert "RETRY-1" in {f.clause for f in outcome.findings}


def test_fault_verbs_as_a_client_sees_them() -> None:
    """Link faults: offline is definite, a partition times out (indefinite), a one-way
    partition applies the write but loses its answer; the upsert race makes duplicates."""

    async def main() -> None:
        world = World(1)
        a = world.add_device("a")
        link = world.links["a"]
        await world.server.vault.create_collection("c")
        world.disconnect("a")
        with pytest.raises(NetworkError) as offline:
            await link.insert_one("c", {"k": 1})
        assert offline.value.definite
        world.reconnect("a")
        world.partition("a")
        start = world.now()
        with pytest.raises(NetworkError) as parted:
            await link.insert_one("c", {"k": 2})
        assert not parted.value.definite and world.now() - start >= link.timeout
        world.heal("a")
        world.cut_answers("a")
        with pytest.raises(NetworkError):
            await link.insert_one("c", {"k": 3})
        world.restore_answers("a")
        assert [d["k"] for d in world.server.vault.documents("c")] == [3]
        world.upsert_race(1.0)
        await asyncio.gather(
            link.update_one("c", {"key": "x"}, {"$set": {"v": 1}}, upsert=True),
            link.update_one("c", {"key": "x"}, {"$set": {"v": 2}}, upsert=True),
        )
        assert len([d for d in world.server.vault.documents("c") if d.get("key") == "x"]) == 2
        world.jump_clock("a", -7200)
        assert a.clock.error() == pytest.approx(-7200)
        await world.close()

    run(main())


def test_crash_keeps_the_store_and_reinstall_drops_it() -> None:
    """OFF-4: a crash keeps what was committed; a reinstall starts empty and restores."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        world.disconnect("a")
        await a.put("kept", 1)
        await world.crash("a")
        await world.restart("a")
        assert a.helper.pending_count("notes") == 1
        world.reconnect("a")
        await a.sync()
        await world.reinstall("b")
        await b.sync()
        assert b.app.items == {"kept": 1}

    outcome = simulate(scenario, seed=2)
    assert outcome.findings == []


def test_replay_files_round_trip(tmp_path: Path) -> None:
    """A replay file reruns the exact configuration; a bad one is refused clearly."""
    config = choose_config(5)
    path = write_replay(tmp_path / "r.json", config)
    assert read_replay(path) == config
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ValueError, match="not a brh-sim replay file"):
        read_replay(bad)
    with pytest.raises(ValueError, match="unknown switch 'gremlins'"):
        SwarmConfig.from_json({"seed": 1, "faults": ["gremlins"]})


def test_the_loop_jumps_and_detects_deadlock() -> None:
    """A day passes instantly; waiting on something nobody will ever do is reported."""

    async def sleepy() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(86_400)
        return loop.time() - start

    assert run(sleepy()) == pytest.approx(86_400)

    async def stuck() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualDeadlock):
        run(stuck())


def test_drift_and_a_slow_vault() -> None:
    """Clocks: drift makes a clock run fast from the moment it is set; a slow vault delays
    every answer by the same amount; settle heals it."""

    async def scenario(world: World) -> None:
        a = world.add_device("a")
        before = a.clock.error()
        world.set_drift("a", 1000.0)  # a millisecond per second
        await world.advance(1000)
        assert a.clock.error() - before == pytest.approx(1.0)
        world.slow_vault(7.0)
        start = world.now()
        await a.put("x", 1)
        await a.sync()
        assert world.now() - start >= 7.0 * 2  # a pull and a push, at least

    outcome = simulate(scenario, seed=3)
    assert outcome.findings == []


def test_a_world_of_another_implementation_settles_when_quiet(tmp_path: Path) -> None:
    """SYNC-1: quiet means nothing changed. A write the vault refused (the legacy creates its
    collection on every pass and gets "already exists") changed nothing, so a converged world
    of such devices settles with no finding."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", 1)
        await world.advance(5)
        await b.put("y", 2)

    outcome = simulate(scenario, seed=1, factory=legacy.factory, workdir=tmp_path)
    assert outcome.findings == []


def test_an_incremental_checkpoint_runs_on_another_implementation(tmp_path: Path) -> None:
    """W1: the named late-upload scenario's incremental checkpoint works with an implementation
    whose sync() returns a bool (not a SyncResult), and catches the legacy's missed late
    upload (SYNC-1)."""
    info = scenarios.get("w1-late-upload")
    outcome = simulate(
        info, seed=1, factory=legacy.factory, workdir=tmp_path, **info.world_options()
    )
    late = [f for f in outcome.findings if f.clause == "SYNC-1" and f.key == "late"]
    assert late and all(f.checker == "convergence" for f in late)


def test_lost_updates_of_another_implementation_are_caught_without_versions(
    tmp_path: Path,
) -> None:
    """ORD-2 (black box): for an implementation whose versions the checker cannot read, what
    each device had seen orders the writes; the legacy's lost update under clock skew (W2) is
    found, the reference run through its factory passes the same scenario."""
    from conformance.implementations import legacy, reference
    from simulator.scenarios import get

    info = get("w2-clock-skew")
    legacy_run = simulate(
        info, seed=1, factory=legacy.factory, workdir=tmp_path / "legacy", **info.world_options()
    )
    lost = [f for f in legacy_run.findings if f.clause == "ORD-2"]
    assert lost and lost[0].checker == "no lost update" and lost[0].key == "x"
    assert "after seeing the phone's edit" in lost[0].message
    reference_run = simulate(
        info,
        seed=1,
        factory=reference.factory,
        workdir=tmp_path / "reference",
        **info.world_options(),
    )
    assert reference_run.findings == []


class _Counted:
    """A helper without the optional ``holds`` (the wrapped one's API otherwise), counting how
    often the harness reads a whole local copy."""

    def __init__(self, inner: ReferenceHelper) -> None:
        self.inner = inner
        self.whole_reads = 0
        self.lookups = 0

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        self.inner.add_sync_context(name, on_insert, on_modify, on_delete)

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        await self.inner.upsert_database_entry(context, key, data)

    async def delete_database_entry(self, context: str, key: str) -> None:
        await self.inner.delete_database_entry(context, key)

    async def sync(self, *, full: bool = False) -> bool:
        return await self.inner.sync(full=full)

    async def wipe_local_context_data(self, context: str) -> None:
        await self.inner.wipe_local_context_data(context)

    def local_entries(self, context: str) -> dict[str, Any]:
        self.whole_reads += 1
        return self.inner.local_entries(context)

    async def close(self) -> None:
        await self.inner.close()


class _CountedWithHolds(_Counted):
    def holds(self, context: str, key: str) -> bool:
        self.lookups += 1
        return self.inner.holds(context, key)


@pytest.mark.parametrize("keyed", [True, False], ids=["with-holds", "without-holds"])
def test_callback_checks_use_the_optional_keyed_lookup(tmp_path: Path, keyed: bool) -> None:
    """CB-1..CB-3 on another implementation: the check before each callback asks the helper's
    optional ``holds`` (one lookup) instead of reading its whole local copy, which made a large
    restore quadratic; a helper without ``holds`` is still checked, through ``local_entries``.
    Either way the check bites: a helper that calls on_delete for a key it never held (the
    ``delete_for_unknown_key`` mutant) is caught (CB-3)."""
    from conformance.implementations import mutants

    helpers: list[_Counted] = []

    def factory(installation: Installation) -> Helper:
        wrapper = _CountedWithHolds if keyed else _Counted
        helpers.append(wrapper(mutants.delete_for_unknown_key(installation)))
        return helpers[-1]

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        for n in range(40):
            await phone.put(f"k{n:02}", n)
        await phone.remove("k00")
        await phone.sync()
        tablet = world.add_device("tablet")
        await tablet.sync()  # 39 insertions, and the deletion of a key it never held

    outcome = simulate(scenario, seed=1, factory=factory, workdir=tmp_path)
    assert [(f.clause, f.device, f.key) for f in outcome.findings] == [("CB-3", "tablet", "k00")]
    tablet = helpers[1]
    if keyed:
        assert tablet.lookups >= 40 and tablet.whole_reads < 5  # the end checks only
    else:
        assert tablet.lookups == 0 and tablet.whole_reads >= 40


def test_a_factory_receives_the_helper_options_the_world_was_asked_for(tmp_path: Path) -> None:
    """Installation.options: what the in-process reference would get (the world's retry
    policy, its helper_options, the device's own options over both), the rng left out (it is
    Installation.rng); the legacy baseline, which has no such options, ignores them."""
    policy = RetryPolicy(initial_delay=7, max_delay=7, jitter=0)
    received: dict[str, Mapping[str, Any]] = {}

    def spy(installation: Installation) -> Helper:
        received[installation.device_id] = installation.options
        return legacy.factory(installation)

    async def scenario(world: World) -> None:
        world.add_device("phone")
        world.add_device("tablet", page_size=7)
        with pytest.raises(TypeError):
            received["phone"]["page_size"] = 1  # type: ignore[index]

    helper_options = {"page_size": 100, "full_sync_interval": None}
    outcome = simulate(
        scenario,
        seed=1,
        retry=policy,
        helper_options=helper_options,
        factory=spy,
        workdir=tmp_path,
    )
    assert outcome.ok, outcome.findings
    assert dict(received["phone"]) == {"retry": policy, **helper_options}
    assert dict(received["tablet"]) == {"retry": policy, **helper_options, "page_size": 7}


def _request_times(tmp_path: Path, name: str, **world_options: Any) -> list[float]:
    """When the phone sent its requests during a 60 s vault outage (a retry every pass)."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        world.take_down()
        await phone.put("x", 1)
        await world.advance(60)
        world.bring_up()

    trace = tmp_path / f"{name}.jsonl"
    outcome = simulate(scenario, seed=1, trace_path=trace, **world_options)
    assert outcome.ok, outcome.findings
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    return [e["t"] for e in events if e["kind"] == "request" and e["t"] < 60]


def test_the_reference_factory_honours_a_custom_retry_policy(tmp_path: Path) -> None:
    """RETRY-1 through a factory: the reference run by its factory retries on the world's
    custom policy (a pass every 7 s, no jitter) exactly as the in-process reference does; it
    used to ignore World(helper_options=...) and retry on brh's defaults."""
    from conformance.implementations import reference

    policy = RetryPolicy(initial_delay=7, max_delay=7, jitter=0)
    in_process = _request_times(tmp_path, "in-process", helper_options={"retry": policy})
    factory = _request_times(
        tmp_path,
        "factory",
        helper_options={"retry": policy},
        factory=reference.factory,
        workdir=tmp_path / "stores",
    )
    assert factory == in_process
    # one request per pass (the vault is down), 7 s apart give or take the link's latency
    assert len(in_process) == 9
    assert all(7 < b - a < 7.2 for a, b in pairwise(in_process))
    default = _request_times(
        tmp_path, "default", factory=reference.factory, workdir=tmp_path / "default"
    )
    assert default != factory  # the policy is what made them equal


def test_a_device_can_run_several_helper_instances_on_one_store(tmp_path: Path) -> None:
    """SYNC-5: a device whose app runs two helpers on one local store: each context lives in
    one instance, passes are reported per instance (``tablet#1``), a crash stops both and a
    restart brings both back; the refusals of one never cost the other a change."""
    trace = tmp_path / "trace.jsonl"

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        tablet = world.add_device("tablet", instances=2)
        assert len(tablet.impls) == 2
        assert tablet.helper_for("one") is not tablet.helper_for("two")
        assert tablet.helper_for("one").store is tablet.helper_for("two").store
        await phone.put("x", 1, context="one")
        await phone.put("y", 2, context="two")
        await world.advance(5)
        world.behave("tablet", context="two", mode="refuse", refusals=3)
        await tablet.sync()
        assert tablet.apps["one"].items == {"x": 1}
        assert tablet.apps["two"].items == {}
        await world.crash("tablet")
        assert not tablet.running
        await world.restart("tablet")
        await tablet.sync()  # the app's launch; the refused change is retried from then on
        await world.advance(600)
        assert tablet.apps["two"].items == {"y": 2}
        assert tablet.local("one") == {"x": 1}

    outcome = simulate(scenario, seed=3, trace_path=trace, contexts=("one", "two"))
    assert outcome.findings == []
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    passes = {e["device"] for e in events if e["kind"] == "pass"}
    assert {"tablet", "tablet#1"} <= passes


def test_instances_must_be_a_positive_count() -> None:
    """ERR-1 (simulator): a device with zero helper instances is refused, naming the argument."""

    async def main() -> None:
        world = World(1)
        with pytest.raises(ValueError, match="instances must be an int >= 1"):
            world.add_device("x", instances=0)


def test_a_request_on_the_link_arrives_then_answers() -> None:
    """A request applies ``up`` seconds after it is sent and is answered ``down`` later; a
    client that stops waiting before it arrives never applies it; a slow vault set meanwhile
    still delays it; a lost answer times out."""

    async def main() -> None:
        world = World(1)
        world.add_device("a")
        link, vault = world.links["a"], world.server.vault
        link.latency = 2.0
        await vault.create_collection("c")
        start = world.now()
        await link.insert_one("c", {"k": 1})
        assert world.now() - start == pytest.approx(4.0)

        async def stop_after(seconds: float) -> None:
            call = asyncio.ensure_future(link.insert_one("c", {"k": seconds}))
            await asyncio.sleep(seconds)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await asyncio.sleep(10)  # whatever was still to happen has happened

        await stop_after(1.0)  # before it arrived: never applied
        await stop_after(3.0)  # after it arrived: applied, the answer is dropped
        assert [d["k"] for d in vault.documents("c")] == [1, 3.0]

        start = world.now()
        call = asyncio.ensure_future(link.find_many("c", {}))
        await asyncio.sleep(1.0)
        world.slow_vault(5.0)  # in flight, not arrived: the vault is slow when it arrives
        assert len(await call) == 2
        assert world.now() - start == pytest.approx(2.0 + 5.0 + 2.0)
        world.fast_vault()

        link.lose_answers = 1
        start = world.now()
        with pytest.raises(NetworkError) as lost:
            await link.insert_one("c", {"k": 4})
        assert not lost.value.definite and world.now() - start == pytest.approx(link.timeout)
        assert [d["k"] for d in vault.documents("c")] == [1, 3.0, 4]
        await world.close()

    run(main())


def test_trace_counts_unwritten_events_once_and_writes_wanted_ones(tmp_path: Path) -> None:
    """Traces (issue 3): without a file, wants() counts the event and asks for no fields; with
    a file, it asks for them and emit() counts and writes the line, once; an unknown kind is
    refused either way."""
    from simulator.world.trace import Trace, read

    async def main() -> None:
        quiet = Trace()
        assert quiet.wants("request") is False
        assert quiet.counts["request"] == 1
        written = Trace(tmp_path / "t.jsonl")
        assert written.wants("request") is True
        assert written.counts["request"] == 0
        written.emit("request", device="a", id=1)
        written.close()
        assert written.counts["request"] == 1
        assert [line["kind"] for line in read(tmp_path / "t.jsonl")] == ["request"]
        with pytest.raises(ValueError, match="unknown trace kind"):
            quiet.wants("gossip")

    run(main())
