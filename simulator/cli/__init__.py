"""The simulator's command line: ``brh-sim`` (:mod:`~simulator.cli.commands`: list, run, explore,
replay), the swarm exploration behind ``brh-sim explore`` (:mod:`~simulator.cli.explore`) and
the guided story of ``python -m simulator.demo`` (:mod:`~simulator.cli.demo`). It sits on top:
it imports the world, the scenarios and the report, and none of them imports it.
"""

from simulator.cli.commands import main, run

__all__ = ["main", "run"]
