"""The local store: a SQLite database holding each entry with its sync bookkeeping.

Every method that changes something is one SQLite transaction, so an entry's data, its pending
flag, the vault version it was last seen at, the context's cursor and the clock state change
together or not at all (a crash never splits them; weakness W12 of the original). Entries are
addressed by the pair ``(context, key)`` in separate columns, so no two can collide (W13).

The store is synchronous: SQLite calls on a local file are short, and keeping them on the event
loop's thread keeps the helper deterministic under a simulated clock (no executor threads).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from brh.errors import (
    LocalStoreVersionError,
)
from brh.hlc import HybridClock, Version, writer_device
from brh.records import ContextState, EntryState, Record, Rejection
from brh.schema import SCHEMA, SCHEMA_VERSION
from brh.store_open import may_access, open_error, read_only_file

__all__ = ["ContextState", "EntryState", "LocalStore", "Record", "Rejection"]


_ENTRY_COLUMNS = (
    "context, key, data, creation_date, modification_date, deletion_date, "
    "version, base, pending, stale"
)


_STATE_OF_ENTRY = "version, base, pending, stale, creation_date, deletion_date"

_WRITE_ENTRY = (
    f"INSERT OR REPLACE INTO entries ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_BASE = (
    "UPDATE entries SET "
    "base = CASE WHEN base IS NOT NULL AND ?1 < base AND stale = 0 THEN base ELSE ?1 END, "
    "pending = CASE WHEN ?2 IS NOT NULL AND version = ?2 THEN 0 "
    "WHEN ?3 IS NOT NULL THEN ?3 ELSE pending END "
    "WHERE context = ?4 AND key = ?5"
)
_STATE_COLUMNS = (
    "cursor, max_stamp, last_pull_ms, last_full_ms, last_purge_stamp, collection_ready, "
    "window, settled"
)
_SAVE_STATE = (
    f"INSERT OR REPLACE INTO contexts (name, {_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_GET_STATE_OF_CONTEXT = f"SELECT {_STATE_COLUMNS} FROM contexts WHERE name = ?"
_GET_ENTRY = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE context = ? AND key = ?"
_GET_STATE = f"SELECT {_STATE_OF_ENTRY} FROM entries WHERE context = ? AND key = ?"
_ADVANCE_CLOCK = (
    "INSERT INTO meta (name, value) VALUES ('clock', ?1) "
    "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)"
)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _encode_json(value: Any) -> str:
    """Compact JSON text of stored data."""
    return _JSON.encode(value)


def _record(row: sqlite3.Row) -> Record:
    return Record(
        context=row[0],
        key=row[1],
        data=json.loads(row[2]),
        creation_date=row[3],
        modification_date=row[4],
        deletion_date=row[5],
        version=Version.decode(row[6]),
        base=Version.decode(row[7]) if row[7] is not None else None,
        pending=bool(row[8]),
        stale=bool(row[9]),
    )


class _Transaction:
    """One SQLite transaction: ``BEGIN IMMEDIATE`` on entry, ``COMMIT`` on a clean exit,
    ``ROLLBACK`` if the block raises.

    ``synced=False`` commits without waiting for the disk (``synchronous=NORMAL`` for this
    transaction only): the commit is atomic and survives the process dying, and the next synced
    commit makes it durable too, since the write-ahead log is synced as a whole and in order.
    Only a power loss before then can undo it, and then it undoes every later unsynced commit
    with it, never one in the middle."""

    def __init__(self, execute: Callable[[str], object], *, synced: bool = True) -> None:
        self._execute = execute
        self._synced = synced

    def __enter__(self) -> None:
        if not self._synced:
            self._execute("PRAGMA synchronous=NORMAL")
        self._execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self._execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            if not self._synced:
                self._execute("PRAGMA synchronous=FULL")


class LocalStore:
    """SQLite-backed local copy of every context's entries.

    ``LocalStore(path)`` opens (creating if needed) a database file; ``LocalStore(":memory:")``
    keeps everything in memory (lost on close). Opening a file another helper already uses is
    allowed but each transaction is exclusive, so two helpers never interleave inside one. A
    failed open raises :class:`~brh.errors.LocalStoreError` (see :meth:`__init__`).
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        """Open (creating if needed) the store at ``path``.

        A failed open closes what it opened and changes nothing; it raises a
        :class:`~brh.errors.LocalStoreError` naming the file and what to do:
        :class:`~brh.errors.LocalStoreReadOnlyError` (the file or its folder cannot be
        written), :class:`~brh.errors.LocalStoreCorruptError` (not a SQLite database, or a
        damaged one), :class:`~brh.errors.LocalStoreVersionError` (another schema version), or
        the base class (a directory, a missing folder, a lock held elsewhere, ...).
        """
        self.path = str(path)
        try:
            self._open()
        except BaseException as exc:
            self._closed = True
            db: sqlite3.Connection | None = getattr(self, "_db", None)
            if db is not None:
                db.close()
            if isinstance(exc, sqlite3.Error):
                raise open_error(self.path, exc) from exc
            raise

    def _open(self) -> None:
        """The work of :meth:`__init__`, which closes the database if this raises."""
        writable = may_access(self.path, os.W_OK)
        if self.path != ":memory:" and os.path.isfile(self.path) and not writable:
            # SQLite would open it read-only and fail only at the first write, mid-sync.
            raise read_only_file(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._closed = False
        self._cursor = self._db.cursor()
        """One cursor for every statement (results are always fetched at once)."""
        self._execute = self._cursor.execute
        if self.path != ":memory:":
            self._execute("PRAGMA journal_mode=WAL")
            self._execute("PRAGMA synchronous=FULL")
        self._execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        rows = self._execute("SELECT DISTINCT context FROM refusals").fetchall()
        self._refusing: set[str] = {str(row[0]) for row in rows}
        """Contexts that may have refusal streaks (a superset): others skip the bookkeeping."""
        rows = self._execute("SELECT DISTINCT context FROM rejections").fetchall()
        self._rejected: set[str] = {str(row[0]) for row in rows}
        """Contexts that may have refused uploads (a superset): others skip the bookkeeping."""
        rows = self._execute("SELECT DISTINCT context FROM entries WHERE stale = 1").fetchall()
        self._maybe_stale: set[str] = {str(row[0]) for row in rows}
        """Contexts that may have stale entries (a superset): others need no lookup."""
        with self._transaction():
            found = self._meta("schema_version")
            if found is None:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            elif found != str(SCHEMA_VERSION):
                newer = found.isdigit() and int(found) > SCHEMA_VERSION
                raise LocalStoreVersionError(
                    self.path,
                    f"has schema version {found}, but this brh understands {SCHEMA_VERSION}: "
                    + (
                        "it was written by a newer brh; open it with that one, "
                        if newer
                        else "it was not written by this brh; "
                    )
                    + "or open a new store at another path (the next sync restores every "
                    "entry from the vault). This file is left as it was",
                )

    # -- plumbing ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the local store is closed")

    def _transaction(self, *, synced: bool = True) -> _Transaction:
        """``with self._transaction():`` runs its block as one SQLite transaction (rolled back
        if the block raises); ``synced=False``: see :class:`_Transaction`."""
        if self._closed:
            raise RuntimeError("the local store is closed")
        return _Transaction(self._execute, synced=synced or self.path == ":memory:")

    def _meta(self, name: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _save_clock(self, clock: Version | None) -> None:
        """Persist the clock state, never moving it back: another helper on this file may have
        stamped or seen a newer version than this one knows (versions compare as their text)."""
        if clock is not None:
            self._execute(_ADVANCE_CLOCK, (clock.encode(),))

    def _write(self, record: Record, *, pending: bool, stale: bool) -> None:
        """Store ``record`` whole, with these flags."""
        if stale:
            self._maybe_stale.add(record.context)
        self._execute(
            _WRITE_ENTRY,
            (
                record.context,
                record.key,
                _encode_json(record.data),
                record.creation_date,
                record.modification_date,
                record.deletion_date,
                record.version.encode(),
                record.base.encode() if record.base is not None else None,
                int(pending),
                int(stale),
            ),
        )

    def close(self) -> None:
        """Close the database; further calls raise."""
        if not self._closed:
            self._closed = True
            self._db.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- device identity and clock ----------------------------------------------------------

    def device_id(self) -> str | None:
        """The device id this store was first used with, if any."""
        return self._meta("device_id")

    def set_device_id(self, device_id: str) -> None:
        with self._transaction():
            self._set_meta("device_id", device_id)

    def clock(self) -> Version | None:
        """The persisted hybrid logical clock state (the newest version written or seen)."""
        raw = self._meta("clock")
        return Version.decode(raw) if raw is not None else None

    # -- reading entries --------------------------------------------------------------------

    def get(self, context: str, key: str) -> Record | None:
        row = self._execute(
            _GET_ENTRY,
            (context, key),
        ).fetchone()
        return None if row is None else _record(row)

    def state(self, context: str, key: str) -> EntryState | None:
        """The entry's bookkeeping (versions, flags, dates) without decoding its data."""
        row = self._execute(
            _GET_STATE,
            (context, key),
        ).fetchone()
        if row is None:
            return None
        return EntryState(
            Version.decode(row[0]),
            Version.decode(row[1]) if row[1] is not None else None,
            bool(row[2]),
            bool(row[3]),
            row[4],
            row[5],
        )

    def pending(self, context: str) -> list[Record]:
        """Entries of ``context`` with a local change not yet on the vault, in key order."""
        rows = self._execute(
            f"SELECT {_ENTRY_COLUMNS} FROM entries INDEXED BY entries_pending "
            "WHERE context = ? AND pending = 1 ORDER BY key",
            (context,),
        ).fetchall()
        return [_record(row) for row in rows]

    def stale_keys(self, context: str) -> list[str]:
        """Keys of ``context`` whose newer remote version has not been delivered yet."""
        if context not in self._maybe_stale:
            return []
        rows = self._execute(
            "SELECT key FROM entries INDEXED BY entries_stale "
            "WHERE context = ? AND stale = 1 ORDER BY key",
            (context,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def live_synced_keys(self, context: str) -> list[str]:
        """Keys of live, already-synced entries (the candidates a full resync can find gone)."""
        rows = self._execute(
            "SELECT key FROM entries WHERE context = ? AND deletion_date IS NULL "
            "AND base IS NOT NULL AND pending = 0 ORDER BY key",
            (context,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def stuck(self, context: str, threshold: int) -> list[tuple[str, int]]:
        """Keys whose remote change was refused at least ``threshold`` times in a row."""
        if context not in self._refusing:
            return []
        rows = self._execute(
            "SELECT key, count FROM refusals WHERE context = ? AND count >= ? ORDER BY key",
            (context, threshold),
        ).fetchall()
        return [(str(row[0]), int(row[1])) for row in rows]

    def counts(self, context: str) -> dict[str, int]:
        """How many entries are live, deleted, pending and stale in ``context``."""
        row = self._execute(
            "SELECT COUNT(*) FILTER (WHERE deletion_date IS NULL), "
            "COUNT(*) FILTER (WHERE deletion_date IS NOT NULL), "
            "COUNT(*) FILTER (WHERE pending = 1), COUNT(*) FILTER (WHERE stale = 1) "
            "FROM entries WHERE context = ?",
            (context,),
        ).fetchone()
        return {"live": row[0], "deleted": row[1], "pending": row[2], "stale": row[3]}

    def entries(self, context: str, *, include_deleted: bool = False) -> list[Record]:
        """Every entry of ``context`` in key order (for inspection and tests)."""
        where = "" if include_deleted else " AND deletion_date IS NULL"
        rows = self._execute(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE context = ?{where} ORDER BY key",
            (context,),
        ).fetchall()
        return [_record(row) for row in rows]

    # -- local writes -----------------------------------------------------------------------

    def write_local(
        self,
        context: str,
        key: str,
        clock: HybridClock,
        change: Callable[[Record | None, Version], Record | None],
    ) -> Record | None:
        """Record a local change (pending upload) and the clock that stamped it, atomically.

        Inside one transaction: read the entry and the persisted clock, let ``clock`` observe
        that clock and stamp a new version, build the record with ``change(current, version)``
        and write it and the clock. Re-reading the clock here keeps versions increasing when
        another helper writes through the same file (ORD-1). ``change`` returns None to write
        nothing; the written record is returned.
        """
        with self._transaction():
            stored = self.clock()
            if stored is not None:
                clock.observe(stored)
            record = change(self.get(context, key), clock.stamp())
            if record is None:
                return None
            self._write(record, pending=True, stale=record.stale)
            self._save_clock(clock.last)
            return record

    def erase(self, context: str, key: str) -> bool:
        """Forget an entry locally without telling the vault; True if it existed."""
        with self._transaction():
            cursor = self._execute(
                "DELETE FROM entries WHERE context = ? AND key = ?", (context, key)
            )
            return cursor.rowcount > 0

    def requeue(self, context: str, key: str) -> None:
        """The vault lost this entry's document: upload the local copy as new."""
        with self._transaction():
            self._execute(
                "UPDATE entries SET pending = 1, base = NULL, stale = 0 "
                "WHERE context = ? AND key = ?",
                (context, key),
            )

    def requeue_all(self, context: str) -> int:
        """The vault lost the context's collection: mark every entry for upload as new."""
        with self._transaction():
            self._execute("DELETE FROM contexts WHERE name = ?", (context,))
            cursor = self._execute(
                "UPDATE entries SET pending = 1, base = NULL, stale = 0 WHERE context = ?",
                (context,),
            )
            return cursor.rowcount

    def wipe_context(self, context: str) -> int:
        """Erase a context's entries, cursor, known versions and pending changes together."""
        with self._transaction():
            removed = self._execute("DELETE FROM entries WHERE context = ?", (context,)).rowcount
            self._execute("DELETE FROM contexts WHERE name = ?", (context,))
            self._execute("DELETE FROM refusals WHERE context = ?", (context,))
            self._execute("DELETE FROM rejections WHERE context = ?", (context,))
            return removed

    # -- sync bookkeeping -------------------------------------------------------------------

    def apply_remote(self, record: Record, expected: Version | None, clock: Version | None) -> bool:
        """Store a delivered remote version, unless the local entry changed meanwhile.

        ``expected`` is the local version the decision was made against (None: no local entry).
        Returns False, changing nothing, if the app wrote or forgot the key meanwhile (its write
        wins, ORD-7). Another helper on this store (ORD-1) recording a remote version meanwhile
        is no local write (True). Its callback returned before this one (each helper records
        as its callback returns), so the app now holds this version: an older one recorded
        there is overwritten; a newer one is replaced by this version marked stale, and the
        pass fetches the newer one again and gives it to the app (SPEC ORD-1).

        The commit does not wait for the disk (see :class:`_Transaction`): the pass's next
        synced write (at the latest, the page's progress, which the cursor needs before it
        moves) makes it durable. Until then only a power loss can undo it, and the page is then
        pulled and delivered again (SPEC CB-7). One disk sync per page instead of one per entry.
        """
        with self._transaction(synced=False):
            row = self._execute(
                "SELECT version, pending FROM entries WHERE context = ? AND key = ?",
                (record.context, record.key),
            ).fetchone()
            current = Version.decode(row[0]) if row is not None else None
            stale = False
            if current != expected:
                if current is None or row[1]:  # the app wrote or forgot the key meanwhile
                    return False
                if current == record.version:  # another helper recorded it too
                    return True
                if current > record.version:
                    if self._written_here(current):  # the app's write, uploaded meanwhile
                        return True
                    stale = True  # the app holds this older one: the newer one comes again
            self._write(record, pending=False, stale=stale)
            if record.context in self._refusing:
                self._execute(
                    "DELETE FROM refusals WHERE context = ? AND key = ?",
                    (record.context, record.key),
                )
            self._save_clock(clock)
            return True

    def _written_here(self, version: Version) -> bool:
        """Whether a helper of this device issued ``version`` (any of its incarnations)."""
        device = self._meta("device_id")
        return device is not None and writer_device(version.writer) == device

    def set_base(
        self,
        context: str,
        key: str,
        base: Version,
        *,
        pending: bool | None = None,
        clear_if_version: Version | None = None,
    ) -> None:
        """Remember that the vault holds ``base`` for this entry.

        ``pending`` forces the pending flag; ``clear_if_version`` clears it only if the local
        version still equals that (a push of that version has landed).
        """
        # One statement, so one transaction by itself. Versions compare as their fixed-width
        # text, whose order is theirs (DATA-3). The known vault version never moves backwards
        # (unless the entry is stale: its newer remote version is yet to come); the pending flag
        # is cleared if the local version is ``clear_if_version``, else forced to ``pending``.
        self._check_open()
        clear = clear_if_version.encode() if clear_if_version is not None else None
        self._execute(
            _SET_BASE,
            (
                base.encode(),
                clear,
                None if pending is None else int(pending),
                context,
                key,
            ),
        )

    def mark_stale(self, context: str, key: str, *, lost: Version) -> None:
        """A newer remote version beat local version ``lost``: stop pushing it, fetch the winner."""
        with self._transaction():
            current = self.state(context, key)
            if current is None:
                return
            still_same = current.version == lost
            self._maybe_stale.add(context)
            self._execute(
                "UPDATE entries SET stale = 1, pending = ? WHERE context = ? AND key = ?",
                (int(current.pending and not still_same), context, key),
            )

    def clear_stale(self, context: str, keys: Sequence[str]) -> None:
        with self._transaction():
            self._cursor.executemany(
                "UPDATE entries SET stale = 0 WHERE context = ? AND key = ?",
                [(context, key) for key in keys],
            )

    def note_refusal(self, context: str, key: str) -> int:
        """Count one more consecutive refusal of a remote change to this key; returns the count."""
        self._refusing.add(context)
        with self._transaction():
            self._execute(
                "INSERT INTO refusals (context, key, count) VALUES (?, ?, 1) "
                "ON CONFLICT (context, key) DO UPDATE SET count = count + 1",
                (context, key),
            )
            row = self._execute(
                "SELECT count FROM refusals WHERE context = ? AND key = ?", (context, key)
            ).fetchone()
            return int(row[0])

    def refusals(self, context: str, key: str) -> int:
        row = self._execute(
            "SELECT count FROM refusals WHERE context = ? AND key = ?", (context, key)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def has_refusals(self, context: str) -> bool:
        if context not in self._refusing:
            return False
        row = self._execute(
            "SELECT 1 FROM refusals WHERE context = ? LIMIT 1", (context,)
        ).fetchone()
        return row is not None

    def clear_refusals(self, context: str, key: str) -> None:
        """The key's remote change stopped needing delivery: its refusal streak ends."""
        with self._transaction():
            self._execute("DELETE FROM refusals WHERE context = ? AND key = ?", (context, key))

    def note_rejection(
        self, context: str, key: str, version: Version, reason: str, *, definite: bool
    ) -> int:
        """The vault refused to store ``version`` of this entry; returns how many times in a
        row it has refused that version (a new local version starts the count again)."""
        self._rejected.add(context)
        encoded = version.encode()
        with self._transaction():
            row = self._execute(
                "SELECT version, count FROM rejections WHERE context = ? AND key = ?",
                (context, key),
            ).fetchone()
            count = int(row[1]) + 1 if row is not None and row[0] == encoded else 1
            self._execute(
                "INSERT OR REPLACE INTO rejections "
                "(context, key, version, count, reason, definite) VALUES (?, ?, ?, ?, ?, ?)",
                (context, key, encoded, count, reason, int(definite)),
            )
            return count

    def rejections(self, context: str) -> list[Rejection]:
        """Refused uploads of ``context`` whose local version is still the refused one."""
        if context not in self._rejected:
            return []
        rows = self._execute(
            "SELECT r.key, r.version, r.count, r.reason, r.definite FROM rejections r "
            "JOIN entries e ON e.context = r.context AND e.key = r.key "
            "WHERE r.context = ? AND e.version = r.version AND e.pending = 1 ORDER BY r.key",
            (context,),
        ).fetchall()
        return [
            Rejection(str(row[0]), Version.decode(row[1]), int(row[2]), str(row[3]), bool(row[4]))
            for row in rows
        ]

    def clear_rejection(self, context: str, key: str) -> None:
        """The entry's upload landed (or stopped being needed): forget its refusals."""
        if context not in self._rejected:
            return
        with self._transaction():
            self._execute("DELETE FROM rejections WHERE context = ? AND key = ?", (context, key))

    def forget_remote_deleted(self, context: str, key: str, expected: Version) -> bool:
        """Drop a synced entry whose vault document is gone for good (a purged tombstone)."""
        with self._transaction():
            cursor = self._execute(
                "DELETE FROM entries WHERE context = ? AND key = ? AND version = ? AND pending = 0",
                (context, key, expected.encode()),
            )
            return cursor.rowcount > 0

    def purge_tombstones(self, context: str, older_than_ms: int) -> int:
        """Drop synced local tombstones older than the retention horizon (W5)."""
        with self._transaction():
            cursor = self._execute(
                "DELETE FROM entries WHERE context = ? AND deletion_date IS NOT NULL "
                "AND pending = 0 AND stale = 0 AND modification_date < ?",
                (context, older_than_ms),
            )
            return cursor.rowcount

    # -- per-context progress ---------------------------------------------------------------

    def context_state(self, context: str) -> ContextState:
        row = self._execute(_GET_STATE_OF_CONTEXT, (context,)).fetchone()
        if row is None:
            return ContextState(context)
        window = tuple((int(stamp), str(version)) for stamp, version in json.loads(row[6]))
        return ContextState(
            name=context,
            cursor=row[0],
            max_stamp=row[1],
            last_pull_ms=row[2],
            last_full_ms=row[3],
            last_purge_stamp=row[4],
            collection_ready=bool(row[5]),
            window=window,
            settled=bool(row[7]),
        )

    def save_context_state(self, state: ContextState) -> None:
        self._check_open()  # one statement: a transaction by itself
        self._execute(
            _SAVE_STATE,
            (
                state.name,
                state.cursor,
                state.max_stamp,
                state.last_pull_ms,
                state.last_full_ms,
                state.last_purge_stamp,
                int(state.collection_ready),
                json.dumps([list(item) for item in state.window]),
                int(state.settled),
            ),
        )
