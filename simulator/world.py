"""A simulated world: devices, a vault server, the network between them, one seed for all.

Everything random draws from generators seeded from the world's seed, in a deterministic order;
time is the virtual time of :mod:`simulator.timeloop`. Faults come in opposite pairs
(``partition``/``heal``, ``freeze``/``unfreeze``, ...). A run ends with :meth:`World.settle`:
every fault healed, every app accepting, every device syncing until nothing changes, and then
the end-of-run checkers.

Build a world inside a running virtual loop, or use :func:`simulate`::

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        world.partition("tablet")
        await phone.put("x", 1)
        await world.advance(60)
        world.heal("tablet")

    outcome = simulate(scenario, seed=7)

A scenario (or the settle phase) that raises does not end in the checkers' verdict: the run
stops there and :func:`simulate` raises :class:`ScenarioError`, naming the step, the simulated
time and the seed, the exception as its cause.
"""

from __future__ import annotations

import asyncio
import itertools
import linecache
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brh import Entry, RetryPolicy, SyncEvent
from brh.hlc import Version
from brh.vault import Vault
from simulator.app import Behaviour
from simulator.checkers import Checker, Finding, Write
from simulator.clocks import SkewedClock
from simulator.device import SimDevice
from simulator.impl import Factory
from simulator.link import Link
from simulator.live import UnsupportedFault
from simulator.server import VaultServer
from simulator.timeloop import run
from simulator.trace import Trace

__all__ = ["Outcome", "ScenarioError", "World", "scenario_step", "simulate"]

START = 1_750_000_000.0
"""Virtual start of every run (seconds since the epoch)."""


@dataclass
class Outcome:
    """What a run produced: the findings of the checkers and some totals."""

    seed: int
    findings: list[Finding]
    simulated_seconds: float
    requests: int
    events: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


class ScenarioError(Exception):
    """A step of a scenario raised: the run stopped there, and was not checked.

    ``step`` names it: ``"step 3 (put)"`` in a scenario file, ``"scenario w1-late-upload,
    line 12 (await phone.put(...))"`` in a Python scenario, ``"the settle phase"``; ``at`` is
    the simulated time (seconds since the start; None if unknown) and ``seed`` the run's seed.
    The exception the step raised is ``error``, and the ``__cause__``.
    """

    def __init__(self, step: str, error: BaseException, *, at: float | None, seed: int) -> None:
        super().__init__(f"{step} raised {type(error).__name__}: {error}")
        self.step = step
        self.error = error
        self.at = at
        self.seed = seed


