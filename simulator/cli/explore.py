"""Swarm exploration: each seed picks its own mix of faults and app behaviours, runs a random
workload, settles, and is checked.

The switches a seed picks from (:data:`SWITCHES`) are the faults of :mod:`simulator.faults`, by
their names, and a few one-shot events and app behaviours; ``brh-sim explore --faults a,b``
runs every seed with exactly the switches named (``commit_lag`` is used only when named so).

Swarm testing (as in FoundationDB's BUGGIFY or TigerBeetle's VOPR) enables a different random
subset of fault kinds per seed, so rare combinations get their turn. A seed fully determines its
:class:`SwarmConfig`, and a config fully determines the run: a failing seed is replayed from the
small JSON file :func:`write_replay` leaves next to its trace and timeline report. The file also
records which implementation ran (:class:`Implementation`: ``--impl`` or ``--cmd``), so that
``brh-sim replay`` reruns it against the same one.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator import faults
from simulator.faults import FORMER_NAMES, did_you_mean
from simulator.impl import Factory, load_command, load_factory
from simulator.world import Outcome, World, simulate

if TYPE_CHECKING:
    from simulator.cli.fleet import SeedResult

__all__ = [
    "SWITCHES",
    "ExploreSummary",
    "Implementation",
    "SwarmConfig",
    "check_switches",
    "choose_config",
    "explore",
    "read_replay",
    "read_replay_file",
    "run_config",
    "write_replay",
]

SWITCHES = (
    # faults, by their names in simulator.faults (each toggles on and off at random times)
    "partition",
    "cut_answers",
    "disconnect",
    "lossy",
    "slow_link",
    "take_down",
    "freeze",
    "expire_token",
    "server_errors",
    "upsert_race",
    # one-shot events
    "jump_clock",
    "jump_vault_clock",
    "crash",
    "reinstall",
    "late_join",
    # the app's behaviour (World.behave: each toggles between its mode and apply)
    "refuse",
    "flaky_app",
    "slow_app",
    "decline",
    # named with --faults only (see _NOT_DRAWN)
    "commit_lag",
)
"""What a seed may switch on. The order is the order a seed draws them in: changing it would
change every seed's run. (``slow_vault`` is left out, for the same reason.)"""

_NOT_DRAWN = frozenset({"commit_lag"})
"""Switches a seed does not draw by itself, only ``--faults`` names: a seed drawing one more
switch would change its run, and about a third of the seeds would draw it."""

_LISTED = (
    "crash",
    "decline",
    "jump_clock",
    "flaky_app",
    "freeze",
    "late_join",
    "slow_link",
    "lossy",
    "disconnect",
    "cut_answers",
    "partition",
    "refuse",
    "reinstall",
    "server_errors",
    "slow_app",
    "expire_token",
    "upsert_race",
    "jump_vault_clock",
    "take_down",
    "commit_lag",
)
"""The order the workload lists the enabled switches in when it picks an action: the
alphabetical order of the names they had before the fault vocabulary was unified (kept, so that
every seed still runs as it did)."""

_STRENGTH: dict[str, dict[str, Any]] = {
    "lossy": {"requests": 0.2, "answers": 0.2},
    "slow_link": {"latency": (0.01, 40.0)},
    "server_errors": {"before": 0.2, "after": 0.2},
    "upsert_race": {"seconds": 0.5},
    "commit_lag": {"seconds": 4.0},
}
"""The arguments a swarm turns each fault on with."""


def check_switches(names: Iterable[object], *, translate: bool = False) -> tuple[str, ...]:
    """``names`` as switches; :class:`ValueError` naming the fix for an unknown one (for an
    earlier name, its new one). With ``translate``, earlier names are taken as their new ones
    (a replay file written before the renaming still replays)."""
    checked: list[str] = []
    for name in names:
        if translate and isinstance(name, str):
            name = FORMER_NAMES.get(name, name)
        if name not in SWITCHES:
            raise ValueError(
                f"unknown switch {name!r}; {did_you_mean(name, SWITCHES)}"
                f"known: {', '.join(SWITCHES)}"
            )
        assert isinstance(name, str)
        checked.append(name)
    return tuple(checked)


