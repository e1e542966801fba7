"""Devices as separate OS processes syncing through ``brh-vault serve`` over real HTTP.

Each device (``tests/device_process.py``) has its own SQLite store and app model and runs
``brh.BackupRestoreHelper`` over ``brh.hive.HiveVault``; the vault is ``python -m vaultd serve``
on 127.0.0.1. Crashes are ``kill -9`` at a point the device announces (it freezes there), so
every run crashes at the same step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brh.hive import HiveVault
from tests.http_support import DeviceProcess, VaultProcess, start_vault_process

pytestmark = pytest.mark.slow

SCOPED = [f"{test}-{device}={test}-user/notes-app" for test in ("t1", "t2") for device in
          ("phone", "laptop")]  # fmt: skip
"""Tokens of the shared server: each test has its own user, hence its own vault."""
PLAIN = ["phone", "tablet"]
"""Plain tokens: one user's devices, sharing the default vault."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultProcess]:
    process = start_vault_process(tmp_path_factory.mktemp("vault") / "vault.sqlite", SCOPED)
    try:
        yield process
    finally:
        process.close()


def vault_documents(url: str, token: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with HiveVault(url, token) as vault:
            return await vault.find_many("backup_notes", {})

    return asyncio.run(read())


def live_on_vault(url: str, token: str) -> dict[str, Any]:
    """Key -> data of the live entries on the vault; fails on a duplicate document."""
    live: dict[str, Any] = {}
    seen: set[str] = set()
    for doc in vault_documents(url, token):
        assert doc["key"] not in seen, f"duplicate documents for {doc['key']!r}"
        seen.add(doc["key"])
        if doc["deletionDate"] is None:
            live[doc["key"]] = doc["data"]
    return live


def model(device: DeviceProcess) -> dict[str, Any]:
    state = device.call({"do": "state"})
    assert state["pending"] == 0, f"{device.name} still has changes to upload"
    result: dict[str, Any] = state["model"]
    return result


def test_two_device_processes_sync_through_the_server(server: VaultProcess, tmp_path: Path) -> None:
    """SYNC-1, OFF-3, CB-1, CB-2, CB-3: two processes, each with its own store, exchange
    insertions, modifications and deletions through the HTTP vault and converge."""
    phone = DeviceProcess(server.url, "t1-phone", tmp_path, "phone")
    laptop = DeviceProcess(server.url, "t1-laptop", tmp_path, "laptop")
    try:
        phone.call({"do": "put_many", "prefix": "p", "count": 3})
        assert phone.call({"do": "sync"})["pushed"] == 3
        assert laptop.call({"do": "sync"})["delivered"] == 3
        laptop.call({"do": "put", "key": "p001", "value": "edited on the laptop"})
        laptop.call({"do": "delete", "key": "p002"})
        laptop.call({"do": "put", "key": "l", "value": {"nested": [1, 2]}})
        assert laptop.call({"do": "sync"})["completed"]
        assert phone.call({"do": "sync"})["delivered"] == 3
        expected = {
            "p000": "p000 from phone",
            "p001": "edited on the laptop",
            "l": {"nested": [1, 2]},
        }
        assert model(phone) == model(laptop) == live_on_vault(server.url, "t1-phone") == expected
    finally:
        phone.close()
        laptop.close()


def test_kill_9_in_the_middle_of_syncs_loses_nothing(server: VaultProcess, tmp_path: Path) -> None:
    """OFF-2, OFF-4, ORD-5, CB-7, HTTP-1: a device killed with SIGKILL after the vault applied
    its 15th upload but before it recorded it, restarted, uploads the rest without a duplicate;
    a device killed inside its 20th callback gets the rest (and that one again) after a restart;
    both converge afterwards."""
    # Its writes: the collection's creation, then one upload per entry.
    phone = DeviceProcess(server.url, "t2-phone", tmp_path, "phone", "--freeze-at-write", "16")
    phone.call({"do": "put_many", "prefix": "k", "count": 40})
    phone.send('{"do": "sync"}')
    assert phone.event()["event"] == "frozen"
    phone.kill()
    assert len(vault_documents(server.url, "t2-phone")) == 15  # killed in the middle of the push

    phone = DeviceProcess(server.url, "t2-phone", tmp_path, "phone")
    laptop = DeviceProcess(
        server.url, "t2-laptop", tmp_path, "laptop", "--freeze-in-callback", "20"
    )
    try:
        result = phone.call({"do": "sync"})
        # The pass pulls first and finds the 15th upload on the vault: it is not sent again.
        assert result["completed"] and result["pushed"] == 40 - 15
        expected = {f"k{i:03d}": f"k{i:03d} from phone" for i in range(40)}
        assert live_on_vault(server.url, "t2-phone") == expected  # no duplicate of the 15th

        laptop.send('{"do": "sync"}')
        assert laptop.event()["event"] == "frozen"
        laptop.kill()
        laptop = DeviceProcess(server.url, "t2-laptop", tmp_path, "laptop")
        assert laptop.call({"do": "sync"})["delivered"] == 40 - 19  # the 20th again, then more
        laptop.call({"do": "put", "key": "k000", "value": "edited after the crash"})
        laptop.call({"do": "delete", "key": "k039"})
        assert laptop.call({"do": "sync"})["completed"]
        assert phone.call({"do": "sync"})["delivered"] == 2
        expected["k000"] = "edited after the crash"
        del expected["k039"]
        assert model(phone) == model(laptop) == live_on_vault(server.url, "t2-phone") == expected
    finally:
        phone.close()
        laptop.close()


def test_server_restart_between_two_syncs_loses_nothing(tmp_path: Path) -> None:
    """OFF-3, OFF-4: the vault process is killed with SIGKILL right after acknowledging a sync
    and restarted on the same database: every acknowledged write is still there, and devices
    keep syncing through the new process."""
    db = tmp_path / "vault.sqlite"
    server = start_vault_process(db, PLAIN)
    phone = DeviceProcess(server.url, "phone", tmp_path, "phone")
    tablet = DeviceProcess(server.url, "tablet", tmp_path, "tablet")
    try:
        phone.call({"do": "put_many", "prefix": "a", "count": 10})
        assert phone.call({"do": "sync"})["pushed"] == 10
        server.close()  # kill -9
        server = start_vault_process(db, PLAIN, port=server.port)
        expected: dict[str, Any] = {f"a{i:03d}": f"a{i:03d} from phone" for i in range(10)}
        assert live_on_vault(server.url, "tablet") == expected

        assert tablet.call({"do": "sync"})["delivered"] == 10
        tablet.call({"do": "put", "key": "a003", "value": "changed"})
        assert tablet.call({"do": "sync"})["completed"]
        phone.call({"do": "put", "key": "b", "value": 2})
        assert phone.call({"do": "sync"})["delivered"] == 1  # its connection was to the old one
        assert tablet.call({"do": "sync"})["delivered"] == 1
        expected.update(a003="changed", b=2)
        assert model(phone) == model(tablet) == live_on_vault(server.url, "phone") == expected
    finally:
        phone.close()
        tablet.close()
        server.close()
