"""The world (simulator/world/world.py): devices, paired faults, clocks, crashes and
reinstalls, helper instances, other implementations, and the settle phase.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from brh import RetryPolicy
from brh.vault import NetworkError
from conformance.implementations import legacy
from simulator.impl import Helper, Installation
from simulator.live import UnsupportedFault
from simulator.timeloop import run
from simulator.world import ABSENT, START, World, simulate


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


def test_the_vault_can_lose_a_context_collection() -> None:
    """lose_collection (for SPEC RES-3's tests) drops a context's collection and its documents
    from the fake vault, a no-op when it is already gone; an unknown context is refused with
    the known ones named, and a live vault cannot be made to lose one."""

    async def main() -> None:
        world = World(1, contexts=("notes", "contacts"))
        phone = world.add_device("phone")
        await phone.put("x", 1)
        await phone.put("c", 2, context="contacts")
        await phone.sync()
        assert "backup_notes" in world.server.vault.collection_names()
        await world.lose_collection("notes")
        await world.lose_collection("notes")
        assert world.server.vault.collection_names() == ["backup_contacts"]
        assert phone.local() == {"x": 1}
        with pytest.raises(ValueError, match=r"no context 'note'; did you mean 'notes'\?"):
            await world.lose_collection("note")
        world.server.live = True  # as on a real vault: the harness cannot reach inside it
        with pytest.raises(UnsupportedFault, match="lose_collection"):
            await world.lose_collection("contacts")
        world.server.live = False
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


def test_a_write_committed_late_is_stamped_on_arrival_and_visible_after_its_lag() -> None:
    """SYNC-4's premise (commit_lag): the vault stamps a write when it handles it, makes it
    visible and answers it the lag later; reads meanwhile are answered at once and do not see
    it, and a second write lands in the meantime with its own stamp. A drawn lag stays within
    0..seconds; off, a write is visible as it is answered."""

    async def main() -> None:
        world = World(1)
        world.add_device("a")
        world.add_device("b")
        writer, reader = world.links["a"], world.links["b"]
        await world.server.vault.create_collection("c")
        clock = world.server.clock
        await world.advance(2 - clock() % 1)  # a whole second and 0.9 s before the next
        second = int(clock())
        world.commit_lag(3.0, exact=True)
        lagging = asyncio.ensure_future(writer.insert_one("c", {"k": "late"}))
        await world.advance(1.5)
        start = world.now()
        assert await reader.find_many("c", {}) == []
        assert world.now() - start < 0.2  # reads are not delayed
        world.commit_at_once()
        await writer.insert_one("c", {"k": "now"})  # after the lagging one, visible first
        assert [d["k"] for d in await reader.find_many("c", {})] == ["now"]
        await lagging
        assert world.now() - start >= 1.5  # answered once visible: 3 s after it arrived
        stamps = {d["k"]: d["modified"] for d in world.server.vault.documents("c")}
        assert stamps == {"late": second, "now": second + 1}
        world.commit_lag(2.0)
        lags = []
        for n in range(20):
            sent = world.now()
            await writer.insert_one("c", {"k": n})
            lags.append(world.now() - sent)
        assert max(lags) <= 2.0 + 0.1 and max(lags) - min(lags) > 0.5  # drawn, within bounds
        await world.close()

    run(main())


def test_a_world_of_another_implementation_settles_when_quiet(tmp_path: Path) -> None:
    """SYNC-1: quiet means nothing changed. A write the vault refused (the legacy creates its
    collection on every pass and gets "already exists") changed nothing, so a converged world
    of such devices settles with no finding but the cost of its idle passes (it asks the vault
    about every stored key on every pass, W9)."""

    async def scenario(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", 1)
        await world.advance(5)
        await b.put("y", 2)

    outcome = simulate(scenario, seed=1, factory=legacy.factory, workdir=tmp_path)
    assert {f.clause for f in outcome.findings} == {"COST-1"}, outcome.findings


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

    run(main())


def test_settle_heals_restarts_and_syncs_until_nothing_changes(tmp_path: Path) -> None:
    """Issue 14 item 4, SYNC-1: the settle phase turns every fault off, restarts a crashed
    device, and syncs every device until a round changes nothing: a write made while the vault
    was down and its device then crashed reaches everyone, and the checkers find nothing."""
    trace = tmp_path / "t.jsonl"

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.take_down()
        world.partition("tablet")
        await phone.put("x", "written while the vault was down")
        await world.crash("phone")
        assert await world.settle() == []
        assert phone.running and tablet.app.items == {"x": "written while the vault was down"}
        assert not any(world.fault_on(name) for name in ("take_down", "freeze"))
        assert not world.fault_on("partition", "tablet")

    assert simulate(scenario, seed=4, trace_path=trace).ok
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [e["event"] for e in events if e["kind"] == "device"] == [
        "join",
        "join",
        "crash",
        "restart",
    ]


def test_settle_reports_a_world_still_changing_after_its_rounds() -> None:
    """Issue 14 item 4, SYNC-1: a world that never goes quiet (here: every round counts as a
    change) is a finding of the settle phase, instead of a run that never ends (its devices
    converged, so no forced full pass follows)."""

    async def main() -> list[str]:
        world = World(1)
        world.add_device("phone")
        counter = itertools.count()
        world.changes = lambda: next(counter)  # type: ignore[method-assign]
        findings = await world.settle(max_rounds=3)
        await world.close()
        return [f"{f.checker} {f.clause}: {f.message}" for f in findings]

    still = "still changing after 3 rounds of incremental passes with every fault healed"
    assert run(main(), start=START) == [f"settle SYNC-1: {still}"]


def _draws(seed: int, order: tuple[str, ...]) -> dict[str, list[float]]:
    async def main() -> dict[str, list[float]]:
        world = World(seed)
        for name in order:
            world.add_device(name)
        draws = {name: [world.links[name].rng.random() for _ in range(3)] for name in order}
        await world.close()
        return draws

    return run(main(), start=START)


def test_each_device_draws_from_a_generator_of_its_own_seeded_by_name() -> None:
    """Issue 14 item 4, determinism: a device's link draws from a generator seeded by the
    world's seed and the device's name, so adding devices in another order (or adding more)
    changes nothing for the others, and another seed changes everything."""
    first = _draws(5, ("phone", "tablet"))
    reordered = _draws(5, ("tablet", "laptop", "phone"))
    assert {name: reordered[name] for name in first} == first
    assert first["phone"] != first["tablet"]
    assert _draws(6, ("phone",))["phone"] != first["phone"]


def test_the_vaults_live_set_is_the_newest_version_of_each_key() -> None:
    """Issue 10 item 2: what the checkers compare with, read in the original helper's fields
    only (DATA-2), for any implementation: of several documents of one key (racing creators)
    the one with the newest ``modificationDate`` counts, whatever ``brhVersion`` says; a
    tombstone removes its key; a document without a date is the oldest; documents that share
    the newest date and disagree are each a possible outcome."""

    async def main() -> tuple[dict[str, Any], dict[str, list[Any]]]:
        world = World(1)
        vault = world.server.vault
        await vault.create_collection("backup_notes")
        await vault.insert_many(
            "backup_notes",
            [
                {"key": "x", "data": "newer", "modificationDate": 2, "brhVersion": "1"},
                {"key": "x", "data": "older", "modificationDate": 1, "brhVersion": "2"},
                {"key": "y", "data": "gone", "modificationDate": 1, "deletionDate": 5},
                {"key": "z", "data": "undated", "deletionDate": None},
                {"key": "z", "data": "dated", "modificationDate": 1, "deletionDate": None},
                {"key": "t", "data": "one", "modificationDate": 3, "deletionDate": None},
                {"key": "t", "data": "two", "modificationDate": 3, "deletionDate": None},
                {"data": "no key"},
            ],
        )
        live = world.vault_live("notes")
        outcomes = world.vault_outcomes("notes")
        assert world.vault_live("other") == {}
        await world.close()
        return live, outcomes

    live, outcomes = run(main(), start=START)
    assert live == {"t": "one", "x": "newer", "z": "dated"}
    assert outcomes["t"] == ["one", "two"] and outcomes["y"] == [ABSENT]


def test_a_world_refuses_a_device_name_twice_and_a_factory_without_a_workdir() -> None:
    """Issue 14 item 4, ERR-1 (simulator): building a world or a device wrongly is a
    ValueError that says what is wrong, before anything runs."""

    async def main() -> None:
        with pytest.raises(ValueError, match="a factory needs a workdir"):
            World(1, factory=legacy.factory)
        world = World(1)
        world.add_device("phone")
        with pytest.raises(ValueError, match="a device named 'phone' exists already"):
            world.add_device("phone")
        assert list(world.devices) == ["phone"]
        await world.close()

    run(main(), start=START)


def test_a_slow_app_keeps_a_key_the_user_wrote_and_deleted_while_it_asked(tmp_path: Path) -> None:
    """ORD-7, CB-5 (the simulated app; deep search seed 48): while a slow callback inserting
    b's version asks the user, the user writes the key and deletes it again. The item looks as
    it did before, but the user's edits are newer: the app keeps them (nothing shown), as the
    helper keeps its newer local delete; the app and the local copy agree."""

    async def main() -> tuple[dict[str, object], object]:
        world = World(3, workdir=tmp_path)
        try:
            a, b = world.add_device("a"), world.add_device("b")
            await b.put("k", "from b")
            await b.sync()
            world.behave("a", mode="slow", delay=4.0)
            syncing = asyncio.ensure_future(a.sync())
            await world.advance(1)
            await a.put("k", "mine")
            await a.remove("k")
            await syncing
            return dict(a.app.items), await a.get("k")
        finally:
            await world.close()

    items, local = run(main(), start=START)
    assert items == {} and local is None, (items, local)
