"""The conformance state machine, its recordings and their replay with ``brh-sim run``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import Phase

from conformance.harness import Sim, Target
from conformance.machine import SyncMachine, run_machine
from simulator.cli import main
from simulator.impl import load_factory

IMPLS = "tests.machine_impls"


def _sim(tmp_path: Path, impl: str, profile: str = "fast") -> Sim:
    return Sim(
        target=Target(impl, load_factory(impl), f"--brh-impl={impl}"),
        seed=3,
        workdir=tmp_path,
        profile=profile,
    )


def _failure(sim: Sim, **overrides: object) -> tuple[str, str]:
    """Run the machine expecting a failure: (its message, the notes Hypothesis printed)."""
    with pytest.raises(AssertionError) as caught:
        run_machine(sim, **overrides)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    return str(caught.value), notes


def test_the_machine_passes_on_the_reference_through_a_factory(tmp_path: Path) -> None:
    """SYNC-1, CB-5, CB-6, RETRY-1: the reference passes the machine run as any Python
    implementation is (through its factory, stores on disk), not only in process."""
    sim = _sim(tmp_path, "conformance.implementations.reference:factory")
    stats = run_machine(sim, max_examples=3, stateful_step_count=12)
    assert sim.runs == stats.examples == 3
    assert stats.steps >= 3 * 10  # the final phase alone has 10 steps
    assert not (tmp_path / "state-machine-failure.toml").exists()


@pytest.mark.slow
def test_the_machine_passes_on_the_reference_over_the_process_protocol(tmp_path: Path) -> None:
    """SYNC-1, CB-5, CB-6, RETRY-1: the machine runs over PROTOCOL.md too (the reference as a
    process per device installation), so the suite's every test works through the protocol
    (a few examples here: each one starts several processes)."""
    import sys

    from conformance.protocol.client import command_factory

    command = [sys.executable, "-m", "conformance.protocol.reference"]
    sim = Sim(
        target=Target(" ".join(command), command_factory(command)),
        seed=3,
        workdir=tmp_path,
    )
    stats = run_machine(sim, max_examples=2, stateful_step_count=10)
    assert stats.examples == 2 and stats.steps >= 2 * 10
    assert not (tmp_path / "state-machine-failure.toml").exists()


@pytest.mark.parametrize(
    ("impl", "clause"),
    [("forgets_deletes", "CB-5"), ("invents_data", "API-2")],
)
def test_a_failure_prints_a_scenario_that_replays_to_the_same_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], impl: str, clause: str
) -> None:
    """CB-5, API-2: a broken implementation fails the machine; the failure comes with a scenario
    file (printed and written to the test's directory) and a ``brh-sim run FILE --seed N
    --impl ...`` command, and running that command fails with the very same finding (same
    clause, device, key and virtual time: the steps replay exactly)."""
    name = f"{IMPLS}:{impl}"
    sim = _sim(tmp_path, name)
    message, notes = _failure(
        sim, max_examples=60, phases=[Phase.explicit, Phase.generate], stateful_step_count=20
    )
    assert f"[{clause}]" in message
    path = tmp_path / "state-machine-failure.toml"
    text = path.read_text()
    assert text in notes and "check_each_step = true" in text
    command = re.search(r"replay it: (brh-sim run .*)", notes)
    assert command is not None, notes
    words = command.group(1).split()
    assert words[:3] == ["brh-sim", "run", str(path)] and words[-2:] == ["--impl", name]
    capsys.readouterr()
    assert main(words[1:]) == 1
    out = capsys.readouterr().out
    first = next(line.strip() for line in message.splitlines() if line.strip().startswith("["))
    assert out.startswith("FAIL ") and first in out, (first, out)


def test_shrinking_prints_the_smallest_scenario_that_shows_a_forgotten_delete(
    tmp_path: Path,
) -> None:
    """SYNC-1, CB-5: with shrinking, the printed scenario is (about) the smallest one: write a
    key, delete it, and the next sync (CB-5 after the step) or the final settle (SYNC-1) finds
    the app without the key and the helper still holding it (a sync before them is the one
    step Hypothesis may leave in)."""
    sim = _sim(tmp_path, f"{IMPLS}:forgets_deletes")
    message, _ = _failure(sim, max_examples=60, stateful_step_count=10)
    text = (tmp_path / "state-machine-failure.toml").read_text()
    # the move that writes, lets time pass and deletes may shrink to it (put, advance, remove)
    verbs = [v for v in re.findall(r'do = "(\w+)"', text) if v != "advance"]
    assert verbs[-3:-1] == ["put", "remove"] and len(verbs) <= 4, text
    assert verbs[-1] in ("sync", "settle"), text
    assert "k0" in message


def test_the_same_seed_finds_the_same_failure(tmp_path: Path) -> None:
    """API-9: Hypothesis is seeded from --brh-seed and keeps no database, so two runs with one
    seed record the same failing scenario, byte for byte."""
    texts = []
    for run in ("one", "two"):
        sim = _sim(tmp_path / run, f"{IMPLS}:invents_data")
        _failure(sim, max_examples=5, phases=[Phase.generate])
        texts.append((tmp_path / run / "state-machine-failure.toml").read_text())
    assert texts[0] == texts[1]


def test_profiles_differ_in_effort() -> None:
    """The fast profile is small; ci and deep search more. None derandomizes (run_machine
    seeds every run, and derandomize would turn the example database off) and all replay
    saved examples first (the database itself comes from the Sim: ``--brh-example-db``)."""
    from hypothesis import settings

    fast, ci, deep = (settings.get_profile(f"brh-{p}") for p in ("fast", "ci", "deep"))
    assert fast.max_examples <= 30 and fast.stateful_step_count <= 30
    assert fast.max_examples < ci.max_examples < deep.max_examples
    assert all(p.deadline is None and p.database is None for p in (fast, ci, deep))
    assert all(not p.derandomize and Phase.reuse in p.phases for p in (fast, ci, deep))


def test_the_replay_command_names_the_profile() -> None:
    """A failing test's pytest replay command repeats a profile other than the default."""
    sim = Sim(Target("reference", None), seed=4, workdir=Path("."), nodeid="t.py::x")
    assert sim.replay_command() == "pytest t.py::x --brh-seed=4"
    sim.profile = "deep"
    assert sim.replay_command() == "pytest t.py::x --brh-seed=4 --brh-profile=deep"


def test_the_final_refusal_check_holds_after_a_clock_stepped_back(tmp_path: Path) -> None:
    """CB-6, RETRY-1 (a regression): a device whose clock stepped back gives its new writes
    the modification date of its old ones (ORD-1); the app model refuses "each change once" by
    key and date, so the final check must write keys no step used, or the app would accept a
    change it took for one already refused and the check would see two callbacks."""
    machine = SyncMachine(_sim(tmp_path, f"{IMPLS}:memory"))
    machine.start(world_seed=0, count=2, contexts=1, offsets=[0.0, 0.0, 0.0], shared=False)
    machine.app_work(0, [("put", 0, "k0", 0)])
    machine.clock(0, -7200.0)
    machine.app_work(0, [("sync", 0, "k0", 0)])
    machine.app(1, "refuse", 1, 0.3, 0.5)
    machine.app_work(0, [("put", 0, "k0", 0)])
    machine.app_work(1, [("sync", 0, "k0", 0)])
    machine.nothing_found()
    machine.teardown()
    assert not machine.failed
    assert [s.fields.get("key") for s in machine.steps if s.verb == "put"][-2:] == ["z0", "z1"]
