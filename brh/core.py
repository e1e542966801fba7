"""The sync algorithm's decisions, as pure functions (no I/O, no clock, no randomness).

The asyncio driver in :mod:`brh.helper` asks these functions *what* to do with each remote
document, which filter a pull or a push uses, and how a failed compare-and-set resolves; it then
performs the vault requests, callbacks and store writes. Keeping the decisions here makes them
testable one by one, and identical in the simulator and in production.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from brh.hlc import Version
from brh.store import EntryState, Record
from brh.vault import (
    CollectionNotFoundError,
    NetworkError,
    ObjectId,
    UnauthorizedError,
    VaultError,
    VaultFrozenError,
    VaultNotFoundError,
)
from brh.wire import RemoteDoc

__all__ = [
    "Action",
    "Conflict",
    "ConflictOutcome",
    "Decision",
    "UploadFailure",
    "cursor_settles",
    "decide",
    "group_by_key",
    "pull_filter",
    "resolve_conflict",
    "upload_failure",
]


class Action(enum.Enum):
    """What to do with the vault's current version of an entry."""

    SKIP = "skip"
    """Already known: the version this device last saw on the vault."""
    DOMINATED = "dominated"
    """An older duplicate document of a key whose newer version this device has seen."""
    ECHO = "echo"
    """The device's own write came back: note that it landed; no callback."""
    KEEP_LOCAL = "keep_local"
    """The local version is newer: remember the vault's version and (re)upload ours."""
    ADOPT = "adopt"
    """Store the remote version without a callback (a tombstone the app never held)."""
    INSERT = "insert"
    MODIFY = "modify"
    DELETE = "delete"


CALLBACK_ACTIONS = frozenset({Action.INSERT, Action.MODIFY, Action.DELETE})


@dataclass(frozen=True)
class Decision:
    action: Action
    remote: RemoteDoc

    @property
    def needs_callback(self) -> bool:
        return self.action in CALLBACK_ACTIONS


