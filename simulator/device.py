"""A simulated device: one helper, an app model per context, and a clock that can be skewed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from brh import BackupRestoreHelper, RetryPolicy
from brh.store import LocalStore
from brh.vault import Vault
from simulator.app import AppModel

__all__ = ["SimDevice"]


class SimDevice:
    """A device running ``brh``. Build it inside a running (virtual-time) event loop.

    Its clock is the loop's time plus ``offset`` seconds; change ``offset`` at any moment to
    model skew or a jump. ``put`` and ``remove`` act as the app would: change the app's own
    model, then tell the helper.
    """

    def __init__(
        self,
        name: str,
        vault: Vault,
        *,
        store: str | Path | LocalStore = ":memory:",
        contexts: tuple[str, ...] = ("notes",),
        offset: float = 0.0,
        **options: Any,
    ) -> None:
        self.name = name
        self.offset = offset
        options.setdefault("retry", RetryPolicy(initial_delay=1, max_delay=60, jitter=0.5))
        self.helper = BackupRestoreHelper(vault, store, device_id=name, clock=self.clock, **options)
        self.apps: dict[str, AppModel] = {}
        for context in contexts:
            self.add_context(context)

    def clock(self) -> float:
        return asyncio.get_running_loop().time() + self.offset

    def add_context(self, context: str) -> AppModel:
        app = AppModel()
        self.apps[context] = app
        self.helper.add_sync_context(context, app.on_insert, app.on_modify, app.on_delete)
        return app

    @property
    def app(self) -> AppModel:
        """The app model of the first context."""
        return next(iter(self.apps.values()))

    def _context(self, context: str | None) -> str:
        return context if context is not None else next(iter(self.apps))

    async def put(self, key: str, data: Any, context: str | None = None) -> None:
        context = self._context(context)
        self.apps[context].items[key] = data
        await self.helper.upsert_database_entry(context, key, data)

    async def remove(self, key: str, context: str | None = None) -> None:
        context = self._context(context)
        self.apps[context].items.pop(key, None)
        await self.helper.delete_database_entry(context, key)

    def local(self, context: str | None = None) -> dict[str, Any]:
        """The helper's live local copy of a context, key -> data."""
        return {r.key: r.data for r in self.helper.store.entries(self._context(context))}
