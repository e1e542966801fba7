"""How hard the conformance state machine searches, and how soon it finds a failure.

    python benchmarks/machine_search.py [--seeds 1-8] [--examples 3000] [--steps 100]
                                        [--impl package.module:factory] [-j 2]

Runs the state machine (:mod:`conformance.machine`) once per seed, each run with ``--examples``
examples of up to ``--steps`` steps, on the reference in process (or ``--impl``), seeds spread
over ``-j`` worker processes. Prints a Markdown table: per seed, the examples and steps run, the
example that failed first (before shrinking; ``-`` if none did), the first line of the failure,
and the wall time; then the totals. A run that finds a failure stops there (Hypothesis then
shrinks it, and those examples count too).

This is the deep search behind the figures in the README ("How hard the state machine was
searched"): the default profiles run 25 (``fast``) or 300 (``ci``) examples; this runs
thousands per seed, over many seeds. Progress goes to stderr, one line per finished seed.

Wall time is read here, for the figures only; the runs themselves are on virtual time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SeedResult:
    seed: int
    examples: int
    steps: int
    first_failure: int | None
    problem: str
    seconds: float


def _seeds(text: str) -> list[int]:
    """``1-8``, ``3`` or ``1,5,9``."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--seeds: not a seed range: {part!r}") from None
        if first > last:
            raise argparse.ArgumentTypeError(f"--seeds: empty range {part!r}")
        seeds.extend(range(first, last + 1))
    return seeds


def search(seed: int, examples: int, steps: int, impl: str | None) -> SeedResult:
    """One seed's run of the state machine (in a worker process)."""
    from hypothesis import seed as seeded
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    from conformance.harness import REFERENCE, Sim, Target
    from conformance.machine import MachineStats, SyncMachine
    from simulator.impl import load_factory

    target = Target(REFERENCE, None) if impl is None else Target(impl, load_factory(impl))
    stats = MachineStats()
    problem = ""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        sim = Sim(target, seed=seed, workdir=Path(folder), profile="ci")
        chosen = settings(
            settings.get_profile("brh-ci"), max_examples=examples, stateful_step_count=steps
        )
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                run_state_machine_as_test(
                    seeded(seed)(lambda: SyncMachine(sim, stats)),  # type: ignore[arg-type]
                    settings=chosen,
                )
        except Exception as exc:  # the failure is the result
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            problem = next(
                (line for line in lines if line.startswith("[")), lines[0] if lines else ""
            )
            problem = problem or type(exc).__name__
    return SeedResult(
        seed,
        stats.examples,
        stats.steps,
        stats.first_failure,
        problem,
        time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=_seeds, default=_seeds("1-8"), help="default 1-8")
    parser.add_argument("--examples", type=int, default=3000, help="per seed (default 3000)")
    parser.add_argument("--steps", type=int, default=100, help="per example (default 100)")
    parser.add_argument("--impl", default=None, help="package.module:factory (default: reference)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    if args.examples < 1 or args.steps < 1 or args.jobs < 1:
        parser.error("--examples, --steps and -j must be >= 1")
    print(
        f"state machine search: seeds {args.seeds[0]}..{args.seeds[-1]} ({len(args.seeds)}), "
        f"{args.examples} examples of up to {args.steps} steps each, "
        f"{args.impl or 'the reference'}, {args.jobs} processes",
        file=sys.stderr,
    )
    results: list[SeedResult] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(search, seed, args.examples, args.steps, args.impl) for seed in args.seeds
        ]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            verdict = f"FAIL at example {result.first_failure}" if result.problem else "pass"
            print(
                f"  seed {result.seed}: {verdict} ({result.examples} examples, "
                f"{result.seconds:.0f} s) [{len(results)}/{len(args.seeds)}]",
                file=sys.stderr,
            )
    results.sort(key=lambda r: r.seed)
    print("| seed | examples | steps | first failing example | failure | wall s |")
    print("|---:|---:|---:|---:|---|---:|")
    for r in results:
        first = "-" if r.first_failure is None else str(r.first_failure)
        problem = r.problem.replace("|", "\\|")[:100]
        print(
            f"| {r.seed} | {r.examples:,} | {r.steps:,} | {first} | {problem} | {r.seconds:.0f} |"
        )
    failing = [r for r in results if r.problem]
    print(
        f"\n{len(results)} seeds, {sum(r.examples for r in results):,} examples, "
        f"{sum(r.steps for r in results):,} steps, {len(failing)} failing; "
        f"{time.perf_counter() - started:.0f} s wall on {args.jobs} processes"
    )
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
