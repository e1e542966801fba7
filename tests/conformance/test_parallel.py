"""The conformance suite under pytest-xdist (issue 13 item 3): ``pytest --pyargs conformance
-n 2`` gives the outcomes of a serial run, every test keeps its own seed, and the ``--brh-report``
file merges every worker's results (:mod:`conformance.parallel`).

The whole suite runs twice here (serially, then on two workers), in subprocesses: about three
seconds of tests, plus the workers' start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.suite_process import run_suite

EXPECTED = '[expected-failures]\n"CB-3" = "not really: the reference passes, shown as xpass"\n'
"""Expectations the reference does not meet, so the report holds more than passes."""


def _run(cwd: Path, name: str, *args: str) -> tuple[dict[str, Any], list[str]]:
    """A run with seed 5 and the expectations above: (its JSON report, its summary lines)."""
    (cwd / "expected.toml").write_text(EXPECTED, encoding="utf-8")
    report = cwd / f"{name}.json"
    result = run_suite(
        cwd,
        *("--brh-seed", "5", "--brh-expectations", "expected.toml", "--brh-example-db", "none"),
        *("--brh-report", str(report), *args),
    )
    out = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.OK, out
    assert report.exists(), out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "brh conformance ==" in line)
    summary = [
        line.replace(str(report), "REPORT")
        for line in lines[start + 1 :]
        if line and not line.startswith("=")
    ]
    return json.loads(report.read_text(encoding="utf-8")), summary


@pytest.mark.slow
def test_two_workers_give_the_outcomes_seeds_and_report_of_a_serial_run(tmp_path: Path) -> None:
    """Issue 13 item 3: the same tests, outcomes, seeds, replay commands and clause table as a
    serial run, in collection order, in one report file written by the controller; the
    terminal summary is the same too."""
    serial, serial_summary = _run(tmp_path, "serial")
    parallel, parallel_summary = _run(tmp_path, "parallel", "-n", "2")
    assert len(serial["tests"]) >= 25
    assert {t["outcome"] for t in serial["tests"]} == {"pass", "xpass"}
    assert all(t["seed"] == 5 for t in serial["tests"]), serial["tests"]
    assert parallel == serial
    assert parallel_summary == serial_summary
