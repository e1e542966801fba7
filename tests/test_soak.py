"""The reliability soak (``benchmarks/soak.py``): its check, and a quick run of the real thing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import Ack, DeviceView, check

ROOT = Path(__file__).resolve().parent.parent


def doc(key: str, version: str, data: Any = None, deleted: bool = False) -> dict[str, Any]:
    return {
        "key": key,
        "brhVersion": version,
        "data": data,
        "deletionDate": 1 if deleted else None,
    }


def test_the_soak_check_counts_lost_writes_duplicates_and_disagreements() -> None:
    """Soak check (ORD-2, ORD-4): an acknowledged write is kept if its version is its key's
    newest on the vault or older than it (superseded), lost otherwise; a key with two live
    documents is a duplicate; a device that holds something else than the vault's newest
    documents, or still has pending changes, has not converged."""
    documents = [
        doc("a", "002", "a2"),
        doc("b", "005", None, deleted=True),
        doc("c", "003", "c3"),
        doc("c", "001", "c1"),  # a live duplicate, older
    ]
    acks = [
        Ack("d1", "a", "002"),  # the newest
        Ack("d1", "a", "002"),  # the same acknowledgement twice counts once
        Ack("d2", "a", "001"),  # superseded
        Ack("d2", "b", "004"),  # superseded by the deletion
        Ack("d1", "a", "003"),  # newer than anything on the vault: lost
        Ack("d2", "z", "001"),  # the key is not on the vault at all: lost
    ]
    agreed = {"a": "a2", "c": "c3"}
    devices = {
        "d1": DeviceView(local=dict(agreed), model=dict(agreed), pending=0),
        "d2": DeviceView(local=dict(agreed), model=dict(agreed), pending=0),
    }
    verdict = check(acks, documents, devices)
    assert (verdict.acknowledged, verdict.on_vault, verdict.superseded) == (5, 1, 2)
    assert verdict.lost == [Ack("d1", "a", "003"), Ack("d2", "z", "001")]
    assert verdict.duplicates == ["c"] and verdict.extra_documents == 1
    assert verdict.converged and not verdict.ok

    devices["d2"] = DeviceView(local={"a": "a2"}, model={"a": "a2", "c": "c3"}, pending=1)
    verdict = check(acks[:4], documents[:3], devices)
    assert verdict.lost == [] and verdict.duplicates == []
    assert verdict.disagreements == [
        "d2: 1 changes still pending",
        "d2: local copy differs from the vault on ['c']",
    ]
    assert not verdict.converged and not verdict.ok


@pytest.mark.slow
def test_a_quick_soak_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """Soak item (ORD-5, HTTP-1, HTTP-2, OFF-3): devices writing through the fault proxy to a
    real ``brh-vault serve`` killed with -9 twice lose no acknowledged write, leave no
    duplicate and converge once healed (``benchmarks/soak.py --quick``, about 10 s)."""
    report_path = tmp_path / "soak.json"
    done = subprocess.run(
        [
            *(sys.executable, "benchmarks/soak.py", "--quick", "--seed", "1"),
            *("--json", str(report_path), "--keep", str(tmp_path / "run")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["lost"] == [] and report["duplicates"] == [] and report["converged"]
    assert report["kills"] == 2 and report["acknowledged"] > 10
    assert sum(report["faults"].values()) > 0
    assert "| **lost** (acknowledged, neither on the vault nor superseded) | **0** |" in done.stdout
