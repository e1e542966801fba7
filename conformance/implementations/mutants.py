"""Mutants of the reference: each is ``brh`` with ONE realistic bug, to prove the suite bites.

Every mutant is a factory (``conformance.implementations.mutants:<name>``, usable with
``--brh-impl``) and an entry of :data:`MUTANTS` (name -> the bug in one line, the factory).
``tests/conformance/test_mutants.py`` asserts that each one fails at least one conformance test;
``benchmarks/mutants.py`` measures which tests catch it and how fast.

How a bug is put in: through the helper's documented seams, never by patching a live object.
Most mutants swap one entry of the helper's :class:`brh.core.Rules` (a decision function or a
flag of the pass machine), as ``BackupRestoreHelper(..., rules=replace(RULES, decide=...))``.
The bugs of the local store itself are :class:`brh.store.LocalStore` subclasses, passed as the
helper's ``store``; a bug that is a wrong setting is one constructor option. Several devices,
mutated or not, share one process and one event loop. Each bug says in a ``BUG:`` comment
which real bug it stands for.

The mutants of a part of the SPEC may live in a module of their own, imported here (§1, §2, §11
and CB-9: :mod:`.mutants_api`), so that this module stays short; they are built the same way,
with :mod:`.seams`, and are attributes of this module like the others.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from brh import InvalidArgumentError
from brh.core import (
    Action,
    Decision,
    UploadFailure,
    Window,
    decide,
    pull_filter,
)
from brh.hlc import INCARNATION_SEPARATOR, HybridClock, Version
from brh.retry import RetryPolicy
from brh.store import ContextState, EntryState, LocalStore, Record
from brh.vault import VaultError
from brh.wire import RemoteDoc
from conformance.implementations.mutants_api import API_ROWS
from conformance.implementations.mutants_api import callback_shares_data as callback_shares_data
from conformance.implementations.mutants_api import close_waits_for_pass as close_waits_for_pass
from conformance.implementations.mutants_api import (
    collection_named_after_context as collection_named_after_context,
)
from conformance.implementations.mutants_api import contexts_by_name as contexts_by_name
from conformance.implementations.mutants_api import (
    creation_date_in_seconds as creation_date_in_seconds,
)
from conformance.implementations.mutants_api import key_only_lookup as key_only_lookup
from conformance.implementations.mutants_api import (
    recreated_key_stays_deleted as recreated_key_stays_deleted,
)
from conformance.implementations.mutants_api import register_after_close as register_after_close
from conformance.implementations.mutants_api import (
    second_registration_replaces as second_registration_replaces,
)
from conformance.implementations.mutants_api import strict_document_parse as strict_document_parse
from conformance.implementations.mutants_api import (
    vault_errors_not_reported as vault_errors_not_reported,
)
from conformance.implementations.seams import build as _build
from conformance.implementations.seams import with_rules as _with
from simulator.impl import Factory, Installation, ReferenceHelper

__all__ = ["MUTANTS", "Mutant"]


@dataclass(frozen=True)
class Mutant:
    """One mutant: its factory name, the bug it carries, and the factory."""

    name: str
    bug: str
    factory: Factory
    clauses: tuple[str, ...]
    """The SPEC clauses the bug breaks; the suite must fail it by a test naming one of them."""

    @property
    def spec(self) -> str:
        """The ``--brh-impl`` value that runs this mutant."""
        return f"{__name__}:{self.name}"


# -- retries and callbacks -------------------------------------------------------------------


def _never_again(policy: RetryPolicy, failures: int, rng: random.Random) -> float | None:
    # BUG: a pass that did not complete is counted but no retry timer is armed: a refused
    # change or an upload that met an outage waits for the app's next write or sync (W6).
    return None


def no_retry(installation: Installation) -> ReferenceHelper:
    """A failed or refused pass schedules no retry."""
    return _with(retry_delay=_never_again)(installation)


def _did_not_raise(answer: object) -> bool:
    # BUG: ``await callback(entry)`` and carry on: the answer is never looked at, so False
    # counts as handled (only an exception still counts as a refusal).
    return not isinstance(answer, BaseException)


def false_ignored(installation: Installation) -> ReferenceHelper:
    """A callback's False is taken as handled."""
    return _with(accepted=_did_not_raise)(installation)


