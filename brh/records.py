"""What the local store holds, as Python values: an entry with its sync bookkeeping
(:class:`Record`), that bookkeeping alone (:class:`EntryState`), an upload the vault refused
(:class:`Rejection`) and a context's sync progress (:class:`ContextState`). :mod:`brh.store`
keeps them in SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from brh.entry import Entry, copy_json
from brh.hlc import Version

__all__ = ["ContextState", "EntryState", "Record", "Rejection"]


@dataclass(slots=True)
class Record:
    """One entry as stored locally, with its sync bookkeeping."""

    context: str
    key: str
    data: Any
    creation_date: int
    modification_date: int
    deletion_date: int | None
    version: Version
    base: Version | None = None
    pending: bool = False
    stale: bool = False

    @property
    def deleted(self) -> bool:
        return self.deletion_date is not None

    def to_entry(self) -> Entry:
        data = copy_json(self.data)
        return Entry(self.key, data, self.creation_date, self.modification_date, self.deletion_date)


class EntryState(NamedTuple):
    """An entry's sync bookkeeping without its data (what a sync decision needs)."""

    version: Version
    base: Version | None
    pending: bool
    stale: bool
    creation_date: int
    deletion_date: int | None

    @property
    def deleted(self) -> bool:
        return self.deletion_date is not None


class Rejection(NamedTuple):
    """The vault refused to store a local change: ``refusals`` times in a row for ``version``."""

    key: str
    version: Version
    refusals: int
    reason: str
    definite: bool
    """The vault refused the document itself (a 4xx answer), not just failed (a 5xx)."""


@dataclass(slots=True)
class ContextState:
    """Per-context sync progress."""

    name: str
    cursor: int | None = None
    max_stamp: int | None = None
    last_pull_ms: int | None = None
    last_full_ms: int | None = None
    last_purge_stamp: int | None = None
    collection_ready: bool = False
    window: tuple[tuple[int, str], ...] = ()
    """``(stamp, brhVersion)`` of documents seen within the overlap window below the cursor:
    re-reading the window can skip them, so an idle pull returns nothing."""
    settled: bool = False
    """Every write stamped at or below the cursor has surely landed and been read: the next
    pull needs neither the overlap nor the window."""
