"""The legacy helper's local storage: a flat string-keyed store of JSON values.

The original kept its state in the app platform's key/value storage: no transactions, no
namespaces, one asynchronous ``set`` or ``remove`` per call. This store keeps those traits on
purpose (W12, W13): every ``set``/``remove`` is its own write and yields to the event loop
afterwards, so a crash can fall between an entry's write and its index's write; and callers build
keys by string concatenation, so distinct names can share a key. What was written is durable: a
simulated crash (``close()``) keeps it for the next installation on the same directory.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["KeyValueStore"]

FILE_NAME = "legacy-kv.sqlite3"


class KeyValueStore:
    """String keys to JSON values in ``directory``; each write committed on its own."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement is its own transaction, as each storage call was.
        self._db: sqlite3.Connection | None = sqlite3.connect(
            directory / FILE_NAME, isolation_level=None
        )
        self._db.execute("PRAGMA synchronous = OFF")  # a process crash, not a power cut
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("KeyValueStore: used after close()")
        return self._db

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    async def set(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )
        await asyncio.sleep(0)  # storage calls were asynchronous: others run in between

    async def remove(self, key: str) -> None:
        self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))
        await asyncio.sleep(0)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
