"""The README's examples run as written."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import freezegun
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    """API-1: a fresh reader sees `make demo` and `make test` first."""
    head = README.read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head


def test_quickstart_runs_twice_without_surprises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API-1, API-2, API-4: the quickstart syncs through a fake vault and prints its result;
    run again in the same folder, it prints the same and logs no warning (its store is in
    memory, beside a vault in memory). The helper's default clock is time.time: freezegun holds
    it still."""
    quickstart, vault_lines = python_blocks()[0], python_blocks()[1]
    monkeypatch.chdir(tmp_path)
    for run in (1, 2):
        namespace: dict[str, object] = {}
        printed: list[str] = []
        with freezegun.freeze_time("2025-06-15 15:00:00"), caplog.at_level(logging.WARNING):
            exec(compile(quickstart, "README quickstart", "exec"), namespace)
            namespace["print"] = lambda *args, out=printed: out.append(" ".join(map(str, args)))
            exec(compile(vault_lines, "README vault", "exec"), namespace)
        assert printed == ["True 1 0"], run
        assert namespace["settings"] == {}, run  # nothing came back: the only entry was ours
        assert [r.getMessage() for r in caplog.records] == [], run
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_simulator_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's scenario, in Python and as a file, runs and passes every checker."""
    monkeypatch.chdir(tmp_path)
    scenario = next(block for block in python_blocks() if "def late_upload" in block)
    exec(compile(scenario, "README scenario", "exec"), {})
    assert (tmp_path / "late.jsonl").stat().st_size > 0
    toml = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)[0]
    path = tmp_path / "late.toml"
    path.write_text(toml)
    from simulator.scenarios.files import run_file

    outcome = run_file(path, seed=1)
    assert outcome.ok, outcome.findings


def test_hive_example_runs_against_the_development_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP-2: the README's HiveVault example syncs through brh-vault's app, getting its token
    from the provider it defines."""
    import asyncio

    from hivevault.vault import FakeVault
    from tests.http_support import ServerThread
    from vaultd.app import create_app
    from vaultd.store import VaultStore
    from vaultd.tokens import DEFAULT_SCOPE, TokenTable

    block = next(block for block in python_blocks() if "HiveVault(" in block)
    monkeypatch.chdir(tmp_path)
    signed_in: list[str] = []

    async def sign_in() -> str:
        signed_in.append("phone")
        return "phone"

    namespace: dict[str, object] = {
        "sign_in": sign_in,
        **{name: (lambda entry: True) for name in ("on_insert", "on_modify", "on_delete")},
    }
    exec(compile(block, "README Hive example", "exec"), namespace)
    store = VaultStore(tmp_path / "vault.sqlite")
    try:
        with ServerThread(create_app(store, TokenTable(["phone"]))) as server:
            asyncio.run(namespace["backup"](server.url))  # type: ignore[operator]

        async def names(vault: FakeVault) -> list[str]:
            return vault.collection_names()

        assert asyncio.run(store.run(DEFAULT_SCOPE, names)) == ["backup_settings"]
    finally:
        store.close()
    assert signed_in == ["phone"]


def test_brh_vault_command_lines_in_the_readme_parse() -> None:
    """The README's brh-vault command lines use options the command has."""
    import shlex

    from vaultd.cli import _parser

    lines = [
        line
        for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
        for line in block.splitlines()
        if line.startswith("brh-vault ")
    ]
    assert lines
    for line in lines:
        _parser().parse_args(shlex.split(line)[1:])


def test_protocol_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's process-protocol example runs the reference as a process and settles."""
    example = next(block for block in python_blocks() if "command_factory" in block)
    monkeypatch.chdir(tmp_path)
    printed: list[tuple[object, ...]] = []
    namespace: dict[str, object] = {"print": lambda *args: printed.append(args)}
    exec(compile(example, "README protocol example", "exec"), namespace)
    assert printed == [(True,)]
    assert (tmp_path / "protocol-run" / "phone.1.stderr.log").exists()


def test_the_readme_s_conformance_test_counts_are_the_suite_s(pytester: pytest.Pytester) -> None:
    """README figures do not go stale unseen: the number of conformance tests the performance
    table and the legacy baseline's line give is the number the suite collects."""
    text = README.read_text()
    table = text[text.index("### Conformance suite performance") :]
    in_process = int(re.findall(r"\| (\d+) tests, the state machine's examples included", table)[0])
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--co", "-q"
    )
    collected = sum(1 for line in result.stdout.lines if "::test_" in line)
    assert in_process == collected, "re-run benchmarks/conformance_speed.py and update the table"
    legacy = re.findall(r"# \.\.\. (\d+) passed, (\d+) xfailed", text)[0]
    assert sum(map(int, legacy)) == collected, "re-run the legacy baseline command in the README"
