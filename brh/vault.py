"""The vault the helper talks to: an async interface shaped like Hive's DatabaseService.

Every implementation (the in-memory ``simulator.vault.FakeVault``, an HTTP adapter for a real
Hive node, a conformance harness relaying requests to another process) offers these methods with
Hive's semantics, which are MongoDB's semantics behind a REST API:

* collections must be created before use; creating one that exists raises
  :class:`AlreadyExistsError`; any operation on a missing one raises
  :class:`CollectionNotFoundError`;
* filters and update documents use MongoDB operators (``$gt``, ``$in``, ``$set``, ...);
* with ``timestamp=True`` (the default, as in Hive's JS client) the vault stamps ``created`` and
  ``modified`` as integer UNIX seconds from *its own* clock, overwriting client fields of those
  names: these stamps are the only vault-assigned ordering values;
* there is no unique index: two racing upserts of one key can both insert;
* ``_id`` is an :class:`ObjectId`.

Errors are typed. A :class:`NetworkError` says whether the failure is *definite* (the request
certainly did not apply) or *indefinite* (it may have applied; only its answer was lost).

A vault MAY also tell the time on its own clock (:class:`VaultClock`): an HTTP adapter reads it
from the ``Date`` header of each answer. The helper uses it to know when no write stamped at or
below its pull cursor can still appear (SYNC-4); a vault that does not tell it costs re-reads,
never correctness.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AlreadyExistsError",
    "CollectionNotFoundError",
    "Document",
    "InsertResult",
    "InvalidParameterError",
    "NetworkError",
    "ObjectId",
    "ServerError",
    "SortSpec",
    "UnauthorizedError",
    "UpdateResult",
    "Vault",
    "VaultClock",
    "VaultError",
    "VaultFrozenError",
    "VaultNotFoundError",
]

Document = dict[str, Any]
"""A vault document: a JSON-like mapping (plus :class:`ObjectId` values under ``_id``)."""

SortSpec = Sequence[tuple[str, int]]
"""Sort order for :meth:`Vault.query`: ``[(field, 1 | -1), ...]`` as in Hive's ``options.sort``."""

_HEX24 = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True, order=True)
class ObjectId:
    """A MongoDB ObjectId: 12 bytes as 24 lowercase hex digits (``{"$oid": hex}`` on the wire).

    Ordering is byte order, which is MongoDB's order for ObjectIds.
    """

    hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.hex, str) or not _HEX24.fullmatch(self.hex):
            raise ValueError(f"ObjectId: hex must be 24 lowercase hex digits, got {self.hex!r}")

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"ObjectId({self.hex!r})"


@dataclass(frozen=True)
class InsertResult:
    """Answer to an insert: Hive's ``{"acknowledged", "inserted_ids"}``."""

    acknowledged: bool
    inserted_ids: list[ObjectId] = field(default_factory=list)


@dataclass(frozen=True)
class UpdateResult:
    """Answer to an update: Hive's ``acknowledged``, ``matched_count``, ``modified_count`` and
    ``upserted_id``."""

    acknowledged: bool
    matched_count: int
    modified_count: int
    upserted_id: ObjectId | None = None


class VaultError(Exception):
    """Base class of every error a vault raises. ``internal_code`` is Hive's, when known."""

    status: int | None = None
    internal_code: int | None = None

    def __init__(self, message: str, *, internal_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if internal_code is not None:
            self.internal_code = internal_code


class CollectionNotFoundError(VaultError):
    """The collection does not exist (HTTP 404, internal code 4)."""

    status = 404
    internal_code = 4


class AlreadyExistsError(VaultError):
    """The collection already exists (HTTP 455); Hive's create is not idempotent."""

    status = 455


class VaultNotFoundError(VaultError):
    """The user has no vault subscription (HTTP 404, internal code 1)."""

    status = 404
    internal_code = 1


class VaultFrozenError(VaultError):
    """The vault is frozen: writes are refused (HTTP 403, internal code 1)."""

    status = 403
    internal_code = 1


class UnauthorizedError(VaultError):
    """The access token is missing, invalid or expired (HTTP 401)."""

    status = 401


class InvalidParameterError(VaultError):
    """The request is malformed (HTTP 400)."""

    status = 400
    internal_code = 1


class ServerError(VaultError):
    """Any other server-side failure (HTTP 500 "internal error", 507 insufficient storage, ...)."""

    status = 500

    def __init__(
        self, message: str, *, status: int = 500, internal_code: int | None = None
    ) -> None:
        super().__init__(message, internal_code=internal_code)
        self.status = status


class NetworkError(VaultError):
    """No HTTP answer arrived.

    ``definite=True``: the request certainly did not apply (it never left, or was refused before
    reaching the vault). ``definite=False``: it may have applied and only the answer was lost;
    a caller must not assume either outcome.
    """

    def __init__(self, message: str, *, definite: bool) -> None:
        super().__init__(message)
        self.definite = definite


@runtime_checkable
class Vault(Protocol):
    """Hive's DatabaseService, in snake_case. All methods are coroutines."""

    async def create_collection(self, name: str) -> None:
        """Create ``name``; :class:`AlreadyExistsError` if it exists."""
        ...

    async def delete_collection(self, name: str) -> None:
        """Delete ``name`` and its documents; :class:`CollectionNotFoundError` if missing."""
        ...

    async def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        """Insert one document (a new ``_id`` unless it carries one)."""
        ...

    async def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        """Insert several documents."""
        ...

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        """Apply ``update`` to the first matching document (insert one if none and ``upsert``)."""
        ...

    async def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        """Apply ``update`` to every matching document (insert one if none and ``upsert``)."""
        ...

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        """Delete the first matching document, if any (Hive answers 204 with no count)."""
        ...

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        """Delete every matching document (Hive answers 204 with no count)."""
        ...

    async def find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        """The first matching document in natural order, or None."""
        ...

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        """Matching documents in natural (insertion) order; no limit unless given."""
        ...

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
        """Like :meth:`find_many`, with MongoDB sort and projection."""
        ...

    async def count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        """How many documents match (after ``skip``, at most ``limit``)."""
        ...


@runtime_checkable
class VaultClock(Protocol):
    """A vault that tells the time on its own clock (optional, beside :class:`Vault`)."""

    def vault_time(self) -> float | None:
        """The vault's clock, in seconds since the epoch, as its latest answer gave it (an
        HTTP ``Date`` header: whole seconds, rounded down), or None before any answer.

        It is a reading taken *when that answer was made*: the vault's clock has been at least
        that since. Stamps the vault gives documents come from the same clock.
        """
        ...