def _echoing(local: Record | None, remote: RemoteDoc) -> Decision:
    decision = decide(local, remote)
    if (
        local is not None
        and decision.action in (Action.SKIP, Action.ECHO)
        and remote.version == local.version
        and not local.deleted
    ):
        # BUG: the "is this what I already hold?" check is missing: the device's own upload
        # (or a version it already applied), read back from the vault, is delivered to the
        # app as a modification.
        return Decision(Action.MODIFY, remote)
    return decision


def echo_own_writes(installation: Installation) -> ReferenceHelper:
    """The device's own writes come back to it as modifications."""
    return _with(decide=_echoing)(installation)


def _deleting_unknown(local: Record | None, remote: RemoteDoc) -> Decision:
    decision = decide(local, remote)
    if decision.action is Action.ADOPT and remote.deleted:
        # BUG: every remote tombstone goes to on_delete, even for a key the device never held:
        # a restore replays old deletions to the app.
        return Decision(Action.DELETE, remote)
    return decision


def delete_for_unknown_key(installation: Installation) -> ReferenceHelper:
    """A remote tombstone of a key the device does not hold is delivered to on_delete."""
    return _with(decide=_deleting_unknown)(installation)


def no_redelivery_after_crash(installation: Installation) -> ReferenceHelper:
    """A change whose callback was running when the device crashed is never delivered."""
    # BUG: a page is recorded as pulled (cursor and known versions saved) as soon as it
    # arrives, before its callbacks run: at-most-once delivery. A crash while a callback runs
    # loses the change (after the restart the pull starts past it), and so does a second
    # refusal of a change the cursor already reached.
    return _with(save_page_after_delivery=False)(installation)


# -- input -----------------------------------------------------------------------------------


