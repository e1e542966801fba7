"""The checkers (simulator/world/checkers.py): what must hold on every run, each finding
naming its clause; they catch helpers that break it, on the reference and on other
implementations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import brh.helper
from brh import Entry, SyncEvent
from brh.core import RULES, Action, Decision, decide
from brh.hlc import Version
from brh.store import EntryState, Record
from brh.wire import RemoteDoc
from conformance.implementations import legacy
from simulator import scenarios
from simulator.impl import Callback, Helper, Installation, ReferenceHelper
from simulator.timeloop import run
from simulator.world import START, World, simulate
from simulator.world.checkers import Finding, Write
from simulator.world.device import SimDevice
from simulator.world.settle import judge_idle_pass
from simulator.world.trace import Trace, read


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


def _checked(scenario: Callable[[World], Awaitable[None]], trace: Path | None = None) -> None:
    """Run ``scenario`` in a fresh world (seed 1) on virtual time, then close the world."""

    async def main() -> None:
        world = World(1, trace=Trace(trace))
        try:
            await scenario(world)
        finally:
            await world.close()

    run(main(), start=START)


def _clauses(world: World) -> list[tuple[str, str | None, str | None]]:
    return [(f.clause, f.device, f.key) for f in world.checker.findings]


def test_a_finding_names_its_clause_and_where_and_goes_to_the_trace(tmp_path: Path) -> None:
    """Issue 14 item 4: a finding names the checker, the clause, the simulated time, the device,
    the context and the key, and is written to the trace as a ``check`` line."""

    async def scenario(world: World) -> None:
        await world.advance(2.5)
        world.checker.fail("convergence", "SYNC-1", "differs", device="a", context="n", key="k")
        [finding] = world.checker.findings
        assert str(finding) == "[SYNC-1] convergence at t=2.500s a/n/k: differs"

    _checked(scenario, tmp_path / "t.jsonl")
    [line] = [line for line in read(tmp_path / "t.jsonl") if line["kind"] == "check"]
    assert line == {
        "t": 2.5,
        "kind": "check",
        "checker": "convergence",
        "clause": "SYNC-1",
        "message": "differs",
        "device": "a",
        "context": "n",
        "key": "k",
    }


async def _synced(world: World, *names: str) -> list[SimDevice]:
    """Devices that each put one entry, then synced until every one holds every entry."""
    devices = [world.add_device(name) for name in names]
    for device in devices:
        await device.put(f"from-{device.name}", device.name)
    for _ in range(3):
        for device in devices:
            await device.sync()
    return devices


def test_convergence_compares_every_copy_and_app_with_the_vault() -> None:
    """SYNC-1, CB-5: after a run the checker finds a local copy that is not the vault's live
    set, and an app model that is not (a key the app declined aside); a converged world has
    no finding."""

    async def scenario(world: World) -> None:
        _, b = await _synced(world, "a", "b")
        world.checker.check_end()
        assert world.checker.findings == []
        b.apps["notes"].items["from-a"] = "changed by hand"
        b.apps["notes"].items["declined"] = "the app may keep what it declined"
        b.apps["notes"].declined.add("declined")
        await world.server.vault.update_one(
            "backup_notes", {"key": "from-b"}, {"$set": {"data": "not what b wrote"}}
        )
        world.checker.check_end()
        found = sorted((f.clause, f.device, f.key) for f in world.checker.findings)
        assert found == [
            ("CB-5", "a", "from-b"),
            ("CB-5", "b", "from-a"),
            ("CB-5", "b", "from-b"),
            ("ORD-2", None, "from-b"),
            ("SYNC-1", "a", "from-b"),
            ("SYNC-1", "b", "from-b"),
        ]

    _checked(scenario)


def test_no_lost_update_wants_the_newest_acknowledged_write() -> None:
    """ORD-2: the final value of a key must be its newest acknowledged write, even one that
    never reached the vault; an older write on the vault is then a finding naming the lost one."""

    async def scenario(world: World) -> None:
        a, b = await _synced(world, "a", "b")
        world.disconnect("b")
        await a.put("k", "older")
        await a.sync()

        def lost() -> list[Finding]:
            world.checker.findings.clear()
            world.checker.check_end()
            return [f for f in world.checker.findings if f.clause == "ORD-2"]

        assert lost() == []
        await world.advance(5)
        await b.put("k", "newer")  # acknowledged, and never uploaded
        [finding] = lost()
        assert (finding.key, finding.context) == ("k", "notes")
        assert finding.message.startswith("acknowledged 'newer' by b (")
        assert finding.message.endswith("is not the final state 'older'")

    _checked(scenario)


def test_each_callback_is_checked_against_what_the_device_holds() -> None:
    """CB-1, CB-2, CB-3: an insertion of a key the device holds, a modification or deletion of
    one it does not hold are findings; the others are not."""

    async def scenario(world: World) -> None:
        world.add_device("a")
        await world.device("a").put("held", 1)
        before = world.checker.before_callback
        for kind in ("insert", "modify", "delete"):
            for key in ("held", "absent"):
                before("a", "notes", kind, Entry(key, 1, 0, 0))
        assert _clauses(world) == [
            ("CB-1", "a", "held"),
            ("CB-2", "a", "absent"),
            ("CB-3", "a", "absent"),
        ]

    _checked(scenario)


def _event(kind: str, **fields: Any) -> SyncEvent:
    return SyncEvent(kind, "a", context="notes", **fields)


def test_a_callback_after_a_refusal_and_an_echo_are_findings() -> None:
    """CB-6: no callback after a refusal before a new pass starts, as the harness sees it (a
    pull of the first context's collection starts one; a key-named read does not); CB-4: a
    device is never told about its own write (a callback carrying its version)."""

    async def scenario(world: World) -> None:
        world.add_device("a")
        checker = world.checker
        checker.callback_answered("a", "notes", "insert", "x", False)
        checker.request_sent("a", "query", "backup_notes", {"key": "x"})  # not a new pass
        checker.before_callback("a", "notes", "insert", Entry("y", 1, 0, 0))
        checker.request_sent("a", "query", "backup_notes", {"modified": {"$gte": 0}})
        checker.before_callback("a", "notes", "insert", Entry("x", 1, 0, 0))
        version = Version(1_750_000_000_000, 0, "a~00000001")
        checker.record_write(Write("a", "notes", "mine", version, False, 1))
        checker.on_event(_event("callback", key="mine", action="modify", version=version.encode()))
        assert _clauses(world) == [("CB-6", "a", "y"), ("CB-4", "a", "mine")]

    _checked(scenario)


def test_a_failed_pass_must_be_followed_by_another_within_the_policys_max_delay() -> None:
    """RETRY-1: after a failed pass (here: sync() reported it incomplete) the checker waits the
    retry bound (the larger of the policy's ``max_delay`` and the SPEC's default 300 s, and a
    second) for a request that starts a new pass, and reports none coming; a new pass in time,
    or the harness calling sync(), owes nothing."""

    async def scenario(world: World) -> None:
        world.add_device("a")
        bound = max(world.retry.max_delay, 300.0)
        checker = world.checker
        checker.sync_called("a")
        checker.sync_returned("a", False)
        await world.advance(bound)
        checker.request_sent("a", "query", "backup_notes", {})  # the retry came
        checker.sync_called("a")
        checker.sync_returned("a", False)
        await world.advance(bound + 0.5)
        assert world.checker.findings == []
        await world.advance(1)
        assert _clauses(world) == [("RETRY-1", "a", None)]
        assert "sync() reported an incomplete pass" in world.checker.findings[0].message
        checker.sync_returned("a", False)
        checker.sync_called("a")  # an outside trigger
        await world.advance(10 * bound)
        assert len(world.checker.findings) == 1

    _checked(scenario)


def test_an_idle_pass_costs_at_most_three_requests_per_context() -> None:
    """COST-1: an idle pass (as the link measured it) may cost a pull and two purge requests per
    context and read back no document; more is a finding naming the operations."""

    async def scenario(world: World) -> None:
        world.add_device("a")
        checker = world.checker
        judge_idle_pass(checker, "a", 1, 3, 0, {("query", "backup_notes"): 3}, {})
        assert checker.findings == []
        judge_idle_pass(
            checker,
            "a",
            1,
            4,
            0,
            {("find_one", "backup_notes"): 3, ("query", "backup_notes"): 1},
            {},
        )
        judge_idle_pass(checker, "a", 1, 1, 7, {}, {("find_many", "backup_notes"): 7})
        assert _clauses(world) == [("COST-1", "a", None), ("COST-1", "a", None)]
        first, second = (f.message for f in checker.findings)
        assert "sent 4 requests (budget 3" in first, first
        assert "3 × find_one on backup_notes, 1 × query on backup_notes" in first, first
        assert second.startswith("re-read 7 unchanged documents in an idle pass"), second

    _checked(scenario)


def test_a_convergence_finding_names_the_write_and_the_callback_behind_it(tmp_path: Path) -> None:
    """Issue 12 (reports that explain a failure): a convergence finding's trace line names as
    its causes the key's latest write and the device's latest callback for that key, so the
    timeline marks them, not only the final check."""
    from simulator.world.trace import read
    from tests.machine_impls import forgets_deletes

    trace = tmp_path / "trace.jsonl"

    async def main(world: World) -> None:
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("k", 1)
        await a.sync()
        await b.sync()
        await a.remove("k")
        await a.sync()

    simulate(main, seed=2, factory=forgets_deletes, workdir=tmp_path, trace_path=trace)
    checks = [e for e in read(trace) if e["kind"] == "check" and e["checker"] == "convergence"]
    assert checks, "the helper that forgets deletes converged"
    causes = checks[0]["causes"]
    assert {c["kind"] for c in causes} == {"write", "callback"}
    assert all(c["key"] == checks[0]["key"] for c in causes)
