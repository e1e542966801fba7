"""The scenario library and the scenario file format, run against the reference helper.

Every named scenario (W1–W14 of the original helper plus everyday life) and every example file
under ``scenarios/`` must leave the world's checkers without a finding: convergence (SYNC-1,
CB-5), no lost update (ORD-2), the callback contract (CB-1..CB-6), retry liveness (RETRY-1)
and idle cost (COST-1).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator import scenarios
from simulator.scenarios.files import ScenarioFileError, dumps, load_file, loads, run_file
from simulator.world import Outcome, World, simulate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "scenarios").glob("*.toml"))

KNOWN_FAILURES: dict[str, str] = {}
"""Scenarios that make the reference helper fail a checker, with the finding: kept, strict."""


def _findings(outcome: Outcome) -> str:
    return "\n".join(str(f) for f in outcome.findings)


def _scenario_params() -> list[object]:
    params: list[object] = []
    for name in scenarios.names():
        reason = KNOWN_FAILURES.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", _scenario_params())
def test_named_scenario_passes_every_checker(name: str, seed: int) -> None:
    """SYNC-1, CB-5, ORD-2, CB-1..CB-6, RETRY-1, COST-1 under each scenario's stress (W1–W14 and
    everyday use): the reference helper leaves no finding."""
    outcome = scenarios.run_named(name, seed)
    assert outcome.findings == [], f"{name} (seed {seed}):\n{_findings(outcome)}"


def test_the_library_covers_the_weaknesses() -> None:
    """W1–W9, W12, W13 each have a scenario (the conformance suite must show each one)."""
    covered = {w for info in scenarios.all_scenarios() for w in info.weaknesses}
    wanted = {f"W{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13)}
    assert wanted <= covered, f"no scenario for {sorted(wanted - covered)}"


def test_every_scenario_is_described_and_names_real_clauses() -> None:
    """Registry metadata: a one-line description, and clause ids that exist in SPEC.md."""
    spec = (ROOT / "SPEC.md").read_text(encoding="utf-8")
    clauses = set(re.findall(r"\*\*([A-Z]+-\d+)\*\*", spec))
    for info in scenarios.all_scenarios():
        assert info.description and "\n" not in info.description, info.name
        assert info.clauses, f"{info.name} names no SPEC clause"
        unknown = set(info.clauses) - clauses
        assert not unknown, f"{info.name}: {sorted(unknown)} are not SPEC clauses"
    with pytest.raises(KeyError, match="no scenario named 'nope'"):
        scenarios.get("nope")


@pytest.mark.parametrize("name", ["w4-upsert-race", "w12-crash-mid-sync", "flaky-network"])
def test_same_seed_gives_a_byte_identical_trace(name: str, tmp_path: Path) -> None:
    """API-9 (determinism): the same scenario and seed replay byte for byte, so a failing seed
    can be studied from its trace."""
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    scenarios.run_named(name, 7, trace_path=first)
    scenarios.run_named(name, 7, trace_path=second)
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size > 0


def test_the_seed_matters(tmp_path: Path) -> None:
    """API-9: different seeds draw different latencies and losses (else a sweep is pointless)."""
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    scenarios.run_named("flaky-network", 1, trace_path=one)
    scenarios.run_named("flaky-network", 2, trace_path=two)
    assert one.read_bytes() != two.read_bytes()


# -- scenario files -------------------------------------------------------------------------


def test_there_are_example_files() -> None:
    """The format is documented by example: at least two files under scenarios/."""
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_file_loads_and_passes(path: Path) -> None:
    """SYNC-4 (W1), ORD-2 (W2), SYNC-5 (W3) as written in the example files: each loads, is
    named after its file, and leaves no finding."""
    spec = load_file(path)
    assert spec.name == path.stem
    assert spec.steps
    outcome = run_file(path, 1)
    assert outcome.findings == [], f"{path.name}:\n{_findings(outcome)}"


def test_a_file_can_run_a_device_on_two_helper_instances(tmp_path: Path) -> None:
    """SYNC-5, SYNC-6 (W3) as a file: ``instances = 2`` puts the tablet's two contexts in two
    helpers on one store, like ``world.add_device("tablet", instances=2)`` in the named
    scenario w3-two-instances. The reference passes it; the legacy baseline, whose one
    watermark is shared by both instances, shows exactly the named scenario's findings."""
    from conformance.implementations import legacy

    path = ROOT / "scenarios" / "two-instances.toml"
    spec = load_file(path)
    assert [(d.name, d.instances) for d in spec.devices] == [("phone", 1), ("tablet", 2)]
    assert loads(dumps(spec), str(path)) == spec  # written back with its instances

    def found(outcome: Outcome) -> set[tuple[str, str | None, str | None, str | None]]:
        return {(f.clause, f.device, f.context, f.key) for f in outcome.findings}

    assert run_file(path, 1).findings == []
    from_file = found(run_file(path, 1, factory=legacy.factory, workdir=tmp_path / "file"))
    named = scenarios.run_named(
        "w3-two-instances", 1, factory=legacy.factory, workdir=tmp_path / "named"
    )
    assert ("SYNC-1", "tablet", "two", "k9") in from_file
    assert from_file == found(named)


