"""``brh-sim`` explores, runs and replays any implementation: ``--impl MODULE:FACTORY`` in
process, ``--cmd "COMMAND"`` as a process speaking PROTOCOL.md (issue 10, item 7).

The process tests start real processes (the reference behind the protocol, ``python -m
conformance.protocol.reference``, and a mutant of it with ``--factory``); they stay short: two
devices, a few simulated minutes, one or two seeds.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.cli.explore import Implementation, choose_config, read_replay_file, write_replay

PROTOCOL_REFERENCE = shlex.join([sys.executable, "-m", "conformance.protocol.reference"])
MUTANT = "conformance.implementations.mutants:tombstone_not_propagated"
"""A helper that never uploads a deletion: without faults, most seeds diverge (seed 1 does)."""
PROTOCOL_MUTANT = f"{PROTOCOL_REFERENCE} --factory {MUTANT}"
REFERENCE_FACTORY = "conformance.implementations.reference:factory"
SMALL = ["--devices", "2", "--duration", "300"]
QUIET = [*SMALL, "--faults", "", "--seeds", "1", "--first-seed", "1", "-j", "1"]
"""One seed, no faults: the mutant fails it (its deletes never reach the other device)."""


def _failure_lines(out: str) -> list[str]:
    """The findings a FAIL printed (its indented lines, without the rerun hint)."""
    return [
        line[2:]
        for line in out.splitlines()
        if line.startswith("  ") and not line.startswith("  rerun:")
    ]


@pytest.mark.slow
def test_explore_cmd_passes_the_reference_over_the_protocol_in_parallel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 7: `explore --cmd` runs every device as a process speaking PROTOCOL.md,
    with the same checkers; the reference behind the protocol passes, with two worker
    processes each starting its own implementation processes."""
    argv = ["explore", "--seeds", "2", *SMALL, "-j", "2", "--out", str(tmp_path)]
    assert main([*argv, "--cmd", PROTOCOL_REFERENCE]) == 0
    captured = capsys.readouterr()
    assert "| 2 | 0 |" in captured.out, captured.out
    assert f"on `{PROTOCOL_REFERENCE}` in 2 processes" in captured.err
    assert not list(tmp_path.iterdir())  # nothing failed, nothing written


