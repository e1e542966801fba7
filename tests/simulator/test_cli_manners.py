"""``brh-sim`` as a command-line user expects it (issue 12, the CLI): a default seed, options
after the subcommand, ``--version``, help for every option with its default, and a failing run
that says how to rerun it and where its files are."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.cli.commands import parser

LEGACY = "conformance.implementations.legacy:factory"


def test_run_needs_no_seed_and_prints_the_one_it_used(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "delete-what-was-just-given"]) == 0
    assert "(seed 1)" in capsys.readouterr().out


def test_verbose_works_before_and_after_the_subcommand() -> None:
    cli = parser()
    for argv in (["-v", "run", "x"], ["run", "x", "-v"], ["run", "-v", "x"]):
        assert getattr(cli.parse_args(argv), "verbose", False), argv
    assert not getattr(cli.parse_args(["run", "x"]), "verbose", False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("brh-sim ")


def _parsers(top: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [top]
    for action in top._actions:  # argparse keeps subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.values())
    return found


def test_every_option_has_help_and_shows_its_default() -> None:
    for cli in _parsers(parser()):
        text = " ".join(cli.format_help().split())  # argparse wraps lines
        for action in cli._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = action.option_strings or action.dest
            assert action.help, f"{cli.prog}: {name} has no help"
            if action.default not in (None, False, argparse.SUPPRESS):
                shown = f"(default: {action.default})" in text or "default" in action.help
                assert shown, f"{cli.prog}: {name} does not show its default"


def test_a_failing_run_says_how_to_rerun_it_and_where_its_files_are(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = tmp_path / "w2.jsonl"
    code = main(["run", "w2-clock-skew", "--impl", LEGACY, "--trace", str(trace)])
    out = capsys.readouterr().out
    assert code == 1
    assert (
        f"  rerun: brh-sim run w2-clock-skew --seed 1 --impl {LEGACY} --report failure.html" in out
    )
    assert f"files: trace {trace}" in out and out.count("files:") == 1
