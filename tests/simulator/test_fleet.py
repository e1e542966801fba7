"""``brh-sim explore -j N`` and ``--cluster``: seeds on every core and on a Dask cluster give the
same verdicts, files and summary as ``-j 1`` (issue 13, items 1 and 2)."""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import fleet, main
from simulator.cli.commands import _progress_printer
from simulator.cli.explore import ExploreSummary, read_replay
from simulator.cli.fleet import ERROR_CLAUSE, SeedOptions, run_seed
from simulator.impl import Installation, ReferenceHelper, reference_factory

ROOT = Path(__file__).resolve().parents[2]
MUTANT = "conformance.implementations.mutants:tombstone_not_propagated"
"""A helper that never uploads a deletion: some seeds fail, some pass."""
SEEDS = ["--seeds", "4", "--duration", "600", "--impl", MUTANT, "--report-first"]
"""A handful of short seeds, two of them failing (2 and 3): a few seconds of work in all."""


Run = tuple[int, str, dict[str, bytes]]


def explore_run(out: Path, *options: str) -> Run:
    """Exit status, the summary without its wall time, and every file written to ``out``."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        code = main(["explore", *SEEDS, "--out", str(out), *options])
    summary = re.sub(r"\| [\d.]+ s \|", "| WALL |", printed.getvalue().replace(str(out), "OUT"))
    files = {path.name: path.read_bytes() for path in sorted(out.iterdir())}
    return code, summary, files


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The handful of seeds run with ``-j 1``, once for the tests that compare with it."""
    return explore_run(tmp_path_factory.mktemp("j1"), "-j", "1")


def test_j2_gives_the_same_verdicts_files_and_summary_as_j1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serial: Run
) -> None:
    """Issue 13 item 1: ``-j 2`` runs the seeds in two processes; per-seed verdicts, the
    summary (in seed order) and the replay files, traces and reports are byte for byte those
    of ``-j 1``; a failing seed's replay file, written from a worker's result, replays the
    failure the worker found."""
    parallel = explore_run(tmp_path, "-j", "2")
    code, summary, files = serial
    assert code == 1 and "failing seeds: " in summary
    failing = summary.split("failing seeds: ")[1].splitlines()[0].split(", ")
    assert failing == sorted(failing, key=int) and len(failing) >= 2
    assert {f"seed-{s}.replay.json" for s in failing} <= set(files)
    assert any(name.endswith(".trace.jsonl") for name in files)
    assert parallel == serial
    replay = tmp_path / f"seed-{failing[0]}.replay.json"
    # the replay file records the implementation, so the hint reruns the same one without it
    assert json.loads(replay.read_text())["implementation"] == {"impl": MUTANT}
    assert f"replay a failure with: brh-sim replay OUT/seed-{failing[0]}.replay.json" in summary
    assert main(["replay", str(replay), "--impl", MUTANT]) == 1
    assert read_replay(replay).seed == int(failing[0])
    printed = capsys.readouterr().out.splitlines()[1:]
    findings = [line for line in printed if not line.startswith("  rerun: ")]
    assert findings and json.loads(replay.read_text())["findings"] == [f.strip() for f in findings]
    assert f"  rerun: brh-sim replay {replay} --impl {MUTANT} --report failure.html" in printed


