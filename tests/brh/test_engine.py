"""The pass driver on its own (brh/engine.py): what it does with each effect of a pass.

A scripted machine stands in for :func:`brh.machine.sync_pass`: it yields the effects a test
chooses and notes what each was answered with, or what was thrown back in. So each test shows
the driver alone: it performs an effect on the store, the vault, the app, the listener or the
logger and answers with the result; it throws vault errors back in where they happened; a
context wiped (or a helper closed) while the pass waited gets :class:`ContextReset` instead of
more writes (RES-2); what the app's callback raises becomes its answer (a refusal) and a log
line; what the listener raises is logged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any

import pytest

import brh.engine
from brh import effects as fx
from brh.core import Action
from brh.engine import IN_CALLBACK, Callback, Context, SyncEngine
from brh.entry import Entry, SyncResult
from brh.events import SyncEvent
from brh.hlc import HybridClock, Version
from brh.options import SyncOptions
from brh.plan import ContextReset, Memory, Outcome, Plan
from brh.store import ContextState, LocalStore
from brh.vault import CollectionNotFoundError, UpdateResult, Vault, VaultError
from brh.wire import RemoteDoc
from hivevault.vault import FakeVault
from simulator.timeloop import run
from tests.support import EPOCH, fake_vault, now

Answer = tuple[str, Any]
"""What the scripted machine got for one effect: ``("answer", value)`` or ``("thrown", exc)``."""


def scripted(
    steps: list[fx.Effect], result: SyncResult | None = None, memory: Memory | None = None
) -> tuple[Callable[[Plan], Generator[fx.Effect, Any, Outcome]], list[Answer], list[Plan]]:
    """A pass machine yielding ``steps``; the answers it got, and the plans it was given."""
    answers: list[Answer] = []
    plans: list[Plan] = []

    def machine(plan: Plan) -> Generator[fx.Effect, Any, Outcome]:
        plans.append(plan)
        for step in steps:
            try:
                answers.append(("answer", (yield step)))
            except (VaultError, ContextReset) as exc:
                answers.append(("thrown", exc))
        done = SyncResult(True) if result is None else result
        return Outcome(done, plan.memory if memory is None else memory)

    return machine, answers, plans


def engine(
    vault: Vault,
    *,
    contexts: Mapping[str, tuple[Callback, Callback, Callback]] | None = None,
    listener: Callable[[SyncEvent], None] | None = None,
    closed: Callable[[], bool] = lambda: False,
    debug: bool = False,
) -> SyncEngine:
    """A driver for device ``phone`` on an in-memory store (build it on the running loop)."""
    registered = contexts or {"notes": (bool, bool, bool)}
    return SyncEngine(
        owner="the helper",
        device_id="phone",
        vault=vault,
        store=LocalStore(":memory:"),
        contexts={
            name: Context(name, f"backup_{name}", *callbacks)
            for name, callbacks in registered.items()
        },
        clock=HybridClock("phone~00000001", now, None),
        options=SyncOptions(debug=debug),
        closed=closed,
        listener=listener,
    )


def remote(key: str) -> RemoteDoc:
    version = Version(int(EPOCH * 1000), 0, "tablet~00000002")
    stamp = int(EPOCH)
    return RemoteDoc(key, {"v": 1}, stamp * 1000, stamp * 1000, None, version, stamp, None)


def test_each_effect_is_performed_and_answered_with_its_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14 item 4: the driver performs each effect on what it names (clocks, the store,
    the vault) and resumes the machine with the result: vault requests change the vault, a
    saved state is what the next read of it returns."""
    steps: list[fx.Effect] = [
        fx.Now("notes"),
        fx.LoopTime("notes"),
        fx.LoadState("notes"),
        fx.CreateCollection("notes", "backup_notes"),
        fx.UpdateOne("notes", "backup_notes", {"key": "k"}, {"$set": {"v": 1}}, upsert=True),
        fx.Query("notes", "backup_notes", {"key": "k"}, projection={"_id": 0, "v": 1}),
        fx.SaveState("notes", ContextState("notes", cursor=42)),
        fx.LoadState("notes"),
        fx.Pending("notes"),
    ]
    machine, answers, _ = scripted(steps)
    monkeypatch.setattr(brh.engine, "sync_pass", machine)

    async def main() -> FakeVault:
        vault = fake_vault()
        await asyncio.sleep(1.5)
        assert await engine(vault).run_pass(full=False)
        return vault

    vault = run(main(), start=EPOCH)
    values = [value for how, value in answers]
    assert [how for how, _ in answers] == ["answer"] * len(steps)
    assert values[0] == int((EPOCH + 1.5) * 1000) and values[1] == EPOCH + 1.5
    assert values[2] == ContextState("notes")
    assert values[3] is None and isinstance(values[4], UpdateResult) and values[4].upserted_id
    assert values[5] == [{"v": 1}]
    assert values[7].cursor == 42 and values[8] == []
    assert vault.collection_names() == ["backup_notes"]


