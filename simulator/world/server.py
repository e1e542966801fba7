"""The vault's host, with the faults a real Hive node shows.

:class:`VaultServer` sits in front of a :class:`~hivevault.vault.FakeVault` (whose clock is the
server's :class:`~simulator.world.clocks.SkewedClock`) and can be unavailable, frozen, slow, refuse
expired tokens, fail before or after applying a request, and reproduce MongoDB's upsert race
(without a unique index, two racing upserts of one key can both insert). In a world these are
the vault's faults of :mod:`simulator.faults` (``take_down``, ``freeze``, ``slow_vault``,
``expire_token``, ``server_errors``, ``upsert_race``), each with its off verb.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from brh.vault import ServerError, UnauthorizedError, UpdateResult, Vault, VaultFrozenError
from hivevault.mongo import apply_update, upsert_seed
from hivevault.vault import FakeVault
from simulator.world.clocks import SkewedClock

__all__ = ["LATER", "WRITES", "VaultServer"]

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

LATER: Any = object()
"""What :meth:`VaultServer.handle_now` returns for a request it cannot answer at once."""


class VaultServer:
    """A fake vault plus server-side faults; every knob is off by default."""

    def __init__(
        self, rng: random.Random, clock: SkewedClock | None = None, backend: Vault | None = None
    ) -> None:
        self.clock = clock or SkewedClock()
        self.vault = FakeVault(clock=self.clock, record=False)
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
        self.writes = 0
        """Write requests the vault applied. One it refused (creating a collection that exists,
        say) changed nothing, so it does not count: a quiet world must look quiet even to an
        implementation that creates its collections on every pass."""

    def handle_now(
        self, device: str, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """:meth:`handle` for a caller that cannot await (the link's timer callbacks): the
        answer at once, or :data:`LATER`, having done nothing, when the request has to wait
        (a real backend, a slow vault, an upsert race): then :meth:`handle` serves it."""
        if (
            self.live
            or self.slow
            or (self.upsert_race and op == "update_one" and kwargs.get("upsert"))
        ):
            return LATER
        self._admit(device, op)
        result = self.vault.perform(op, args, kwargs)
        self._after(op)
        return result

    async def handle(
        self, device: str, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._admit(device, op)
        if self.slow:
            await asyncio.sleep(self.slow)
        if self.upsert_race and op == "update_one" and kwargs.get("upsert"):
            result: Any = await self._racy_upsert(*args, **kwargs)
        else:
            result = await getattr(self.backend, op)(*args, **kwargs)
        self._after(op)
        return result

    def _admit(self, device: str, op: str) -> None:
        """The faults that refuse a request before it applies."""
        if self.unavailable:
            raise ServerError("vault unavailable (maintenance)", status=503)
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
