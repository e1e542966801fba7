"""The implementer's path (issue 12): a factory in the current directory loads, a wrong helper
API is one clear usage error before any test runs, the harness makes the store directory, a
missing program is a usage error, and the shipped expectations are found by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.expectations import SHIPPED, find_expectations

COLLECT = ("-p", "no:cacheprovider", "--pyargs", "conformance", "--co", "-q")

NO_MKDIR = """
from simulator.impl import ReferenceHelper
from brh import BackupRestoreHelper


def factory(installation):
    # no mkdir: the harness made the directory; the store file goes straight into it
    return ReferenceHelper(
        BackupRestoreHelper(
            installation.vault,
            installation.store / "store.sqlite3",
            device_id=installation.device_id,
            clock=installation.clock,
            rng=installation.rng,
        )
    )
"""

WRONG_API = """
class Helper:
    def add_sync_context(self, name, on_insert, on_modify, on_delete):
        pass

    def upsert_database_entry(self, context, key, data):  # not a coroutine
        pass

    async def delete_database_entry(self, context, key):
        pass

    async def sync(self):  # no full=
        return True

    async def wipe_local_context_data(self, context):
        pass

    async def close(self):
        pass
    # local_entries is missing


def factory(installation):
    return Helper()
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--pyargs", "conformance", *args)


def test_a_factory_beside_you_loads_and_its_store_folder_exists(pytester: pytest.Pytester) -> None:
    """``--brh-impl module:factory`` imports from the current directory (no install, no
    PYTHONPATH), and the store directory exists before the factory is called."""
    pytester.makepyfile(mine=NO_MKDIR)
    result = _run(pytester, "--brh-impl", "mine:factory", "-k", "reinstalled_device_restores")
    assert result.ret == pytest.ExitCode.OK, str(result.stdout)
    assert result.parseoutcomes().get("passed") == 1


def test_a_wrong_helper_api_is_one_usage_error_naming_each_method(
    pytester: pytest.Pytester,
) -> None:
    """Not one TypeError per test: before the first test, exit code 4 and a message that names
    every method that is wrong and how."""
    pytester.makepyfile(wrong=WRONG_API)
    result = _run(pytester, "--brh-impl", "wrong:factory")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = str(result.stderr)
    assert "upsert_database_entry: must be a coroutine" in err
    assert "sync: cannot be called as sync(full=...)" in err
    assert "local_entries: missing" in err
    assert "delete_database_entry" not in err  # the right ones are not named
    assert "passed" not in str(result.stdout) and "failed" not in str(result.stdout)


def test_a_missing_program_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--brh-cmd", "no-such-helper-program --flag")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot run 'no-such-helper-program'" in str(result.stderr)


def test_a_program_that_dies_at_start_is_a_usage_error_keeping_its_log(
    pytester: pytest.Pytester,
) -> None:
    """A program that exits before its hello: the error says it could not be started (not
    that its API is wrong), quotes its stderr, and the log it names still exists."""
    program = "python3 -c 'import sys; print(\"no config\", file=sys.stderr); sys.exit(3)'"
    result = _run(pytester, "--brh-cmd", program)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = str(result.stderr)
    assert "could not be started" in err and "helper API" not in err
    assert "exited with status 3" in err and "no config" in err
    [log] = re.findall(r"its stderr \((\S+)\)", err)
    assert Path(log).read_text().rstrip().endswith("no config")


def test_shipped_expectations_are_found_by_name_from_any_directory(
    pytester: pytest.Pytester,
) -> None:
    """``--brh-expectations legacy`` from a directory that is not the checkout (pytester's)."""
    assert find_expectations("legacy") == SHIPPED / "legacy.toml"
    assert find_expectations("mine.toml") == Path("mine.toml")  # a path stays a path
    with pytest.raises(FileNotFoundError, match="legacy"):
        find_expectations("legasy")
    result = pytester.runpytest_inprocess(*COLLECT, "--brh-expectations", "legacy")
    assert result.ret == pytest.ExitCode.OK, str(result.stderr)
    result = pytester.runpytest_inprocess(*COLLECT, "--brh-expectations", "legasy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no shipped expectations of that name (legacy)" in str(result.stderr)


def test_the_readme_s_naive_example_fares_as_the_readme_says(pytester: pytest.Pytester) -> None:
    """The README's ten-minute walkthrough holds: ``examples/naive_helper.py``, copied into an
    empty folder, passes the core tests but the two local-only deletes (it re-reads everything
    on every pass), the two where its offline change overwrites another device's newer
    write (it pushes before it pulls, by key), the two of the vault's layout (DATA-1, DATA-2: it
    writes its own fields), the pass order (SYNC-1) and the writes' own passes (it syncs only
    when asked, SYNC-3); and a robust test catches it (a slow clock's edit lost)."""
    example = Path(__file__).parents[2] / "examples" / "naive_helper.py"
    pytester.makepyfile(myhelper=example.read_text(encoding="utf-8"))
    core = _run(pytester, "--brh-impl", "myhelper:factory", "--brh-level", "core")
    outcomes = core.parseoutcomes()
    assert outcomes.get("failed") == 8 and outcomes["passed"] >= 10, outcomes
    core.stdout.fnmatch_lines(
        [
            "*FAILED*backup_collection*",
            "*FAILED*in_milliseconds*",
            "*FAILED*local_only*",
            "*FAILED*locally_only*",
            "*FAILED*does_not_hold_arrives_as_an_insertion*",
            "*FAILED*holds_arrives_as_a_modification*",
            "*FAILED*contexts_in_registration_order*",
            "*FAILED*writes_start_one_pass*",
        ]
    )
    robust = _run(pytester, "--brh-impl", "myhelper:factory", "-k", "clock_is_behind")
    robust.assert_outcomes(failed=1)
