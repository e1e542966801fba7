"""A Hive vault's database, in memory: collections and indexes, MongoDB queries and updates,
limits, and the fake vault that puts them together.

:class:`FakeVault` implements :class:`brh.vault.Vault` with the semantics of a Hive v2 node in
front of MongoDB (see ``shared/reference/hive-vault-api.md``). This package is the one home of
those semantics: the simulator (``simulator``) runs its devices against a :class:`FakeVault`,
and the development vault (``vaultd``, ``brh-vault serve``) serves one per user and application
over HTTP, kept durable through its :class:`VaultJournal`. Both import this package; it imports
neither of them, only :mod:`brh.vault` (the protocol, its types and errors).

The semantics (errors are :mod:`brh.vault`'s):

* Collections must be created first; creating one twice raises ``AlreadyExistsError`` (455);
  any other operation on a missing one raises ``CollectionNotFoundError`` (404/4).
* Server stamps: with ``timestamp=True`` an insert sets ``created`` and ``modified`` to
  ``int(clock())``, overwriting client fields of those names. Updates do what Hive does: they add
  ``{"$set": {"modified": now}}`` (and, for upserts, ``{"$setOnInsert": {"created": now}}``) to
  the client's update before MongoDB sees it, so a client ``$inc`` of ``modified`` conflicts, and
  an update without ``$`` operators is refused as pymongo's ``update_one`` refuses it. The clock
  is read once per write request and never for reads; stamps follow it even when it steps back.
* ``_id`` values are ``ObjectId`` values: 4 bytes of the clock's seconds, then an 8-byte
  counter per vault, so with a non-decreasing clock they increase in insertion order. A document
  may carry its own ``_id``; a duplicate is a duplicate-key ``ServerError``. Unlike MongoDB,
  the fake refuses non-ObjectId ``_id`` values (``InvalidParameterError``), because
  ``InsertResult`` and ``UpdateResult`` can only carry ObjectIds.
* There is no other unique index: two upserts of one key with different filters both insert.
  (The indexes on ``key``, ``modified`` and ``_id``, :mod:`hivevault.collection`, only speed
  up finding candidates.)
* Natural order is insertion order; updates keep a document's place.
* What a vault cannot store is an ``InvalidParameterError`` (400) that names the argument and
  the path, and changes nothing (:mod:`hivevault.limits` lists the limits,
  :mod:`hivevault.mongo.values` gives the rules and their sources): integers beyond signed 64
  bits, NaN and infinities, lone surrogates, NUL in field names, documents nested deeper than
  100 levels or larger than 16 MiB (measured as their compact JSON encoding), field names
  starting with ``$`` in what an update writes, paths of more than 100 parts, filters whose
  logical tree is deeper than 100 levels, and arguments nested deeper than 200 levels.
  ``$regex`` runs on RE2, in time linear in the text (:mod:`hivevault.mongo.filters` says what
  of PCRE that leaves out).
* Every failing request changes nothing, except ``insert_many(ordered=True)``, which keeps the
  documents before the failing one (``ordered=False`` keeps every document that succeeded).
* Arguments are checked as Hive checks them (:mod:`hivevault.arguments`): bad collection names
  (empty, ``$``, NUL, ``system.*``, Hive's internal collections), non-document
  filters/updates/projections, non-boolean options and negative skip/limit are
  ``InvalidParameterError``; invalid MongoDB input is ``ServerError``. A find/query limit of 0
  means no limit (as in pymongo's find); ``count_documents`` refuses ``limit=0`` (its ``$limit``
  stage must be positive).

The modules:

* :mod:`hivevault.vault`: :class:`FakeVault` (the operations, transactions, durable copies) and
  :class:`VaultRequest` (its request log);
* :mod:`hivevault.collection`: a collection's documents in natural order and its indexes;
* :mod:`hivevault.planner`: a request's filter compiled once, with what the indexes can use;
* :mod:`hivevault.limits`: what a vault stores at most, and the document size check;
* :mod:`hivevault.arguments`: Hive's checks of collection names, documents, counts and flags;
* :mod:`hivevault.journal`: :class:`VaultJournal`, told of every change (``vaultd``'s SQLite);
* :mod:`hivevault.mongo`: MongoDB's query, update, sort and projection semantics on JSON-like
  documents (values, paths, filters, updates, sort, projection).
"""

from hivevault.vault import MAX_DOCUMENT_BYTES, FakeVault, VaultJournal, VaultRequest

__all__ = ["MAX_DOCUMENT_BYTES", "FakeVault", "VaultJournal", "VaultRequest"]