def test_a_device_joining_by_a_step_can_have_instances_too(tmp_path: Path) -> None:
    """Scenario file format: ``join`` takes the same ``instances`` field as ``[[devices]]``."""
    text = (
        'name = "late-tablet"\ncontexts = ["one", "two"]\n[[devices]]\nname = "phone"\n'
        '[[steps]]\ndo = "put"\ndevice = "phone"\ncontext = "two"\nkey = "k"\nvalue = 1\n'
        '[[steps]]\nat = 5\ndo = "join"\ndevice = "tablet"\ninstances = 2\n'
        '[[steps]]\ndo = "sync"\ndevice = "tablet"\n'
    )
    spec = loads(text, "late-tablet.toml")
    seen: dict[str, int] = {}

    async def scenario(world: World) -> None:
        await spec(world)
        seen["instances"] = len(world.device("tablet").impls)
        seen["two"] = world.device("tablet").apps["two"].items["k"]

    outcome = simulate(scenario, seed=1, contexts=spec.contexts)
    assert outcome.findings == [] and seen == {"instances": 2, "two": 1}
    assert "instances = 2" in dumps(spec)


EVERY_VERB = """
name = "every-verb"
description = "each verb once, with steps written as inline tables"
contexts = ["notes", "contacts"]
steps = [
  {do = "join", device = "tablet", offset = -30, drift_ppm = 100, contexts = ["notes"]},
  {do = "put", device = "phone", key = "a", value = {x = [1, 2.5, true, "s"]}},
  {do = "put", device = "phone", context = "contacts", key = "c", value = "contact"},
  {at = 1, do = "sync", device = "tablet", full = true},
  {do = "add_context", device = "tablet", context = "contacts"},
  {do = "remove", device = "phone", key = "a"},
  {at = 5, do = "partition", device = "tablet"},
  {do = "put", device = "tablet", key = "p", value = 1},
  {at = 40, do = "heal", device = "tablet"},
  {do = "cut_answers", device = "phone"},
  {do = "put", device = "phone", key = "q", value = 2},
  {at = 50, do = "restore_answers", device = "phone"},
  {do = "disconnect", device = "tablet"},
  {at = 60, do = "reconnect", device = "tablet"},
  {do = "lossy", device = "phone", requests = 0.3, answers = 0.3},
  {do = "slow_link", device = "tablet", low = 0.5, high = 2},
  {do = "put", device = "phone", key = "r", value = 3},
  {at = 120, do = "lossless", device = "phone"},
  {do = "fast_link", device = "tablet"},
  {do = "take_down"},
  {do = "put", device = "phone", key = "s", value = 4},
  {at = 180, do = "bring_up"},
  {do = "freeze"},
  {at = 200, do = "unfreeze"},
  {do = "expire_token", device = "tablet"},
  {do = "put", device = "tablet", key = "t", value = 5},
  {at = 260, do = "renew_token", device = "tablet"},
  {do = "server_errors", before = 0.2, after = 0.2},
  {do = "put", device = "phone", key = "u", value = 6},
  {at = 300, do = "stop_server_errors"},
  {do = "upsert_race", seconds = 0.5},
  {do = "put", device = "phone", key = "race", value = "phone"},
  {do = "put", device = "tablet", key = "race", value = "tablet"},
  {at = 320, do = "stop_upsert_race"},
  {do = "slow_vault", seconds = 3},
  {do = "put", device = "phone", key = "slow", value = 9},
  {at = 340, do = "fast_vault"},
  {do = "commit_lag", seconds = 4, exact = true},
  {do = "put", device = "phone", key = "late", value = 10},
  {do = "put", device = "tablet", key = "late", value = 11},
  {at = 350, do = "commit_at_once"},
  {do = "jump_clock", device = "vault", seconds = -30},
  {do = "jump_clock", device = "phone", seconds = 3600},
  {do = "behave", device = "tablet", context = "notes", mode = "refuse", refusals = 2},
  {do = "put", device = "phone", key = "v", value = 7},
  {at = 400, do = "behave", device = "tablet", mode = "apply"},
  {do = "crash", device = "phone"},
  {do = "restart", device = "phone"},
  {do = "crash_in_sync", device = "phone", request = 2, applied = true},
  {do = "restart", device = "phone"},
  {do = "reinstall", device = "tablet"},
  {do = "wipe", device = "tablet", context = "contacts"},
  {do = "advance", seconds = 30},
  {do = "note", text = "the end"},
  {do = "checkpoint"},
  {do = "put", device = "phone", key = "w", value = 8},
  {do = "settle"},
  {do = "sync", device = "tablet"},
  {do = "expect", device = "tablet", completed = true, callbacks = 0, same_as = "phone"},
]
[options]
full_sync_interval = 600
tombstone_retention = "none"
[options.retry]
max_delay = 60
[[devices]]
name = "phone"
"""


