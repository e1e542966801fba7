"""Regression scenarios: runs that once failed, kept as scenario files and run by name.

Each ``*.toml`` file here (the format of ``docs/scenario-files.md``) is a run found outside
the team or by a deep search, with a comment saying what went wrong and what fixed it. Every
file is registered in the scenario library under its ``name`` (``brh-sim run
reinstall-same-device-id``), so the scenario tests run it for every seed they try, and a
factory can be pointed at it like any other scenario.
"""

from __future__ import annotations

from pathlib import Path

from simulator.scenarios import registry
from simulator.scenarios.files.parser import load_file

__all__ = ["FILES", "register"]

FILES = tuple(sorted(Path(__file__).parent.glob("*.toml")))
"""The regression files, by name."""


def register() -> None:
    """Register every file in :data:`FILES` as a named scenario (the library does, once)."""
    for path in FILES:
        spec = load_file(path)
        registry.scenario(
            spec.name,
            spec.description,
            weakness=spec.weaknesses,
            clauses=spec.clauses,
            contexts=spec.contexts,
            options=spec.options,
        )(spec)
