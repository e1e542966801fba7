"""The verbs of a scenario file's steps: what each needs (its fields, the state of its device)
and what it does to the world (the format: ``docs/scenario-files.md``).

:data:`VERBS` maps every verb to its :class:`Verb`. A fault's on and off verbs come from the
fault table (:mod:`simulator.faults`): they call the :class:`~simulator.world.World` method of
the same name. A device declared in ``[[devices]]`` or joining in a ``join`` step is a
:class:`DeviceSpec`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simulator.faults import FAULTS, Fault
from simulator.scenarios.files import fields
from simulator.scenarios.files.fields import Check
from simulator.scenarios.moves import incremental_checkpoint, join_with_contexts
from simulator.world import World

__all__ = ["TURNS_NOTHING_ON", "VERBS", "DeviceSpec", "Step", "Verb", "join_device"]


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
    join_device(world, DeviceSpec.from_step(step))


async def _crash_in_sync(world: World, step: Step) -> None:
    """The device syncs with a crash armed at a point of the pass (``world.crash_at``); if
    the pass never gets there, the device crashes when the pass ends: either way it is crashed
    after the step."""
    name = step.fields["device"]
    point = {k: v for k, v in step.fields.items() if k in ("request", "callback", "line", "step")}
    world.crash_at(name, applied=step.get("applied", False), **point)
    device = world.device(name)
    running = asyncio.ensure_future(device.sync())
    await asyncio.gather(running, return_exceptions=True)  # cut short by the crash, or not
    if device.running:
        world.note(f"{name}'s pass never reached the crash point: it crashes after the pass")
        await world.crash(name)


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


_DEVICE = {"device": fields.name}
_KEYED = {"device": fields.name, "key": fields.key}
_CONTEXT = {"context": fields.name}

_STRENGTHS: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    "lossy": ({}, {"requests": fields.probability, "answers": fields.probability}),
    "slow_link": ({"low": fields.seconds, "high": fields.seconds}, {}),
    "server_errors": ({}, {"before": fields.probability, "after": fields.probability}),
    "upsert_race": ({"seconds": fields.seconds}, {}),
    "slow_vault": ({"seconds": fields.seconds}, {}),
    "commit_lag": ({"seconds": fields.seconds}, {"exact": fields.flag}),
}
"""The fields of the faults whose on verb takes a strength: (required, optional)."""

TURNS_NOTHING_ON = {"lossy", "server_errors", "upsert_race", "slow_vault", "commit_lag"}
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
        _put,
        {**_KEYED, "value": fields.json_value},
        {**_CONTEXT, "instance": fields.count},
        device="running",
    ),
    "remove": Verb(_remove, _KEYED, {**_CONTEXT, "instance": fields.count}, device="running"),
    "sync": Verb(_sync, _DEVICE, {"full": fields.flag}, device="running"),
    "wipe": Verb(_wipe, {**_DEVICE, **_CONTEXT}, device="running"),
    "add_context": Verb(_add_context, {**_DEVICE, **_CONTEXT}, device="running"),
    "join": Verb(
        _join,
        _DEVICE,
        {
            "offset": fields.signed_seconds,
            "drift_ppm": fields.signed_seconds,
            "contexts": fields.contexts,
            "instances": fields.instances,
            "share_contexts": fields.flag,
        },
        device="new",
    ),
    "crash": Verb(_async_device_verb("crash"), _DEVICE, device="running"),
    "crash_in_sync": Verb(
        _crash_in_sync,
        _DEVICE,
        {
            "request": fields.positive_count,
            "callback": fields.positive_count,
            "line": fields.positive_count,
            "step": fields.positive_count,
            "applied": fields.flag,
        },
        device="running",
    ),
    "restart": Verb(_async_device_verb("restart"), _DEVICE, device="crashed"),
    "reinstall": Verb(_async_device_verb("reinstall"), _DEVICE),
    **_fault_verbs(),
    "jump_clock": Verb(_jump_clock, {**_DEVICE, "seconds": fields.signed_seconds}, device="clock"),
    "behave": Verb(
        _behave,
        {**_DEVICE, "mode": fields.mode},
        {
            **_CONTEXT,
            "refusals": fields.count,
            "probability": fields.probability,
            "delay": fields.seconds,
        },
    ),
    "advance": Verb(_advance, {"seconds": fields.seconds}, device=None),
    "note": Verb(_note, {"text": fields.text}, device=None),
    "checkpoint": Verb(_checkpoint, device=None),
    "settle": Verb(_settle, device=None),
    "expect": Verb(
        _expect,
        _DEVICE,
        {
            "completed": fields.flag,
            "callbacks": fields.count,
            "same_as": fields.name,
            "clause": fields.clause,
        },
    ),
}
"""Every verb a step may use, with its fields."""


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


def join_device(world: World, spec: DeviceSpec) -> None:
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
