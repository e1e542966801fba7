"""Scenarios as TOML files: a declarative list of timed steps, checked before anything runs.

The format, with a full example and every verb, is described in ``docs/scenario-files.md``.
One module per part: :mod:`~simulator.scenarios.files.fields` (the kinds of value a field
holds), :mod:`~simulator.scenarios.files.verbs` (what each step's verb needs and does),
:mod:`~simulator.scenarios.files.parser` (a file validated into a :class:`ScenarioSpec`, or a
:class:`ScenarioFileError` naming the file, the step and the field),
:mod:`~simulator.scenarios.files.runner` (a world run one step at a time),
:mod:`~simulator.scenarios.files.writer` (a scenario written back as a file) and
:mod:`~simulator.scenarios.files.invariants` (the black-box checks of ``check_each_step``).
"""

from simulator.scenarios.files.parser import ScenarioFileError, load_file, loads, run_file
from simulator.scenarios.files.runner import ScenarioRun, ScenarioSpec
from simulator.scenarios.files.verbs import VERBS, DeviceSpec, Step
from simulator.scenarios.files.writer import dumps

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
