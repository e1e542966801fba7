"""The mutants of SPEC §3 (callbacks), §7 (ordering and conflicts), §8 (deletion)
and §9 (restore).

:mod:`.mutants` registers them: each is ``brh`` with one realistic bug, put in through one
documented seam (:mod:`.seams`), with a ``BUG:`` comment saying which real bug it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from brh.core import Action, Decision, decide
from brh.hlc import HybridClock, Version, writer_device
from brh.store import ContextState, EntryState, LocalStore, Record
from brh.wire import RemoteDoc
from conformance.implementations.seams import build as _build
from conformance.implementations.seams import with_rules as _with
from simulator.impl import Factory, Installation, ReferenceHelper

__all__ = ["DELIVERY_ROWS"]


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


def refusal_halts_one_context(installation: Installation) -> ReferenceHelper:
    """A refusal ends its own context's pulls only: later contexts still deliver."""
    # BUG: the refusal is handled per context (a ``break`` out of the context's pull loop
    # instead of ending the pass): the next contexts pull and call the app in the same pass,
    # after it said "not now" (CB-6).
    return _with(refusal_halts_later_contexts=False)(installation)


class _LiveOnlyPushStore(LocalStore):
    def pending(self, context: str) -> list[Record]:
        # BUG: the upload queue selects pending *live* entries (``deletion_date IS NULL``):
        # tombstones never leave the device.
        return [record for record in super().pending(context) if not record.deleted]


def tombstone_not_propagated(installation: Installation) -> ReferenceHelper:
    """A deletion is never uploaded."""
    return _build(installation, store=_LiveOnlyPushStore)


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


class _LateOlderDeliveryStore(LocalStore):
    def _written_here(self, version: Version) -> bool:
        # BUG: any newer version recorded while a callback ran counts as the app's own write,
        # so an older delivery that returns after another helper on this store delivered and
        # recorded a newer one is not recorded: the app keeps the older one for good (ORD-1).
        return True


def late_older_delivery_ignored(installation: Installation) -> ReferenceHelper:
    """Two helpers on one store: an older delivery returning last leaves the app stale."""
    return _build(installation, store=_LateOlderDeliveryStore)


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
        writer = writer_device(remote.version.writer)
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


DELIVERY_ROWS: tuple[tuple[Factory, str, str], ...] = (
    (false_ignored, "a callback's False is taken as handled", "CB-6"),
    (echo_own_writes, "the device's own writes come back to it as modifications", "CB-4"),
    (
        delete_for_unknown_key,
        "a tombstone of a key the device never held goes to on_delete",
        "CB-4",
    ),
    (no_redelivery_after_crash, "a callback cut short by a crash is never delivered again", "CB-7"),
    (
        refusal_halts_one_context,
        "a refusal ends its own context only: later ones still deliver",
        "CB-6",
    ),
    (tombstone_not_propagated, "a deletion is never uploaded", "CB-3 DEL-1"),
    (wipe_keeps_cursor, "wiping a context keeps its cursor", "RES-2 API-5"),
    (
        page_stored_after_last_callback,
        "a page's delivered versions are stored after its last one",
        "CB-7 ORD-7",
    ),
    (tombstones_kept_forever, "vault tombstones are never purged", "DEL-2"),
    (ties_by_local_order, "two writes in one millisecond: each device keeps its own", "ORD-2"),
    (clock_ignores_remote, "the hybrid clock does not observe remote versions", "ORD-3 ORD-1"),
    (modify_for_deleted_key, "a newer version of a key deleted here goes to on_modify", "CB-1"),
    (insert_for_unsynced_key, "a newer version of a key held but never synced: on_insert", "CB-2"),
    (accepted_same_data_not_recorded, "an accepted version of unchanged data is lost", "CB-5"),
    (
        late_older_delivery_ignored,
        "an older delivery returning after another helper's newer one is not recorded",
        "ORD-1 CB-5",
    ),
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
"""Registry rows of this part: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""
