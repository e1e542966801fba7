"""Scenarios as TOML files: a declarative list of timed steps, checked before anything runs.

A scenario file names the world (sync contexts, helper options, devices) and the steps to take,
each at a time given in seconds since the start. :func:`load_file` reads and validates it into
a :class:`ScenarioSpec`; :func:`run_file` runs it like a named scenario (the world settles and
the checkers judge, see :func:`simulator.world.simulate`). Any mistake (an unknown verb or
field, a missing field, a time going backwards, a device that does not exist or has crashed, a
context it does not register) raises :class:`ScenarioFileError` naming the file, the step and
the field, before the world is even built.

A full example::

    name = "late-upload"                      # required
    description = "an offline edit uploaded late still reaches every device"
    weakness = ["W1"]                          # optional: ids W1..W14 (a string or a list)
    clauses = ["SYNC-4", "OFF-3"]              # optional: SPEC clause ids
    contexts = ["notes"]                       # optional, default ["notes"]
    check_each_step = false                    # optional: check simulator.invariants after
                                               # every step (no invented data, CB-5)

    [options]                                  # optional helper options, for every device
    full_sync_interval = "none"                # TOML has no null: "none" means None
    overlap = 5
    [options.retry]                            # a RetryPolicy
    initial_delay = 1
    max_delay = 300

    [[devices]]                                # devices present from the start
    name = "phone"
    [[devices]]
    name = "tablet"
    offset = -3600                             # clock skew, seconds (optional)
    drift_ppm = 0                              # clock drift (optional)
    contexts = ["notes"]                       # contexts registered at first (optional)
    instances = 1                              # helper instances on the device's one store
                                               # (optional, default 1): context number i (in
                                               # registration order) goes to instance i mod n
    share_contexts = false                     # optional: every instance registers and syncs
                                               # every context (two processes of one app);
                                               # put/remove may then name an ``instance``

    [[steps]]
    at = 0                                     # seconds since the start (optional: right
    do = "put"                                 # after the previous step); never backwards
    device = "phone"
    key = "x"
    value = {text = "hello", tags = ["a", "b"]}

    [[steps]]
    at = 100
    do = "disconnect"
    device = "tablet"

    [[steps]]
    do = "checkpoint"                          # heal, sync incrementally, check now

Steps may also be written as an array of inline tables, ``steps = [{do = "put", device =
"phone", key = "x", value = 1}, ...]``; in TOML such a key must come before the first table
header (``[options]``, ``[[devices]]``), or it belongs to that table.

Steps run in order, each as its own run of the virtual-time loop (see
:mod:`simulator.stepping`: what a step leaves running goes on in the next one). Before a step
with ``at``, virtual time advances to that moment; if earlier steps (a sync, a crash) already
took the world past it, the step runs at once. After the last step the world settles and the
checkers run. :func:`dumps` writes a scenario back as a file (the conformance state machine
records its runs with it).

Verbs (fields in brackets are optional):

* device actions: ``put`` device key value [context instance], ``remove`` device key
  [context instance] (``instance``: which helper instance of the device writes, from 0),
  ``sync`` device [full], ``wipe`` device context (the app clears its model of the context and
  calls ``wipe_local_context_data``), ``add_context`` device context (an app update registers
  a context the device joined without);
* device life: ``join`` device [offset drift_ppm contexts instances share_contexts] (the fields of a
  ``[[devices]]`` entry), ``crash`` / ``restart`` / ``reinstall`` device;
* faults, each an on verb and its off verb (the table is :mod:`simulator.faults`; the off verb
  takes the device, if any, and nothing else):

  - a device's network: ``partition`` / ``heal`` device (requests vanish), ``cut_answers`` /
    ``restore_answers`` device (answers vanish), ``disconnect`` / ``reconnect`` device
    (requests fail at once), ``lossy`` device [requests answers] / ``lossless`` device
    (probabilities of losing each request and each answer; one must be above 0),
    ``slow_link`` device low high / ``fast_link`` device (each leg of a request takes
    uniformly ``low``..``high`` seconds; beyond the client's 30 s timeout a request may still
    apply later; ``fast_link``: back to the world's latency);
  - the vault: ``expire_token`` / ``renew_token`` device (401 to that device), ``freeze`` /
    ``unfreeze`` (writes get 403), ``take_down`` / ``bring_up`` (every request gets 503),
    ``server_errors`` [before after] / ``stop_server_errors`` (probabilities of a 500 before
    applying and after applying a write; one must be above 0), ``upsert_race`` seconds /
    ``stop_upsert_race`` (an upsert checks, then inserts ``seconds`` later), ``slow_vault``
    seconds / ``fast_vault`` (every request takes ``seconds`` more);

  a strength of 0 turns nothing on, and is refused with the off verb's name;
* clocks and apps: ``jump_clock`` device seconds (device ``"vault"`` steps the vault's clock),
  ``behave`` device mode [context refusals probability delay] (modes of
  :class:`simulator.world.app.Behaviour`);
* time and trace: ``advance`` seconds, ``note`` text, ``checkpoint`` (heal everything, sync
  incrementally until quiet, run the end checks now: see
  :func:`simulator.scenarios.incremental_checkpoint`), ``settle`` (the world's settle phase
  now: heal everything, restart crashed devices, sync incrementally then fully until quiet,
  run the end checks; steps may follow);
* expectations: ``expect`` device [completed callbacks same_as clause]: the device's last
  ``sync`` step completed (or not), its apps received exactly ``callbacks`` callbacks during
  it, its app models equal device ``same_as``'s in every context; a miss is a finding naming
  ``clause`` (default ``SYNC-1``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from brh import InvalidArgumentError, RetryPolicy
from brh.options import SyncOptions
from brh.validation import check_context_name, check_key
from simulator.faults import FAULTS, Fault, did_you_mean
from simulator.impl import Factory
from simulator.invariants import StepChecks
from simulator.scenarios import (
    WEAKNESSES,
    incremental_checkpoint,
    join_with_contexts,
)
from simulator.stepping import Stepper
from simulator.world import Outcome, ScenarioError, World
from simulator.world.app import MODES
from simulator.world.trace import Trace

__all__ = [
    "VERBS",
    "DeviceSpec",
    "ScenarioFileError",
    "ScenarioRun",
    "ScenarioSpec",
    "Step",
    "dumps",
    "load_file",
    "loads",
    "run_file",
]


class ScenarioFileError(ValueError):
    """A scenario file is wrong; the message names the file, the step and the field.

    ``path``: the file; ``step``: the 1-based step number (None outside ``[[steps]]``);
    ``field``: the offending field (None when the whole step or file is wrong); ``problem``:
    what is wrong with it.
    """

    def __init__(
        self,
        path: str,
        problem: str,
        *,
        step: int | None = None,
        verb: str | None = None,
        field: str | None = None,
        where: str | None = None,
    ) -> None:
        parts = [path]
        if where is not None:
            parts.append(where)
        if step is not None:
            parts.append(f"step {step}" + (f" ({verb})" if verb else ""))
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(": ".join([*parts, problem]))
        self.path = path
        self.step = step
        self.field = field
        self.problem = problem


# -- field kinds ----------------------------------------------------------------------------

Check = Callable[[Any], Any]
"""Validates one field's value and returns it (possibly converted); raises ValueError."""


