"""``BackupRestoreHelper``: the public face of brh.

It validates what the app passes in, records local changes in the store (one transaction each,
never waiting for the network), and hands sync passes to :class:`~brh.scheduler.PassScheduler`
(when) and :class:`~brh.engine.SyncEngine` (what), whose decisions come from :mod:`brh.core`.
Time is read only through the injected ``clock`` and the running event loop's timers, so a
simulator that provides a virtual-time loop and clock drives it unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from brh.core import RULES, Rules
from brh.deadline import with_deadline
from brh.engine import IN_CALLBACK, Callback, Context, SyncEngine
from brh.entry import Entry, StuckEntry, SyncResult, copy_json
from brh.errors import (
    HelperClosedError,
    InvalidArgumentError,
    ReentrantCallError,
    UnknownContextError,
)
from brh.events import Listener
from brh.hlc import HybridClock, Version, new_incarnation
from brh.options import SyncOptions
from brh.retry import RetryPolicy
from brh.scheduler import PassScheduler
from brh.store import LocalStore, Record
from brh.validation import check_context_name, check_key
from brh.vault import Vault
from brh.wire import collection_for

__all__ = ["BackupRestoreHelper", "Callback"]


class BackupRestoreHelper:
    """Backs up an app's entries to a vault, restores them, and keeps devices in step.

    ``vault``: any :class:`brh.vault.Vault`. ``store``: a SQLite file path, ``":memory:"``, or a
    :class:`brh.store.LocalStore` (the caller keeps ownership of a store it passes in). A path
    that cannot be opened raises :class:`brh.errors.LocalStoreError` (see
    :class:`~brh.store.LocalStore`); a helper whose construction fails closes the store it
    opened.

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
    * ``request_deadline``: seconds (event-loop time) one vault request may take in all; a
      request still unanswered then is cut and counts as a network error of the pass, which is
      retried (SPEC RETRY-5). ``helper.vault`` stays the vault passed in;
    * ``rng``: the random generator of the helper's incarnation (see :attr:`incarnation`) and
      of retry jitter (default: seeded from the operating system, so a reinstalled device never
      draws its old incarnation again; a simulator passes a seeded one to replay runs);
    * ``log_payloads``: with ``debug``, also log entry data;
    * ``listener``: called with a :class:`brh.events.SyncEvent` for each pass, callback and
      upload (see :mod:`brh.events`);
    * ``rules``: the sync decisions (:data:`brh.core.RULES`); a test suite swaps one of them for
      a buggy one to prove it notices (:class:`brh.core.Rules`). Leave it alone otherwise.
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
        request_deadline: float = 60.0,
        rng: random.Random | None = None,
        log_payloads: bool = False,
        listener: Listener | None = None,
        rules: Rules | None = None,
    ) -> None:
        if not isinstance(vault, Vault):
            raise InvalidArgumentError(
                "vault", f"expected an object implementing brh.vault.Vault, got {vault!r}"
            )
        if clock is not None and not callable(clock):
            raise InvalidArgumentError("clock", f"must be a zero-argument callable, got {clock!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidArgumentError("retry", f"must be a RetryPolicy, got {retry!r}")
        if listener is not None and not callable(listener):
            raise InvalidArgumentError("listener", f"must be callable, got {listener!r}")
        if rng is not None and not isinstance(rng, random.Random):
            raise InvalidArgumentError("rng", f"must be a random.Random, got {rng!r}")
        if rules is not None and not isinstance(rules, Rules):
            raise InvalidArgumentError("rules", f"must be a brh.core.Rules, got {rules!r}")
        self.rules: Rules = rules or RULES
        """The sync decisions this helper runs with (:data:`brh.core.RULES`)."""
        if device_id is not None and not (
            isinstance(device_id, str) and 0 < len(device_id) <= 128 and device_id.isprintable()
        ):
            raise InvalidArgumentError(
                "device_id", f"must be 1 to 128 printable characters, got {device_id!r}"
            )
        self.options = SyncOptions(
            debug=debug,
            log_payloads=log_payloads,
            auto_sync=auto_sync,
            debounce=debounce,
            page_size=page_size,
            overlap=overlap,
            tombstone_retention=tombstone_retention,
            purge_interval=purge_interval,
            full_sync_interval=full_sync_interval,
            stuck_threshold=stuck_threshold,
            request_deadline=request_deadline,
        )
        self._store, self._owns_store = _open_store(store)
        try:  # a store the helper opened is closed again if anything here fails
            stored_id = self._store.device_id()
            if device_id is not None and stored_id is not None and stored_id != device_id:
                raise InvalidArgumentError(
                    "device_id",
                    f"{device_id!r} differs from {stored_id!r}, the device this local store "
                    "belongs to; use a fresh store for a new device",
                )
            self.device_id: str = device_id or stored_id or secrets.token_hex(8)
            if stored_id is None:
                self._store.set_device_id(self.device_id)
            stored_clock = self._store.clock()
        except BaseException:
            if self._owns_store:
                self._store.close()
            raise

        self.vault = vault
        self.auto_sync = auto_sync
        """Whether writes start a pass by themselves (may be changed at any time)."""
        self._log = logging.getLogger("brh")
        self._closed = False
        rng = rng or random.Random(secrets.randbits(64))
        self.incarnation: str = new_incarnation(rng)
        """Drawn afresh each time a helper opens its store: with the device id, it names this
        helper in the versions it writes, so no two helpers ever issue the same version (ORD-1)."""
        self._clock = HybridClock(
            self.rules.writer(self.device_id, self.incarnation), clock or time.time, stored_clock
        )
        self._contexts: dict[str, Context] = {}
        policy = retry or RetryPolicy()
        self._engine = SyncEngine(
            owner=self,
            device_id=self.device_id,
            vault=with_deadline(vault, self.options.request_deadline),
            store=self._store,
            contexts=self._contexts,
            clock=self._clock,
            options=self.options,
            closed=lambda: self._closed,
            listener=listener,
            upload_delay=lambda refusals: policy.delay(refusals, rng),
            rules=self.rules,
        )
        self._scheduler = PassScheduler(
            self._engine.run_pass,
            retry=policy,
            rng=rng,
            debounce=float(debounce),
            device_id=self.device_id,
            on_retrying=lambda retrying: setattr(self._engine, "retrying", retrying),
            rules=self.rules,
        )
        self._trace("helper ready (device %s, store %s)", self.device_id, self._store.path)

    @property
    def retry(self) -> RetryPolicy:
        return self._scheduler.retry

    @property
    def last_result(self) -> SyncResult | None:
        """The outcome of the most recent pass (None before the first)."""
        return self._scheduler.last_result

    # -- public API -------------------------------------------------------------------------

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        """Register a sync context and its three callbacks (plain functions or coroutines).

        Contexts sync in registration order. A context added after earlier syncs has its own
        cursor, so its first pass pulls everything already on the vault.
        """
        self._check_open("add_sync_context")
        check_context_name(name)
        if name in self._contexts:
            raise InvalidArgumentError("name", f"sync context {name!r} is already registered")
        for argument, callback in (
            ("on_insert", on_insert),
            ("on_modify", on_modify),
            ("on_delete", on_delete),
        ):
            if not callable(callback):
                raise InvalidArgumentError(argument, f"must be callable, got {callback!r}")
        self._contexts[name] = Context(name, collection_for(name), on_insert, on_modify, on_delete)
        self._trace("context %s registered", name)

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        """Insert or replace an entry locally; it reaches the vault with the next sync.

        Returns once the change is durable in the local store; never waits for the network.
        Starts a sync by itself (after the debounce delay) when ``auto_sync`` is on.
        """
        self._check_writable("upsert_database_entry")
        self._known(context)
        check_key(key)
        encoded = self.rules.encode_data(key, data)
        # What JSON gives back (plain types); a plain dict or list is copied, not re-parsed.
        value = copy_json(data) if type(data) in (dict, list) else json.loads(encoded)

        def upserted(current: Record | None, version: Version) -> Record:
            live = current is not None and not current.deleted
            return Record(
                context=context,
                key=key,
                data=value,
                creation_date=current.creation_date if live and current else version.wall_ms,
                modification_date=version.wall_ms,
                deletion_date=None,
                version=version,
                base=current.base if current is not None else None,
                pending=True,
                stale=current.stale if current is not None else False,
            )

        record = self._store.write_local(context, key, self._clock, upserted)
        assert record is not None
        self._trace("upsert %s/%s at %s%s", context, key, record.version, self._payload(data))
        self._auto_sync()
        if not self.rules.write_returns_before_sync:
            await self.sync()

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
        check_key(key)
        if locally_only:
            existed = self._store.erase(context, key)
            self._trace("local erase %s/%s (%s)", context, key, "done" if existed else "absent")
            return

        def deleted(current: Record | None, version: Version) -> Record | None:
            if current is None or current.deleted:
                return None
            return replace(
                current,
                modification_date=version.wall_ms,
                deletion_date=version.wall_ms,
                version=version,
                pending=True,
            )

        record = self._store.write_local(context, key, self._clock, deleted)
        if record is None:
            self._log.warning(
                "[%s] delete_database_entry: no live entry %r in context %r; nothing to delete",
                self.device_id,
                key,
                context,
            )
            return
        self._trace("delete %s/%s at %s", context, key, record.version)
        self._auto_sync()
        if not self.rules.write_returns_before_sync:
            await self.sync()

    async def get_database_entry(self, context: str, key: str) -> Entry | None:
        """The local copy of a live entry, or None (absent or deleted)."""
        self._check_open("get_database_entry")
        self._known(context)
        check_key(key)
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
        if "sync" in self.rules.refused_in_callback and self._callback_context() is not None:
            raise ReentrantCallError(
                "sync() was called from inside a sync callback; the callback's pass cannot "
                "finish until the callback returns, so this would wait forever. Return from "
                "the callback instead (True, or False to have the helper retry later)."
            )
        return await asyncio.shield(self._scheduler.request(full))

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
        return self._engine.stuck()

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
        await self._scheduler.close()
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
        context = self._callback_context() if method in self.rules.refused_in_callback else None
        if context is not None:
            raise ReentrantCallError(
                f"{method}() was called from inside a sync callback of context {context!r}. "
                "Callbacks must only update the app's own model: when a callback returns True "
                "the helper records the remote change itself. Writing here would re-stamp the "
                "entry being synced and echo it to every device."
            )

    def _callback_context(self) -> str | None:
        """The context whose callback of *this* helper is running here, if any."""
        current = IN_CALLBACK.get()
        return current[1] if current is not None and current[0] is self else None

    def _known(self, context: str) -> Context:
        if not isinstance(context, str):
            raise InvalidArgumentError("context", f"must be a str, got {context!r}")
        try:
            return self._contexts[context]
        except KeyError:
            raise UnknownContextError(context) from None

    # -- logging and triggers -----------------------------------------------------------------

    def _trace(self, message: str, *args: object) -> None:
        if self.options.debug:
            self._log.debug("[%s] " + message, self.device_id, *args)

    def _payload(self, data: Any) -> str:
        return f" data={data!r}" if self.options.log_payloads else ""

    def _auto_sync(self) -> None:
        if self.auto_sync and not self._closed:
            self._scheduler.trigger()


def _open_store(store: object) -> tuple[LocalStore, bool]:
    """The local store and whether the helper owns (and so closes) it."""
    if isinstance(store, LocalStore):
        return store, False
    if isinstance(store, str | Path):
        if str(store) == "":
            raise InvalidArgumentError("store", "is empty; give a file path or ':memory:'")
        return LocalStore(store), True
    raise InvalidArgumentError(
        "store", f"must be a path, ':memory:' or a LocalStore, got {store!r}"
    )
