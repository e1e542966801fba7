"""Deterministic multi-device simulator for brh.

A folder for each of its parts: :mod:`simulator.world` (the world and what it is made of:
devices, app models, links, the vault server, clocks, checkers, the trace),
:mod:`simulator.scenarios` (the named scenarios and the scenario file format),
:mod:`simulator.report` (timeline reports drawn from traces) and :mod:`simulator.cli`
(``brh-sim``, the swarm exploration, the demo). Beneath them, at the top of the package:
:mod:`simulator.timeloop` (virtual time, with :mod:`simulator.timeloop_fast` for speed),
:mod:`simulator.stepping` (a world run a step at a time), :mod:`simulator.faults` (the fault
table), :mod:`simulator.impl` (which helper a device runs) and :mod:`simulator.live` (a real
vault in a simulated world). The README's Architecture section shows which imports which.
"""
