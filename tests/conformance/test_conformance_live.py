"""The conformance suite pointed at a live vault over HTTP (``--brh-vault-url``): the tests
that need no fault inside the vault run against it; the others are skipped with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.http_support import start_vault_process

pytestmark = pytest.mark.slow


def test_the_suite_runs_against_a_live_vault_and_skips_what_needs_the_fake(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """SYNC-4 (issue 11): the reference passes the whole suite against `brh-vault serve`, the
    late-upload test included (its cursor settles on the vault's clock, which runs in real
    time while the devices' run virtual); only the tests that need the vault's clock to follow
    virtual time (a step back, 30 days of tombstones, stamps seconds apart), the vault to lose
    a collection or a document or to commit a write late, or that read or write the fake
    vault's documents directly are skipped, naming why;
    every collection the run created is gone afterwards."""
    import httpx

    server = start_vault_process(tmp_path / "vault.sqlite", ["secret"])
    try:
        report = tmp_path / "live.json"
        result = pytester.runpytest_inprocess(
            "-p",
            "no:cacheprovider",
            "--pyargs",
            "conformance",
            "--brh-vault-url",
            server.url,
            "--brh-vault-token",
            "secret",
            "--brh-report",
            str(report),
        )
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) == 0, result.stdout.str()
        assert outcomes["passed"] >= 28 and outcomes["skipped"] == 11
        result.stdout.fnmatch_lines([f"*brh conformance:*on {server.url}*"])
        skipped = [t for t in json.loads(report.read_text())["tests"] if t["outcome"] == "skip"]
        assert sorted(t["name"] for t in skipped) == [
            "test_a_collection_the_vault_lost_is_filled_again_from_the_devices",  # RES-3
            "test_a_device_syncing_every_hour_still_gets_its_daily_full_pass",  # a step back
            "test_a_full_pass_uploads_again_what_the_vault_lost",  # the vault loses a document
            "test_a_restore_delivers_entries_in_the_vaults_order",  # stamps a few seconds apart
            "test_a_write_committing_during_a_full_pass_reaches_it_incrementally",  # lag
            "test_a_write_still_committing_when_a_device_pulls_reaches_it_incrementally",  # lag
            "test_documents_that_are_not_entries_are_skipped_and_never_stop_a_pass",  # inserted
            "test_each_context_lives_in_its_own_backup_collection",  # a collection made before
            "test_entries_written_after_the_vault_clock_stepped_back_still_arrive",
            "test_tombstones_are_collected_from_the_vault_after_the_retention",  # 30 days
            "test_vault_documents_carry_the_original_helpers_fields_in_milliseconds",  # read
        ]
        assert all("needs the fake vault" in t["message"] for t in skipped)
        answer = httpx.get(
            server.url + "/api/v2/vault/db/collections",
            headers={"Authorization": "token secret"},
        )
        assert answer.status_code == 404, answer.text  # no collection left behind
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--brh-vault-url", "ftp://x"), "*--brh-vault-url: expected an http(s):// URL*"),
        (("--brh-vault-token", "t"), "*--brh-vault-token: given without --brh-vault-url*"),
        (("--brh-vault-config", "nope.toml"), "*--brh-vault-config: nope.toml*"),
    ],
)
def test_bad_live_vault_options_are_refused(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad live-vault option is a usage error naming the option; no test runs."""
    monkeypatch.delenv("BRH_VAULT_TOKEN", raising=False)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", *args
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_url_without_a_token_is_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--brh-vault-url needs a token: from --brh-vault-token, the config file or
    BRH_VAULT_TOKEN."""
    monkeypatch.delenv("BRH_VAULT_TOKEN", raising=False)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--brh-vault-url", "http://x"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no token; give --brh-vault-token or set BRH_VAULT_TOKEN*"])


def test_a_live_replay_command_names_the_vault_and_where_the_token_comes_from() -> None:
    """Issue 11: the replay command printed for a failure against a live vault repeats its
    URL, and says where the token comes from (never the token itself)."""
    from conformance.harness import Endpoint, Sim, Target

    sim = Sim(
        Target("reference", None),
        seed=4,
        workdir=Path("."),
        nodeid="t.py::x",
        endpoint=Endpoint("http://127.0.0.1:9/", "s3cret"),
    )
    command = sim.replay_command()
    assert "--brh-vault-url=http://127.0.0.1:9/" in command
    assert "BRH_VAULT_TOKEN" in command and "--brh-vault-token" in command
    assert "s3cret" not in command