def test_j_defaults_to_the_number_of_cores(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 1: without ``-j`` explore uses one process per core (never more processes
    than seeds); bad ``-j`` and ``-j`` with ``--cluster`` are usage errors naming ``-j``."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert main(["explore", "--seeds", "3", "--duration", "60"]) == 0
    assert "in 2 processes" in capsys.readouterr().err
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert main(["explore", "--seeds", "1", "--duration", "60"]) == 0
    assert "in 1 process:" in capsys.readouterr().err
    assert main(["explore", "--seeds", "2", "-j", "0"]) == 2
    assert "-j must be at least 1, not 0" in capsys.readouterr().err
    assert main(["explore", "--seeds", "2", "-j", "2", "--cluster", "tcp://127.0.0.1:1"]) == 2
    assert "-j and --cluster" in capsys.readouterr().err
    assert main(["explore", "--seeds", "2", "--impl", "no_such_module:factory"]) == 2
    assert "--impl" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_on_a_terminal_and_writes_lines_in_a_log() -> None:
    """Issue 13 item 1: progress shows seeds done and failing; on a terminal one line redrawn
    in place, in a log a line only at each tenth of the seeds, a new failure and the end."""
    summary = ExploreSummary()
    log = io.StringIO()
    show = _progress_printer(log)
    for done in range(1, 101):
        if done in (7, 8):
            summary.failed_seeds.append(done)
        show(done, 100, summary)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 12  # 10 tenths, 2 new failures
    assert lines[0].startswith("7/100 seeds, 1 failing") and lines[-1].startswith("100/100")
    tty = _Tty()
    show = _progress_printer(tty)
    for done in range(1, 4):
        show(done, 3, summary)
    drawn = tty.getvalue()
    assert "\x1b[" in drawn  # a bar redrawn in place by rich (cursor controls)
    assert "1/3" in drawn and "3/3" in drawn and "2 failing" in drawn


def _exploding(installation: Installation) -> ReferenceHelper:
    """The reference, except that every upsert raises."""
    helper = reference_factory(installation)

    async def upsert(context: str, key: str, data: Any) -> None:
        raise OSError("disk full")

    helper.upsert_database_entry = upsert  # type: ignore[method-assign]
    return helper


def test_a_seed_whose_step_raises_is_a_failing_seed(tmp_path: Path) -> None:
    """Issue 13 item 1: a step that raises fails its seed (with its files) instead of ending
    the exploration; the finding names the step and the exception."""
    options = SeedOptions(duration=600, keep_files=True, impl=f"{__name__}:_exploding")
    result = run_seed(3, options)
    assert not result.ok and result.clauses == (ERROR_CLAUSE,)
    assert "OSError: disk full" in result.findings[0]
    assert [name for name, _ in result.files] == [
        "seed-3.replay.json",
        "seed-3.trace.jsonl",
        "seed-3.html",
    ]


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_keeps_what_finished(tmp_path: Path) -> None:
    """Issue 13 item 1: Ctrl-C (SIGINT to the whole process group, as a terminal sends it)
    stops ``-j 2`` cleanly: no traceback, the workers gone, exit 130, and the summary and files
    of the seeds that finished kept."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "simulator.cli", "explore", "--seeds", "200", "-j", "2"]
    command += ["--duration", "3600", "--impl", MUTANT, "--out", str(out)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
        # Ctrl-C as in a terminal, even where this test runs as a background job (ignoring it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    err = [process.stderr.readline()]  # "exploring seeds ..."
    deadline = time.monotonic() + 120
    while "failing" not in err[-1] and time.monotonic() < deadline:
        err.append(process.stderr.readline())  # a line per tenth, per new failure
    assert "failing" in err[-1], err
    os.killpg(process.pid, signal.SIGINT)
    try:
        stdout, rest = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    stderr = "".join(err) + rest
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    finished = int(re.findall(r"stopped \(Ctrl-C\): (\d+) of 200 seeds finished", stderr)[0])
    assert 1 <= finished < 200 and f"| {finished} |" in stdout
    failing = re.findall(r"^failing seeds: (.*)$", stdout, flags=re.M)
    for seed in failing[0].split(", ") if failing else []:
        assert (out / f"seed-{seed}.replay.json").exists()
    for _ in range(100):  # the workers (and the fork server) go with it, within 10 s
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)  # a real process group is waited for: bounded, 10 s in all
    else:
        raise AssertionError("worker processes outlived brh-sim explore")


HANGS_AFTER_CTRL_C = """
import os, signal, threading
from simulator.cli import commands
commands.CTRL_C_GRACE = 0.5
signal.signal(signal.SIGINT, commands._on_ctrl_c)
stuck = threading.Thread(target=threading.Event().wait)  # never ends, and is joined at exit
stuck.start()
try:
    os.kill(os.getpid(), signal.SIGINT)
    threading.Event().wait(5)
except KeyboardInterrupt:
    print("stopping", flush=True)
"""


def test_a_stop_after_ctrl_c_that_hangs_is_cut_short() -> None:
    """Issue 13 item 1 (a CI run hung at exit after Ctrl-C): whatever still holds the process
    after a Ctrl-C (here a thread the interpreter would join for ever), ``brh-sim`` leaves
    with status 130 once the grace period is over."""
    done = subprocess.run(
        [sys.executable, "-c", HANGS_AFTER_CTRL_C], cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 130 and done.stdout == b"stopping\n", done.stderr


def _sleep_through_sigterm(ready: str, seconds: float) -> float:
    """In a worker: ignore SIGTERM (as a worker stuck in a C call effectively does), say so
    through the file ``ready``, then wait to be stopped from outside."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(ready).touch()
    threading.Event().wait(seconds)
    return seconds


def test_stopping_a_pool_is_bounded_even_when_a_worker_ignores_sigterm(tmp_path: Path) -> None:
    """Issue 13 item 1 (a CI run hung after Ctrl-C): the stop of a pool whose worker outlives
    SIGTERM kills it after the grace period; no worker is left and the manager thread ends."""
    ready = tmp_path / "ready"
    executor = ProcessPoolExecutor(max_workers=1, mp_context=fleet._context())
    executor.submit(_sleep_through_sigterm, str(ready), 60)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a real process until it ignores SIGTERM (bounded)
    assert ready.exists()
    workers = list((executor._processes or {}).values())
    started = time.monotonic()
    fleet._stop(executor, grace=0.5)
    assert time.monotonic() - started < 10
    assert workers and not any(process.is_alive() for process in workers)
    assert not fleet.STUCK_POOLS


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_verdicts_and_files_as_j1(
    tmp_path: Path, serial: Run
) -> None:
    """Issue 13 item 2: ``--cluster`` sends the seeds to a Dask scheduler; on a LocalCluster of
    2 worker processes (started here) the verdicts, the summary and the files of the failing
    seeds, sent back from the workers, are those of ``-j 1``."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        on_cluster = explore_run(tmp_path, "--cluster", cluster.scheduler_address)
    assert serial[0] == 1 and on_cluster == serial


def test_a_cluster_that_cannot_be_used_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 2: a bad scheduler address, or one nobody answers at, exits 2 with a
    message naming ``--cluster``, without a traceback."""
    monkeypatch.setattr(fleet, "CONNECT_TIMEOUT", 0.5)
    for address, why in (
        ("nonsense://x", "unknown address scheme"),
        ("tcp://127.0.0.1", "missing port number"),
        ("tcp://127.0.0.1:1", "cannot reach a Dask scheduler"),
    ):
        assert main(["explore", "--seeds", "2", "--cluster", address]) == 2
        err = capsys.readouterr().err
        assert "--cluster: " in err and why in err, err


class _InterruptedLoad(importlib.abc.MetaPathFinder):
    """Ctrl-C arriving while ``brh-sim`` loads its commands."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "simulator.cli.commands":
            raise KeyboardInterrupt


def test_ctrl_c_while_brh_sim_starts_leaves_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13 item 1 (a leftover): a Ctrl-C in the half second ``brh-sim`` spends loading
    its commands ends it with 130 and one line, not Python's KeyboardInterrupt traceback (the
    entry point loaded them before it could catch anything)."""
    import simulator.cli

    monkeypatch.delitem(sys.modules, "simulator.cli.commands")
    monkeypatch.setattr(sys, "meta_path", [_InterruptedLoad(), *sys.meta_path])
    with pytest.raises(SystemExit) as leaving:
        simulator.cli.run()
    assert leaving.value.code == 130
    assert capsys.readouterr().err == "brh-sim: interrupted while starting\n"
