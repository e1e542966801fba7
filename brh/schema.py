"""The local store's tables: one SQLite file per device (see :mod:`brh.store`).

``entries`` holds each entry with its sync bookkeeping, addressed by ``(context, key)`` so no
two can collide (DATA-5, W13); ``contexts`` each context's pull progress; ``refusals`` and
``rejections`` the streaks of changes the app or the vault refused (RETRY-3, RETRY-6); ``meta``
the device id, the hybrid clock and the schema version.
"""

from __future__ import annotations

__all__ = ["SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contexts (
    name              TEXT PRIMARY KEY,
    cursor            INTEGER,          -- vault 'modified' stamp: all earlier docs processed
    max_stamp         INTEGER,          -- newest vault stamp seen (the vault's 'now', roughly)
    last_pull_ms      INTEGER,          -- device clock at the last complete pull
    last_full_ms      INTEGER,          -- device clock at the last complete full pull
    last_purge_stamp  INTEGER,          -- max_stamp when tombstones were last purged
    collection_ready  INTEGER NOT NULL DEFAULT 0,
    window            TEXT NOT NULL DEFAULT '[]',  -- [stamp, brhVersion] seen near the cursor
    settled           INTEGER NOT NULL DEFAULT 0  -- nothing more can land at or below cursor
);
CREATE TABLE IF NOT EXISTS entries (
    context            TEXT NOT NULL,
    key                TEXT NOT NULL,
    data               TEXT NOT NULL,    -- JSON
    creation_date      INTEGER NOT NULL,
    modification_date  INTEGER NOT NULL,
    deletion_date      INTEGER,
    version            TEXT NOT NULL,    -- version of the local value
    base               TEXT,             -- vault version this device last saw (NULL: none)
    pending            INTEGER NOT NULL DEFAULT 0,  -- local change not yet on the vault
    stale              INTEGER NOT NULL DEFAULT 0,  -- a newer remote version awaits delivery
    PRIMARY KEY (context, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (  -- consecutive callback refusals of a remote change
    context  TEXT NOT NULL,
    key      TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (context, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejections (  -- uploads the vault refused, by local version
    context  TEXT NOT NULL,
    key      TEXT NOT NULL,
    version  TEXT NOT NULL,     -- the local version whose upload was refused
    count    INTEGER NOT NULL,  -- refusals of that version in a row
    reason   TEXT NOT NULL,     -- the vault's answer, with its status
    definite INTEGER NOT NULL,  -- the vault refused the document itself (a 4xx)
    PRIMARY KEY (context, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_pending ON entries (context, key) WHERE pending = 1;
CREATE INDEX IF NOT EXISTS entries_stale ON entries (context, key) WHERE stale = 1;
"""