def _json_only(key: str, data: Any) -> str:
    # BUG: data is checked only for being JSON, not for what a Hive vault can store: field
    # names starting with '$', integers beyond 64 bits and nesting past 99 levels are taken,
    # and the vault refuses the upload later, for ever (ERR-1).
    try:
        return json.dumps(data, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("data", f"is not JSON: {exc}") from None


def data_checked_as_json_only(installation: Installation) -> ReferenceHelper:
    """Upserted data is checked for being JSON only, not for what the vault can store."""
    return _with(encode_data=_json_only)(installation)


# -- pull progress ---------------------------------------------------------------------------


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


# -- pushes ----------------------------------------------------------------------------------


def refusal_halts_one_context(installation: Installation) -> ReferenceHelper:
    """A refusal ends its own context's pulls only: later contexts still deliver."""
    # BUG: the refusal is handled per context (a ``break`` out of the context's pull loop
    # instead of ending the pass): the next contexts pull and call the app in the same pass,
    # after it said "not now" (CB-6).
    return _with(refusal_halts_later_contexts=False)(installation)


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


class _LiveOnlyPushStore(LocalStore):
    def pending(self, context: str) -> list[Record]:
        # BUG: the upload queue selects pending *live* entries (``deletion_date IS NULL``):
        # tombstones never leave the device.
        return [record for record in super().pending(context) if not record.deleted]


def tombstone_not_propagated(installation: Installation) -> ReferenceHelper:
    """A deletion is never uploaded."""
    return _build(installation, store=_LiveOnlyPushStore)


# -- local store -----------------------------------------------------------------------------


class _SplitWriteStore(LocalStore):
    def __init__(self, path: Any = ":memory:") -> None:
        super().__init__(path)
        self._unmarked: set[tuple[str, str]] = set()

    def write_local(
        self,
        context: str,
        key: str,
        clock: HybridClock,
        change: Callable[[Record | None, Version], Record | None],
    ) -> Record | None:
        # BUG: a local write is split in two transactions: the data and clock now, the
        # "to upload" mark later, when the next pass reads the queue (kept in memory until
        # then). The app's call returns in between; a crash there loses the upload for good.
        with self._transaction():
            current = self.get(context, key)
            record = change(current, clock.stamp())
            if record is None:
                return None
            self._write(record, pending=current is not None and current.pending, stale=record.stale)
            self._save_clock(clock.last)
        self._unmarked.add((context, key))
        return record

    def pending(self, context: str) -> list[Record]:
        queued = sorted(item for item in self._unmarked if item[0] == context)
        if queued:
            with self._transaction():
                self._db.executemany(
                    "UPDATE entries SET pending = 1 WHERE context = ? AND key = ?", queued
                )
            self._unmarked.difference_update(queued)
        return super().pending(context)


def split_local_write(installation: Installation) -> ReferenceHelper:
    """A local write is two transactions: data first, the upload mark at the next pass."""
    return _build(installation, store=_SplitWriteStore)


class _WipeKeepsCursorStore(LocalStore):
    def wipe_context(self, context: str) -> int:
        # BUG: the wipe deletes the entries (and refusal streaks) but forgets the context's
        # progress row: the cursor and known versions survive, so the next pull starts past
        # everything and restores nothing.
        with self._transaction():
            cursor = self._db.execute("DELETE FROM entries WHERE context = ?", (context,))
            self._db.execute("DELETE FROM refusals WHERE context = ?", (context,))
            return cursor.rowcount


def wipe_keeps_cursor(installation: Installation) -> ReferenceHelper:
    """wipe_local_context_data keeps the context's cursor."""
    return _build(installation, store=_WipeKeepsCursorStore)


class _LocalTombstoneStore(LocalStore):
    def erase(self, context: str, key: str) -> bool:
        # BUG: a local-only delete soft-deletes the entry as an ordinary delete does, only
        # without the upload mark: the local tombstone keeps the vault's version, so no pass,
        # not even a full one, brings the entry back (until someone edits it elsewhere).
        with self._transaction():
            record = self.get(context, key)
            if record is None:
                return False
            gone = replace(record, deletion_date=record.modification_date)
            self._write(gone, pending=False, stale=False)
            return True


def local_delete_keeps_tombstone(installation: Installation) -> ReferenceHelper:
    """A locally_only delete leaves a synced local tombstone instead of forgetting the entry."""
    return _build(installation, store=_LocalTombstoneStore)


class _PageAtOnceStore(LocalStore):
    def __init__(self, path: Any = ":memory:") -> None:
        super().__init__(path)
        self._delivered: list[tuple[Record, Version | None, Version | None]] = []

    def apply_remote(self, record: Record, expected: Version | None, clock: Version | None) -> bool:
        # BUG: the versions the app accepted are kept in memory and stored with the page's
        # progress, after the page's last callback (one transaction per page). Meanwhile the
        # local copy does not show what the app was given: a read returns nothing, and a delete
        # the app makes from its own task finds no entry, does nothing, and is then overwritten
        # by the delivered version (ORD-7, CB-7).
        self._delivered.append((record, expected, clock))
        return True

    def save_context_state(self, state: ContextState) -> None:
        delivered, self._delivered = self._delivered, []
        for record, expected, clock in delivered:
            super().apply_remote(record, expected, clock)
        super().save_context_state(state)


def page_stored_after_last_callback(installation: Installation) -> ReferenceHelper:
    """A page's delivered versions are stored only after its last callback."""
    return _build(installation, store=_PageAtOnceStore)


def tombstones_kept_forever(installation: Installation) -> ReferenceHelper:
    """Vault tombstones are never purged."""
    # BUG: tombstone retention is switched off (the original never collected tombstones, W5):
    # every deletion stays on the vault for ever, and every restore and full pass reads them.
    return _build(installation, tombstone_retention=None)


# -- ordering --------------------------------------------------------------------------------


def _keeping_ties(local: Record | None, remote: RemoteDoc) -> Decision:
    decision = decide(local, remote)
    if (
        local is not None
        and decision.action in (Action.INSERT, Action.MODIFY, Action.DELETE, Action.ADOPT)
        and (remote.version.wall_ms, remote.version.counter)
        == (local.version.wall_ms, local.version.counter)
    ):
        # BUG: versions are compared by time and counter only; on a tie (two writes in one
        # millisecond) each device keeps its own copy, so devices disagree on the winner.
        return Decision(Action.KEEP_LOCAL, remote)
    return decision


def ties_by_local_order(installation: Installation) -> ReferenceHelper:
    """Two writes with equal time and counter: each device keeps its own."""
    return _with(decide=_keeping_ties)(installation)


def _wall_only(last: Version | None, seen: Version) -> Version | None:
    # BUG: versions follow the device clock alone; remote versions seen are not observed, so
    # a device whose clock is behind stamps its later edit older than what it saw (W2).
    return last


def clock_ignores_remote(installation: Installation) -> ReferenceHelper:
    """The hybrid clock does not observe remote versions."""
    return _with(observe=_wall_only)(installation)


# -- §1 API, §2 data, §11 errors (and CB-9) ----------------------------------------------------

_API_ROWS: tuple[tuple[Factory, str, str], ...] = API_ROWS
"""Registry rows of this section (its mutants are in :mod:`.mutants_api`, which keeps this
module short): ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""


# -- §3 callbacks, §8 deletion, §9 restore, ORD-5/ORD-6 ----------------------------------------

_Change = Callable[[Record | None, Version], Record | None]


def _modifying_deleted(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
    decision = decide(local, remote)
    if decision.action is Action.INSERT and local is not None:
        # BUG: "does the device hold this key?" asks for a local row, tombstones included (as the
        # original did): the app is asked to modify an entry it deleted (CB-1).
        return Decision(Action.MODIFY, remote)
    return decision


def modify_for_deleted_key(installation: Installation) -> ReferenceHelper:
    """A newer remote version of a key deleted locally is delivered to on_modify."""
    return _with(decide=_modifying_deleted)(installation)


def _inserting_unsynced(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
    decision = decide(local, remote)
    if decision.action is Action.MODIFY and local is not None and local.base is None:
        # BUG: insert or modify is told by whether the key was ever synced, not by whether the
        # device holds it: a newer write of a key created here, not uploaded yet, is an insert.
        return Decision(Action.INSERT, remote)
    return decision


def insert_for_unsynced_key(installation: Installation) -> ReferenceHelper:
    """A newer remote version of a key held live but never synced goes to on_insert."""
    return _with(decide=_inserting_unsynced)(installation)


class _SameDataStore(LocalStore):
    def apply_remote(self, record: Record, expected: Version | None, clock: Version | None) -> bool:
        current = self.get(record.context, record.key)
        if current and not current.deleted and not record.deleted and current.data == record.data:
            # BUG: a delivered version with the local copy's data is "nothing to store": the
            # entry keeps its older version, delivered again by the next full pass (CB-5).
            return True
        return super().apply_remote(record, expected, clock)


def accepted_same_data_not_recorded(installation: Installation) -> ReferenceHelper:
    """An accepted remote version whose data equals the local copy's is not recorded."""
    return _build(installation, store=_SameDataStore)


def sync_allowed_in_callback(installation: Installation) -> ReferenceHelper:
    """sync() and wipe called from inside a callback are let through."""
    # BUG: only entry writes are refused in a callback: sync() waits for a pass that waits for
    # the callback (W11's deadlock), and a wipe clears the context under the pass (CB-8).
    calls = frozenset({"upsert_database_entry", "delete_database_entry"})
    return _with(refused_in_callback=calls)(installation)


def no_full_pass_after_absence(installation: Installation) -> ReferenceHelper:
    """A device back after weeks away pulls incrementally, as if it had never left."""
    # BUG: purging without the absence rule: a device away for longer than the retention pulls
    # from its old cursor and never learns of deletions whose tombstones were purged; its next
    # periodic full pass takes those entries for ones the vault lost and uploads them (DEL-3).
    return _with(full_pass_when_away=False)(installation)


class _BlindDeleteStore(LocalStore):
    def write_local(
        self, context: str, key: str, clock: HybridClock, change: _Change
    ) -> Record | None:
        def tombstone(current: Record | None, version: Version) -> Record | None:
            # BUG: a delete is stored as a tombstone whatever the store held (INSERT OR REPLACE):
            # deleting a key never seen, forgotten or deleted uploads a new tombstone (DEL-4).
            now, base = version.wall_ms, current.base if current else None
            created = current.creation_date if current else now
            gone = Record(context, key, None, created, now, now, version, base, pending=True)
            return change(current, version) or gone

        return super().write_local(context, key, clock, tombstone)


def delete_of_unheld_key_uploaded(installation: Installation) -> ReferenceHelper:
    """Deleting a key the device does not hold live uploads a tombstone."""
    return _build(installation, store=_BlindDeleteStore)


def own_writes_not_restored(installation: Installation) -> ReferenceHelper:
    """A document this device id wrote is never delivered to it, even after a reinstall."""
    own = installation.device_id

    def skipping_own(local: Record | EntryState | None, remote: RemoteDoc) -> Decision:
        decision = decide(local, remote)
        writer = remote.version.writer.split(INCARNATION_SEPARATOR, 1)[0]
        if decision.action is Action.INSERT and writer == own:
            # BUG: "no echo" judged by who wrote a document, not by what the device holds: a
            # reinstalled device never gives its app back what it wrote before (RES-1).
            return Decision(Action.ADOPT, remote)
        return decision

    return _with(decide=skipping_own)(installation)


class _RequeueNothingStore(LocalStore):
    def requeue_all(self, context: str) -> int:
        # BUG: a lost collection is only created again: entries stay marked as synced, the cursor
        # stays, and only later changes reach it (until a full pass a day later) (RES-3).
        with self._transaction():
            self._execute("UPDATE contexts SET collection_ready = 0 WHERE name = ?", (context,))
        return 0


def lost_collection_not_refilled(installation: Installation) -> ReferenceHelper:
    """A collection the vault lost is created again but the local entries are not uploaded."""
    return _build(installation, store=_RequeueNothingStore)


def _device_alone(device: str, incarnation: str) -> str:
    # BUG: versions name the device alone: a reinstalled app, its clock restarted from what it
    # restored, reissues a version of its old installation's, taken for that write (ORD-1).
    return device


def writer_without_incarnation(installation: Installation) -> ReferenceHelper:
    """The writer of a version is the device id alone."""
    return _with(writer=_device_alone)(installation)


class _ClockInMemoryStore(LocalStore):
    def write_local(
        self, context: str, key: str, clock: HybridClock, change: _Change
    ) -> Record | None:
        # BUG: the clock is read from the store only when the helper opens it: a second helper
        # on the file stamps a later write lower than an earlier one of the other (ORD-1).
        with self._transaction():
            record = change(self.get(context, key), clock.stamp())
            if record is None:
                return None
            self._write(record, pending=True, stale=record.stale)
            self._save_clock(clock.last)
            return record


def clock_not_reread_per_write(installation: Installation) -> ReferenceHelper:
    """A local write is stamped from the helper's clock in memory, not the store's."""
    return _build(installation, store=_ClockInMemoryStore)


def _inserting(key: str, version: Version) -> dict[str, Any]:
    # BUG: a new entry is inserted (a filter matching nothing, as insertOne), not upserted on
    # its version: a create whose answer was lost, sent again, stores a second copy (ORD-5).
    return {"key": key, "brhVersion": {"$in": []}}


def create_by_insert(installation: Installation) -> ReferenceHelper:
    """A new entry is created by a plain insert: a retried create duplicates it."""
    return _with(create_filter=_inserting)(installation)


class _HalfUndeletedStore(LocalStore):
    def apply_remote(self, record: Record, expected: Version | None, clock: Version | None) -> bool:
        current = self.get(record.context, record.key)
        if current is not None and current.deleted and not record.deleted:
            # BUG (W7): a remote edit over a local tombstone copies its data, dates and version
            # but not its deletionDate: the entry is left both deleted and current (ORD-6).
            record = replace(record, deletion_date=current.deletion_date)
        return super().apply_remote(record, expected, clock)


def edit_keeps_local_deletion(installation: Installation) -> ReferenceHelper:
    """A remote edit over a local delete keeps the local deletionDate."""
    return _build(installation, store=_HalfUndeletedStore)


_DELIVERY_ROWS: tuple[tuple[Factory, str, str], ...] = (
    (modify_for_deleted_key, "a newer version of a key deleted here goes to on_modify", "CB-1"),
    (insert_for_unsynced_key, "a newer version of a key held but never synced: on_insert", "CB-2"),
    (accepted_same_data_not_recorded, "an accepted version of unchanged data is lost", "CB-5"),
    (sync_allowed_in_callback, "sync() and wipe from inside a callback are let through", "CB-8"),
    (no_full_pass_after_absence, "no full pass after an absence of half the retention", "DEL-3"),
    (delete_of_unheld_key_uploaded, "deleting a key not held live uploads a tombstone", "DEL-4"),
    (own_writes_not_restored, "documents this device id wrote are never delivered to it", "RES-1"),
    (lost_collection_not_refilled, "a lost collection is not refilled from the devices", "RES-3"),
    (writer_without_incarnation, "a version's writer is the device id alone", "ORD-1"),
    (clock_not_reread_per_write, "writes are stamped from the clock in memory", "ORD-1"),
    (create_by_insert, "a new entry is inserted: a retried create duplicates it", "ORD-5"),
    (edit_keeps_local_deletion, "a remote edit over a local delete keeps it deleted", "ORD-6"),
)
"""Registry rows of this section: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""


# -- §4 sync passes, §10 cost ------------------------------------------------------------------


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


_PASS_ROWS: tuple[tuple[Factory, str, str], ...] = (
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
"""Registry rows of this section: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""


# -- §5 retry, §6 offline ----------------------------------------------------------------------


def _initial_delay_every_time(
    policy: RetryPolicy, failures: int, rng: random.Random
) -> float | None:
    # BUG: the retry timer is armed with the first delay every time (the failure count is
    # kept but never used): no backoff, so an outage gets a pass from every device every
    # second for as long as it lasts.
    return policy.delay(1, rng)


def retry_without_backoff(installation: Installation) -> ReferenceHelper:
    """A failed pass is always retried after the initial delay: the backoff never grows."""
    return _with(retry_delay=_initial_delay_every_time)(installation)


def backoff_never_resets(installation: Installation) -> ReferenceHelper:
    """The backoff counts every failed pass since the helper started: a success never resets it."""
    failed = itertools.count(1)

    def counting(policy: RetryPolicy, failures: int, rng: random.Random) -> float | None:
        # BUG: the backoff keeps its own count of failed passes, which nothing resets: after a
        # completed pass, the next outage starts where the last one ended (at the cap), so a
        # device back from a long outage waits minutes on the first error of a short one.
        return policy.delay(next(failed), rng)

    return _with(retry_delay=counting)(installation)


def vault_error_ends_pass(installation: Installation) -> ReferenceHelper:
    """A vault error in one context ends the whole pass: later contexts are skipped."""
    # BUG: one try around the loop over contexts instead of one per context: a vault error in
    # one context (its collection unavailable, say) skips every later context for the pass,
    # and for every retry while it lasts.
    return _with(vault_error_ends_context_only=False)(installation)


def no_request_deadline(installation: Installation) -> ReferenceHelper:
    """Vault requests have no overall deadline (a week)."""
    # BUG: the HTTP client's defaults are kept: an idle-read timeout, no overall deadline. A
    # vault that never answers, or answers a byte at a time, holds the pass, and every sync()
    # waiting behind it, for as long as it takes.
    return _build(installation, request_deadline=7 * 86400.0)


def _every_failure_stops_uploads(error: VaultError) -> UploadFailure:
    # BUG: every failed upload is handled as the vault being in trouble: the context's uploads
    # stop for the pass and nothing is held back, so a document the vault will never take (too
    # large, invalid for it) blocks every upload after it, in every pass.
    return UploadFailure.TRANSPORT


def refused_upload_blocks_others(installation: Installation) -> ReferenceHelper:
    """An upload the vault refuses stops the context's other uploads, in every pass."""
    return _with(upload_failure=_every_failure_stops_uploads)(installation)


def _every_failure_blamed_on_the_entry(error: VaultError) -> UploadFailure:
    # BUG: every failed upload is counted against its entry: a frozen vault, an expired token
    # or a lost connection while uploading puts each queued change on a backoff of its own,
    # so the first pass after the outage skips them.
    return UploadFailure.ENTRY


def outage_blamed_on_entries(installation: Installation) -> ReferenceHelper:
    """Upload errors that say nothing about the document hold the entry back anyway."""
    return _with(upload_failure=_every_failure_blamed_on_the_entry)(installation)


def write_awaits_sync(installation: Installation) -> ReferenceHelper:
    """An upsert or delete awaits the pass it starts."""
    # BUG: the write awaits the sync it starts (as the original's earlier versions did): an
    # app write waits for the vault, for as long as the network takes to fail.
    return _with(write_returns_before_sync=False)(installation)


class _MemoryQueueStore(LocalStore):
    def __init__(self, path: Any = ":memory:") -> None:
        super().__init__(path)
        self._queue: set[tuple[str, str]] = set()

    def write_local(
        self,
        context: str,
        key: str,
        clock: HybridClock,
        change: Callable[[Record | None, Version], Record | None],
    ) -> Record | None:
        # BUG: the upload queue is a set in memory that the app's writes add to; the store
        # keeps the data and the clock only. A restart forgets every change not uploaded yet
        # (its data stays, so the device shows it, but no pass uploads it).
        with self._transaction():
            current = self.get(context, key)
            record = change(current, clock.stamp())
            if record is None:
                return None
            self._write(record, pending=current is not None and current.pending, stale=record.stale)
            self._save_clock(clock.last)
        self._queue.add((context, key))
        return record

    def pending(self, context: str) -> list[Record]:
        found = {record.key: record for record in super().pending(context)}
        for queued_context, key in sorted(self._queue):
            record = self.get(context, key) if queued_context == context else None
            if record is not None and key not in found:
                found[key] = replace(record, pending=True)
        return [found[key] for key in sorted(found)]

    def set_base(
        self,
        context: str,
        key: str,
        base: Version,
        *,
        pending: bool | None = None,
        clear_if_version: Version | None = None,
    ) -> None:
        super().set_base(context, key, base, pending=pending, clear_if_version=clear_if_version)
        record = self.get(context, key)
        if clear_if_version is not None and (record is None or record.version == clear_if_version):
            self._queue.discard((context, key))


def pending_queue_in_memory(installation: Installation) -> ReferenceHelper:
    """The queue of changes to upload is kept in memory only."""
    return _build(installation, store=_MemoryQueueStore)


_RETRY_ROWS: tuple[tuple[Factory, str, str], ...] = (
    (retry_without_backoff, "a failed pass is retried after the first delay every time", "RETRY-2"),
    (backoff_never_resets, "a completed pass does not reset the backoff", "RETRY-2"),
    (vault_error_ends_pass, "a vault error in one context skips the later contexts", "RETRY-4"),
    (no_request_deadline, "vault requests have no overall deadline", "RETRY-5"),
    (
        refused_upload_blocks_others,
        "an upload the vault refuses stops the context's other uploads",
        "RETRY-6",
    ),
    (write_awaits_sync, "an upsert or delete awaits the pass it starts", "OFF-1"),
    (
        outage_blamed_on_entries,
        "upload errors of an outage hold each queued change back",
        "OFF-3 RETRY-6",
    ),
    (pending_queue_in_memory, "the upload queue is kept in memory only", "OFF-4"),
)
"""Registry rows of this section: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""


# -- the registry ----------------------------------------------------------------------------


def _registry(*mutants: tuple[Factory, str, str]) -> dict[str, Mutant]:
    """Mutants from ``(factory, bug, "CLAUSE-1 CLAUSE-2")`` rows."""
    return {
        factory.__name__: Mutant(factory.__name__, bug, factory, tuple(clauses.split()))
        for factory, bug, clauses in mutants
    }


MUTANTS: dict[str, Mutant] = _registry(
    (no_retry, "a pass that did not complete schedules no retry", "RETRY-1"),
    (false_ignored, "a callback's False is taken as handled", "CB-6"),
    (
        data_checked_as_json_only,
        "data is checked for being JSON only, not for what a vault stores",
        "ERR-1",
    ),
    (device_clock_cursor, "the pull cursor is the device clock, not the vault's stamps", "SYNC-4"),
    (cursor_past_refusal, "a refusal saves the cursor past the refused change", "SYNC-6 CB-7"),
    (
        find_then_insert,
        "a new entry is pushed by find-then-insert/overwrite, not a CAS upsert",
        "SYNC-7 ORD-4",
    ),
    (echo_own_writes, "the device's own writes come back to it as modifications", "CB-4"),
    (split_local_write, "a local write is two transactions: data now, upload mark later", "OFF-2"),
    (
        refusal_halts_one_context,
        "a refusal ends its own context only: later ones still deliver",
        "CB-6",
    ),
    (push_skipped_after_refusal, "after a refusal the pass uploads nothing", "SYNC-8"),
    (tombstone_not_propagated, "a deletion is never uploaded", "CB-3 DEL-1"),
    (wipe_keeps_cursor, "wiping a context keeps its cursor", "RES-2 API-5"),
    (tombstones_kept_forever, "vault tombstones are never purged", "DEL-2"),
    (ties_by_local_order, "two writes in one millisecond: each device keeps its own", "ORD-2"),
    (no_redelivery_after_crash, "a callback cut short by a crash is never delivered again", "CB-7"),
    (clock_ignores_remote, "the hybrid clock does not observe remote versions", "ORD-3 ORD-1"),
    (
        delete_for_unknown_key,
        "a tombstone of a key the device never held goes to on_delete",
        "CB-4",
    ),
    (
        local_delete_keeps_tombstone,
        "a local-only delete leaves a tombstone: never restored",
        "API-3",
    ),
    (
        pages_after_stamp,
        "a pull's next page starts after the last page's stamp, not its _id",
        "SYNC-9",
    ),
    (sync_joins_running_pass, "a sync() made while a pass runs gets that pass's result", "SYNC-2"),
    (
        page_stored_after_last_callback,
        "a page's delivered versions are stored after its last one",
        "CB-7 ORD-7",
    ),
    *_API_ROWS,
    *_DELIVERY_ROWS,
    *_PASS_ROWS,
    *_RETRY_ROWS,
)
"""Every mutant, by name (the factory's name in this module)."""
