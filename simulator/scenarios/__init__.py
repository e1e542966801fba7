"""The scenario library: named scenarios, each putting brh under one stress for the checkers to
judge, and scenario files.

:mod:`~simulator.scenarios.registry` registers scenarios and finds them by name;
:mod:`~simulator.scenarios.moves` holds the moves they share;
:mod:`~simulator.scenarios.weaknesses` shows the original helper's weaknesses W1-W14 and
:mod:`~simulator.scenarios.stories` everyday situations; :mod:`~simulator.scenarios.regressions`
keeps runs that once failed, as scenario files; :mod:`~simulator.scenarios.files` reads, runs and
writes scenario files (the format: ``docs/scenario-files.md``).

    outcome = run_named("w1-late-upload", seed=1)
    assert outcome.findings == []
"""

from simulator.scenarios.moves import incremental_checkpoint
from simulator.scenarios.registry import (
    WEAKNESSES,
    ScenarioInfo,
    all_scenarios,
    get,
    names,
    run_named,
    scenario,
)

# Importing these registers their scenarios, in the library's order (``brh-sim list``): the
# weaknesses, then everyday situations; the regression files follow when the registry is first
# read.
# isort: off
from simulator.scenarios import weaknesses  # noqa: F401
from simulator.scenarios import stories  # noqa: F401

# isort: on

__all__ = [
    "WEAKNESSES",
    "ScenarioInfo",
    "all_scenarios",
    "get",
    "incremental_checkpoint",
    "names",
    "run_named",
    "scenario",
]