def _number(value: Any, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be <= {maximum:g}, got {value!r}")
    return float(value)


def _seconds(value: Any) -> float:
    return _number(value, minimum=0)


def _signed_seconds(value: Any) -> float:
    return _number(value)


def _probability(value: Any) -> float:
    return _number(value, minimum=0, maximum=1)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be an integer >= 0, got {value!r}")
    return value


def _instances(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"must be an integer >= 1 (helper instances sharing the device's store), got {value!r}"
        )
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _key(value: Any) -> str:
    try:
        check_key(value)
    except InvalidArgumentError as exc:
        raise ValueError(exc.problem) from None
    return str(value)


def _mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}, got {value!r}")
    return str(value)


def _json(value: Any, path: str = "") -> Any:
    """TOML values that are JSON (no dates, no NaN or infinity), as plain Python."""
    if isinstance(value, dict):
        return {k: _json(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path or 'the value'} is {value!r}, which JSON cannot hold")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(
        f"{path or 'the value'} is a TOML {type(value).__name__}, which is not JSON "
        "(write dates as strings)"
    )


def _contexts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list of context names, got {value!r}")
    names: list[str] = []
    for item in value:
        try:
            check_context_name(item)
        except InvalidArgumentError as exc:
            raise ValueError(f"{item!r}: {exc.problem}") from None
        if item in names:
            raise ValueError(f"{item!r} is listed twice")
        names.append(item)
    return tuple(names)


