"""What a :class:`~hivevault.vault.FakeVault` tells of each change it makes to its data.

The development vault (``vaultd``) keeps a durable copy of each vault in SQLite by listening
this way; the simulator's vaults have no journal.
"""

from __future__ import annotations

from typing import Protocol

from brh.vault import Document

__all__ = ["VaultJournal"]


class VaultJournal(Protocol):
    """Told of each change a :class:`~hivevault.vault.FakeVault` makes to its data, right after
    making it.

    Calls come synchronously from inside the vault's methods, in the order of the changes; a
    request that fails changes nothing and so reports nothing, except the documents an
    ``insert_many`` kept before failing (see :mod:`hivevault.vault`). Documents are the vault's
    own objects: they are never mutated afterwards, but a journal must not mutate them either.
    """

    def collection_created(self, name: str) -> None:
        """A new, empty collection."""

    def collection_deleted(self, name: str) -> None:
        """A collection and every document in it are gone."""

    def document_stored(self, collection: str, oid: str, document: Document) -> None:
        """``document`` (whose ``_id`` has the hex ``oid``) was inserted at the end of natural
        order, or replaced the document with that ``_id``, keeping its place."""

    def document_deleted(self, collection: str, oid: str) -> None:
        """The document whose ``_id`` has the hex ``oid`` was deleted."""
