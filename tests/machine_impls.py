"""Implementations for the tests of the state machine and of ``brh-sim --impl``.

``memory``: the reference through a factory, its store an in-memory SQLite database kept per
store directory (so it survives crashes and restarts and a reinstall starts empty, like a store
on disk, without a disk write per commit). The others are that, with one bug each:
``forgets_deletes`` never tells the vault (nor its own copy) about a deletion;
``invents_data`` stores every upsert's data with a suffix no app wrote. Two raise, for the tests
of a step that raises: ``disk_full`` on every upsert of a key starting with ``big``,
``sync_crashes`` on every sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brh import BackupRestoreHelper
from brh.store import LocalStore
from simulator.impl import Installation, ReferenceHelper

__all__ = ["disk_full", "forgets_deletes", "invents_data", "memory", "sync_crashes"]

_STORES: dict[Path, LocalStore] = {}


def _helper(installation: Installation) -> BackupRestoreHelper:
    store = _STORES.get(installation.store)
    if store is None:
        store = _STORES[installation.store] = LocalStore(":memory:")
    return BackupRestoreHelper(
        installation.vault,
        store,
        device_id=installation.device_id,
        clock=installation.clock,
        rng=installation.rng,
    )


def memory(installation: Installation) -> ReferenceHelper:
    return ReferenceHelper(_helper(installation))


class _ForgetsDeletes(ReferenceHelper):
    async def delete_database_entry(
        self, context: str, key: str, *, locally_only: bool = False
    ) -> None:
        return None


def forgets_deletes(installation: Installation) -> ReferenceHelper:
    return _ForgetsDeletes(_helper(installation))


class _InventsData(ReferenceHelper):
    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        await super().upsert_database_entry(context, key, f"{data}!")


def invents_data(installation: Installation) -> ReferenceHelper:
    return _InventsData(_helper(installation))


class DiskFullError(OSError):
    """What :func:`disk_full` raises."""


class _DiskFull(ReferenceHelper):
    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        if key.startswith("big"):
            raise DiskFullError(f"no space left to store {key!r}")
        await super().upsert_database_entry(context, key, data)


def disk_full(installation: Installation) -> ReferenceHelper:
    return _DiskFull(_helper(installation))


class _SyncCrashes(ReferenceHelper):
    async def sync(self, *, full: bool = False) -> bool:
        raise RuntimeError("the sync engine crashed")


def sync_crashes(installation: Installation) -> ReferenceHelper:
    return _SyncCrashes(_helper(installation))
