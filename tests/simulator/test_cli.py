"""``brh-sim``: the commands a person types, their output and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import brh.helper
from brh.core import RULES, Action, Decision, decide
from brh.store import EntryState, Record
from brh.wire import RemoteDoc
from simulator import scenarios
from simulator.cli import main
from simulator.cli.explore import choose_config, write_replay
from simulator.scenarios import registry
from simulator.world import ScenarioError, World, simulate

ROOT = Path(__file__).resolve().parents[2]


def test_list_names_every_scenario_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    """`brh-sim list`: one scenario per line, name first, then its description."""
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == scenarios.names()
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_run_a_named_scenario_with_trace_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`brh-sim run NAME --seed N --report F`: PASS, a trace and a timeline are written."""
    report = tmp_path / "w1.html"
    assert main(["run", "w1-late-upload", "--seed", "2", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS w1-late-upload (seed 2)")
    assert report.exists() and report.with_suffix(".trace.jsonl").exists()
    assert "<svg" in report.read_text()


def test_run_a_scenario_file_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    """`brh-sim run FILE`; an unknown name exits 2 with a hint."""
    assert main(["run", str(ROOT / "scenarios" / "late-upload.toml"), "--seed", "1"]) == 0
    assert main(["run", "no-such-scenario", "--seed", "1"]) == 2
    assert "brh-sim list" in capsys.readouterr().err


def test_explore_prints_a_summary_and_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`brh-sim explore`: a summary table; `--report-first` leaves a replayable run."""
    out_dir = tmp_path / "out"
    code = main(
        ["explore", "--seeds", "3", "--duration", "600", "--out", str(out_dir), "--report-first"]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "| 3 | 0 |" in captured.out and "3/3 seeds" in captured.err
    assert (out_dir / "seed-1.html").exists()
    assert not (out_dir / "seed-2.trace.jsonl").exists()  # passing traces are not kept
    assert main(["replay", str(out_dir / "seed-1.replay.json")]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["replay", str(bad)]) == 2


def test_explore_reports_failures_by_clause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper with a bug: exit 1, failures counted by clause, a replay file and a report for
    each failing seed, and the replay reproduces the failure."""

    def deaf(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
        decision = decide(local, remote)
        return Decision(Action.SKIP, remote) if decision.action is Action.MODIFY else decision

    monkeypatch.setattr(brh.helper, "RULES", replace(RULES, decide=deaf))
    out_dir = tmp_path / "out"
    # -j 1: the patched helper lives in this process only, not in fresh worker processes
    command = ["explore", "--seeds", "4", "--duration", "1800", "--out", str(out_dir), "-j", "1"]
    assert main(command) == 1
    out = capsys.readouterr().out
    assert "| SYNC-1 |" in out and "replay a failure with: brh-sim replay" in out
    replays = sorted(out_dir.glob("*.replay.json"))
    assert replays and all(p.with_suffix("").with_suffix(".html").exists() for p in replays)
    assert main(["replay", str(replays[0])]) == 1


def test_same_seed_same_trace_whatever_the_hash_seed(tmp_path: Path) -> None:
    """Determinism: Python's hash randomisation (set order) does not change a run's trace."""
    traces = []
    for hash_seed in ("1", "2"):
        trace = tmp_path / f"trace-{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator.cli",
                "run",
                "two-phones-and-a-tablet",
                "--seed",
                "4",
                "--trace",
                str(trace),
            ],
            check=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
        )
        traces.append(trace.read_bytes())
    assert traces[0] == traces[1]


REFERENCE_FACTORY = "conformance.implementations.reference:factory"


@pytest.mark.parametrize(
    ("impl", "message"),
    [
        ("nodots", "--impl: implementation 'nodots': expected 'package.module:factory'"),
        ("no_such_module_x:factory", "--impl: implementation 'no_such_module_x:factory': cannot"),
        ("simulator.impl:nothing_here", "has no attribute 'nothing_here'"),
    ],
)
def test_a_bad_impl_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], impl: str, message: str
) -> None:
    """ERR-1 (for brh-sim): `run` and `replay` with a bad --impl exit 2 with a message naming
    --impl and what is wrong, and run nothing."""
    replay = tmp_path / "r.replay.json"
    write_replay(replay, choose_config(1, duration=60))
    for argv in (
        ["run", str(ROOT / "scenarios" / "late-upload.toml"), "--seed", "1", "--impl", impl],
        ["run", "w1-late-upload", "--seed", "1", "--impl", impl],
        ["replay", str(replay), "--impl", impl],
    ):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == "", captured
        assert captured.err.startswith(f"brh-sim {argv[0]}: --impl: ")


