"""The sync-cost benchmark (``benchmarks/sync_cost.py``): its meter splits each pass's CPU time
between the helper and the fake vault, and its restore-scaling mode runs."""

from __future__ import annotations

import pytest

from benchmarks.sync_cost import EPOCH, main, scenarios
from simulator.timeloop import run


def test_the_meter_times_every_vault_request_of_every_pass() -> None:
    """Issue 15 item 5: a quick run (N = 100) of every measured pass. Each request of a pass
    went through the meter, the fake vault's CPU is above zero (a restore's too) and below the
    pass's total, and helper + fake vault is the total. A meter that wraps a method the vault
    no longer calls measures nothing and fails here."""
    rows = run(scenarios(100), start=EPOCH)
    assert {row.scenario for row in rows} == {
        "local, idle",
        "local, idle again",
        "local",
        "restore",
        "pull",
    }
    for row in rows:
        assert row.requests > 0, row
        assert row.metered == row.requests, row
        assert 0.0 < row.vault_ms < row.total_ms, row
        assert row.helper_ms > 0.0, row
        assert row.helper_ms + row.vault_ms == pytest.approx(row.total_ms), row
    (restore,) = [row for row in rows if row.scenario == "restore"]
    assert restore.vault_ms > 0.0
    assert restore.examined >= 100  # every stored entry was read by a query


def test_restore_scaling_prints_the_ratio_of_the_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 15 item 4's measurement: ``--restore-scaling`` restores each size in one run and
    prints a row per size and the ratio of the second size's fake-vault CPU to the first's."""
    main(["--restore-scaling", "--sizes", "100", "200", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "\n| 100 | 2 | " in out and "\n| 200 | 2 | " in out, out  # COST-2: pages + 1
    assert "Restore fake-vault CPU, N=200 vs N=100: " in out, out
    assert "(target <= 2.5x: " in out, out
