"""The mutants of SPEC §4 (sync passes) and §10 (cost).

:mod:`.mutants` registers them: each is ``brh`` with one realistic bug, put in through one
documented seam (:mod:`.seams`), with a ``BUG:`` comment saying which real bug it stands for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from brh.core import Window, pull_filter
from brh.hlc import Version
from brh.store import ContextState, EntryState, LocalStore
from brh.wire import RemoteDoc
from conformance.implementations.seams import build as _build
from conformance.implementations.seams import with_rules as _with
from simulator.impl import Factory, Installation, ReferenceHelper

__all__ = ["PASS_ROWS"]


def _since_last_sync(read: int | None, device_now_ms: int) -> int | None:
    # BUG: the next pull starts from "when I last synced" by the device's clock instead of the
    # newest vault stamp read: a device whose clock runs ahead skips everything the vault
    # stamps before that time.
    return device_now_ms // 1000


def device_clock_cursor(installation: Installation) -> ReferenceHelper:
    """The pull cursor is taken from the device clock, not from the vault's stamps."""
    return _with(cursor_after_pull=_since_last_sync)(installation)


def _page_done(
    cursor: int | None, window: Window, page: Sequence[RemoteDoc], refused: RemoteDoc | None
) -> tuple[int | None, Window]:
    # BUG: on a refusal the page's progress is saved as if the page had been delivered (cursor
    # at its last stamp, its versions known): the refused change is never read again by an
    # incremental pull.
    stamped = {(doc.stamp, doc.version.encode()) for doc in page if doc.stamp is not None}
    newest = max((stamp for stamp, _ in stamped), default=cursor)
    if cursor is not None and newest is not None:
        newest = max(cursor, newest)
    return newest, window | stamped


def cursor_past_refusal(installation: Installation) -> ReferenceHelper:
    """A refusal saves the cursor past the refused change."""
    return _with(progress_at_refusal=_page_done)(installation)


def _settles_without_overlap(cursor: int, overlap: int, vault_now: float | None) -> bool:
    # BUG: "the vault's clock is past my cursor, so I have read everything stamped up to it":
    # a write stamped at the cursor's second but still in flight (visible up to the overlap
    # later) is never read by an incremental pull once the cursor settles.
    return vault_now is not None and vault_now >= cursor + 1


def settles_without_overlap(installation: Installation) -> ReferenceHelper:
    """The cursor settles once the vault's clock passes it, ignoring writes still in flight."""
    return _with(settles=_settles_without_overlap)(installation)


def _full_pass_cursor_at_vault_clock(
    cursor: int | None, overlap: int, vault_now: float | None
) -> int | None:
    # BUG: "the full pass read every document, so everything up to the vault's clock is done":
    # the cursor moves to the vault's clock itself, settled, and a write stamped before it but
    # still committing while the pass read its place is never read by an incremental pull.
    if vault_now is None or (cursor is not None and math.floor(vault_now) <= cursor):
        return None
    return math.floor(vault_now)


def full_pass_cursor_at_vault_clock(installation: Installation) -> ReferenceHelper:
    """A complete full pass moves the cursor to the vault's clock, ignoring writes in flight."""
    return _with(full_pass_cursor=_full_pass_cursor_at_vault_clock)(installation)


def sync_joins_running_pass(installation: Installation) -> ReferenceHelper:
    """A sync() made while a pass runs gets that pass's result."""
    # BUG: single flight done as "if a pass is running, hand back its promise": a sync() the
    # app calls after a write, or after being told that something changed on the vault,
    # returns when a pass that started before the call ends, and what the call was for is not
    # done yet (SYNC-2).
    return _with(sync_waits_for_next_pass=False)(installation)


def _pages_by_stamp(
    cursor: int | None,
    overlap: int,
    window: Iterable[str] = (),
    after: tuple[int, Any] | None = None,
    *,
    settled: bool = False,
) -> dict[str, Any]:
    base = pull_filter(cursor, overlap, window, None, settled=settled)
    if after is None:
        return base
    # BUG: the next page starts after the last page's stamp, not after its last (stamp, _id):
    # the documents that share that stamp and did not fit in the page are skipped by this pass
    # (a later pass's overlap window may find them: by then the restore has "completed").
    newer = {"modified": {"$gt": after[0]}}
    return {"$and": [base, newer]} if base else newer


