"""Durable vaults: one SQLite file holding every (user, application) vault of a server.

Each scope's data is served by a :class:`hivevault.vault.FakeVault` in memory, so the server has
exactly the fake vault's semantics (Hive's and MongoDB's, one implementation for both). The fake
tells a :class:`~hivevault.journal.VaultJournal` of every change it makes; here the journal notes
each change, and after the operation they are written into SQLite in one transaction, committed
before the answer is sent. A restarted server loads the saved state back
(:meth:`FakeVault.restore`), so nothing acknowledged is ever lost, even to ``kill -9``.

Operations run in worker threads, each scope's one at a time and different scopes' side by
side, so one user's long request does not hold up the others (SQLite itself is written by one
thread at a time). A request is a transaction of the fake vault (:meth:`FakeVault.begin`): if
its changes cannot be stored, they are rolled back in SQLite and undone in memory; the scope is
read from the file only once, by its first request.

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
import inspect
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, overload

from brh.hive_wire import dumps, loads
from brh.vault import Document, ServerError, VaultError
from hivevault.vault import FakeVault
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

WORKERS = 8
"""Threads that run vault operations: requests to different scopes run side by side (a long
one holds its scope, not the server), requests to one scope one after the other."""


class StoreError(Exception):
    """The database file cannot be used (locked by another server, not ours, unreadable)."""


class _JournalError(Exception):
    """A change could not be prepared for SQLite; the request is undone."""


_Change = tuple[str, str, str, str]
"""``(kind, collection, oid, body)``: "created", "deleted", "stored" or "removed"."""


class _Journal:
    """Notes one scope's changes during a request, to be written to SQLite after it (so an
    operation runs without holding the database)."""

    def __init__(self, collections: dict[str, int]) -> None:
        self.collections = collections  # name -> collections.id, as committed
        self.pending: list[_Change] = []

    def collection_created(self, name: str) -> None:
        self.pending.append(("created", name, "", ""))

    def collection_deleted(self, name: str) -> None:
        self.pending.append(("deleted", name, "", ""))

    def document_stored(self, collection: str, oid: str, document: Document) -> None:
        try:
            body = dumps(document, "document")
        except VaultError as exc:  # the vault checks what it stores: a bug if it happens
            raise _JournalError(f"the document cannot be stored: {exc}") from exc
        self.pending.append(("stored", collection, oid, body))

    def document_deleted(self, collection: str, oid: str) -> None:
        self.pending.append(("removed", collection, oid, ""))


class _Loaded:
    """One scope's fake vault, its row id, its journal, and the id counter last saved."""

    def __init__(self, vault: FakeVault, vault_id: int, journal: _Journal) -> None:
        self.vault = vault
        self.vault_id = vault_id
        self.journal = journal
        self.saved_counter = vault.id_counter


