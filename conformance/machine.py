"""A Hypothesis state machine over the simulator: random app work and faults, on any helper.

Each example builds a world of two or three devices (clock offsets drawn) with one or two sync
contexts, on the implementation under test, and lets Hypothesis choose the steps: puts and
deletes on four keys, syncs, time passing, partitions, disconnections and lost answers, device
clock jumps, crashes (between passes, and inside one at a chosen request or callback), restarts
and reinstalls, refusing, flaky or slow apps, slow links, a slow vault, writes the vault
commits late, vault outages and server errors. Three moves target what once lost an edit (see
:mod:`simulator.scenarios.regressions`): a device reinstalled while its last upload is on the
wire, then writing the same key again; on the reference, a device running two helper instances
on its one store (``share_contexts``), whose app writes through either; and an app that edits
or deletes what its pass just gave it while that pass is still busy (``act_while_pulling``,
often with a slow app: the lost delete of ``delete-what-was-just-given``, which the default
profiles never reached before this move, and 3,000 examples of 100 steps reached on one seed
in six). Rules are synchronous: each one runs
scenario-file steps (:mod:`simulator.scenarios.files`) on the world's virtual-time loop through
:class:`~simulator.scenarios.files.ScenarioRun`, and records them.

After every step (``check_each_step``, see :mod:`simulator.scenarios.files.invariants`): no
device or vault holds data no app wrote (API-2); a completed pass on an app that applies what
it accepts leaves its model equal to the helper's local copy (CB-5); and the simulator's
checkers found nothing
(for the reference in process they also read its internals: CB-1..CB-4, CB-6 per pass,
RETRY-1 liveness). At the end of an example: the world settles, every device shows the same
entries as its local copy and as the others (SYNC-1, ORD-2); then two entries are written on
one device while another device's app refuses each change once: its sync makes exactly one
callback and reports that it did not complete (CB-6), and with nothing but virtual time passing
the entries arrive (RETRY-1); then the world settles again and the end checkers run.

A failure prints the recorded run as a scenario file with ``check_each_step = true`` (also
written to the test's directory) and the command that replays it,
``brh-sim run FILE --seed N [--impl package.module:factory]``: the file runs the same steps the
same way, so it fails the same way.

Profiles (``--brh-profile``): ``brh-fast`` (default: 25 examples of at most 30 steps, seconds),
``brh-ci`` (300 examples of up to 50 steps), ``brh-deep`` (100,000 examples of up to 100 steps:
hours). Hypothesis is seeded with ``--brh-seed``. Failing examples are saved in the example
database the plugin opens (``--brh-example-db``, see :mod:`conformance.exampledb`; the
:class:`~conformance.harness.Sim` carries it and the test's key) and replayed first on the next
run; with ``--brh-example-db none`` (and for a :class:`Sim` built without one) a run is
reproduced by its options alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance.harness import Sim
from simulator.faults import FAULTS
from simulator.scenarios.files import DeviceSpec, ScenarioRun, ScenarioSpec, Step, dumps

__all__ = ["CLAUSES", "KEYS", "PROFILE_NAMES", "MachineStats", "SyncMachine", "run_machine"]

KEYS = ("k0", "k1", "k2", "k3")
FINAL_KEYS = ("z0", "z1")
"""Written only by the final phase's refusal check."""
DEVICES = ("a", "b", "c")
CONTEXTS = ("notes", "contacts")
CLAUSES = ("SYNC-1", "CB-5", "CB-6", "RETRY-1", "ORD-2", "API-2")
"""The clauses the machine checks (see the module docstring)."""

PROFILE_NAMES = {"fast": "brh-fast", "ci": "brh-ci", "deep": "brh-deep"}
"""``--brh-profile`` value -> registered Hypothesis profile."""

_COMMON: dict[str, Any] = {
    "deadline": None,  # virtual time: wall time per example says nothing about the helper
    "database": None,  # run_machine gives the Sim's example database, if it has one
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    # said outright, not inherited: under CI=1 Hypothesis's own "ci" profile is the default and
    # it derandomizes. run_machine always seeds Hypothesis (--brh-seed), which is as
    # deterministic, and derandomize would turn the example database off
    "derandomize": False,
}
settings.register_profile("brh-fast", max_examples=25, stateful_step_count=30, **_COMMON)
settings.register_profile("brh-ci", max_examples=300, stateful_step_count=50, **_COMMON)
settings.register_profile("brh-deep", max_examples=100_000, stateful_step_count=100, **_COMMON)

