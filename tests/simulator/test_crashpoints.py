"""Crashes armed inside a device's work (simulator/world/crashpoints.py, ``world.crash_at``).

Each test arms a crash at one point (a vault request as it leaves or once applied, a callback
before or after the app took the change, the k-th line a process writes), checks that the
device died exactly there (what the vault and the app saw), that the restart found its store
as the crash left it, and that the settle phase's checkers find nothing for the reference, in
process and over the protocol (issue 10 item 5; SPEC OFF-2, OFF-4, CB-7, ORD-5).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.implementations.legacy import factory as legacy
from conformance.implementations.mutants import split_local_write
from conformance.protocol.client import command_factory
from simulator.world import World, simulate
from simulator.world.crashpoints import CrashPoint
from simulator.world.trace import read

REFERENCE = [sys.executable, "-m", "conformance.protocol.reference"]


def _run(scenario: Any, tmp_path: Path, *, process: bool, **kw: Any) -> Any:
    if process:
        kw.update(factory=command_factory(REFERENCE), workdir=tmp_path / "stores")
    return simulate(scenario, seed=3, trace_path=tmp_path / "trace.jsonl", **kw)


def _ops_until_crash(tmp_path: Path, device: str) -> list[tuple[str, bool]]:
    """(op, applied) of each request ``device`` sent before its first crash, in order (from
    the trace; a request applied after the crash counts as applied)."""
    requests: dict[int, str] = {}
    applied: set[int] = set()
    crashed = False
    for event in read(tmp_path / "trace.jsonl"):
        if event.get("device") != device:
            continue
        if event["kind"] == "device" and event["event"] == "crash":
            crashed = True
        elif event["kind"] == "request" and not crashed:
            requests[event["id"]] = event["op"]
        elif event["kind"] == "applied":
            applied.add(event["id"])
    return [(op, rid in applied) for rid, op in sorted(requests.items())]


@pytest.mark.parametrize(
    ("process", "applied"),
    [(False, False), (False, True), (True, True)],
    ids=["in-process-as-it-leaves", "in-process-once-applied", "protocol-once-applied"],
)
def test_a_crash_at_a_request_lands_there_and_the_restart_keeps_the_store(
    tmp_path: Path, process: bool, applied: bool
) -> None:
    """OFF-4, ORD-5: a crash armed at the pass's third request (the upload of ``x``) kills the
    device as the request leaves (the vault never sees it) or once the vault applied it (the
    answer never arrives). The waiting sync reports not completed, the device is crashed, the
    restarted device still has ``x`` in its store and its pending upload, and the settle
    phase finds no duplicate, no lost write. (Over the protocol once: each process costs.)"""
    facts: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("x", 1)
        world.crash_at("phone", request=3, applied=applied)
        facts["sync"] = bool(await phone.sync())
        await world.advance(1)
        facts["running"] = phone.running
        facts["vault"] = world.vault_live("notes")
        await world.restart("phone")
        facts["restarted"] = phone.local()
        await world.settle()
        facts["uploaded"] = world.vault_live("notes")
        facts["documents"] = len(world.server.vault.documents("backup_notes"))

    outcome = _run(scenario, tmp_path, process=process)
    assert outcome.ok, outcome.findings
    facts["ops"] = _ops_until_crash(tmp_path, "phone")
    assert facts["sync"] is False and facts["running"] is False
    assert [op for op, _ in facts["ops"]] == ["create_collection", "query", "update_one"]
    assert facts["ops"][2][1] is applied  # died before or after the vault applied it
    assert facts["vault"] == ({"x": 1} if applied else {})
    assert facts["restarted"] == {"x": 1}
    assert facts["uploaded"] == {"x": 1}
    assert facts["documents"] == 1  # the repeated upload made no duplicate (ORD-5)


@pytest.mark.parametrize(
    ("process", "applied"),
    [(False, False), (False, True), (True, True)],
    ids=["in-process-before-the-app", "in-process-after-the-app", "protocol-after-the-app"],
)
def test_a_crash_in_a_callback_redelivers_the_change_after_the_restart(
    tmp_path: Path, process: bool, applied: bool
) -> None:
    """CB-7: the tablet dies in its first callback of a pass (the modification of ``x``),
    before its app saw it or after the app took it; either way the helper never recorded it,
    so the restarted tablet still holds the old version and the next pass delivers it
    again."""
    facts: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("x", 1)
        await phone.sync()
        await tablet.sync()
        await phone.put("x", 2)
        await phone.sync()
        world.crash_at("tablet", callback=1, applied=applied)
        facts["sync"] = bool(await tablet.sync())
        await world.advance(1)
        facts["app before the crash"] = dict(tablet.app.items)
        facts["running"] = tablet.running
        await world.restart("tablet")
        facts["restarted"] = tablet.local()
        await tablet.sync()
        facts["calls"] = list(tablet.app.calls)

    outcome = _run(scenario, tmp_path, process=process)
    assert outcome.ok, outcome.findings
    assert facts["sync"] is False and facts["running"] is False
    assert facts["app before the crash"] == {"x": 2 if applied else 1}
    assert facts["restarted"] == {"x": 1}
    assert facts["calls"] == [("modify", "x", 2)]


@pytest.mark.parametrize("line", [1, 3])
def test_a_process_is_killed_right_after_its_kth_line(tmp_path: Path, line: int) -> None:
    """OFF-4 over the protocol: a crash armed at line k kills the process right after the
    harness read the k-th line it wrote in the pass (create_collection, query, update_one),
    before serving it: the requests before it were served, that one never was. The restart
    finds the store as left, and the change still reaches the vault."""
    facts: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("x", 1)
        world.crash_at("phone", line=line)
        facts["sync"] = await phone.sync()
        await world.advance(1)
        facts["running"] = phone.running
        await world.restart("phone")
        facts["restarted"] = phone.local()
        await world.settle()
        facts["uploaded"] = world.vault_live("notes")

    outcome = _run(scenario, tmp_path, process=True)
    assert outcome.ok, outcome.findings
    ops = [op for op, _ in _ops_until_crash(tmp_path, "phone")]
    assert facts["sync"] is False and facts["running"] is False
    assert ops == ["create_collection", "query", "update_one"][: line - 1]
    assert facts["restarted"] == {"x": 1}
    assert facts["uploaded"] == {"x": 1}


def test_a_line_crash_needs_a_process_and_bad_points_are_refused() -> None:
    """Bad input names the argument: exactly one point, integers >= 1, ``applied`` only with
    a request or a callback, and a line crash only for an implementation run as a process."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "exactly one of request"),
        ({"request": 1, "line": 2}, "got request, line"),
        ({"request": 0}, "request must be an integer >= 1"),
        ({"callback": True}, "callback must be an integer >= 1"),
        ({"line": 1, "applied": True}, "applied goes with request or callback"),
        ({"step": 2, "applied": True}, "applied goes with request or callback"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            CrashPoint(**kwargs)
    errors: list[str] = []

    async def scenario(world: World) -> None:
        world.add_device("phone")
        try:
            world.crash_at("phone", line=1)
        except ValueError as exc:
            errors.append(str(exc))
        await world.crash("phone")
        try:
            world.crash_at("phone", request=1)
        except ValueError as exc:
            errors.append(str(exc))

    simulate(scenario, seed=1)
    assert "only a process writes lines" in errors[0]
    assert "has crashed; restart it first" in errors[1]


def test_an_armed_crash_that_is_never_reached_is_disarmed_by_the_settle_phase() -> None:
    """The settle phase turns every fault off: a crash armed at a request the device never
    sends does not fire while the world settles."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("x", 1)
        world.crash_at("phone", request=50)

    outcome = simulate(scenario, seed=1)
    assert outcome.ok, outcome.findings


def test_a_local_write_split_in_two_is_caught_by_a_crash_inside_the_pass(tmp_path: Path) -> None:
    """OFF-2 (W12): the mutant ``split_local_write`` commits a change's data at once and its
    upload mark only when the next pass reads the queue. A crash as the pass's first request
    leaves (after the write was acknowledged, before the pass reached the push) loses the
    upload for good: the checkers find the acknowledged write missing, while the reference
    passes the same world."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        world.add_device("tablet")
        await phone.put("x", 1)
        world.crash_at("phone", request=1)
        await phone.sync()
        await world.advance(1)
        await world.restart("phone")

    assert simulate(scenario, seed=2).ok
    outcome = simulate(scenario, seed=2, factory=split_local_write, workdir=tmp_path)
    assert not outcome.ok
    assert any("x" in str(finding) for finding in outcome.findings), outcome.findings


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5])
def test_a_step_crash_kills_an_in_process_helper_at_its_kth_suspension(step: int) -> None:
    """OFF-2, OFF-4 in process: a crash armed at step k (the k-th time one of the phone's
    helper tasks suspends) lands inside the pass the two writes started: the reference's pass
    suspends at each of its four requests (create_collection, the pull, two uploads), so steps
    1 to 4 kill it there, and step 5 is never reached. Each time the restart keeps both
    acknowledged writes and the settle phase finds nothing."""
    facts: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await world.advance(5)  # idle: no helper task of the phone is running
        world.crash_at("phone", step=step)
        await phone.put("x", 1)
        await phone.put("y", 2)
        await world.advance(5)  # the debounce starts the pass
        facts["fired"] = not phone.running
        facts["uploaded before"] = world.vault_live("notes")
        if not phone.running:
            await world.restart("phone")
        facts["restarted"] = phone.local()

    outcome = simulate(scenario, seed=1)
    assert outcome.ok, outcome.findings
    assert facts["fired"] is (step <= 4)
    uploaded = {5: {"x": 1, "y": 2}, 4: {"x": 1}}.get(step, {})
    assert facts["uploaded before"] == uploaded
    assert facts["restarted"] == {"x": 1, "y": 2}


def test_a_step_crash_after_an_acknowledged_write_shows_the_legacy_s_background_writes(
    tmp_path: Path,
) -> None:
    """OFF-2 (W12): the legacy port's store persists a write in the background, in steps of
    its own; a crash at the first suspension after the app's write returned loses that write,
    which the checkers report. The reference keeps it."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await world.advance(5)
        world.disconnect("phone")  # the pass the write starts fails at once
        await phone.put("x", 1)
        world.reconnect("phone")
        world.crash_at("phone", step=1)
        running = asyncio.ensure_future(phone.sync())
        await asyncio.gather(running, return_exceptions=True)
        await world.advance(1)
        assert not phone.running
        await world.restart("phone")

    assert simulate(scenario, seed=1).ok
    outcome = simulate(scenario, seed=1, factory=legacy, workdir=tmp_path)
    assert [f.clause for f in outcome.findings] == ["ORD-2"], outcome.findings
    assert "notes/x" in str(outcome.findings[0])
