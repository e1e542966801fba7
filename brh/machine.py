"""One sync pass, as a state machine that does no I/O (sans-IO): the whole algorithm, in order.

:func:`sync_pass` is a generator. It yields one :mod:`effect <brh.effects>` at a time (read
this from the local store, send this request to the vault, call this callback, write this
transaction) and is resumed with the answer; a vault error is thrown back in where the request
was yielded. It returns the pass's :class:`~brh.SyncResult` and what the helper remembers until
the next pass. The asyncio driver (:class:`brh.engine.SyncEngine`) performs the effects; a test
can drive the machine with a dict for a store and canned answers, without a loop or a vault.

Read it top to bottom; per context, in registration order (SYNC-1):

1. make sure the vault collection exists (DATA-1, COST-3);
2. pull: first the keys known to have a newer remote version (stale ones), then pages of
   everything stamped since the cursor, in the vault's ``(modified, _id)`` order (SYNC-4,
   SYNC-9), each document decided against the local entry by :attr:`Rules.decide` and
   delivered through the app's callbacks (CB-1..CB-7); a full pass reads every document and
   reconciles what the vault no longer has (SYNC-10, DEL-3, RES-3), a context that has a
   cursor through a projection in ``_id`` order first, then by key what changed (COST-2);
3. push every local change by compare-and-set (SYNC-7, ORD-4, ORD-5), holding back uploads
   the vault refused (RETRY-6); a change that lost to a newer remote version gets that version
   delivered at once;
4. purge old tombstones now and then (DEL-2).

A refused callback ends the pulls of the pass but not its pushes (CB-6, SYNC-8); a vault error
ends that context's work only (RETRY-4). The decisions themselves are the pure functions of
:mod:`brh.core`, reached through :class:`~brh.core.Rules`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator
from dataclasses import replace
from typing import Any, TypeVar

from brh import effects as fx
from brh import full_pass
from brh.core import (
    FULL_PASS_PROJECTION,
    PULL_SORT,
    TOMBSTONE_PROJECTION,
    Action,
    Conflict,
    Decision,
    UploadFailure,
    group_by_key,
    old_tombstones_filter,
    prune_window,
    purge_filter,
)
from brh.entry import StuckEntry
from brh.full_pass import AWAY, full_pass_reason, keys_to_fetch
from brh.paging import newest, next_page, page_progress
from brh.plan import (
    MAX_CAS_ATTEMPTS,
    MAX_PUSH_ROUNDS,
    MAX_WINDOW,
    PASS,
    STALE_FETCH_CHUNK,
    ContextReset,
    Memory,
    Outcome,
    Plan,
    Tally,
)
from brh.store import ContextState, EntryState, Record
from brh.vault import AlreadyExistsError, CollectionNotFoundError, Document, VaultError
from brh.wire import RemoteDoc, version_filter

__all__ = ["sync_pass"]

T = TypeVar("T")
Steps = Generator[fx.Effect, Any, T]
"""A part of the machine: yields effects, is sent their answers, returns a ``T``."""


class _Refused(Exception):
    """The app refused a change: the pass delivers nothing more (CB-6)."""

    def __init__(self, key: str) -> None:
        self.key = key


def sync_pass(plan: Plan) -> Steps[Outcome]:
    """One pass over every context (see the module docstring)."""
    stats = Tally()
    memory = plan.memory
    refused: tuple[str, str] | None = None
    yield fx.Emit(PASS, "pass_started", {"full": plan.full})
    if plan.options.debug:
        yield fx.Log(PASS, logging.DEBUG, "pass starts%s", (" (full)" if plan.full else "",))
    for name, collection in plan.contexts:
        context = _ContextPass(name, collection, plan, memory, stats)
        failed = False
        try:
            halted = refused is not None and plan.rules.refusal_halts_later_contexts
            yield from context.run(halted=halted)
        except CollectionNotFoundError as exc:
            # The collection was deleted behind our back (a vault reset). Local data is the
            # backup now: queue every entry for upload and start the context over (RES-3).
            yield fx.Log(
                name,
                logging.WARNING,
                "context %r: collection %r is gone from the vault; re-uploading every local entry",
                (name, collection),
            )
            context.memory = replace(context.memory, ready=context.memory.ready - {name})
            with contextlib.suppress(ContextReset):  # (a wipe meanwhile: nothing to requeue)
                yield fx.RequeueAll(name)
            stats.fail(name, f"{type(exc).__name__}: {exc}")
        except ContextReset:
            if plan.options.debug:
                yield fx.Log(name, logging.DEBUG, "context %s was wiped during the pass", (name,))
            stats.fail(name, f"context {name!r} was wiped during the pass")
        except VaultError as exc:
            failed = True
            # Loud the first time; while a retry series goes on, quieter (no log flood).
            yield fx.Log(
                name,
                logging.INFO if plan.quiet else logging.WARNING,
                "context %r: vault error %s: %s",
                (name, type(exc).__name__, exc),
            )
            stats.fail(name, f"{type(exc).__name__}: {exc}")
        if refused is None and context.refused is not None:  # even if its uploads then failed
            refused = (name, context.refused)
        memory = context.memory
        if failed and not plan.rules.vault_error_ends_context_only:
            break
    stuck: list[StuckEntry] = []
    for name, _collection in plan.contexts:
        stuck += yield fx.Stuck(name)
    result = stats.result(refused, stuck, plan.rules.pass_reason)
    if plan.options.debug:
        counts = (result.pulled, result.pushed, result.delivered, result.requests)
        yield fx.Log(
            PASS,
            logging.DEBUG,
            "pass ends: %s (pulled %d, pushed %d, delivered %d, %d requests)",
            (result.reason or "completed", *counts),
        )
    yield fx.Emit(PASS, "pass_finished", {"result": result})
    return Outcome(result, memory)


class _ContextPass:
    """One context's part of a pass. Each method is a part of the machine (see :data:`Steps`)."""

    def __init__(
        self, name: str, collection: str, plan: Plan, memory: Memory, stats: Tally
    ) -> None:
        self.name = name
        self.collection = collection
        self.options = plan.options
        self.rules = plan.rules
        self.plan = plan
        self.memory = memory
        self.stats = stats
        self.debug = plan.options.debug
        self.state = ContextState(name)
        """The context's progress as this pass last read or saved it."""
        self.refused: str | None = None
        """The key whose change the app refused in this context, if any."""

    def run(self, *, halted: bool) -> Steps[None]:
        """The context's work. A refused change is noted in :attr:`refused` at once.

        ``halted``: the app refused a change earlier in the pass, so nothing more is delivered
        (CB-6): no pull, but the uploads still go (SYNC-8)."""
        self.state = yield fx.LoadState(self.name)
        yield from self.ensure_collection()
        if not self.rules.pull_before_push:
            yield from self.push_changes(halted=halted)
        if not halted:
            try:
                yield from self.pull()
            except _Refused as exc:
                self.refused = exc.key
        if self.rules.pull_before_push:
            yield from self.push_changes(halted=halted or self.refused is not None)
        yield from self.maybe_purge()

    def push_changes(self, *, halted: bool) -> Steps[None]:
        """Push the local changes (unless the app refused a change and the rules say no more
        uploads then); a change that lost to a newer remote version gets it delivered."""
        if halted and not self.rules.push_after_refusal:
            return
        for _round in range(MAX_PUSH_ROUNDS):
            superseded = yield from self.push()
            if not superseded or halted:
                break
            try:  # a newer remote version beat a local change: deliver it now
                yield from self.pull_stale()
            except _Refused as exc:
                self.refused = exc.key
                break

    # -- helpers ----------------------------------------------------------------------------

    def vault(self, effect: fx.Effect) -> Steps[Any]:
        """A vault request (counted; its error is thrown back here)."""
        self.stats.requests += 1
        return (yield effect)

    def save(self, state: ContextState) -> Steps[None]:
        yield fx.SaveState(self.name, state)
        self.state = state

    def trace(self, message: str, *args: object) -> Steps[None]:
        if self.debug:
            yield fx.Log(self.name, logging.DEBUG, message, args)

    def warn(self, message: str, *args: object) -> fx.Log:
        return fx.Log(self.name, logging.WARNING, "context %r: " + message, (self.name, *args))

    def event(self, kind: str, key: str, **fields: object) -> fx.Emit:
        return fx.Emit(self.name, kind, {"context": self.name, "key": key, **fields})

    def parse(self, raw: list[Document], *, quiet: bool = False) -> Steps[list[RemoteDoc]]:
        """The documents that are entries; the others are skipped with a warning (DATA-6)."""
        docs = []
        for item in raw:
            doc = self.rules.parse_document(item)
            if doc is not None:
                docs.append(doc)
            elif not quiet:
                yield self.warn(
                    "ignoring a vault document that is not a backup entry (_id %s)", item.get("_id")
                )
        return docs

    # -- 1. the collection ------------------------------------------------------------------

    def ensure_collection(self) -> Steps[None]:
        if self.name in self.memory.ready or self.state.collection_ready:
            self.memory = replace(self.memory, ready=self.memory.ready | {self.name})
            return
        try:
            yield from self.vault(fx.CreateCollection(self.name, self.collection))
            yield from self.trace("created collection %s", self.collection)
        except AlreadyExistsError:
            pass  # Hive answers 455 to a second create (DATA-1)
        yield from self.save(replace(self.state, collection_ready=True))
        self.memory = replace(self.memory, ready=self.memory.ready | {self.name})

    # -- 2. pull ----------------------------------------------------------------------------

    def pull(self) -> Steps[None]:
        """Deliver every remote change since the cursor (or every document, on a full pass)."""
        yield from self.pull_stale()
        options, state = self.options, self.state
        now_ms: int = yield fx.Now(self.name)
        why = full_pass_reason(options, state, now_ms, away=self.rules.full_pass_when_away)
        away = why is AWAY
        resync = self.plan.full or state.cursor is None or why is not None
        if why is not None:
            yield fx.Log(self.name, logging.INFO, "context %r: full pass (%s)", (self.name, why))
        start = None if resync else state.cursor
        # A full pass of a context that has a cursor reads projections first (COST-2); a first
        # pull or a restore reads whole documents (COST-2, COST-3).
        project = resync and state.cursor is not None and self.rules.full_pass_projection
        settled = state.settled and start is not None
        vault_now = yield from self.vault_now()  # before the pull is sent: it runs then or later
        known = [version for _stamp, version in state.window] if start is not None else []
        if len(known) > MAX_WINDOW:
            known = []  # a bulk upload: re-reading beats a filter of thousands of versions
        cursor, max_stamp = state.cursor, state.max_stamp
        window = set(state.window) if start is not None or project else set()  # (processed)
        grew = False
        seen: set[str] | None = set() if resync else None
        after: Any = None  # the last (modified, _id) read; a full pass of projections: _id
        skip = 0
        lookahead = 1 if self.rules.page_lookahead else 0
        while True:
            # One document more than a page: it says whether another page follows, so the
            # last page needs no empty one after it (COST-2); it is read again with that page.
            fetched: list[Document] = yield from self.vault(
                fx.Query(
                    self.name,
                    self.collection,
                    full_pass.full_pass_filter(after)
                    if project
                    else self.rules.pull_filter(
                        start, options.overlap, known, after, settled=settled
                    ),
                    sort=full_pass.FULL_PASS_SORT if project else PULL_SORT,
                    skip=skip,
                    limit=options.page_size + lookahead,
                    projection=FULL_PASS_PROJECTION if project else None,
                )
            )
            raw = fetched[: options.page_size]
            last_page = len(fetched) < options.page_size + lookahead
            docs = yield from self.parse(raw)
            self.stats.pulled += len(docs)
            if seen is not None:
                seen.update(doc.key for doc in docs)
            progress, stamps = page_progress((cursor, max_stamp, window), raw)
            page_cursor, page_max, page_window = progress
            if not self.rules.save_page_after_delivery and page_cursor is not None:
                yield from self.save_progress(page_cursor, page_max, page_window)
            try:
                yield from (self.process_changed(docs) if project else self.process(docs))
            except _Refused as refusal:
                # Keep the cursor at the refused change so the next pass reads it again.
                refused = next(
                    (d for d in docs if d.key == refusal.key and d.stamp is not None), None
                )
                kept, known_now = self.rules.progress_at_refusal(
                    cursor, frozenset(window), docs, refused
                )
                if kept is not None and (kept != cursor or known_now != window):
                    yield from self.save_progress(kept, newest(max_stamp, kept), set(known_now))
                raise
            if stamps:
                seen_max = newest(self.memory.stamp_seen, max(stamps))
                self.memory = replace(self.memory, stamp_seen=seen_max)
                grew = grew or len(page_window) > len(window)
                cursor, max_stamp = page_cursor, page_max
                assert cursor is not None
                window = set(prune_window(page_window, cursor - options.overlap))
                if not last_page:  # the last page's progress is saved with the pull's end
                    yield from self.save_progress(cursor, max_stamp, window)
            if last_page:
                break
            after, skip = next_page(raw, after, skip, by_id=project)
        if seen is not None:
            yield from self.reconcile_missing(seen, away)
        moved = self.rules.full_pass_cursor(cursor, options.overlap, vault_now) if project else None
        if moved is not None:  # settled: what the vault's clock says the pass read (SYNC-10)
            cursor, window = moved, set()
        if grew or cursor != state.cursor:
            settled = moved is not None  # else settled only if old enough (next line)
        if not settled and cursor is not None:
            # Judged on the vault's clock, which stamps the writes, never on this device's:
            # sent that late, this pull read every write stamped up to the cursor (SYNC-4).
            settled = self.rules.settles(cursor, options.overlap, vault_now)
        cursor = self.rules.cursor_after_pull(cursor, now_ms)
        yield from self.save(
            replace(
                self.state,
                cursor=cursor if cursor is not None else 0,
                max_stamp=max_stamp,
                last_pull_ms=now_ms,
                last_full_ms=now_ms if resync else state.last_full_ms,
                window=() if settled else tuple(sorted(window)),
                settled=settled,
            )
        )
        # a key another helper on this store gave the app before this pass did (ORD-1)
        yield from self.pull_stale()

    def vault_now(self) -> Steps[float | None]:
        """The vault's clock as far as this helper knows: the ``Date`` of its latest answer
        when the vault tells it, else the newest stamp read (SYNC-4)."""
        told: float | None = yield fx.VaultTime(self.name)
        seen = self.memory.stamp_seen
        return told if told is not None or seen is None else float(seen)

    def save_progress(self, cursor: int, max_stamp: int | None, window: set[Any]) -> Steps[None]:
        """Persist a pull's progress part-way. The cursor moved, so it is no longer settled: a
        restart must re-read the overlap (more documents may share the cursor's stamp)."""
        yield from self.save(
            replace(
                self.state,
                cursor=cursor,
                max_stamp=max_stamp,
                window=prune_window(window, cursor - self.options.overlap),
                settled=False,
            )
        )

    def pull_stale(self) -> Steps[None]:
        """Fetch, by key, remote versions known to be newer than what this device holds."""
        keys: list[str] = yield fx.StaleKeys(self.name)
        for start in range(0, len(keys), STALE_FETCH_CHUNK):
            chunk = keys[start : start + STALE_FETCH_CHUNK]
            raw = yield from self.vault(
                fx.FindMany(self.name, self.collection, {"key": {"$in": chunk}})
            )
            docs = yield from self.parse(raw)
            self.stats.pulled += len(docs)
            yield from self.process(docs)
            found = {doc.key for doc in docs}
            yield fx.ClearStale(self.name, tuple(key for key in chunk if key not in found))

    def process_changed(self, page: list[RemoteDoc]) -> Steps[None]:
        """A full pass's page of projections: the whole documents of the keys that may have
        changed, fetched in one request by key, go through :meth:`process` (COST-2, SYNC-10).
        A refusal stops at the page's own projection, as a page of whole documents does."""
        changed: list[str] = yield from keys_to_fetch(self.name, page, self.rules.unchanged)
        if not changed:
            return
        raw = yield from self.vault(
            fx.FindMany(self.name, self.collection, {"key": {"$in": changed}})
        )
        order = {key: rank for rank, key in enumerate(changed)}
        docs = yield from self.parse(raw, quiet=True)  # (the projection was warned about)
        docs.sort(key=lambda doc: order.get(doc.key, len(order)))  # in the page's order
        yield from self.process(docs)

    def process(self, docs: list[RemoteDoc]) -> Steps[None]:
        """Decide each key's winning document against the local entry, and act on it."""
        streaks: bool = yield fx.HasRefusals(self.name)
        for winner, dominated in group_by_key(docs):
            for loser in dominated:
                yield from self.delete_duplicate(loser)
            yield fx.Observe(self.name, winner.version)  # never write behind what was seen
            local: EntryState | None = yield fx.LocalState(self.name, winner.key)
            yield from self.apply(local, self.rules.decide(local, winner))
            if streaks and (yield fx.Refusals(self.name, winner.key)):
                # settled without the app (e.g. a newer local write won): the streak ends
                yield fx.ClearRefusals(self.name, winner.key)

    def apply(self, local: EntryState | None, decision: Decision) -> Steps[None]:
        remote, action = decision.remote, decision.action
        key = remote.key
        if action is Action.SKIP:
            if local is not None and local.stale:
                yield fx.ClearStale(self.name, (key,))
            return
        if action is Action.DOMINATED:
            yield from self.delete_duplicate(remote)
            return
        if action is Action.ECHO:
            yield fx.SetBase(self.name, key, remote.version, clear_if_version=remote.version)
            return
        if action is Action.KEEP_LOCAL:
            local_version = local.version if local else None
            yield from self.trace(
                "%s/%s: local %s beats vault %s", self.name, key, local_version, remote.version
            )
            yield fx.SetBase(self.name, key, remote.version, pending=True)
            return
        if action is not Action.ADOPT:
            yield from self.deliver(action, remote)
        # Stored at once, before anything else the pass awaits: from here on the app may read,
        # edit or delete what it was given, and that must act on this version (ORD-7).
        record = remote.as_record(self.name)
        stored = yield fx.ApplyRemote(self.name, record, local.version if local else None)
        if not stored:
            # The app wrote this key while its callback ran: that write is newer and wins.
            yield fx.SetBase(self.name, key, remote.version, pending=True)

    def deliver(self, action: Action, remote: RemoteDoc) -> Steps[None]:
        """Call the app's callback; raise :class:`_Refused` unless it handled the change."""
        if self.debug:
            payload = f" data={remote.data!r}" if self.options.log_payloads else ""
            yield from self.trace(
                "%s/%s: %s callback for %s%s",
                self.name,
                remote.key,
                action.value,
                remote.version,
                payload,
            )
        answer = yield fx.Deliver(self.name, action, remote)
        ok = self.rules.accepted(answer)
        if not isinstance(answer, bool | BaseException):
            yield self.warn(
                "%s callback returned %r for key %r; expected True or False, treated as a refusal",
                action.value,
                answer,
                remote.key,
            )
        elif answer is False:
            yield from self.trace("%s/%s: %s refused", self.name, remote.key, action.value)
        yield self.event(
            "callback",
            remote.key,
            action=action.value,
            accepted=ok,
            version=remote.version.encode(),
        )
        if ok:
            self.stats.delivered += 1
            return
        streak: int = yield fx.NoteRefusal(self.name, remote.key)
        if streak >= self.options.stuck_threshold:
            yield self.warn(
                "the %s of key %r has been refused %d times in a row; it stays queued and is "
                "retried with backoff",
                action.value,
                remote.key,
                streak,
            )
        raise _Refused(remote.key)

    def delete_duplicate(self, doc: RemoteDoc) -> Steps[None]:
        """Remove a document superseded by a newer one of the same key (ORD-4)."""
        if doc.version.is_legacy:
            return  # leave documents the original helper wrote alone (DATA-4)
        yield from self.trace(
            "%s/%s: removing superseded duplicate %s", self.name, doc.key, doc.version
        )
        yield from self.vault(
            fx.DeleteOne(self.name, self.collection, version_filter(doc.key, doc.version))
        )

    def reconcile_missing(self, seen: set[str], away: bool) -> Steps[None]:
        """After a full pull: what about synced entries the vault no longer has at all?

        Documents only vanish legitimately when an old tombstone is purged, which a device can
        miss only if it was away for a large part of the retention: then the entry was deleted,
        and the app is told. Otherwise the vault lost data, and this device re-uploads its copy
        (SYNC-10).
        """
        synced: list[str] = yield fx.LiveSyncedKeys(self.name)
        for key in synced:
            if key in seen:
                continue
            local: Record | None = yield fx.Local(self.name, key)
            if local is None or local.pending or local.deleted:
                continue
            if not away:
                yield self.warn("the vault lost entry %r; uploading this device's copy", key)
                yield fx.Requeue(self.name, key)
                continue
            now: int = yield fx.Now(self.name)
            yield from self.deliver(Action.DELETE, RemoteDoc.purged(local, now))
            yield fx.ForgetRemoteDeleted(self.name, key, local.version)

    # -- 3. push ----------------------------------------------------------------------------

    def push(self) -> Steps[bool]:
        """Upload every pending local change; True if a newer remote version beat one.

        An upload the vault refused waits out its backoff while the others go on (RETRY-6).
        """
        superseded = False
        held = yield from self.held_back()
        pending: list[Record] = yield fx.Pending(self.name)
        for record in pending:
            if record.key in held:
                continue
            try:
                if not (yield from self.push_one(record)):
                    superseded = True
            except VaultError as exc:
                failure = self.rules.upload_failure(exc)
                if failure is UploadFailure.TRANSPORT:
                    raise
                yield from self.rejected(record, exc, failure)
                if failure is UploadFailure.VAULT:
                    raise
        return superseded

    def held_back(self) -> Steps[set[str]]:
        """Keys whose refused upload waits out its backoff (reported in the pass's result)."""
        rejections = yield fx.Rejections(self.name)
        if not rejections:
            return set()
        now: float = yield fx.LoopTime(self.name)
        held: set[str] = set()
        for rejection in rejections:
            version, until = self.memory.held.get((self.name, rejection.key), (None, 0.0))
            if version == rejection.version and now < until:
                held.add(rejection.key)
                self.stats.rejected.append(
                    StuckEntry(
                        self.name, rejection.key, rejection.refusals, "upload", rejection.reason
                    )
                )
        return held

    def rejected(self, record: Record, error: VaultError, failure: UploadFailure) -> Steps[None]:
        """The vault refused (or failed on) this entry's upload: count it, hold it back."""
        reason = f"{type(error).__name__} ({error.status}): {error}"
        definite = failure is UploadFailure.ENTRY
        count: int = yield fx.NoteRejection(self.name, record.key, record.version, reason, definite)
        delay = float(self.plan.upload_delay(count)) if self.plan.upload_delay else 0.0
        now: float = yield fx.LoopTime(self.name)
        held = {**self.memory.held, (self.name, record.key): (record.version, now + delay)}
        self.memory = replace(self.memory, held=held)
        self.stats.rejected.append(StuckEntry(self.name, record.key, count, "upload", reason))
        loud = definite or count >= self.options.stuck_threshold
        yield fx.Log(
            self.name,
            logging.WARNING if loud else logging.INFO,
            "context %r: the vault refused to store key %r (%d time%s in a row): %s; the other "
            "entries go on, this one is retried in %.0f s",
            (self.name, record.key, count, "" if count == 1 else "s", reason, delay),
        )
        yield self.event("rejected", record.key, version=record.version.encode(), error=reason)

    def landed(self, record: Record) -> Steps[None]:
        """The vault holds ``record``'s version: the upload is done."""
        key = record.key
        yield fx.SetBase(self.name, key, record.version, clear_if_version=record.version)
        yield fx.ClearRejection(self.name, key)
        if (self.name, key) in self.memory.held:
            held = {at: hold for at, hold in self.memory.held.items() if at != (self.name, key)}
            self.memory = replace(self.memory, held=held)
        self.stats.pushed += 1
        yield from self.trace("%s/%s: pushed %s", self.name, key, record.version)
        yield fx.Emit(
            self.name,
            "pushed",
            {"context": self.name, "key": key, "version": record.version.encode()},
        )

    def push_one(self, record: Record) -> Steps[bool]:
        """Compare-and-set one local change; False if a newer remote version beat it."""
        key = record.key
        fields = self.rules.document_fields(
            key, record.data, record.creation_date, record.deletion_date, record.version
        )
        update = {"$set": fields}
        base = record.base
        for _attempt in range(MAX_CAS_ATTEMPTS):
            if base is None:
                # Create. The filter names our own version, so a retry after a lost answer
                # finds the document it created instead of inserting a second one.
                yield from self.vault(
                    fx.UpdateOne(
                        self.name,
                        self.collection,
                        self.rules.create_filter(key, record.version),
                        update,
                        upsert=True,
                    )
                )
                landed = True
            else:
                result = yield from self.vault(
                    fx.UpdateOne(self.name, self.collection, version_filter(key, base), update)
                )
                landed = result.matched_count > 0
            if landed:
                yield from self.landed(record)
                return True
            raw = yield from self.vault(fx.FindMany(self.name, self.collection, {"key": key}))
            docs = yield from self.parse(raw)
            outcome = self.rules.resolve_conflict(record, docs)
            for loser in outcome.dominated:
                yield from self.delete_duplicate(loser)
            if outcome.kind is Conflict.LANDED:
                yield from self.landed(record)
                return True
            if outcome.winner is not None:
                yield fx.Observe(self.name, outcome.winner.version)
            if outcome.kind is Conflict.REMOTE_WINS:
                winner = outcome.winner.version if outcome.winner else None
                yield from self.trace(
                    "%s/%s: local %s lost to %s", self.name, key, record.version, winner
                )
                yield fx.MarkStale(self.name, key, record.version)
                yield self.event("superseded", key, version=winner.encode() if winner else None)
                return False
            base = None if outcome.winner is None else outcome.winner.version
        yield self.warn(
            "key %r kept changing on the vault during %d upload attempts; it stays queued",
            key,
            MAX_CAS_ATTEMPTS,
        )
        return True

    # -- 4. tombstone retention -------------------------------------------------------------

    def maybe_purge(self) -> Steps[None]:
        """Purge tombstones older than the retention, at most once per ``purge_interval`` of
        vault time (DEL-2)."""
        options, state = self.options, self.state
        if options.tombstone_retention is None or state.max_stamp is None:
            return
        if state.last_purge_stamp is None:
            # The context's first pull: the interval starts now (a first restore costs no
            # purge request, COST-2); the first purge comes one interval later.
            yield from self.save(replace(state, last_purge_stamp=state.max_stamp))
            return
        if state.max_stamp - state.last_purge_stamp < options.purge_interval:
            return
        horizon = int(state.max_stamp - options.tombstone_retention)
        docs: list[RemoteDoc] = []
        if horizon > 0:
            old = yield from self.vault(
                fx.Query(
                    self.name,
                    self.collection,
                    old_tombstones_filter(horizon),
                    projection=TOMBSTONE_PROJECTION,
                    limit=options.page_size,
                )
            )
            docs = [doc for doc in (yield from self.parse(old)) if not doc.version.is_legacy]
        if docs:
            yield from self.vault(fx.DeleteMany(self.name, self.collection, purge_filter(docs)))
            yield from self.trace(
                "%s: purged %d tombstones older than stamp %d", self.name, len(docs), horizon
            )
        yield fx.PurgeTombstones(self.name, horizon * 1000)
        done = len(docs) < options.page_size  # more left: purge again next pass
        yield from self.save(
            replace(
                self.state,
                last_purge_stamp=state.max_stamp if done else state.last_purge_stamp,
            )
        )
