"""The fake vault: an in-memory, deterministic Hive vault's database service.

:class:`FakeVault` implements :class:`brh.vault.Vault` with the semantics of a Hive v2 node in
front of MongoDB, listed in the package's docstring (:mod:`hivevault`). It holds the vault's
collections (:mod:`hivevault.collection`), checks each request's arguments
(:mod:`hivevault.arguments`) and limits (:mod:`hivevault.limits`), plans its filter
(:mod:`hivevault.planner`), and has MongoDB's rules applied by :mod:`hivevault.mongo`; what it
does itself is Hive's: collections created before use, server stamps, ``_id`` values, partial
inserts, the request log.

The fake is deterministic: no randomness and no clock but the injected one. Its methods are
coroutines only to match the protocol; they never await. Latency and faults are the simulator's
job.

Durable copies: a :class:`VaultJournal` passed as ``journal`` is told of every change to the
data as it happens (collections created and deleted, documents stored and deleted), and
:meth:`FakeVault.restore` loads a saved state back. ``vaultd`` (the ``brh-vault serve``
development server) keeps its SQLite database in step this way, so the HTTP server and the
simulator share one implementation of Hive's semantics; when SQLite cannot store a request's
changes, :meth:`FakeVault.rollback` undoes them in memory (a transaction opened by
:meth:`FakeVault.begin`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    Document,
    InsertResult,
    InvalidParameterError,
    ObjectId,
    ServerError,
    SortSpec,
    UpdateResult,
    VaultError,
)
from hivevault import mongo
from hivevault.arguments import check_count, check_flag, check_mapping, check_name, window
from hivevault.collection import Collection, UndoStep, undo_changes
from hivevault.journal import VaultJournal
from hivevault.limits import MAX_DOCUMENT_BYTES, check_size
from hivevault.planner import PLAN_CACHE_SIZE, Plan, compile_plan, simple_key

__all__ = ["MAX_DOCUMENT_BYTES", "FakeVault", "VaultJournal", "VaultRequest"]


_T = TypeVar("_T")

_OPERATIONS = frozenset(
    {
        "create_collection",
        "delete_collection",
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "delete_one",
        "delete_many",
        "find_one",
        "find_many",
        "query",
        "count_documents",
    }
)


# The commonest update answers, made once (frozen dataclasses are slow to build).
_NOTHING_MATCHED = UpdateResult(acknowledged=True, matched_count=0, modified_count=0)
_ONE_MODIFIED = UpdateResult(acknowledged=True, matched_count=1, modified_count=1)
_ONE_UNCHANGED = UpdateResult(acknowledged=True, matched_count=1, modified_count=0)


@dataclass(frozen=True, slots=True)
class VaultRequest:
    """One call made to a :class:`FakeVault`: the operation, its collection and its outcome."""

    op: str
    collection: str | None
    ok: bool
    error: str | None


def _stamp(update: dict[str, Any], op: str, field: str, now: int) -> None:
    """Add ``field: now`` to the ``op`` fields of ``update`` (a copy of the client's)."""
    given = update.get(op, mongo.MISSING)
    if given is mongo.MISSING:
        update[op] = {field: now}
    elif mongo.is_document(given):
        update[op] = {**given, field: now}
    else:
        raise ServerError(f"{op} needs a document of fields, got {given!r}")


class FakeVault:
    """In-memory :class:`brh.vault.Vault` with Hive's semantics (see :mod:`hivevault`).

    ``clock`` returns UNIX seconds (``time.time`` by default; tests inject one). With
    ``record=True`` every call appends a :class:`VaultRequest` to :attr:`requests`;
    :attr:`request_count`, :attr:`examined` and :meth:`counts_by_op` are kept either way.
    ``journal`` is told of every change to the data (see :class:`VaultJournal`).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        record: bool = True,
        journal: VaultJournal | None = None,
    ) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._record = record
        self._journal = journal
        self._collections: dict[str, Collection] = {}
        self._next_counter = 0
        self.requests: list[VaultRequest] = []
        self.request_count = 0
        self.examined = 0
        """Documents a filter was evaluated on (MongoDB's "documents examined"), deterministic:
        what the indexes saved shows here."""
        self._op_counts: dict[str, int] = {}
        self._plans: dict[tuple[Any, ...], Plan] = {}
        """Plans of simple filters (see :func:`simple_key`)."""
        self._undo: list[UndoStep] | None = None
        self._undo_counter = 0

    # -- transactions (not part of the Vault protocol) ------------------------------------------

    def begin(self) -> None:
        """Start noting how to undo the changes that follow, until :meth:`commit` or
        :meth:`rollback` (``vaultd`` brackets each request so, to undo what SQLite could not
        store without reloading the vault)."""
        if self._undo is not None:
            raise RuntimeError("a transaction has already begun")
        self._undo = []
        self._undo_counter = self._next_counter
        for coll in self._collections.values():
            coll.undo = self._undo

    def commit(self) -> None:
        """Keep the changes made since :meth:`begin`."""
        self._end()

    def rollback(self) -> None:
        """Undo every change made since :meth:`begin` (the journal is not told): the data, the
        indexes, natural order and the ``_id`` counter are as they were."""
        undo = self._undo
        if undo is None:
            raise RuntimeError("no transaction has begun")
        self._end()
        undo_changes(undo, self._collections)
        self._end()  # collections put back still pointed at the undo list
        self._next_counter = self._undo_counter

    def _end(self) -> None:
        self._undo = None
        for coll in self._collections.values():
            coll.undo = None

    # -- request log ---------------------------------------------------------------------------

    def counts_by_op(self) -> dict[str, int]:
        """How many calls each operation received since the last :meth:`reset_log`."""
        return dict(self._op_counts)

    def reset_log(self) -> None:
        """Forget the request log and counts, :attr:`examined` too (the stored data stays)."""
        self.requests.clear()
        self.request_count = 0
        self.examined = 0
        self._op_counts.clear()

    # -- durable copies (not part of the Vault protocol) ----------------------------------------

    @property
    def id_counter(self) -> int:
        """The counter part of the next generated ``_id`` (saved with a durable copy)."""
        return self._next_counter

    def restore(self, collections: Mapping[str, Iterable[Document]], id_counter: int) -> None:
        """Replace the whole state with a saved one; the journal is not told.

        ``collections`` maps each collection name to its documents in natural order, each with
        an :class:`ObjectId` ``_id``; ``id_counter`` is a saved :attr:`id_counter`.
        """
        if type(id_counter) is not int or id_counter < 0:
            raise ValueError(f"id_counter must be a non-negative int, got {id_counter!r}")
        restored: dict[str, Collection] = {}
        for name, docs in collections.items():
            coll = Collection(check_name(name))
            for doc in docs:
                oid = doc.get("_id")
                if not isinstance(oid, ObjectId) or oid.hex in coll.docs:
                    raise ValueError(f"collection {name!r}: bad or repeated _id {oid!r}")
                coll.put(oid.hex, doc)
            coll.journal = self._journal
            restored[name] = coll
        self._collections = restored
        self._next_counter = id_counter

    def perform(self, op: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run the :class:`~brh.vault.Vault` operation ``op`` at once and return its result.

        What ``await getattr(vault, op)(*args, **kwargs)`` does, for a caller that is not a
        coroutine (the simulator's network answers from timer callbacks): the protocol methods
        never await, so the operation runs as a plain call.
        """
        body = _PERFORM.get(op)
        if body is None:
            raise AttributeError(f"FakeVault has no operation {op!r}")
        return body(self, *args, **kwargs)

    def vault_time(self) -> float:
        """The vault's clock in whole seconds, as an HTTP ``Date`` header would give it
        (:class:`brh.vault.VaultClock`): called in process, every answer is made right now."""
        return float(self._now())

    # -- inspection helpers for tests (not part of the Vault protocol) --------------------------

    def collection_names(self) -> list[str]:
        """The existing collections, sorted."""
        return sorted(self._collections)

    def documents(self, collection: str) -> list[Document]:
        """Deep copies of a collection's documents in natural order."""
        return [mongo.copy_value(doc) for doc in self._get(collection).docs.values()]

    # -- internals ------------------------------------------------------------------------------

    def _get(self, collection: Any) -> Collection:
        if type(collection) is str:  # only valid names were ever created (or restored)
            docs = self._collections.get(collection)
            if docs is not None:
                return docs
        check_name(collection)
        raise CollectionNotFoundError(f"Can not find collection {collection}")

    def _now(self) -> int:
        return int(self._clock())

    def _store_new(self, coll: Collection, doc: Document, now: int) -> ObjectId:
        """Give ``doc`` an ``_id`` (first), check it, and insert it; nothing changes on error."""
        generated = "_id" not in doc
        if generated:
            oid = ObjectId(f"{now % 2**32:08x}{self._next_counter % 2**64:016x}")
        else:
            oid = doc["_id"]
            if not isinstance(oid, ObjectId):
                raise InvalidParameterError(f"_id must be an ObjectId, got {oid!r}")
        doc = {"_id": oid, **{k: v for k, v in doc.items() if k != "_id"}}
        if oid.hex in coll.docs:
            raise ServerError(f"E11000 duplicate key error: dup key: {{ _id: {oid} }}")
        check_size(doc)
        coll.put(oid.hex, doc)
        if generated:
            self._next_counter += 1
        return oid

    def compile_plan(self, filter: Any) -> Plan:
        """The plan of ``filter``: kept if it is a simple one (see :func:`simple_key`)."""
        key = simple_key(filter)
        if key is None:
            return compile_plan(filter)
        plan = self._plans.get(key)
        if plan is None:
            plan = compile_plan(filter)  # raises for an invalid filter: nothing is kept
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _matching(self, coll: Collection, filter: Any, *, first: bool = False) -> list[str]:
        """The keys (``_id`` hex) of the matching documents, in natural order."""
        plan = self.compile_plan(filter)
        predicate = plan.predicate
        found: list[str] = []
        examined = 0
        for key, doc in coll.candidates(plan):
            examined += 1
            if predicate(doc):
                found.append(key)
                if first:
                    break
        self.examined += examined
        return found

    def _insert(
        self, collection: Any, documents: Any, ordered: bool, timestamp: bool
    ) -> InsertResult:
        coll = self._get(collection)
        check_flag(ordered, "ordered")
        check_flag(timestamp, "timestamp")
        if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Sequence):
            raise InvalidParameterError("documents must be a list of documents")
        if not documents:
            raise InvalidParameterError("documents must be a non-empty list")
        prepared = [
            mongo.clone(check_mapping(d, "each document"), where="document") for d in documents
        ]
        now = self._now()
        inserted: list[ObjectId] = []
        failure: VaultError | None = None
        for doc in prepared:
            if timestamp:
                doc["created"] = doc["modified"] = now
            try:
                inserted.append(self._store_new(coll, doc, now))
            except VaultError as exc:
                if ordered:
                    raise
                failure = failure or exc
        if failure is not None:
            raise failure
        return InsertResult(acknowledged=True, inserted_ids=inserted)

    def _update(
        self,
        collection: Any,
        filter: Any,
        update: Any,
        upsert: bool,
        timestamp: bool,
        first: bool,
    ) -> UpdateResult:
        coll = self._get(collection)
        check_flag(upsert, "upsert")
        check_flag(timestamp, "timestamp")
        check_mapping(update, "update")
        found = self._matching(coll, filter, first=first)
        now = self._now()
        update = dict(update)
        if timestamp:  # Hive adds its stamps to the client's update document
            _stamp(update, "$set", "modified", now)
            if upsert:
                _stamp(update, "$setOnInsert", "created", now)
        if not update:
            raise ServerError("update cannot be empty")
        if not str(next(iter(update))).startswith("$"):
            raise ServerError("update only works with $ operators")
        if not found:
            if not upsert:
                mongo.apply_update({}, update, is_insert=False)  # still reject a bad update
                return _NOTHING_MATCHED
            doc = mongo.apply_update(mongo.upsert_seed(filter), update, is_insert=True)
            upserted = self._store_new(coll, doc, now)
            return UpdateResult(True, matched_count=0, modified_count=0, upserted_id=upserted)
        docs = coll.docs
        changed: dict[str, Document] = {}
        for key in found:
            new = mongo.apply_update(docs[key], update, is_insert=False)
            # ``!=`` first: fast, and exact except that a NaN replaced by another NaN counts.
            if new != docs[key] or not mongo.identical(new, docs[key]):
                check_size(new)
                changed[key] = new
        for key, new in changed.items():
            coll.put(key, new)
        matched, modified = len(found), len(changed)
        if matched == 1:  # the commonest answers, shared (they are frozen)
            return _ONE_MODIFIED if modified else _ONE_UNCHANGED
        return UpdateResult(True, matched_count=matched, modified_count=modified)

    def _find(
        self,
        collection: Any,
        filter: Any,
        skip: Any,
        limit: Any,
        sort: Any = None,
        projection: Any = None,
    ) -> list[Document]:
        coll = self._get(collection)
        start, count = window(skip, limit)
        shape = None
        if projection is not None:
            check_mapping(projection, "projection")
            if projection:
                shape = mongo.compile_projection(projection)
        docs = coll.docs
        end = None if count is None else start + count
        plan = self.compile_plan(filter)
        candidates: Iterable[tuple[str, Document]] | None = None
        if not sort:
            candidates = coll.candidates(plan)
        elif plan.keys is None:  # the helper's pull, or a pass by _id: an index has the order
            candidates = coll.in_sort_order(plan, mongo.sort_paths(sort))
        if candidates is not None:
            predicate = plan.predicate
            selected = []
            wanted = -1 if end is None else end  # stop once the window is full
            examined = 0
            for key, doc in candidates:
                examined += 1
                if predicate(doc):
                    selected.append(key)
                    if len(selected) == wanted:
                        break
            self.examined += examined
        else:
            found = self._matching(coll, filter)
            position = {id(docs[key]): key for key in found}
            ranked = mongo.sort_documents([docs[key] for key in found], sort)
            selected = [position[id(doc)] for doc in ranked]
        if shape is None:  # the whole documents: copied with what the collection knows
            nested = coll.nested
            return [
                coll.copy(key) if nested[key] else docs[key].copy() for key in selected[start:end]
            ]
        return [shape(docs[key]) for key in selected[start:end]]

    def _count(self, collection: Any, filter: Any, skip: Any, limit: Any) -> int:
        coll = self._get(collection)
        start = check_count(skip, "skip")
        count = check_count(limit, "limit", optional=True)
        assert start is not None
        if count == 0:  # Hive counts with count_documents, whose $limit stage must be positive
            raise ServerError("the limit must be positive")
        total = max(0, len(self._matching(coll, filter)) - start)
        return total if count is None else min(total, count)

    # -- the operations, run at once -----------------------------------------------------------
    #
    # Each Vault operation is a plain method here (what :meth:`perform` runs); the coroutine
    # methods of the protocol below only wrap them, since nothing in the fake ever waits.

    def _counted(self, op: str, collection: Any, body: Callable[..., _T], *args: Any) -> _T:
        """``body(*args)``, counted (and recorded) as one call of ``op`` on ``collection``."""
        self.request_count += 1
        counts = self._op_counts
        counts[op] = counts.get(op, 0) + 1
        if not self._record:
            return body(*args)
        name = collection if isinstance(collection, str) else None
        try:
            result = body(*args)
        except VaultError as exc:
            self.requests.append(VaultRequest(op, name, False, f"{type(exc).__name__}: {exc}"))
            raise
        self.requests.append(VaultRequest(op, name, True, None))
        return result

    def _create_collection(self, name: Any) -> None:
        if check_name(name) in self._collections:
            raise AlreadyExistsError(f"The collection {name} already exists")
        coll = self._collections[name] = Collection(name, self._journal)
        if self._undo is not None:
            self._undo.append(("created", name))
            coll.undo = self._undo
        if self._journal is not None:
            self._journal.collection_created(name)

    def _delete_collection(self, name: Any) -> None:
        coll = self._get(name)
        del self._collections[name]
        if self._undo is not None:
            self._undo.append(("deleted", name, coll))
        if self._journal is not None:
            self._journal.collection_deleted(name)

    def _delete(self, collection: Any, filter: Any, first: bool) -> None:
        coll = self._get(collection)
        for key in self._matching(coll, filter, first=first):
            coll.remove(key)

    def _find_first(self, collection: Any, filter: Any) -> Document | None:
        found = self._find(collection, filter, 0, 1)
        return found[0] if found else None

    def _op_create_collection(self, name: str) -> None:
        self._counted("create_collection", name, self._create_collection, name)

    def _op_delete_collection(self, name: str) -> None:
        self._counted("delete_collection", name, self._delete_collection, name)

    def _op_insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        return self._counted(
            "insert_one", collection, self._insert, collection, [document], True, timestamp
        )

    def _op_insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        return self._counted(
            "insert_many", collection, self._insert, collection, documents, ordered, timestamp
        )

    def _op_update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        return self._counted(
            "update_one",
            collection,
            self._update,
            collection,
            filter,
            update,
            upsert,
            timestamp,
            True,
        )

    def _op_update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        return self._counted(
            "update_many",
            collection,
            self._update,
            collection,
            filter,
            update,
            upsert,
            timestamp,
            False,
        )

    def _op_delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        self._counted("delete_one", collection, self._delete, collection, filter, True)

    def _op_delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        self._counted("delete_many", collection, self._delete, collection, filter, False)

    def _op_find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        return self._counted("find_one", collection, self._find_first, collection, filter)

    def _op_find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        return self._counted("find_many", collection, self._find, collection, filter, skip, limit)

    def _op_query(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        return self._counted(
            "query", collection, self._find, collection, filter, skip, limit, sort, projection
        )

    def _op_count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        return self._counted(
            "count_documents", collection, self._count, collection, filter, skip, limit
        )

    # -- the Vault protocol ---------------------------------------------------------------------

    async def create_collection(self, name: str) -> None:
        """Create ``name``; :class:`AlreadyExistsError` if it exists."""
        self._op_create_collection(name)

    async def delete_collection(self, name: str) -> None:
        """Delete ``name`` and its documents; :class:`CollectionNotFoundError` if missing."""
        self._op_delete_collection(name)

    async def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        """Insert one document (a new ``_id`` unless it carries one)."""
        return self._op_insert_one(collection, document, timestamp=timestamp)

    async def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        """Insert several documents; see :mod:`hivevault` for partial failures."""
        return self._op_insert_many(collection, documents, ordered=ordered, timestamp=timestamp)

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        """Apply ``update`` to the first match in natural order (insert one if none and upsert)."""
        return self._op_update_one(collection, filter, update, upsert=upsert, timestamp=timestamp)

    async def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        """Apply ``update`` to every match (insert one if none and upsert); all or nothing."""
        return self._op_update_many(collection, filter, update, upsert=upsert, timestamp=timestamp)

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        """Delete the first match in natural order, if any."""
        self._op_delete_one(collection, filter)

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        """Delete every match."""
        self._op_delete_many(collection, filter)

    async def find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        """The first match in natural order (a deep copy), or None."""
        return self._op_find_one(collection, filter)

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        """Matches in natural order after ``skip``, at most ``limit`` (0 or None: all)."""
        return self._op_find_many(collection, filter, skip=skip, limit=limit)

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
        """Like :meth:`find_many`, sorted (stably) and projected."""
        return self._op_query(
            collection, filter, sort=sort, skip=skip, limit=limit, projection=projection
        )

    async def count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        """How many documents match, after ``skip``, at most ``limit`` (0 is refused)."""
        return self._op_count_documents(collection, filter, skip=skip, limit=limit)


# What :meth:`FakeVault.perform` runs for each operation.
_PERFORM: dict[str, Callable[..., Any]] = {
    op: getattr(FakeVault, f"_op_{op}") for op in sorted(_OPERATIONS)
}