def _weaknesses(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or any(w not in WEAKNESSES for w in items):
        raise ValueError(f"must be an id W1..W14 or a list of them, got {value!r}")
    return tuple(items)


def _clauses(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ValueError(f"must be a list of SPEC clause ids, got {value!r}")
    return tuple(value)


def _clause(value: Any) -> str:
    if not isinstance(value, str) or not _CLAUSE.match(value):
        raise ValueError(f"must be a SPEC clause id like 'SYNC-1', got {value!r}")
    return value


_CLAUSE = re.compile(r"^[A-Z]+-[0-9]+$")


# -- verbs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One validated step: its number (1-based), verb, time (None: right away) and fields."""

    number: int
    verb: str
    at: float | None
    fields: Mapping[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def name(self) -> str:
        """How errors name the step: ``step 3 (put)``."""
        return f"step {self.number} ({self.verb})"


Action = Callable[[World, Step], Awaitable[None]]


@dataclass(frozen=True)
class Verb:
    """What a verb needs and what it does. ``device`` says how the step's device must be:
    ``"running"``, ``"crashed"``, ``"any"`` (existing), ``"new"`` (joins), ``"clock"`` (a
    device or ``"vault"``) or None (no device field)."""

    action: Action
    required: Mapping[str, Check] = field(default_factory=dict)
    optional: Mapping[str, Check] = field(default_factory=dict)
    device: str | None = "any"


async def _put(world: World, step: Step) -> None:
    await world.device(step.fields["device"]).put(
        step.fields["key"],
        step.fields["value"],
        context=step.get("context"),
        instance=step.get("instance"),
    )


async def _remove(world: World, step: Step) -> None:
    await world.device(step.fields["device"]).remove(
        step.fields["key"], context=step.get("context"), instance=step.get("instance")
    )


async def _sync(world: World, step: Step) -> None:
    await world.device(step.fields["device"]).sync(full=step.get("full", False))


async def _wipe(world: World, step: Step) -> None:
    device = world.device(step.fields["device"])
    context = step.fields["context"]
    world.note(f"{device.name}'s app resets context {context!r} and wipes the helper's copy")
    await world.wipe(device.name, context)


async def _add_context(world: World, step: Step) -> None:
    world.note(f"{step.fields['device']} registers context {step.fields['context']!r}")
    world.device(step.fields["device"]).add_context(step.fields["context"])


async def _join(world: World, step: Step) -> None:
    _join_device(world, DeviceSpec.from_step(step))


def _async_device_verb(method: str) -> Action:
    async def act(world: World, step: Step) -> None:
        await getattr(world, method)(step.fields["device"])

    return act


def _fault_verb(verb: str, fault: Fault) -> Action:
    """The action of a fault's on or off verb: the World method of the same name, given the
    step's device (for a device's fault) and the strength fields as keyword arguments."""

    async def act(world: World, step: Step) -> None:
        target = [step.fields["device"]] if fault.per_device else []
        arguments = {k: v for k, v in step.fields.items() if k != "device"}
        if verb == "slow_link":  # the World takes the range as one argument
            arguments = {"latency": (arguments.pop("low"), arguments.pop("high"))}
        getattr(world, verb)(*target, **arguments)

    return act


async def _jump_clock(world: World, step: Step) -> None:
    world.jump_clock(step.fields["device"], step.fields["seconds"])


async def _behave(world: World, step: Step) -> None:
    behaviour = {k: v for k, v in step.fields.items() if k not in ("device", "context")}
    world.behave(step.fields["device"], step.get("context"), **behaviour)


async def _advance(world: World, step: Step) -> None:
    await world.advance(step.fields["seconds"])


async def _note(world: World, step: Step) -> None:
    world.note(step.fields["text"])


async def _checkpoint(world: World, step: Step) -> None:
    await incremental_checkpoint(world)


async def _settle(world: World, step: Step) -> None:
    world.note("settle: heal everything, restart crashed devices, sync until quiet, check")
    await world.settle()


async def _expect(world: World, step: Step) -> None:
    device = world.device(step.fields["device"])
    clause = step.get("clause", "SYNC-1")

    def miss(message: str, **where: str | None) -> None:
        world.checker.fail("expect", clause, f"step {step.number}: {message}", **where)

    last = device.last_sync
    if "completed" in step.fields or "callbacks" in step.fields:
        if last is None:
            miss("expected a sync step of this device before", device=device.name)
        else:
            if "completed" in step.fields and last.completed != step.fields["completed"]:
                done = "completed" if last.completed else "did not complete"
                miss(f"its last sync {done}", device=device.name)
            if "callbacks" in step.fields and last.callbacks != step.fields["callbacks"]:
                miss(
                    f"its last sync made {last.callbacks} callback(s), expected "
                    f"{step.fields['callbacks']}",
                    device=device.name,
                )
    if "same_as" in step.fields:
        other = world.device(step.fields["same_as"])
        for context in world.contexts:
            mine, theirs = device.apps.get(context), other.apps.get(context)
            if mine is None or theirs is None:
                continue
            skip = mine.declined | theirs.declined
            for key in sorted((set(mine.items) | set(theirs.items)) - skip):
                if mine.items.get(key, _MISSING) != theirs.items.get(key, _MISSING):
                    miss(
                        f"the app shows {_shown(mine.items.get(key, _MISSING))}, "
                        f"{other.name}'s app {_shown(theirs.items.get(key, _MISSING))}",
                        device=device.name,
                        context=context,
                        key=key,
                    )


_MISSING: Any = object()


def _shown(value: Any) -> str:
    return "nothing" if value is _MISSING else repr(value)


_DEVICE = {"device": _name}
_KEYED = {"device": _name, "key": _key}
_CONTEXT = {"context": _name}

_STRENGTHS: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    "lossy": ({}, {"requests": _probability, "answers": _probability}),
    "slow_link": ({"low": _seconds, "high": _seconds}, {}),
    "server_errors": ({}, {"before": _probability, "after": _probability}),
    "upsert_race": ({"seconds": _seconds}, {}),
    "slow_vault": ({"seconds": _seconds}, {}),
}
"""The fields of the faults whose on verb takes a strength: (required, optional)."""

_TURNS_NOTHING_ON = {"lossy", "server_errors", "upsert_race", "slow_vault"}
"""Faults whose on verb needs one strength field above 0 (the off verb says off)."""


def _fault_verbs() -> dict[str, Verb]:
    """The on and off verb of every fault of :data:`simulator.faults.FAULTS`."""
    verbs: dict[str, Verb] = {}
    for fault in FAULTS.values():
        device = _DEVICE if fault.per_device else {}
        where = "any" if fault.per_device else None
        required, optional = _STRENGTHS.get(fault.name, ({}, {}))
        verbs[fault.name] = Verb(
            _fault_verb(fault.name, fault), {**device, **required}, optional, device=where
        )
        verbs[fault.off] = Verb(_fault_verb(fault.off, fault), device, device=where)
    return verbs


VERBS: dict[str, Verb] = {
    "put": Verb(
        _put, {**_KEYED, "value": _json}, {**_CONTEXT, "instance": _count}, device="running"
    ),
    "remove": Verb(_remove, _KEYED, {**_CONTEXT, "instance": _count}, device="running"),
    "sync": Verb(_sync, _DEVICE, {"full": _flag}, device="running"),
    "wipe": Verb(_wipe, {**_DEVICE, **_CONTEXT}, device="running"),
    "add_context": Verb(_add_context, {**_DEVICE, **_CONTEXT}, device="running"),
    "join": Verb(
        _join,
        _DEVICE,
        {
            "offset": _signed_seconds,
            "drift_ppm": _signed_seconds,
            "contexts": _contexts,
            "instances": _instances,
            "share_contexts": _flag,
        },
        device="new",
    ),
    "crash": Verb(_async_device_verb("crash"), _DEVICE, device="running"),
    "restart": Verb(_async_device_verb("restart"), _DEVICE, device="crashed"),
    "reinstall": Verb(_async_device_verb("reinstall"), _DEVICE),
    **_fault_verbs(),
    "jump_clock": Verb(_jump_clock, {**_DEVICE, "seconds": _signed_seconds}, device="clock"),
    "behave": Verb(
        _behave,
        {**_DEVICE, "mode": _mode},
        {**_CONTEXT, "refusals": _count, "probability": _probability, "delay": _seconds},
    ),
    "advance": Verb(_advance, {"seconds": _seconds}, device=None),
    "note": Verb(_note, {"text": _text}, device=None),
    "checkpoint": Verb(_checkpoint, device=None),
    "settle": Verb(_settle, device=None),
    "expect": Verb(
        _expect,
        _DEVICE,
        {"completed": _flag, "callbacks": _count, "same_as": _name, "clause": _clause},
    ),
}
"""Every verb a step may use, with its fields."""


# -- the spec -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSpec:
    """A device: present from the start (``[[devices]]``) or joining in a ``join`` step."""

    name: str
    offset: float = 0.0
    drift_ppm: float = 0.0
    contexts: tuple[str, ...] | None = None
    """The contexts it registers at first (None: all of the world's)."""
    instances: int = 1
    """Helper instances sharing the device's local store (``world.add_device(name,
    instances=n)``): context number i, in registration order, goes to instance i mod n."""
    share_contexts: bool = False
    """Every instance registers and syncs every context (see
    :attr:`simulator.world.device.SimDevice.share_contexts`)."""

    @classmethod
    def from_step(cls, step: Step) -> DeviceSpec:
        return cls(
            name=step.fields["device"],
            offset=step.get("offset", 0.0),
            drift_ppm=step.get("drift_ppm", 0.0),
            contexts=step.get("contexts"),
            instances=step.get("instances", 1),
            share_contexts=step.get("share_contexts", False),
        )


def _join_device(world: World, spec: DeviceSpec) -> None:
    options = {
        "offset": spec.offset,
        "drift_ppm": spec.drift_ppm,
        "instances": spec.instances,
        "share_contexts": spec.share_contexts,
    }
    if spec.contexts is None or set(spec.contexts) == set(world.contexts):
        world.add_device(spec.name, **options)
        return
    join_with_contexts(world, spec.name, spec.contexts, **options)


@dataclass(frozen=True)
class ScenarioSpec:
    """A validated scenario file; :meth:`run` runs it, :meth:`__call__` is the scenario."""

    path: str
    name: str
    description: str = ""
    weaknesses: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ("notes",)
    options: Mapping[str, Any] = field(default_factory=dict)
    devices: tuple[DeviceSpec, ...] = ()
    steps: tuple[Step, ...] = ()
    check_each_step: bool = False
    """Check :mod:`simulator.invariants` after every step."""

    def world_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`World` (through :func:`simulate`)."""
        return {"contexts": self.contexts, "helper_options": dict(self.options)}

    @property
    def heading(self) -> str:
        """The note a run of this scenario starts its trace with."""
        return f"scenario {self.name} ({self.path}): {self.description}"

    async def __call__(self, world: World) -> None:
        """Run the steps in ``world`` (the scenario function :func:`simulate` takes), all in
        one coroutine. :meth:`run` runs each step on its own instead (as a recording does)."""
        world.note(self.heading)
        for device in self.devices:
            _join_device(world, device)
        checks = StepChecks(world) if self.check_each_step else None
        for step in self.steps:
            try:
                await _run_step(world, step, checks)
            except Exception as exc:
                raise world.step_failed(step.name, exc) from exc

    def run(
        self,
        seed: int,
        trace_path: Path | str | None = None,
        *,
        factory: Factory | None = None,
        workdir: Path | None = None,
    ) -> Outcome:
        """Build the world, run the steps one by one, settle, check, and report.

        ``factory`` (with ``workdir``, a directory for the device stores) runs another
        implementation than the reference (see :mod:`simulator.impl`). A step (or the settle
        phase) that raises stops the run: :class:`~simulator.world.ScenarioError` names it
        (``step 3 (put)``), with the time and the seed; the trace so far is written."""
        run = ScenarioRun(
            seed,
            contexts=self.contexts,
            options=self.options,
            devices=self.devices,
            check_each_step=self.check_each_step,
            trace_path=trace_path,
            factory=factory,
            workdir=workdir,
            heading=self.heading,
        )
        try:
            for step in self.steps:
                try:
                    run.step(step)
                except Exception as exc:
                    raise run.failed(step.name, exc) from exc
            try:
                return run.finish()
            except Exception as exc:
                raise run.failed("the settle phase", exc) from exc
        finally:
            run.close()


async def _run_step(world: World, step: Step, checks: StepChecks | None) -> None:
    if step.at is not None and step.at > world.now():
        await world.advance(step.at - world.now())
    await VERBS[step.verb].action(world, step)
    if checks is not None:
        checks.after(step)


class ScenarioRun:
    """A scenario's world on its own virtual-time loop, run one step at a time by a caller that
    is not async: :meth:`step` for each step, :meth:`finish` (settle, check, report) at the end,
    :meth:`close` always. :meth:`ScenarioSpec.run` and the conformance state machine both run
    this way, so a run recorded as a file (:func:`dumps`) replays step for step.
    """

    def __init__(
        self,
        seed: int,
        *,
        contexts: tuple[str, ...] = ("notes",),
        options: Mapping[str, Any] | None = None,
        devices: tuple[DeviceSpec, ...] = (),
        check_each_step: bool = False,
        trace_path: Path | str | None = None,
        factory: Factory | None = None,
        workdir: Path | None = None,
        heading: str | None = None,
    ) -> None:
        self.seed = seed
        self.stepper = Stepper()
        self.steps_run = 0
        try:
            self.world: World = self.stepper.run(
                self._build(contexts, options, devices, trace_path, factory, workdir, heading)
            )
        except BaseException:
            self.stepper.close()
            raise
        self.checks = StepChecks(self.world) if check_each_step else None

    async def _build(
        self,
        contexts: tuple[str, ...],
        options: Mapping[str, Any] | None,
        devices: tuple[DeviceSpec, ...],
        trace_path: Path | str | None,
        factory: Factory | None,
        workdir: Path | None,
        heading: str | None,
    ) -> World:
        world = World(
            self.seed,
            trace=Trace(trace_path),
            contexts=contexts,
            helper_options=dict(options or {}),
            factory=factory,
            workdir=workdir,
        )
        if heading is not None:
            world.note(heading)
        for device in devices:
            _join_device(world, device)
        return world

    def step(self, step: Step) -> None:
        """Run one step (advancing to its ``at`` first), then the step checks if enabled."""
        self.steps_run += 1
        self.stepper.run(_run_step(self.world, step, self.checks))

    def finish(self) -> Outcome:
        """Settle the world, run the end checks and report (the run's end)."""
        return self.stepper.run(self._finish())

    def failed(self, step: str, error: BaseException) -> ScenarioError:
        """The :class:`~simulator.world.ScenarioError` for ``step`` (``"step 3 (put)"``)
        having raised ``error``, noted in the trace (as :meth:`World.step_failed` does).
        :meth:`step` itself lets the exception through unchanged, for callers such as the
        conformance state machine that report it themselves."""

        async def noted() -> ScenarioError:
            return self.world.step_failed(step, error)

        try:
            return self.stepper.run(noted())
        except Exception:  # the loop cannot run any more: no time, no note
            return ScenarioError(step, error, at=None, seed=self.seed)

    async def _finish(self) -> Outcome:
        findings = await self.world.settle()
        return Outcome(
            seed=self.seed,
            findings=list(findings),
            simulated_seconds=self.world.now(),
            requests=self.world.requests,
            events=dict(self.world.trace.counts),
        )

    def close(self) -> None:
        """Stop every helper, close the trace and the loop. Closing twice is harmless."""
        if self.stepper.closed:
            return
        try:
            self.stepper.run(self.world.close())
        finally:
            self.stepper.close()


_TOP = {
    "name",
    "description",
    "weakness",
    "clauses",
    "contexts",
    "check_each_step",
    "options",
    "devices",
    "steps",
}
_DEVICE_FIELDS = {"name", "offset", "drift_ppm", "contexts", "instances", "share_contexts"}
_OPTION_NAMES = {f.name for f in fields(SyncOptions)}
_NULLABLE_OPTIONS = {"tombstone_retention", "full_sync_interval"}
_RETRY_FIELDS = {f.name for f in fields(RetryPolicy)}


def _misplaced(name: str) -> str:
    """A hint for a top-level field that TOML put inside the table above it."""
    if name in _TOP:
        return (
            f" ('{name}' is a top-level field: in TOML it must come before the first table "
            "header, or it belongs to that table)"
        )
    return ""


@dataclass
class _DeviceState:
    running: bool
    contexts: set[str]
    declared: str
    """Where it was declared (for the end-of-file check)."""
    instances: int = 1
    share_contexts: bool = False


class _Parser:
    """Validates a parsed TOML document into a :class:`ScenarioSpec`."""

    def __init__(self, path: str, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def fail(self, problem: str, **where: Any) -> ScenarioFileError:
        return ScenarioFileError(self.path, problem, **where)

    def parse(self) -> ScenarioSpec:
        data = self.data
        unknown = sorted(set(data) - _TOP)
        if unknown:
            raise self.fail(
                f"unknown top-level field; known: {', '.join(sorted(_TOP))}", field=unknown[0]
            )
        name = self.top("name", _name, required=True)
        description = self.top("description", _text, default="")
        weaknesses = self.top("weakness", _weaknesses, default=())
        clauses = self.top("clauses", _clauses, default=())
        contexts = self.top("contexts", _contexts, default=("notes",))
        check_each_step = self.top("check_each_step", _flag, default=False)
        options = self.options(data.get("options", {}))
        devices = self.devices(data.get("devices", []), contexts)
        states = {
            d.name: _DeviceState(
                True,
                set(d.contexts or contexts),
                f"devices[{i}]",
                d.instances,
                d.share_contexts,
            )
            for i, d in enumerate(devices, 1)
        }
        steps = self.steps(data.get("steps", []), contexts, states)
        for device_name, state in states.items():
            missing = [c for c in contexts if c not in state.contexts]
            if missing:
                raise self.fail(
                    f"device {device_name!r} never registers context(s) {missing}: add an "
                    "'add_context' step (the end checks look at every context on every device)",
                    where=state.declared,
                    field="contexts",
                )
        return ScenarioSpec(
            path=self.path,
            name=name,
            description=description,
            weaknesses=weaknesses,
            clauses=clauses,
            contexts=contexts,
            options=options,
            devices=devices,
            steps=steps,
            check_each_step=check_each_step,
        )

    def top(self, name: str, check: Check, *, required: bool = False, default: Any = None) -> Any:
        if name not in self.data:
            if required:
                raise self.fail("is required", field=name)
            return default
        try:
            return check(self.data[name])
        except ValueError as exc:
            raise self.fail(str(exc), field=name) from None

    def options(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail("must be a table of helper options", field="options")
        options: dict[str, Any] = {}
        for name, value in raw.items():
            where = f"options.{name}"
            if name == "retry":
                options["retry"] = self.retry(value)
                continue
            if name not in _OPTION_NAMES:
                known = ", ".join(sorted(_OPTION_NAMES | {"retry"}))
                raise self.fail(
                    f"unknown helper option; known: {known}{_misplaced(name)}", field=where
                )
            if value == "none" and name in _NULLABLE_OPTIONS:
                value = None
            options[name] = value
        try:
            SyncOptions(**{k: v for k, v in options.items() if k != "retry"})
        except InvalidArgumentError as exc:
            raise self.fail(exc.problem, field=f"options.{exc.argument}") from None
        except TypeError as exc:
            raise self.fail(str(exc), field="options") from None
        return options

    def retry(self, raw: Any) -> RetryPolicy:
        if not isinstance(raw, dict):
            raise self.fail(
                "must be a table (initial_delay, max_delay, ...)", field="options.retry"
            )
        unknown = sorted(set(raw) - _RETRY_FIELDS)
        if unknown:
            known = ", ".join(sorted(_RETRY_FIELDS))
            raise self.fail(f"unknown field; known: {known}", field=f"options.retry.{unknown[0]}")
        for name, value in raw.items():
            try:
                _seconds(value)
            except ValueError as exc:
                raise self.fail(str(exc), field=f"options.retry.{name}") from None
        try:
            return RetryPolicy(**raw)
        except InvalidArgumentError as exc:
            raise self.fail(exc.problem, field=f"options.retry.{exc.argument}") from None

    def devices(self, raw: Any, contexts: tuple[str, ...]) -> tuple[DeviceSpec, ...]:
        if not isinstance(raw, list):
            raise self.fail("must be an array of tables ([[devices]])", field="devices")
        specs: list[DeviceSpec] = []
        for i, item in enumerate(raw, 1):
            where = f"devices[{i}]"
            if not isinstance(item, dict):
                raise self.fail("must be a table", where=where)
            unknown = sorted(set(item) - _DEVICE_FIELDS)
            if unknown:
                known = ", ".join(sorted(_DEVICE_FIELDS))
                raise self.fail(
                    f"unknown field; known: {known}{_misplaced(unknown[0])}",
                    where=where,
                    field=unknown[0],
                )
            checks: dict[str, Check] = {
                "name": _name,
                "offset": _signed_seconds,
                "drift_ppm": _signed_seconds,
                "contexts": _contexts,
                "instances": _instances,
                "share_contexts": _flag,
            }
            values: dict[str, Any] = {}
            for name, check in checks.items():
                if name in item:
                    try:
                        values[name] = check(item[name])
                    except ValueError as exc:
                        raise self.fail(str(exc), where=where, field=name) from None
            if "name" not in values:
                raise self.fail("is required", where=where, field="name")
            if values["name"] == "vault":
                raise self.fail("'vault' names the vault's clock", where=where, field="name")
            if any(s.name == values["name"] for s in specs):
                raise self.fail(
                    f"a device named {values['name']!r} is declared twice",
                    where=where,
                    field="name",
                )
            self.known_contexts(values.get("contexts", ()), contexts, where=where)
            specs.append(DeviceSpec(**values))
        return tuple(specs)

    def known_contexts(
        self, wanted: tuple[str, ...], contexts: tuple[str, ...], **where: Any
    ) -> None:
        unknown = [c for c in wanted if c not in contexts]
        if unknown:
            raise self.fail(
                f"{unknown} are not contexts of this scenario ({list(contexts)})",
                field="contexts",
                **where,
            )

    def steps(
        self, raw: Any, contexts: tuple[str, ...], states: dict[str, _DeviceState]
    ) -> tuple[Step, ...]:
        if not isinstance(raw, list):
            raise self.fail("must be an array of tables ([[steps]])", field="steps")
        steps: list[Step] = []
        last_at = 0.0
        for number, item in enumerate(raw, 1):
            if not isinstance(item, dict):
                raise self.fail("must be a table", step=number)
            step = self.step(number, item, contexts, states)
            if step.at is not None:
                if step.at < last_at:
                    raise self.fail(
                        f"goes backwards: {step.at:g} s is before {last_at:g} s, the time of "
                        "an earlier step",
                        step=number,
                        verb=step.verb,
                        field="at",
                    )
                last_at = step.at
            steps.append(step)
        return tuple(steps)

    def step(
        self,
        number: int,
        item: dict[str, Any],
        contexts: tuple[str, ...],
        states: dict[str, _DeviceState],
    ) -> Step:
        if "do" not in item:
            raise self.fail("is required (the verb)", step=number, field="do")
        verb_name = item["do"]
        if not isinstance(verb_name, str) or verb_name not in VERBS:
            raise self.fail(
                f"unknown verb {verb_name!r}; {did_you_mean(verb_name, VERBS)}"
                f"known: {', '.join(sorted(VERBS))}",
                step=number,
                field="do",
            )
        verb = VERBS[verb_name]
        where = {"step": number, "verb": verb_name}
        allowed = {"at", "do", *verb.required, *verb.optional}
        unknown = sorted(set(item) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed))
            raise self.fail(
                f"unknown field for {verb_name!r}; known: {known}", **where, field=unknown[0]
            )
        at: float | None = None
        if "at" in item:
            try:
                at = _seconds(item["at"])
            except ValueError as exc:
                raise self.fail(str(exc), **where, field="at") from None
        values: dict[str, Any] = {}
        for name in verb.required:
            if name not in item:
                raise self.fail("is required", **where, field=name)
        for name, check in {**verb.required, **verb.optional}.items():
            if name in item:
                try:
                    values[name] = check(item[name])
                except ValueError as exc:
                    raise self.fail(str(exc), **where, field=name) from None
        if verb_name == "slow_link" and values["low"] > values["high"]:
            raise self.fail("must be >= low", **where, field="high")
        strengths = [name for name in (*verb.required, *verb.optional) if name != "device"]
        if verb_name in _TURNS_NOTHING_ON and not any(values.get(n) for n in strengths):
            off = FAULTS[verb_name].off
            raise self.fail(
                f"turns nothing on: give {' or '.join(strengths)} above 0 "
                f"(do = {off!r} turns the fault off)",
                **where,
                field=strengths[0],
            )
        if verb_name == "expect":
            if not {"completed", "callbacks", "same_as"} & set(values):
                raise self.fail(
                    "says nothing to expect: give completed, callbacks or same_as", **where
                )
            if "same_as" in values and values["same_as"] not in states:
                known = ", ".join(sorted(states)) or "none yet"
                hint = did_you_mean(values["same_as"], states)
                raise self.fail(
                    f"no device named {values['same_as']!r} at this point ({hint}devices: {known})",
                    **where,
                    field="same_as",
                )
        if verb_name in ("checkpoint", "settle"):
            for state in states.values():
                state.running = True  # both restart every crashed device
        self.check_device(verb, values, contexts, states, where)
        return Step(number, verb_name, at, values)

    def check_device(
        self,
        verb: Verb,
        values: dict[str, Any],
        contexts: tuple[str, ...],
        states: dict[str, _DeviceState],
        where: dict[str, Any],
    ) -> None:
        """Check the step's device and context against what earlier steps made of them."""
        if verb.device is None:
            return
        name = values["device"]
        step_verb = where["verb"]
        if verb.device == "new":
            if name in states or name == "vault":
                raise self.fail(f"a device named {name!r} exists already", **where, field="device")
            wanted = values.get("contexts", contexts)
            self.known_contexts(wanted, contexts, **where)
            states[name] = _DeviceState(
                True,
                set(wanted),
                f"step {where['step']}",
                values.get("instances", 1),
                values.get("share_contexts", False),
            )
            return
        if verb.device == "clock" and name == "vault":
            return
        state = states.get(name)
        if state is None:
            known = ", ".join(sorted(states)) or "none yet"
            hint = did_you_mean(name, [*states, *(["vault"] if verb.device == "clock" else [])])
            raise self.fail(
                f"no device named {name!r} at this point ({hint}devices: {known})",
                **where,
                field="device",
            )
        if verb.device == "running" and not state.running:
            raise self.fail(
                f"device {name!r} has crashed; restart it first", **where, field="device"
            )
        if verb.device == "crashed" and state.running:
            raise self.fail(f"device {name!r} is running; crash it first", **where, field="device")
        context = values.get("context")
        if step_verb == "add_context":
            if context not in contexts:
                raise self.fail(
                    f"{context!r} is not a context of this scenario ({list(contexts)})",
                    **where,
                    field="context",
                )
            if context in state.contexts:
                raise self.fail(
                    f"device {name!r} registers {context!r} already", **where, field="context"
                )
            state.contexts.add(context)
        elif context is not None and context not in state.contexts:
            raise self.fail(
                f"device {name!r} does not register context {context!r} "
                f"(it has {sorted(state.contexts)})",
                **where,
                field="context",
            )
        instance = values.get("instance")
        if instance is not None and not (state.share_contexts and instance < state.instances):
            raise self.fail(
                f"device {name!r} runs {state.instances} instance(s)"
                + ("" if state.share_contexts else " without share_contexts")
                + "; a write may name another instance only with share_contexts = true, "
                "numbered from 0",
                **where,
                field="instance",
            )
        if step_verb == "crash":
            state.running = False
        elif step_verb in ("restart", "reinstall"):
            state.running = True


def loads(text: str, path: str = "<string>") -> ScenarioSpec:
    """Parse and validate scenario TOML text; ``path`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(path, f"not valid TOML: {exc}") from None
    return _Parser(path, data).parse()


def load_file(path: Path | str) -> ScenarioSpec:
    """Read and validate a scenario file (see the module docstring for the format)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(str(path), f"cannot read the file: {exc}") from None
    return loads(text, str(path))


def run_file(
    path: Path | str,
    seed: int,
    trace_path: Path | str | None = None,
    *,
    factory: Factory | None = None,
    workdir: Path | None = None,
) -> Outcome:
    """Load, validate and run a scenario file with ``seed``; see :meth:`ScenarioSpec.run`."""
    return load_file(path).run(seed, trace_path, factory=factory, workdir=workdir)


# -- writing --------------------------------------------------------------------------------


def dumps(spec: ScenarioSpec) -> str:
    """``spec`` as scenario file text: :func:`loads` reads it back to the same scenario.

    Values must be what a file can hold (TOML has no null: a ``None`` helper option is written
    ``"none"``, a ``None`` inside a value is refused).
    """
    lines = [f"name = {_toml(spec.name)}"]
    if spec.description:
        lines.append(f"description = {_toml(spec.description)}")
    if spec.weaknesses:
        lines.append(f"weakness = {_toml(list(spec.weaknesses))}")
    if spec.clauses:
        lines.append(f"clauses = {_toml(list(spec.clauses))}")
    lines.append(f"contexts = {_toml(list(spec.contexts))}")
    if spec.check_each_step:
        lines.append("check_each_step = true")
    options = {k: v for k, v in spec.options.items() if k != "retry"}
    if options:
        lines += ["", "[options]"]
        for name, value in options.items():
            lines.append(f"{name} = {_toml('none' if value is None else value)}")
    retry = spec.options.get("retry")
    if isinstance(retry, RetryPolicy):
        lines += ["", "[options.retry]"]
        for f in fields(RetryPolicy):
            lines.append(f"{f.name} = {_toml(getattr(retry, f.name))}")
    for device in spec.devices:
        lines += ["", "[[devices]]", f"name = {_toml(device.name)}"]
        if device.offset:
            lines.append(f"offset = {_toml(device.offset)}")
        if device.drift_ppm:
            lines.append(f"drift_ppm = {_toml(device.drift_ppm)}")
        if device.contexts is not None:
            lines.append(f"contexts = {_toml(list(device.contexts))}")
        if device.instances != 1:
            lines.append(f"instances = {_toml(device.instances)}")
        if device.share_contexts:
            lines.append("share_contexts = true")
    for step in spec.steps:
        lines += ["", "[[steps]]"]
        if step.at is not None:
            lines.append(f"at = {_toml(step.at)}")
        lines.append(f"do = {_toml(step.verb)}")
        for name, value in step.fields.items():
            lines.append(f"{_toml_key(name)} = {_toml(value)}")
    return "\n".join(lines) + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml(value: Any) -> str:
    """One TOML value (strings, numbers, booleans, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"dumps: {value!r} cannot be written in a scenario file")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml(v)}" for k, v in value.items())
        return "{" + items + "}" if items else "{}"
    raise ValueError(f"dumps: {value!r} cannot be written in a scenario file (TOML has no null)")