def test_run_and_replay_on_another_implementation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run FILE --impl`, `run NAME --impl` and `replay FILE --impl` run every device on the
    named implementation (here the reference through its factory, stores on disk)."""
    replay = tmp_path / "r.replay.json"
    write_replay(replay, choose_config(2, duration=300))
    for argv in (
        ["run", str(ROOT / "scenarios" / "late-upload.toml"), "--seed", "1"],
        ["run", "w2-clock-skew", "--seed", "1"],
        ["replay", str(replay)],
    ):
        assert main([*argv, "--impl", REFERENCE_FACTORY]) == 0
        out = capsys.readouterr().out
        assert out.startswith("PASS ") and f" on {REFERENCE_FACTORY} (seed " in out, out


def test_impl_runs_the_named_implementation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--impl is not ignored: a helper that forgets deletes fails a file the reference passes,
    with the convergence finding for the deleted key."""
    path = tmp_path / "delete.toml"
    path.write_text(
        'name = "delete"\n[[devices]]\nname = "phone"\n[[devices]]\nname = "tablet"\n'
        '[[steps]]\ndo = "put"\ndevice = "phone"\nkey = "x"\nvalue = 1\n'
        '[[steps]]\ndo = "sync"\ndevice = "phone"\n'
        '[[steps]]\ndo = "remove"\ndevice = "phone"\nkey = "x"\n'
    )
    assert main(["run", str(path), "--seed", "1"]) == 0
    assert main(["run", str(path), "--seed", "1", "--impl", "tests.machine_impls:memory"]) == 0
    capsys.readouterr()
    broken = "tests.machine_impls:forgets_deletes"
    assert main(["run", str(path), "--seed", "1", "--impl", broken]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL ") and "phone/notes/x" in out, out


def test_impl_finds_an_implementation_in_the_current_directory(tmp_path: Path) -> None:
    """`brh-sim run FILE --impl mymodule:factory` finds mymodule.py where the command runs, as
    `python -m` would (the installed brh-sim script does not put that directory on the path)."""
    (tmp_path / "localimpl.py").write_text(
        "from conformance.implementations.reference import factory\n"
    )
    script = Path(sys.executable).with_name("brh-sim")
    scenario = ROOT / "scenarios" / "late-upload.toml"
    done = subprocess.run(
        [str(script), "run", str(scenario), "--seed", "1", "--impl", "localimpl:factory"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS ") and " on localimpl:factory " in done.stdout


BIG = (
    'name = "big"\n[[devices]]\nname = "phone"\n'
    '[[steps]]\ndo = "put"\ndevice = "phone"\nkey = "small"\nvalue = 1\n'
    '[[steps]]\nat = 10\ndo = "put"\ndevice = "phone"\nkey = "big-one"\nvalue = 2\n'
    '[[steps]]\nat = 20\ndo = "put"\ndevice = "phone"\nkey = "never-reached"\nvalue = 3\n'
)


def test_a_step_that_raises_is_a_fail_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`brh-sim run FILE`: a step that raises ends in a FAIL line naming the step, the
    exception, the time and the seed, and the command that reruns it (not a traceback); exit
    1; the trace so far is written, ending with a note, and the report shows the failure."""
    path, trace, report = tmp_path / "big.toml", tmp_path / "t.jsonl", tmp_path / "r.html"
    path.write_text(BIG)
    impl = "tests.machine_impls:disk_full"
    argv = ["run", str(path), "--seed", "3", "--impl", impl]
    assert main([*argv, "--trace", str(trace), "--report", str(report)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == (
        f"FAIL {path} on {impl} (seed 3): step 2 (put) raised DiskFullError: no space left to "
        "store 'big-one' at t=10.000s"
    )
    assert lines[1] == f"  rerun: brh-sim run {path} --seed 3 --impl {impl}"
    assert lines[2] == f"  with its traceback: brh-sim -v run {path} --seed 3 --impl {impl}"
    assert "Traceback" not in captured.out + captured.err
    last = json.loads(trace.read_text().splitlines()[-1])
    assert last["kind"] == "note" and last["text"].startswith("step 2 (put) raised DiskFullError")
    assert "never-reached" not in trace.read_text()  # the run stopped at the failing step
    assert "step 2 (put) raised DiskFullError" in report.read_text()
    assert main(["-v", *argv]) == 1  # -v: the traceback too, on stderr
    captured = capsys.readouterr()
    assert captured.out.startswith(f"FAIL {path} on {impl} (seed 3): step 2 (put) raised")
    assert "Traceback" in captured.err and "DiskFullError: no space left" in captured.err


def test_a_named_scenario_that_raises_names_its_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`brh-sim run NAME`: a Python scenario that raises is named by its function's line."""

    async def explodes(world: World) -> None:
        world.add_device("phone")
        await world.advance(5)
        world.device("tablet")

    info = scenarios.ScenarioInfo("explodes", "asks for a device that never joined", explodes)
    monkeypatch.setitem(registry._REGISTRY, "explodes", info)
    assert main(["run", "explodes", "--seed", "2"]) == 1
    out = capsys.readouterr().out
    line = explodes.__code__.co_firstlineno + 3
    assert out.startswith(
        f"FAIL explodes (seed 2): scenario explodes, line {line} "
        "(world.device(\"tablet\")) raised UnknownDeviceError: no device 'tablet'; devices: "
        "'phone' at t=5.000s\n  rerun: brh-sim run explodes --seed 2\n"
    ), out


def test_a_replay_whose_settle_phase_raises_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`brh-sim replay FILE --impl`: an implementation whose sync raises fails the replay with
    a FAIL line naming the step (here the settle phase: this short workload never syncs), the
    seed and the command that replays it."""
    replay = tmp_path / "r.replay.json"
    write_replay(replay, choose_config(2, duration=60))
    impl = "tests.machine_impls:sync_crashes"
    assert main(["replay", str(replay), "--impl", impl]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL replay of {replay} on {impl} (seed 2): "), out
    assert "the settle phase raised RuntimeError: the sync engine crashed at t=" in out
    assert f"  rerun: brh-sim replay {replay} --impl {impl}\n" in out


def test_simulate_names_the_settle_phase_when_it_raises(tmp_path: Path) -> None:
    """The API under the CLI: simulate() raises ScenarioError naming the settle phase, the
    time and the seed, with the implementation's exception as its cause."""
    from tests.machine_impls import sync_crashes

    async def quiet(world: World) -> None:
        world.add_device("phone")
        await world.advance(1)

    with pytest.raises(ScenarioError) as raised:
        simulate(quiet, seed=4, factory=sync_crashes, workdir=tmp_path)
    error = raised.value
    assert (error.step, error.seed) == ("the settle phase", 4)
    assert error.at is not None and error.at >= 1.0
    assert isinstance(error.__cause__, RuntimeError) and error.error is error.__cause__
