"""The fault vocabulary (issue 14, item 6): each fault has one name, the verb that turns it on,
and an off verb; the World, scenario files, traces, the explorer and the timeline report all
use them (the table is :mod:`simulator.faults`); misspelt names get errors that name the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import main
from simulator.cli.explore import SWITCHES, SwarmConfig, choose_config, run_config
from simulator.faults import FAULTS, UnknownFaultError, fault, markdown_table
from simulator.report.glyphs import FAULT_COLOURS, legend_svg
from simulator.scenarios.files import VERBS, ScenarioFileError, loads
from simulator.timeloop import run
from simulator.world import UnknownDeviceError, World, simulate
from tests.simulator.test_report import ev, render

README = Path(__file__).resolve().parents[2] / "README.md"
SCENARIO_FILES = README.with_name("docs") / "scenario-files.md"

STRENGTH: dict[str, dict[str, Any]] = {
    "lossy": {"requests": 0.2},
    "slow_link": {"latency": (1.0, 2.0)},
    "server_errors": {"before": 0.1},
    "upsert_race": {"seconds": 0.5},
    "slow_vault": {"seconds": 1.0},
    "commit_lag": {"seconds": 2.0},
}


def _fault_lines(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["kind"] == "fault"]


def test_each_fault_is_one_world_verb_pair_and_one_trace_name(tmp_path: Path) -> None:
    """Issue 14 item 6: every fault of the table is turned on by the World method of its name
    and off by its off verb (or by the settle phase's heal_all, in the table's order); its
    trace lines carry its name; ``fault_on`` says whether it is on."""

    async def scenario(world: World) -> None:
        world.add_device("phone")
        for spec in FAULTS.values():
            target = ["phone"] if spec.per_device else []
            assert not world.fault_on(spec.name, *target)
            getattr(world, spec.name)(*target, **STRENGTH.get(spec.name, {}))
            assert world.fault_on(spec.name, *target)
            getattr(world, spec.off)(*target)
            assert not world.fault_on(spec.name, *target)
            getattr(world, spec.name)(*target, **STRENGTH.get(spec.name, {}))
        world.heal_all()
        assert not any(
            world.fault_on(f.name, *(["phone"] if f.per_device else [])) for f in FAULTS.values()
        )

    trace = tmp_path / "trace.jsonl"
    assert simulate(scenario, seed=1, trace_path=trace).ok
    seen = [(line["fault"], line["target"], line["on"]) for line in _fault_lines(trace)]
    targets = {f.name: "phone" if f.per_device else "vault" for f in FAULTS.values()}
    toggled = [(name, targets[name], on) for name in FAULTS for on in (True, False, True)]
    healed = [(name, targets[name], False) for name in FAULTS]
    assert seen == toggled + healed


def test_each_fault_has_its_two_verbs_in_scenario_files_and_the_format_manual() -> None:
    """Issue 14 item 6: the scenario file verbs are the World's, for every fault, and the
    format manual (docs/scenario-files.md) names both."""
    manual = SCENARIO_FILES.read_text(encoding="utf-8")
    for spec in FAULTS.values():
        for verb in (spec.name, spec.off):
            assert verb in VERBS, verb
            assert f"`{verb}`" in manual, verb
            assert callable(getattr(World, verb)), verb


def test_the_explorer_the_legend_and_the_readme_use_the_table() -> None:
    """Issue 14 item 6: the explorer's switches are the faults' names (all but slow_vault,
    which would change every seed's run), the report colours and the legend list every fault
    by name with what it does, and the README shows the table as the code has it."""
    assert {f for f in SWITCHES if f in FAULTS} == set(FAULTS) - {"slow_vault"}
    legend = legend_svg()
    for spec in FAULTS.values():
        assert spec.name in FAULT_COLOURS
        assert f"{spec.name}: {spec.does}" in legend
    assert markdown_table() in README.read_text(encoding="utf-8")


def test_a_misspelt_device_gets_an_error_naming_the_fix() -> None:
    """Issue 14 item 6: ``world.partition("tablett")`` raised a bare KeyError; every World
    fault verb now names the closest device and lists them, and changes nothing."""

    async def main() -> None:
        world = World(1)
        world.add_device("phone")
        world.add_device("tablet")
        with pytest.raises(UnknownDeviceError) as error:
            world.partition("tablett")
        assert str(error.value) == (
            "no device 'tablett'; did you mean 'tablet'? devices: 'phone', 'tablet'"
        )
        assert isinstance(error.value, KeyError)
        for verb in ("heal", "cut_answers", "disconnect", "fast_link", "expire_token"):
            with pytest.raises(UnknownDeviceError, match="did you mean 'phone'"):
                getattr(world, verb)("phnoe")
        with pytest.raises(UnknownDeviceError, match="did you mean 'phone'"):
            world.lossy("Phone", requests=0.5)
        with pytest.raises(UnknownDeviceError, match="did you mean 'phone'"):
            world.device("phon")
        with pytest.raises(UnknownDeviceError, match="did you mean 'vault'"):
            world.jump_clock("vualt", 10)
        with pytest.raises(UnknownDeviceError) as error:
            world.fault_on("partition", "laptop")
        assert str(error.value) == "no device 'laptop'; devices: 'phone', 'tablet'"
        with pytest.raises(UnknownFaultError, match="did you mean 'partition'"):
            world.fault_on("partiton", "phone")
        assert set(world.server.expired) == set()
        assert world.trace.counts["fault"] == 0
        await world.close()

    run(main())


def test_a_misspelt_or_former_fault_name_gets_its_fix() -> None:
    """Issue 14 item 6: an unknown fault name suggests the closest one, a former one (a trace
    kind or explore switch of before) its new name."""
    with pytest.raises(UnknownFaultError, match="did you mean 'take_down'"):
        fault("takedown")
    with pytest.raises(UnknownFaultError, match="'vault_down' is now called 'take_down'"):
        fault("vault_down")


@pytest.mark.parametrize(
    ("call", "fix"),
    [
        (lambda w: w.lossy("phone"), "lossless('phone') turns the loss off"),
        (lambda w: w.lossy("phone", requests=0.0, answers=0), "lossless"),
        (lambda w: w.server_errors(), "stop_server_errors() turns the errors off"),
        (lambda w: w.upsert_race(0), "stop_upsert_race() ends it"),
        (lambda w: w.slow_vault(0.0), "fast_vault() ends it"),
        (lambda w: w.commit_lag(0), "commit_at_once() ends it"),
        (lambda w: w.commit_lag(5.0), "below the devices' overlap (5 s), got 5.0: SPEC SYNC-4"),
        (lambda w: w.commit_lag(1.0, exact=1), "exact must be true or false"),
        (lambda w: w.lossy("phone", requests=1.5), "requests must be a probability"),
        (lambda w: w.slow_link("phone", (3.0, 1.0)), "low <= high"),
        (lambda w: w.slow_vault(-1), "seconds must be seconds >= 0"),
    ],
)
def test_a_fault_turned_on_with_no_strength_names_its_off_verb(call: Any, fix: str) -> None:
    """Issue 14 item 6: faults that were turned off by passing 0 have an off verb now; an on
    verb given 0 (or a strength out of range) is refused, naming the fix, and changes
    nothing."""

    async def main() -> None:
        world = World(1)
        world.add_device("phone")
        with pytest.raises(ValueError, match=fix.replace("(", r"\(").replace(")", r"\)")):
            call(world)
        on = [f for f in FAULTS.values() if world.fault_on(f.name, *(["phone"] * f.per_device))]
        assert on == [] and world.trace.counts["fault"] == 0
        await world.close()

    run(main())


_FILE = 'name = "f"\n[[devices]]\nname = "phone"\n[[devices]]\nname = "tablet"\n[[steps]]\n'


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            'do = "lossy"\ndevice = "phone"',
            "step 1 (lossy): field 'requests': turns nothing on: give requests or answers "
            "above 0 (do = 'lossless' turns the fault off)",
        ),
        (
            'do = "server_errors"\nbefore = 0',
            "field 'before': turns nothing on: give before or after above 0 "
            "(do = 'stop_server_errors' turns the fault off)",
        ),
        ('do = "upsert_race"\nseconds = 0', "(do = 'stop_upsert_race' turns the fault off)"),
        ('do = "slow_vault"\nseconds = 0', "(do = 'fast_vault' turns the fault off)"),
        (
            'do = "commit_lag"\nseconds = 0\nexact = true',
            "field 'seconds': turns nothing on: give seconds above 0 "
            "(do = 'commit_at_once' turns the fault off)",
        ),
        (
            'do = "parition"\ndevice = "phone"',
            "field 'do': unknown verb 'parition'; did you mean 'partition'? known: ",
        ),
        ('do = "vault_down"', "unknown verb 'vault_down'; 'vault_down' is now called 'take_down'"),
        ('do = "one_way"', "'one_way' is now called 'cut_answers'"),
        (
            'do = "partition"\ndevice = "tablett"',
            "field 'device': no device named 'tablett' at this point (did you mean 'tablet'? "
            "devices: phone, tablet)",
        ),
        (
            'do = "jump_clock"\ndevice = "vualt"\nseconds = 1',
            "(did you mean 'vault'? devices: phone, tablet)",
        ),
    ],
)
def test_a_scenario_file_mistake_names_the_fix(step: str, expected: str) -> None:
    """Issue 14 item 6: in a scenario file, a fault verb given no strength names its off verb
    (the old way to turn lossy, server_errors and upsert_race off), an unknown or former verb
    and a misspelt device name their fix."""
    with pytest.raises(ScenarioFileError) as error:
        loads(_FILE + step, "f.toml")
    assert expected in str(error.value), str(error.value)


def test_explore_takes_faults_by_name_and_refuses_misspelt_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14 item 6: ``brh-sim explore --faults`` runs every seed with exactly the switches
    named; a misspelt or former one is refused (exit 2) naming the fix, before anything runs."""
    assert main(["explore", "--seeds", "1", "--faults", "partiton"]) == 2
    err = capsys.readouterr().err
    assert "--faults: unknown switch 'partiton'; did you mean 'partition'?" in err
    assert main(["explore", "--seeds", "1", "--faults", "partition,vault_down"]) == 2
    assert "'vault_down' is now called 'take_down'" in capsys.readouterr().err
    switches = ("take_down", "partition")
    assert (
        main(["explore", "--seeds", "2", "--duration", "600", "--faults", ",".join(switches)]) == 0
    )
    assert "faults take_down, partition" in capsys.readouterr().err
    config = choose_config(3, duration=600, switches=switches)
    assert config.faults == switches
    trace = tmp_path / "trace.jsonl"
    run_config(config, trace_path=trace)
    assert {line["fault"] for line in _fault_lines(trace)} == {"take_down", "partition"}


def test_commit_lag_runs_in_explore_when_named_and_no_seed_draws_it_by_itself(
    tmp_path: Path,
) -> None:
    """SYNC-4 (commit_lag): ``--faults commit_lag`` toggles writes committing late in every
    seed; a seed left to draw its own mix never draws it, so every seed keeps the run it had
    before the fault existed (seed 12's mix is pinned by tests/simulator/test_memory.py)."""
    assert SWITCHES[-1] == "commit_lag"
    assert not any("commit_lag" in choose_config(seed).faults for seed in range(300))
    config = choose_config(3, duration=900, switches=("commit_lag",))
    trace = tmp_path / "trace.jsonl"
    assert run_config(config, trace_path=trace).findings == []
    toggles = [line["on"] for line in _fault_lines(trace) if line["fault"] == "commit_lag"]
    assert toggles[:2] == [True, False] and toggles[-1] is False, toggles  # settled: off


def test_a_replay_file_written_with_former_names_still_replays() -> None:
    """Issue 14 item 6: a replay file names the switches a seed had; one written before the
    renaming replays with their new names."""
    config = SwarmConfig.from_json({"seed": 4, "faults": ["one_way", "vault_down", "device_clock"]})
    assert config.faults == ("cut_answers", "take_down", "jump_clock")


def test_a_trace_written_with_former_names_draws_with_the_new_ones(tmp_path: Path) -> None:
    """Issue 14 item 6: the timeline report reads a trace written before the renaming: its
    faults are drawn and labelled by their new names, a clock jump as a clock jump."""
    events = [
        ev(0, "device", device="phone", event="join", offset=0.0, drift_ppm=0.0),
        ev(1, "fault", target="phone", fault="offline", on=True),
        ev(2, "fault", target="phone", fault="clock_jump", on=True, detail={"seconds": 60}),
        ev(3, "fault", target="phone", fault="offline", on=False),
    ]
    _html, root = render(tmp_path, events)
    (span,) = root.find("g", "fault-disconnect")
    assert "disconnect" in span.all_text()
    assert "clock +1m" in root.find("g", "clock-jump")[0].all_text()