def pages_after_stamp(installation: Installation) -> ReferenceHelper:
    """A pull's next page starts after the previous page's last stamp, not its last _id."""
    return _with(pull_filter=_pages_by_stamp)(installation)


def push_skipped_after_refusal(installation: Installation) -> ReferenceHelper:
    """After a refusal the pass uploads nothing."""
    # BUG: a refusal ends the whole pass, uploads included (the original's early ``return
    # false``): one change the app keeps refusing blocks the backup.
    return _with(push_after_refusal=False)(installation)


def _by_key(key: str, version: Version) -> dict[str, Any]:
    # BUG: a new entry is written as the original helper did (W4), to whatever document of the
    # key the vault holds (``updateMany({key})``, else insert), instead of an upsert conditional
    # on its own version: another device's newer write of the key is overwritten.
    return {"key": key}


def find_then_insert(installation: Installation) -> ReferenceHelper:
    """A new entry is created by find-then-insert (or overwrite), not a conditional upsert."""
    return _with(create_filter=_by_key)(installation)


def push_before_pull(installation: Installation) -> ReferenceHelper:
    """Each context pushes its local changes before it pulls."""
    # BUG: "upload first, so the user's changes are safe on the vault before anything can go
    # wrong with the download": each context pushes, then pulls (SYNC-1 says pull, then push).
    return _with(pull_before_push=False)(installation)


def writes_sync_at_once(installation: Installation) -> ReferenceHelper:
    """Each write starts a pass at once: no debounce."""
    # BUG: every upsert and delete fires its pass right away instead of after a debounce, so
    # a burst of writes (an import, a multi-select delete) makes a pass of its own for the
    # first one and another for the rest, each with its pulls (SYNC-3).
    return _build(installation, debounce=0)


class _OneCursorStore(LocalStore):
    _SHARED = "*"  # no context is named so (a name starts with a letter or digit)

    def context_state(self, context: str) -> ContextState:
        state = super().context_state(context)
        shared = super().context_state(self._SHARED)
        # BUG: the pull progress is one row for the whole store (the original's single
        # watermark, W3): each context starts its pull where the last one pulled to, so a
        # context whose changes are older than another's never gets them, and a context
        # registered later starts from there instead of from nothing.
        return replace(
            state,
            cursor=shared.cursor,
            max_stamp=shared.max_stamp,
            window=shared.window,
            settled=shared.settled,
        )

    def save_context_state(self, state: ContextState) -> None:
        super().save_context_state(state)
        super().save_context_state(replace(state, name=self._SHARED))


def one_cursor_for_all_contexts(installation: Installation) -> ReferenceHelper:
    """Every context pulls from one shared cursor."""
    return _build(installation, store=_OneCursorStore)


class _NoLostEntriesStore(LocalStore):
    def live_synced_keys(self, context: str) -> list[str]:
        # BUG: the query for the synced live entries says ``pending = 1`` where it means
        # ``pending = 0``: it returns the entries not yet uploaded, which a full pass leaves
        # alone anyway, so a full pass never notices an entry the vault no longer has
        # (neither re-uploaded when the vault lost it nor deleted when its tombstone was purged).
        rows = self._execute(
            "SELECT key FROM entries WHERE context = ? AND deletion_date IS NULL "
            "AND base IS NOT NULL AND pending = 1 ORDER BY key",
            (context,),
        ).fetchall()
        return [str(row[0]) for row in rows]


def full_pass_ignores_missing(installation: Installation) -> ReferenceHelper:
    """A full pass never looks for the synced entries the vault no longer has."""
    return _build(installation, store=_NoLostEntriesStore)


class _OneSyncTimeStore(LocalStore):
    def save_context_state(self, state: ContextState) -> None:
        # BUG: one "last synced" time serves as both the last pull and the last full pass: a
        # device that syncs more often than full_sync_interval never does its periodic full
        # pass, and what its incremental pulls cannot see (a vault clock that stepped back)
        # never arrives (SYNC-11).
        if state.last_pull_ms is not None:
            state = replace(state, last_full_ms=state.last_pull_ms)
        super().save_context_state(state)


def full_pass_clock_reset_by_every_pull(installation: Installation) -> ReferenceHelper:
    """Every pull counts as a full pass for the periodic full pass."""
    return _build(installation, store=_OneSyncTimeStore)


