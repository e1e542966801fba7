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
    """The reference passes the core tests and the vault-clock test is skipped, naming why,
    against `brh-vault serve`; every collection the run created is gone afterwards."""
    import httpx

    server = start_vault_process(tmp_path / "vault.sqlite", ["secret"])
    try:
        report = tmp_path / "live.json"
        result = pytester.runpytest_inprocess(
            "-p",
            "no:cacheprovider",
            "--pyargs",
            "conformance",
            "-k",
            "test_core or vault_clock",
            "--brh-vault-url",
            server.url,
            "--brh-vault-token",
            "secret",
            "--brh-report",
            str(report),
        )
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) == 0, result.stdout.str()
        assert outcomes["passed"] >= 10 and outcomes["skipped"] == 1
        result.stdout.fnmatch_lines([f"*brh conformance:*on {server.url}*"])
        skipped = [t for t in json.loads(report.read_text())["tests"] if t["outcome"] == "skip"]
        assert [t["name"] for t in skipped] == [
            "test_entries_written_after_the_vault_clock_stepped_back_still_arrive"
        ]
        assert "needs the fake vault" in skipped[0]["message"]
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
