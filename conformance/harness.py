"""What a conformance test runs in: a simulated world on virtual time, on one implementation.

A test receives a :class:`Sim` (the ``brh_sim`` fixture) and hands it a scenario, an async function
of a :class:`simulator.world.World`; the scenario drives devices and faults and asserts what it
expects. Everything is deterministic for a given seed: the same seed, implementation and code
replay the same run. When a run fails, :class:`Sim` knows the seed and the command that replays
it (the plugin prints both and puts them in the report).

A test driven from synchronous code (a Hypothesis state machine's rules) steps a world instead:
:meth:`Sim.stepped` builds a :class:`simulator.scenarios.files.ScenarioRun` on the implementation
under test, whose :meth:`~simulator.scenarios.files.ScenarioRun.step` runs one scenario-file step
on the world's virtual-time loop and returns with the loop stopped.
"""

from __future__ import annotations

import importlib
import shlex
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from brh.vault import Vault
from simulator.impl import Factory
from simulator.live import LiveVault, UnsupportedFault
from simulator.scenarios.files import DeviceSpec, ScenarioRun
from simulator.timeloop import run
from simulator.world import START, World
from simulator.world.checkers import Finding
from simulator.world.trace import Trace

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

__all__ = ["REFERENCE", "Endpoint", "Sim", "Target"]

T = TypeVar("T")

REFERENCE = "reference"
"""The name of the in-process reference helper (the default target)."""

BEYOND_CORE = frozenset({"RETRY-1", "COST-1", "SYNC-4"})
"""Clauses of checker findings that a ``core`` test does not fail on unless it names them:
retrying by itself, the cost of idle passes and incremental pulls that miss nothing go beyond
what the design document promises (the original helper lacks them: W6, W9, W1), so the
``robust`` tests and the state machine judge them, each of which settles a world too."""


@dataclass(frozen=True)
class Target:
    """The implementation under test and how a user selected it."""

    name: str
    """``reference``, a ``package.module:factory`` name, or the ``--brh-cmd`` command."""
    factory: Factory | None
    """None: the reference helper in process (with the simulator's internal checkers too)."""
    option: str = ""
    """The pytest option that selects it again (for replay commands)."""


@dataclass(frozen=True)
class Endpoint:
    """A live Hive vault to run the tests against instead of the fake one."""

    url: str
    token: str

    def connect(self) -> Vault:
        """A ``brh.hive.HiveVault`` on this endpoint (build it inside the run's event loop)."""
        hive = importlib.import_module("brh.hive")
        vault: Vault = hive.HiveVault(self.url, self.token)
        return vault


