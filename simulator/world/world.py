"""The :class:`World`: devices sharing one vault server, the network between them, one seed.

Everything random draws from generators seeded from the world's seed, in a deterministic order;
time is the virtual time of :mod:`simulator.timeloop`. Faults come in opposite pairs
(``partition``/``heal``, ``freeze``/``unfreeze``, ...; the table is :mod:`simulator.faults`,
and a method of this class has each verb's name). A run ends with :meth:`World.settle`:
every fault healed, every app accepting, every device syncing until nothing changes, and then
the end-of-run checkers. Build a world inside a running virtual loop, or run a scenario in a
fresh one with :func:`simulator.world.simulate` (see the package's docstring).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from pathlib import Path
from typing import Any

from brh import Entry, RetryPolicy, SyncEvent
from brh.hlc import Version
from brh.vault import Vault
from simulator import faults
from simulator.faults import did_you_mean
from simulator.impl import Factory
from simulator.live import UnsupportedFault
from simulator.wallclock import SystemClock
from simulator.world.app import Behaviour
from simulator.world.checkers import ABSENT, Checker, Finding, Write
from simulator.world.clocks import SkewedClock
from simulator.world.crashpoints import CrashArming
from simulator.world.device import SimDevice
from simulator.world.fault_state import FAULT_ON
from simulator.world.link import Link
from simulator.world.outcome import ScenarioError
from simulator.world.server import VaultServer
from simulator.world.settle import settle
from simulator.world.trace import Trace
from simulator.world.vaultview import vault_outcomes

__all__ = ["ABSENT", "START", "UnknownDeviceError", "World"]

START = 1_750_000_000.0
"""Virtual start of every run (seconds since the epoch)."""

_OVERLAP = 5.0
"""The reference's default ``overlap`` window (SYNC-4)."""