class World:
    """Devices sharing one vault, with faults on demand. See the module docstring."""

    def __init__(
        self,
        seed: int,
        *,
        contexts: tuple[str, ...] = ("notes",),
        trace: Trace | None = None,
        latency: tuple[float, float] = (0.005, 0.05),
        retry: RetryPolicy | None = None,
        helper_options: dict[str, Any] | None = None,
        factory: Factory | None = None,
        workdir: Path | None = None,
        vault: Vault | None = None,
    ) -> None:
        if factory is not None and workdir is None:
            raise ValueError("World: a factory needs a workdir (a directory for device stores)")
        self.factory = factory
        """The implementation every device runs (None: the reference helper, in process)."""
        self.workdir = workdir
        self.seed = seed
        self.rng = random.Random(seed)
        self.contexts = contexts
        self.trace = trace or Trace()
        self.latency = latency
        self.retry = retry or RetryPolicy(initial_delay=1, max_delay=120, jitter=0.5)
        self.helper_options = dict(helper_options or {})
        self.server = VaultServer(self._child_rng("server"), SkewedClock(), backend=vault)
        self.devices: dict[str, SimDevice] = {}
        self.links: dict[str, Link] = {}
        self.checker = Checker(self)
        self._request_ids = itertools.count(1)
        self.activity = 0
        """Uploads, deliveries and lost races so far: unchanged over a round means quiet."""
        self._start = asyncio.get_running_loop().time()
        self.trace.emit("meta", seed=seed, contexts=list(contexts), latency=list(latency))

    def _child_rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def now(self) -> float:
        """Seconds of true (virtual) time since the world was built."""
        return asyncio.get_running_loop().time() - self._start

    # -- devices ----------------------------------------------------------------------------

    def add_device(
        self, name: str, *, offset: float = 0.0, drift_ppm: float = 0.0, **options: Any
    ) -> SimDevice:
        """A new device joins (at any time: a late joiner restores everything)."""
        if name in self.devices:
            raise ValueError(f"add_device: a device named {name!r} exists already")
        link = Link(self.server, device=name, rng=self._child_rng(f"link:{name}"), trace=self.trace)
        link.latency = self.latency
        self.links[name] = link
        clock = SkewedClock(offset=offset, drift_ppm=drift_ppm)
        merged = {
            "retry": self.retry,
            "rng": self._child_rng(f"helper:{name}"),
            **self.helper_options,
            **options,
        }
        device = SimDevice(
            name,
            link,
            contexts=self.contexts,
            clock=clock,
            on_write=self._on_write,
            observer=self._before_callback,
            answered=self._answered,
            listener=self._on_event,
            factory=self.factory,
            workdir=self.workdir,
            **merged,
        )
        for context, app in device.apps.items():
            app.rng = self._child_rng(f"app:{name}:{context}")
        self.devices[name] = device
        self.trace.emit("device", device=name, event="join", offset=offset, drift_ppm=drift_ppm)
        return device

    def device(self, name: str) -> SimDevice:
        try:
            return self.devices[name]
        except KeyError:
            raise KeyError(f"no device named {name!r}; devices: {sorted(self.devices)}") from None

    async def crash(self, name: str) -> None:
        await self.device(name).crash()
        self.checker.forget_device(name)
        self.trace.emit("device", device=name, event="crash")

    async def restart(self, name: str) -> None:
        await self.device(name).restart()
        self.trace.emit("device", device=name, event="restart")

    async def reinstall(self, name: str) -> None:
        device = self.device(name)
        lost = await device.reinstall()
        self.checker.abandon_pending(name, lost)
        self.checker.forget_installation(name)
        self.checker.forget_device(name, reinstalled=True)
        for context, app in device.apps.items():
            app.rng = self._child_rng(f"app:{name}:{context}:reinstalled")
        self.trace.emit("device", device=name, event="reinstall", lost=len(lost))

    async def wipe(self, name: str, context: str) -> None:
        """The app resets one context: it clears its model and wipes the helper's copy; the
        next pass restores every live entry (the device's own old writes included)."""
        device = self.device(name)
        device.apps[context].items.clear()
        device.apps[context].declined.clear()
        await device.impl_for(context).wipe_local_context_data(context)
        self.checker.forget_context(name, context)
        self.checker.forget_installation(name, context)
        self.trace.emit("device", device=name, event="wipe", context=context)

    def behave(self, name: str, context: str | None = None, **behaviour: Any) -> None:
        """Set how a device's app answers callbacks (see :class:`simulator.app.Behaviour`)."""
        device = self.device(name)
        for ctx in [context] if context else list(device.apps):
            new = Behaviour(**behaviour)
            device.behaviours[ctx] = new
            device.apps[ctx].behaviour = new
        self.trace.emit(
            "fault", target=name, fault="app", on=behaviour.get("mode") != "apply", detail=behaviour
        )

    # -- paired faults ----------------------------------------------------------------------

    def _link_fault(self, name: str, attribute: str, value: Any, fault: str, on: bool) -> None:
        setattr(self.links[name], attribute, value)
        self.trace.emit("fault", target=name, fault=fault, on=on)

    def partition(self, name: str) -> None:
        """Requests from ``name`` vanish (clients time out)."""
        self._link_fault(name, "partitioned", True, "partition", True)

    def heal(self, name: str) -> None:
        self._link_fault(name, "partitioned", False, "partition", False)

    def cut_answers(self, name: str) -> None:
        """One-way partition: requests arrive and apply, answers vanish."""
        self._link_fault(name, "answers_lost", True, "answers_lost", True)

    def restore_answers(self, name: str) -> None:
        self._link_fault(name, "answers_lost", False, "answers_lost", False)

    def disconnect(self, name: str) -> None:
        """No route at all: requests fail at once (a definite failure)."""
        self._link_fault(name, "down", True, "offline", True)

    def reconnect(self, name: str) -> None:
        self._link_fault(name, "down", False, "offline", False)

    def slow_link(self, name: str, latency: tuple[float, float]) -> None:
        """Each leg of each request of ``name`` takes uniformly ``latency`` seconds."""
        self.links[name].latency = latency
        self.trace.emit(
            "fault", target=name, fault="latency", on=True, detail={"latency": list(latency)}
        )

    def fast_link(self, name: str) -> None:
        self.links[name].latency = self.latency
        self.trace.emit("fault", target=name, fault="latency", on=False)

    def lossy(self, name: str, *, requests: float = 0.0, answers: float = 0.0) -> None:
        link = self.links[name]
        link.request_loss, link.answer_loss = requests, answers
        self.trace.emit(
            "fault",
            target=name,
            fault="loss",
            on=bool(requests or answers),
            detail={"requests": requests, "answers": answers},
        )

    def _server_fault(self, attribute: str, value: Any, fault: str, on: bool) -> None:
        setattr(self.server, attribute, value)
        self.trace.emit("fault", target="vault", fault=fault, on=on)

    def freeze(self) -> None:
        self._server_fault("frozen", True, "frozen", True)

    def unfreeze(self) -> None:
        self._server_fault("frozen", False, "frozen", False)

    def take_down(self) -> None:
        self._server_fault("unavailable", True, "unavailable", True)

    def bring_up(self) -> None:
        self._server_fault("unavailable", False, "unavailable", False)

    def expire_token(self, name: str) -> None:
        self.server.expired.add(name)
        self.trace.emit("fault", target=name, fault="token_expired", on=True)

    def renew_token(self, name: str) -> None:
        self.server.expired.discard(name)
        self.trace.emit("fault", target=name, fault="token_expired", on=False)

    def server_errors(self, *, before: float = 0.0, after: float = 0.0) -> None:
        self.server.error_before, self.server.error_after = before, after
        self.trace.emit(
            "fault",
            target="vault",
            fault="errors",
            on=bool(before or after),
            detail={"before": before, "after": after},
        )

    def _inside_the_vault(self, fault: str) -> None:
        if self.server.live:
            raise UnsupportedFault(
                f"{fault}: needs the fake vault (a real vault cannot be made to)"
            )

    def upsert_race(self, seconds: float) -> None:
        if seconds:
            self._inside_the_vault("upsert_race")
        self._server_fault("upsert_race", seconds, "upsert_race", seconds > 0)

    def jump_clock(self, name: str, seconds: float) -> None:
        """Step a device's clock (or the vault's, with ``"vault"``) by ``seconds``."""
        if name == "vault":
            self._inside_the_vault("a vault clock jump")
        clock = self.server.clock if name == "vault" else self.device(name).clock
        clock.jump(seconds)
        self.trace.emit(
            "fault", target=name, fault="clock_jump", on=True, detail={"seconds": seconds}
        )

    def set_drift(self, name: str, ppm: float) -> None:
        """A device's clock (or the vault's, with ``"vault"``) runs fast or slow from now on."""
        if name == "vault":
            self._inside_the_vault("a vault clock drift")
        clock = self.server.clock if name == "vault" else self.device(name).clock
        clock.set_drift(ppm)
        self.trace.emit("fault", target=name, fault="drift", on=ppm != 0, detail={"ppm": ppm})

    def slow_vault(self, seconds: float) -> None:
        """Every request takes ``seconds`` more on the server (0 to stop)."""
        self._server_fault("slow", seconds, "slow_vault", seconds > 0)

    def heal_all(self) -> None:
        """Every fault off, every app accepting (the start of the settle phase)."""
        for name, link in self.links.items():
            if link.partitioned:
                self.heal(name)
            if link.answers_lost:
                self.restore_answers(name)
            if link.down:
                self.reconnect(name)
            if link.request_loss or link.answer_loss:
                self.lossy(name)
            if link.latency != self.latency:
                self.fast_link(name)
            link.lose_answers = 0
        for name in sorted(self.server.expired):
            self.renew_token(name)
        if self.server.frozen:
            self.unfreeze()
        if self.server.unavailable:
            self.bring_up()
        if self.server.error_before or self.server.error_after:
            self.server_errors()
        if self.server.upsert_race:
            self.upsert_race(0.0)
        if self.server.slow:
            self.slow_vault(0.0)
        for name, device in self.devices.items():
            if any(b.mode != "apply" for b in device.behaviours.values()):
                self.behave(name, mode="apply")
            for app in device.apps.values():
                app.refuse = None

    # -- time -------------------------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (timers, retries and requests run meanwhile)."""
        await asyncio.sleep(seconds)
        self.checker.check_retries()
        self.checker.decide_abandoned()

    def note(self, text: str) -> None:
        self.trace.emit("note", text=text)

    def step_failed(self, step: str, error: BaseException) -> ScenarioError:
        """The :class:`ScenarioError` for ``step`` having raised ``error`` now, noted in the
        trace (where the run stopped, for its timeline report)."""
        failure = ScenarioError(step, error, at=self.now(), seed=self.seed)
        self.note(f"{failure} (the run stops here)")
        return failure

    # -- the end ----------------------------------------------------------------------------

    def changes(self) -> int:
        """Changes so far: the reference's events, or for another implementation (which reports
        none) the callbacks it made and the writes the vault applied."""
        return self.activity + (self.server.writes if self.factory is not None else 0)

    async def settle(self, *, max_rounds: int = 12) -> list[Finding]:
        """Heal everything, restart crashed devices, sync until quiet, then run the checkers.

        Quiet means a whole round of passes in which no device uploaded or delivered anything.
        The phase first syncs incrementally, then makes every device do a full pass: that stands
        for SYNC-11's periodic full pass, which is what repairs a vault clock that stepped back
        (a device clock stepped back delays it, so waiting for it would not do).
        """
        self.heal_all()
        for name, device in self.devices.items():
            if not device.running:
                await self.restart(name)
        await self.advance(1)
        for full in (False, True):
            for round_ in range(max_rounds):
                before = self.changes()
                results = [await d.sync(full=full and round_ == 0) for d in self.devices.values()]
                # quiet: no pass at all (a retry running in the background included) changed
                # anything during the whole round
                if all(results) and self.changes() == before:
                    break
            else:
                self.checker.fail(
                    "settle",
                    "SYNC-1",
                    f"still changing after {max_rounds} rounds of passes with every fault healed",
                )
        self.checker.check_end()
        return self.checker.findings

    async def close(self) -> None:
        for device in self.devices.values():
            if device.running:
                await device.crash()
        self.trace.close()

    def vault_live(self, context: str) -> dict[str, Any]:
        """The vault's live entries of a context, duplicates resolved by the highest version."""
        best: dict[str, dict[str, Any]] = {}
        for doc in (
            self.server.vault.documents("backup_" + context)
            if ("backup_" + context in self.server.vault.collection_names())
            else []
        ):
            key = doc.get("key")
            if not isinstance(key, str):
                continue
            if key not in best or str(doc.get("brhVersion", "")) > str(
                best[key].get("brhVersion", "")
            ):
                best[key] = doc
        return {k: d.get("data") for k, d in sorted(best.items()) if d.get("deletionDate") is None}

    @property
    def requests(self) -> int:
        return sum(link.requests for link in self.links.values())

    # -- hooks from devices -----------------------------------------------------------------

    def _on_write(
        self,
        device: SimDevice,
        context: str,
        key: str,
        version: Version | None,
        deleted: bool,
        data: Any,
    ) -> None:
        if version is not None:
            self.checker.record_write(Write(device.name, context, key, version, deleted, data))
        else:
            self.checker.record_blind_write(device.name, context, key, deleted=deleted, data=data)
        self.trace.emit(
            "write",
            device=device.name,
            context=context,
            key=key,
            op="delete" if deleted else "upsert",
            version=version.encode() if version is not None else None,
        )

    def _before_callback(self, device: SimDevice, context: str, kind: str, entry: Entry) -> None:
        if not device.reference:
            self.activity += 1  # another implementation reports no events: count what we see
        self.checker.before_callback(device.name, context, kind, entry)

    def _answered(
        self, device: SimDevice, context: str, kind: str, entry: Entry, accepted: bool
    ) -> None:
        """Another implementation's callback got its answer (the reference sends events)."""
        self.checker.record_delivery(device.name, context, kind, entry, accepted)
        self.trace.emit(
            "callback",
            device=device.name,
            context=context,
            key=entry.key,
            action=kind,
            accepted=accepted,
            version=None,
        )

    def _on_event(self, event: SyncEvent) -> None:
        self.checker.on_event(event)
        if event.kind in ("pushed", "superseded") or (event.kind == "callback" and event.accepted):
            self.activity += 1
        if event.kind == "callback":
            self.trace.emit(
                "callback",
                device=event.device,
                context=event.context,
                key=event.key,
                action=event.action,
                accepted=event.accepted,
                version=event.version,
            )
        elif event.kind == "pass_started":
            self.trace.emit("pass", device=event.device, phase="start", full=event.full)
        elif event.kind == "pass_finished" and event.result is not None:
            self.trace.emit(
                "pass",
                device=event.device,
                phase="end",
                completed=event.result.completed,
                reason=event.result.reason,
                requests=event.result.requests,
            )


