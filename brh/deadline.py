"""An overall deadline on every vault request (SPEC RETRY-5).

An idle-read timeout does not bound a request: a server that sends one byte every half second
never trips it, and a pass waiting on that request would wait for ever. The helper therefore
gives its :class:`~brh.engine.SyncEngine` a :class:`DeadlineVault` around the user's vault: each
call runs under ``asyncio.timeout(deadline)``, and a call still unanswered when the deadline
passes is cancelled and raised as an *indefinite* :class:`~brh.vault.NetworkError` (the request
may have reached the vault and applied), which ends the context's work for the pass and
schedules a retry like any other vault error.

The deadline is measured on the running event loop's clock, so on a virtual-time loop (the
simulator's) it is virtual too: a request that never answers ends the pass after exactly
``deadline`` virtual seconds, without real waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from brh.vault import Document, InsertResult, NetworkError, SortSpec, UpdateResult, Vault

__all__ = ["DeadlineVault", "with_deadline"]

T = TypeVar("T")


def with_deadline(vault: Vault, deadline: float) -> DeadlineVault:
    """``vault`` with an overall deadline of ``deadline`` seconds on each call.

    The wrapper offers ``vault_time()`` exactly when ``vault`` does (forwarded unchanged), so
    code that asks whether a vault reports its clock gets the same answer through it.
    """
    if callable(getattr(vault, "vault_time", None)):
        return _DeadlineVaultWithTime(vault, deadline)
    return DeadlineVault(vault, deadline)


class DeadlineVault:
    """A :class:`~brh.vault.Vault` that runs each call of ``inner`` under an overall deadline.

    A call not finished ``deadline`` seconds (event-loop time) after it started is cancelled
    and raises ``NetworkError(definite=False)`` naming the operation and the deadline. Errors
    of ``inner`` pass through unchanged.
    """

    __slots__ = ("deadline", "inner")

    def __init__(self, inner: Vault, deadline: float) -> None:
        self.inner = inner
        self.deadline = deadline

    def __repr__(self) -> str:
        return f"DeadlineVault({self.inner!r}, deadline={self.deadline!r})"

    async def _call(self, op: str, request: Awaitable[T]) -> T:
        timeout = asyncio.timeout(self.deadline)
        try:
            async with timeout:
                return await request
        except TimeoutError as exc:
            if not timeout.expired():  # the vault's own TimeoutError, not our deadline
                raise
            raise NetworkError(
                f"{op}: no answer from the vault within the request deadline of "
                f"{self.deadline:g} s; the request may have applied",
                definite=False,
            ) from exc

    async def create_collection(self, name: str) -> None:
        await self._call("create_collection", self.inner.create_collection(name))

    async def delete_collection(self, name: str) -> None:
        await self._call("delete_collection", self.inner.delete_collection(name))

    async def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        return await self._call(
            "insert_one", self.inner.insert_one(collection, document, timestamp=timestamp)
        )

    async def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        return await self._call(
            "insert_many",
            self.inner.insert_many(collection, documents, ordered=ordered, timestamp=timestamp),
        )

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        return await self._call(
            "update_one",
            self.inner.update_one(collection, filter, update, upsert=upsert, timestamp=timestamp),
        )

    async def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        return await self._call(
            "update_many",
            self.inner.update_many(collection, filter, update, upsert=upsert, timestamp=timestamp),
        )

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._call("delete_one", self.inner.delete_one(collection, filter))

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._call("delete_many", self.inner.delete_many(collection, filter))

    async def find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        return await self._call("find_one", self.inner.find_one(collection, filter))

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        return await self._call(
            "find_many", self.inner.find_many(collection, filter, skip=skip, limit=limit)
        )

    async def query(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        return await self._call(
            "query",
            self.inner.query(
                collection, filter, sort=sort, skip=skip, limit=limit, projection=projection
            ),
        )

    async def count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        return await self._call(
            "count_documents",
            self.inner.count_documents(collection, filter, skip=skip, limit=limit),
        )


class _DeadlineVaultWithTime(DeadlineVault):
    """A :class:`DeadlineVault` around a vault that reports its clock (``vault_time()``)."""

    __slots__ = ()

    def vault_time(self) -> float | None:
        """The inner vault's ``vault_time()``, unchanged."""
        answer: float | None = getattr(self.inner, "vault_time")()  # noqa: B009
        return answer
