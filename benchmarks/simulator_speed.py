"""How fast the simulator runs, and whether its memory stays flat.

    python benchmarks/simulator_speed.py [--quick]

Prints a Markdown table:

* raw request throughput: vault requests through a device's link, the vault server and the
  fake vault on the virtual-time loop, with no helper logic (what the simulator itself costs),
  best and median of several runs, each after timing a fixed loop that shows how fast the
  shared machine runs at that moment;
* one simulated day of 5 devices, each editing and syncing every minute (end to end: helper,
  SQLite store, link, server, checkers);
* swarm exploration: seeds and vault requests per second of wall time;
* memory: peak traced allocations of swarm runs of 1, 4, 16 and 64 simulated hours (1 and 4
  with ``--quick``), the trace streamed to disk, and the growth per extra app write between
  the last two (what the simulator keeps is bounded by the key space and the device count:
  once its bounded records have filled, in the first hours, memory stays flat).

Wall time is read here, for the figures only; the runs themselves are on virtual time.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from brh import hlc
from simulator.cli.explore import choose_config, run_config
from simulator.timeloop import run
from simulator.world import World, simulate
from simulator.world.link import Link

MINUTE = 60.0


def raw_requests(count: int) -> tuple[float, int]:
    """Seconds of wall time for ``count`` requests (alternating upsert and query)."""

    async def main() -> int:
        world = World(1)
        world.add_device("bench")
        link: Link = world.links["bench"]
        await world.server.vault.create_collection("backup_bench")
        for i in range(count // 2):
            await link.update_one(
                "backup_bench", {"key": f"k{i % 50}"}, {"$set": {"v": i}}, upsert=True
            )
            await link.query("backup_bench", {"modified": {"$gte": 0}}, limit=10)
        await world.close()
        return link.requests

    start = time.perf_counter()
    done = run(main())
    return time.perf_counter() - start, done


def machine_speed() -> float:
    """Seconds this machine takes right now for a fixed pure-Python loop (2 million additions).

    The shared machine runs the same code up to half again as fast from one minute to the next;
    printed beside a figure, this says which phase the figure was measured in."""
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i & 7
    return time.perf_counter() - start


def large_collection(documents: int, count: int) -> float:
    """Requests per second on a ``documents``-document collection: an upsert by key, then a
    sorted pull-like read of the newest stamps (what a helper's pass sends)."""

    async def main() -> int:
        world = World(1)
        world.add_device("bench")
        link: Link = world.links["bench"]
        vault = world.server.vault
        await vault.create_collection("backup_bench")
        await vault.insert_many(
            "backup_bench", [{"key": f"k{i}", "v": i} for i in range(documents)]
        )
        await world.advance(1)
        for i in range(count // 2):
            await link.update_one(
                "backup_bench", {"key": f"k{i % documents}"}, {"$set": {"v": -i}}, upsert=True
            )
            since = int(world.server.clock()) - 1
            await link.query(
                "backup_bench",
                {"$or": [{"modified": {"$gt": since}}, {"modified": since, "key": "k0"}]},
                sort=[("modified", 1), ("_id", 1)],
                limit=500,
            )
        await world.close()
        return link.requests

    start = time.perf_counter()
    done = run(main())
    return done / (time.perf_counter() - start)


def one_day(devices: int, hours: float) -> tuple[float, int, int]:
    """Wall seconds, vault requests and findings for ``devices`` devices editing every minute."""

    async def scenario(world: World) -> None:
        phones = [world.add_device(f"d{i}", auto_sync=False) for i in range(devices)]
        minutes = int(hours * 60)
        for minute in range(minutes):
            for index, phone in enumerate(phones):
                await phone.put(f"k{(minute * 7 + index) % 40}", {"m": minute, "by": index})
                await phone.sync()
            await world.advance(MINUTE)

    start = time.perf_counter()
    outcome = simulate(scenario, seed=1)
    return time.perf_counter() - start, outcome.requests, len(outcome.findings)


def swarm(seeds: int) -> tuple[float, int, int]:
    start = time.perf_counter()
    requests = failing = 0
    for seed in range(1, seeds + 1):
        outcome = run_config(choose_config(seed))
        requests += outcome.requests
        failing += not outcome.ok
    return time.perf_counter() - start, requests, failing


def peak_memory(duration: float) -> tuple[float, int]:
    """Peak traced MiB of one swarm run of ``duration`` simulated seconds, trace on disk, and
    how many writes the apps made. The helper's process-wide caches of versions are emptied
    first, so that each run starts as in a fresh process and counts them whole (the earlier
    rows fill them, untraced)."""
    config = choose_config(3, duration=duration)
    hlc._decode.cache_clear()
    hlc._encode.cache_clear()
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        outcome = run_config(config, trace_path=Path(folder) / "trace.jsonl")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20, outcome.events.get("write", 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    logging.getLogger("brh").setLevel(logging.CRITICAL)
    quick = args.quick
    print(f"Python {platform.python_version()} on {platform.platform()}\n")
    rows: list[tuple[str, str, str]] = []

    print("raw requests...", file=sys.stderr)
    repeats = 3 if quick else 7
    rates, speeds = [], []
    for _ in range(repeats):  # this machine's speed varies by half from minute to minute
        speeds.append(machine_speed())
        wall, done = raw_requests(4_000 if quick else 40_000)
        rates.append(done / wall)
    rows.append(
        (
            "raw requests (link + server + fake vault)",
            f"{done:,} requests, {repeats} runs",
            f"best {max(rates):,.0f}, median {statistics.median(rates):,.0f} requests/s "
            f"(calibration loop {min(speeds) * 1000:.0f}-{max(speeds) * 1000:.0f} ms)",
        )
    )

    print("large collection...", file=sys.stderr)
    rate = large_collection(2_000, 2_000 if quick else 10_000)
    rows.append(
        (
            "requests on a 2,000-document collection (upsert by key, sorted pull)",
            "upsert + query pairs",
            f"{rate:,.0f} requests/s",
        )
    )

    hours = 2.0 if quick else 24.0
    print(f"{hours:g} simulated hours of 5 devices...", file=sys.stderr)
    wall, requests, findings = one_day(5, hours)
    rows.append(
        (
            f"{hours:g} h of 5 devices editing + syncing every minute",
            f"{requests:,} requests, {findings} findings",
            f"{wall:.1f} s wall ({requests / wall:,.0f} requests/s)",
        )
    )

    seeds = 10 if quick else 50
    print(f"{seeds} swarm seeds...", file=sys.stderr)
    wall, requests, failing = swarm(seeds)
    rows.append(
        (
            f"swarm exploration, {seeds} seeds of 1 h",
            f"{requests:,} requests, {failing} failing",
            f"{seeds / wall:.1f} seeds/s ({requests / wall:,.0f} requests/s)",
        )
    )

    durations = (1, 4) if quick else (1, 4, 16, 64)
    print(f"memory ({', '.join(f'{h} h' for h in durations)})...", file=sys.stderr)
    runs = [peak_memory(hours * 3600.0) for hours in durations]
    (before, before_writes), (after, after_writes) = runs[-2], runs[-1]
    per_write = (after - before) * 2**20 / max(1, after_writes - before_writes)
    rows.append(
        (
            f"peak memory, {' vs '.join(f'{h} h' for h in durations)} swarm run (trace on disk)",
            " vs ".join(f"{mib:.2f} MiB" for mib, _ in runs)
            + f" ({' vs '.join(f'{writes:,}' for _, writes in runs)} writes)",
            f"{(after / before - 1) * 100:+.0f}% from {durations[-2]} h to {durations[-1]} h "
            f"({per_write:,.0f} bytes per extra write)",
        )
    )

    print("| measurement | work | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
