"""A simulated world: devices, a vault server, the network between them, one seed for all.

The world and what it is made of, one module each: :mod:`~simulator.world.world` (the
:class:`World`: devices, paired faults, clocks, the settle phase), :mod:`~simulator.world.device`
(a simulated device and its helper instances), :mod:`~simulator.world.app` (the app models and
their behaviours), :mod:`~simulator.world.link` (a device's network), :mod:`~simulator.world.server`
(the vault server in front of the fake vault), :mod:`~simulator.world.clocks` (skewed clocks),
:mod:`~simulator.world.checkers` (what must hold on every run),
:mod:`~simulator.world.settle` (the settle phase and the idle cost it measures),
:mod:`~simulator.world.trace` (the trace), :mod:`~simulator.world.outcome` (what a run ends
with) and
:mod:`~simulator.world.simulation` (a scenario run in a fresh world).

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

from simulator.world.outcome import Outcome, ScenarioError
from simulator.world.simulation import Scenario, scenario_step, simulate
from simulator.world.world import ABSENT, START, UnknownDeviceError, World

__all__ = [
    "ABSENT",
    "START",
    "Outcome",
    "Scenario",
    "ScenarioError",
    "UnknownDeviceError",
    "World",
    "scenario_step",
    "simulate",
]
