"""Durable vaults: one SQLite file holding every (user, application) vault of a server.

Each scope's data is served by a :class:`simulator.vault.FakeVault` in memory, so the server has
exactly the fake vault's semantics (Hive's and MongoDB's, one implementation for both). The fake
tells a :class:`~simulator.vault.VaultJournal` of every change it makes; here the journal writes
each change into SQLite inside the request's transaction, committed before the answer is sent.
A restarted server loads the saved state back (:meth:`FakeVault.restore`), so nothing
acknowledged is ever lost, even to ``kill -9``.

Layout (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)::

    vaults(id, user, app, id_counter)          -- one row per scope; the fake's _id counter
    collections(id, vault, name)
    documents(seq, collection, oid, body)      -- body: the document as JSON with {"$oid"}

``documents.seq`` is natural order: a new document gets a larger ``seq``; a replaced one keeps
its row, hence its place, as in the fake. The file is opened in SQLite's exclusive locking mode,
so a second server cannot use it at the same time (its copy in memory would go stale).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from brh.hive_wire import dumps, loads
from brh.vault import Document, ServerError, VaultError
from simulator.vault import FakeVault
from vaultd.tokens import Scope

__all__ = ["SCHEMA_VERSION", "StoreError", "VaultStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE vaults (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    app TEXT NOT NULL,
    id_counter INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user, app)
);
CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vault INTEGER NOT NULL REFERENCES vaults (id),
    name TEXT NOT NULL,
    UNIQUE (vault, name)
);
CREATE TABLE documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection INTEGER NOT NULL REFERENCES collections (id),
    oid TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (collection, oid)
);
"""

_T = TypeVar("_T")
_log = logging.getLogger("vaultd")


class StoreError(Exception):
    """The database file cannot be used (locked by another server, not ours, unreadable)."""


class _JournalError(Exception):
    """A change could not be written to SQLite; the request is undone."""


