"""Running a scenario file: :class:`ScenarioSpec` (a validated file) and :class:`ScenarioRun`,
which runs a world one step at a time (the format: ``docs/scenario-files.md``).

Steps run in order, each as its own run of the virtual-time loop (see
:mod:`simulator.stepping`: what a step leaves running goes on in the next one). Before a step
with ``at``, virtual time advances to that moment; if earlier steps (a sync, a crash) already
took the world past it, the step runs at once. After the last step the world settles and the
checkers run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.impl import Factory
from simulator.scenarios.files.invariants import StepChecks
from simulator.scenarios.files.verbs import VERBS, DeviceSpec, Step, join_device
from simulator.stepping import Stepper
from simulator.world import Outcome, ScenarioError, World
from simulator.world.trace import Trace

__all__ = ["ScenarioRun", "ScenarioSpec"]


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
    """Check :mod:`simulator.scenarios.files.invariants` after every step."""

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
            join_device(world, device)
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
            join_device(world, device)
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
