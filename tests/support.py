"""Small shared pieces for the tests: an app model per context, and devices on virtual time.

Every test runs on :func:`simulator.timeloop.run`, so timers (debounce, retry) fire on virtual
time and nothing sleeps for real. Device clocks are the loop's virtual time plus an offset that
a test may change at any moment (skew, jumps).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brh import BackupRestoreHelper, Entry, RetryPolicy
from brh.store import LocalStore
from simulator.vault import FakeVault

EPOCH = 1_750_000_000.0
"""Virtual start time of every test (seconds since the epoch): realistic millisecond stamps."""


def now() -> float:
    return asyncio.get_running_loop().time()


def fake_vault(offset: float = 0.0) -> FakeVault:
    """A fake vault whose server clock is virtual time plus ``offset`` seconds."""
    box = {"offset": offset}
    vault = FakeVault(clock=lambda: now() + box["offset"])
    vault.clock_offset = box  # type: ignore[attr-defined]
    return vault


@dataclass
class App:
    """What the app would show for one context, and every callback it received."""

    items: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    refuse: Callable[[str, Entry], bool] | None = None
    """Return True to refuse this call (``kind`` is insert/modify/delete)."""

    def _handle(self, kind: str, entry: Entry) -> bool:
        self.calls.append((kind, entry.key, entry.data))
        if self.refuse is not None and self.refuse(kind, entry):
            return False
        if kind == "delete":
            self.items.pop(entry.key, None)
        else:
            self.items[entry.key] = entry.data
        return True

    def on_insert(self, entry: Entry) -> bool:
        return self._handle("insert", entry)

    async def on_modify(self, entry: Entry) -> bool:  # async on purpose: both kinds work
        return self._handle("modify", entry)

    def on_delete(self, entry: Entry) -> bool:
        return self._handle("delete", entry)

    def kinds(self) -> list[str]:
        return [kind for kind, _key, _data in self.calls]


class Device:
    """One helper with its apps and a skewable clock. Build inside a running virtual loop."""

    def __init__(
        self,
        name: str,
        vault: FakeVault,
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
        self.apps: dict[str, App] = {}
        for context in contexts:
            self.add_context(context)

    def clock(self) -> float:
        return now() + self.offset

    def add_context(self, context: str) -> App:
        app = App()
        self.apps[context] = app
        self.helper.add_sync_context(context, app.on_insert, app.on_modify, app.on_delete)
        return app

    @property
    def app(self) -> App:
        return next(iter(self.apps.values()))

    async def put(self, key: str, data: Any, context: str | None = None) -> None:
        """The app changes an item and tells the helper (as a real app would)."""
        context = context or next(iter(self.apps))
        self.apps[context].items[key] = data
        await self.helper.upsert_database_entry(context, key, data)

    async def remove(self, key: str, context: str | None = None) -> None:
        context = context or next(iter(self.apps))
        self.apps[context].items.pop(key, None)
        await self.helper.delete_database_entry(context, key)

    def local(self, context: str | None = None) -> dict[str, Any]:
        """The helper's live local copy of a context, key -> data."""
        context = context or next(iter(self.apps))
        return {r.key: r.data for r in self.helper.store.entries(context)}


def vault_live(vault: FakeVault, context: str = "notes") -> dict[str, Any]:
    """The vault's live entries of a context, resolving duplicates by the highest version."""
    best: dict[str, dict[str, Any]] = {}
    for doc in vault.documents("backup_" + context):
        key = doc["key"]
        if key not in best or doc.get("brhVersion", "") > best[key].get("brhVersion", ""):
            best[key] = doc
    return {k: d["data"] for k, d in sorted(best.items()) if d.get("deletionDate") is None}


async def settle(*devices: Device, rounds: int = 4) -> None:
    """Sync every device in turn until a whole round changes nothing."""
    for _ in range(rounds):
        results = [await d.helper.sync() for d in devices]
        assert all(results), [r for r in results if not r]
        if all(r.delivered == 0 and r.pushed == 0 for r in results):
            break
    await asyncio.sleep(1)  # let debounced passes run out


class FlakyVault:
    """Wraps a vault: ``down`` refuses every request (a definite network error); ``lose_answers``
    applies writes but loses the answer (an indefinite one). Counts requests by operation."""

    _WRITES = frozenset(
        {"insert_one", "insert_many", "update_one", "update_many", "delete_one", "delete_many"}
    )

    def __init__(self, inner: FakeVault) -> None:
        self.inner = inner
        self.down = False
        self.lose_answers = 0
        """How many upcoming write answers to lose."""
        self.latency = 0.0
        """Seconds each request takes (lets concurrent passes interleave)."""

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not name.endswith(("_one", "_many", "_collection", "query", "count_documents")):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            from brh.vault import NetworkError

            if self.down:
                raise NetworkError(f"{name}: vault unreachable", definite=True)
            if self.latency:
                await asyncio.sleep(self.latency)
            result = await target(*args, **kwargs)
            if name in self._WRITES and self.lose_answers > 0:
                self.lose_answers -= 1
                raise NetworkError(f"{name}: answer lost", definite=False)
            return result

        return call


def flaky(vault: FakeVault) -> Any:
    """A :class:`FlakyVault` typed as a vault for the helper (it duck-types the protocol)."""
    return FlakyVault(vault)
