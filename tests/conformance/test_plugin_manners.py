"""The plugin as a pytest plugin (issue 12): silent and empty in other projects' runs, settings
in the configuration file, tests selected by clause with ``--brh-clause`` or ``-m``."""

from __future__ import annotations

import pytest

OTHER_PROJECT = """
def test_mine(request):
    assert "brh_sim" not in request.fixturenames
    assert "sim" not in request.fixturenames
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def test_another_project_s_run_shows_nothing_of_the_plugin(pytester: pytest.Pytester) -> None:
    """No header, no summary, no fixture: the plugin is installed but not asked for."""
    pytester.makepyfile(test_other=OTHER_PROJECT)
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert "brh conformance" not in result.stdout.str()
    fixtures = _run(pytester, "--fixtures").stdout.str()
    assert "brh_sim" not in fixtures and "\nsim\n" not in fixtures


def test_a_long_k_expression_is_no_path(pytester: pytest.Pytester) -> None:
    """An argument longer than a file name may be (a ``-k`` expression naming many tests) is
    not looked up as a path: it made the plugin's check of the command line fail with "File
    name too long" before any test ran."""
    pytester.makepyfile(test_other=OTHER_PROJECT)
    expression = " or ".join(f"test_number_{n}" for n in range(400)) + " or test_mine"
    result = _run(pytester, "-k", expression)
    result.assert_outcomes(passed=1)


def test_the_suite_itself_turns_it_on_with_its_fixture_named_brh_sim(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, "--pyargs", "conformance", "--co")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["brh conformance: implementation reference*"])
    assert "brh_sim" in _run(pytester, "--pyargs", "conformance", "--fixtures").stdout.str()


def test_settings_live_in_the_configuration_file_and_the_command_line_wins(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "brh_seed = 7\nbrh_level = core\nbrh_profile = ci\n"
    )
    result = _run(pytester, "--pyargs", "conformance", "--co")
    result.stdout.fnmatch_lines(["*implementation reference, level core, seed 7, profile ci*"])
    result = _run(pytester, "--pyargs", "conformance", "--co", "--brh-seed", "9")
    result.stdout.fnmatch_lines(["*level core, seed 9, profile ci*"])
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nbrh_seed = many\n")
    result = _run(pytester, "--pyargs", "conformance", "--co", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "brh_seed (configuration file): not a number: 'many'" in str(result.stderr)
    for setting, message in (
        ("brh_level = corr", "brh_level (configuration file): expected one of core, robust, all"),
        ("brh_profile = fastest", "brh_profile (configuration file): expected one of fast"),
        ("brh_examples = 0", "brh_examples (configuration file): expected an integer >= 1"),
    ):
        ini = "[pytest]\nasyncio_default_fixture_loop_scope = function\n" + setting + "\n"
        pytester.makeini(ini)
        result = _run(pytester, "--pyargs", "conformance", "--co", "-q")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, setting
        assert message in str(result.stderr), setting


def _selected(result: pytest.RunResult) -> set[str]:
    return {line.split("::")[-1] for line in result.stdout.lines if "::test_" in line}


def test_tests_are_selected_by_clause_with_the_option_or_with_m(pytester: pytest.Pytester) -> None:
    """``--brh-clause SYNC-4`` and ``-m clause_sync_4`` select the same tests, each naming the
    clause; a malformed id is a usage error."""
    by_option = _run(pytester, "--pyargs", "conformance", "--co", "-q", "--brh-clause", "sync-4")
    by_marker = _run(pytester, "--pyargs", "conformance", "--co", "-q", "-m", "clause_sync_4")
    every = _run(pytester, "--pyargs", "conformance", "--co", "-q")
    assert _selected(by_option) == _selected(by_marker)
    assert 0 < len(_selected(by_option)) < len(_selected(every))
    core = _run(pytester, "--pyargs", "conformance", "--co", "-q", "-m", "brh_core")
    assert _selected(core) and _selected(core) < _selected(every)
    bad = _run(pytester, "--pyargs", "conformance", "--co", "--brh-clause", "sync four")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not a SPEC clause id" in str(bad.stderr)
