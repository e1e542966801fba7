"""A simulated device: one helper, an app model per context, a skewable clock, a local store
that survives crashes, and the verbs of a device's life (crash, restart, reinstall)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brh import BackupRestoreHelper, Entry, RetryPolicy, SyncEvent
from brh.hlc import Version
from brh.store import LocalStore
from brh.vault import Vault
from simulator.app import AppModel, Behaviour
from simulator.clocks import SkewedClock

__all__ = ["SimDevice"]

WriteHook = Callable[["SimDevice", str, str, Version, bool, Any], None]


class SimDevice:
    """A device running ``brh``. Build it inside a running (virtual-time) event loop.

    Its clock is a :class:`SkewedClock` (``offset`` sets its initial skew). ``put`` and
    ``remove`` act as the app would: change the app's own model, then tell the helper.
    ``crash()`` drops the helper and the app's in-memory state but keeps the local store exactly
    as committed; ``restart()`` starts a new helper on it; ``reinstall()`` starts over with an
    empty store and an empty app.
    """

    def __init__(
        self,
        name: str,
        vault: Vault,
        *,
        store: str | Path | LocalStore = ":memory:",
        contexts: tuple[str, ...] = ("notes",),
        offset: float = 0.0,
        clock: SkewedClock | None = None,
        on_write: WriteHook | None = None,
        observer: Callable[[SimDevice, str, str, Entry], None] | None = None,
        listener: Callable[[SyncEvent], None] | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        self.vault = vault
        self.contexts = contexts
        self.clock = clock or SkewedClock(offset=offset)
        self.store = store if isinstance(store, LocalStore) else LocalStore(store)
        """The device's local store: it outlives crashes (the device owns it, not the helper)."""
        self._on_write = on_write
        self._observer = observer
        self._listener = listener
        options.setdefault("retry", RetryPolicy(initial_delay=1, max_delay=60, jitter=0.5))
        self._options = options
        self.running = False
        self.behaviours: dict[str, Behaviour] = {}
        self.apps: dict[str, AppModel] = {}
        self._start(fresh_apps=True)

    # -- life -------------------------------------------------------------------------------

    def _start(self, *, fresh_apps: bool) -> None:
        self.helper = BackupRestoreHelper(
            self.vault,
            self.store,
            device_id=self.name,
            clock=self.clock,
            listener=self._listener,
            **self._options,
        )
        self.running = True
        for context in self.contexts:
            app = self.apps.get(context) if not fresh_apps else None
            self.add_context(context, app)

    @property
    def offset(self) -> float:
        return self.clock.offset

    def add_context(self, context: str, app: AppModel | None = None) -> AppModel:
        if app is None:
            app = AppModel(behaviour=self.behaviours.setdefault(context, Behaviour()))
        if self._observer is not None:
            observer = self._observer
            app.observer = lambda kind, entry: observer(self, context, kind, entry)
        self.apps[context] = app
        if context not in self.contexts:
            self.contexts = (*self.contexts, context)
        self.helper.add_sync_context(context, app.on_insert, app.on_modify, app.on_delete)
        return app

    async def crash(self) -> None:
        """The process dies: timers and the running pass stop where they are (every store write
        is a transaction, so the store keeps exactly what was committed); the app's in-memory
        model is lost and rebuilt from the store on restart."""
        await self.helper.close()
        self.running = False

    async def restart(self) -> None:
        """Start again on the same local store; the app reloads its model from the helper."""
        if self.running:
            raise RuntimeError(f"restart: device {self.name!r} is running; crash it first")
        self._start(fresh_apps=True)
        for context, app in self.apps.items():
            app.items = dict(self.local(context))

    async def reinstall(self) -> list[tuple[str, str, Version, Version | None]]:
        """Uninstall (store and app gone) and install again.

        Returns what it lost: ``(context, key, local version, vault version it last saw)`` of
        every entry with a change not yet uploaded.
        """
        if self.running:
            await self.crash()
        lost = [(c, r.key, r.version, r.base) for c in self.contexts for r in self.store.pending(c)]
        self.store.close()
        self.store = LocalStore(":memory:")
        self._start(fresh_apps=True)
        return lost

    # -- what the app does ------------------------------------------------------------------

    @property
    def app(self) -> AppModel:
        """The app model of the first context."""
        return next(iter(self.apps.values()))

    def _context(self, context: str | None) -> str:
        return context if context is not None else next(iter(self.apps))

    async def put(self, key: str, data: Any, context: str | None = None) -> None:
        context = self._context(context)
        self.apps[context].items[key] = data
        self.apps[context].declined.discard(key)
        self.apps[context].edits += 1
        await self.helper.upsert_database_entry(context, key, data)
        self._written(context, key, deleted=False, data=data)

    async def remove(self, key: str, context: str | None = None) -> None:
        context = self._context(context)
        self.apps[context].items.pop(key, None)
        self.apps[context].declined.discard(key)
        self.apps[context].edits += 1
        before = self.helper.store.get(context, key)
        await self.helper.delete_database_entry(context, key)
        if before is not None and not before.deleted:
            self._written(context, key, deleted=True, data=None)

    def _written(self, context: str, key: str, *, deleted: bool, data: Any) -> None:
        record = self.helper.store.get(context, key)
        if self._on_write is not None and record is not None:
            self._on_write(self, context, key, record.version, deleted, data)

    def local(self, context: str | None = None) -> dict[str, Any]:
        """The helper's live local copy of a context, key -> data."""
        return {r.key: r.data for r in self.helper.store.entries(self._context(context))}

    async def sync(self, *, full: bool = False) -> Any:
        return await self.helper.sync(full=full)

    def now(self) -> float:
        return asyncio.get_running_loop().time()
