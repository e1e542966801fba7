"""Mutants of the reference: each is ``brh`` with ONE realistic bug, to prove the suite bites.

Every mutant is a factory (``conformance.implementations.mutants:<name>``, usable with
``--brh-impl``) and an entry of :data:`MUTANTS` (name -> the bug in one line, the factory).
``tests/test_mutants.py`` asserts that each one fails at least one conformance test;
``benchmarks/mutants.py`` measures which tests catch it and how fast.

How a bug is put in: a mutant builds the reference helper through
:func:`simulator.impl.reference_factory`, then turns *that instance's* engine, scheduler, store or
clock into an instance of a subclass that overrides one step (:func:`_become`). Nothing global is
patched: several devices, mutated or not, share one process and one event loop. Each override
says in a ``BUG:`` comment which real bug it stands for.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from brh.core import Action, Decision
from brh.engine import Context, PassStats, Refused, SyncEngine
from brh.entry import Entry, SyncResult
from brh.hlc import HybridClock, Version
from brh.scheduler import PassScheduler
from brh.store import EntryState, LocalStore, Record
from brh.wire import RemoteDoc, document_fields
from simulator.impl import Factory, Installation, ReferenceHelper, reference_factory

__all__ = ["MUTANTS", "Mutant"]


@dataclass(frozen=True)
class Mutant:
    """One mutant: its factory name, the bug it carries, and the factory."""

    name: str
    bug: str
    factory: Factory

    @property
    def spec(self) -> str:
        """The ``--brh-impl`` value that runs this mutant."""
        return f"{__name__}:{self.name}"


def _become(instance: object, mutant: type) -> None:
    """Make ``instance`` (of the class ``mutant`` derives from) an instance of ``mutant``: the
    override applies to this one object, not to the class every other helper uses."""
    if mutant.__bases__[0] is not type(instance):
        raise TypeError(f"{mutant.__name__} does not derive from {type(instance).__name__}")
    instance.__class__ = mutant


def _build(
    installation: Installation,
    *,
    engine: type[SyncEngine] | None = None,
    scheduler: type[PassScheduler] | None = None,
    store: type[LocalStore] | None = None,
    clock: type[HybridClock] | None = None,
) -> ReferenceHelper:
    """The reference helper for ``installation``, with the given pieces mutated."""
    helper = reference_factory(installation)
    brh = helper.brh
    if engine is not None:
        _become(brh._engine, engine)
        # The scheduler holds the bound method it was built with: bind the mutant's.
        brh._scheduler._run_pass = brh._engine.run_pass
    if scheduler is not None:
        _become(brh._scheduler, scheduler)
    if store is not None:
        _become(brh.store, store)
    if clock is not None:
        _become(brh._clock, clock)
    return helper


# -- retries ---------------------------------------------------------------------------------


class _NoRetryScheduler(PassScheduler):
    def _after(self, result: SyncResult) -> None:
        if result.completed:
            self.failures = 0
            self._on_retrying(False)
            return
        # BUG: a pass that did not complete is counted but no retry timer is armed: a refused
        # change or an upload that met an outage waits for the app's next write or sync (W6).
        self.failures += 1
        self._on_retrying(True)


def no_retry(installation: Installation) -> ReferenceHelper:
    """A failed or refused pass schedules no retry."""
    return _build(installation, scheduler=_NoRetryScheduler)


# -- callbacks -------------------------------------------------------------------------------


def _answer_ignored(callback: Callable[[Entry], Any]) -> Callable[[Entry], Awaitable[bool]]:
    async def call(entry: Entry) -> bool:
        outcome = callback(entry)
        if inspect.isawaitable(outcome):
            await outcome
        return True

    return call


class _FalseIgnoredEngine(SyncEngine):
    async def _deliver(self, ctx: Context, action: Action, remote: RemoteDoc) -> bool:
        # BUG: ``await callback(entry)`` and carry on: the answer is never looked at, so False
        # counts as handled (only an exception still counts as a refusal).
        ignoring = replace(
            ctx,
            on_insert=_answer_ignored(ctx.on_insert),
            on_modify=_answer_ignored(ctx.on_modify),
            on_delete=_answer_ignored(ctx.on_delete),
        )
        return await super()._deliver(ignoring, action, remote)


def false_ignored(installation: Installation) -> ReferenceHelper:
    """A callback's False is taken as handled."""
    return _build(installation, engine=_FalseIgnoredEngine)


