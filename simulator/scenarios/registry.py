"""The scenario library's registry: each scenario puts brh under one stress, the checkers judge.

A scenario is an ``async def`` taking a :class:`~simulator.world.World`. It adds devices, makes
them write, and turns faults on and off; :func:`~simulator.world.simulate` then settles the world
(every fault healed, every device synced until quiet) and runs the checkers. Scenarios leave the
verdict to the checkers; their ``world.note(...)`` lines make the trace read like a story.

Each one is registered with :func:`scenario`, which records its name, a one-line description,
the weaknesses of the original helper it exercises (W1–W14, see
``shared/reference/original-helper.md``), the SPEC clauses at stake, and the world it needs
(sync contexts, helper options)::

    @scenario(
        "w1-late-upload",
        "an entry edited offline long before its upload still reaches every device",
        weakness="W1",
        clauses=("SYNC-4",),
        options={"full_sync_interval": None},
    )
    async def w1_late_upload(world: World) -> None: ...

    outcome = run_named("w1-late-upload", seed=1)
    assert outcome.findings == []

A few scenarios end with :func:`~simulator.scenarios.moves.incremental_checkpoint`, which runs
the end checks after incremental passes only, before the settle phase: the settle phase reports
a change that only its forced full pass delivered (SYNC-4), but the checkpoint names each key
and the convergence it broke, which is what W1 and W3 are about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from simulator.world import Outcome, Scenario, World, simulate

__all__ = ["WEAKNESSES", "ScenarioInfo", "all_scenarios", "get", "names", "run_named", "scenario"]

WEAKNESSES = tuple(f"W{i}" for i in range(1, 15))
"""The weaknesses of the original helper, as numbered in ``original-helper.md``."""


@dataclass(frozen=True)
class ScenarioInfo:
    """A registered scenario: what it is, what it stresses, and the world it needs."""

    name: str
    description: str
    function: Scenario
    weaknesses: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ("notes",)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def world_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`World` (through :func:`simulate`)."""
        return {"contexts": self.contexts, "helper_options": dict(self.options)}

    async def __call__(self, world: World) -> None:
        """Run the scenario in ``world``, starting the trace with its name and description."""
        world.note(f"scenario {self.name}: {self.description}")
        await self.function(world)

    def run(self, seed: int, trace_path: Path | str | None = None, **world_options: Any) -> Outcome:
        """Build the world this scenario needs, run it, settle, check, and report.

        ``world_options`` go to :class:`World` as well (e.g. ``factory`` and ``workdir``)."""
        return simulate(
            self, seed=seed, trace_path=trace_path, **self.world_options(), **world_options
        )


_REGISTRY: dict[str, ScenarioInfo] = {}


def scenario(
    name: str,
    description: str,
    *,
    weakness: str | tuple[str, ...] = (),
    clauses: tuple[str, ...] = (),
    contexts: tuple[str, ...] = ("notes",),
    options: Mapping[str, Any] | None = None,
) -> Callable[[Scenario], Scenario]:
    """Register the decorated ``async def scenario(world)`` under ``name``.

    ``weakness``: one weakness id (``"W1"``) or several; ``clauses``: SPEC clause ids;
    ``contexts``: the sync contexts of the world (every device gets them all); ``options``:
    helper options passed to every device (``World(helper_options=...)``).
    """
    weaknesses = (weakness,) if isinstance(weakness, str) else tuple(weakness)
    unknown = [w for w in weaknesses if w not in WEAKNESSES]
    if unknown:
        raise ValueError(f"scenario {name!r}: unknown weakness ids {unknown}")
    if not contexts:
        raise ValueError(f"scenario {name!r}: at least one context is needed")

    def register(function: Scenario) -> Scenario:
        if name in _REGISTRY:
            raise ValueError(f"a scenario named {name!r} is registered already")
        _REGISTRY[name] = ScenarioInfo(
            name=name,
            description=description,
            function=function,
            weaknesses=weaknesses,
            clauses=tuple(clauses),
            contexts=tuple(contexts),
            options=MappingProxyType(dict(options or {})),
        )
        return function

    return register


def _registry() -> dict[str, ScenarioInfo]:
    """Every scenario: the library's, then the regression files of
    :mod:`simulator.scenarios.regressions` (registered on first use: they are scenario files,
    whose reader imports this module)."""
    global _REGRESSIONS_LOADED
    if not _REGRESSIONS_LOADED:
        _REGRESSIONS_LOADED = True
        from simulator.scenarios import regressions

        regressions.register()
    return _REGISTRY


_REGRESSIONS_LOADED = False


def get(name: str) -> ScenarioInfo:
    """The scenario registered under ``name`` (KeyError listing the known names if none)."""
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"no scenario named {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    """Every registered scenario name, in registration order."""
    return list(_registry())


def all_scenarios() -> Iterator[ScenarioInfo]:
    """Every registered scenario, in registration order."""
    return iter(list(_registry().values()))


def run_named(
    name: str, seed: int, trace_path: Path | str | None = None, **world_options: Any
) -> Outcome:
    """Run the named scenario with ``seed`` in a world built to its needs; see :func:`simulate`."""
    return get(name).run(seed, trace_path, **world_options)
