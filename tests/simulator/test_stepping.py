"""Running a world one step at a time, writing scenarios back as files, the ``expect`` verb and
the step checks (``check_each_step``)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from simulator.impl import load_factory
from simulator.scenarios.files import ScenarioFileError, ScenarioRun, Step, dumps, load_file, loads
from simulator.stepping import Stepper
from simulator.world import START
from tests.simulator.test_scenarios import EVERY_VERB

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "scenarios").glob("*.toml"))


def test_a_stepper_keeps_tasks_waiting_between_runs_and_time_still() -> None:
    """API-9: between two runs the loop is stopped and virtual time stands still; a task left
    behind goes on in the next run; close cancels what is left."""
    stepper = Stepper()
    seen: list[float] = []

    async def later() -> None:
        await asyncio.sleep(5)
        seen.append(asyncio.get_running_loop().time())

    async def start() -> asyncio.Task[None]:
        return asyncio.ensure_future(later())

    async def wait(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return asyncio.get_running_loop().time()

    task = stepper.run(start())
    assert stepper.loop.time() == START and not task.done()
    assert stepper.run(wait(3)) == START + 3 and seen == []
    assert stepper.run(wait(3)) == START + 6 and seen == [START + 5]
    forever = stepper.run(_start_forever())
    stepper.close()
    assert forever.cancelled() and stepper.closed
    stepper.close()  # harmless
    with pytest.raises(RuntimeError, match="closed"):
        stepper.run(wait(1))


async def _start_forever() -> asyncio.Task[None]:
    return asyncio.ensure_future(asyncio.sleep(10**9))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_dumps_writes_a_file_that_loads_back_to_the_same_scenario(path: Path) -> None:
    """Scenario files: ``loads(dumps(spec))`` is ``spec`` (options, devices, steps and all)."""
    spec = load_file(path)
    again = loads(dumps(spec), str(path))
    assert again == spec


def test_dumps_round_trips_every_verb_and_awkward_values() -> None:
    """Every verb, and strings and keys TOML must quote or escape, survive a round trip."""
    spec = loads(EVERY_VERB, "every-verb.toml")
    assert loads(dumps(spec), "every-verb.toml") == spec
    odd = 'a "quoted" \\ back\tslash\nnewline \x01 \x7f é 😀'
    value = {"plain": 1, "with space": [1.5, True, "s"], odd: {"": odd}, "n": -0.25e-7}
    step = Step(1, "put", 2.5, {"device": "phone", "key": odd, "value": value})
    tricky = dataclasses.replace(spec, description=odd, steps=(step,), devices=spec.devices)
    assert loads(dumps(tricky), "every-verb.toml") == tricky


def test_dumps_refuses_what_a_file_cannot_hold() -> None:
    """TOML has no null and no NaN: such a value is an error, not a silently different file."""
    spec = loads(EVERY_VERB, "every-verb.toml")
    for value in (None, [1, None], float("nan")):
        step = Step(1, "put", None, {"device": "phone", "key": "k", "value": value})
        with pytest.raises(ValueError, match="cannot be written"):
            dumps(dataclasses.replace(spec, steps=(step,)))


def _file(tmp_path: Path, steps: str, *, checks: bool = True) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\n'
        + ("check_each_step = true\n" if checks else "")
        + '[[devices]]\nname = "phone"\n[[devices]]\nname = "tablet"\n'
        + steps
    )
    return path


def _steps(*lines: str) -> str:
    return "".join(f"[[steps]]\n{line}\n" for line in lines)


def test_expect_checks_the_last_sync_and_the_app_models(tmp_path: Path) -> None:
    """CB-6, RETRY-1 written as a file: a refusing app's sync makes one callback and does not
    complete; after time alone the change has arrived; a wrong expectation is a finding that
    names its clause, its step and what was seen."""
    path = _file(
        tmp_path,
        _steps(
            'do = "put"\ndevice = "phone"\nkey = "a"\nvalue = 1',
            'do = "put"\ndevice = "phone"\nkey = "b"\nvalue = 2',
            'do = "sync"\ndevice = "phone"',
            'do = "behave"\ndevice = "tablet"\nmode = "refuse"\nrefusals = 1',
            'do = "sync"\ndevice = "tablet"',
            'do = "expect"\ndevice = "tablet"\ncompleted = false\ncallbacks = 1\nclause = "CB-6"',
            'do = "expect"\ndevice = "tablet"\ncompleted = true\ncallbacks = 2\nclause = "API-4"',
            'do = "advance"\nseconds = 600',
            'do = "expect"\ndevice = "tablet"\nsame_as = "phone"\nclause = "RETRY-1"',
            'do = "put"\ndevice = "phone"\nkey = "c"\nvalue = 3',
            'do = "expect"\ndevice = "tablet"\nsame_as = "phone"',
        ),
    )
    findings = [str(f) for f in load_file(path).run(1).findings]
    assert len(findings) == 3, findings
    assert (
        "[API-4] expect" in findings[0]
        and "step 7: its last sync did not complete" in (findings[0])
    )
    assert "step 7: its last sync made 1 callback(s), expected 2" in findings[1]
    assert "[SYNC-1] expect" in findings[2] and "tablet/notes/c" in findings[2]
    assert "the app shows nothing, phone's app 3" in findings[2]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('do = "expect"\ndevice = "phone"', "says nothing to expect"),
        ('do = "expect"\ndevice = "phone"\nsame_as = "laptop"', "field 'same_as': no device"),
        ('do = "expect"\ndevice = "phone"\ncompleted = 1', "field 'completed': must be true"),
        ('do = "expect"\ndevice = "phone"\ncallbacks = 1\nclause = "x"', "field 'clause'"),
    ],
)
def test_bad_expectations_are_refused_before_running(
    tmp_path: Path, step: str, message: str
) -> None:
    """ERR-1 (for scenario files): a wrong ``expect`` step names its step and field."""
    with pytest.raises(ScenarioFileError, match=message):
        load_file(_file(tmp_path, _steps(step)))


def test_settle_and_checkpoint_restart_crashed_devices_for_later_steps(tmp_path: Path) -> None:
    """A device crashed before ``settle`` (or ``checkpoint``) runs again after it: later steps
    may use it; ``settle`` may come before the end, and both find nothing on the reference."""
    for verb in ("settle", "checkpoint"):
        path = _file(
            tmp_path,
            _steps(
                'do = "crash"\ndevice = "phone"',
                f'do = "{verb}"',
                'do = "put"\ndevice = "phone"\nkey = "a"\nvalue = 1',
                'do = "sync"\ndevice = "phone"',
            ),
        )
        assert load_file(path).run(1).findings == []


def test_checkpoint_works_on_another_implementation(tmp_path: Path) -> None:
    """SYNC-1: ``checkpoint`` reads a helper's sync result as a bool, so it runs on any
    implementation (a factory's helper returns a plain bool)."""
    path = _file(
        tmp_path,
        _steps(
            'do = "put"\ndevice = "phone"\nkey = "a"\nvalue = 1',
            'do = "checkpoint"',
            'do = "expect"\ndevice = "tablet"\nsame_as = "phone"',
        ),
    )
    factory = load_factory("tests.machine_impls:memory")
    outcome = load_file(path).run(1, factory=factory, workdir=tmp_path)
    assert outcome.findings == []


@pytest.mark.parametrize(
    ("impl", "clause", "text"),
    [
        ("forgets_deletes", "CB-5", "phone/notes/a: after a completed pass the app model shows"),
        ("invents_data", "API-2", "phone/notes/a: the local copy holds '1!'"),
    ],
)
def test_check_each_step_finds_what_the_end_checks_cannot_place(
    tmp_path: Path, impl: str, clause: str, text: str
) -> None:
    """CB-5, API-2 after every step, on any implementation: a helper that forgets deletes
    leaves the app and its copy apart right after a completed pass; one that stores data no
    app wrote is caught at that very step. Without ``check_each_step`` the steps are not
    checked."""
    steps = _steps(
        'do = "put"\ndevice = "phone"\nkey = "a"\nvalue = "1"',
        'do = "remove"\ndevice = "phone"\nkey = "a"',
        'do = "sync"\ndevice = "phone"',
    )
    factory = load_factory(f"tests.machine_impls:{impl}")
    checked = load_file(_file(tmp_path, steps)).run(1, factory=factory, workdir=tmp_path / "c")
    first = str(checked.findings[0])
    assert first.startswith(f"[{clause}]") and text in first, first
    unchecked = load_file(_file(tmp_path, steps, checks=False))
    outcome = unchecked.run(1, factory=factory, workdir=tmp_path / "u")
    assert not any(f.checker in ("no invented data", "completed pass") for f in outcome.findings)


def test_a_scenario_run_is_the_same_stepped_by_hand(tmp_path: Path) -> None:
    """API-9: stepping a :class:`ScenarioRun` by hand, as the state machine does, gives the
    byte-identical trace that running the file gives."""
    spec = load_file(EXAMPLES[0])
    by_file, by_hand = tmp_path / "file.jsonl", tmp_path / "hand.jsonl"
    spec.run(5, trace_path=by_file)
    run = ScenarioRun(
        5,
        contexts=spec.contexts,
        options=spec.options,
        devices=spec.devices,
        trace_path=by_hand,
        heading=spec.heading,
    )
    try:
        for step in spec.steps:
            run.step(step)
        run.finish()
    finally:
        run.close()
    run.close()  # harmless
    assert by_hand.read_bytes() == by_file.read_bytes()
