"""The sync algorithm's decisions, as pure functions (no I/O, no clock, no randomness).

The pass machine (:mod:`brh.machine`) asks these functions *what* to do with each remote
document, which filter a pull or a push uses, how a failed compare-and-set resolves, whose fault
a failed upload is, and when the pull cursor settles; the driver (:mod:`brh.engine`) performs
what the machine yields. Each decision is testable on its own.

:class:`Rules` gathers the decisions a helper runs with, one entry each: the documented seam
through which a test suite swaps one for a buggy one (``conformance.implementations.mutants``),
to prove that its tests notice. A helper runs :data:`RULES` unless told otherwise.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from brh.entry import Entry
from brh.hlc import Version, observe, writer_id
from brh.retry import RetryPolicy
from brh.store import EntryState, Record
from brh.validation import encode_data
from brh.vault import (
    CollectionNotFoundError,
    Document,
    NetworkError,
    ObjectId,
    UnauthorizedError,
    VaultError,
    VaultFrozenError,
    VaultNotFoundError,
)
from brh.wire import RemoteDoc, collection_for, document_fields, parse_document, version_filter

__all__ = [
    "FULL_PASS_PROJECTION",
    "RULES",
    "Action",
    "Conflict",
    "ConflictOutcome",
    "Decision",
    "Rules",
    "UploadFailure",
    "cursor_settles",
    "decide",
    "entry_for_app",
    "full_pass_cursor",
    "group_by_key",
    "old_tombstones_filter",
    "pass_order",
    "pass_reason",
    "prune_window",
    "pull_filter",
    "purge_filter",
    "resolve_conflict",
    "unchanged",
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


@dataclass(frozen=True)
class Decision:
    action: Action
    remote: RemoteDoc


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


def prune_window(window: Iterable[tuple[int, str]], lowest: int) -> tuple[tuple[int, str], ...]:
    """The window's ``(stamp, brhVersion)`` still inside the overlap (stamp >= ``lowest``),
    sorted: older ones can no longer be re-read (SYNC-4)."""
    return tuple(sorted(item for item in window if item[0] >= lowest))


FULL_PASS_PROJECTION = {"_id": 1, "key": 1, "brhVersion": 1, "modificationDate": 1}
"""What a full pass of a context that has a cursor reads of every document first (SYNC-10,
COST-2), in ``_id`` order: the keyset (``_id``) and what the version is parsed from (``key``,
``brhVersion``, and ``modificationDate``, which tells a ``brhVersion`` that the original helper
left stale by rewriting the document). No vault stamp: the pass moves the cursor once complete,
from the vault's clock (:func:`full_pass_cursor`). Whole documents follow by
key, only for the keys that may have changed (:func:`unchanged`)."""


def unchanged(local: EntryState | None, remote: RemoteDoc) -> bool:
    """Whether a full pass may skip the whole document of ``remote``, read as a projection and
    the only document of its key in its page (SYNC-10, COST-2): the local entry holds exactly
    that version, which is also the version it knows the vault holds (its base), with no local
    change pending and no newer remote version waiting (stale). A version derived from
    ``modificationDate`` (the original helper's documents, or a ``brhVersion`` left stale) never
    counts: two of the original's writes can share one. Anything else is fetched whole and
    decided by :func:`decide`, as an incremental pull does."""
    return (
        local is not None
        and not remote.version.is_legacy
        and local.version == remote.version
        and local.base == remote.version
        and not local.pending
        and not local.stale
    )


TOMBSTONE_PROJECTION = {"key": 1, "brhVersion": 1, "modificationDate": 1, "deletionDate": 1}
"""What the purge reads of an old tombstone: enough to parse its version."""


def old_tombstones_filter(horizon: int) -> dict[str, Any]:
    """Tombstones this helper's kind wrote, stamped before ``horizon`` (DEL-2)."""
    return {
        "deletionDate": {"$ne": None},
        "modified": {"$lt": horizon},
        "brhVersion": {"$exists": True},
    }


def purge_filter(tombstones: Sequence[RemoteDoc]) -> dict[str, Any]:
    """Every document of each tombstone's key at or below its version: the tombstone and any
    older duplicate (DEL-2)."""
    return {"$or": [{"key": d.key, "brhVersion": {"$lte": d.version.encode()}} for d in tombstones]}


SETTLE_MARGIN = 1
"""Seconds past the overlap window: a stamp is a whole second, rounded down."""


def cursor_settles(cursor: int, overlap: int, vault_now: float | None) -> bool:
    """Whether a completed pull settles the cursor it ends with (SYNC-4).

    ``vault_now`` is the vault's clock as known *before* the pull was sent (the ``Date`` of an
    earlier answer), so the pull ran when the vault's clock read that or later. A write stamped
    at or below ``cursor`` was stamped before ``cursor + 1`` on that clock and became visible
    at most ``overlap`` seconds later; if the vault's clock had passed both when the pull ran,
    the pull read it, and later pulls need only newer stamps. That holds whether the pull found
    new documents or not: a pull that reads a bulk upload long after it landed settles at once,
    so the next one names none of the versions it read (issue 15). Judged on the vault's clock only:
    the device's clock says nothing about when the vault stamps (a live vault's clock runs in
    real time while a simulated device's runs virtual; a phone's may be hours off).
    """
    return vault_now is not None and vault_now >= cursor + overlap + SETTLE_MARGIN


def full_pass_cursor(cursor: int | None, overlap: int, vault_now: float | None) -> int | None:
    """Where a complete full pass of projections moves the pull cursor, or None to leave it.

    ``vault_now``: the vault's clock before the pass was sent. A write stamped at or below
    ``vault_now - overlap - 1`` was visible by then (SYNC-4's premise), so the pass read it or a
    newer version of its document: every write stamped up to that second is processed, and the
    cursor may move there, settled (:func:`cursor_settles` holds for it). Never back (None
    when the vault's clock is unknown or that is not past ``cursor``)."""
    if vault_now is None:
        return None
    read = math.floor(vault_now) - overlap - SETTLE_MARGIN
    return read if cursor is None or read > cursor else None


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


def accepted(answer: object) -> bool:
    """Whether a callback's answer means "handled" (CB-5, CB-6): True only. False refuses;
    anything else, a raised exception included, counts as a refusal too."""
    return answer is True


def cursor_after_pull(read: int | None, device_now_ms: int) -> int | None:
    """Where the next pull starts: the newest vault stamp read (SYNC-4), never the device's
    clock, which says nothing about the vault's stamps."""
    return read


Window = frozenset[tuple[int, str]]
"""``(stamp, brhVersion)`` of documents read within the overlap window below the cursor."""


def progress_at_refusal(
    cursor: int | None, window: Window, page: Sequence[RemoteDoc], refused: RemoteDoc | None
) -> tuple[int | None, Window]:
    """What a pull keeps when the app refuses ``refused``, a document of ``page`` read after
    ``cursor`` and ``window``: the cursor moves up to the refused change's stamp at most, and
    nothing of the page counts as read, so the next pull reads the refused change (and what
    followed it) again (SYNC-6, CB-7)."""
    stamp = None if refused is None else refused.stamp
    if stamp is not None and (cursor is None or stamp > cursor):
        return stamp, window
    return cursor, window


def create_filter(key: str, version: Version) -> dict[str, Any]:
    """The filter of the upsert that creates ``key``'s document: its own version, so that
    repeating it after a lost answer finds what it created (SYNC-7, ORD-5)."""
    return version_filter(key, version)


def retry_delay(policy: RetryPolicy, failures: int, rng: random.Random) -> float | None:
    """Seconds before the retry of the ``failures``-th failed pass in a row (RETRY-1, RETRY-2);
    None would mean no retry."""
    return policy.delay(failures, rng)


def pass_order(registered: Sequence[str]) -> list[str]:
    """The order a pass visits the contexts in: the order the app registered them (API-1,
    SYNC-1)."""
    return list(registered)


def pass_reason(refused: bool, failed: bool, rejected: bool) -> str | None:
    """Why a pass did not complete, the worst first: a callback refused a change, a context
    met a vault error, the vault refused (or held back) an upload; None: it completed (API-4,
    RETRY-1: any reason means the pass is retried)."""
    if refused:
        return "refused"
    if failed:
        return "vault_error"
    if rejected:
        return "rejected"
    return None


def entry_for_app(remote: RemoteDoc) -> Entry:
    """What a callback receives: the remote version as an entry with its own copy of the data
    (CB-9)."""
    return remote.to_entry()


@dataclass(frozen=True)
class Rules:
    """The decisions a helper runs with: a seam to swap one of them (see the module docstring).

    Each entry is a function of this module (or :func:`brh.hlc.observe`), or a flag of the
    pass machine; ``dataclasses.replace(RULES, decide=...)`` gives a helper with one changed.
    """

    decide: Callable[[Record | EntryState | None, RemoteDoc], Decision] = decide
    """What to do with the vault's winning version of a key (CB-1..CB-4, ORD-2, ORD-6)."""
    encode_data: Callable[[str, Any], str] = encode_data
    """An upsert's data checked (ERR-1: refused unless a Hive vault can store it) and encoded."""
    resolve_conflict: Callable[[Record, Sequence[RemoteDoc]], ConflictOutcome] = resolve_conflict
    """How a compare-and-set that matched nothing resolves (SYNC-7, ORD-4, ORD-5)."""
    accepted: Callable[[object], bool] = accepted
    """What a callback's answer means (CB-5, CB-6)."""
    observe: Callable[[Version | None, Version], Version | None] = observe
    """The hybrid clock's state after seeing a version (ORD-1, ORD-3)."""
    cursor_after_pull: Callable[[int | None, int], int | None] = cursor_after_pull
    """Where the next pull starts (SYNC-4)."""
    settles: Callable[[int, int, float | None], bool] = cursor_settles
    """Whether a completed pull, sent when the vault's clock read ``vault_now``, leaves its
    cursor settled: every write stamped up to it read (SYNC-4)."""
    full_pass_cursor: Callable[[int | None, int, float | None], int | None] = full_pass_cursor
    """Where a complete full pass of projections moves the cursor, settled, from the vault's
    clock before it (SYNC-10, SYNC-4); None leaves it."""
    pull_filter: Callable[..., dict[str, Any]] = pull_filter
    """The filter of one pull page: the cursor's overlap window and keyset paging (SYNC-4,
    SYNC-9)."""
    progress_at_refusal: Callable[
        [int | None, Window, Sequence[RemoteDoc], RemoteDoc | None], tuple[int | None, Window]
    ] = progress_at_refusal
    """The pull progress kept when the app refuses a change (SYNC-6)."""
    create_filter: Callable[[str, Version], dict[str, Any]] = create_filter
    """The filter of the upsert that creates a key's document (SYNC-7)."""
    upload_failure: Callable[[VaultError], UploadFailure] = upload_failure
    """Whose fault a failed upload is (RETRY-6)."""
    retry_delay: Callable[[RetryPolicy, int, random.Random], float | None] = retry_delay
    """When a failed pass is tried again (RETRY-1, RETRY-2)."""
    refusal_halts_later_contexts: bool = True
    """After the app refuses a change, the later contexts of the pass deliver nothing either
    (CB-6: no further callback in that pass, in any context)."""
    push_after_refusal: bool = True
    """After the app refuses a change, the pass still uploads every context's changes
    (SYNC-8)."""
    save_page_after_delivery: bool = True
    """A pulled page's progress is saved once its changes are delivered, never before (CB-7:
    a crash or a refusal before then redelivers them)."""
    sync_waits_for_next_pass: bool = True
    """A ``sync()`` made while a pass runs is answered by the next pass, which starts after
    the running one ends (SYNC-2), never by the running one: that pass may have pulled and
    pushed before the call."""
    vault_error_ends_context_only: bool = True
    """A vault error ends the work of its own context only: the later contexts of the pass
    still pull and push (RETRY-4)."""
    write_returns_before_sync: bool = True
    """An upsert or delete returns once the change is durable locally, without awaiting the
    pass it starts (OFF-1: writes never wait for the network)."""
    refused_in_callback: frozenset[str] = frozenset(
        {"upsert_database_entry", "delete_database_entry", "wipe_local_context_data", "sync"}
    )
    """The helper calls that fail at once with a re-entrant call error when made from inside a
    callback, or from a task it spawned (CB-8)."""
    full_pass_when_away: bool = True
    """A context whose last complete pull is older than half the tombstone retention does a
    full pass, and takes a synced entry the vault no longer has for one deleted meanwhile
    (DEL-3, SYNC-10)."""
    writer: Callable[[str, str], str] = writer_id
    """The ``writer`` of a helper's versions from its device id and its incarnation (ORD-1)."""
    pass_order: Callable[[Sequence[str]], Sequence[str]] = pass_order
    """The order a pass visits the registered contexts in (API-1, SYNC-1)."""
    pass_reason: Callable[[bool, bool, bool], str | None] = pass_reason
    """Whether a pass completed, from what happened in it (API-4)."""
    close_cancels_pass: bool = True
    """``close()`` cancels the running pass where it waits (a vault request, a callback)
    instead of waiting for it to reach its next step (API-6)."""
    register_checks_closed: bool = True
    """``add_sync_context`` after ``close()`` raises the "closed" error, as every call does
    (ERR-3)."""
    duplicate_context_is_error: bool = True
    """Registering a context name a second time is an error (ERR-2)."""
    collection_for: Callable[[str], str] = collection_for
    """The vault collection of a context (DATA-1)."""
    document_fields: Callable[..., dict[str, Any]] = document_fields
    """The fields an upload sets on an entry's vault document (DATA-2)."""
    parse_document: Callable[[Document], RemoteDoc | None] = parse_document
    """A vault document as an entry, or None for a document that is not one (DATA-6)."""
    entry_for_app: Callable[[RemoteDoc], Entry] = entry_for_app
    """What a callback receives for a remote version (CB-9)."""
    pull_before_push: bool = True
    """Each context pulls (delivering the remote changes) before it pushes its local ones
    (SYNC-1)."""
    page_lookahead: bool = True
    """Each pull page asks for one document more than it takes, so the last page is known
    without asking for an empty one after it (COST-2)."""
    full_pass_projection: bool = True
    """A full pass of a context that has a cursor first reads a projection of every document
    (:data:`FULL_PASS_PROJECTION`), then the whole documents of the keys that may have changed,
    by key, one request per page at most (COST-2, SYNC-10); off, it reads whole documents."""
    unchanged: Callable[[EntryState | None, RemoteDoc], bool] = unchanged
    """Whether a full pass skips a document it read as a projection (COST-2, SYNC-10)."""


RULES = Rules()
"""The reference's decisions."""