class _EchoEngine(SyncEngine):
    async def _apply(
        self,
        ctx: Context,
        epoch: int,
        local: EntryState | None,
        decision: Decision,
        stats: PassStats,
    ) -> None:
        remote = decision.remote
        if (
            local is not None
            and decision.action in (Action.SKIP, Action.ECHO)
            and remote.version == local.version
            and not local.deleted
        ):
            # BUG: the "is this what I already hold?" check is missing: the device's own
            # upload (or a version it already applied), read back from the vault, is delivered
            # to the app as a modification.
            decision = Decision(Action.MODIFY, remote)
        await super()._apply(ctx, epoch, local, decision, stats)


def echo_own_writes(installation: Installation) -> ReferenceHelper:
    """The device's own writes come back to it as modifications."""
    return _build(installation, engine=_EchoEngine)


class _DeleteUnknownEngine(SyncEngine):
    async def _apply(
        self,
        ctx: Context,
        epoch: int,
        local: EntryState | None,
        decision: Decision,
        stats: PassStats,
    ) -> None:
        remote = decision.remote
        # BUG: every remote tombstone goes to on_delete, even for a key the device never held:
        # a restore replays old deletions to the app.
        if (
            decision.action is Action.ADOPT
            and remote.deleted
            and not await self._deliver(ctx, Action.DELETE, remote)
        ):
            self.store.note_refusal(ctx.name, remote.key)
            raise Refused(ctx.name, remote.key)
        await super()._apply(ctx, epoch, local, decision, stats)


def delete_for_unknown_key(installation: Installation) -> ReferenceHelper:
    """A remote tombstone of a key the device does not hold is delivered to on_delete."""
    return _build(installation, engine=_DeleteUnknownEngine)


class _CrashForgetsEngine(SyncEngine):
    _fetching_stale = False

    async def _pull_stale(self, ctx: Context, epoch: int, stats: PassStats) -> None:
        self._fetching_stale = True
        try:
            await super()._pull_stale(ctx, epoch, stats)
        finally:
            self._fetching_stale = False

    async def _process(
        self, ctx: Context, epoch: int, docs: list[RemoteDoc], stats: PassStats
    ) -> None:
        stamped = [doc for doc in docs if doc.stamp is not None]
        if stamped and not self._fetching_stale:
            # BUG: the page is recorded as pulled (cursor and known versions saved) as soon as
            # it arrives, before its callbacks run: at-most-once delivery. A crash while a
            # callback runs loses the change (after the restart the pull starts past it), and
            # so does a second refusal of a change the cursor already reached (the first one
            # winds the cursor back to it).
            state = self.store.context_state(ctx.name)
            newest = max(doc.stamp for doc in stamped if doc.stamp is not None)
            cursor = newest if state.cursor is None else max(state.cursor, newest)
            window = set(state.window) | {
                (doc.stamp, doc.version.encode()) for doc in stamped if doc.stamp is not None
            }
            max_stamp = newest if state.max_stamp is None else max(state.max_stamp, newest)
            self._save_progress(ctx, epoch, cursor, max_stamp, window)
        await super()._process(ctx, epoch, docs, stats)


def no_redelivery_after_crash(installation: Installation) -> ReferenceHelper:
    """A change whose callback was running when the device crashed is never delivered."""
    return _build(installation, engine=_CrashForgetsEngine)


# -- pull progress ---------------------------------------------------------------------------


