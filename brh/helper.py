"""``BackupRestoreHelper``: the thin asyncio driver around the pure decisions of :mod:`brh.core`.

It owns the I/O: vault requests, app callbacks, local store transactions and timers. Time is
read only through the injected ``clock`` (for version stamps) and the running event loop (for
debounce and retry timers), so a simulator that provides a virtual-time loop and clock drives it
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import math
import random
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from brh.core import PULL_SORT, Action, Conflict, Decision, decide, group_by_key, resolve_conflict
from brh.core import pull_filter as make_pull_filter
from brh.entry import Entry, StuckEntry, SyncResult
from brh.errors import (
    HelperClosedError,
    InvalidArgumentError,
    ReentrantCallError,
    UnknownContextError,
)
from brh.hlc import Version, next_version, observe
from brh.retry import RetryPolicy
from brh.store import ContextState, LocalStore, Record
from brh.vault import AlreadyExistsError, CollectionNotFoundError, Document, Vault, VaultError
from brh.wire import (
    CONTEXT_NAME,
    MAX_DOCUMENT_BYTES,
    RemoteDoc,
    collection_for,
    document_fields,
    parse_document,
    version_filter,
)

__all__ = ["BackupRestoreHelper", "Callback"]

Callback = Callable[[Entry], bool | Awaitable[bool]]
"""An app callback: receives the remote entry, returns True (handled) or False (retry later)."""

MAX_KEY_LENGTH = 1024
_DOCUMENT_OVERHEAD = 1024  # bytes our fields and the vault's add around ``data``
_MAX_CAS_ATTEMPTS = 4
_STALE_FETCH_CHUNK = 200

_IN_CALLBACK: contextvars.ContextVar[tuple[BackupRestoreHelper, str] | None] = (
    contextvars.ContextVar("brh_in_callback", default=None)
)
"""Set while a callback runs (and inherited by tasks it spawns): which helper, which context."""


@dataclass
class _Context:
    name: str
    collection: str
    on_insert: Callback
    on_modify: Callback
    on_delete: Callback
    epoch: int = 0


@dataclass
class _PassStats:
    pulled: int = 0
    pushed: int = 0
    delivered: int = 0
    requests: int = 0
    failed: list[str] = field(default_factory=list)
    error: str | None = None


class _ContextReset(Exception):
    """The context was wiped while a pass was working on it; the pass leaves it alone."""


class _Refused(Exception):
    def __init__(self, context: str, key: str) -> None:
        self.context = context
        self.key = key


def _check_json(value: Any, path: str, depth: int = 0) -> None:
    """Reject what JSON cannot carry faithfully (non-string keys, NaN, sets, objects...)."""
    if depth > 200:
        raise InvalidArgumentError("data", f"nests deeper than 200 levels at {path}")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError("data", f"{path} is {value!r}, which JSON cannot carry")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise InvalidArgumentError(
                    "data", f"{path} has a non-string key {name!r}; JSON object keys are strings"
                )
            _check_json(item, f"{path}[{name!r}]", depth + 1)
        return
    raise InvalidArgumentError(
        "data",
        f"{path} is a {type(value).__name__}, which is not JSON (use dict, list, str, "
        "int, float, bool or None)",
    )


class BackupRestoreHelper:
    """Backs up an app's entries to a vault, restores them, and keeps devices in step.

    ``vault``: any :class:`brh.vault.Vault`. ``store``: a SQLite file path, ``":memory:"``, or a
    :class:`brh.store.LocalStore` (the caller keeps ownership of a store it passes in).

    Keyword arguments:

    * ``debug``: log every step through the ``brh`` logger (payloads only with ``log_payloads``);
    * ``device_id``: this device's stable id (default: the store's, or a new random one);
    * ``clock``: zero-argument callable returning seconds since the epoch (default ``time.time``);
    * ``retry``: the :class:`RetryPolicy` of failed or refused passes;
    * ``auto_sync`` / ``debounce``: writes start a pass by themselves after ``debounce`` seconds;
    * ``page_size``: documents per pull request; ``overlap``: seconds of vault stamps re-read on
      every pull (covers the stamps' one-second resolution and small vault clock jitter);
    * ``tombstone_retention``: seconds a vault tombstone is kept (None: forever);
      ``purge_interval``: how often (in vault seconds) one device purges older ones;
    * ``full_sync_interval``: at most this many seconds (device clock) between full passes of a
      context, which repair what incremental pulls cannot see (None: never);
    * ``stuck_threshold``: refusals in a row after which a key is logged and reported as stuck;
    * ``rng``: the random generator for retry jitter (default: seeded from the device id).
    """

    def __init__(
        self,
        vault: Vault,
        store: str | Path | LocalStore,
        *,
        debug: bool = False,
        device_id: str | None = None,
        clock: Callable[[], float] | None = None,
        retry: RetryPolicy | None = None,
        auto_sync: bool = True,
        debounce: float = 0.05,
        page_size: int = 500,
        overlap: int = 5,
        tombstone_retention: float | None = 30 * 86400,
        purge_interval: float = 86400,
        full_sync_interval: float | None = 86400,
        stuck_threshold: int = 5,
        rng: random.Random | None = None,
        log_payloads: bool = False,
    ) -> None:
        if not isinstance(vault, Vault):
            raise InvalidArgumentError(
                "vault", f"expected an object implementing brh.vault.Vault, got {vault!r}"
            )
        if clock is not None and not callable(clock):
            raise InvalidArgumentError("clock", f"must be a zero-argument callable, got {clock!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidArgumentError("retry", f"must be a RetryPolicy, got {retry!r}")
        if not (isinstance(debounce, int | float) and 0 <= debounce < math.inf):
            raise InvalidArgumentError("debounce", f"must be >= 0 seconds, got {debounce!r}")
        if not (isinstance(page_size, int) and page_size >= 1):
            raise InvalidArgumentError("page_size", f"must be an int >= 1, got {page_size!r}")
        if not (isinstance(overlap, int) and overlap >= 0):
            raise InvalidArgumentError("overlap", f"must be an int >= 0 seconds, got {overlap!r}")
        if tombstone_retention is not None and not (
            isinstance(tombstone_retention, int | float) and tombstone_retention > 0
        ):
            raise InvalidArgumentError(
                "tombstone_retention", f"must be > 0 seconds or None, got {tombstone_retention!r}"
            )
        if not (isinstance(purge_interval, int | float) and purge_interval > 0):
            raise InvalidArgumentError(
                "purge_interval", f"must be > 0 seconds, got {purge_interval!r}"
            )
        if full_sync_interval is not None and not (
            isinstance(full_sync_interval, int | float) and full_sync_interval > 0
        ):
            raise InvalidArgumentError(
                "full_sync_interval", f"must be > 0 seconds or None, got {full_sync_interval!r}"
            )
        if not (isinstance(stuck_threshold, int) and stuck_threshold >= 1):
            raise InvalidArgumentError(
                "stuck_threshold", f"must be an int >= 1, got {stuck_threshold!r}"
            )
        if device_id is not None and not (
            isinstance(device_id, str) and 0 < len(device_id) <= 128 and device_id.isprintable()
        ):
            raise InvalidArgumentError(
                "device_id", f"must be 1 to 128 printable characters, got {device_id!r}"
            )

        if isinstance(store, LocalStore):
            self._store, self._owns_store = store, False
        elif isinstance(store, str | Path):
            if str(store) == "":
                raise InvalidArgumentError("store", "is empty; give a file path or ':memory:'")
            self._store, self._owns_store = LocalStore(store), True
        else:
            raise InvalidArgumentError(
                "store", f"must be a path, ':memory:' or a LocalStore, got {store!r}"
            )

        stored_id = self._store.device_id()
        if device_id is not None and stored_id is not None and stored_id != device_id:
            if self._owns_store:
                self._store.close()
            raise InvalidArgumentError(
                "device_id",
                f"{device_id!r} differs from {stored_id!r}, the device this local store belongs "
                "to; use a fresh store for a new device",
            )
        self.device_id: str = device_id or stored_id or secrets.token_hex(8)
        if stored_id is None:
            self._store.set_device_id(self.device_id)

        self.vault = vault
        self.debug = debug
        self.log_payloads = log_payloads
        self.retry = retry or RetryPolicy()
        self.auto_sync = auto_sync
        self.debounce = float(debounce)
        self.page_size = page_size
        self.overlap = overlap
        self.tombstone_retention = tombstone_retention
        self.purge_interval = purge_interval
        self.full_sync_interval = full_sync_interval
        self.stuck_threshold = stuck_threshold
        self._clock: Callable[[], float] = clock or time.time
        self._rng = rng or random.Random(zlib.crc32(self.device_id.encode()))
        self._log = logging.getLogger("brh")
        self._hlc: Version | None = self._store.clock()
        self._contexts: dict[str, _Context] = {}
        self._closed = False
        self._failures = 0
        self._runner: asyncio.Task[None] | None = None
        self._next: asyncio.Future[SyncResult] | None = None
        self._next_full = False
        self._debounce_timer: asyncio.TimerHandle | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self.last_result: SyncResult | None = None
        """The outcome of the most recent pass (None before the first)."""
        self._trace("helper ready (device %s, store %s)", self.device_id, self._store.path)

    # -- public API -------------------------------------------------------------------------

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        """Register a sync context and its three callbacks (plain functions or coroutines).

        Contexts sync in registration order. A context added after earlier syncs has its own
        cursor, so its first pass pulls everything already on the vault.
        """
        self._check_open("add_sync_context")
        if not isinstance(name, str) or not CONTEXT_NAME.fullmatch(name):
            raise InvalidArgumentError(
                "name",
                f"{name!r} is not a usable context name: 1 to 100 characters, letters, digits, "
                "'_', '.' or '-', starting with a letter or digit",
            )
        if name in self._contexts:
            raise InvalidArgumentError("name", f"sync context {name!r} is already registered")
        for argument, callback in (
            ("on_insert", on_insert),
            ("on_modify", on_modify),
            ("on_delete", on_delete),
        ):
            if not callable(callback):
                raise InvalidArgumentError(argument, f"must be callable, got {callback!r}")
        self._contexts[name] = _Context(name, collection_for(name), on_insert, on_modify, on_delete)
        self._trace("context %s registered", name)

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        """Insert or replace an entry locally; it reaches the vault with the next sync.

        Returns once the change is durable in the local store; never waits for the network.
        Starts a sync by itself (after the debounce delay) when ``auto_sync`` is on.
        """
        self._check_writable("upsert_database_entry")
        self._known(context)
        _check_key(key)
        _check_json(data, "data")
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        size = len(encoded.encode("utf-8")) + len(key.encode("utf-8")) + _DOCUMENT_OVERHEAD
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidArgumentError(
                "data",
                f"encodes to {size} bytes with its key; the vault's document limit is "
                f"{MAX_DOCUMENT_BYTES} bytes (16 MiB)",
            )
        current = self._store.get(context, key)
        version = self._stamp()
        creation = (
            current.creation_date
            if current is not None and not current.deleted
            else version.wall_ms
        )
        record = Record(
            context=context,
            key=key,
            data=json.loads(encoded),
            creation_date=creation,
            modification_date=version.wall_ms,
            deletion_date=None,
            version=version,
            base=current.base if current is not None else None,
            pending=True,
            stale=current.stale if current is not None else False,
        )
        self._store.write_local(record, version)
        self._trace("upsert %s/%s at %s%s", context, key, version, self._payload(data))
        self._auto_sync()

    async def delete_database_entry(
        self, context: str, key: str, *, locally_only: bool = False
    ) -> None:
        """Delete an entry: a tombstone that reaches the vault and then every device.

        ``locally_only=True`` forgets the local copy without telling the vault (as the
        original did); a later full sync restores it if the vault still has it. Deleting a key
        this device does not hold does nothing (and is logged).
        """
        self._check_writable("delete_database_entry")
        self._known(context)
        _check_key(key)
        if locally_only:
            existed = self._store.erase(context, key)
            self._trace("local erase %s/%s (%s)", context, key, "done" if existed else "absent")
            return
        current = self._store.get(context, key)
        if current is None or current.deleted:
            self._log.warning(
                "[%s] delete_database_entry: no live entry %r in context %r; nothing to delete",
                self.device_id,
                key,
                context,
            )
            return
        version = self._stamp()
        record = replace(
            current,
            modification_date=version.wall_ms,
            deletion_date=version.wall_ms,
            version=version,
            pending=True,
        )
        self._store.write_local(record, version)
        self._trace("delete %s/%s at %s", context, key, version)
        self._auto_sync()

    async def get_database_entry(self, context: str, key: str) -> Entry | None:
        """The local copy of a live entry, or None (absent or deleted)."""
        self._check_open("get_database_entry")
        self._known(context)
        _check_key(key)
        record = self._store.get(context, key)
        if record is None or record.deleted:
            return None
        return record.to_entry()

    async def sync(self, *, full: bool = False) -> SyncResult:
        """Run a sync pass (or join the one already queued) and return its outcome.

        At most one pass runs and one waits; concurrent calls share the waiting one. ``full``
        re-reads the whole vault instead of what changed since the cursor. A pass that does
        not complete schedules its own retry.
        """
        self._check_open("sync")
        if self._callback_context() is not None:
            raise ReentrantCallError(
                "sync() was called from inside a sync callback; the callback's pass cannot "
                "finish until the callback returns, so this would wait forever. Return from "
                "the callback instead (True, or False to have the helper retry later)."
            )
        return await asyncio.shield(self._request_pass(full))

    async def wipe_local_context_data(self, context: str) -> None:
        """Forget everything local about ``context``: entries, cursor, known versions, pending.

        The next sync restores every live vault entry through insertion callbacks. Local
        changes not yet uploaded are lost, as with a reinstall.
        """
        self._check_writable("wipe_local_context_data")
        ctx = self._known(context)
        ctx.epoch += 1
        removed = self._store.wipe_context(context)
        self._trace("wiped %s (%d entries)", context, removed)

    def stuck_entries(self) -> list[StuckEntry]:
        """Remote changes the app has refused ``stuck_threshold`` times or more in a row."""
        self._check_open("stuck_entries")
        return [
            StuckEntry(name, key, count)
            for name in self._contexts
            for key, count in self._store.stuck(name, self.stuck_threshold)
        ]

    def pending_count(self, context: str) -> int:
        """How many local changes of ``context`` still wait for the vault."""
        self._check_open("pending_count")
        self._known(context)
        return self._store.counts(context)["pending"]

    @property
    def store(self) -> LocalStore:
        return self._store

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Stop timers and any running pass, and close the store if the helper opened it.

        Safe to call twice. Every change already returned from is durable in the store.
        """
        if self._closed:
            return
        self._closed = True
        for timer in (self._debounce_timer, self._retry_timer):
            if timer is not None:
                timer.cancel()
        self._debounce_timer = self._retry_timer = None
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        closed = SyncResult(False, reason="closed")
        if self._next is not None and not self._next.done():
            self._next.set_result(closed)
        self._next = None
        if self._owns_store:
            self._store.close()
        self._trace("closed")

    async def __aenter__(self) -> BackupRestoreHelper:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- guards -----------------------------------------------------------------------------

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise HelperClosedError(f"{method}() was called after close(); create a new helper")

    def _check_writable(self, method: str) -> None:
        self._check_open(method)
        context = self._callback_context()
        if context is not None:
            raise ReentrantCallError(
                f"{method}() was called from inside a sync callback of context {context!r}. "
                "Callbacks must only update the app's own model: when a callback returns True "
                "the helper records the remote change itself. Writing here would re-stamp the "
                "entry being synced and echo it to every device."
            )

    def _callback_context(self) -> str | None:
        """The context whose callback of *this* helper is running here, if any."""
        current = _IN_CALLBACK.get()
        return current[1] if current is not None and current[0] is self else None

    def _known(self, context: str) -> _Context:
        if not isinstance(context, str):
            raise InvalidArgumentError("context", f"must be a str, got {context!r}")
        try:
            return self._contexts[context]
        except KeyError:
            raise UnknownContextError(context) from None

    # -- time and logging -------------------------------------------------------------------

    def _now_ms(self) -> int:
        return math.floor(self._clock() * 1000)

    def _stamp(self) -> Version:
        self._hlc = next_version(self._hlc, self._now_ms(), self.device_id)
        return self._hlc

    def _trace(self, message: str, *args: object) -> None:
        if self.debug:
            self._log.debug("[%s] " + message, self.device_id, *args)

    def _payload(self, data: Any) -> str:
        return f" data={data!r}" if self.log_payloads else ""

    # -- scheduling -------------------------------------------------------------------------

    def _auto_sync(self) -> None:
        if not self.auto_sync or self._closed or self._debounce_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._debounce_timer = loop.call_later(
            self.debounce, self._fire_debounce, context=contextvars.Context()
        )

    def _fire_debounce(self) -> None:
        self._debounce_timer = None
        if not self._closed:
            self._request_pass(False)

    def _fire_retry(self) -> None:
        self._retry_timer = None
        if not self._closed:
            self._trace("retrying after %d failed pass(es)", self._failures)
            self._request_pass(False)

    def _request_pass(self, full: bool) -> asyncio.Future[SyncResult]:
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
            self._next_full = False
        self._next_full = self._next_full or full
        future = self._next
        if self._runner is None:
            self._runner = loop.create_task(self._run_passes(), context=contextvars.Context())
        return future

    async def _run_passes(self) -> None:
        try:
            while self._next is not None and not self._closed:
                future, full = self._next, self._next_full
                self._next = None
                try:
                    result = await self._pass(full)
                except Exception as exc:  # a bug or a broken local store: report, retry
                    self._log.exception("[%s] sync pass failed unexpectedly", self.device_id)
                    result = SyncResult(
                        False, reason="internal_error", error=f"{type(exc).__name__}: {exc}"
                    )
                finally:
                    if not future.done() and self._closed:
                        future.set_result(SyncResult(False, reason="closed"))
                self.last_result = result
                if not future.done():
                    future.set_result(result)
                self._after_pass(result)
        finally:
            self._runner = None

    def _after_pass(self, result: SyncResult) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        if result.completed:
            self._failures = 0
            return
        self._failures += 1
        delay = self.retry.delay(self._failures, self._rng)
        self._log.info(
            "[%s] sync pass did not complete (%s%s); retrying in %.3f s (attempt %d)",
            self.device_id,
            result.reason,
            f": {result.error}" if result.error else "",
            delay,
            self._failures,
        )
        loop = asyncio.get_running_loop()
        self._retry_timer = loop.call_later(delay, self._fire_retry, context=contextvars.Context())

    # -- one pass ---------------------------------------------------------------------------

    async def _pass(self, full: bool) -> SyncResult:
        stats = _PassStats()
        refused: _Refused | None = None
        self._trace("pass starts%s", " (full)" if full else "")
        for ctx in list(self._contexts.values()):
            epoch = ctx.epoch
            try:
                await self._ensure_collection(ctx, stats)
                if refused is None:
                    try:
                        await self._pull(ctx, epoch, full, stats)
                    except _Refused as exc:
                        refused = exc
                for _round in range(3):
                    superseded = await self._push(ctx, epoch, stats)
                    if not superseded or refused is not None:
                        break
                    try:  # a newer remote version beat a local change: deliver it now
                        await self._pull_stale(ctx, epoch, stats)
                    except _Refused as exc:
                        refused = exc
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
                if ctx.epoch == epoch and not self._closed:
                    self._store.requeue_all(ctx.name)
                stats.failed.append(ctx.name)
                stats.error = stats.error or f"{type(exc).__name__}: {exc}"
            except _ContextReset:
                self._trace("context %s was wiped during the pass", ctx.name)
                stats.failed.append(ctx.name)
                stats.error = stats.error or f"context {ctx.name!r} was wiped during the pass"
            except VaultError as exc:
                # Loud the first time; while a retry series goes on, quieter (no log flood).
                self._log.log(
                    logging.WARNING if self._failures == 0 else logging.INFO,
                    "[%s] context %r: vault error %s: %s",
                    self.device_id,
                    ctx.name,
                    type(exc).__name__,
                    exc,
                )
                stats.failed.append(ctx.name)
                stats.error = stats.error or f"{type(exc).__name__}: {exc}"
        stuck = tuple(self.stuck_entries()) if not self._closed else ()
        if refused is not None:
            reason: str | None = "refused"
        elif stats.failed:
            reason = "vault_error"
        else:
            reason = None
        result = SyncResult(
            completed=reason is None,
            reason=reason,
            error=stats.error,
            refused=(refused.context, refused.key) if refused is not None else None,
            pulled=stats.pulled,
            pushed=stats.pushed,
            delivered=stats.delivered,
            requests=stats.requests,
            failed_contexts=tuple(stats.failed),
            stuck=stuck,
        )
        self._trace(
            "pass ends: %s (pulled %d, pushed %d, delivered %d, %d requests)",
            "completed" if result.completed else reason,
            stats.pulled,
            stats.pushed,
            stats.delivered,
            stats.requests,
        )
        return result

    def _check_epoch(self, ctx: _Context, epoch: int) -> None:
        if ctx.epoch != epoch or self._closed:
            raise _ContextReset()

    async def _ensure_collection(self, ctx: _Context, stats: _PassStats) -> None:
        state = self._store.context_state(ctx.name)
        if state.collection_ready:
            return
        stats.requests += 1
        try:
            await self.vault.create_collection(ctx.collection)
            self._trace("created collection %s", ctx.collection)
        except AlreadyExistsError:
            pass
        self._save_state(
            ctx, ctx.epoch, replace(self._store.context_state(ctx.name), collection_ready=True)
        )

    def _save_state(self, ctx: _Context, epoch: int, state: ContextState) -> None:
        self._check_epoch(ctx, epoch)
        self._store.save_context_state(state)

    # -- pull -------------------------------------------------------------------------------

    async def _pull(self, ctx: _Context, epoch: int, full: bool, stats: _PassStats) -> None:
        await self._pull_stale(ctx, epoch, stats)
        state = self._store.context_state(ctx.name)
        now_ms = self._now_ms()
        away = (  # tombstones this device never saw may have been purged meanwhile
            self.tombstone_retention is not None
            and state.last_pull_ms is not None
            and now_ms - state.last_pull_ms > self.tombstone_retention * 1000 / 2
        )
        periodic = (  # repairs what an incremental pull cannot see (a vault clock step back)
            self.full_sync_interval is not None
            and state.last_full_ms is not None
            and now_ms - state.last_full_ms > self.full_sync_interval * 1000
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
        known = [version for _stamp, version in state.window] if start_cursor is not None else []
        cursor, max_stamp = state.cursor, state.max_stamp
        window = set(state.window) if start_cursor is not None else set()
        seen: set[str] | None = set() if resync else None
        after: tuple[int, Any] | None = None
        skip = 0
        while True:
            filter_ = make_pull_filter(start_cursor, self.overlap, known, after)
            stats.requests += 1
            raw = await self.vault.query(
                ctx.collection, filter_, sort=PULL_SORT, skip=skip, limit=self.page_size
            )
            self._check_epoch(ctx, epoch)
            docs = self._parse_all(ctx, raw)
            stats.pulled += len(docs)
            if seen is not None:
                seen.update(doc.key for doc in docs)
            try:
                await self._process(ctx, epoch, docs, stats)
            except _Refused as refusal:
                # Keep the cursor below the refused change so the next pass re-reads it.
                refused_stamp = next(
                    (d.stamp for d in docs if d.key == refusal.key and d.stamp is not None),
                    None,
                )
                if refused_stamp is not None and (cursor is None or refused_stamp > cursor):
                    cursor = refused_stamp
                    self._save_state(
                        ctx,
                        epoch,
                        replace(
                            self._store.context_state(ctx.name),
                            cursor=cursor,
                            max_stamp=_max(max_stamp, refused_stamp),
                            window=_prune(window, cursor - self.overlap),
                        ),
                    )
                raise
            stamps: list[int] = [d["modified"] for d in raw if isinstance(d.get("modified"), int)]
            if stamps:
                cursor = stamps[-1] if cursor is None else max(cursor, stamps[-1])
                max_stamp = _max(max_stamp, max(stamps))
                window.update(
                    (d["modified"], d["brhVersion"])
                    for d in raw
                    if isinstance(d.get("modified"), int) and isinstance(d.get("brhVersion"), str)
                )
                window = set(_prune(window, cursor - self.overlap))
                self._save_state(
                    ctx,
                    epoch,
                    replace(
                        self._store.context_state(ctx.name),
                        cursor=cursor,
                        max_stamp=max_stamp,
                        window=tuple(sorted(window)),
                    ),
                )
            if len(raw) < self.page_size:
                break
            last = raw[-1]
            if isinstance(last.get("modified"), int) and last.get("_id") is not None:
                after, skip = (last["modified"], last["_id"]), 0
            else:  # documents without vault stamps (never written by Hive's default client)
                skip += len(raw)
        if seen is not None:
            await self._reconcile_missing(ctx, epoch, seen, stats)
        self._save_state(
            ctx,
            epoch,
            replace(
                self._store.context_state(ctx.name),
                cursor=cursor if cursor is not None else 0,
                max_stamp=max_stamp,
                last_pull_ms=now_ms,
                last_full_ms=now_ms if resync else state.last_full_ms,
            ),
        )

    async def _pull_stale(self, ctx: _Context, epoch: int, stats: _PassStats) -> None:
        """Fetch, by key, remote versions known to be newer than what this device holds."""
        keys = self._store.stale_keys(ctx.name)
        for start in range(0, len(keys), _STALE_FETCH_CHUNK):
            chunk = keys[start : start + _STALE_FETCH_CHUNK]
            stats.requests += 1
            raw = await self.vault.find_many(ctx.collection, {"key": {"$in": chunk}})
            self._check_epoch(ctx, epoch)
            docs = self._parse_all(ctx, raw)
            stats.pulled += len(docs)
            await self._process(ctx, epoch, docs, stats)
            found = {doc.key for doc in docs}
            self._store.clear_stale(ctx.name, [key for key in chunk if key not in found])

    def _parse_all(self, ctx: _Context, raw: list[Document]) -> list[RemoteDoc]:
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
        self, ctx: _Context, epoch: int, docs: list[RemoteDoc], stats: _PassStats
    ) -> None:
        streaks = self._store.has_refusals(ctx.name)
        for winner, dominated in group_by_key(docs):
            for loser in dominated:
                await self._delete_duplicate(ctx, epoch, loser, stats)
            self._hlc = observe(self._hlc, winner.version)  # never write behind what was seen
            local = self._store.get(ctx.name, winner.key)
            decision = decide(local, winner)
            await self._apply(ctx, epoch, local, decision, stats)
            if streaks and self._store.refusals(ctx.name, winner.key):
                # settled without the app (e.g. a newer local write won): the streak ends
                self._store.clear_refusals(ctx.name, winner.key)

    async def _apply(
        self,
        ctx: _Context,
        epoch: int,
        local: Record | None,
        decision: Decision,
        stats: _PassStats,
    ) -> None:
        remote = decision.remote
        key = remote.key
        action = decision.action
        if action is Action.SKIP:
            if local is not None and local.stale:
                self._store.clear_stale(ctx.name, [key])
            return
        if action is Action.DOMINATED:
            await self._delete_duplicate(ctx, epoch, remote, stats)
            return
        if action is Action.ECHO:
            self._store.set_base(ctx.name, key, remote.version, clear_if_version=remote.version)
            return
        if action is Action.KEEP_LOCAL:
            self._trace(
                "%s/%s: local %s beats vault %s",
                ctx.name,
                key,
                local.version if local else None,
                remote.version,
            )
            self._store.set_base(ctx.name, key, remote.version, pending=True)
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
                count = self._store.note_refusal(ctx.name, key)
                if count >= self.stuck_threshold:
                    self._log.warning(
                        "[%s] context %r: the %s of key %r has been refused %d times in a row; "
                        "it stays queued and is retried with backoff",
                        self.device_id,
                        ctx.name,
                        action.value,
                        key,
                        count,
                    )
                raise _Refused(ctx.name, key)
            stats.delivered += 1
        if not self._store.apply_remote(record, expected, self._hlc):
            # The app wrote this key while its callback ran: that write is newer and wins.
            self._store.set_base(ctx.name, key, remote.version, pending=True)

    async def _deliver(self, ctx: _Context, action: Action, remote: RemoteDoc) -> bool:
        callback = {
            Action.INSERT: ctx.on_insert,
            Action.MODIFY: ctx.on_modify,
            Action.DELETE: ctx.on_delete,
        }[action]
        entry = remote.to_entry()
        self._trace(
            "%s/%s: %s callback for %s%s",
            ctx.name,
            entry.key,
            action.value,
            remote.version,
            self._payload(entry.data),
        )
        token = _IN_CALLBACK.set((self, ctx.name))
        try:
            outcome: Any = callback(entry)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception:
            self._log.exception(
                "[%s] context %r: %s callback raised for key %r; treated as a refusal",
                self.device_id,
                ctx.name,
                action.value,
                entry.key,
            )
            return False
        finally:
            _IN_CALLBACK.reset(token)
        if outcome is True:
            return True
        if outcome is not False:
            self._log.warning(
                "[%s] context %r: %s callback returned %r for key %r; expected True or False, "
                "treated as a refusal",
                self.device_id,
                ctx.name,
                action.value,
                outcome,
                entry.key,
            )
        else:
            self._trace("%s/%s: %s refused", ctx.name, entry.key, action.value)
        return False

    async def _delete_duplicate(
        self, ctx: _Context, epoch: int, doc: RemoteDoc, stats: _PassStats
    ) -> None:
        """Remove a document superseded by a newer one of the same key (no unique index)."""
        if doc.version.is_legacy:
            return  # leave documents the original helper wrote alone
        stats.requests += 1
        self._trace("%s/%s: removing superseded duplicate %s", ctx.name, doc.key, doc.version)
        await self.vault.delete_one(ctx.collection, version_filter(doc.key, doc.version))
        self._check_epoch(ctx, epoch)

    async def _reconcile_missing(
        self, ctx: _Context, epoch: int, seen: set[str], stats: _PassStats
    ) -> None:
        """After a full pull: synced entries the vault no longer has were deleted and purged."""
        for key in self._store.live_synced_keys(ctx.name):
            if key in seen:
                continue
            local = self._store.get(ctx.name, key)
            if local is None or local.pending or local.deleted:
                continue
            now = self._now_ms()
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
                self._store.note_refusal(ctx.name, key)
                raise _Refused(ctx.name, key)
            stats.delivered += 1
            self._store.forget_remote_deleted(ctx.name, key, local.version)

    # -- push -------------------------------------------------------------------------------

    async def _push(self, ctx: _Context, epoch: int, stats: _PassStats) -> bool:
        """Upload every pending local change; True if a newer remote version beat one."""
        superseded = False
        for record in self._store.pending(ctx.name):
            if not await self._push_one(ctx, epoch, record, stats):
                superseded = True
        return superseded

    async def _push_one(self, ctx: _Context, epoch: int, record: Record, stats: _PassStats) -> bool:
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
                self._store.set_base(ctx.name, key, record.version, clear_if_version=record.version)
                stats.pushed += 1
                self._trace("%s/%s: pushed %s", ctx.name, key, record.version)
                return True
            stats.requests += 1
            raw = await self.vault.find_many(ctx.collection, {"key": key})
            self._check_epoch(ctx, epoch)
            outcome = resolve_conflict(record, self._parse_all(ctx, raw))
            for loser in outcome.dominated:
                await self._delete_duplicate(ctx, epoch, loser, stats)
            if outcome.kind is Conflict.LANDED:
                self._store.set_base(ctx.name, key, record.version, clear_if_version=record.version)
                stats.pushed += 1
                return True
            if outcome.winner is not None:
                self._hlc = observe(self._hlc, outcome.winner.version)
            if outcome.kind is Conflict.REMOTE_WINS:
                self._trace(
                    "%s/%s: local %s lost to %s",
                    ctx.name,
                    key,
                    record.version,
                    outcome.winner.version if outcome.winner else None,
                )
                self._store.mark_stale(ctx.name, key, lost=record.version)
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

    async def _maybe_purge(self, ctx: _Context, epoch: int, stats: _PassStats) -> None:
        if self.tombstone_retention is None:
            return
        state = self._store.context_state(ctx.name)
        if state.max_stamp is None:
            return
        if (
            state.last_purge_stamp is not None
            and state.max_stamp - state.last_purge_stamp < self.purge_interval
        ):
            return
        horizon = int(state.max_stamp - self.tombstone_retention)
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
                limit=self.page_size,
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
        self._store.purge_tombstones(ctx.name, horizon * 1000)
        done = len(docs) < self.page_size  # more left: purge again next pass
        self._save_state(
            ctx,
            epoch,
            replace(
                self._store.context_state(ctx.name),
                last_purge_stamp=state.max_stamp if done else state.last_purge_stamp,
            ),
        )


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise InvalidArgumentError("key", f"must be a str, got {type(key).__name__} {key!r}")
    if not key:
        raise InvalidArgumentError("key", "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(
            "key", f"is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
        )
    if "\x00" in key:
        raise InvalidArgumentError("key", "must not contain NUL characters")


def _prune(window: set[tuple[int, str]], lowest: int) -> tuple[tuple[int, str], ...]:
    """The window entries still inside the overlap (stamp >= ``lowest``), sorted."""
    return tuple(sorted(item for item in window if item[0] >= lowest))


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
