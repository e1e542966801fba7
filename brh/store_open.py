"""Why a local store could not be opened, in words a user can act on (ERR-5, ERR-6).

SQLite reports a failed open with a result code; :func:`open_error` turns it into the
:class:`~brh.errors.LocalStoreError` that names the file and says what to do, looking at the
path itself (a directory? a missing folder? no permission?) where the code alone cannot tell.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from brh.errors import (
    LocalStoreCorruptError,
    LocalStoreError,
    LocalStoreReadOnlyError,
)

__all__ = ["may_access", "open_error", "read_only_file"]


def may_access(path: str, mode: int) -> bool:
    """Whether this process may access ``path`` in ``mode`` (``os.R_OK``, ``os.W_OK``), as the
    OS says: permissions, ACLs, read-only mounts."""
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


def read_only_file(path: str, detail: str = "") -> LocalStoreReadOnlyError:
    return LocalStoreReadOnlyError(
        path,
        "the file is read-only: make it writable, or copy it to a writable folder and open "
        f"the copy{detail}",
    )


# SQLite's primary result codes (the low byte of ``sqlite3.Error.sqlite_errorcode``).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def open_error(path: str, error: sqlite3.Error) -> LocalStoreError:
    """The :class:`LocalStoreError` that explains why SQLite could not open the store."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    sqlite = f"(SQLite: {error})"
    if primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
        return LocalStoreCorruptError(
            path,
            f"is not a SQLite database, or is damaged {sqlite}. It was left as it was. To go "
            "on, move the file aside (keep it if you want to find out what happened) and open "
            "a new store at this path: the next sync restores every entry from the vault. "
            "Changes made on this device that were not yet on the vault are lost with the file",
        )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return LocalStoreError(
            path,
            f"is locked by another connection that holds a write transaction {sqlite}; close "
            "the other helper or program using this file, or try again later",
        )
    if primary == _SQLITE_FULL:
        return LocalStoreError(path, f"the disk is full {sqlite}; free some space and retry")
    if primary not in (_SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_PERM):
        return LocalStoreError(path, f"cannot be opened {sqlite}")
    # Which of the path's parts is wrong? (Permissions as the OS reports them for this process.)
    file = Path(path)
    folder = file.parent
    if file.is_dir():
        return LocalStoreError(
            path,
            "is a directory; give the path of a file (new or existing) for the store, such as "
            f"{str(file / 'brh-local.sqlite')!r} {sqlite}",
        )
    if not folder.is_dir():
        return LocalStoreError(
            path, f"its folder {str(folder)!r} does not exist; create it first {sqlite}"
        )
    exists = file.exists()
    if exists and not may_access(path, os.R_OK):
        return LocalStoreError(
            path, f"the file cannot be read (no permission); make it readable and writable {sqlite}"
        )
    if exists and not may_access(path, os.W_OK):
        return read_only_file(path, f" {sqlite}")
    if not may_access(str(folder), os.W_OK):
        return LocalStoreReadOnlyError(
            path,
            f"its folder {str(folder)!r} is read-only: SQLite must create the store's journal "
            "files (-wal, -shm) beside it; give a path in a writable folder, or make this one "
            f"writable {sqlite}",
        )
    if primary == _SQLITE_READONLY:
        return LocalStoreReadOnlyError(
            path, f"its location cannot be written: give a path in a writable folder {sqlite}"
        )
    return LocalStoreError(path, f"cannot be opened; check the path and its permissions {sqlite}")