REPLAY_KIND = "brh-sim-replay"


@dataclass(frozen=True)
class Implementation:
    """Which implementation every device of a run runs: ``impl``, a Python factory named
    ``package.module:factory`` (:func:`simulator.impl.load_factory`); ``cmd``, a command line
    run as a process speaking ``PROTOCOL.md`` (:func:`simulator.impl.load_command`); or
    neither, the reference in process. Giving both is a :class:`ValueError` naming them."""

    impl: str | None = None
    cmd: str | None = None

    def __post_init__(self) -> None:
        if self.impl is not None and self.cmd is not None:
            raise ValueError("--impl and --cmd: give one implementation, not both")
        for option, value in (("impl", self.impl), ("cmd", self.cmd)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{option}: expected a string, got {value!r}")

    @property
    def option(self) -> str | None:
        """``--impl`` or ``--cmd``, the option that names it (None for the reference)."""
        if self.impl is not None:
            return "--impl"
        return None if self.cmd is None else "--cmd"

    @property
    def value(self) -> str | None:
        return self.impl if self.impl is not None else self.cmd

    def argv(self) -> list[str]:
        """The ``brh-sim`` arguments that name it (none for the reference)."""
        return [] if self.option is None or self.value is None else [self.option, self.value]

    def label(self) -> str:
        """`` on mypkg.helper:factory`` or `` on `node helper.js` `` (empty for the reference):
        appended to what a run is called."""
        if self.impl is not None:
            return f" on {self.impl}"
        return "" if self.cmd is None else f" on `{self.cmd}`"

    def factory(self) -> Factory | None:
        """Its factory (None: the reference in process); a
        :class:`~simulator.impl.FactoryError` if it cannot be loaded."""
        if self.impl is not None:
            return load_factory(self.impl)
        return None if self.cmd is None else load_command(self.cmd)

    def to_json(self) -> dict[str, str]:
        return {} if self.option is None or self.value is None else {self.option[2:]: self.value}

    @classmethod
    def from_json(cls, data: object) -> Implementation:
        if not isinstance(data, dict) or not set(data) <= {"impl", "cmd"}:
            raise ValueError(
                f"implementation: expected {{'impl': 'package.module:factory'}} or "
                f"{{'cmd': 'COMMAND'}}, got {data!r}"
            )
        return cls(impl=data.get("impl"), cmd=data.get("cmd"))


@dataclass(frozen=True)
class SwarmConfig:
    """Everything a swarm run depends on besides the code."""

    seed: int
    devices: int = 3
    duration: float = 3600.0
    faults: tuple[str, ...] = ()
    keys: int = 8
    contexts: tuple[str, ...] = ("notes",)
    mean_gap: float = 30.0
    """Mean seconds between two actions of the workload."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SwarmConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("faults", "contexts"):
            if name in known:
                known[name] = tuple(known[name])
        if "faults" in known:
            try:
                known["faults"] = check_switches(known["faults"], translate=True)
            except ValueError as exc:
                raise ValueError(f"faults: {exc}") from None
        return cls(**known)


def choose_config(
    seed: int,
    *,
    devices: int = 3,
    duration: float = 3600.0,
    switches: tuple[str, ...] | None = None,
) -> SwarmConfig:
    """The swarm configuration of ``seed``: each switch enabled with probability 1/3 (but
    those only ``--faults`` names, :data:`_NOT_DRAWN`), or exactly ``switches`` if given (the
    rest of the configuration is the seed's either way)."""
    rng = random.Random(f"swarm:{seed}")
    drawn = tuple(f for f in SWITCHES if f not in _NOT_DRAWN and rng.random() < 1 / 3)
    contexts = ("notes",) if rng.random() < 0.7 else ("notes", "settings")
    return SwarmConfig(
        seed=seed,
        devices=devices,
        duration=duration,
        faults=drawn if switches is None else check_switches(switches),
        keys=rng.choice((3, 8, 20)),
        contexts=contexts,
        mean_gap=rng.choice((5.0, 30.0, 120.0)),
    )


async def _workload(world: World, config: SwarmConfig) -> None:
    """A random app workload interleaved with the enabled faults, for ``duration`` seconds."""
    rng = world.rng
    enabled = set(config.faults)
    for index in range(config.devices):
        offset = rng.uniform(-6 * 3600, 6 * 3600) if "jump_clock" in enabled else 0.0
        world.add_device(f"d{index}", offset=offset)
    actions: list[tuple[str, float]] = [("put", 6.0), ("remove", 1.5), ("sync", 1.0)]
    actions += [(switch, 0.6) for switch in _LISTED if switch in enabled]
    names, weights = zip(*actions, strict=True)
    joined = config.devices
    while world.now() < config.duration:
        await world.advance(rng.expovariate(1 / config.mean_gap))
        action = rng.choices(names, weights)[0]
        name = rng.choice(sorted(world.devices))
        device = world.devices[name]
        context = rng.choice(config.contexts)
        key = f"k{rng.randrange(config.keys)}"
        if action in ("put", "remove", "sync") and not device.running:
            await world.restart(name)
        if action == "put":
            await device.put(key, {"by": name, "n": rng.randrange(1000)}, context)
        elif action == "remove":
            await device.remove(key, context)
        elif action == "sync":
            await device.sync(full=rng.random() < 0.1)
        elif action == "late_join" and joined < config.devices + 2:
            world.add_device(f"d{joined}")
            joined += 1
        else:
            await _fault(world, action, name, rng)


async def _fault(world: World, fault: str, name: str, rng: random.Random) -> None:
    """Toggle one switch (each call flips it on or off, so faults come and go)."""
    if fault in faults.FAULTS:
        spec = faults.FAULTS[fault]
        target = [name] if spec.per_device else []
        if world.fault_on(fault, *target):
            getattr(world, spec.off)(*target)
        else:
            getattr(world, fault)(*target, **_STRENGTH.get(fault, {}))
    elif fault == "jump_clock":
        world.jump_clock(name, rng.choice((-1, 1)) * rng.uniform(1, 4 * 3600))
    elif fault == "jump_vault_clock":
        world.jump_clock("vault", rng.choice((-1, 1)) * rng.uniform(1, 3600))
    elif fault == "crash":
        device = world.devices[name]
        await (world.restart(name) if not device.running else world.crash(name))
    elif fault == "reinstall":
        await world.reinstall(name)
    elif fault in ("refuse", "flaky_app", "slow_app", "decline"):
        mode = world.devices[name].behaviours.get(world.contexts[0])
        if mode is not None and mode.mode != "apply":
            world.behave(name, mode="apply")
        elif fault == "refuse":
            world.behave(name, mode="refuse", refusals=rng.randrange(1, 6))
        elif fault == "flaky_app":
            world.behave(name, mode="flaky", probability=0.5)
        elif fault == "slow_app":
            world.behave(name, mode="slow", delay=rng.uniform(1, 120))
        else:
            world.behave(name, mode="decline")


def run_config(
    config: SwarmConfig, *, trace_path: Path | str | None = None, **world_options: Any
) -> Outcome:
    """Run one swarm configuration to its end and check it (``world_options`` go to
    :class:`World`, e.g. ``factory`` and ``workdir`` to run another implementation)."""

    async def scenario(world: World) -> None:
        await _workload(world, config)

    return simulate(
        scenario,
        seed=config.seed,
        trace_path=trace_path,
        contexts=config.contexts,
        **world_options,
    )


def write_replay(
    path: Path,
    config: SwarmConfig,
    outcome: Outcome | None = None,
    *,
    findings: Iterable[str] | None = None,
    implementation: Implementation = Implementation(),
) -> Path:
    """A small JSON file from which ``brh-sim replay`` reruns this exact run, on the same
    ``implementation`` (recorded unless it is the reference in process); it records the
    ``outcome``'s findings (or ``findings``, as strings) for the reader."""
    document: dict[str, Any] = {"kind": REPLAY_KIND, "version": 1, "swarm": config.to_json()}
    if implementation.option is not None:
        document["implementation"] = implementation.to_json()
    if outcome is not None:
        findings = [str(f) for f in outcome.findings]
    if findings is not None:
        document["findings"] = list(findings)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_replay(path: Path) -> SwarmConfig:
    """The configuration a replay file records (see :func:`read_replay_file`)."""
    return read_replay_file(path)[0]


def read_replay_file(path: Path) -> tuple[SwarmConfig, Implementation]:
    """The configuration and the implementation a replay file records (a file without an
    ``implementation``, as written before it was recorded, ran the reference); a
    :class:`ValueError` naming the file and what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable replay file ({exc})") from exc
    if not isinstance(document, dict) or document.get("kind") != REPLAY_KIND:
        raise ValueError(f"{path}: not a brh-sim replay file (kind must be {REPLAY_KIND!r})")
    if "swarm" not in document:
        raise ValueError(f"{path}: the replay file has no 'swarm' configuration")
    try:
        implementation = Implementation.from_json(document.get("implementation", {}))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return SwarmConfig.from_json(document["swarm"]), implementation


@dataclass
class ExploreSummary:
    """What an exploration found, every list in seed order (whatever order the seeds finished
    in, on however many processes or machines)."""

    seeds: int = 0
    failed_seeds: list[int] = field(default_factory=list)
    failures_by_clause: Counter[str] = field(default_factory=Counter)
    simulated_seconds: float = 0.0
    requests: int = 0
    reports: list[Path] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    """Seeds not run because the exploration was stopped (Ctrl-C): empty when it ran to its
    end."""


def explore(
    seeds: range,
    *,
    devices: int = 3,
    duration: float = 3600.0,
    out: Path | None = None,
    progress: Callable[[int, int, ExploreSummary], None] | None = None,
    report_seed: int | None = None,
    switches: tuple[str, ...] | None = None,
    jobs: int = 1,
    cluster: str | None = None,
    impl: str | None = None,
    cmd: str | None = None,
) -> ExploreSummary:
    """Run every seed; for each failure write a replay file, its trace and a timeline report to
    ``out``. ``report_seed`` also gets a report when it passes (for a demo). ``switches``: run
    every seed with exactly these (:data:`SWITCHES`), instead of a mix of its own. ``impl``:
    every device runs this implementation, ``package.module:factory`` (see
    :mod:`simulator.impl`), instead of the reference; ``cmd``: every device runs this command
    line as a process speaking ``PROTOCOL.md`` (each worker starts its own processes). The
    replay files record which one ran.

    ``jobs`` worker processes run the seeds (1: this process), or the Dask scheduler at
    ``cluster`` does (see :mod:`simulator.cli.fleet`); the summary and the files are the same
    either way. ``progress`` is called after each seed with the seeds done, the total and the
    summary so far (in the order the seeds finished). Ctrl-C (:class:`KeyboardInterrupt`) stops
    the workers and returns what finished, the rest in ``unfinished``; the files of the
    finished seeds are written as each one finishes. A cluster that cannot be used raises
    :class:`~simulator.cli.fleet.ClusterError` (a :class:`ValueError`)."""
    from simulator.cli.fleet import SeedOptions, run_seeds, write_files

    options = SeedOptions(
        devices=devices,
        duration=duration,
        switches=switches,
        keep_files=out is not None,
        report_seed=report_seed,
        impl=impl,
        cmd=cmd,
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    results: dict[int, SeedResult] = {}
    reports: dict[int, Path] = {}
    so_far = ExploreSummary()
    try:
        with contextlib.closing(run_seeds(seeds, options, jobs=jobs, cluster=cluster)) as runs:
            for result in runs:
                results[result.seed] = result
                if out is not None:
                    written = write_files(out, result)
                    reports.update((result.seed, p) for p in written if p.suffix == ".html")
                _add(so_far, result)
                if progress is not None:
                    progress(len(results), len(seeds), so_far)
    except KeyboardInterrupt:
        pass
    summary = ExploreSummary()
    for seed in seeds:
        if seed in results:
            _add(summary, results[seed])
            if seed in reports:
                summary.reports.append(reports[seed])
        else:
            summary.unfinished.append(seed)
    return summary


def _add(summary: ExploreSummary, result: SeedResult) -> None:
    summary.seeds += 1
    summary.simulated_seconds += result.simulated_seconds
    summary.requests += result.requests
    if not result.ok:
        summary.failed_seeds.append(result.seed)
        summary.failures_by_clause.update(result.clauses)
