"""The conformance suite's pytest plugin: options, levels, expectations, reports, replay."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

BROKEN = '''
from simulator.impl import ReferenceHelper, reference_factory


class ForgetsDeletes(ReferenceHelper):
    """The reference, except that deletions never leave the device (a local-only one works)."""

    async def delete_database_entry(self, context, key, *, locally_only=False):
        if locally_only:
            await super().delete_database_entry(context, key, locally_only=True)


def factory(installation):
    return ForgetsDeletes(reference_factory(installation).brh)
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--pyargs", "conformance", *args)


# The state machine runs dozens of worlds: through a factory (stores on disk) or on a broken
# implementation (shrinking) it takes minutes; tests/conformance/test_state_machine.py covers
# both cheaply.
NOT_THE_MACHINE = ("-k", "not state_machine")


def test_the_reference_passes_every_conformance_test(pytester: pytest.Pytester) -> None:
    """The reference fails nothing, in process (the default, the state machine included) and
    through its factory."""
    for args in (
        (),
        ("--brh-impl", "conformance.implementations.reference:factory", *NOT_THE_MACHINE),
    ):
        result = _run(pytester, *args)
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) == 0, result.stdout.str()
        assert outcomes["passed"] >= 20
        result.stdout.fnmatch_lines(
            ["*brh conformance: implementation *, level all, seed 1, profile fast*"]
        )
    result.stdout.no_fnmatch_line("*test_state_machine.py*")


def test_level_selects_core_or_robust_tests(pytester: pytest.Pytester) -> None:
    """--brh-level core runs only the core tests; robust only the others."""

    def selected(*args: str) -> set[str]:
        result = _run(pytester, "--collect-only", "-q", *args)
        return {line for line in result.outlines if "::test_" in line}

    core, robust, everything = (
        selected("--brh-level", "core"),
        selected("--brh-level", "robust"),
        selected(),
    )
    assert core | robust == everything and not core & robust
    assert len(core) > 5 and len(robust) > 5
    assert {line for line in everything if "test_core.py" in line} <= core
    assert any("test_state_machine.py" in line for line in robust)


def test_a_failure_reports_its_clause_seed_and_a_replay_command_that_replays_it(
    pytester: pytest.Pytester,
) -> None:
    """A failing implementation: the JSON report names the failing clause, the seed and a
    command; running that command fails the same test again."""
    pytester.makepyfile(brokenimpl=BROKEN)
    pytester.syspathinsert()
    report = pytester.path / "report.json"
    result = _run(
        pytester,
        "--brh-impl",
        "brokenimpl:factory",
        "--brh-seed",
        "7",
        "--brh-report",
        str(report),
        *NOT_THE_MACHINE,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = json.loads(report.read_text())
    assert data["implementation"] == "brokenimpl:factory"
    failed = [t for t in data["tests"] if t["outcome"] == "fail"]
    assert failed, data["tests"]
    deletion = next(t for t in failed if "CB-3" in t["clauses"])
    assert deletion["seed"] == 7
    assert data["clauses"]["CB-3"]["fail"] >= 1
    assert data["clauses"]["CB-2"]["fail"] == 0  # named only by tests it passes
    command = shlex.split(deletion["replay"])
    assert command[0] == "pytest" and "--brh-seed=7" in command
    again = pytester.runpytest_inprocess("-p", "no:cacheprovider", *command[1:])
    replayed = again.parseoutcomes()
    assert replayed["failed"] == 1 and "passed" not in replayed, replayed
    result.stdout.fnmatch_lines(["*replay test_a_deletion_reaches_the_other_device: pytest *"])


def test_expected_failures_are_reported_and_unexpected_passes_are_not_hidden(
    pytester: pytest.Pytester,
) -> None:
    """--brh-expectations: a listed failure is an expected failure; a listed test that passes
    is reported as an unexpected pass; a key that matches nothing is reported as stale."""
    pytester.makepyfile(brokenimpl=BROKEN)
    pytester.syspathinsert()
    expectations = pytester.path / "expected.toml"
    expectations.write_text(
        'implementation = "brokenimpl"\n[expected-failures]\n'
        '"CB-3" = "deletions are not implemented yet"\n'
        'test_an_entry_created_on_one_device_is_inserted_on_another = "flaky, we thought"\n'
        'NOPE-1 = "a clause that does not exist"\n'
    )
    report = pytester.path / "report.md"
    result = _run(
        pytester,
        "--brh-impl",
        "brokenimpl:factory",
        "--brh-level",
        "core",
        "--brh-expectations",
        str(expectations),
        "--brh-report",
        str(report),
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed", 0) >= 1
    assert outcomes.get("xpassed", 0) == 1
    text = report.read_text()
    assert "## Unexpected passes" in text
    assert "test_an_entry_created_on_one_device_is_inserted_on_another" in text
    assert "## Expected failures" in text and "deletions are not implemented yet" in text
    result.stdout.fnmatch_lines(
        ["*unexpected pass: test_an_entry_created_on_one_device_is_inserted_on_another*"]
    )
    result.stdout.fnmatch_lines(["*expectations that matched no test: NOPE-1*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--brh-impl", "nodots"), "*--brh-impl*expected 'package.module:factory'*"),
        (("--brh-impl", "no_such_module_x:factory"), "*--brh-impl*cannot import*"),
        (("--brh-report", "out.txt"), "*--brh-report*must end in .md or .json*"),
        (("--brh-expectations", "missing.toml"), "*--brh-expectations*missing.toml*"),
        (("--brh-level", "deep"), "*--brh-level*invalid choice*"),
        (("--brh-profile", "huge"), "*--brh-profile*invalid choice*"),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    """ERR-1 (for the suite's own options): a bad option names itself and what is wrong, and
    no test runs."""
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_expectations_file_is_refused(pytester: pytest.Pytester) -> None:
    """An expectations file with an unknown key or an empty reason is a usage error."""
    bad = pytester.path / "bad.toml"
    bad.write_text('[expected-failures]\nW1 = ""\n')
    result = _run(pytester, "--brh-expectations", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*expected-failures.W1: the reason must be a non-empty string*"])
    bad.write_text('[expectations]\nW1 = "x"\n')
    result = _run(pytester, "--brh-expectations", str(bad))
    result.stderr.fnmatch_lines(["*unknown top-level key(s)*expectations*"])


def test_every_conformance_test_names_a_real_clause() -> None:
    """Each conformance test's clauses exist in SPEC.md, and its docstring names them."""
    import ast
    import re

    spec = Path(__file__).resolve().parents[2] / "SPEC.md"
    known = set(re.findall(r"\*\*([A-Z]+-[0-9]+)\*\*", spec.read_text()))
    root = Path(__file__).resolve().parents[2] / "conformance"
    seen = 0
    for path in sorted(root.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            marks = [
                d
                for d in node.decorator_list
                if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "clause"
            ]
            if not marks:
                continue
            seen += 1
            clauses = [
                a.value
                for a in marks[0].args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            assert set(clauses) <= known, (path.name, node.name, set(clauses) - known)
            doc = ast.get_docstring(node) or ""
            assert any(c in doc for c in clauses), (path.name, node.name)
    assert seen >= 20


WEAKNESSES = {f"W{n}" for n in range(1, 15)}
"""The original helper's weaknesses (``shared/reference/original-helper.md``)."""


def test_the_legacy_baseline_fails_a_robust_test_for_every_weakness(
    pytester: pytest.Pytester,
) -> None:
    """Issue 10, item 6: every weakness W1..W14 is named by at least one robust test that the
    legacy baseline fails, and by the shipped ``legacy.toml`` (as a key); with that file
    nothing is unexpected (no failure, no unexpected pass). The core (sunny-day) tests pass,
    except those that name a weakness (W3: a fresh device restores only its first context) or
    that ``legacy.toml`` names one by one."""
    import tomllib

    import conformance.implementations as implementations

    expectations = Path(implementations.__file__).with_name("legacy.toml")
    listed = tomllib.loads(expectations.read_text())["expected-failures"]
    assert not WEAKNESSES - set(listed), sorted(WEAKNESSES - set(listed))
    report = pytester.path / "legacy.json"
    result = _run(
        pytester,
        "--brh-impl",
        "conformance.implementations.legacy:factory",
        "--brh-expectations",
        str(expectations),
        "--brh-report",
        str(report),
        "-p",
        "no:warnings",
        # the expectations path makes pytest take the project for the rootdir: keep the
        # state machine's failing examples out of it
        "--brh-example-db",
        "none",
    )
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "xpassed" not in outcomes, result.stdout.str()
    data = json.loads(report.read_text())
    for test in data["tests"]:
        if test["level"] == "core" and test["outcome"] != "pass":
            named = f"{test['nodeid'].split('::')[0].rsplit('/', 1)[-1]}::{test['name']}"
            assert test["outcome"] == "xfail", test
            assert test["weakness"] in WEAKNESSES or named in listed, test
    shown = {
        t["weakness"]
        for t in data["tests"]
        if t["level"] == "robust" and t["outcome"] == "xfail" and t["weakness"]
    }
    assert shown == WEAKNESSES, f"not shown by a failing robust test: {WEAKNESSES - shown}"
    result.stdout.fnmatch_lines(["*weaknesses shown: W1, W10, W11, W12, W13, W14, W2, W3*"])


@pytest.mark.slow
def test_the_reference_passes_the_whole_suite_over_the_process_protocol(
    pytester: pytest.Pytester,
) -> None:
    """PROTOCOL.md is complete: the reference, run as its own process through --brh-cmd,
    passes every conformance test, as it does in process (the state machine aside: its
    profile's hundreds of worlds start thousands of processes;
    tests/conformance/test_state_machine.py runs a few of its examples over the protocol)."""
    import shlex
    import sys

    command = shlex.join([sys.executable, "-m", "conformance.protocol.reference"])
    result = _run(pytester, "--brh-cmd", command, "-p", "no:warnings", *NOT_THE_MACHINE)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 20
    result.stdout.fnmatch_lines([f"*brh conformance: implementation {command}, level all*"])


def test_the_profile_is_shown_in_the_header(pytester: pytest.Pytester) -> None:
    """--brh-profile is reported in the header (the state machine is collected with it)."""
    header = _run(pytester, "--collect-only", "--brh-profile", "deep")
    header.stdout.fnmatch_lines(
        ["*brh conformance: *, seed 1, profile deep*", "*test_random_work_and_faults*"]
    )


def test_a_failure_explains_itself_with_findings_failing_clauses_and_trace(
    pytester: pytest.Pytester,
) -> None:
    """Issue 10 item 9: the report keeps the checkers' findings (not only "the simulator's
    checkers found:"), "clauses failing" lists the clauses of the failed checks (not every
    clause the test names), and the trace path is printed with the failure."""
    pytester.makepyfile(brokenimpl=BROKEN)
    pytester.syspathinsert()
    report = pytester.path / "report.json"
    result = _run(
        pytester,
        "--brh-impl",
        "brokenimpl:factory",
        "-k",
        "test_a_device_is_not_told_about_its_own_writes",
        "--brh-report",
        str(report),
        "--brh-example-db",
        "none",
    )
    result.assert_outcomes(failed=1)
    (record,) = [t for t in json.loads(report.read_text())["tests"] if t["outcome"] == "fail"]
    assert record["findings"] and all(f.startswith("[") for f in record["findings"])
    failed = set(record["failed_clauses"])
    assert failed and failed == {f[1 : f.index("]")] for f in record["findings"]}
    assert failed != set(record["clauses"])  # the checks that failed, not the test's own list
    summary = next(line for line in result.stdout.lines if line.startswith("clauses failing: "))
    assert set(summary.removeprefix("clauses failing: ").split(", ")) == failed
    assert record["trace"] and Path(record["trace"]).exists()
    result.stdout.fnmatch_lines([f"*trace: {record['trace']}*"])
