"""The sync-cost benchmark (``benchmarks/sync_cost.py``): its meter splits each pass's CPU time
between the helper and the fake vault, and its restore-scaling mode runs; so does the fake
vault's pass by ``_id`` (``benchmarks/id_walk.py``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.id_walk import main as id_walk_main
from benchmarks.sync_bytes import SEED, note, report, shared
from benchmarks.sync_cost import EPOCH, main, scenarios
from brh.core import RULES
from brh.hive_wire import dumps
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
        "pull, idle after an early read",
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


def test_the_idle_pass_after_a_bulk_upload_sends_a_bounded_filter() -> None:
    """Issue 15 item 6, SYNC-4: the first idle pass after the pass that read a bulk upload
    back (past the overlap) asks only for newer stamps: a filter of a few bytes whatever N
    (the target is 4 KB), where it named every version read (3.7 KB at N = 100, 360 KB at
    10,000) and the vault examined every document of the window. A device that read the burst
    inside the overlap still names them once (the case the README explains)."""
    rows = {row.scenario: row for row in run(scenarios(100), start=EPOCH) if not row.changed}
    assert rows["local, idle"].filter_bytes <= 64
    assert rows["local, idle"].examined == 0
    assert rows["pull, idle after an early read"].filter_bytes > 100 * 30


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


def test_the_byte_meter_sizes_every_request_and_answer_of_a_pass() -> None:
    """Issue 15 item 3's meter (``benchmarks/sync_bytes.py``): a full pass of a device holding
    40 notes goes through its link, which counts every request the fake vault served and
    sizes the answers as Hive sends them: at least each entry's projection, less than each
    whole note. A meter that no longer sees the requests, or sizes nothing, fails here."""

    async def main() -> tuple[int, int, int]:
        (meter,) = await shared(40, [RULES])
        assert meter.helper is not None
        meter.link.vault.reset_log()
        before = replace(meter.link.total)
        assert await meter.helper.sync(full=True)
        spent = meter.link.total - before
        await meter.helper.close()
        return spent.requests, meter.link.vault.request_count, spent.received

    requests, served, received = run(main(), start=EPOCH)
    assert requests == served >= 1
    assert 40 * 100 < received < 40 * len(dumps(note("k0", 0)))


def test_the_day_profile_splits_the_full_pass_and_prints_both_verdicts() -> None:
    """Issue 15 item 3's measurement, small: one day of 2 devices sharing 30 notes, with the
    projection on and off in one run: each device had its periodic full pass inside the day,
    the projection made it cheaper, and both targets' verdicts are printed."""
    out = report([30], 30, SEED)
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(("| on", "| off"))]
    assert len(rows) == 4 and all(row[-1] == "1 |" for row in rows), out
    full = {row[0]: float(row[4]) for row in rows}
    assert full["| on"] < full["| off"], out
    assert "Per unchanged entry: " in out and "(target <= 150: " in out, out
    assert "One day per device: " in out and "(target < 0.5: " in out, out


def test_the_id_walk_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 item 4, follow-up: a quick run of ``benchmarks/id_walk.py`` (N = 200 and 400,
    pages of 50): a pass by ``_id`` examines each document once, plus one per page but the last
    (the page's extra document, read again by the next page), not every document left for each
    page."""
    id_walk_main(["--sizes", "200,400", "--page", "50", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "| 200 | 4 | 203 |" in out
    assert "| 400 | 8 | 407 |" in out
