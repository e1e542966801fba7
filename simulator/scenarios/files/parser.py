"""Reading a scenario file: :func:`load_file` and :func:`loads` validate a TOML document into a
:class:`~simulator.scenarios.files.runner.ScenarioSpec`, :func:`run_file` runs it.

Any mistake (an unknown verb or field, a missing field, a time going backwards, a device that
does not exist or has crashed, a context it does not register) raises
:class:`ScenarioFileError` naming the file, the step and the field, before the world is even
built. The format is described in ``docs/scenario-files.md``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brh import InvalidArgumentError, RetryPolicy
from brh.options import SyncOptions
from simulator.faults import FAULTS, did_you_mean
from simulator.impl import Factory
from simulator.scenarios.files import fields
from simulator.scenarios.files.fields import Check
from simulator.scenarios.files.runner import ScenarioSpec
from simulator.scenarios.files.verbs import TURNS_NOTHING_ON, VERBS, DeviceSpec, Step, Verb
from simulator.world import Outcome
from simulator.world.crashpoints import CrashPoint

__all__ = ["ScenarioFileError", "load_file", "loads", "run_file"]


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
_OPTION_NAMES = {f.name for f in dataclasses.fields(SyncOptions)}
_NULLABLE_OPTIONS = {"tombstone_retention", "full_sync_interval"}
_RETRY_FIELDS = {f.name for f in dataclasses.fields(RetryPolicy)}


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
        name = self.top("name", fields.name, required=True)
        description = self.top("description", fields.text, default="")
        weaknesses = self.top("weakness", fields.weaknesses, default=())
        clauses = self.top("clauses", fields.clauses, default=())
        contexts = self.top("contexts", fields.contexts, default=("notes",))
        check_each_step = self.top("check_each_step", fields.flag, default=False)
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
                fields.seconds(value)
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
                "name": fields.name,
                "offset": fields.signed_seconds,
                "drift_ppm": fields.signed_seconds,
                "contexts": fields.contexts,
                "instances": fields.instances,
                "share_contexts": fields.flag,
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
                at = fields.seconds(item["at"])
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
        strengths = [
            name for name in (*verb.required, *verb.optional) if name not in ("device", "exact")
        ]
        if verb_name in TURNS_NOTHING_ON and not any(values.get(n) for n in strengths):
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
        if verb_name == "crash_in_sync":
            try:
                CrashPoint(
                    request=values.get("request"),
                    callback=values.get("callback"),
                    line=values.get("line"),
                    step=values.get("step"),
                    applied=values.get("applied", False),
                )
            except ValueError as exc:
                raise self.fail(str(exc).removeprefix("crash_at: "), **where) from None
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
        if step_verb in ("crash", "crash_in_sync"):
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
