"""How fast the conformance suite runs on the reference.

    python benchmarks/conformance_speed.py [--examples N] [--repeat R]

Prints a Markdown table:

* the state machine (:mod:`conformance.machine`) on the reference in process: Hypothesis
  examples per second and state-machine steps per second (world steps, each example's final
  phase included), ``N`` examples of the ``brh-fast`` profile's length;
* wall time of the default conformance suite, ``pytest --pyargs conformance``, in process, and
  of the same with ``--brh-impl conformance.implementations.reference:factory`` (the reference
  run as any Python implementation is, its SQLite stores on disk), each in a fresh process from
  an empty directory, best of ``R``; and over the process protocol (``--brh-cmd``: the reference
  as ``python -m conformance.protocol.reference``, one process per device installation; the
  state machine left out, its hundreds of worlds would start thousands of processes). The
  suite's own CPU time is shown too: on a shared machine
  wall time includes waiting for a core, and the on-disk stores wait for their disk writes.

Wall time is read here, for the figures only; the runs themselves are on virtual time.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance.harness import REFERENCE, Sim, Target
from conformance.machine import run_machine

REFERENCE_FACTORY = "conformance.implementations.reference:factory"


PROCESS = shlex.join([sys.executable, "-m", "conformance.protocol.reference"])
"""The reference as a process speaking PROTOCOL.md."""


def machine_rate(examples: int) -> tuple[int, int, float, float]:
    """Examples, steps, wall seconds and CPU seconds of ``examples`` state-machine examples."""
    with tempfile.TemporaryDirectory() as folder:
        sim = Sim(Target(REFERENCE, None), seed=1, workdir=Path(folder))
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sys.stderr):  # its seed line, not the table
            stats = run_machine(sim, max_examples=examples)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return stats.examples, stats.steps, wall, cpu


def suite(*options: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system of the child) and pytest's last line."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    command += ["--pyargs", "conformance", *options]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as folder:
        wall = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, cpu, lines[-1].strip("= ") if lines else ""


def best(repeat: int, *options: str) -> tuple[float, float, str]:
    return min((suite(*options) for _ in range(repeat)), key=lambda r: r[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=100, help="state-machine examples")
    parser.add_argument("--repeat", type=int, default=3, help="suite runs (the best counts)")
    args = parser.parse_args()
    logging.getLogger("brh").setLevel(logging.CRITICAL)
    print(f"Python {platform.python_version()} on {platform.platform()}\n")
    rows: list[tuple[str, str, str]] = []

    print(f"state machine, {args.examples} examples...", file=sys.stderr)
    examples, steps, wall, cpu = machine_rate(args.examples)
    rows.append(
        (
            "state machine on the reference, in process (brh-fast example length)",
            f"{examples} examples, {steps:,} steps in {wall:.1f} s ({cpu:.1f} s CPU)",
            f"{examples / wall:.1f} examples/s, {steps / wall:,.0f} steps/s",
        )
    )

    for label, options in (
        ("`pytest --pyargs conformance` (reference in process)", ()),
        (f"the same with `--brh-impl {REFERENCE_FACTORY}`", ("--brh-impl", REFERENCE_FACTORY)),
        (
            "the same over the process protocol (`--brh-cmd`), state machine aside",
            ("--brh-cmd", PROCESS, "-k", "not state_machine"),
        ),
    ):
        print(f"{label}...", file=sys.stderr)
        wall, cpu, summary = best(args.repeat, *options)
        rows.append((label, summary, f"{wall:.1f} s wall ({cpu:.1f} s CPU)"))

    print("| measurement | work | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