def _settle(awaitable: Awaitable[_T]) -> _T:
    """The result of an awaitable that never waits (the fake vault's operations), run now."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    steps.close()
    raise RuntimeError("a vault operation waited for something; it must run at once")


class VaultStore:
    """Every scope's vault, in memory and in the SQLite file ``path``.

    ``clock`` (seconds since the epoch; default ``time.time``) stamps ``created`` and
    ``modified``. Raises :class:`StoreError` if the file is in use or is not a vault database.
    Operations run in ``workers`` threads: one scope's at a time, different scopes' at once.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] | None = None,
        workers: int = WORKERS,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._loaded: dict[Scope, _Loaded] = {}
        self._scope_locks: dict[Scope, asyncio.Lock] = {}
        self._db_lock = threading.Lock()  # SQLite is used by one worker at a time
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="vaultd")
        self.loads = 0
        """How many times a scope was read from the file (once each, unless closed)."""
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=0, check_same_thread=False
            )
        except sqlite3.Error as exc:
            self._workers.shutdown()
            raise StoreError(f"cannot open the database {str(self.path)!r}: {exc}") from exc
        try:
            self._setup()
        except BaseException:
            self._db.close()
            self._workers.shutdown()
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
        self._workers.shutdown(wait=True)
        self._loaded.clear()
        self._db.close()

    async def in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in a worker thread (for work the event loop should not wait on,
        such as encoding a large answer)."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, function, *args)

    @overload
    async def run(self, scope: Scope, operation: Callable[[FakeVault], Awaitable[_T]]) -> _T: ...

    @overload
    async def run(self, scope: Scope, operation: Callable[[FakeVault], _T]) -> _T: ...

    async def run(self, scope: Scope, operation: Callable[[FakeVault], Any]) -> Any:
        """Run ``operation`` on the scope's vault and commit what it changed, before returning.

        ``operation`` runs in a worker thread; it may be a coroutine function that never waits
        (as the fake vault's methods). A :class:`VaultError` it raises is committed too (a
        failed ``insert_many`` keeps the documents before the failure) and raised. Anything
        else it raises undoes its changes in memory and is raised as it is; if SQLite cannot
        store the changes, they are rolled back there and undone in memory, and
        :class:`ServerError` (500) is raised. The scope is never reloaded from the file.
        """
        lock = self._scope_locks.get(scope)
        if lock is None:
            lock = self._scope_locks[scope] = asyncio.Lock()
        async with lock:
            return await self.in_thread(self._run, scope, operation)

    def _run(self, scope: Scope, operation: Callable[[FakeVault], Any]) -> Any:
        loaded = self._loaded.get(scope)
        if loaded is None:
            with self._db_lock:
                loaded = self._load(scope)
        vault, journal = loaded.vault, loaded.journal
        journal.pending.clear()
        vault.begin()
        failure: VaultError | None = None
        try:
            try:
                result = operation(vault)
                if inspect.isawaitable(result):
                    result = _settle(result)
            except VaultError as exc:  # a refusal; what it kept (insert_many) is committed
                failure = exc
            if journal.pending or vault.id_counter != loaded.saved_counter:
                with self._db_lock:
                    self._write(loaded)
        except (_JournalError, sqlite3.Error) as exc:
            vault.rollback()
            _log.error("scope %s: a change could not be stored: %s", scope, exc)
            raise ServerError(f"the vault could not store the change: {exc}") from exc
        except BaseException:
            vault.rollback()
            raise
        finally:
            journal.pending.clear()
        vault.commit()
        if failure is not None:
            raise failure
        return result

    def _write(self, loaded: _Loaded) -> None:
        """Write the journal's changes and the id counter in one SQLite transaction."""
        db, journal = self._db, loaded.journal
        ids = dict(journal.collections)
        db.execute("BEGIN IMMEDIATE")
        try:
            for kind, name, oid, body in journal.pending:
                if kind == "stored":
                    db.execute(
                        "INSERT INTO documents (collection, oid, body) VALUES (?, ?, ?) "
                        "ON CONFLICT (collection, oid) DO UPDATE SET body = excluded.body",
                        (ids[name], oid, body),
                    )
                elif kind == "removed":
                    db.execute(
                        "DELETE FROM documents WHERE collection = ? AND oid = ?", (ids[name], oid)
                    )
                elif kind == "created":
                    cursor = db.execute(
                        "INSERT INTO collections (vault, name) VALUES (?, ?)",
                        (loaded.vault_id, name),
                    )
                    assert cursor.lastrowid is not None
                    ids[name] = cursor.lastrowid
                else:
                    collection = ids.pop(name)
                    db.execute("DELETE FROM documents WHERE collection = ?", (collection,))
                    db.execute("DELETE FROM collections WHERE id = ?", (collection,))
            counter = loaded.vault.id_counter
            if counter != loaded.saved_counter:
                db.execute(
                    "UPDATE vaults SET id_counter = ? WHERE id = ?", (counter, loaded.vault_id)
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        journal.collections = ids
        loaded.saved_counter = counter

    def _load(self, scope: Scope) -> _Loaded:
        """Read the scope's vault from the file (the first request to it)."""
        db = self._db
        self.loads += 1
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
        journal = _Journal(ids)
        vault = FakeVault(clock=self._clock, record=False, journal=journal)
        vault.restore(contents, counter)
        loaded = _Loaded(vault, vault_id, journal)
        self._loaded[scope] = loaded
        return loaded
