"""The legacy helper's local storage: a flat string-keyed store of JSON values.

The original kept its state in the app platform's key/value storage: no transactions, no
namespaces, one asynchronous ``set`` or ``remove`` per call, persisted in the background. This
store keeps those traits on purpose (W12, W13): every ``set``/``remove`` is its own write and
yields to the event loop afterwards, so a crash can fall between an entry's write and its
index's write; callers build keys by string concatenation, so distinct names can share a key;
and a write is readable at once but reaches the disk in the background: :data:`FLUSH_DELAY`
seconds later (on the running loop's clock, so virtual on the simulator's) the pending writes go
to disk in the order made, one per turn of the event loop, each on its own. A simulated crash
(``close()``) keeps what was flushed for the next installation on the same directory and loses
the rest: a write the helper reported done can be lost, or half of it (an entry without its
index).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["FLUSH_DELAY", "KeyValueStore"]

FILE_NAME = "legacy-kv.sqlite3"

FLUSH_DELAY = 0.05
"""Seconds between a write and its reaching the disk (the platform storage's background
persistence)."""

_REMOVED: Any = object()


class _Disk:
    """One store directory as a process sees it: its database and the writes not flushed yet,
    shared by every :class:`KeyValueStore` opened on it (two helper instances of one app share
    the platform's storage, and see each other's writes at once)."""

    def __init__(self, directory: Path) -> None:
        # Autocommit: each statement is its own transaction, as each storage call was.
        self.db = sqlite3.connect(directory / FILE_NAME, isolation_level=None)
        self.db.execute("PRAGMA synchronous = OFF")  # a process crash, not a power cut
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")
        self.pending: dict[str, Any] = {}
        """Writes not on disk yet, key -> JSON text or ``_REMOVED``, in the order made."""
        self.flush: asyncio.Handle | None = None
        self.users = 0

    def later(self, key: str, text: Any) -> None:
        self.pending.pop(key, None)  # keep the order of the latest writes
        self.pending[key] = text
        if self.flush is None:
            self.flush = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush_one)

    def flush_one(self) -> None:
        """Write the oldest pending change to disk; the next one at the loop's next turn."""
        self.flush = None
        if not self.pending:
            return
        key = next(iter(self.pending))
        text = self.pending.pop(key)
        if text is _REMOVED:
            self.db.execute("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self.db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, text),
            )
        if self.pending:
            self.flush = asyncio.get_running_loop().call_soon(self.flush_one)

    def die(self) -> None:
        """The process died: what was not flushed is lost."""
        if self.flush is not None:
            self.flush.cancel()
            self.flush = None
        self.pending.clear()


_DISKS: dict[Path, _Disk] = {}
"""The open store directories of this process."""


class KeyValueStore:
    """String keys to JSON values in ``directory``; each write committed on its own, shortly
    after it was made."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        where = directory.resolve()
        disk = _DISKS.get(where)
        if disk is None:
            disk = _DISKS[where] = _Disk(where)
        disk.users += 1
        self._where = where
        self._disk: _Disk | None = disk

    @property
    def _open(self) -> _Disk:
        if self._disk is None:
            raise RuntimeError("KeyValueStore: used after close()")
        return self._disk

    def get(self, key: str) -> Any:
        """The value stored under ``key`` (written, flushed or not), or None."""
        disk = self._open
        if key in disk.pending:
            text = disk.pending[key]
            return None if text is _REMOVED else json.loads(text)
        row = disk.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    async def set(self, key: str, value: Any) -> None:
        self._open.later(key, json.dumps(value))
        await asyncio.sleep(0)  # storage calls were asynchronous: others run in between

    async def remove(self, key: str) -> None:
        self._open.later(key, _REMOVED)
        await asyncio.sleep(0)

    def close(self) -> None:
        """The process dies: writes not flushed yet are lost (for every store on the directory:
        they share one process)."""
        disk, self._disk = self._disk, None
        if disk is None:
            return
        disk.die()
        disk.users -= 1
        if disk.users == 0:
            disk.db.close()
            del _DISKS[self._where]
