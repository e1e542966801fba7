"""Running explore's seeds on every core (``brh-sim explore -j N``) or on a Dask cluster
(``brh-sim explore --cluster ADDRESS``).

One function runs a seed, :func:`run_seed`: a top-level function of the seed and a small
:class:`SeedOptions`, returning a small :class:`SeedResult` (the verdict, the findings, the
totals, and, for a seed whose files are kept, the *contents* of its replay file, trace and
timeline report). The same function runs in this process (``-j 1``), in a worker process of a
local pool, or on a Dask worker on another machine; the files it produces are written by the
caller (:func:`write_files`), so nothing depends on a shared disk, and a seed gives the same
bytes wherever it ran. A seed's run depends on the seed and the options only: the local pool
starts its workers fresh (``forkserver``, else ``spawn``), never as a copy of this process.

:func:`run_seeds` yields the results as they finish, in any order; ``explore`` folds them into
its summary in seed order. Leaving it early (an exception, Ctrl-C) cancels what has not started
and stops the workers: local workers are terminated, Dask tasks are cancelled.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
import uuid
from collections.abc import Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.cli.explore import Implementation, choose_config, run_config, write_replay

__all__ = [
    "ERROR_CLAUSE",
    "ClusterError",
    "SeedOptions",
    "SeedResult",
    "default_jobs",
    "run_seed",
    "run_seeds",
    "write_files",
]


class ClusterError(ValueError):
    """The Dask cluster cannot be used (not installed, not reachable); names ``cluster``."""

    argument = "cluster"


CONNECT_TIMEOUT = 30.0
"""Seconds ``--cluster`` waits for its scheduler to answer."""

ERROR_CLAUSE = "step raised"
"""The clause a seed is counted under when a step of its run raised (no checker ran)."""


@dataclass(frozen=True)
class SeedOptions:
    """What every seed of one exploration shares (see ``brh-sim explore``)."""

    devices: int = 3
    duration: float = 3600.0
    switches: tuple[str, ...] | None = None
    keep_files: bool = False
    """Return the replay file, trace and report of a failing seed (and of ``report_seed``)."""
    report_seed: int | None = None
    impl: str | None = None
    """The implementation every device runs, ``package.module:factory`` (importable where the
    seed runs); None: the reference in process (or ``cmd``)."""
    cmd: str | None = None
    """Or a command line every device runs as a process speaking ``PROTOCOL.md`` (the program
    must be on the ``PATH`` where the seed runs); each seed starts its own processes, in a
    temporary directory of its own."""

    @property
    def implementation(self) -> Implementation:
        return Implementation(impl=self.impl, cmd=self.cmd)


@dataclass(frozen=True)
class SeedResult:
    """One seed's verdict, small enough to send between processes and machines."""

    seed: int
    ok: bool
    findings: tuple[str, ...]
    clauses: tuple[str, ...]
    """The distinct clauses of the findings, sorted."""
    simulated_seconds: float
    requests: int
    files: tuple[tuple[str, bytes], ...] = ()
    """``(file name, contents)`` to write into the output folder, in this order."""


def run_seed(seed: int, options: SeedOptions) -> SeedResult:
    """Run ``seed`` as ``brh-sim explore`` does and check it.

    A step that raises makes the seed fail under :data:`ERROR_CLAUSE` (the finding names the
    step and the exception), so one broken seed does not end an exploration of thousands."""
    from simulator.report import render_timeline
    from simulator.world import ScenarioError

    config = choose_config(
        seed, devices=options.devices, duration=options.duration, switches=options.switches
    )
    with tempfile.TemporaryDirectory(prefix="brh-seed-") as folder:
        trace = Path(folder) / f"seed-{seed}.trace.jsonl" if options.keep_files else None
        world_options: dict[str, Any] = {}
        factory = options.implementation.factory()
        if factory is not None:
            world_options = {"factory": factory, "workdir": Path(folder)}
        try:
            outcome = run_config(config, trace_path=trace, **world_options)
        except ScenarioError as exc:
            when = "" if exc.at is None else f" at t={exc.at:.3f}s"
            findings: tuple[str, ...] = (f"{ERROR_CLAUSE}: {exc}{when}",)
            clauses: tuple[str, ...] = (ERROR_CLAUSE,)
            simulated, requests = exc.at or 0.0, 0
        else:
            findings = tuple(str(f) for f in outcome.findings)
            clauses = tuple(sorted({f.clause for f in outcome.findings}))
            simulated, requests = outcome.simulated_seconds, outcome.requests
        ok = not findings
        files: list[tuple[str, bytes]] = []
        if trace is not None and (not ok or seed == options.report_seed):
            replay = write_replay(
                Path(folder) / f"seed-{seed}.replay.json",
                config,
                findings=findings,
                implementation=options.implementation,
            )
            html = render_timeline(
                trace,
                Path(folder) / f"seed-{seed}.html",
                title=f"brh-sim seed {seed} ({', '.join(config.faults) or 'no faults'})",
                findings=findings,
            )
            files = [(p.name, p.read_bytes()) for p in (replay, trace, html)]
    return SeedResult(seed, ok, findings, clauses, simulated, requests, tuple(files))


