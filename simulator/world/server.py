"""The vault's host, with the faults a real Hive node shows.

:class:`VaultServer` sits in front of a :class:`~hivevault.vault.FakeVault` (whose clock is the
server's :class:`~simulator.world.clocks.SkewedClock`) and can be unavailable, frozen, slow, refuse
expired tokens, fail before or after applying a request, reproduce MongoDB's upsert race
(without a unique index, two racing upserts of one key can both insert) and commit writes late
(``commit_lag``: a write is stamped when the request arrives and becomes visible to queries
seconds later, SYNC-4's premise). In a world these are the vault's faults of
:mod:`simulator.faults` (``take_down``, ``freeze``, ``slow_vault``, ``expire_token``,
``server_errors``, ``upsert_race``, ``commit_lag``), each with its off verb.

Two narrower knobs are for tests, not faults (the settle phase clears them too):
``failing_collections`` (every request on those collections fails with 503, nothing applied: a
vault error confined to one context) and ``refused_keys`` (a write naming that key, in its filter
or its document, fails with the given status, nothing applied: the vault refusing one entry's
document, 413 for one too large, or failing on it, 500).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from brh.vault import ServerError, UnauthorizedError, UpdateResult, Vault, VaultFrozenError
from hivevault.mongo import apply_update, upsert_seed
from hivevault.vault import FakeVault
from simulator.world.clocks import SkewedClock

__all__ = ["COMMITTED_LATE", "LATER", "WRITES", "VaultServer"]

WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "delete_one",
        "delete_many",
        "create_collection",
        "delete_collection",
    }
)

COMMITTED_LATE = WRITES - {"create_collection", "delete_collection"}
"""The writes a commit lag delays: those that stamp, change or remove documents."""

LATER: Any = object()
"""What :meth:`VaultServer.handle_now` returns for a request it cannot answer at once."""


class VaultServer:
    """A fake vault plus server-side faults; every knob is off by default."""

    def __init__(
        self, rng: random.Random, clock: SkewedClock | None = None, backend: Vault | None = None
    ) -> None:
        self.clock = clock or SkewedClock()
        self._pinned: float | None = None
        """The reading the fake vault's clock gives while a write committed late applies (its
        arrival's), or None: the server's clock."""
        self.vault = FakeVault(clock=self._vault_clock, record=False)
        """The fake vault (unused when a real ``backend`` serves the requests)."""
        self.backend: Vault = backend if backend is not None else self.vault
        """What serves the requests: the fake vault, or a real one (:mod:`simulator.live`)."""
        self.live = backend is not None
        self.rng = rng
        self.unavailable = False
        """Every request fails with HTTP 503, nothing applied."""
        self.frozen = False
        """Writes fail with VaultFrozenError (403), nothing applied."""
        self.expired: set[str] = set()
        """Devices whose token expired: every request fails with 401 until renewed."""
        self.error_before = 0.0
        """Probability that a request fails with HTTP 500 before applying."""
        self.error_after = 0.0
        """Probability that a write fails with HTTP 500 after applying (the client cannot tell)."""
        self.slow = 0.0
        """Extra seconds of processing per request."""
        self.upsert_race = 0.0
        """Seconds between an upsert's match check and its insert (0: atomic, as in the fake)."""
        self.commit_lag = 0.0
        """Seconds at most between a write's stamp and its becoming visible (0: at once). A
        write (:data:`COMMITTED_LATE`) is stamped with the vault's clock when the server handles
        it, applies (becomes visible to every query) a lag later with that stamp, and is
        answered then; reads are not delayed. Each write draws its lag uniformly from 0 to
        ``commit_lag`` from the server's seeded generator, or takes exactly ``commit_lag`` with
        :attr:`commit_lag_exact`. SPEC SYNC-4 promises a write stamped at or below a cursor is
        visible by the time the vault's clock reads cursor + ``overlap`` + 1 s, so a lag must
        stay below the devices' overlap (default 5 s; :meth:`simulator.world.World.commit_lag`
        checks it). The fake vault only: a real backend (:attr:`live`) is never delayed, and an
        upsert in an :attr:`upsert_race` races instead."""
        self.commit_lag_exact = False
        """Every write takes exactly :attr:`commit_lag` (a test that needs to know when a write
        becomes visible); otherwise each draws its lag."""
        self.failing_collections: set[str] = set()
        """Collections whose every request fails with HTTP 503, nothing applied."""
        self.refused_keys: dict[str, int] = {}
        """Entry key -> the HTTP status (400, 413, 422: the document refused; 5xx: the vault
        failing on it) every write naming that key fails with, nothing applied."""
        self.writes = 0
        """Write requests the vault applied. One it refused (creating a collection that exists,
        say) changed nothing, so it does not count: a quiet world must look quiet even to an
        implementation that creates its collections on every pass."""

    def handle_now(
        self, device: str, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """:meth:`handle` for a caller that cannot await (the link's timer callbacks): the
        answer at once, or :data:`LATER`, having done nothing, when the request has to wait
        (a real backend, a slow vault, an upsert race, a write committed late): then
        :meth:`handle` serves it."""
        if (
            self.live
            or self.slow
            or (self.upsert_race and op == "update_one" and kwargs.get("upsert"))
            or (self.commit_lag and op in COMMITTED_LATE)
        ):
            return LATER
        self._admit(device, op, args)
        result = self.vault.perform(op, args, kwargs)
        self._after(op)
        return result

    async def handle(
        self, device: str, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._admit(device, op, args)
        if self.slow:
            await asyncio.sleep(self.slow)
        if self.upsert_race and op == "update_one" and kwargs.get("upsert"):
            result: Any = await self._racy_upsert(*args, **kwargs)
        elif self.commit_lag and op in COMMITTED_LATE and not self.live:
            result = await self._commit_late(op, args, kwargs)
        else:
            result = await getattr(self.backend, op)(*args, **kwargs)
        self._after(op)
        return result

    def _admit(self, device: str, op: str, args: tuple[Any, ...] = ()) -> None:
        """The faults that refuse a request before it applies."""
        if self.unavailable:
            raise ServerError("vault unavailable (maintenance)", status=503)
        if self.failing_collections and args and args[0] in self.failing_collections:
            raise ServerError(f"collection {args[0]} unavailable", status=503)
        if self.refused_keys and op in WRITES:
            key = _written_key(args)
            status = self.refused_keys.get(key) if key is not None else None
            if status is not None:
                what = "refused the document" if status < 500 else "failed to store it"
                raise ServerError(f"key {key!r}: the vault {what}", status=status)
        if device in self.expired:
            raise UnauthorizedError("the access token expired")
        if self.frozen and op in WRITES:
            raise VaultFrozenError("the vault is frozen")
        if self.error_before and self.rng.random() < self.error_before:
            raise ServerError("internal error (before applying)")

    def _after(self, op: str) -> None:
        """Count an applied write; the fault that fails a write after it applied."""
        if op in WRITES:
            self.writes += 1
        if op in WRITES and self.error_after and self.rng.random() < self.error_after:
            raise ServerError("internal error (after applying)")

    def _vault_clock(self) -> float:
        """The fake vault's clock: the server's, or the arrival time of a write applying late."""
        return self.clock() if self._pinned is None else self._pinned

    async def _commit_late(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Stamp now, apply (and answer) a lag later with that stamp: see :attr:`commit_lag`."""
        stamped = self.clock()
        lag = self.commit_lag if self.commit_lag_exact else self.rng.uniform(0, self.commit_lag)
        await asyncio.sleep(lag)
        # the loop runs one callback at a time and perform() never yields: nothing else reads
        # the vault's clock while it is pinned
        self._pinned = stamped
        try:
            return self.vault.perform(op, args, kwargs)
        finally:
            self._pinned = None

    async def _racy_upsert(
        self, collection: str, filter: Any, update: Any, *, upsert: bool, timestamp: bool = True
    ) -> UpdateResult:
        """MongoDB without a unique index: check, then (later) insert."""
        if await self.vault.find_one(collection, filter) is not None:
            return await self.vault.update_one(collection, filter, update, timestamp=timestamp)
        await asyncio.sleep(self.upsert_race)
        document = apply_update(upsert_seed(filter), update, is_insert=True)
        inserted = await self.vault.insert_one(collection, document, timestamp=timestamp)
        return UpdateResult(True, 0, 0, inserted.inserted_ids[0])


def _written_key(args: tuple[Any, ...]) -> str | None:
    """The entry key a write names: in its filter (updates, deletes) or its document (inserts)."""
    for part in args[1:3]:
        if isinstance(part, Mapping):
            key = part.get("key")
            if isinstance(key, str):
                return key
            document = part.get("$set")
            if isinstance(document, Mapping) and isinstance(document.get("key"), str):
                return str(document["key"])
    return None
