"""One sync pass: pull, deliver, push and purge, for every context (the I/O around :mod:`brh.core`).

:class:`SyncEngine` performs what the pure decisions of :mod:`brh.core` say: vault requests, app
callbacks and local store transactions. It never sleeps and reads time only through the
:class:`~brh.hlc.HybridClock` it is given; when to run a pass is :mod:`brh.scheduler`'s business.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from brh.core import (
    PULL_SORT,
    Action,
    Conflict,
    Decision,
    UploadFailure,
    cursor_settles,
    decide,
    group_by_key,
    resolve_conflict,
    upload_failure,
)
from brh.core import pull_filter as make_pull_filter
from brh.entry import Entry, StuckEntry, SyncResult
from brh.events import Listener, SyncEvent
from brh.hlc import HybridClock, Version
from brh.options import SyncOptions
from brh.store import ContextState, EntryState, LocalStore, Record
from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    Document,
    Vault,
    VaultClock,
    VaultError,
)
from brh.wire import RemoteDoc, document_fields, parse_document, version_filter

__all__ = ["IN_CALLBACK", "Callback", "Context", "SyncEngine"]

Callback = Callable[[Entry], bool | Awaitable[bool]]
"""An app callback: receives the remote entry, returns True (handled) or False (retry later)."""

_MAX_CAS_ATTEMPTS = 4
MAX_WINDOW = 10_000
"""At most this many versions (about 300 KB of filter) are excluded by name when re-reading the
overlap window; past that, the window's documents are re-read and skipped locally until the
cursor settles, a few seconds later. Excluding is far cheaper than re-reading: a version costs
~30 bytes of filter, a document its whole size in the answer."""
_STALE_FETCH_CHUNK = 200

IN_CALLBACK: contextvars.ContextVar[tuple[object, str] | None] = contextvars.ContextVar(
    "brh_in_callback", default=None
)
"""Set while a callback runs (and inherited by tasks it spawns): which helper, which context."""


@dataclass
class Context:
    name: str
    collection: str
    on_insert: Callback
    on_modify: Callback
    on_delete: Callback
    epoch: int = 0
    collection_ready: bool = False
    """Known to exist on the vault (cached from the store; reset when the vault loses it)."""


@dataclass
class PassStats:
    pulled: int = 0
    pushed: int = 0
    delivered: int = 0
    requests: int = 0
    failed: list[str] = field(default_factory=list)
    error: str | None = None
    rejected: list[StuckEntry] = field(default_factory=list)
    """Uploads the vault refused in this pass, or held back after an earlier refusal."""


class ContextReset(Exception):
    """The context was wiped while a pass was working on it; the pass leaves it alone."""


class Refused(Exception):
    def __init__(self, context: str, key: str) -> None:
        self.context = context
        self.key = key


class SyncEngine:
    """Runs sync passes for one helper. ``owner`` identifies the helper in :data:`IN_CALLBACK`."""

    def __init__(
        self,
        *,
        owner: object,
        device_id: str,
        vault: Vault,
        store: LocalStore,
        contexts: dict[str, Context],
        clock: HybridClock,
        options: SyncOptions,
        closed: Callable[[], bool],
        listener: Listener | None = None,
        upload_delay: Callable[[int], float] = lambda refusals: 0.0,
    ) -> None:
        self.owner = owner
        self.device_id = device_id
        self.vault = vault
        self.store = store
        self.contexts = contexts
        self.clock = clock
        self.options = options
        self.closed = closed
        self.listener = listener
        self.retrying = False
        """True while a retry series runs: repeated vault errors then log quietly."""
        self._states: dict[str, ContextState] = {}
        """Per context, its state as this pass last read or saved it (read once per pass)."""
        self.upload_delay = upload_delay
        """Seconds to hold back an upload the vault refused that many times in a row."""
        self._held: dict[tuple[str, str], tuple[Version, float]] = {}
        """Per (context, key), the refused local version and the loop time before which its
        upload is not tried again (forgotten on restart: the first pass then tries it once)."""
        self._stamp_seen: int | None = None
        """The newest vault stamp this helper has read, in any context: a reading of the
        vault's clock, for a vault that does not tell its time (see :meth:`_vault_now`)."""
        self._log = logging.getLogger("brh")

    def stuck(self) -> list[StuckEntry]:
        """Remote changes refused ``stuck_threshold`` times or more in a row, then local
        changes the vault refused (at once when it refused the document itself, else after
        ``stuck_threshold`` failures in a row), per context."""
        threshold = self.options.stuck_threshold
        found: list[StuckEntry] = []
        for name in self.contexts:
            found += [StuckEntry(name, key, n) for key, n in self.store.stuck(name, threshold)]
            found += [
                StuckEntry(name, r.key, r.refusals, "upload", r.reason)
                for r in self.store.rejections(name)
                if r.definite or r.refusals >= threshold
            ]
        return found

    def _trace(self, message: str, *args: object) -> None:
        if self.options.debug:
            self._log.debug("[%s] " + message, self.device_id, *args)

    def _payload(self, data: Any) -> str:
        return f" data={data!r}" if self.options.log_payloads else ""

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.listener is None:
            return
        try:
            self.listener(SyncEvent(kind, self.device_id, **fields))
        except Exception:
            self._log.exception("[%s] the event listener raised; ignored", self.device_id)

    async def run_pass(self, full: bool) -> SyncResult:
        """Run one pass over every context and report its outcome."""
        stats = PassStats()
        # (context, key) of the change the app refused; not the exception itself, whose
        # traceback holds this frame (a reference cycle per refused pass otherwise)
        refused: tuple[str, str] | None = None
        self._trace("pass starts%s", " (full)" if full else "")
        self._emit("pass_started", full=full)
        for ctx in list(self.contexts.values()):
            epoch = ctx.epoch
            self._states.pop(ctx.name, None)  # read afresh: a wipe may have reset it since
            try:
                await self._ensure_collection(ctx, stats)
                if refused is None:
                    try:
                        await self._pull(ctx, epoch, full, stats)
                    except Refused as exc:
                        refused = (exc.context, exc.key)
                for _round in range(3):
                    superseded = await self._push(ctx, epoch, stats)
                    if not superseded or refused is not None:
                        break
                    try:  # a newer remote version beat a local change: deliver it now
                        await self._pull_stale(ctx, epoch, stats)
                    except Refused as exc:
                        refused = (exc.context, exc.key)
                        break
                await self._maybe_purge(ctx, epoch, stats)
            except CollectionNotFoundError as exc:
                # The collection was deleted behind our back (a vault reset). Local data is the
                # backup now: queue every entry for upload and start the context over.
                self._log.warning(
                    "[%s] context %r: collection %r is gone from the vault; re-uploading every "
                    "local entry",
                    self.device_id,
                    ctx.name,
                    ctx.collection,
                )
                ctx.collection_ready = False
                if ctx.epoch == epoch and not self.closed():
                    self.store.requeue_all(ctx.name)
                stats.failed.append(ctx.name)
                stats.error = stats.error or f"{type(exc).__name__}: {exc}"
            except ContextReset:
                self._trace("context %s was wiped during the pass", ctx.name)
                stats.failed.append(ctx.name)
                stats.error = stats.error or f"context {ctx.name!r} was wiped during the pass"
            except VaultError as exc:
                # Loud the first time; while a retry series goes on, quieter (no log flood).
                self._log.log(
                    logging.INFO if self.retrying else logging.WARNING,
                    "[%s] context %r: vault error %s: %s",
                    self.device_id,
                    ctx.name,
                    type(exc).__name__,
                    exc,
                )
                stats.failed.append(ctx.name)
                stats.error = stats.error or f"{type(exc).__name__}: {exc}"
        stuck = tuple(self.stuck()) if not self.closed() else ()
        if refused is not None:
            reason: str | None = "refused"
        elif stats.failed:
            reason = "vault_error"
        elif stats.rejected:
            reason = "rejected"
        else:
            reason = None
        result = SyncResult(
            completed=reason is None,
            reason=reason,
            error=stats.error,
            refused=refused,
            pulled=stats.pulled,
            pushed=stats.pushed,
            delivered=stats.delivered,
            requests=stats.requests,
            failed_contexts=tuple(stats.failed),
            stuck=stuck,
            rejected=tuple(stats.rejected),
        )
        self._trace(
            "pass ends: %s (pulled %d, pushed %d, delivered %d, %d requests)",
            "completed" if result.completed else reason,
            stats.pulled,
            stats.pushed,
            stats.delivered,
            stats.requests,
        )
        self._emit("pass_finished", result=result)
        return result

    def _check_epoch(self, ctx: Context, epoch: int) -> None:
        if ctx.epoch != epoch or self.closed():
            raise ContextReset()

    async def _ensure_collection(self, ctx: Context, stats: PassStats) -> None:
        if ctx.collection_ready:
            return
        if self._state(ctx).collection_ready:
            ctx.collection_ready = True
            return
        stats.requests += 1
        try:
            await self.vault.create_collection(ctx.collection)
            self._trace("created collection %s", ctx.collection)
        except AlreadyExistsError:
            pass
        self._save_state(ctx, ctx.epoch, replace(self._state(ctx), collection_ready=True))
        ctx.collection_ready = True

    def _state(self, ctx: Context) -> ContextState:
        """The context's state: read from the store once per pass, then kept in step with what
        the pass saves (nothing else changes it meanwhile but a wipe, which ends the pass's
        work on the context at its next epoch check)."""
        state = self._states.get(ctx.name)
        if state is None:
            state = self._states[ctx.name] = self.store.context_state(ctx.name)
        return state

    def _save_state(self, ctx: Context, epoch: int, state: ContextState) -> None:
        self._check_epoch(ctx, epoch)
        self.store.save_context_state(state)
        self._states[ctx.name] = state

    # -- pull -------------------------------------------------------------------------------

    async def _pull(self, ctx: Context, epoch: int, full: bool, stats: PassStats) -> None:
        await self._pull_stale(ctx, epoch, stats)
        state = self._state(ctx)
        now_ms = self.clock.now_ms()
        away = (  # tombstones this device never saw may have been purged meanwhile
            self.options.tombstone_retention is not None
            and state.last_pull_ms is not None
            and now_ms - state.last_pull_ms > self.options.tombstone_retention * 1000 / 2
        )
        periodic = (  # repairs what an incremental pull cannot see (a vault clock step back)
            self.options.full_sync_interval is not None
            and state.last_full_ms is not None
            and now_ms - state.last_full_ms > self.options.full_sync_interval * 1000
        )
        resync = full or state.cursor is None or away or periodic
        if away or periodic:
            self._log.info(
                "[%s] context %r: full pass (%s)",
                self.device_id,
                ctx.name,
                "away for over half the tombstone retention" if away else "full_sync_interval",
            )
        start_cursor = None if resync else state.cursor
        settled = state.settled and start_cursor is not None
        vault_now = self._vault_now()  # before the pull is sent: it runs at that time or later
        known = [version for _stamp, version in state.window] if start_cursor is not None else []
        if len(known) > MAX_WINDOW:
            known = []  # a bulk upload: re-reading beats a filter of thousands of versions
        cursor, max_stamp = state.cursor, state.max_stamp
        window = set(state.window) if start_cursor is not None else set()
        grew = False
        seen: set[str] | None = set() if resync else None
        after: tuple[int, Any] | None = None
        skip = 0
        while True:
            filter_ = make_pull_filter(
                start_cursor, self.options.overlap, known, after, settled=settled
            )
            stats.requests += 1
            raw = await self.vault.query(
                ctx.collection, filter_, sort=PULL_SORT, skip=skip, limit=self.options.page_size
            )
            self._check_epoch(ctx, epoch)
            docs = self._parse_all(ctx, raw)
            stats.pulled += len(docs)
            if seen is not None:
                seen.update(doc.key for doc in docs)
            try:
                await self._process(ctx, epoch, docs, stats)
            except Refused as refusal:
                # Keep the cursor below the refused change so the next pass re-reads it.
                refused_stamp = next(
                    (d.stamp for d in docs if d.key == refusal.key and d.stamp is not None),
                    None,
                )
                if refused_stamp is not None and (cursor is None or refused_stamp > cursor):
                    cursor = refused_stamp
                    self._save_progress(ctx, epoch, cursor, _max(max_stamp, refused_stamp), window)
                raise
            stamps: list[int] = [d["modified"] for d in raw if isinstance(d.get("modified"), int)]
            last_page = len(raw) < self.options.page_size
            if stamps:
                self._stamp_seen = _max(self._stamp_seen, max(stamps))
                cursor = stamps[-1] if cursor is None else max(cursor, stamps[-1])
                max_stamp = _max(max_stamp, max(stamps))
                before = len(window)
                window.update(
                    (d["modified"], d["brhVersion"])
                    for d in raw
                    if isinstance(d.get("modified"), int) and isinstance(d.get("brhVersion"), str)
                )
                grew = grew or len(window) > before
                window = set(_prune(window, cursor - self.options.overlap))
                if not last_page:  # the last page's progress is saved with the pass's end
                    self._save_progress(ctx, epoch, cursor, max_stamp, window)
            if last_page:
                break
            last = raw[-1]
            if isinstance(last.get("modified"), int) and last.get("_id") is not None:
                after, skip = (last["modified"], last["_id"]), 0
            else:  # documents without vault stamps (never written by Hive's default client)
                skip += len(raw)
        if seen is not None:
            await self._reconcile_missing(ctx, epoch, seen, away, stats)
        current = self._state(ctx)
        if grew or cursor != state.cursor:
            settled = False  # new documents: a later pull, sent later, must confirm
        elif not settled and cursor is not None:
            # Judged on the vault's clock, which stamps the writes, never on this device's.
            settled = cursor_settles(cursor, self.options.overlap, vault_now)
        self._save_state(
            ctx,
            epoch,
            replace(
                current,
                cursor=cursor if cursor is not None else 0,
                max_stamp=max_stamp,
                last_pull_ms=now_ms,
                last_full_ms=now_ms if resync else state.last_full_ms,
                window=() if settled else tuple(sorted(window)),
                settled=settled,
            ),
        )

    def _vault_now(self) -> float | None:
        """The vault's clock as far as this helper knows: the ``Date`` of its latest answer
        when the vault tells it (:class:`~brh.vault.VaultClock`), else the newest stamp read."""
        vault = self.vault
        if isinstance(vault, VaultClock):
            told = vault.vault_time()
            if told is not None:
                return told
        return None if self._stamp_seen is None else float(self._stamp_seen)

    def _save_progress(
        self,
        ctx: Context,
        epoch: int,
        cursor: int,
        max_stamp: int | None,
        window: set[tuple[int, str]],
    ) -> None:
        """Persist a pull's progress part-way. The cursor moved, so it is no longer settled:
        a restart must re-read the overlap (more documents may share the cursor's stamp)."""
        self._save_state(
            ctx,
            epoch,
            replace(
                self._state(ctx),
                cursor=cursor,
                max_stamp=max_stamp,
                window=_prune(window, cursor - self.options.overlap),
                settled=False,
            ),
        )

    async def _pull_stale(self, ctx: Context, epoch: int, stats: PassStats) -> None:
        """Fetch, by key, remote versions known to be newer than what this device holds."""
        keys = self.store.stale_keys(ctx.name)
        for start in range(0, len(keys), _STALE_FETCH_CHUNK):
            chunk = keys[start : start + _STALE_FETCH_CHUNK]
            stats.requests += 1
            raw = await self.vault.find_many(ctx.collection, {"key": {"$in": chunk}})
            self._check_epoch(ctx, epoch)
            docs = self._parse_all(ctx, raw)
            stats.pulled += len(docs)
            await self._process(ctx, epoch, docs, stats)
            found = {doc.key for doc in docs}
            self.store.clear_stale(ctx.name, [key for key in chunk if key not in found])

    def _parse_all(self, ctx: Context, raw: list[Document]) -> list[RemoteDoc]:
        docs = []
        for item in raw:
            doc = parse_document(item)
            if doc is None:
                self._log.warning(
                    "[%s] context %r: ignoring a vault document that is not a backup entry "
                    "(_id %s)",
                    self.device_id,
                    ctx.name,
                    item.get("_id"),
                )
                continue
            docs.append(doc)
        return docs

    async def _process(
        self, ctx: Context, epoch: int, docs: list[RemoteDoc], stats: PassStats
    ) -> None:
        streaks = self.store.has_refusals(ctx.name)
        for winner, dominated in group_by_key(docs):
            for loser in dominated:
                await self._delete_duplicate(ctx, epoch, loser, stats)
            self.clock.observe(winner.version)  # never write behind what was seen
            local = self.store.state(ctx.name, winner.key)
            decision = decide(local, winner)
            await self._apply(ctx, epoch, local, decision, stats)
            if streaks and self.store.refusals(ctx.name, winner.key):
                # settled without the app (e.g. a newer local write won): the streak ends
                self.store.clear_refusals(ctx.name, winner.key)

    async def _apply(
        self,
        ctx: Context,
        epoch: int,
        local: EntryState | None,
        decision: Decision,
        stats: PassStats,
    ) -> None:
        remote = decision.remote
        key = remote.key
        action = decision.action
        if action is Action.SKIP:
            if local is not None and local.stale:
                self.store.clear_stale(ctx.name, [key])
            return
        if action is Action.DOMINATED:
            await self._delete_duplicate(ctx, epoch, remote, stats)
            return
        if action is Action.ECHO:
            self.store.set_base(ctx.name, key, remote.version, clear_if_version=remote.version)
            return
        if action is Action.KEEP_LOCAL:
            self._trace(
                "%s/%s: local %s beats vault %s",
                ctx.name,
                key,
                local.version if local else None,
                remote.version,
            )
            self.store.set_base(ctx.name, key, remote.version, pending=True)
            return
        expected = local.version if local is not None else None
        record = Record(
            context=ctx.name,
            key=key,
            data=remote.data,
            creation_date=remote.creation_date,
            modification_date=remote.modification_date,
            deletion_date=remote.deletion_date,
            version=remote.version,
            base=remote.version,
        )
        if action is not Action.ADOPT:
            ok = await self._deliver(ctx, action, remote)
            self._check_epoch(ctx, epoch)
            if not ok:
                count = self.store.note_refusal(ctx.name, key)
                if count >= self.options.stuck_threshold:
                    self._log.warning(
                        "[%s] context %r: the %s of key %r has been refused %d times in a row; "
                        "it stays queued and is retried with backoff",
                        self.device_id,
                        ctx.name,
                        action.value,
                        key,
                        count,
                    )
                raise Refused(ctx.name, key)
            stats.delivered += 1
        if not self.store.apply_remote(record, expected, self.clock.last):
            # The app wrote this key while its callback ran: that write is newer and wins.
            self.store.set_base(ctx.name, key, remote.version, pending=True)

    async def _deliver(self, ctx: Context, action: Action, remote: RemoteDoc) -> bool:
        if action is Action.MODIFY:  # (identity tests: hashing an enum member is a Python call)
            callback = ctx.on_modify
        elif action is Action.INSERT:
            callback = ctx.on_insert
        elif action is Action.DELETE:
            callback = ctx.on_delete
        else:
            raise ValueError(f"no callback for {action}")
        entry = remote.to_entry()
        if self.options.debug:
            self._trace(
                "%s/%s: %s callback for %s%s",
                ctx.name,
                entry.key,
                action.value,
                remote.version,
                self._payload(entry.data),
            )
        token = IN_CALLBACK.set((self.owner, ctx.name))
        try:
            outcome: Any = callback(entry)
            if outcome is not True and outcome is not False and inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception:
            self._log.exception(
                "[%s] context %r: %s callback raised for key %r; treated as a refusal",
                self.device_id,
                ctx.name,
                action.value,
                entry.key,
            )
            outcome = False
        finally:
            IN_CALLBACK.reset(token)
        if outcome is not True and outcome is not False:
            self._log.warning(
                "[%s] context %r: %s callback returned %r for key %r; expected True or False, "
                "treated as a refusal",
                self.device_id,
                ctx.name,
                action.value,
                outcome,
                entry.key,
            )
        elif outcome is False:
            self._trace("%s/%s: %s refused", ctx.name, entry.key, action.value)
        accepted = outcome is True
        self._emit(
            "callback",
            context=ctx.name,
            key=entry.key,
            action=action.value,
            accepted=accepted,
            version=remote.version.encode(),
        )
        return accepted

    async def _delete_duplicate(
        self, ctx: Context, epoch: int, doc: RemoteDoc, stats: PassStats
    ) -> None:
        """Remove a document superseded by a newer one of the same key (no unique index)."""
        if doc.version.is_legacy:
            return  # leave documents the original helper wrote alone
        stats.requests += 1
        self._trace("%s/%s: removing superseded duplicate %s", ctx.name, doc.key, doc.version)
        await self.vault.delete_one(ctx.collection, version_filter(doc.key, doc.version))
        self._check_epoch(ctx, epoch)

    async def _reconcile_missing(
        self, ctx: Context, epoch: int, seen: set[str], away: bool, stats: PassStats
    ) -> None:
        """After a full pull: what about synced entries the vault no longer has at all?

        Documents only vanish legitimately when an old tombstone is purged, which a device can
        miss only if it was away for a large part of the retention: then the entry was deleted,
        and the app is told. Otherwise the vault lost data, and this device re-uploads its copy.
        """
        for key in self.store.live_synced_keys(ctx.name):
            if key in seen:
                continue
            local = self.store.get(ctx.name, key)
            if local is None or local.pending or local.deleted:
                continue
            if not away:
                self._log.warning(
                    "[%s] context %r: the vault lost entry %r; uploading this device's copy",
                    self.device_id,
                    ctx.name,
                    key,
                )
                self.store.requeue(ctx.name, key)
                continue
            now = self.clock.now_ms()
            gone = RemoteDoc(
                key=key,
                data=local.data,
                creation_date=local.creation_date,
                modification_date=now,
                deletion_date=now,
                version=local.version,
                stamp=None,
                doc_id=None,
            )
            ok = await self._deliver(ctx, Action.DELETE, gone)
            self._check_epoch(ctx, epoch)
            if not ok:
                self.store.note_refusal(ctx.name, key)
                raise Refused(ctx.name, key)
            stats.delivered += 1
            self.store.forget_remote_deleted(ctx.name, key, local.version)

    # -- push -------------------------------------------------------------------------------

    async def _push(self, ctx: Context, epoch: int, stats: PassStats) -> bool:
        """Upload every pending local change; True if a newer remote version beat one.

        An upload the vault refused waits out its backoff while the others go on (RETRY-6).
        """
        superseded = False
        held = self._held_back(ctx, stats)
        for record in self.store.pending(ctx.name):
            if record.key in held:
                continue
            try:
                if not await self._push_one(ctx, epoch, record, stats):
                    superseded = True
            except VaultError as exc:
                failure = upload_failure(exc)
                if failure is UploadFailure.TRANSPORT:
                    raise
                self._check_epoch(ctx, epoch)
                self._rejected(ctx, record, exc, failure, stats)
                if failure is UploadFailure.VAULT:
                    raise
        return superseded

    def _held_back(self, ctx: Context, stats: PassStats) -> set[str]:
        """Keys whose refused upload waits out its backoff (reported in ``stats``)."""
        now = asyncio.get_running_loop().time()
        held: set[str] = set()
        for rejection in self.store.rejections(ctx.name):
            version, until = self._held.get((ctx.name, rejection.key), (None, 0.0))
            if version == rejection.version and now < until:
                held.add(rejection.key)
                stats.rejected.append(
                    StuckEntry(
                        ctx.name, rejection.key, rejection.refusals, "upload", rejection.reason
                    )
                )
        return held

    def _rejected(
        self,
        ctx: Context,
        record: Record,
        error: VaultError,
        failure: UploadFailure,
        stats: PassStats,
    ) -> None:
        """The vault refused (or failed on) this entry's upload: count it, hold it back."""
        reason = f"{type(error).__name__} ({error.status}): {error}"
        definite = failure is UploadFailure.ENTRY
        count = self.store.note_rejection(
            ctx.name, record.key, record.version, reason, definite=definite
        )
        delay = self.upload_delay(count)
        until = asyncio.get_running_loop().time() + delay
        self._held[(ctx.name, record.key)] = (record.version, until)
        stats.rejected.append(StuckEntry(ctx.name, record.key, count, "upload", reason))
        self._log.log(
            logging.WARNING if definite or count >= self.options.stuck_threshold else logging.INFO,
            "[%s] context %r: the vault refused to store key %r (%d time%s in a row): %s; "
            "the other entries go on, this one is retried in %.0f s",
            self.device_id,
            ctx.name,
            record.key,
            count,
            "" if count == 1 else "s",
            reason,
            delay,
        )
        self._emit(
            "rejected",
            context=ctx.name,
            key=record.key,
            version=record.version.encode(),
            error=reason,
        )

    def _landed(self, ctx: Context, record: Record, stats: PassStats) -> None:
        """The vault holds ``record``'s version: the upload is done."""
        self.store.set_base(ctx.name, record.key, record.version, clear_if_version=record.version)
        self.store.clear_rejection(ctx.name, record.key)
        self._held.pop((ctx.name, record.key), None)
        stats.pushed += 1
        self._trace("%s/%s: pushed %s", ctx.name, record.key, record.version)
        self._emit("pushed", context=ctx.name, key=record.key, version=record.version.encode())

    async def _push_one(self, ctx: Context, epoch: int, record: Record, stats: PassStats) -> bool:
        key = record.key
        fields = document_fields(
            key, record.data, record.creation_date, record.deletion_date, record.version
        )
        update = {"$set": fields}
        base = record.base
        for _attempt in range(_MAX_CAS_ATTEMPTS):
            stats.requests += 1
            if base is None:
                # Create. The filter names our own version, so a retry after a lost answer
                # finds the document it created instead of inserting a second one.
                await self.vault.update_one(
                    ctx.collection, version_filter(key, record.version), update, upsert=True
                )
                landed = True
            else:
                result = await self.vault.update_one(
                    ctx.collection, version_filter(key, base), update
                )
                landed = result.matched_count > 0
            self._check_epoch(ctx, epoch)
            if landed:
                self._landed(ctx, record, stats)
                return True
            stats.requests += 1
            raw = await self.vault.find_many(ctx.collection, {"key": key})
            self._check_epoch(ctx, epoch)
            outcome = resolve_conflict(record, self._parse_all(ctx, raw))
            for loser in outcome.dominated:
                await self._delete_duplicate(ctx, epoch, loser, stats)
            if outcome.kind is Conflict.LANDED:
                self._landed(ctx, record, stats)
                return True
            if outcome.winner is not None:
                self.clock.observe(outcome.winner.version)
            if outcome.kind is Conflict.REMOTE_WINS:
                self._trace(
                    "%s/%s: local %s lost to %s",
                    ctx.name,
                    key,
                    record.version,
                    outcome.winner.version if outcome.winner else None,
                )
                self.store.mark_stale(ctx.name, key, lost=record.version)
                winner = outcome.winner.version.encode() if outcome.winner else None
                self._emit("superseded", context=ctx.name, key=key, version=winner)
                return False
            base = None if outcome.winner is None else outcome.winner.version
        self._log.warning(
            "[%s] context %r: key %r kept changing on the vault during %d upload attempts; "
            "it stays queued",
            self.device_id,
            ctx.name,
            key,
            _MAX_CAS_ATTEMPTS,
        )
        return True

    # -- tombstone retention ----------------------------------------------------------------

    async def _maybe_purge(self, ctx: Context, epoch: int, stats: PassStats) -> None:
        if self.options.tombstone_retention is None:
            return
        state = self._state(ctx)
        if state.max_stamp is None:
            return
        if (
            state.last_purge_stamp is not None
            and state.max_stamp - state.last_purge_stamp < self.options.purge_interval
        ):
            return
        horizon = int(state.max_stamp - self.options.tombstone_retention)
        docs: list[RemoteDoc] = []
        if horizon > 0:
            stats.requests += 1
            old = await self.vault.query(
                ctx.collection,
                {
                    "deletionDate": {"$ne": None},
                    "modified": {"$lt": horizon},
                    "brhVersion": {"$exists": True},
                },
                projection={"key": 1, "brhVersion": 1, "modificationDate": 1, "deletionDate": 1},
                limit=self.options.page_size,
            )
            self._check_epoch(ctx, epoch)
            docs = [doc for doc in self._parse_all(ctx, old) if not doc.version.is_legacy]
        if docs:
            stats.requests += 1
            await self.vault.delete_many(
                ctx.collection,
                {"$or": [{"key": d.key, "brhVersion": {"$lte": d.version.encode()}} for d in docs]},
            )
            self._check_epoch(ctx, epoch)
            self._trace(
                "%s: purged %d tombstones older than stamp %d", ctx.name, len(docs), horizon
            )
        self.store.purge_tombstones(ctx.name, horizon * 1000)
        done = len(docs) < self.options.page_size  # more left: purge again next pass
        self._save_state(
            ctx,
            epoch,
            replace(
                self._state(ctx),
                last_purge_stamp=state.max_stamp if done else state.last_purge_stamp,
            ),
        )


def _prune(window: set[tuple[int, str]], lowest: int) -> tuple[tuple[int, str], ...]:
    """The window entries still inside the overlap (stamp >= ``lowest``), sorted."""
    return tuple(sorted(item for item in window if item[0] >= lowest))


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
