"""Run the conformance suite in a subprocess (``pytest --pyargs conformance ...``), bounded.

For tests that need a process of its own: Hypothesis keeps process-wide state (its seed option,
its loaded profile), and pytest-xdist starts workers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN_TIMEOUT = 300.0
"""Seconds one suite run may take at most (a few on an idle machine)."""


def run_suite(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest --pyargs conformance ARGS`` in ``cwd`` (its rootdir), in a subprocess."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    # a user's project would set it; unset, pytest-asyncio warns in every process
    command += ["-o", "asyncio_default_fixture_loop_scope=function", "--pyargs"]
    return subprocess.run(
        [*command, "conformance", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