def test_a_vault_error_is_thrown_back_in_where_the_request_was_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14 item 4: a request the vault refuses is not the driver's to handle: its error
    is thrown into the machine at that request, and the pass goes on with what the machine
    yields next."""
    steps: list[fx.Effect] = [
        fx.Query("notes", "backup_notes", {}),
        fx.CreateCollection("notes", "backup_notes"),
        fx.Query("notes", "backup_notes", {}),
    ]
    machine, answers, _ = scripted(steps)
    monkeypatch.setattr(brh.engine, "sync_pass", machine)

    async def main() -> None:
        await engine(fake_vault()).run_pass(full=False)

    run(main(), start=EPOCH)
    assert answers[0][0] == "thrown" and isinstance(answers[0][1], CollectionNotFoundError)
    assert answers[1:] == [("answer", None), ("answer", [])]


class _HeldVault(FakeVault):
    """A fake vault whose queries wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__(clock=now)
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def query(self, collection: str, filter: Any, **options: Any) -> Any:
        self.arrived.set()
        await self.release.wait()
        return await super().query(collection, filter, **options)


def test_a_context_wiped_while_the_pass_waits_gets_no_more_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RES-2: a wipe while the pass waits on the vault makes the driver throw ContextReset in
    when the answer comes back, and again at each later write of that context, which stays as
    the wipe left it; reads are still answered, and another context still writes."""
    steps: list[fx.Effect] = [
        fx.LoadState("notes"),
        fx.LoadState("other"),
        fx.Query("notes", "backup_notes", {}),
        fx.SaveState("notes", ContextState("notes", cursor=7)),
        fx.Local("notes", "k"),
        fx.SaveState("other", ContextState("other", cursor=8)),
    ]
    machine, answers, _ = scripted(steps)
    monkeypatch.setattr(brh.engine, "sync_pass", machine)

    async def main() -> SyncEngine:
        vault = _HeldVault()
        await vault.create_collection("backup_notes")
        driver = engine(vault, contexts={"notes": (bool,) * 3, "other": (bool,) * 3})
        running = asyncio.ensure_future(driver.run_pass(full=False))
        await vault.arrived.wait()
        driver.contexts["notes"].epoch += 1  # what wipe_local_context_data does
        vault.release.set()
        await running
        return driver

    driver = run(main(), start=EPOCH)
    kinds = [(how, type(value).__name__) for how, value in answers]
    assert kinds == [
        ("answer", "ContextState"),
        ("answer", "ContextState"),
        ("thrown", "ContextReset"),
        ("thrown", "ContextReset"),
        ("answer", "NoneType"),
        ("answer", "NoneType"),
    ]
    assert driver.store.context_state("notes").cursor is None
    assert driver.store.context_state("other").cursor == 8


def test_a_closed_helper_gets_no_more_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """API-6: once the helper is closed, every store write of the pass is refused with
    ContextReset (the pass ends without touching the store); reads are still answered."""
    steps: list[fx.Effect] = [
        fx.SaveState("notes", ContextState("notes", cursor=7)),
        fx.LoadState("notes"),
    ]
    machine, answers, _ = scripted(steps)
    monkeypatch.setattr(brh.engine, "sync_pass", machine)

    async def main() -> SyncEngine:
        driver = engine(fake_vault(), closed=lambda: True)
        await driver.run_pass(full=False)
        return driver

    driver = run(main(), start=EPOCH)
    assert answers[0][0] == "thrown" and isinstance(answers[0][1], ContextReset)
    assert answers[1] == ("answer", ContextState("notes"))
    assert driver.store.context_state("notes").cursor is None


def test_a_callback_that_raises_answers_with_its_exception_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """CB-6: a callback that raises is answered as a refusal (the machine gets the exception,
    without its traceback), with an ERROR record naming the device, context, action and key;
    API-7: a coroutine callback is awaited; CB-8: while a callback runs, IN_CALLBACK names the
    helper and the context (re-entrant calls are refused by it), and it is reset afterwards."""
    seen: list[Any] = []

    def broken(entry: Entry) -> bool:
        seen.append(IN_CALLBACK.get())
        raise RuntimeError("the app's model is locked")

    async def later(entry: Entry) -> bool:
        await asyncio.sleep(1)
        return entry.key == "b"

    steps: list[fx.Effect] = [
        fx.Deliver("notes", Action.INSERT, remote("a")),
        fx.Deliver("notes", Action.MODIFY, remote("b")),
    ]
    machine, answers, _ = scripted(steps)
    monkeypatch.setattr(brh.engine, "sync_pass", machine)

    async def main() -> None:
        await engine(fake_vault(), contexts={"notes": (broken, later, bool)}).run_pass(False)

    with caplog.at_level(logging.ERROR, logger="brh"):
        run(main(), start=EPOCH)
    error = answers[0][1]
    assert isinstance(error, RuntimeError) and error.__traceback__ is None
    assert answers[1] == ("answer", True)
    assert seen == [("the helper", "notes")] and IN_CALLBACK.get() is None
    [record] = caplog.records
    assert record.getMessage() == (
        "[phone] context 'notes': insert callback raised for key 'a'; treated as a refusal"
    )


def test_a_listener_that_raises_is_logged_and_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 4: the listener gets each event with the device's name; an exception it
    raises is logged and changes nothing (the pass goes on, the next event is delivered)."""
    events: list[SyncEvent] = []

    def listener(event: SyncEvent) -> None:
        events.append(event)
        if event.kind == "pass_started":
            raise ValueError("the observer is broken")

    steps: list[fx.Effect] = [
        fx.Emit("notes", "pass_started", {"full": False}),
        fx.Emit("notes", "pushed", {"context": "notes", "key": "k", "version": "v"}),
        fx.Now("notes"),
    ]
    machine, answers, _ = scripted(steps)
    monkeypatch.setattr(brh.engine, "sync_pass", machine)

    async def main() -> None:
        await engine(fake_vault(), listener=listener).run_pass(full=False)

    with caplog.at_level(logging.ERROR, logger="brh"):
        run(main(), start=EPOCH)
    assert [how for how, _ in answers] == ["answer"] * 3
    assert events == [
        SyncEvent("pass_started", "phone", full=False),
        SyncEvent("pushed", "phone", context="notes", key="k", version="v"),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "[phone] the event listener raised; ignored"
    ]


