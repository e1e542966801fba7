"""The simulator's command line: ``brh-sim`` (:mod:`~simulator.cli.commands`: list, run, explore,
replay), the swarm exploration behind ``brh-sim explore`` (:mod:`~simulator.cli.explore`) and
the guided story of ``python -m simulator.demo`` (:mod:`~simulator.cli.demo`). It sits on top:
it imports the world, the scenarios and the report, and none of them imports it.

Importing this package is cheap: :func:`run` (the ``brh-sim`` entry point) loads the commands
itself, so a Ctrl-C while they load (about half a second) ends the program quietly with 130,
as one during a command does, instead of Python's traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.cli.commands import main

__all__ = ["main", "run"]


def run() -> None:
    """The ``brh-sim`` program (:func:`simulator.cli.commands.run`), loaded here so that a
    Ctrl-C during the loading leaves with 130 and no traceback."""
    try:
        from simulator.cli.commands import run as program
    except KeyboardInterrupt:
        print("brh-sim: interrupted while starting", file=sys.stderr)
        sys.exit(130)
    program()


def __getattr__(name: str) -> Any:
    if name == "main":
        from simulator.cli.commands import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
