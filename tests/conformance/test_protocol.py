"""The out-of-process protocol: the reference helper as a process, driven by the harness.

The reference runs as ``python -m conformance.protocol.reference`` behind
:func:`conformance.protocol.client.command_factory`, in simulated worlds on virtual time: if it
converges, retries by itself, survives a kill and replays exactly through the protocol, the
protocol carries everything a helper needs. ``tests/conformance/protocol_fake.py`` misbehaves on
purpose to show that each kind of violation fails with an error naming what was wrong.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import select
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from brh import HelperClosedError, InvalidArgumentError, ReentrantCallError, UnknownContextError
from conformance.protocol.client import (
    ProcessHelper,
    ProtocolError,
    command_factory,
)
from hivevault.vault import FakeVault
from simulator.impl import Helper, Installation
from simulator.timeloop import run
from simulator.world import START, World, simulate

REFERENCE = [sys.executable, "-m", "conformance.protocol.reference"]
FAKE = [sys.executable, str(Path(__file__).with_name("protocol_fake.py"))]


def world_run(
    tmp_path: Path, scenario: Callable[[World], Awaitable[None]], *, seed: int = 1, **kw: Any
) -> Any:
    """Run a scenario with every device running the reference as a process; settle; findings."""
    outcome = simulate(
        scenario,
        seed=seed,
        factory=command_factory(REFERENCE),
        workdir=tmp_path,
        **kw,
    )
    assert outcome.ok, outcome.findings
    return outcome


def installation(tmp_path: Path, vault: FakeVault, name: str = "solo") -> Installation:
    return Installation(
        vault=vault,
        store=tmp_path / name,
        clock=lambda: asyncio.get_running_loop().time(),
        device_id=name,
        rng=random.Random(name),
    )


def accept(entry: Any) -> bool:
    return True


# -- the reference through the protocol ---------------------------------------------------------


def test_two_devices_converge(tmp_path: Path) -> None:
    """SYNC-1 over the protocol: writes, a delete and an edit on two devices end up everywhere."""
    seen: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        assert isinstance(phone.impl, ProcessHelper) and isinstance(phone.impl, Helper)
        await phone.put("a", {"text": "from the phone"})
        await tablet.put("b", [1, 2, 3])
        await tablet.put("gone", True)
        await world.advance(5)
        await phone.sync()
        await tablet.remove("gone")
        await phone.put("b", "edited on the phone")
        await world.settle()
        seen.update(phone=phone.local(), tablet=tablet.local(), app=dict(tablet.app.items))
        seen["implementation"] = phone.impl.implementation

    world_run(tmp_path, scenario)
    expected = {"a": {"text": "from the phone"}, "b": "edited on the phone"}
    assert seen["phone"] == seen["tablet"] == seen["app"] == expected
    assert seen["implementation"]["name"] == "brh"
    assert (tmp_path / "phone.1" / "brh.sqlite3").exists()  # the store is where hello said


def test_refusal_is_retried_by_a_timer(tmp_path: Path) -> None:
    """RETRY-1 over the protocol: after a refusal, the retry comes from the implementation's own
    timer (idle's wake_at, then a tick): nobody calls sync again."""
    results: list[Any] = []

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.behave("tablet", mode="refuse", refusals=2)
        await phone.put("x", 1)
        await phone.sync()
        results.append(await tablet.sync())
        assert tablet.app.items == {}
        await world.advance(60)  # no call: timers only
        results.append(dict(tablet.app.items))
        results.append(tablet.app.kinds())

    world_run(tmp_path, scenario)
    assert results == [False, {"x": 1}, ["insert", "insert", "insert"]]


def test_crash_mid_sync_then_restart_loses_nothing(tmp_path: Path) -> None:
    """OFF-4 over the protocol: a SIGKILL while a request is in flight; the restarted process
    (same store) uploads the change; the sync that was waiting reports not completed."""
    facts: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        world.slow_link("phone", (1.0, 1.0))
        await phone.put("kept", "yes")
        waiting = asyncio.create_task(phone.sync())
        await world.advance(0.5)  # the pass's first request is on its way
        process = phone.impl.process  # type: ignore[attr-defined]
        await world.crash("phone")
        facts["signal"] = process.returncode
        facts["waiting"] = await waiting
        facts["vault"] = world.vault_live("notes")
        await world.restart("phone")
        facts["after restart"] = phone.local()
        world.fast_link("phone")
        facts["synced"] = await phone.sync()
        facts["uploaded"] = world.vault_live("notes")

    world_run(tmp_path, scenario)
    assert facts == {
        "signal": -signal.SIGKILL,
        "waiting": False,
        "vault": {},
        "after restart": {"kept": "yes"},
        "synced": True,
        "uploaded": {"kept": "yes"},
    }


def test_offline_then_reconnect(tmp_path: Path) -> None:
    """OFF-1, OFF-3 over the protocol: writes while offline return at once; the retries that
    fail (definite network errors in replies) end when the device reconnects."""
    facts: dict[str, Any] = {}

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        world.disconnect("phone")
        await phone.put("note", "written offline")
        facts["synced offline"] = await phone.sync()
        await world.advance(10)
        facts["vault offline"] = world.vault_live("notes")
        world.reconnect("phone")
        await world.advance(60)
        facts["vault online"] = world.vault_live("notes")

    world_run(tmp_path, scenario)
    assert facts == {
        "synced offline": False,
        "vault offline": {},
        "vault online": {"note": "written offline"},
    }


def test_same_seed_same_run(tmp_path: Path) -> None:
    """Determinism through processes: the same seed gives a byte-identical trace, lossy links,
    latency, retry jitter (seeded through hello) and all."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.lossy("phone", requests=0.2, answers=0.2)
        for n in range(4):
            await phone.put(f"p{n}", n)
            await tablet.put(f"t{n}", n)
            await world.advance(0.3)
        await world.advance(30)

    traces = []
    for run_number in (1, 2):
        workdir = tmp_path / f"run{run_number}"
        trace = tmp_path / f"run{run_number}.jsonl"
        world_run(workdir, scenario, seed=7, trace_path=trace)
        traces.append(trace.read_bytes())
    assert traces[0] == traces[1]
    assert b'"lost":true' in traces[0]  # the faults did happen


def test_command_errors_name_what_was_wrong(tmp_path: Path) -> None:
    """ERR-1, ERR-2, CB-8 over the protocol: the implementation's errors come back as brh's
    exceptions, naming the argument; a write from inside a callback is re-entrant."""
    caught: list[BaseException] = []

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        impl = phone.impl
        with pytest.raises(InvalidArgumentError, match="must not be empty") as empty:
            await impl.upsert_database_entry("notes", "", 1)
        with pytest.raises(UnknownContextError) as unknown:
            await impl.upsert_database_entry("nope", "k", 1)
        with pytest.raises(InvalidArgumentError) as twice:
            impl.add_sync_context("notes", accept, accept, accept)
        with pytest.raises(InvalidArgumentError, match="protocol cannot carry") as typed:
            await impl.upsert_database_entry("notes", 5, 1)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="not JSON") as nan:
            await impl.upsert_database_entry("notes", "k", float("nan"))
        assert [e.value.argument for e in (empty, unknown, twice, typed, nan)] == [
            "key",
            "context",
            "context",
            "key",
            "data",
        ]
        with pytest.raises(UnknownContextError):
            impl.local_entries("nope")

        async def write_back(entry: Any) -> bool:
            try:
                await impl.upsert_database_entry("inbox", "echo", entry["data"])
            except ReentrantCallError as exc:
                caught.append(exc)
                raise
            return True

        impl.add_sync_context("inbox", write_back, accept, accept)
        tablet.impl.add_sync_context("inbox", accept, accept, accept)
        await tablet.impl.upsert_database_entry("inbox", "m", "hi")
        await tablet.impl.sync()
        assert await impl.sync() is False  # the callback raised: a refusal
        await world.crash("phone")  # the inbox context is not one the world checks

    world_run(tmp_path, scenario, contexts=("notes",))
    assert len(caught) == 1 and "callback" in str(caught[0])


def test_orderly_stop_and_restart_on_the_same_store(tmp_path: Path) -> None:
    """The close command: the process answers, exits with status 0, and its store holds what
    was written; every later call is a closed error. (With log_traffic, every line is kept.)"""

    async def main() -> dict[str, Any]:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        first = ProcessHelper(installation(tmp_path, vault), REFERENCE, log_traffic=True)
        first.add_sync_context("notes", accept, accept, accept)
        await first.upsert_database_entry("notes", "k", "v")
        await first.stop()
        with pytest.raises(HelperClosedError):
            await first.sync()
        again = ProcessHelper(installation(tmp_path, vault), REFERENCE)
        again.add_sync_context("notes", accept, accept, accept)
        facts = {"status": first.process.returncode, "local": again.local_entries("notes")}
        traffic = first.traffic_path.read_text().splitlines()
        assert traffic[0].startswith('> {"type":"hello","protocol":1,"device_id":"solo"')
        assert traffic[-2:] == [
            '< {"type":"result","id":3,"ok":true,"value":null}',
            '< {"type":"idle","wake_at":null}',
        ]
        facts["synced"] = await again.sync()
        await again.close()
        return facts

    assert run(main(), start=START) == {"status": 0, "local": {"k": "v"}, "synced": True}


def test_get_and_a_local_only_delete_that_a_full_pass_repairs(tmp_path: Path) -> None:
    """API-2, API-3, SYNC-10 over the protocol: get returns the entry or null; a locally_only
    delete forgets the local copy without telling the vault; sync(full=True) restores it."""

    async def main() -> list[Any]:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        helper = ProcessHelper(installation(tmp_path, vault), REFERENCE)
        helper.add_sync_context("notes", accept, accept, accept)
        await helper.upsert_database_entry("notes", "k", {"n": 1})
        facts: list[Any] = [await helper.sync()]
        entry = await helper.get_database_entry("notes", "k")
        assert entry is not None and entry["creationDate"] == entry["modificationDate"]
        facts += [
            entry["data"],
            entry["deletionDate"],
            await helper.get_database_entry("notes", "x"),
        ]
        await asyncio.sleep(10)  # past the overlap window: the next pass settles the cursor
        assert await helper.sync()
        await helper.delete_database_entry("notes", "k", locally_only=True)
        facts += [helper.local_entries("notes"), await helper.sync()]
        facts += [helper.local_entries("notes"), await helper.sync(full=True)]
        facts.append(helper.local_entries("notes"))
        await helper.close()
        return facts

    assert run(main(), start=START) == [
        True,
        {"n": 1},
        None,
        None,
        {},  # forgotten locally...
        True,
        {},  # ...and an incremental pass does not bring it back,
        True,
        {"k": {"n": 1}},  # a full one does
    ]


# -- the optional holds command ------------------------------------------------------------------

WITHOUT_OPTIONAL = [*REFERENCE, "--no-optional-commands"]


def test_holds_answers_from_the_local_store_when_announced(tmp_path: Path) -> None:
    """The optional ``holds`` command: sent only because the hello announced it; true for a
    live key, false for an absent or deleted one, an error naming an unknown context. An
    implementation that does not announce it gets the same answers from ``local_entries``,
    and the harness never sends it ``holds``."""

    async def answers(argv: list[str], name: str) -> dict[str, Any]:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        helper = ProcessHelper(installation(tmp_path, vault, name), argv, log_traffic=True)
        helper.add_sync_context("notes", accept, accept, accept)
        await helper.upsert_database_entry("notes", "live", 1)
        await helper.upsert_database_entry("notes", "gone", 2)
        await helper.delete_database_entry("notes", "gone")
        facts: dict[str, Any] = {
            "announced": sorted(helper.optional_commands),
            "held": [helper.holds("notes", key) for key in ("live", "gone", "never")],
        }
        with pytest.raises(UnknownContextError):
            helper.holds("nope", "live")
        await helper.close()
        traffic = helper.traffic_path.read_text()
        facts["sent"] = [
            name for name in ("holds", "local_entries") if f'"name":"{name}"' in traffic
        ]
        return facts

    assert run(answers(REFERENCE, "with"), start=START) == {
        "announced": ["holds"],
        "held": [True, False, False],
        "sent": ["holds"],
    }
    assert run(answers(WITHOUT_OPTIONAL, "without"), start=START) == {
        "announced": [],
        "held": [True, False, False],
        "sent": ["local_entries"],
    }


def test_the_harness_never_sends_an_optional_command_that_was_not_announced(
    tmp_path: Path,
) -> None:
    """Capability negotiation, harness side: a ``holds`` to an implementation whose hello did
    not list it is refused before it is written (a harness bug, not the implementation's)."""

    async def main() -> None:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        helper = ProcessHelper(installation(tmp_path, vault), WITHOUT_OPTIONAL)
        helper.add_sync_context("notes", accept, accept, accept)
        with pytest.raises(RuntimeError, match="did not announce it"):
            helper._immediate("holds", {"context": "notes", "key": "k"})
        assert helper.failure is None and helper.local_entries("notes") == {}
        await helper.close()

    run(main(), start=START)


def test_a_restore_asks_holds_per_callback_not_the_whole_local_copy(tmp_path: Path) -> None:
    """The callback-contract checks (CB-1..CB-3) cost one ``holds`` per callback, not a read of
    the whole context (which made a large restore quadratic); an implementation without
    ``holds`` is checked through ``local_entries`` and the run is the same, byte for byte."""

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        for n in range(30):
            await phone.put(f"k{n:02}", n)
        await phone.remove("k00")
        await phone.sync()
        tablet = world.add_device("tablet")
        await tablet.sync()  # 29 insert callbacks
        await phone.put("k01", "edited")
        await phone.remove("k02")
        await phone.sync()
        await tablet.sync()  # a modify and a delete callback

    counts: dict[str, dict[str, int]] = {}
    traces = []
    for label, argv in (("with", REFERENCE), ("without", WITHOUT_OPTIONAL)):
        workdir = tmp_path / label
        trace = tmp_path / f"{label}.jsonl"
        outcome = simulate(
            scenario,
            seed=3,
            factory=command_factory(argv, log_traffic=True),
            workdir=workdir,
            trace_path=trace,
        )
        assert outcome.ok, outcome.findings
        traces.append(trace.read_bytes())
        traffic = (workdir / "tablet.1.traffic.log").read_text()
        counts[label] = {
            name: traffic.count(f'"name":"{name}"') for name in ("holds", "local_entries")
        }
        counts[label]["callbacks"] = traffic.count('< {"type":"callback"')
    assert traces[0] == traces[1]
    callbacks = counts["with"]["callbacks"]
    assert callbacks == counts["without"]["callbacks"] >= 31
    assert counts["with"]["holds"] == callbacks  # one lookup per callback...
    assert counts["with"]["local_entries"] < 5  # ...and the whole copy only for the end checks
    assert counts["without"]["holds"] == 0
    assert counts["without"]["local_entries"] >= callbacks


# -- violations fail with a clear error ---------------------------------------------------------


def fake(tmp_path: Path, mode: str, **options: Any) -> Callable[[Installation], Helper]:
    return command_factory([*FAKE, mode], **options)


def start_fake(tmp_path: Path, mode: str, *, timeout: float = 30.0) -> ProtocolError:
    """Start the fake in ``mode``, add a context; the ProtocolError the harness raised."""

    async def main() -> ProtocolError:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        with pytest.raises(ProtocolError) as raised:
            helper = fake(tmp_path, mode, timeout=timeout)(installation(tmp_path, vault))
            await asyncio.sleep(1)  # "stall" spins its timer meanwhile
            helper.add_sync_context("notes", accept, accept, accept)
        return raised.value

    return run(main(), start=START)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "bad-field",
            r"sent a 'vault' message that breaks the protocol: args.collection: "
            r"expected string, got the number 3",
        ),
        ("wrong-version", r"speaks protocol version 99; this harness speaks 1"),
        ("not-json", r"sent a line that breaks the protocol: not JSON"),
        ("exit", r"exited with status 3 while the harness waited for idle(.|\n)*giving up"),
        ("unknown-result", r"result for command 101, which is not waiting"),
        ("late-answer", r"did not answer the 'add_context' command within its turn"),
        ("stall", r"asked 1000 times in a row to be woken at"),
        ("chatty", r"wrote after its idle, before the harness sent anything"),
    ],
)
def test_a_violation_names_what_was_wrong(tmp_path: Path, mode: str, expected: str) -> None:
    """Each kind of violation stops the run with an error naming the implementation, the message
    type and field or the rule broken (and the tail of its stderr)."""
    error = start_fake(tmp_path, mode)
    assert str(error).startswith(f"implementation {FAKE[0]}") or FAKE[0] in str(error)
    assert "device 'solo'" in str(error)
    assert re.search(expected, str(error)), str(error)


