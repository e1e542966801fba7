"""When a context's pull is a full pass by itself (SYNC-10, SYNC-11, DEL-3), and which keys
such a pass reads whole (COST-2).

Besides ``sync(full=True)`` and a context without a cursor (its first pull, or one after a
wipe), a pull reads every document when the device was away for over half the tombstone
retention (DEL-3: tombstones it never saw may have been purged meanwhile) or when its last full
pass is older than ``full_sync_interval`` (SYNC-11: it repairs what an incremental pull cannot
see). Both are judged on the device's clock, from the context's stored progress.

A full pass of a context that has a cursor reads a projection of every document first
(:data:`brh.core.FULL_PASS_PROJECTION`), in ``_id`` order (:data:`FULL_PASS_SORT`,
:func:`full_pass_filter`); :func:`keys_to_fetch` tells, per page, the keys whose whole documents
it then fetches: every key but those the local entry already holds at that version
(:attr:`brh.core.Rules.unchanged`). The projection has no vault stamps, so such a pass moves the
cursor only once complete, to what the vault's clock read before it began
(:func:`brh.core.full_pass_cursor`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from brh import effects as fx
from brh.options import SyncOptions
from brh.records import ContextState, EntryState
from brh.vault import ObjectId
from brh.wire import RemoteDoc

__all__ = [
    "AWAY",
    "FULL_PASS_SORT",
    "PERIODIC",
    "full_pass_filter",
    "full_pass_reason",
    "keys_to_fetch",
]

AWAY = "away for over half the tombstone retention"
PERIODIC = "full_sync_interval"


def full_pass_reason(
    options: SyncOptions, state: ContextState, now_ms: int, *, away: bool = True
) -> str | None:
    """Why this pull of ``state``'s context is a full pass by itself at ``now_ms`` (device
    clock, ms): :data:`AWAY` (DEL-3; only if ``away``, the rules'
    :attr:`~brh.core.Rules.full_pass_when_away`), :data:`PERIODIC` (SYNC-11), or None."""
    if (
        away
        and options.tombstone_retention is not None
        and state.last_pull_ms is not None
        and now_ms - state.last_pull_ms > options.tombstone_retention * 1000 / 2
    ):
        return AWAY
    if (
        options.full_sync_interval is not None
        and state.last_full_ms is not None
        and now_ms - state.last_full_ms > options.full_sync_interval * 1000
    ):
        return PERIODIC
    return None


def keys_to_fetch(
    context: str,
    page: list[RemoteDoc],
    unchanged: Callable[[EntryState | None, RemoteDoc], bool],
) -> Generator[fx.Effect, Any, list[str]]:
    """The keys of a page of projections whose whole documents the full pass reads, in the
    page's order (a part of the pass machine: it yields effects, see :mod:`brh.machine`).

    A key counts as unchanged only if it has one document in the page and ``unchanged`` says
    so of the local entry, and the app has no refusal streak for it (processing the key would
    end that streak, CB-6). Several documents of one key are decided whole: one may be an older
    duplicate to delete, or a newer version (ORD-4)."""
    copies: dict[str, int] = {}
    for doc in page:
        copies[doc.key] = copies.get(doc.key, 0) + 1
    streaks: bool = yield fx.HasRefusals(context)
    changed: list[str] = []
    for doc in page:
        key = doc.key
        count = copies[key]
        if count == 0:  # (a key already listed)
            continue
        copies[key] = 0
        if count == 1:
            local: EntryState | None = yield fx.LocalState(context, key)
            if unchanged(local, doc) and not (streaks and (yield fx.Refusals(context, key))):
                continue
        changed.append(key)
    return changed


FULL_PASS_SORT: tuple[tuple[str, int], ...] = (("_id", 1),)
"""The order a full pass reads its projections in: a document keeps its ``_id`` when it is
updated, so each document that exists throughout the pass is read exactly once, at its version
of that moment, and no vault stamp is needed for the keyset (COST-2)."""


def full_pass_filter(after: ObjectId | None) -> dict[str, Any]:
    """The filter of a page of a full pass's projections: the documents after the previous
    page's last ``_id`` (keyset paging), or every document for the first page."""
    return {} if after is None else {"_id": {"$gt": after}}