def write_files(out: Path, result: SeedResult) -> list[Path]:
    """Write the files a seed's run returned into ``out``; the paths, in order."""
    written = []
    for name, contents in result.files:
        if Path(name).name != name:  # a worker names files, never folders
            raise ValueError(f"files: {name!r} is not a plain file name")
        path = out / name
        path.write_bytes(contents)
        written.append(path)
    return written


def default_jobs() -> int:
    """Worker processes when ``-j`` is not given: the number of cores."""
    return os.cpu_count() or 1


def run_seeds(
    seeds: Iterable[int], options: SeedOptions, *, jobs: int = 1, cluster: str | None = None
) -> Generator[SeedResult, None, None]:
    """Each seed's result, as it finishes: in this process (``jobs == 1``, in seed order), in
    ``jobs`` local worker processes, or on the Dask scheduler at ``cluster``."""
    if cluster is not None:
        return _on_cluster(list(seeds), options, cluster)
    if jobs < 1:
        raise ValueError(f"jobs: must be at least 1, not {jobs}")
    if jobs == 1:
        return (run_seed(seed, options) for seed in seeds)
    listed = list(seeds)
    if len(listed) <= 1:
        return (run_seed(seed, options) for seed in listed)
    return _on_pool(listed, options, jobs)


def _ignore_interrupts() -> None:
    """In a worker: Ctrl-C reaches the whole process group; the parent alone answers it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> multiprocessing.context.BaseContext:
    """Fresh workers, not copies of this process: ``forkserver`` where there is one, which
    imports the simulator once and forks each worker from that, so none imports it again."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__, "simulator.report"])
    return context


def _on_pool(
    seeds: list[int], options: SeedOptions, jobs: int
) -> Generator[SeedResult, None, None]:
    executor = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(seeds))),
        mp_context=_context(),
        initializer=_ignore_interrupts,
    )
    finished = False
    try:
        pending = {executor.submit(run_seed, seed, options) for seed in seeds}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from sorted((future.result() for future in done), key=lambda r: r.seed)
        finished = True
    finally:
        if finished:
            executor.shutdown(wait=True)
        else:
            _stop(executor)


STUCK_POOLS: list[threading.Thread] = []
"""Manager threads of stopped pools that did not end (see :func:`_stop`)."""


def _stop(executor: ProcessPoolExecutor, grace: float = 5.0) -> None:
    """Cancel what has not started and terminate the workers (what is running is lost).

    Bounded: a worker that outlives SIGTERM for ``grace`` seconds gets SIGKILL, and the pool's
    manager thread is given as long to notice. A worker killed mid-write can leave that thread
    waiting for good, and CPython's executor joins it at interpreter exit; such a thread goes
    in :data:`STUCK_POOLS` and ``brh-sim`` then leaves with ``os._exit``
    (:func:`simulator.cli.commands.run`)."""
    workers = list((executor._processes or {}).values())  # the pool's own, and only those
    executor.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=grace)
        if process.is_alive():
            process.kill()
            process.join(timeout=grace)
    manager: threading.Thread | None = getattr(executor, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=grace)
        if manager.is_alive():
            STUCK_POOLS.append(manager)


def _on_cluster(
    seeds: list[int], options: SeedOptions, address: str
) -> Generator[SeedResult, None, None]:
    """The seeds as tasks of the Dask scheduler at ``address``; its workers need only this
    project installed. A worker that dies mid-seed has its seed rerun elsewhere (by Dask)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ClusterError(
            "cluster: Dask is not installed; pip install 'brh[cluster]' (dask[distributed])"
        ) from None
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:  # before connecting: a client given a bad address fails slowly and noisily
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme != "inproc":
            parse_host_port(location)
    except ValueError as exc:
        raise ClusterError(f"cluster: {address!r} is not a scheduler address ({exc})") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        reason = f"cannot reach a Dask scheduler at {address!r} ({exc})"
        raise ClusterError(f"cluster: {reason}") from None
    futures = []
    try:
        run = uuid.uuid4().hex[:8]  # keys of its own: a scheduler may serve several runs
        keys = [f"brh-seed-{seed}-{run}" for seed in seeds]
        futures = client.map(run_seed, seeds, options=options, pure=False, key=keys)
        finished = as_completed(futures, loop=client.loop, with_results=True)
        for batch in finished.batches():
            yield from sorted((result for _, result in batch), key=lambda r: r.seed)
    finally:
        client.cancel(futures)
        client.close()
