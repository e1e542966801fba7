"""The original helper, re-implemented faithfully, bugs included: the legacy baseline.

This is the algorithm of the original TypeScript helper as ``shared/reference/original-helper.md``
describes it, in Python, so the simulator and the conformance suite can run it next to other
implementations. It is **deliberately buggy**: a conformance suite that passes it has missed
something. Do not fix anything here; the reference helper is :mod:`brh`.

Use it as a factory (``conformance.implementations.legacy:factory``): it receives a
:class:`simulator.impl.Installation` and returns a :class:`LegacyHelper`, which meets
:class:`simulator.impl.Helper`. Callbacks receive the vault document (a dict with ``key``,
``data``, ``creationDate``, ``modificationDate``, ``deletionDate``).

Where each weakness lives:

====  ======================================================================================
W1    :meth:`LegacyHelper._pass` pulls ``modificationDate > lastfullsyncdate``: edit times
      against a watermark taken from the device's clock when a context finished, so an edit
      uploaded after another device's pass but stamped before it is never pulled.
W2    :meth:`~LegacyHelper._pull_one` (``local < remote``), :meth:`~LegacyHelper._push_one`
      (``local > remote``) and the watermark compare device wall-clock stamps: a slow clock's
      newer edit looks older and is overwritten by older remote data.
W3    one ``lastfullsyncdate`` (:data:`WATERMARK`) for every context: written after each
      context, re-read before each, cleared by any context's wipe. On a fresh device only the
      first context restores (the second reads the watermark the first just wrote); a context
      added later, or one whose pass halted after an earlier context moved the watermark, skips
      older entries for good.
W4    :meth:`~LegacyHelper._upload`: ``find_one`` then ``insert_one`` (never an atomic upsert);
      racing creators both insert, nothing removes duplicates, ``find_one`` picks any of them.
W5    deletions are soft and kept forever on the vault; a remote deletion leaves a local
      tombstone that is never erased (only tombstones this device uploaded are).
W6    a callback returning false ends the whole pass (:meth:`~LegacyHelper._pass`): later
      entries, contexts and the push are skipped and nothing schedules a retry.
W7    :meth:`~LegacyHelper._pull_one` on modify copies ``modificationDate`` and ``data`` but not
      ``deletionDate``: a local delete overtaken by a remote edit leaves a record both deleted
      and current, and the delete is never uploaded.
W8    strict comparisons: equal ``modificationDate`` with different data is never resolved.
W9    :meth:`~LegacyHelper._push_one` asks the vault about every local key on every pass
      (``syncDate`` is written but :meth:`~LegacyHelper._load` never reads it back), and an
      upload costs another ``find_one`` and a write.
W10   the cancel flag is only checked between pulled entries and is cleared whenever a pass is
      queued (:meth:`~LegacyHelper._queue_sync`): a cancel can be lost.
W11   callbacks run inside the op queue: one that awaits ``upsert_database_entry`` waits for
      the pass that is waiting for it (deadlock); one that fires it without awaiting cancels
      the pass and re-stamps the entry, which is uploaded again and echoed.
W12   an entry and its context's index are separate store writes, persisted in the
      background (:mod:`.legacy_store`): a write acknowledged just before a crash is lost, and
      a crash between the two leaves an entry out of the index, never synced again (a later
      upsert of the key finds the entry and does not add it to the index either).
W13   storage keys are ``<context>_<key>`` and ``<context>_index``: an entry keyed ``index``
      overwrites the index; ``("a_b", "c")`` and ``("a", "b_c")`` share a key.
W14   an upload ``$set``\\s the whole entry, ``creationDate`` included (it flips between racing
      creators); pull order is the vault's natural order; a collection that cannot be created
      makes the pass skip that context and still report success. Not reproduced: "sync
      disabled" (there is no such switch here).
====  ======================================================================================

Choices where the description is silent or Python differs (see also the tests in
``tests/conformance/test_legacy.py``):

* A vault error makes the pass, and :meth:`LegacyHelper.sync`, return False after logging it
  (the original surfaced it as a rejected promise, often unhandled). A callback that raises
  still propagates, as a rejection did. Like a refusal, an error schedules no retry.
* ``lastfullsyncdate`` is read before each context and written after each one, as the original
  does: within one pass a context reads the watermark the previous context just wrote, so on a
  fresh device only the first context restores (W3).
* A collection that cannot be created (any vault error other than "already exists") makes the
  pass skip that context, log it and go on; the pass still reports success (W14).
* The op queue runs operations one at a time in the order they were *added* (like the
  original's promise queue), so a pass takes its place in the queue when ``sync()`` is called.
* "Queued" means added and not yet started: ``sync()`` during a running pass queues another.
* The cancel flag is checked after each pulled entry only (not in the push loop). A pass that
  sees it ends like a refusal: no watermark for that context, result False.
* ``delete_database_entry`` sets the cancel flag first, as ``upsert_database_entry`` does; for
  an unknown key it only logs a warning and starts no sync.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from brh.vault import AlreadyExistsError, Vault, VaultError
from conformance.implementations.legacy_store import KeyValueStore
from simulator.impl import Callback, Installation

__all__ = ["WATERMARK", "LegacyHelper", "factory"]

log = logging.getLogger("conformance.legacy")

WATERMARK = "lastfullsyncdate"
"""The one storage key holding the watermark of every context (W3)."""

T = TypeVar("T")
LocalEntry = dict[str, Any]
"""``key``, ``creationDate``, ``modificationDate``, ``deletionDate``, ``data`` (ms dates)."""

ENTRY_FIELDS = ("key", "creationDate", "modificationDate", "deletionDate", "data")


@dataclass(frozen=True)
class _Context:
    name: str
    on_insert: Callback
    on_modify: Callback
    on_delete: Callback

    @property
    def collection(self) -> str:
        return "backup_" + self.name


class _OpQueue:
    """A promise queue of concurrency 1: operations run one at a time, in the order added."""

    def __init__(self) -> None:
        self._last: asyncio.Task[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    def add(self, operation: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        previous = self._last

        async def when_its_turn() -> T:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])  # whatever its outcome
            return await operation()

        task = asyncio.get_running_loop().create_task(when_its_turn())
        self._last = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def close(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _ask(callback: Callback, document: dict[str, Any]) -> bool:
    answer = callback(dict(document))
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


class LegacyHelper:
    """The original helper's algorithm over a :class:`~brh.vault.Vault` and a key/value store.

    ``clock`` is the device's wall clock in seconds; dates are its milliseconds. ``debug``
    turns on verbose logs of every step, as the original's constructor flag did.
    """

    def __init__(
        self,
        vault: Vault,
        store: KeyValueStore,
        *,
        clock: Callable[[], float],
        debug: bool = False,
    ) -> None:
        self._vault = vault
        self._store = store
        self._clock = clock
        self._debug = debug
        self._contexts: list[_Context] = []
        self._queue = _OpQueue()
        self._sync_queued = False
        self._cancel = False
        self._closed = False
        """Closed (the process died): a pass cut short then reports nothing."""
        self._background: set[asyncio.Task[bool]] = set()
        """Passes started by writes and not awaited (kept so they are not collected)."""

    # -- the original API ------------------------------------------------------------------

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        self._contexts.append(_Context(name, on_insert, on_modify, on_delete))

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        self._cancel = True  # stop a running pass: a newer local state must be synced
        await self._queue.add(lambda: self._write_upsert(context, key, data))
        self._start_sync()

    async def delete_database_entry(
        self, context: str, key: str, *, locally_only: bool = False
    ) -> None:
        if locally_only:  # at once, outside the queue, and the vault is never told
            await self._erase(context, key)
            return
        self._cancel = True
        if await self._queue.add(lambda: self._write_delete(context, key)):
            self._start_sync()

    async def get_database_entry(self, context: str, key: str) -> LocalEntry | None:
        return self._load(context, key)

    async def wipe_local_context_data(self, context: str) -> None:
        for key in self._index(context):
            await self._store.remove(_storage_key(context, key))
        await self._store.remove(_index_key(context))
        await self._store.remove(WATERMARK)  # every context's watermark (W3)

    def stop(self) -> None:
        self._cancel = True

    async def sync(
        self, remotely_modified_entries_only: bool = True, *, full: bool = False
    ) -> bool:
        """One pass over every context; False at once if a pass is already queued. ``full``
        (the harness's name) is ``remotely_modified_entries_only=False``."""
        task = self._queue_sync(full=full or not remotely_modified_entries_only)
        return False if task is None else await task

    # -- what a harness needs --------------------------------------------------------------

    def local_entries(self, context: str) -> dict[str, Any]:
        live: dict[str, Any] = {}
        for key in self._index(context):
            entry = self._load(context, key)
            if entry is not None and not entry["deletionDate"]:
                live[key] = entry["data"]
        return live

    def holds(self, context: str, key: str) -> bool:
        """``key in local_entries(context)`` (listed in the index, stored, not deleted),
        without loading every entry of the context."""
        if key not in self._index(context):
            return False
        entry = self._load(context, key)
        return entry is not None and not entry["deletionDate"]

    async def close(self) -> None:
        """The process dies: the store first (what it had not flushed is lost, W12), then every
        queued operation."""
        self._cancel = True
        self._closed = True
        self._store.close()
        await self._queue.close()

    # -- the pass --------------------------------------------------------------------------

    def _queue_sync(self, *, full: bool = False) -> asyncio.Task[bool] | None:
        if self._sync_queued:
            self._trace("sync already queued")
            return None
        self._sync_queued = True
        self._cancel = False  # W10: a cancel asked meanwhile is forgotten
        return self._queue.add(lambda: self._run_pass(full))

    def _start_sync(self) -> None:
        """Start a pass and do not wait for it (nothing looks at its result)."""
        task = self._queue_sync()
        if task is not None:
            self._background.add(task)
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[bool]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._closed:
            # The original's unhandled promise rejection.
            log.error("background sync failed", exc_info=task.exception())

    async def _run_pass(self, full: bool) -> bool:
        self._sync_queued = False
        try:
            return await self._pass(full)
        except VaultError as error:
            log.warning("sync failed: %s: %s", type(error).__name__, error)
            return False

    async def _pass(self, full: bool) -> bool:
        self._trace("pass starts, full=%s", full)
        for context in list(self._contexts):
            # Re-read before each context: the previous context of this very pass has just
            # moved it, so on a fresh device only the first context restores (W3).
            watermark = self._store.get(WATERMARK)
            self._trace("context %r, lastfullsyncdate=%s", context.name, watermark)
            try:
                await self._vault.create_collection(context.collection)
            except AlreadyExistsError:
                pass
            except VaultError as error:  # the context is skipped; the pass still succeeds (W14)
                log.warning("cannot create %s: %s; skipping it", context.collection, error)
                continue
            query = {} if watermark is None or full else {"modificationDate": {"$gt": watermark}}
            for document in await self._vault.find_many(context.collection, query):
                if not await self._pull_one(context, document):
                    log.info("sync of %r stopped by a callback, will retry later", context.name)
                    return False  # W6: ... and nothing does
                if self._cancel:
                    self._trace("sync cancelled")
                    return False
            for key in self._index(context.name):
                await self._push_one(context, key)
            await self._store.set(WATERMARK, self._now())
        self._trace("pass done")
        return True

    async def _pull_one(self, context: _Context, remote: dict[str, Any]) -> bool:
        """Apply one pulled document; False when the app's callback refused it."""
        key = remote["key"]
        local = self._load(context.name, key)
        deleted = bool(remote.get("deletionDate"))
        if local is not None:
            if not local["modificationDate"] < remote["modificationDate"]:
                return True  # "up to date" (W2, W8)
            if deleted:
                if not await _ask(context.on_delete, remote):
                    return False
                for name in ("creationDate", "modificationDate", "deletionDate", "data"):
                    local[name] = remote.get(name)
            else:
                if not await _ask(context.on_modify, remote):
                    return False
                local["modificationDate"] = remote["modificationDate"]
                local["data"] = remote.get("data")  # deletionDate left as it was (W7)
            await self._save(context.name, local)
            return True
        if deleted:
            return True
        if not await _ask(context.on_insert, remote):
            return False
        await self._save(context.name, {name: remote.get(name) for name in ENTRY_FIELDS})
        await self._add_to_index(context.name, key)
        return True

    async def _push_one(self, context: _Context, key: str) -> None:
        local = self._load(context.name, key)
        if local is None:
            return  # listed in the index, entry gone (W12, W13)
        remote = await self._vault.find_one(context.collection, {"key": key})  # W9
        if remote is not None and not local["modificationDate"] > remote["modificationDate"]:
            return
        await self._upload(context, local)
        if local["deletionDate"]:
            await self._erase(context.name, key)
        else:
            local["syncDate"] = self._now()  # never read back (W9)
            await self._save(context.name, local)

    async def _upload(self, context: _Context, entry: LocalEntry) -> None:
        """Find, then update every match or insert: not atomic (W4)."""
        self._trace("uploading %s/%s", context.name, entry["key"])
        document = {name: entry[name] for name in ENTRY_FIELDS}
        selector = {"key": entry["key"]}
        if await self._vault.find_one(context.collection, selector) is not None:
            await self._vault.update_many(context.collection, selector, {"$set": document})
        else:
            await self._vault.insert_one(context.collection, document)

    # -- local writes (through the queue) --------------------------------------------------

    async def _write_upsert(self, context: str, key: str, data: Any) -> None:
        now = self._now()
        entry = self._load(context, key)
        if entry is not None:
            entry.update(data=data, modificationDate=now, deletionDate=None)
            await self._save(context, entry)
            return
        entry = {
            "key": key,
            "creationDate": now,
            "modificationDate": now,
            "deletionDate": None,
            "data": data,
        }
        await self._save(context, entry)
        await self._add_to_index(context, key)  # a separate write (W12)

    async def _write_delete(self, context: str, key: str) -> bool:
        entry = self._load(context, key)
        if entry is None:
            log.warning("delete: no local entry %r in context %r", key, context)
            return False
        now = self._now()
        entry.update(deletionDate=now, modificationDate=now)
        await self._save(context, entry)
        return True

    # -- the store -------------------------------------------------------------------------

    def _load(self, context: str, key: str) -> LocalEntry | None:
        value = self._store.get(_storage_key(context, key))
        if not isinstance(value, dict):
            return None  # absent, or another value sharing the storage key (W13)
        return {name: value.get(name) for name in ENTRY_FIELDS}  # syncDate is not loaded

    async def _save(self, context: str, entry: LocalEntry) -> None:
        await self._store.set(_storage_key(context, entry["key"]), entry)

    def _index(self, context: str) -> list[str]:
        value = self._store.get(_index_key(context))
        return [k for k in value if isinstance(k, str)] if isinstance(value, list) else []

    async def _add_to_index(self, context: str, key: str) -> None:
        index = self._index(context)
        if key not in index:
            await self._store.set(_index_key(context), [*index, key])

    async def _erase(self, context: str, key: str) -> None:
        await self._store.remove(_storage_key(context, key))
        index = self._index(context)
        if key in index:
            await self._store.set(_index_key(context), [k for k in index if k != key])

    def _now(self) -> int:
        """Milliseconds since the epoch by the device's clock (W2)."""
        return int(self._clock() * 1000)

    def _trace(self, message: str, *args: Any) -> None:
        if self._debug:
            log.debug(message, *args)


def _storage_key(context: str, key: str) -> str:
    return f"{context}_{key}"  # W13


def _index_key(context: str) -> str:
    return f"{context}_index"  # W13


def factory(installation: Installation) -> LegacyHelper:
    """The legacy helper on the installation's vault, clock and store directory.

    ``installation.options`` are ignored: the original has no retry policy, page size or any
    other of the reference's options."""
    return LegacyHelper(
        installation.vault, KeyValueStore(installation.store), clock=installation.clock
    )
