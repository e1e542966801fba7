"""A Hive vault's database, in memory: collections and indexes, MongoDB queries and updates,
limits, and the fake vault that puts them together.

:class:`FakeVault` implements :class:`brh.vault.Vault` with the semantics of a Hive v2 node in
front of MongoDB. It is the one home of those semantics: the simulator (``simulator``) runs its
devices against a :class:`FakeVault`, and the development vault (``vaultd``, ``brh-vault
serve``) serves one per user and application over HTTP, kept durable through its
:class:`VaultJournal`. Both import this package; it imports neither of them, only
:mod:`brh.vault` (the protocol and its errors).

* :mod:`hivevault.vault`: :class:`FakeVault`, the request log and the journal protocol;
* :mod:`hivevault.mongo`: MongoDB's query, update, sort and projection semantics on JSON-like
  documents.
"""

from hivevault.vault import MAX_DOCUMENT_BYTES, FakeVault, VaultJournal, VaultRequest

__all__ = ["MAX_DOCUMENT_BYTES", "FakeVault", "VaultJournal", "VaultRequest"]