def test_a_hung_implementation_hits_the_turn_timeout(tmp_path: Path) -> None:
    """A turn that never ends fails after the (real-time) turn timeout, saying what it waited
    for, instead of hanging the suite."""
    error = start_fake(tmp_path, "hang", timeout=0.5)
    assert "no idle within 0.5 s (the turn timeout)" in str(error)


def test_after_a_violation_every_call_raises_it(tmp_path: Path) -> None:
    """A violation during a background turn (here: a reply) fails the commands waiting, and
    every later call; the process is gone."""

    async def main() -> None:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        helper = ProcessHelper(installation(tmp_path, vault), [*FAKE, "late-answer"])
        with pytest.raises(ProtocolError) as first:
            helper.add_sync_context("notes", accept, accept, accept)
        with pytest.raises(ProtocolError) as second:
            await helper.sync()
        assert first.value is second.value is helper.failure
        assert helper.process.poll() is not None
        await helper.close()  # harmless

    run(main(), start=START)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfd_open")
def test_a_crash_kills_the_implementations_own_children(tmp_path: Path) -> None:
    """close() is a crash of the whole implementation: a process it started dies with it."""

    async def main() -> int:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        helper = ProcessHelper(installation(tmp_path, vault), [*FAKE, "with-child"])
        log = helper.stderr_path.read_text()
        await helper.close()
        return int(log.split("child pid ")[1].split()[0])

    child = run(main(), start=START)
    pidfd = os.pidfd_open(child)
    try:  # readable once the child has exited: no polling, and no wait at all if it is dead
        ready, _, _ = select.select([pidfd], [], [], 10)
    finally:
        os.close(pidfd)
    assert ready, f"the implementation's child {child} survived the crash"


def test_command_factory_refuses_what_cannot_run(tmp_path: Path) -> None:
    """Bad configuration is a clear error: an empty command, a bad timeout, a missing binary."""
    with pytest.raises(ValueError, match="is not a command"):
        command_factory("  ")
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        command_factory("x", timeout=0)
    assert repr(command_factory("node my helper.js")) == "command_factory('node my helper.js')"

    async def main() -> None:
        vault = FakeVault(clock=lambda: asyncio.get_running_loop().time())
        factory = command_factory([str(tmp_path / "no-such-binary")])
        with pytest.raises(ProtocolError, match="cannot start the implementation"):
            factory(installation(tmp_path, vault))

    run(main(), start=START)