Scenario = Callable[[World], Awaitable[None]]


def scenario_step(scenario: Scenario, error: BaseException) -> str:
    """Where in a Python scenario ``error`` was raised: the scenario's name and the line of its
    function the exception went through last (with the source line when it can be read)."""
    function = getattr(scenario, "function", scenario)  # a named scenario's registered function
    name = getattr(scenario, "name", None) or getattr(function, "__name__", None)
    label = f"scenario {name}" if name else "the scenario"
    code = getattr(function, "__code__", None)
    lines = [n for frame, n in traceback.walk_tb(error.__traceback__) if frame.f_code is code]
    if code is None or not lines:
        return label
    source = linecache.getline(code.co_filename, lines[-1]).strip()
    return f"{label}, line {lines[-1]}" + (f" ({source})" if source else "")


def simulate(
    scenario: Scenario,
    *,
    seed: int,
    trace_path: Path | str | None = None,
    **world_options: Any,
) -> Outcome:
    """Run ``scenario`` in a fresh world on virtual time, settle, check, and report.

    If the scenario or the settle phase raises, the run stops there: :class:`ScenarioError`
    names the step (see :func:`scenario_step`), the time and the seed; the trace so far is
    written, with a note saying so."""

    async def main() -> Outcome:
        world = World(seed, trace=Trace(trace_path), **world_options)
        try:
            try:
                await scenario(world)
            except ScenarioError:
                raise
            except Exception as exc:
                raise world.step_failed(scenario_step(scenario, exc), exc) from exc
            try:
                findings = await world.settle()
            except Exception as exc:
                raise world.step_failed("the settle phase", exc) from exc
            return Outcome(
                seed=seed,
                findings=list(findings),
                simulated_seconds=world.now(),
                requests=world.requests,
                events=dict(world.trace.counts),
            )
        finally:
            await world.close()

    return run(main(), start=START)