def test_every_verb_runs(tmp_path: Path) -> None:
    """Scenario file format: every verb is accepted and runs, and the checkers stay quiet
    (SYNC-1, ORD-2, RETRY-1 under each fault in turn)."""
    from simulator.scenarios.files import VERBS

    spec = loads(EVERY_VERB, "every-verb.toml")
    assert {step.verb for step in spec.steps} == set(VERBS)
    outcome = spec.run(1, trace_path=tmp_path / "trace.jsonl")
    assert outcome.findings == [], _findings(outcome)


HEADER = 'name = "bad"\ncontexts = ["notes", "contacts"]\n[[devices]]\nname = "phone"\n'


def _step(body: str) -> str:
    return f"{HEADER}[[steps]]\n{body}\n"


BAD_FILES: list[tuple[str, str, str]] = [
    ("unknown verb", _step('do = "explode"'), "step 1: field 'do': unknown verb 'explode'"),
    ("missing verb", _step('at = 1\ndevice = "phone"'), "step 1: field 'do': is required"),
    (
        "unknown field",
        _step('do = "put"\ndevice = "phone"\nkey = "k"\nvalue = 1\ncolour = "red"'),
        "step 1 (put): field 'colour': unknown field for 'put'",
    ),
    (
        "missing field",
        _step('do = "put"\ndevice = "phone"\nvalue = 1'),
        "step 1 (put): field 'key': is required",
    ),
    (
        "wrong type",
        _step('do = "advance"\nseconds = "ten"'),
        "step 1 (advance): field 'seconds': must be a finite number",
    ),
    (
        "time going backwards",
        _step('at = 10\ndo = "note"\ntext = "a"\n[[steps]]\nat = 5\ndo = "note"\ntext = "b"'),
        "step 2 (note): field 'at': goes backwards: 5 s is before 10 s",
    ),
    (
        "unknown device",
        _step('do = "put"\ndevice = "ghost"\nkey = "k"\nvalue = 1'),
        "step 1 (put): field 'device': no device named 'ghost' at this point (devices: phone)",
    ),
    (
        "device used before it joins",
        _step('do = "sync"\ndevice = "tablet"\n[[steps]]\ndo = "join"\ndevice = "tablet"'),
        "step 1 (sync): field 'device': no device named 'tablet'",
    ),
    (
        "crashed device",
        _step('do = "crash"\ndevice = "phone"\n[[steps]]\ndo = "sync"\ndevice = "phone"'),
        "step 2 (sync): field 'device': device 'phone' has crashed; restart it first",
    ),
    (
        "crash point missing",
        _step('do = "crash_in_sync"\ndevice = "phone"'),
        "step 1 (crash_in_sync): give exactly one of request (the n-th vault request), "
        "callback (the n-th callback request), line",
    ),
    (
        "device crashed by crash_in_sync",
        _step(
            'do = "crash_in_sync"\ndevice = "phone"\nrequest = 1\n[[steps]]\ndo = "sync"\n'
            'device = "phone"'
        ),
        "step 2 (sync): field 'device': device 'phone' has crashed; restart it first",
    ),
    (
        "restart of a running device",
        _step('do = "restart"\ndevice = "phone"'),
        "step 1 (restart): field 'device': device 'phone' is running; crash it first",
    ),
    (
        "unknown context",
        _step('do = "put"\ndevice = "phone"\nkey = "k"\nvalue = 1\ncontext = "photos"'),
        "step 1 (put): field 'context': device 'phone' does not register context 'photos'",
    ),
    (
        "bad key",
        _step('do = "put"\ndevice = "phone"\nkey = ""\nvalue = 1'),
        "step 1 (put): field 'key': ",
    ),
    (
        "value that is not JSON",
        _step('do = "put"\ndevice = "phone"\nkey = "k"\nvalue = 2024-01-01'),
        "step 1 (put): field 'value': the value is a TOML date, which is not JSON",
    ),
    (
        "bad behaviour mode",
        _step('do = "behave"\ndevice = "phone"\nmode = "sulk"'),
        "step 1 (behave): field 'mode': must be one of apply, refuse, flaky, slow, decline",
    ),
    ("missing name", "contexts = ['notes']\n", "field 'name': is required"),
    ("unknown top-level field", 'name = "x"\nseed = 3\n', "field 'seed': unknown top-level"),
    (
        "unknown helper option",
        'name = "x"\n[options]\nspeed = 3\n',
        "field 'options.speed': unknown helper option",
    ),
    (
        "bad helper option",
        'name = "x"\n[options]\npage_size = 0\n',
        "field 'options.page_size': must be an int >= 1",
    ),
    (
        "bad retry policy",
        'name = "x"\n[options.retry]\ninitial_delay = 10\nmax_delay = 1\n',
        "field 'options.retry.max_delay': must be >= initial_delay",
    ),
    (
        "bad device",
        'name = "x"\n[[devices]]\nname = "phone"\ncolour = "red"\n',
        "devices[1]: field 'colour': unknown field",
    ),
    (
        "no helper instance",
        'name = "x"\n[[devices]]\nname = "phone"\ninstances = 0\n',
        "devices[1]: field 'instances': must be an integer >= 1 (helper instances sharing the "
        "device's store), got 0",
    ),
    (
        "instances not an integer",
        'name = "x"\n[[devices]]\nname = "phone"\ninstances = "2"\n',
        "devices[1]: field 'instances': must be an integer >= 1",
    ),
    (
        "instances of a joining device",
        _step('do = "join"\ndevice = "tablet"\ninstances = 1.5'),
        "step 1 (join): field 'instances': must be an integer >= 1",
    ),
    (
        "device declared twice",
        'name = "x"\n[[devices]]\nname = "phone"\n[[devices]]\nname = "phone"\n',
        "devices[2]: field 'name': a device named 'phone' is declared twice",
    ),
    (
        "context never registered",
        HEADER + '[[devices]]\nname = "tablet"\ncontexts = ["notes"]\n',
        "devices[2]: field 'contexts': device 'tablet' never registers context(s) ['contacts']",
    ),
    ("invalid TOML", 'name = "x\n', "not valid TOML"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=case) for case, text, expected in BAD_FILES],
)
def test_bad_scenario_file_is_rejected_before_running(
    text: str, expected: str, tmp_path: Path
) -> None:
    """Scenario file format: each kind of mistake gives a ScenarioFileError naming the file,
    the step and the field, raised by loading (before any world is built)."""
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioFileError) as error:
        run_file(path, 1)
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_scenario_file_error_attributes() -> None:
    """Scenario file format: the error carries the path, step and field for tools to use."""
    with pytest.raises(ScenarioFileError) as error:
        loads(_step('do = "put"\ndevice = "phone"\nvalue = 1'), "inline.toml")
    assert (error.value.path, error.value.step, error.value.field) == ("inline.toml", 1, "key")
    assert error.value.problem == "is required"


def test_a_missing_file_is_a_scenario_file_error(tmp_path: Path) -> None:
    """Scenario file format: an unreadable file is reported like any other mistake."""
    with pytest.raises(ScenarioFileError, match="cannot read the file"):
        load_file(tmp_path / "absent.toml")
