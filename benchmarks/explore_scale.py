"""How ``brh-sim explore`` scales: seeds per minute on 1 process, 2 processes and a 2-worker Dask
cluster, side by side, from one run.

    python benchmarks/explore_scale.py [--seeds 60] [--duration 3600] [--devices 3] [--rounds 3]

Prints the machine (cores, load average before and after), then a Markdown table: wall time
(median and best of the rounds, which interleave the three ways so that a change in the shared
machine's load hits each), seeds per minute and the wall time as a share of ``-j 1``'s for each
way of running the same seeds, and whether every way gave the same summary. ``-j 2`` includes
starting its worker processes (as the command does); the Dask row runs on a ``LocalCluster``
started beforehand (a cluster is up before a night's run), and the time to start it is printed
apart. The target on a 2-core machine: ``-j 2`` takes at most 0.7 of ``-j 1``'s wall time.

Wall time is read here, for the figures only; the runs themselves are on virtual time.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
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
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way, interleaved")
    args = parser.parse_args()
    if args.seeds < 2 or args.duration <= 0 or args.devices < 1 or args.rounds < 1:
        parser.error("--seeds must be at least 2; --duration, --devices, --rounds positive")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from distributed import LocalCluster

    seeds = range(1, args.seeds + 1)

    def run(jobs: int = 1, cluster: str | None = None) -> ExploreSummary:
        return explore(
            seeds, devices=args.devices, duration=args.duration, jobs=jobs, cluster=cluster
        )

    load_before = os.getloadavg()
    started = time.perf_counter()
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        cluster_start = time.perf_counter() - started
        ways: dict[str, Callable[[], ExploreSummary]] = {
            "-j 1": lambda: run(1),
            "-j 2": lambda: run(2),
            "--cluster (LocalCluster, 2 workers)": lambda: run(cluster=cluster.scheduler_address),
        }
        walls: dict[str, list[float]] = {label: [] for label in ways}
        summaries: dict[str, ExploreSummary] = {}
        for _ in range(args.rounds):  # interleaved: a change in the machine's load hits all
            for label, way in ways.items():
                wall, summaries[label] = timed(way)
                walls[label].append(wall)
    load_after = os.getloadavg()

    print(
        f"{args.seeds} seeds x {args.devices} devices x {args.duration:,.0f} s simulated, "
        f"{args.rounds} interleaved rounds; {os.cpu_count()} cores; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"LocalCluster started in {cluster_start:.1f} s"
    )
    print()
    print("| how | wall time, median (best) | seeds per minute (median) | wall time / -j 1 |")
    print("|---|---:|---:|---:|")
    base = statistics.median(walls["-j 1"])
    for label, times in walls.items():
        median = statistics.median(times)
        print(
            f"| `{label}` | {median:.1f} s ({min(times):.1f} s) | "
            f"{60 * args.seeds / median:,.0f} | {median / base:.2f} |"
        )
    first = verdicts(summaries["-j 1"])
    same = all(verdicts(s) == first for s in summaries.values())
    print()
    print(f"same seeds, failures and totals every way: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