_WHO = st.integers(0, len(DEVICES) - 1)
"""A device, as an index into the devices a rule may pick from (which shrinks well)."""
_STRENGTH: dict[str, dict[str, Any]] = {
    "server_errors": {"before": 0.3, "after": 0.3},
    "slow_link": {"low": 0.2, "high": 3.0},
    "slow_vault": {"seconds": 2.0},
    "commit_lag": {"seconds": 4.0},
}
"""The fields the machine turns a fault on with, beyond its device."""


@dataclass
class MachineStats:
    """What a :func:`run_machine` call ran: examples (worlds built) and steps (world steps,
    the final phase's included), shrinking and the final replay included."""

    examples: int = 0
    steps: int = 0
    first_failure: int | None = None
    """The example (counted as :attr:`examples`) that failed first, before any shrinking."""


class SyncMachine(RuleBasedStateMachine):
    """See the module docstring. One instance runs one example on ``sim``'s implementation."""

    def __init__(self, sim: Sim, stats: MachineStats | None = None) -> None:
        super().__init__()
        self.sim = sim
        self.stats = stats or MachineStats()
        self.run: ScenarioRun | None = None
        self.world_seed = 0
        self.devices: tuple[DeviceSpec, ...] = ()
        self.contexts: tuple[str, ...] = CONTEXTS[:1]
        self.steps: list[Step] = []
        self.values = itertools.count(1)
        self.failed = False

    # -- recording and failure ---------------------------------------------------------------

    def scenario(self) -> ScenarioSpec:
        """The run so far as a scenario (``dumps`` writes it as a file)."""
        return ScenarioSpec(
            path="state-machine.toml",
            name="state-machine",
            description=f"recorded by the conformance state machine on {self.sim.target.name}",
            clauses=CLAUSES,
            contexts=self.contexts,
            devices=self.devices,
            steps=tuple(self.steps),
            check_each_step=True,
        )

    def replay_command(self, path: Path) -> str:
        command = f"brh-sim run {path} --seed {self.world_seed}"
        impl = self.sim.brh_sim_impl
        if impl is not None:
            command += f" --impl {impl}"
        elif self.sim.target.factory is not None:
            command += "  (brh-sim cannot start a --brh-cmd process: replay with pytest)"
        return command

    def _failing(self, problem: str) -> None:
        """Record the failure: the scenario file and how to replay it (Hypothesis prints notes
        for the minimal failing example only; the file is rewritten by each failing example,
        so it holds the minimal one at the end)."""
        self.failed = True
        if self.stats.first_failure is None:
            self.stats.first_failure = self.stats.examples
        path = self.sim.workdir / "state-machine-failure.toml"
        text = dumps(self.scenario())
        path.write_text(text, encoding="utf-8")
        report = (
            f"{problem}\nThe run as a scenario file ({path}):\n\n{text}\n"
            f"replay it: {self.replay_command(path)}"
        )
        try:
            note(report)
        except InvalidArgument:  # a machine driven by hand, outside a Hypothesis test
            print(report)

    def _do(self, verb: str, **fields: Any) -> None:
        """Run one step on the world and record it."""
        assert self.run is not None
        step = Step(len(self.steps) + 1, verb, None, fields)
        self.steps.append(step)
        self.stats.steps += 1
        try:
            self.run.step(step)
        except Exception as exc:
            self._failing(f"step {step.number} ({verb}) raised {type(exc).__name__}: {exc}")
            raise

    def _check(self, condition: bool, problem: str) -> None:
        if not condition:
            self._failing(problem)
            raise AssertionError(problem)

    # -- what rules may pick -----------------------------------------------------------------

    def _names(self) -> list[str]:
        return [d.name for d in self.devices]

    def _running(self) -> list[str]:
        if self.run is None:
            return []
        return [n for n in self._names() if self.run.world.devices[n].running]

    def _crashed(self) -> list[str]:
        if self.run is None:
            return []
        return [n for n in self._names() if not self.run.world.devices[n].running]

    @staticmethod
    def _pick(who: int, names: list[str]) -> str:
        return names[who % len(names)]

    def _context(self, index: int) -> str:
        return self.contexts[index % len(self.contexts)]

    def _value(self, device: str) -> str:
        """A value never written before (API-2's check can tell where data came from)."""
        return f"{device}{next(self.values)}"

    # -- rules -------------------------------------------------------------------------------

    @initialize(
        world_seed=st.integers(0, 9_999),
        count=st.integers(2, len(DEVICES)),
        contexts=st.integers(1, len(CONTEXTS)),
        offsets=st.lists(
            st.sampled_from((0.0, 0.0, -3600.0, 90.0, 86_400.0)),
            min_size=len(DEVICES),
            max_size=len(DEVICES),
        ),
        shared=st.booleans(),
    )
    def start(
        self, world_seed: int, count: int, contexts: int, offsets: list[float], shared: bool
    ) -> None:
        self.stats.examples += 1
        self.world_seed = world_seed
        self.contexts = CONTEXTS[:contexts]
        # Two helpers on one store is a promise of the reference's store, not a SPEC clause
        # every implementation makes: other implementations run one instance per device.
        two = shared and self.sim.target.factory is None
        self.devices = tuple(
            DeviceSpec(
                name,
                offset=offset,
                instances=2 if two and number == 0 else 1,
                share_contexts=two and number == 0,
            )
            for number, (name, offset) in enumerate(zip(DEVICES[:count], offsets, strict=False))
        )
        self.run = self.sim.stepped(
            world_seed,
            devices=self.devices,
            contexts=self.contexts,
            heading="conformance state machine",
        )

    @precondition(lambda self: bool(self._running()))
    @rule(
        who=_WHO,
        work=st.lists(
            st.tuples(
                st.sampled_from(("put", "put", "remove", "sync")),
                st.integers(0, len(CONTEXTS) - 1),
                st.sampled_from(KEYS),
                st.integers(0, 1),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def app_work(self, who: int, work: list[tuple[str, int, str, int]]) -> None:
        """One device's app at work: puts (each a value never written before), deletes and
        syncs, in a row; on a device with two helper instances, each write goes through the
        one drawn."""
        name = self._pick(who, self._running())
        for action, context, key, instance in work:
            through = self._through(name, instance)
            if action == "sync":
                self._do("sync", device=name)
            elif action == "remove":
                self._do("remove", device=name, key=key, context=self._context(context), **through)
            else:
                value = self._value(name)
                self._do(
                    "put",
                    device=name,
                    key=key,
                    value=value,
                    context=self._context(context),
                    **through,
                )

    def _through(self, device: str, instance: int) -> dict[str, int]:
        """The ``instance`` field of a write on ``device`` (none for a one-instance device)."""
        spec = next(d for d in self.devices if d.name == device)
        return {"instance": instance % spec.instances} if spec.share_contexts else {}

    @precondition(lambda self: bool(self._running()))
    @rule(
        who=_WHO,
        context=st.integers(0, len(CONTEXTS) - 1),
        key=st.sampled_from(KEYS),
        wait=st.sampled_from((0.06, 0.08, 0.2)),
    )
    def reinstall_in_flight(self, who: int, context: int, key: str, wait: float) -> None:
        """A device writes a key, is reinstalled once the upload has started (``wait`` after
        the write, past the 50 ms debounce) and writes the key again: the old installation's
        upload may land after the new one's writes (regression reinstall-same-device-id)."""
        name = self._pick(who, self._running())
        where = {"device": name, "key": key, "context": self._context(context)}
        self._do("put", value=self._value(name), **where)
        self._do("advance", seconds=wait)
        self._do("reinstall", device=name)
        self._do("put", value=self._value(name), **where)

    @precondition(lambda self: bool(self._running()))
    @rule(
        who=_WHO,
        context=st.integers(0, len(CONTEXTS) - 1),
        trigger=st.sampled_from(KEYS),
        action=st.sampled_from(("remove", "put")),
        slow=st.sampled_from((0.0, 4.0)),
        wait=st.sampled_from((0.3, 4.5, 10.5)),
    )
    def act_while_pulling(
        self, who: int, context: int, trigger: str, action: str, slow: float, wait: float
    ) -> None:
        """The app goes on working while its own pass delivers: its callbacks take ``slow``
        seconds each (if not 0: like asking the user), it writes ``trigger`` (which starts a
        pass after the debounce), lets ``wait`` seconds pass while that pass pulls, then
        deletes or edits the key its app was given last, if any (ORD-7, CB-7: the write acts
        on the delivered version; regression delete-what-was-just-given)."""
        name = self._pick(who, self._running())
        where = {"device": name, "context": self._context(context)}
        if slow:
            self._do("behave", device=name, mode="slow", delay=slow)
        self._do("put", key=trigger, value=self._value(name), **where)
        self._do("advance", seconds=wait)
        assert self.run is not None
        calls = self.run.world.device(name).apps[where["context"]].calls
        key = calls[-1][1] if len(calls) else trigger
        if action == "remove":
            self._do("remove", key=key, **where)
        else:
            self._do("put", key=key, value=self._value(name), **where)

    @precondition(lambda self: bool(self._running()))
    @rule(who=_WHO)
    def sync(self, who: int) -> None:
        self._do("sync", device=self._pick(who, self._running()))

    @precondition(lambda self: self.run is not None)
    @rule(seconds=st.sampled_from((0.05, 1.0, 5.0, 30.0, 120.0, 600.0)))
    def advance(self, seconds: float) -> None:
        self._do("advance", seconds=seconds)

    @precondition(lambda self: self.run is not None)
    @rule(
        who=_WHO,
        fault=st.sampled_from(
            (
                "partition",
                "disconnect",
                "cut_answers",
                "take_down",
                "server_errors",
                "slow_link",
                "slow_vault",
                "commit_lag",
            )
        ),
    )
    def fault(self, who: int, fault: str) -> None:
        """Toggle a fault of :mod:`simulator.faults` (on if off, off if on): a device's
        partition (requests vanish), disconnection (requests fail at once), lost answers or
        slow link (each request takes 0.2 to 3 s), a vault outage, vault errors before and
        after applying, a slow vault (2 s a request), or writes committing late (stamped on
        arrival, visible up to 4 s later: SYNC-4's writes in flight). Slow requests keep passes
        in flight while other steps run, which is where the app's own writes race the pass."""
        assert self.run is not None
        spec = FAULTS[fault]
        device = {"device": self._pick(who, self._names())} if spec.per_device else {}
        if self.run.world.fault_on(fault, *device.values()):
            self._do(spec.off, **device)
        else:
            self._do(fault, **device, **_STRENGTH.get(fault, {}))

    @precondition(lambda self: self.run is not None)
    @rule(who=_WHO, seconds=st.sampled_from((-7200.0, -30.0, -1.0, 1.0, 30.0, 7200.0)))
    def clock(self, who: int, seconds: float) -> None:
        """A device's clock steps (the vault's clock is left alone: a step back there is
        repaired by a full pass only, which the common helper API cannot ask for)."""
        self._do("jump_clock", device=self._pick(who, self._names()), seconds=seconds)

    @precondition(lambda self: self.run is not None)
    @rule(who=_WHO, event=st.sampled_from(("crash", "restart", "crash", "restart", "reinstall")))
    def life(self, who: int, event: str) -> None:
        """A running device crashes, a crashed one restarts, or any device is reinstalled (an
        event with no device to apply to falls back to a reinstall)."""
        running, crashed = self._running(), self._crashed()
        if event == "crash" and running:
            self._do("crash", device=self._pick(who, running))
        elif event == "restart" and crashed:
            self._do("restart", device=self._pick(who, crashed))
        else:
            self._do("reinstall", device=self._pick(who, self._names()))

    @precondition(lambda self: self.run is not None and bool(self._running()))
    @rule(
        who=_WHO,
        point=st.sampled_from(("request", "callback")),
        count=st.integers(1, 4),
        applied=st.booleans(),
    )
    def crash_inside_a_pass(self, who: int, point: str, count: int, applied: bool) -> None:
        """A running device syncs and dies inside the pass: at its ``count``-th vault request
        (as it leaves, or once the vault ``applied`` it) or callback (before the app sees the
        change, or once it took it); at the pass's end if it never got there (OFF-2, OFF-4,
        CB-7, ORD-5)."""
        name = self._pick(who, self._running())
        self._do("crash_in_sync", device=name, applied=applied, **{point: count})

    @precondition(lambda self: self.run is not None)
    @rule(
        who=_WHO,
        mode=st.sampled_from(("refuse", "flaky", "apply", "slow")),
        refusals=st.integers(1, 3),
        probability=st.sampled_from((0.3, 0.6)),
        delay=st.sampled_from((0.5, 4.0, 10.0)),
    )
    def app(self, who: int, mode: str, refusals: int, probability: float, delay: float) -> None:
        """A device's apps refuse each change ``refusals`` times, refuse at random, take
        ``delay`` seconds over each callback (like asking the user: the pass stays busy while
        the app goes on editing, ORD-7), or accept and apply everything again. (An app that
        declines changes would show other entries than its local copy on purpose, which the
        end's convergence check compares.)"""
        name = self._pick(who, self._names())
        if mode == "refuse":
            self._do("behave", device=name, mode=mode, refusals=refusals)
        elif mode == "flaky":
            self._do("behave", device=name, mode=mode, probability=probability)
        elif mode == "slow":
            self._do("behave", device=name, mode=mode, delay=delay)
        else:
            self._do("behave", device=name, mode=mode)

    # -- after every step ----------------------------------------------------------------------

    @invariant()
    def nothing_found(self) -> None:
        """The step checks (API-2, CB-5) and the simulator's checkers found nothing."""
        if self.run is None or self.failed:
            return
        findings = self.run.world.checker.findings
        self._check(not findings, "findings:\n  " + "\n  ".join(str(f) for f in findings))

    # -- the end -------------------------------------------------------------------------------

    def teardown(self) -> None:
        if self.run is None:
            return
        try:
            if not self.failed:
                self._final_phase()
        finally:
            self.run.close()

    def _final(self, verb: str, **fields: Any) -> None:
        self._do(verb, **fields)
        self.nothing_found()

    def _final_phase(self) -> None:
        assert self.run is not None
        self._final("settle")
        self._converged()
        writer, reader = DEVICES[0], DEVICES[1]
        # keys no step used: the app model refuses "each change once" by key and modification
        # date, and a device whose clock stepped back may give a new write the date of an old
        # one (ORD-1), which the app would take for a change it had already refused
        for key in FINAL_KEYS:
            value = self._value(writer)
            self._final("put", device=writer, key=key, value=value, context=self.contexts[0])
        self._final("sync", device=writer)
        self._final("expect", device=writer, completed=True, clause="SYNC-1")
        self._final("behave", device=reader, mode="refuse", refusals=1)
        self._final("sync", device=reader)
        # CB-6: the first callback was refused, so the pass ends there: one callback, and the
        # sync reports that it did not complete
        self._final("expect", device=reader, completed=False, callbacks=1, clause="CB-6")
        # RETRY-1: nothing but virtual time passes; the helper must try again by itself
        self._final("advance", seconds=1800.0)
        self._final("expect", device=reader, same_as=writer, clause="RETRY-1")
        outcome = self.run.finish()
        self._check(
            outcome.ok,
            "after the final settle:\n  " + "\n  ".join(str(f) for f in outcome.findings),
        )

    def _converged(self) -> None:
        """SYNC-1, ORD-2: after settling, every app shows its local copy and the same entries
        as every other device's app."""
        assert self.run is not None
        devices = list(self.run.world.devices.values())
        for context in self.contexts:
            first = devices[0].apps[context].items
            for device in devices:
                app = device.apps[context]
                local = device.local(context)
                self._check(
                    app.items == local,
                    f"SYNC-1: after settling, {device.name}'s app shows {app.items} in "
                    f"{context} but its local copy is {local}",
                )
                self._check(
                    app.items == first,
                    f"ORD-2: after settling, {device.name}'s app shows {app.items} in {context}"
                    f" but {devices[0].name}'s shows {first}",
                )


def run_machine(sim: Sim, **overrides: Any) -> MachineStats:
    """Run the state machine on ``sim``'s implementation with its profile and seed
    (``overrides``: Hypothesis settings to change, e.g. ``max_examples``); return what ran."""
    profile = PROFILE_NAMES[sim.profile]
    if sim.examples is not None:
        overrides.setdefault("max_examples", sim.examples)
    if sim.steps is not None:
        overrides.setdefault("stateful_step_count", sim.steps)
    if sim.example_db is not None:
        overrides.setdefault("database", sim.example_db)
    chosen = settings(settings.get_profile(profile), **overrides)
    print(
        f"state machine: Hypothesis profile {profile} ({chosen.max_examples} examples of up to "
        f"{chosen.stateful_step_count} steps), seed {sim.seed} (--brh-seed), "
        f"implementation {sim.target.name}, example database {chosen.database}"
    )

    stats = MachineStats()

    def machine() -> SyncMachine:
        return SyncMachine(sim, stats)

    # Hypothesis keys a state machine's examples by the factory's digest, which takes this
    # attribute in (as it does for parametrized tests): without it every test and every
    # implementation would share one key, the closure's source being the same
    machine._hypothesis_internal_add_digest = sim.example_key  # type: ignore[attr-defined]
    # Hypothesis takes any callable returning a machine (its annotation says a class)
    factory = cast("type[RuleBasedStateMachine]", seed(sim.seed)(machine))
    try:
        run_state_machine_as_test(factory, settings=chosen)
    finally:
        if stats.first_failure is not None:
            print(f"state machine: first failure at example {stats.first_failure}")
    return stats
