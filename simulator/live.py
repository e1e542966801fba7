"""A real vault in a simulated world: every request holds virtual time while it is in flight.

:class:`LiveVault` wraps any :class:`brh.vault.Vault` that talks to a real server (for example
``brh.hive.HiveVault``) so that a :class:`simulator.world.World` can use it in place of the fake
vault. Two things make that work:

* **time**: a request to the real server runs inside :meth:`VirtualTimeLoop.real_io`, so the
  virtual clock stands still until the real answer arrives (the loop waits on the real socket
  instead of jumping to the next timer);
* **isolation**: every collection name gets a suffix unique to the run, so runs sharing one
  vault never see each other's documents; :meth:`LiveVault.drop` deletes what the run created.

The simulated faults in front of the vault (partitions, lost answers, 503s, a frozen vault...)
still apply. Faults that need to reach inside the vault (its clock, the upsert race) cannot, and
the world refuses them with :class:`UnsupportedFault`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from brh.vault import (
    CollectionNotFoundError,
    Document,
    InsertResult,
    SortSpec,
    UpdateResult,
    Vault,
    VaultClock,
)
from simulator.timeloop import VirtualTimeLoop

__all__ = ["LiveVault", "UnsupportedFault"]

T = TypeVar("T")


class UnsupportedFault(RuntimeError):
    """A fault that a real vault cannot be made to have (its clock, the upsert race)."""


class LiveVault:
    """A real vault behind a namespace, holding virtual time during each request."""

    def __init__(self, inner: Vault, namespace: str) -> None:
        if not namespace or not namespace.replace("_", "").isalnum():
            raise ValueError(f"namespace: letters, digits and '_' only, got {namespace!r}")
        self.inner = inner
        self.namespace = namespace
        self.created: set[str] = set()

    def collection_name(self, collection: str) -> str:
        """The real vault's name for ``collection`` in this run's namespace."""
        return f"{collection}_{self.namespace}"

    async def _held(self, call: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        if not isinstance(loop, VirtualTimeLoop):
            return await call()
        with loop.real_io():
            return await call()

    async def drop(self) -> None:
        """Delete every collection this run created (missing ones are fine)."""
        for name in sorted(self.created):
            with contextlib.suppress(CollectionNotFoundError):
                await self._held(partial(self.inner.delete_collection, name))
        self.created.clear()

    def vault_time(self) -> float | None:
        """The real vault's clock, as its latest answer's ``Date`` gave it (None if it does not
        tell it): :class:`brh.vault.VaultClock`."""
        inner = self.inner
        return inner.vault_time() if isinstance(inner, VaultClock) else None

    # -- the Vault protocol -----------------------------------------------------------------

    async def create_collection(self, name: str) -> None:
        self.created.add(self.collection_name(name))
        await self._held(lambda: self.inner.create_collection(self.collection_name(name)))

    async def delete_collection(self, name: str) -> None:
        await self._held(lambda: self.inner.delete_collection(self.collection_name(name)))

    async def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        return await self._held(
            lambda: self.inner.insert_one(
                self.collection_name(collection), document, timestamp=timestamp
            )
        )

    async def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        return await self._held(
            lambda: self.inner.insert_many(
                self.collection_name(collection), documents, ordered=ordered, timestamp=timestamp
            )
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
        return await self._held(
            lambda: self.inner.update_one(
                self.collection_name(collection), filter, update, upsert=upsert, timestamp=timestamp
            )
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
        return await self._held(
            lambda: self.inner.update_many(
                self.collection_name(collection), filter, update, upsert=upsert, timestamp=timestamp
            )
        )

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._held(lambda: self.inner.delete_one(self.collection_name(collection), filter))

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._held(lambda: self.inner.delete_many(self.collection_name(collection), filter))

    async def find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        return await self._held(
            lambda: self.inner.find_one(self.collection_name(collection), filter)
        )

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        return await self._held(
            lambda: self.inner.find_many(
                self.collection_name(collection), filter, skip=skip, limit=limit
            )
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
        return await self._held(
            lambda: self.inner.query(
                self.collection_name(collection),
                filter,
                sort=sort,
                skip=skip,
                limit=limit,
                projection=projection,
            )
        )

    async def count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        return await self._held(
            lambda: self.inner.count_documents(
                self.collection_name(collection), filter, skip=skip, limit=limit
            )
        )