def _held_means_unchanged(local: EntryState | None, remote: RemoteDoc) -> bool:
    # BUG: the full pass's projection is read as a presence check (which keys the vault still
    # has, what the reconciliation needs) and the versions in it are not compared: a key this
    # device holds, synced, is not read whole again, so a newer version that an incremental
    # pull could not see (a vault clock stepped back, SYNC-11; a device away, DEL-3) never
    # arrives, which is what the full pass is for.
    return local is not None and not local.pending and not local.stale


def full_pass_trusts_held_keys(installation: Installation) -> ReferenceHelper:
    """A full pass reads whole only the keys this device lacks, whatever their version."""
    return _with(unchanged=_held_means_unchanged)(installation)


def _from_the_start(
    cursor: int | None,
    overlap: int,
    window: Iterable[str] = (),
    after: tuple[int, Any] | None = None,
    *,
    settled: bool = False,
) -> dict[str, Any]:
    # BUG: the pull's filter is built without the saved cursor (the progress is read, but the
    # filter is made from a fresh state): every pass reads the whole collection. Nothing is
    # delivered twice, since every version read is known, so it looks right; it costs every
    # stored document on every pass (W9).
    return pull_filter(None, overlap, (), after, settled=False)


def idle_pass_reads_everything(installation: Installation) -> ReferenceHelper:
    """Every pull reads the whole collection, the cursor unused."""
    return _with(pull_filter=_from_the_start)(installation)


def pages_until_empty(installation: Installation) -> ReferenceHelper:
    """A pull pages until a short page: a last full page costs an empty one after it."""
    # BUG: each page asks for page_size documents and the pull stops at the first page that is
    # not full: when the changes fill the last page exactly, one more request comes back empty
    # (COST-2: each page asks for one document more than it takes).
    return _with(page_lookahead=False)(installation)


class _CollectionsForgottenStore(LocalStore):
    def save_context_state(self, state: ContextState) -> None:
        # BUG: "the collection exists" is left out of the saved progress (kept in memory only):
        # every app start creates every collection again, one request per context (COST-3).
        super().save_context_state(replace(state, collection_ready=False))


def collections_created_at_every_start(installation: Installation) -> ReferenceHelper:
    """Every start of the helper creates every context's collection again."""
    return _build(installation, store=_CollectionsForgottenStore)


PASS_ROWS: tuple[tuple[Factory, str, str], ...] = (
    (device_clock_cursor, "the pull cursor is the device clock, not the vault's stamps", "SYNC-4"),
    (cursor_past_refusal, "a refusal saves the cursor past the refused change", "SYNC-6 CB-7"),
    (
        full_pass_cursor_at_vault_clock,
        "a full pass moves the cursor to the vault's clock, ignoring writes in flight",
        "SYNC-10 SYNC-4",
    ),
    (
        settles_without_overlap,
        "the cursor settles once the vault's clock passes it, ignoring writes in flight",
        "SYNC-4",
    ),
    (sync_joins_running_pass, "a sync() made while a pass runs gets that pass's result", "SYNC-2"),
    (
        pages_after_stamp,
        "a pull's next page starts after the last page's stamp, not its _id",
        "SYNC-9",
    ),
    (push_skipped_after_refusal, "after a refusal the pass uploads nothing", "SYNC-8"),
    (
        find_then_insert,
        "a new entry is pushed by find-then-insert/overwrite, not a CAS upsert",
        "SYNC-7 ORD-4",
    ),
    (push_before_pull, "each context pushes its local changes before it pulls", "SYNC-1"),
    (writes_sync_at_once, "each write starts a pass at once: no debounce", "SYNC-3"),
    (one_cursor_for_all_contexts, "every context pulls from one shared cursor (W3)", "SYNC-5"),
    (
        full_pass_ignores_missing,
        "a full pass never looks for synced entries the vault no longer has",
        "SYNC-10",
    ),
    (
        full_pass_clock_reset_by_every_pull,
        "every pull counts as a full pass: no periodic full pass for a device syncing often",
        "SYNC-11",
    ),
    (
        full_pass_trusts_held_keys,
        "a full pass reads whole only the keys this device lacks, whatever their version",
        "SYNC-11 SYNC-10 DEL-3",
    ),
    (idle_pass_reads_everything, "every pull reads the whole collection (W9)", "COST-1"),
    (
        pages_until_empty,
        "a pull pages until a short page: an empty page after a full one",
        "COST-2",
    ),
    (
        collections_created_at_every_start,
        "every start creates every context's collection again",
        "COST-3",
    ),
)
"""Registry rows of this part: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""
