"""How ``brh-sim explore`` scales: seeds per minute on 1 process, 2 processes and a 2-worker Dask
cluster, side by side, from one run.

    python benchmarks/explore_scale.py [--seeds 40] [--duration 3600] [--devices 3]

Prints the machine (cores, load average before and after), then a Markdown table: wall time,
seeds per minute and the wall time as a share of ``-j 1``'s for each way of running the same
seeds, and whether every way gave the same summary. ``-j 2`` includes starting its worker
processes (as the command does); the Dask row runs on a ``LocalCluster`` started beforehand (a
cluster is up before a night's run), and the time to start it is printed apart. The target on
a 2-core machine: ``-j 2`` takes at most 0.7 of ``-j 1``'s wall time.

Wall time is read here, for the figures only; the runs themselves are on virtual time.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

from simulator.cli.explore import ExploreSummary, explore


def timed(run: Callable[[], ExploreSummary]) -> tuple[float, ExploreSummary]:
    started = time.perf_counter()
    summary = run()
    return time.perf_counter() - started, summary


def verdicts(summary: ExploreSummary) -> tuple[object, ...]:
    return (summary.seeds, summary.failed_seeds, summary.requests, summary.simulated_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--devices", type=int, default=3)
    args = parser.parse_args()
    if args.seeds < 2 or args.duration <= 0 or args.devices < 1:
        parser.error("--seeds must be at least 2, --duration and --devices positive")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    seeds = range(1, args.seeds + 1)

    def run(jobs: int = 1, cluster: str | None = None) -> ExploreSummary:
        return explore(
            seeds, devices=args.devices, duration=args.duration, jobs=jobs, cluster=cluster
        )

    load_before = os.getloadavg()
    rows: list[tuple[str, float, ExploreSummary]] = []
    for label, jobs in (("-j 1", 1), ("-j 2", 2)):
        wall, summary = timed(lambda jobs=jobs: run(jobs))  # type: ignore[misc]
        rows.append((label, wall, summary))
    from distributed import LocalCluster

    started = time.perf_counter()
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster:
        cluster_start = time.perf_counter() - started
        wall, summary = timed(lambda: run(cluster=cluster.scheduler_address))
        rows.append(("--cluster (LocalCluster, 2 workers)", wall, summary))
    load_after = os.getloadavg()

    print(
        f"{args.seeds} seeds x {args.devices} devices x {args.duration:,.0f} s simulated; "
        f"{os.cpu_count()} cores; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; LocalCluster started in {cluster_start:.1f} s"
    )
    print()
    print("| how | wall time | seeds per minute | wall time / -j 1 |")
    print("|---|---:|---:|---:|")
    base = rows[0][1]
    for label, wall, summary in rows:
        print(
            f"| `{label}` | {wall:.1f} s | {60 * summary.seeds / wall:,.0f} | {wall / base:.2f} |"
        )
    same = all(verdicts(s) == verdicts(rows[0][2]) for _, _, s in rows)
    print()
    print(f"same seeds, failures and totals every way: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