@dataclass
class Sim:
    """Runs a test's scenarios on :attr:`target` with :attr:`seed`, in :attr:`workdir`; on
    the fake vault, or on :attr:`endpoint` (a live vault) when given."""

    target: Target
    seed: int
    workdir: Path
    nodeid: str = ""
    replay_base: str = "pytest"
    endpoint: Endpoint | None = None
    profile: str = "fast"
    """The Hypothesis profile of property-based tests (``--brh-profile``)."""
    examples: int | None = None
    """Examples of each property-based test, if not the profile's (``--brh-examples``)."""
    steps: int | None = None
    """Steps of each state machine example at most, if not the profile's (``--brh-steps``)."""
    example_db: ExampleDatabase | None = None
    """Where property-based tests save failing examples and replay them from first
    (``--brh-example-db``, see :mod:`conformance.exampledb`); None: nowhere."""
    example_key: bytes = b""
    """This test's key in :attr:`example_db` (:func:`conformance.exampledb.example_key`)."""
    runs: int = field(default=0)
    traces: list[Path] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """The checkers' findings that failed the last run (``[CLAUSE] checker ...`` lines)."""
    failed_clauses: tuple[str, ...] = ()
    """The clauses of those findings (what the report calls failing, rather than every
    clause the test names)."""
    level: str = ""
    """The test's level (``core`` or ``robust``; "" outside the suite)."""
    clauses: tuple[str, ...] = ()
    """The clauses the test names."""
    passed_over: list[str] = field(default_factory=list)
    """Findings of the last run that did not fail it (see :data:`BEYOND_CORE`)."""

    def judged(self, findings: list[Finding]) -> list[Finding]:
        """The findings that fail this test: all of them, but in a ``core`` test those of the
        :data:`BEYOND_CORE` clauses it does not name."""
        if self.level != "core":
            return list(findings)
        return [f for f in findings if f.clause not in BEYOND_CORE or f.clause in self.clauses]

    def run(
        self,
        scenario: Callable[[World], Awaitable[T]],
        *,
        settle: bool = True,
        contexts: tuple[str, ...] = ("notes",),
        **world_options: Any,
    ) -> T:
        """Build a world, run ``scenario`` in it, then (with ``settle``) heal every fault, sync
        until quiet and fail the test on any checker finding. Returns the scenario's result.

        The world's trace goes to ``workdir/trace-N.jsonl`` (kept for a failing test). On a
        live vault the run's collections get a namespace of their own (deleted before and
        after), and a scenario that needs a fault only the fake vault can take is skipped. An
        assertion failing in the scenario is traced as a ``check`` (clause ``TEST``, its
        message), so the trace's timeline report shows the failure.
        """
        self.runs += 1
        trace_path = self.workdir / f"trace-{self.runs}.jsonl"
        self.traces.append(trace_path)
        stores = self.workdir / f"stores-{self.runs}"
        stores.mkdir(parents=True, exist_ok=True)

        async def main() -> T:
            live: LiveVault | None = None
            if self.endpoint is not None:
                live = LiveVault(self.endpoint.connect(), self._namespace())
                live.created.update(live.collection_name(f"backup_{c}") for c in contexts)
                await live.drop()  # what a crashed earlier run may have left
            world = World(
                self.seed,
                trace=Trace(trace_path),
                contexts=contexts,
                factory=self.target.factory,
                workdir=stores,
                vault=live,
                **world_options,
            )
            try:
                try:
                    result = await scenario(world)
                except AssertionError as exc:  # in the trace too, so its report shows it
                    test = self.nodeid.rsplit("::", 1)[-1] or "the test"
                    message = str(exc).strip() or "assertion failed"
                    world.trace.emit(
                        "check", checker=f"assertion in {test}", clause="TEST", message=message
                    )
                    raise
                if settle:
                    found = await world.settle()
                    findings = self.judged(found)
                    self.passed_over = [str(f) for f in found if f not in findings]
                    if findings:
                        self.findings = [str(f) for f in findings]
                        self.failed_clauses = tuple(sorted({f.clause for f in findings}))
                        lines = "\n  ".join(self.findings)
                        raise AssertionError(f"the simulator's checkers found:\n  {lines}")
                return result
            finally:
                await world.close()
                if live is not None:
                    await live.drop()
                    closer = getattr(live.inner, "aclose", None)
                    if closer is not None:
                        await closer()

        try:
            return run(main(), start=START)
        except UnsupportedFault as exc:
            pytest.skip(f"needs the fake vault, not a live one: {exc}")

    def _namespace(self) -> str:
        """Deterministic per test, seed and run (runs sharing a vault at once must differ in
        test or seed)."""
        return f"t{zlib.crc32(self.nodeid.encode()):08x}_{self.seed & 0xFFFFFFFF}_{self.runs}"

    def stepped(
        self,
        seed: int,
        *,
        devices: tuple[DeviceSpec, ...],
        contexts: tuple[str, ...] = ("notes",),
        check_each_step: bool = True,
        heading: str | None = None,
    ) -> ScenarioRun:
        """A world on the implementation under test, run step by step from synchronous code
        (see :class:`ScenarioRun`; the caller closes it). Its device stores go to
        ``workdir/stores-N``; it writes no trace (replay its recording to get one)."""
        self.runs += 1
        stores = self.workdir / f"stores-{self.runs}"
        stores.mkdir(parents=True, exist_ok=True)
        return ScenarioRun(
            seed,
            contexts=contexts,
            devices=devices,
            check_each_step=check_each_step,
            factory=self.target.factory,
            workdir=stores,
            heading=heading,
        )

    @property
    def brh_sim_impl(self) -> str | None:
        """The ``brh-sim --impl`` value that runs this target (None: the reference, or a
        ``--brh-cmd`` process, which brh-sim cannot start)."""
        if self.target.factory is not None and self.target.option.startswith("--brh-impl="):
            return self.target.name
        return None

    def replay_command(self) -> str:
        """The exact command that replays this test on this implementation and seed."""
        parts = [self.replay_base, self.nodeid, f"--brh-seed={self.seed}"]
        if self.profile != "fast":
            parts.append(f"--brh-profile={self.profile}")
        if self.examples is not None:
            parts.append(f"--brh-examples={self.examples}")
        if self.steps is not None:
            parts.append(f"--brh-steps={self.steps}")
        command = shlex.join(parts)
        if self.target.option:
            command += " " + self.target.option
        if self.endpoint is not None:  # the token stays out of the command line and the report
            command += " " + shlex.join([f"--brh-vault-url={self.endpoint.url}"])
            command += "  (token: BRH_VAULT_TOKEN in the environment, or --brh-vault-token)"
        return command