class _DeviceClockCursorEngine(SyncEngine):
    async def _pull(self, ctx: Context, epoch: int, full: bool, stats: PassStats) -> None:
        await super()._pull(ctx, epoch, full, stats)
        # BUG: the next pull starts from "when I last synced" by the device's clock instead of
        # the newest vault stamp read: a device whose clock runs ahead skips everything the
        # vault stamps before that time.
        state = self.store.context_state(ctx.name)
        self._save_state(ctx, epoch, replace(state, cursor=self.clock.now_ms() // 1000))


def device_clock_cursor(installation: Installation) -> ReferenceHelper:
    """The pull cursor is taken from the device clock, not from the vault's stamps."""
    return _build(installation, engine=_DeviceClockCursorEngine)


class _CursorPastRefusalEngine(SyncEngine):
    _refused_page: list[RemoteDoc] | None = None

    async def _process(
        self, ctx: Context, epoch: int, docs: list[RemoteDoc], stats: PassStats
    ) -> None:
        self._refused_page = None
        try:
            await super()._process(ctx, epoch, docs, stats)
        except Refused:
            self._refused_page = docs
            raise

    def _save_progress(
        self,
        ctx: Context,
        epoch: int,
        cursor: int,
        max_stamp: int | None,
        window: set[tuple[int, str]],
    ) -> None:
        page, self._refused_page = self._refused_page, None
        if page:
            # BUG: on a refusal the page's progress is saved as if the page had been delivered
            # (cursor at its last stamp, its versions known): the refused change is never
            # read again by an incremental pull.
            stamped = [(doc.stamp, doc.version.encode()) for doc in page if doc.stamp is not None]
            cursor = max([cursor, *(stamp for stamp, _ in stamped)])
            window = window | set(stamped)
        super()._save_progress(ctx, epoch, cursor, max_stamp, window)


def cursor_past_refusal(installation: Installation) -> ReferenceHelper:
    """A refusal saves the cursor past the refused change."""
    return _build(installation, engine=_CursorPastRefusalEngine)


# -- pushes ----------------------------------------------------------------------------------


class _PushHaltsEngine(SyncEngine):
    _halted = False

    async def run_pass(self, full: bool) -> SyncResult:
        self._halted = False
        return await super().run_pass(full)

    async def _process(
        self, ctx: Context, epoch: int, docs: list[RemoteDoc], stats: PassStats
    ) -> None:
        try:
            await super()._process(ctx, epoch, docs, stats)
        except Refused:
            self._halted = True
            raise

    async def _push(self, ctx: Context, epoch: int, stats: PassStats) -> bool:
        if self._halted:
            # BUG: a refusal ends the whole pass, uploads included (the original's early
            # ``return false``): one change the app keeps refusing blocks the backup.
            return False
        return await super()._push(ctx, epoch, stats)


def push_skipped_after_refusal(installation: Installation) -> ReferenceHelper:
    """After a refusal the pass uploads nothing."""
    return _build(installation, engine=_PushHaltsEngine)


class _FindThenWriteEngine(SyncEngine):
    async def _push_one(self, ctx: Context, epoch: int, record: Record, stats: PassStats) -> bool:
        if record.base is not None:
            return await super()._push_one(ctx, epoch, record, stats)
        # BUG: a new entry is uploaded as the original helper did (W4): ``findOne({key})``,
        # then ``updateMany({key})`` if found, else ``insertOne``, instead of one upsert
        # conditional on its own version. Whatever version the find returned, and whatever
        # landed between the find and the write, another device's newer write of the key is
        # overwritten.
        fields = document_fields(
            record.key, record.data, record.creation_date, record.deletion_date, record.version
        )
        stats.requests += 1
        found = await self.vault.find_one(ctx.collection, {"key": record.key})
        self._check_epoch(ctx, epoch)
        stats.requests += 1
        if found is None:
            await self.vault.insert_one(ctx.collection, fields)
        else:
            await self.vault.update_many(ctx.collection, {"key": record.key}, {"$set": fields})
        self._check_epoch(ctx, epoch)
        self.store.set_base(ctx.name, record.key, record.version, clear_if_version=record.version)
        stats.pushed += 1
        self._emit("pushed", context=ctx.name, key=record.key, version=record.version.encode())
        return True


def find_then_insert(installation: Installation) -> ReferenceHelper:
    """A new entry is created by find-then-insert (or overwrite), not a conditional upsert."""
    return _build(installation, engine=_FindThenWriteEngine)


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
    def _unmarked(self) -> set[tuple[str, str]]:
        queue: set[tuple[str, str]] | None = self.__dict__.get("_unmarked_writes")
        if queue is None:
            queue = self.__dict__["_unmarked_writes"] = set()
        return queue

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
        self._unmarked().add((context, key))
        return record

    def pending(self, context: str) -> list[Record]:
        queued = sorted(item for item in self._unmarked() if item[0] == context)
        if queued:
            with self._transaction():
                self._db.executemany(
                    "UPDATE entries SET pending = 1 WHERE context = ? AND key = ?", queued
                )
            self._unmarked().difference_update(queued)
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


# -- ordering --------------------------------------------------------------------------------


class _LocalTieEngine(SyncEngine):
    async def _apply(
        self,
        ctx: Context,
        epoch: int,
        local: EntryState | None,
        decision: Decision,
        stats: PassStats,
    ) -> None:
        remote = decision.remote
        if (
            local is not None
            and decision.action in (Action.INSERT, Action.MODIFY, Action.DELETE, Action.ADOPT)
            and (remote.version.wall_ms, remote.version.counter)
            == (local.version.wall_ms, local.version.counter)
        ):
            # BUG: versions are compared by time and counter only; on a tie (two writes in one
            # millisecond) each device keeps its own copy, so devices disagree on the winner.
            decision = Decision(Action.KEEP_LOCAL, remote)
        await super()._apply(ctx, epoch, local, decision, stats)


def ties_by_local_order(installation: Installation) -> ReferenceHelper:
    """Two writes with equal time and counter: each device keeps its own."""
    return _build(installation, engine=_LocalTieEngine)


class _WallOnlyClock(HybridClock):
    def observe(self, seen: Version) -> None:
        # BUG: versions follow the device clock alone; remote versions seen are not observed,
        # so a device whose clock is behind stamps its later edit older than what it saw (W2).
        return None


def clock_ignores_remote(installation: Installation) -> ReferenceHelper:
    """The hybrid clock does not observe remote versions."""
    return _build(installation, clock=_WallOnlyClock)


# -- the registry ----------------------------------------------------------------------------


def _registry(*mutants: tuple[Factory, str]) -> dict[str, Mutant]:
    return {factory.__name__: Mutant(factory.__name__, bug, factory) for factory, bug in mutants}


MUTANTS: dict[str, Mutant] = _registry(
    (no_retry, "a pass that did not complete schedules no retry"),
    (false_ignored, "a callback's False is taken as handled"),
    (device_clock_cursor, "the pull cursor is the device clock, not the vault's stamps"),
    (cursor_past_refusal, "a refusal saves the cursor past the refused change"),
    (find_then_insert, "a new entry is pushed by find-then-insert/overwrite, not a CAS upsert"),
    (echo_own_writes, "the device's own writes come back to it as modifications"),
    (split_local_write, "a local write is two transactions: data now, upload mark later"),
    (push_skipped_after_refusal, "after a refusal the pass uploads nothing"),
    (tombstone_not_propagated, "a deletion is never uploaded"),
    (wipe_keeps_cursor, "wiping a context keeps its cursor"),
    (ties_by_local_order, "two writes in one millisecond: each device keeps its own"),
    (no_redelivery_after_crash, "a callback cut short by a crash is never delivered again"),
    (clock_ignores_remote, "the hybrid clock does not observe remote versions"),
    (delete_for_unknown_key, "a tombstone of a key the device never held goes to on_delete"),
)
"""Every mutant, by name (the factory's name in this module)."""