def test_log_records_name_the_device_and_debug_ones_need_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """API-8: the machine's log records go to the ``brh`` logger prefixed with the device;
    DEBUG records only with ``debug=True``."""
    steps: list[fx.Effect] = [
        fx.Log("notes", logging.DEBUG, "pulled %d", (3,)),
        fx.Log("notes", logging.WARNING, "vault error: %s", ("503",)),
    ]

    async def main(debug: bool) -> None:
        machine, _, _ = scripted(steps)
        monkeypatch.setattr(brh.engine, "sync_pass", machine)
        await engine(fake_vault(), debug=debug).run_pass(full=False)

    logged = []
    for debug in (False, True):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="brh"):
            run(main(debug), start=EPOCH)
        logged.append([(r.levelno, r.getMessage()) for r in caplog.records])
    assert logged[0] == [(logging.WARNING, "[phone] vault error: 503")]
    assert logged[1] == [(logging.DEBUG, "[phone] pulled 3"), *logged[0]]


def test_a_pass_reports_the_machines_result_and_hands_its_memory_to_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14 item 4: the pass's result is the machine's; what the machine remembers
    (collections known to exist, uploads held back) is given to the next pass's plan, with the
    retry flag."""
    refused = SyncResult(False, reason="refused", refused=("notes", "k"))
    remembered = Memory(ready=frozenset({"notes"}))
    first, _, _ = scripted([], refused, remembered)
    second, _, plans = scripted([])

    async def main() -> list[SyncResult]:
        driver = engine(fake_vault())
        monkeypatch.setattr(brh.engine, "sync_pass", first)
        results = [await driver.run_pass(full=True)]
        driver.retrying = True
        monkeypatch.setattr(brh.engine, "sync_pass", second)
        results.append(await driver.run_pass(full=False))
        return results

    assert run(main(), start=EPOCH) == [refused, SyncResult(True)]
    [plan] = plans
    assert plan.memory == remembered and plan.quiet and not plan.full
    assert plan.contexts == [("notes", "backup_notes")]