class _Journal:
    """Writes one scope's changes into SQLite (inside the transaction the store opened)."""

    def __init__(self, db: sqlite3.Connection, vault_id: int, collections: dict[str, int]):
        self._db = db
        self._vault_id = vault_id
        self._collections = collections  # name -> collections.id

    def _execute(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise _JournalError(f"{type(exc).__name__}: {exc}") from exc

    def collection_created(self, name: str) -> None:
        cursor = self._execute(
            "INSERT INTO collections (vault, name) VALUES (?, ?)", (self._vault_id, name)
        )
        assert cursor.lastrowid is not None
        self._collections[name] = cursor.lastrowid

    def collection_deleted(self, name: str) -> None:
        collection = self._collections.pop(name)
        self._execute("DELETE FROM documents WHERE collection = ?", (collection,))
        self._execute("DELETE FROM collections WHERE id = ?", (collection,))

    def document_stored(self, collection: str, oid: str, document: Document) -> None:
        try:
            body = dumps(document, "document")
        except VaultError as exc:  # e.g. an $inc that overflowed to infinity
            raise _JournalError(f"the document cannot be stored: {exc}") from exc
        self._execute(
            "INSERT INTO documents (collection, oid, body) VALUES (?, ?, ?) "
            "ON CONFLICT (collection, oid) DO UPDATE SET body = excluded.body",
            (self._collections[collection], oid, body),
        )

    def document_deleted(self, collection: str, oid: str) -> None:
        self._execute(
            "DELETE FROM documents WHERE collection = ? AND oid = ?",
            (self._collections[collection], oid),
        )


class _Loaded:
    """One scope's fake vault, its row id, and the id counter last saved."""

    def __init__(self, vault: FakeVault, vault_id: int) -> None:
        self.vault = vault
        self.vault_id = vault_id
        self.saved_counter = vault.id_counter


class VaultStore:
    """Every scope's vault, in memory and in the SQLite file ``path``.

    ``clock`` (seconds since the epoch; default ``time.time``) stamps ``created`` and
    ``modified``. Raises :class:`StoreError` if the file is in use or is not a vault database.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] | None = None) -> None:
        self.path = Path(path)
        self._clock = clock
        self._loaded: dict[Scope, _Loaded] = {}
        self._lock = asyncio.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=0, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {str(self.path)!r}: {exc}") from exc
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        db = self._db
        try:
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock, kept until close()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise StoreError(
                    f"the database {str(self.path)!r} is in use by another brh-vault server"
                ) from exc
            raise StoreError(f"cannot use the database {str(self.path)!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{str(self.path)!r} is not a SQLite database: {exc}") from exc
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version == 0 and tables == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            elif version != SCHEMA_VERSION:
                raise StoreError(
                    f"{str(self.path)!r} is not a brh-vault database of schema version "
                    f"{SCHEMA_VERSION} (user_version {version}, {tables} tables)"
                )
            # A write, even of the same value, makes SQLite take the exclusive lock now.
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the database (every change is already committed)."""
        self._loaded.clear()
        self._db.close()

    async def run(self, scope: Scope, operation: Callable[[FakeVault], Awaitable[_T]]) -> _T:
        """Run ``operation`` on the scope's vault and commit what it changed, before returning.

        A :class:`VaultError` it raises is committed too (a failed ``insert_many`` keeps the
        documents before the failure) and raised. If SQLite fails, the transaction is rolled
        back, the scope is reloaded from the file, and :class:`ServerError` (500) is raised;
        any other exception rolls back and reloads the same way, and is raised as it is.
        """
        async with self._lock:
            loaded = self._load(scope)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                try:
                    result = await operation(loaded.vault)
                except VaultError:
                    self._commit(loaded)
                    raise
                self._commit(loaded)
                return result
            except VaultError:
                raise
            except (_JournalError, sqlite3.Error) as exc:
                self._undo(scope)
                _log.error("scope %s: a change could not be stored: %s", scope, exc)
                raise ServerError(f"the vault could not store the change: {exc}") from exc
            except BaseException:
                self._undo(scope)
                raise

    def _commit(self, loaded: _Loaded) -> None:
        counter = loaded.vault.id_counter
        if counter != loaded.saved_counter:
            self._db.execute(
                "UPDATE vaults SET id_counter = ? WHERE id = ?", (counter, loaded.vault_id)
            )
        self._db.execute("COMMIT")
        loaded.saved_counter = counter

    def _undo(self, scope: Scope) -> None:
        """Roll back and forget the scope's memory: the next request reloads it from the file."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._loaded.pop(scope, None)

    def _load(self, scope: Scope) -> _Loaded:
        loaded = self._loaded.get(scope)
        if loaded is not None:
            return loaded
        db = self._db
        row = db.execute(
            "SELECT id, id_counter FROM vaults WHERE user = ? AND app = ?", (scope.user, scope.app)
        ).fetchone()
        if row is None:
            cursor = db.execute(
                "INSERT INTO vaults (user, app) VALUES (?, ?)", (scope.user, scope.app)
            )
            assert cursor.lastrowid is not None
            row = (cursor.lastrowid, 0)
        vault_id, counter = row
        ids: dict[str, int] = {}
        contents: dict[str, list[Document]] = {}
        for collection, name in db.execute(
            "SELECT id, name FROM collections WHERE vault = ? ORDER BY id", (vault_id,)
        ).fetchall():
            ids[name] = collection
            contents[name] = [
                loads(body)
                for (body,) in db.execute(
                    "SELECT body FROM documents WHERE collection = ? ORDER BY seq", (collection,)
                )
            ]
        vault = FakeVault(clock=self._clock, record=False, journal=_Journal(db, vault_id, ids))
        vault.restore(contents, counter)
        loaded = _Loaded(vault, vault_id)
        self._loaded[scope] = loaded
        return loaded
