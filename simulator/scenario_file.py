"""Scenarios as TOML files. The code lives in :mod:`simulator.scenarios.files` and the format is
described in ``docs/scenario-files.md``; this module keeps the import path the README and
earlier code use (``from simulator.scenario_file import run_file``)."""

from simulator.scenarios.files import (
    VERBS,
    DeviceSpec,
    ScenarioFileError,
    ScenarioRun,
    ScenarioSpec,
    Step,
    dumps,
    load_file,
    loads,
    run_file,
)

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