class UnknownDeviceError(KeyError):
    """No device has that name; the message names the closest one and lists them all."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _probability(verb: str, argument: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{verb}: {argument} must be a probability from 0 to 1, got {value!r}")


def _seconds(verb: str, argument: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{verb}: {argument} must be seconds >= 0, got {value!r}")


class World(CrashArming):
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
        system_clock: bool | None = None,
    ) -> None:
        if factory is not None and workdir is None:
            raise ValueError("World: a factory needs a workdir (a directory for device stores)")
        if system_clock is not None and not isinstance(system_clock, bool):
            raise ValueError(
                f"World: system_clock must be True, False or None, got {system_clock!r}"
            )
        self.factory = factory
        """The implementation every device runs (None: the reference helper, in process)."""
        self.workdir = workdir
        self.seed = seed
        self.rng = random.Random(seed)
        self.contexts = contexts
        self.trace = trace or Trace()
        self.latency: float | tuple[float, float] = latency
        self.retry = retry or RetryPolicy(initial_delay=1, max_delay=120, jitter=0.5)
        self.helper_options = dict(helper_options or {})
        self.server: VaultServer = VaultServer(
            self._child_rng("server"), SkewedClock(), backend=vault
        )
        self.devices: dict[str, SimDevice] = {}
        self.links: dict[str, Link] = {}
        self.checker = Checker(self)
        self._request_ids = itertools.count(1)
        self._crashing: dict[str, asyncio.Task[None]] = {}
        """Crashes armed with :meth:`crash_at` that fired and are being carried out."""
        self.activity = 0
        """Callbacks made so far (with the vault's writes, :meth:`changes`: unchanged over a
        round of passes means quiet)."""
        self._delivering: dict[tuple[str, str, str], Any] = {}
        """(device, context, key) -> the value handed to a callback not traced yet."""
        self._start = asyncio.get_running_loop().time()
        self.vault_stepped_back = False
        """Whether the vault's clock ever stepped back by more than the overlap window (then
        only SYNC-11's periodic full pass sees what was stamped below a cursor)."""
        self.forgotten: dict[str, set[tuple[str, str]]] = {}
        """device -> (context, key) it deleted ``locally_only`` (API-3: a full pass brings
        them back)."""
        self.system_clock: SystemClock | None = None
        """The system clock, frozen on simulated time while the world runs (``system_clock``:
        default on for another implementation, which may read ``time.time()`` itself; see
        :mod:`simulator.wallclock`)."""
        if system_clock if system_clock is not None else factory is not None:
            self.system_clock = SystemClock(asyncio.get_running_loop())
            self.system_clock.start()
        self.trace.emit("meta", seed=seed, contexts=list(contexts), latency=list(latency))

    def _child_rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    @property
    def start(self) -> float:
        """The event loop's time when the world was built (:meth:`now` counts from it)."""
        return self._start

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
        link.watcher = self.checker.link_watcher(name)
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
            synced=self._synced,
            factory=self.factory,
            workdir=self.workdir,
            system_clock=self.system_clock,
            **merged,
        )
        for context, app in device.apps.items():
            app.rng = self._child_rng(f"app:{name}:{context}")
        self.devices[name] = device
        self.trace.emit("device", device=name, event="join", offset=offset, drift_ppm=drift_ppm)
        return device

    def device(self, name: str) -> SimDevice:
        """The device called ``name``; :class:`UnknownDeviceError` naming the fix if none is."""
        device = self.devices.get(name)
        if device is None:
            raise self._no_device(name)
        return device

    def _no_device(self, name: str, *, clock: bool = False) -> UnknownDeviceError:
        known = sorted(self.devices) + (["vault"] if clock else [])
        listed = ", ".join(repr(n) for n in sorted(self.devices)) or "none yet"
        vault = " (or 'vault': the vault's clock)" if clock else ""
        return UnknownDeviceError(
            f"no device {name!r}; {did_you_mean(name, known)}devices: {listed}{vault}"
        )

    async def crash(self, name: str) -> None:
        device = self.device(name)
        armed = self._crashing.get(name)
        if armed is not None and armed is not asyncio.current_task():
            await armed  # an armed crash fired already: that is this crash
            return
        self.disarm_crash(name)
        await device.crash()
        self.checker.forget_device(name)
        self.trace.emit("device", device=name, event="crash")

    async def restart(self, name: str) -> None:
        armed = self._crashing.get(name)
        if armed is not None:
            await armed  # the crash an armed point fired is still being carried out
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
        with device.as_device():
            await device.impl_for(context).wipe_local_context_data(context)
        self.checker.forget_context(name, context)
        self.checker.forget_installation(name, context)
        self.trace.emit("device", device=name, event="wipe", context=context)

    async def forget(self, name: str, key: str, context: str | None = None) -> None:
        """The app drops ``key`` from one device only (``delete_database_entry(...,
        locally_only=True)``, SPEC API-3): the vault and the other devices keep it, and a later
        pass that restores it to this device delivers it as an insertion (not an echo). A change
        of the key the device had not uploaded yet is dropped with it, legitimately."""
        device = self.device(name)
        context = context if context is not None else next(iter(device.apps))
        if device.reference:
            record = device.store.get(context, key)
            if record is not None and record.pending:
                self.checker.abandon_pending(name, [(context, key, record.version, record.base)])
        await device.forget(key, context)
        self.forgotten.setdefault(name, set()).add((context, key))
        self.checker.forget_key(name, context, key)
        self.trace.emit("device", device=name, event="forget", context=context, key=key)

    def behave(self, name: str, context: str | None = None, **behaviour: Any) -> None:
        """Set how a device's app answers callbacks (see :class:`simulator.world.app.Behaviour`)."""
        device = self.device(name)
        for ctx in [context] if context else list(device.apps):
            new = Behaviour(**behaviour)
            device.behaviours[ctx] = new
            device.apps[ctx].behaviour = new
        self._switch("behave", name, behaviour.get("mode") != "apply", behaviour)

    # -- paired faults (the table is simulator.faults) --------------------------------------

    def _link(self, name: str) -> Link:
        link = self.links.get(name)
        if link is None:
            raise self._no_device(name)
        return link

    def _switch(
        self, fault: str, target: str, on: bool, detail: dict[str, Any] | None = None
    ) -> None:
        """Trace a fault (or a clock or app setting) turning on or off."""
        if detail is None:
            self.trace.emit("fault", target=target, fault=fault, on=on)
        else:
            self.trace.emit("fault", target=target, fault=fault, on=on, detail=detail)

    def fault_on(self, fault: str, device: str | None = None) -> bool:
        """Whether ``fault`` (a name of :data:`simulator.faults.FAULTS`) is on now: for
        ``device``, if it is a fault of one device's."""
        spec = faults.fault(fault)
        if spec.per_device:
            if device is None:
                raise ValueError(f"fault_on: {fault!r} is a fault of one device: name it")
            self._link(device)
        elif device is not None:
            raise ValueError(f"fault_on: {fault!r} is the vault's fault: name no device")
        return FAULT_ON[spec.name](self, device or "")

    def partition(self, name: str) -> None:
        """Requests from ``name`` vanish (clients time out: an indefinite failure)."""
        self._link(name).partitioned = True
        self._switch("partition", name, True)

    def heal(self, name: str) -> None:
        """Ends :meth:`partition`."""
        self._link(name).partitioned = False
        self._switch("partition", name, False)

    def cut_answers(self, name: str) -> None:
        """One-way partition: requests arrive and apply, answers vanish."""
        self._link(name).answers_lost = True
        self._switch("cut_answers", name, True)

    def restore_answers(self, name: str) -> None:
        """Ends :meth:`cut_answers`."""
        self._link(name).answers_lost = False
        self._switch("cut_answers", name, False)

    def disconnect(self, name: str) -> None:
        """No route at all: requests fail at once (a definite failure)."""
        self._link(name).down = True
        self._switch("disconnect", name, True)

    def reconnect(self, name: str) -> None:
        """Ends :meth:`disconnect`."""
        self._link(name).down = False
        self._switch("disconnect", name, False)

    def lossy(self, name: str, *, requests: float = 0.0, answers: float = 0.0) -> None:
        """Each request of ``name`` is lost with probability ``requests`` (refused at once),
        each answer with probability ``answers`` (the client times out)."""
        _probability("lossy", "requests", requests)
        _probability("lossy", "answers", answers)
        if not (requests or answers):
            raise ValueError(
                "lossy: requests and answers are both 0, which loses nothing; "
                f"lossless({name!r}) turns the loss off"
            )
        link = self._link(name)
        link.request_loss, link.answer_loss = requests, answers
        self._switch("lossy", name, True, {"requests": requests, "answers": answers})

    def lossless(self, name: str) -> None:
        """Ends :meth:`lossy`."""
        link = self._link(name)
        link.request_loss = link.answer_loss = 0.0
        self._switch("lossy", name, False)

    def slow_link(self, name: str, latency: tuple[float, float]) -> None:
        """Each leg of each request of ``name`` takes uniformly ``latency`` seconds."""
        low, high = latency
        _seconds("slow_link", "latency", low)
        _seconds("slow_link", "latency", high)
        if low > high:
            raise ValueError(
                f"slow_link: latency must be (low, high) with low <= high, got {latency!r}"
            )
        self._link(name).latency = (low, high)
        self._switch("slow_link", name, True, {"latency": [low, high]})

    def fast_link(self, name: str) -> None:
        """Ends :meth:`slow_link`: the world's latency again."""
        self._link(name).latency = self.latency
        self._switch("slow_link", name, False)

    def expire_token(self, name: str) -> None:
        """The vault refuses every request of ``name`` with 401 (its token expired)."""
        self._link(name)
        self.server.expired.add(name)
        self._switch("expire_token", name, True)

    def renew_token(self, name: str) -> None:
        """Ends :meth:`expire_token`."""
        self._link(name)
        self.server.expired.discard(name)
        self._switch("expire_token", name, False)

    def freeze(self) -> None:
        """The vault refuses writes with 403 (reads work)."""
        self.server.frozen = True
        self._switch("freeze", "vault", True)

    def unfreeze(self) -> None:
        """Ends :meth:`freeze`."""
        self.server.frozen = False
        self._switch("freeze", "vault", False)

    def take_down(self) -> None:
        """The vault answers every request with 503, applying nothing."""
        self.server.unavailable = True
        self._switch("take_down", "vault", True)

    def bring_up(self) -> None:
        """Ends :meth:`take_down`."""
        self.server.unavailable = False
        self._switch("take_down", "vault", False)

    def server_errors(self, *, before: float = 0.0, after: float = 0.0) -> None:
        """The vault fails a request with 500 before applying it with probability ``before``,
        and a write after applying it with probability ``after``."""
        _probability("server_errors", "before", before)
        _probability("server_errors", "after", after)
        if not (before or after):
            raise ValueError(
                "server_errors: before and after are both 0, which fails nothing; "
                "stop_server_errors() turns the errors off"
            )
        self.server.error_before, self.server.error_after = before, after
        self._switch("server_errors", "vault", True, {"before": before, "after": after})

    def stop_server_errors(self) -> None:
        """Ends :meth:`server_errors`."""
        self.server.error_before = self.server.error_after = 0.0
        self._switch("server_errors", "vault", False)

    def _inside_the_vault(self, fault: str) -> None:
        if self.server.live:
            raise UnsupportedFault(
                f"{fault}: needs the fake vault (a real vault cannot be made to)"
            )

    async def lose_collection(self, context: str) -> None:
        """The vault loses ``context``'s collection and every document in it (an operator
        reset, a restore from a snapshot taken before the context existed): a one-shot event,
        not a fault. The devices still hold the backup (SPEC RES-3). Needs the fake vault."""
        if context not in self.contexts and not any(
            context in device.apps for device in self.devices.values()
        ):
            raise ValueError(
                f"lose_collection: no context {context!r}; "
                f"{did_you_mean(context, list(self.contexts))}contexts: {list(self.contexts)}"
            )
        self._inside_the_vault("lose_collection")
        name = "backup_" + context
        if name in self.server.vault.collection_names():
            await self.server.vault.delete_collection(name)
        self.note(f"the vault lost collection {name} (lose_collection)")

    def upsert_race(self, seconds: float) -> None:
        """MongoDB without a unique index: an upsert checks for a match, then inserts
        ``seconds`` later, so two racing upserts of one key can both insert."""
        _seconds("upsert_race", "seconds", seconds)
        if not seconds:
            raise ValueError("upsert_race: seconds must be above 0; stop_upsert_race() ends it")
        self._inside_the_vault("upsert_race")
        self.server.upsert_race = seconds
        self._switch("upsert_race", "vault", True)

    def stop_upsert_race(self) -> None:
        """Ends :meth:`upsert_race`: upserts are atomic again."""
        self.server.upsert_race = 0.0
        self._switch("upsert_race", "vault", False)

    def slow_vault(self, seconds: float) -> None:
        """Every request takes ``seconds`` more on the server."""
        _seconds("slow_vault", "seconds", seconds)
        if not seconds:
            raise ValueError("slow_vault: seconds must be above 0; fast_vault() ends it")
        self.server.slow = seconds
        self._switch("slow_vault", "vault", True)

    def fast_vault(self) -> None:
        """Ends :meth:`slow_vault`."""
        self.server.slow = 0.0
        self._switch("slow_vault", "vault", False)

    def commit_lag(self, seconds: float, *, exact: bool = False) -> None:
        """Writes are stamped when the vault handles them and become visible (and answered) a
        lag later, drawn from 0 to ``seconds`` (``exact``: ``seconds``); reads are not delayed.
        SYNC-4's premise bounds it: below the devices' overlap (5 s by default). Fake vault."""
        _seconds("commit_lag", "seconds", seconds)
        if not seconds:
            raise ValueError("commit_lag: seconds must be above 0; commit_at_once() ends it")
        overlap = min(
            float(options.get("overlap", _OVERLAP))
            for options in (self.helper_options, *(d.options for d in self.devices.values()))
        )
        if seconds >= overlap:
            raise ValueError(
                f"commit_lag: seconds must be below the devices' overlap ({overlap:g} s), got "
                f"{seconds!r}: SPEC SYNC-4 assumes a write is visible within the overlap"
            )
        if not isinstance(exact, bool):
            raise ValueError(f"commit_lag: exact must be true or false, got {exact!r}")
        self._inside_the_vault("commit_lag")
        self.server.commit_lag, self.server.commit_lag_exact = seconds, exact
        self._switch("commit_lag", "vault", True, {"seconds": seconds, "exact": exact})

    def commit_at_once(self) -> None:
        """Ends :meth:`commit_lag` (writes in flight still commit when their lag ends)."""
        self.server.commit_lag, self.server.commit_lag_exact = 0.0, False
        self._switch("commit_lag", "vault", False)

    def heal_all(self) -> None:
        """Every fault off, every app accepting (the start of the settle phase)."""
        network = [f for f in faults.FAULTS.values() if f.layer == "network"]
        for name, link in self.links.items():
            for spec in network:
                if FAULT_ON[spec.name](self, name):
                    getattr(self, spec.off)(name)
            link.lose_answers = 0
            self.disarm_crash(name)
        self.server.failing_collections.clear()  # the server's knobs for tests
        self.server.refused_keys.clear()
        for spec in faults.FAULTS.values():
            if spec.layer == "network":
                continue
            for target in sorted(self.devices) if spec.per_device else [""]:
                if FAULT_ON[spec.name](self, target):
                    getattr(self, spec.off)(*([target] if spec.per_device else []))
        for name, device in self.devices.items():
            if any(b.mode != "apply" for b in device.behaviours.values()):
                self.behave(name, mode="apply")
            for app in device.apps.values():
                app.refuse = None

    # -- clocks -----------------------------------------------------------------------------

    def _clock(self, name: str, what: str) -> SkewedClock:
        if name == "vault":
            self._inside_the_vault(what)
            return self.server.clock
        if name not in self.devices:
            raise self._no_device(name, clock=True)
        return self.devices[name].clock

    def jump_clock(self, name: str, seconds: float) -> None:
        """Step a device's clock (or the vault's, with ``"vault"``) by ``seconds``: a one-shot
        event, not a fault."""
        self._clock(name, "a vault clock jump").jump(seconds)
        overlap = self.helper_options.get("overlap", _OVERLAP)
        if name == "vault" and seconds < 0 and -seconds > overlap:
            self.vault_stepped_back = True
        self._switch("jump_clock", name, True, {"seconds": seconds})

    def set_drift(self, name: str, ppm: float) -> None:
        """A device's clock (or the vault's, with ``"vault"``) runs fast or slow from now on
        (a setting of the clock, which the settle phase leaves as it is)."""
        self._clock(name, "a vault clock drift").set_drift(ppm)
        self._switch("set_drift", name, ppm != 0, {"ppm": ppm})

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
        """Changes so far, as the harness sees them for any implementation: the callbacks the
        devices made and the writes the vault applied."""
        return self.activity + self.server.writes

    async def settle(self, *, max_rounds: int = 12) -> list[Finding]:
        """Heal everything, restart crashed devices, sync until quiet, then run the checkers.

        Quiet means a whole round of passes in which no device uploaded or delivered anything.
        The phase syncs *incrementally* first and checks convergence then. If some device does
        not hold what the vault holds, every device makes a forced full pass, standing for the
        full pass the SPEC schedules (SYNC-11's periodic one, DEL-3's after a long absence, the
        one that brings back a key deleted ``locally_only``, API-3; the periodic pass is not
        waited for, since a device clock stepped back would delay it). That pass may repair only
        what those clauses say it repairs: a key it delivered that none of them excuses (see
        :func:`simulator.world.settle.full_pass_excuse`) is a finding (SYNC-4), naming the keys
        an incremental pull missed. Then each device's idle pass is measured on its link
        (COST-1), and the end-of-run checkers run. The phase is :mod:`simulator.world.settle`.
        """
        return await settle(self, max_rounds=max_rounds)

    async def close(self) -> None:
        try:
            for armed in list(self._crashing.values()):
                await armed  # a crash that fired: let it stop the helper
            for device in self.devices.values():
                if device.running:
                    await device.crash()
            self.trace.close()
        finally:
            if self.system_clock is not None:
                self.system_clock.stop()

    def vault_live(self, context: str) -> dict[str, Any]:
        """The vault's live entries of a context, read in the original helper's fields (see
        :meth:`vault_outcomes`; a key whose newest documents disagree shows the first)."""
        return {
            key: options[0]
            for key, options in self.vault_outcomes(context).items()
            if options[0] is not ABSENT
        }

    def vault_outcomes(self, context: str) -> dict[str, list[Any]]:
        """key -> what the fake vault holds for it, in the original helper's fields only
        (:func:`simulator.world.vaultview.vault_outcomes`)."""
        return vault_outcomes(self.server.vault, context)

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
            value=None if deleted else data,
        )

    def _before_callback(self, device: SimDevice, context: str, kind: str, entry: Entry) -> None:
        self.activity += 1
        self.checker.before_callback(device.name, context, kind, entry)
        if self.trace.path is not None:  # the value, for the callback's trace line
            value = None if kind == "delete" else entry.data
            self._delivering[(device.name, context, entry.key)] = value

    def _delivered(self, device: str, context: str | None, key: str | None) -> Any:
        """The value the callback of ``device`` for ``key`` was handed (None for a delete)."""
        return self._delivering.pop((device.split("#", 1)[0], context or "", key or ""), None)

    def _synced(self, device: SimDevice, completed: bool | None) -> None:
        """The harness called ``sync()`` on ``device`` (None), or it returned."""
        if completed is None:
            self.checker.sync_called(device.name)
        else:
            self.checker.sync_returned(device.name, completed)

    def _answered(
        self, device: SimDevice, context: str, kind: str, entry: Entry, accepted: bool
    ) -> None:
        """A callback got its answer (for any implementation: the harness makes the call). The
        reference's own events trace it, with its version."""
        self.checker.callback_answered(device.name, context, kind, entry.key, accepted)
        if device.reference:
            return
        self.checker.record_delivery(device.name, context, kind, entry, accepted)
        self.trace.emit(
            "callback",
            device=device.name,
            context=context,
            key=entry.key,
            action=kind,
            accepted=accepted,
            version=None,
            value=self._delivered(device.name, context, entry.key),
        )

    def _on_event(self, event: SyncEvent) -> None:
        self.checker.on_event(event)
        if event.kind == "callback":
            self.trace.emit(
                "callback",
                device=event.device,
                context=event.context,
                key=event.key,
                action=event.action,
                accepted=event.accepted,
                version=event.version,
                value=self._delivered(event.device, event.context, event.key),
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