@pytest.mark.slow
def test_explore_cmd_fails_a_mutant_and_replay_reruns_it_on_the_same_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 7: a mutant behind the protocol fails a seed; its replay file records the
    command, and `brh-sim replay FILE` (no option) reruns that command and fails the same way,
    while `replay FILE --impl` runs another implementation instead."""
    assert main(["explore", *QUIET, "--out", str(tmp_path), "--cmd", PROTOCOL_MUTANT]) == 1
    out = capsys.readouterr().out
    replay = tmp_path / "seed-1.replay.json"
    assert f"replay a failure with: brh-sim replay {replay}" in out
    assert read_replay_file(replay)[1] == Implementation(cmd=PROTOCOL_MUTANT)
    recorded = json.loads(replay.read_text())["findings"]
    assert any(f.startswith("[SYNC-1] convergence") for f in recorded), recorded

    assert main(["replay", str(replay)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL replay of {replay} on `{PROTOCOL_MUTANT}` (seed 1): "), out
    assert _failure_lines(out) == recorded  # the same failure, finding for finding
    assert f"  rerun: brh-sim replay {replay} --report failure.html\n" in out

    assert main(["replay", str(replay), "--impl", REFERENCE_FACTORY]) == 0
    assert capsys.readouterr().out.startswith(
        f"PASS replay of {replay} on {REFERENCE_FACTORY} (seed 1)"
    )


def test_explore_impl_records_the_factory_and_replay_reruns_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 7: a failing seed of `explore --impl` writes a replay file naming the
    factory; `brh-sim replay FILE` without --impl reruns it on that factory (not on the
    reference), and fails the same way."""
    assert main(["explore", *QUIET, "--out", str(tmp_path), "--impl", MUTANT]) == 1
    capsys.readouterr()
    replay = tmp_path / "seed-1.replay.json"
    assert read_replay_file(replay)[1] == Implementation(impl=MUTANT)
    recorded = json.loads(replay.read_text())["findings"]
    assert main(["replay", str(replay)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL replay of {replay} on {MUTANT} (seed 1): "), out
    assert _failure_lines(out) == recorded


@pytest.mark.slow
def test_run_cmd_runs_a_scenario_over_the_protocol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 7: `brh-sim run FILE --cmd` runs a scenario file with every device a
    protocol process (a mutant that never uploads a deletion fails it); a failing run prints
    the command that reruns it with its --cmd."""
    scenario = tmp_path / "delete.toml"
    scenario.write_text(
        'name = "delete-reaches-the-tablet"\ncontexts = ["notes"]\n'
        '[[devices]]\nname = "phone"\n[[devices]]\nname = "tablet"\n'
        '[[steps]]\nat = 0\ndo = "put"\ndevice = "phone"\nkey = "k"\nvalue = 1\n'
        '[[steps]]\nat = 10\ndo = "sync"\ndevice = "phone"\n'
        '[[steps]]\nat = 20\ndo = "sync"\ndevice = "tablet"\n'
        '[[steps]]\nat = 30\ndo = "remove"\ndevice = "phone"\nkey = "k"\n'
        '[[steps]]\nat = 40\ndo = "sync"\ndevice = "phone"\n'
    )
    assert main(["run", str(scenario), "--cmd", PROTOCOL_REFERENCE]) == 0
    assert capsys.readouterr().out.startswith(f"PASS {scenario} on `{PROTOCOL_REFERENCE}`")
    assert main(["run", str(scenario), "--cmd", PROTOCOL_MUTANT]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL {scenario} on `{PROTOCOL_MUTANT}` (seed 1)"), out
    rerun = shlex.join(["brh-sim", "run", str(scenario), "--seed", "1", "--cmd", PROTOCOL_MUTANT])
    assert f"  rerun: {rerun} --report failure.html" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--cmd", "no-such-program-x --serve"], "--cmd: cannot run 'no-such-program-x': no such"),
        (["--cmd", "  "], "--cmd: the command is empty"),
        (["--cmd", "'unclosed"], '--cmd: command "\'unclosed" does not split'),
        (["--impl", "no_such_module_x:factory"], "--impl: implementation 'no_such_module_x:f"),
        (
            ["--impl", REFERENCE_FACTORY, "--cmd", "python"],
            "--impl and --cmd: give one implementation, not both",
        ),
    ],
)
def test_a_bad_implementation_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    """Issue 10, item 7 (and ERR-1 for brh-sim): `run`, `explore` and `replay` refuse a --cmd
    whose program does not exist, an --impl that does not load, and both at once: exit 2, one
    line naming the option and what is wrong, nothing run or written."""
    replay = write_replay(tmp_path / "r.replay.json", choose_config(1, duration=60))
    out = tmp_path / "out"
    for argv in (
        ["run", "w1-late-upload", "--seed", "1"],
        ["explore", "--seeds", "1", "-j", "1", "--out", str(out)],
        ["replay", str(replay)],
    ):
        assert main([*argv, *options]) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(f"brh-sim {argv[0]}: {message}"), captured.err
        assert captured.out == ""
    assert not out.exists()


@pytest.mark.slow
def test_a_command_that_does_not_speak_the_protocol_is_refused_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 7: a --cmd program that exists but does not answer the protocol's hello
    is bad usage (exit 2) naming --cmd and what the process did, before any seed runs."""
    silent = shlex.join([sys.executable, "-c", "pass"])
    assert main(["explore", "--seeds", "3", "-j", "1", "--cmd", silent]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"brh-sim explore: --cmd: implementation {silent!r}")
    assert "exited with status 0" in captured.err
    assert captured.out == ""


def test_a_replay_file_recording_an_implementation_that_no_longer_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 7: a replay file whose recorded implementation does not load is refused
    naming the option and the file it came from; a malformed record names the file."""
    config = choose_config(1, duration=60)
    gone = write_replay(
        tmp_path / "gone.replay.json", config, implementation=Implementation(cmd="no-such-x")
    )
    assert main(["replay", str(gone)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"brh-sim replay: --cmd (recorded in {gone}): cannot run 'no-such-x'")
    bad = tmp_path / "bad.replay.json"
    document = json.loads(gone.read_text())
    bad.write_text(json.dumps({**document, "implementation": {"binary": "x"}}))
    assert main(["replay", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"brh-sim replay: {bad}: implementation: expected")