def decide(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
    """Compare the vault's winning version of a key with the local entry.

    Last writer wins by version (hybrid logical clock, then device id), so every device picks
    the same winner whatever its clock says. Callbacks follow the design document: insertion for
    a key the device does not hold (absent, or deleted locally), modification for one it holds,
    deletion for a remote delete of one it holds; never for the device's own writes.
    """
    if local is None:
        return Decision(Action.ADOPT if remote.deleted else Action.INSERT, remote)
    if remote.version == local.base:
        return Decision(Action.SKIP, remote)
    if remote.version == local.version:
        return Decision(Action.ECHO, remote)
    if local.base is not None and remote.version < local.base:
        return Decision(Action.DOMINATED, remote)
    if remote.version < local.version:
        return Decision(Action.KEEP_LOCAL, remote)
    # The remote version is newer than the local one: it wins.
    if local.deleted:
        return Decision(Action.ADOPT if remote.deleted else Action.INSERT, remote)
    return Decision(Action.DELETE if remote.deleted else Action.MODIFY, remote)


def group_by_key(docs: Iterable[RemoteDoc]) -> list[tuple[RemoteDoc, list[RemoteDoc]]]:
    """Group documents by key, in order of first appearance: ``(winner, dominated)`` pairs.

    The winner is the highest version; the vault has no unique index, so two devices creating
    one key at once leave two documents, and every device must pick the same one. Dominated
    documents with a lower version are superseded and can be deleted; exact copies of the
    winner's version are dropped silently.
    """
    order: list[str] = []
    by_key: dict[str, list[RemoteDoc]] = {}
    for doc in docs:
        if doc.key not in by_key:
            order.append(doc.key)
            by_key[doc.key] = []
        by_key[doc.key].append(doc)
    grouped = []
    for key in order:
        candidates = by_key[key]
        winner = max(candidates, key=lambda doc: doc.version)
        losers = [doc for doc in candidates if doc.version < winner.version]
        grouped.append((winner, losers))
    return grouped


def pull_filter(
    cursor: int | None,
    overlap: int,
    window: Iterable[str] = (),
    after: tuple[int, ObjectId] | None = None,
    *,
    settled: bool = False,
) -> dict[str, Any]:
    """The filter of one pull page, in the vault's ``(modified, _id)`` order.

    ``cursor``: every document stamped before it was processed (None: read from the start).
    Stamps are whole seconds and a write in flight can land with a slightly older stamp, so the
    pull re-reads ``overlap`` seconds below the cursor, except the versions in ``window`` that
    were already processed there. Once ``settled`` (long enough after the cursor was reached
    for every write in flight then to have landed and been read), only newer stamps are read.
    ``after``: the last ``(modified, _id)`` of the previous page of this pass (keyset paging:
    stable while documents change meanwhile, unlike skip).
    """
    clauses: list[dict[str, Any]] = []
    if cursor is not None and settled:
        clauses.append({"modified": {"$gt": cursor}})
    elif cursor is not None:
        lower = cursor - overlap
        known = sorted(set(window))
        if known:
            clauses.append(
                {
                    "$or": [
                        {"modified": {"$gt": cursor}},
                        {
                            "modified": {"$gte": lower, "$lte": cursor},
                            "brhVersion": {"$nin": known},
                        },
                    ]
                }
            )
        else:
            clauses.append({"modified": {"$gte": lower}})
    if after is not None:
        stamp, doc_id = after
        clauses.append(
            {"$or": [{"modified": {"$gt": stamp}}, {"modified": stamp, "_id": {"$gt": doc_id}}]}
        )
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


PULL_SORT: Sequence[tuple[str, int]] = (("modified", 1), ("_id", 1))

SETTLE_MARGIN = 1
"""Seconds past the overlap window: a stamp is a whole second, rounded down."""


def cursor_settles(cursor: int, overlap: int, vault_now: float | None) -> bool:
    """Whether a pull that found nothing new settles the cursor (SYNC-4).

    ``vault_now`` is the vault's clock as known *before* the pull was sent (the ``Date`` of an
    earlier answer), so the pull ran when the vault's clock read that or later. A write stamped
    at or below ``cursor`` was stamped before ``cursor + 1`` on that clock and became visible
    at most ``overlap`` seconds later; if the vault's clock had passed both when the pull ran,
    the pull read it, and later pulls need only newer stamps. Judged on the vault's clock only:
    the device's clock says nothing about when the vault stamps (a live vault's clock runs in
    real time while a simulated device's runs virtual; a phone's may be hours off).
    """
    return vault_now is not None and vault_now >= cursor + overlap + SETTLE_MARGIN


class Conflict(enum.Enum):
    LANDED = "landed"
    """The vault already holds the local version (an earlier answer was lost)."""
    RECREATE = "recreate"
    """No document for the key is left: create it again."""
    RETRY = "retry"
    """The vault holds an older version: compare-and-set against it."""
    REMOTE_WINS = "remote_wins"
    """The vault holds a newer version: drop the local change and deliver the winner."""


@dataclass(frozen=True)
class ConflictOutcome:
    kind: Conflict
    winner: RemoteDoc | None
    dominated: tuple[RemoteDoc, ...]


def resolve_conflict(local: Record, docs: Sequence[RemoteDoc]) -> ConflictOutcome:
    """A compare-and-set push matched nothing: decide from every document of the key."""
    if not docs:
        return ConflictOutcome(Conflict.RECREATE, None, ())
    winner = max(docs, key=lambda doc: doc.version)
    if any(doc.version == local.version for doc in docs):
        landed = next(doc for doc in docs if doc.version == local.version)
        dominated = tuple(doc for doc in docs if doc.version < local.version)
        if winner.version > local.version:
            return ConflictOutcome(Conflict.REMOTE_WINS, winner, dominated)
        return ConflictOutcome(Conflict.LANDED, landed, dominated)
    dominated = tuple(doc for doc in docs if doc.version < winner.version)
    if winner.version > local.version:
        return ConflictOutcome(Conflict.REMOTE_WINS, winner, dominated)
    return ConflictOutcome(Conflict.RETRY, winner, dominated)


def newest(*versions: Version | None) -> Version | None:
    """The greatest of the given versions, ignoring None."""
    present = [v for v in versions if v is not None]
    return max(present) if present else None


class UploadFailure(enum.Enum):
    """Whose fault a failed upload is, and so what the pass does next."""

    ENTRY = "entry"
    """The vault refused this document (400, 413, 422: invalid, too large): note it against the
    entry, hold it back for a while, and go on with the context's other uploads."""
    VAULT = "vault"
    """The vault failed while storing it (a 5xx answer): note it against the entry too (so an
    entry that always fails cannot stall the others: it is held back and retried last), but
    stop the context's uploads for this pass, as the vault may be in trouble."""
    TRANSPORT = "transport"
    """Nothing to do with the entry (no answer, a bad token, a frozen vault or subscription, a
    missing collection, any other 4xx such as 403 or 429): the context's uploads stop for this
    pass."""


ENTRY_STATUSES = frozenset({400, 413, 422})
"""The answers that refuse a document itself: invalid, too large, unprocessable."""


def upload_failure(error: VaultError) -> UploadFailure:
    """Classify the error a write of one entry's document raised."""
    if isinstance(
        error,
        NetworkError
        | UnauthorizedError
        | VaultFrozenError
        | VaultNotFoundError
        | CollectionNotFoundError,
    ):
        return UploadFailure.TRANSPORT
    if error.status in ENTRY_STATUSES:
        return UploadFailure.ENTRY
    if error.status is not None and error.status < 500:
        return UploadFailure.TRANSPORT  # 403, 429, ...: about the request, not the document
    return UploadFailure.VAULT
