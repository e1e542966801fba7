"""Running a scenario in a fresh world: :func:`simulate`, and :func:`scenario_step`, which says
where in a Python scenario a step raised."""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from simulator.timeloop import run
from simulator.world.outcome import Outcome, ScenarioError
from simulator.world.trace import Trace
from simulator.world.world import START, World

__all__ = ["Scenario", "scenario_step", "simulate"]

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
