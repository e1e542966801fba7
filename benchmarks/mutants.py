"""Which conformance tests catch each mutant of the reference, and how fast.

    python benchmarks/mutants.py [--seed N] [--tmp DIR] [NAME ...]

Runs the whole conformance suite (``pytest --pyargs conformance``, one fresh process each)
against the reference's factory and then against every mutant of
:mod:`conformance.implementations.mutants` (or only those named), and prints a Markdown table:
the mutant, its bug, the tests that fail on it, the time to catch it (seconds of test time from
the start of the run until the first failing test has completed, adding up the per-test
durations in the order pytest ran them) and the whole suite's test time.

The implementations keep their stores (SQLite files, written with fsync) in a temporary
directory under ``--tmp`` (default: the system's); on a busy disk the fsyncs dominate, so
``--tmp /dev/shm`` (memory) measures the suite itself.

Wall time is read here, for the figures only; the runs themselves are on virtual time.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from conformance.implementations.mutants import MUTANTS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "conformance.implementations.reference:factory"


@dataclass
class Run:
    """One run of the suite: each test's outcome and duration, in the order they ran."""

    implementation: str
    tests: list[tuple[str, bool, float]]
    """(test name, failed, seconds of setup + call + teardown)."""
    wall: float
    """Seconds of the whole process (interpreter start and collection included)."""

    @property
    def failed(self) -> list[str]:
        return [name for name, failed, _ in self.tests if failed]

    @property
    def suite_time(self) -> float:
        return sum(seconds for _, _, seconds in self.tests)

    @property
    def time_to_catch(self) -> float | None:
        """Test time from the start until the first failing test completed (None: none)."""
        elapsed = 0.0
        for _, failed, seconds in self.tests:
            elapsed += seconds
            if failed:
                return elapsed
        return None


def run_suite(implementation: str, seed: int, tmp: Path | None = None) -> Run:
    """The whole conformance suite on ``implementation``, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="brh-mutants-bench-", dir=tmp) as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--pyargs",
            "conformance",
            f"--brh-impl={implementation}",
            f"--brh-seed={seed}",
            f"--junitxml={junit}",
            f"--basetemp={Path(scratch) / 'tmp'}",
        ]
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if not junit.exists():
            raise RuntimeError(f"the suite did not run on {implementation}: {' '.join(command)}")
        tests = [
            (
                case.attrib["name"],
                case.find("failure") is not None or case.find("error") is not None,
                float(case.attrib.get("time", 0.0)),
            )
            for case in ElementTree.parse(junit).getroot().iter("testcase")
        ]
    return Run(implementation, tests, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--seed", type=int, default=1, help="the suite's --brh-seed")
    parser.add_argument(
        "--tmp", type=Path, default=None, help="directory for the runs' stores (e.g. /dev/shm)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(MUTANTS))
    if unknown:
        parser.error(f"unknown mutant(s) {', '.join(unknown)}; known: {', '.join(MUTANTS)}")
    names = args.names or list(MUTANTS)

    reference = run_suite(REFERENCE, args.seed, args.tmp)
    where = args.tmp or Path(tempfile.gettempdir())
    print(
        f"Python {platform.python_version()} on {platform.machine()}, seed {args.seed}, "
        f"stores in {where}; "
        f"the reference ({REFERENCE}) fails {len(reference.failed)} of "
        f"{len(reference.tests)} tests in {reference.suite_time:.2f} s of test time "
        f"({reference.wall:.1f} s wall with start-up)."
    )
    print()
    print("| mutant | bug | tests that catch it | time to catch (s) | suite time (s) |")
    print("|---|---|---|---:|---:|")
    survivors = []
    for name in names:
        mutant = MUTANTS[name]
        result = run_suite(mutant.spec, args.seed, args.tmp)
        caught = result.time_to_catch
        if caught is None:
            survivors.append(name)
        tests = "<br>".join(f"`{test}`" for test in result.failed) or "**none: it survives**"
        catch = f"{caught:.2f}" if caught is not None else "-"
        print(
            f"| `{name}` | {mutant.bug} | {tests} | {catch} | {result.suite_time:.2f} |",
            flush=True,
        )
    if survivors:
        sys.exit(f"mutants no test catches: {', '.join(survivors)}")


if __name__ == "__main__":
    main()
