"""An in-memory, deterministic fake of a Hive vault's database service.

:class:`FakeVault` implements :class:`brh.vault.Vault` with the semantics of a Hive v2 node in
front of MongoDB (see ``shared/reference/hive-vault-api.md``), evaluated by
:mod:`hivevault.mongo`:

* Collections must be created first; creating one twice raises :class:`AlreadyExistsError`
  (455); any other operation on a missing one raises :class:`CollectionNotFoundError` (404/4).
* Server stamps: with ``timestamp=True`` an insert sets ``created`` and ``modified`` to
  ``int(clock())``, overwriting client fields of those names. Updates do what Hive does: they add
  ``{"$set": {"modified": now}}`` (and, for upserts, ``{"$setOnInsert": {"created": now}}``) to
  the client's update before MongoDB sees it, so a client ``$inc`` of ``modified`` conflicts, and
  an update without ``$`` operators is refused as pymongo's ``update_one`` refuses it. The clock
  is read once per write request and never for reads; stamps follow it even when it steps back.
* ``_id`` values are :class:`ObjectId` values: 4 bytes of the clock's seconds, then an 8-byte
  counter per vault, so with a non-decreasing clock they increase in insertion order. A document
  may carry its own ``_id``; a duplicate is a duplicate-key :class:`ServerError`. Unlike MongoDB,
  the fake refuses non-ObjectId ``_id`` values (:class:`InvalidParameterError`), because
  :class:`InsertResult` and :class:`UpdateResult` can only carry ObjectIds.
* There is no other unique index: two upserts of one key with different filters both insert.
* Natural order is insertion order; updates keep a document's place.
* What a vault cannot store is an :class:`InvalidParameterError` (400) that names the argument
  and the path, and changes nothing (:mod:`hivevault.mongo.values` gives the rules and their
  sources): integers beyond signed 64 bits, NaN and infinities, lone surrogates, NUL in field
  names, documents nested deeper than 100 levels or larger than 16 MiB (measured as their
  compact JSON encoding), field names starting with ``$`` in what an update writes, paths of
  more than 100 parts, filters whose logical tree is deeper than 100 levels, and arguments
  nested deeper than 200 levels. ``$regex`` runs on RE2, in time linear in the text
  (:mod:`hivevault.mongo.filters` says what of PCRE that leaves out).
* Every failing request changes nothing, except ``insert_many(ordered=True)``, which keeps the
  documents before the failing one (``ordered=False`` keeps every document that succeeded).
* Arguments are checked as Hive checks them: bad collection names (empty, ``$``, NUL,
  ``system.*``, Hive's internal collections), non-document filters/updates/projections,
  non-boolean options and negative skip/limit are :class:`InvalidParameterError`; invalid
  MongoDB input is :class:`ServerError`. A find/query limit of 0 means no limit (as in
  pymongo's find); ``count_documents`` refuses ``limit=0`` (its ``$limit`` stage must be
  positive).

The fake is deterministic: no randomness and no clock but the injected one. Its methods are
coroutines only to match the protocol; they never await. Latency and faults are the simulator's
job.

Durable copies: a :class:`VaultJournal` passed as ``journal`` is told of every change to the
data as it happens (collections created and deleted, documents stored and deleted), and
:meth:`FakeVault.restore` loads a saved state back. ``vaultd`` (the ``brh-vault serve``
development server) keeps its SQLite database in step this way, so the HTTP server and the
simulator share one implementation of Hive's semantics.
"""

from __future__ import annotations

import time
from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol, TypeVar

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
from hivevault.limits import MAX_DOCUMENT_BYTES, check_size

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


class VaultJournal(Protocol):
    """Told of each change a :class:`FakeVault` makes to its data, right after making it.

    Calls come synchronously from inside the vault's methods, in the order of the changes; a
    request that fails changes nothing and so reports nothing, except the documents an
    ``insert_many`` kept before failing (see the module docstring). Documents are the vault's
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


def _stamp(update: dict[str, Any], op: str, field: str, now: int) -> None:
    """Add ``field: now`` to the ``op`` fields of ``update`` (a copy of the client's)."""
    given = update.get(op, mongo.MISSING)
    if given is mongo.MISSING:
        update[op] = {field: now}
    elif mongo.is_document(given):
        update[op] = {**given, field: now}
    else:
        raise ServerError(f"{op} needs a document of fields, got {given!r}")


# -- indexes ------------------------------------------------------------------------------------
#
# Every request used to evaluate its filter on every document of the collection. The Hive helper's
# commonest requests select by the top-level ``key`` (one key, or ``$in`` a few) or pull by the
# top-level ``modified`` stamp from a lower bound, so a collection keeps two indexes on those
# fields. They only *pre-select candidates*: the whole compiled filter is still evaluated on each
# candidate, so an index needs only to be a superset of the matches (never miss one), and
# candidates are visited in natural order, so results, their order and "first match" semantics
# are those of a full scan.

_Number = int | float

# Types whose values never compare equal to a ``str`` (dataclass ObjectId compares to ObjectIds
# only). A ``key`` value of any other type (in practice none: stored documents are cloned into
# plain types) puts its document among the candidates of every key lookup.
_NEVER_A_STRING: frozenset[type] = frozenset({int, float, bool, type(None), dict, list, ObjectId})


def _is_number(value: Any) -> bool:
    """True for the values a numeric comparison can match: exact int/float, not NaN."""
    return (type(value) is int or type(value) is float) and value == value


def _key_entries(doc: Document) -> tuple[tuple[str, ...], bool]:
    """The strings a document's top-level ``key`` equals, and whether it has odd values.

    A filter ``{"key": "k"}`` (or ``$eq``/``$in`` of strings) matches when ``key`` is ``"k"`` or
    an array with the element ``"k"`` (one level, as in :mod:`hivevault.mongo.filters`), so both
    are indexed. ``odd`` is True when some value might equal a string without being one.
    """
    value = doc.get("key", mongo.MISSING)
    if type(value) is str:
        return (value,), False
    if type(value) is list:
        strings = tuple(dict.fromkeys(e for e in value if type(e) is str))  # once each
        odd = any(type(e) is not str and type(e) not in _NEVER_A_STRING for e in value)
        return strings, odd
    return (), value is not mongo.MISSING and type(value) not in _NEVER_A_STRING


def _modified_entry(doc: Document) -> _Number | None:
    """The largest number a numeric lower bound on ``modified`` could match in ``doc``, or None.

    ``$gt``/``$gte``/equality with a number only match a top-level ``modified`` that is (or is an
    array with an element that is) an exact ``int``/``float`` (not bool, not NaN): see
    ``_compare_test`` and ``_eq_test``. A document without such a value matches no bound.
    """
    value = doc.get("modified")
    if type(value) is int or type(value) is float:
        return value if value == value else None
    if type(value) is list:
        numbers: list[_Number] = [e for e in value if _is_number(e)]
        if numbers:
            return max(numbers)
    return None


def _is_operators(value: Any) -> bool:
    """True for a non-empty document of ``$`` operators (as the filter compiler decides)."""
    return mongo.is_document(value) and bool(value) and str(next(iter(value))).startswith("$")


def _key_set(filter: Mapping[str, Any]) -> set[str] | None:
    """Strings, one of which the top-level ``key`` of every match must equal, or None.

    From ``{"key": "k"}``, ``{"key": {"$eq": "k", ...}}`` and ``{"key": {"$in": [strings]}}``,
    intersected over ``$and`` clauses, and the union over ``$or`` branches if each has one.
    ``filter`` has already been compiled, hence validated (``$and`` and ``$or`` hold non-empty
    lists of documents).
    """
    found: set[str] | None = None
    if "key" in filter:
        condition = filter["key"]
        if type(condition) is str:
            found = {condition}
        elif _is_operators(condition):
            eq = condition.get("$eq", mongo.MISSING)
            values = condition.get("$in", mongo.MISSING)
            if type(eq) is str:
                found = {eq}
            elif isinstance(values, (list, tuple)) and all(type(v) is str for v in values):
                found = set(values)
    if "$and" in filter:
        for clause in filter["$and"]:
            keys = _key_set(clause)
            if keys is not None:
                found = keys if found is None else found & keys
    if "$or" in filter:
        union: set[str] = set()
        for branch in filter["$or"]:
            keys = _key_set(branch)
            if keys is None:
                break
            union |= keys
        else:
            found = union if found is None else found & union
    return found


def _modified_bound(filter: Mapping[str, Any]) -> _Number | None:
    """A number that the top-level ``modified`` of every match reaches, or None.

    From ``{"modified": {"$gte"|"$gt"|"$eq": n}}`` and ``{"modified": n}`` (n an exact int or
    float, not NaN), the largest over ``$and`` clauses, the smallest over ``$or`` branches if
    each has one. ``filter`` has already been compiled, hence validated.
    """
    bound: _Number | None = None
    if "modified" in filter:
        condition = filter["modified"]
        kind = type(condition)
        if kind is int or kind is float:  # _is_number, inlined (this runs for every request)
            if condition == condition:
                bound = condition
        elif _is_operators(condition):
            for op in ("$gt", "$gte", "$eq"):
                value = condition.get(op, condition)  # the condition itself: absent
                if (type(value) is int or type(value) is float) and value == value:
                    bound = value if bound is None else max(bound, value)
    if "$and" in filter:
        for clause in filter["$and"]:
            found = _modified_bound(clause)
            if found is not None:
                bound = found if bound is None else max(bound, found)
    if "$or" in filter:
        lowest: _Number | None = None
        for branch in filter["$or"]:
            found = _modified_bound(branch)
            if found is None:
                break
            lowest = found if lowest is None else min(lowest, found)
        else:
            if lowest is not None:
                bound = lowest if bound is None else max(bound, lowest)
    return bound


# -- compiled filters -----------------------------------------------------------------------------
#
# A request's filter is compiled once into a predicate, and what the indexes need to know about it
# is worked out with it. Most filters are not worth caching (a helper's pull names its cursor
# and the versions of its overlap window, a push the version it replaces): keying and keeping
# them cost more than compiling. The single-condition ones are, and repeat: a quiet helper polls
# with the same ``{"modified": {"$gt": cursor}}`` until something changes, and reads or writes
# ``{"key": k}`` over a bounded key space. Those plans are kept, per vault, under a cheap key.

_PLAN_CACHE_SIZE = 256
"""Simple plans a vault keeps (it forgets them all when full: no bookkeeping on a hit)."""


class _Plan:
    """A compiled filter and what the indexes need to know about it."""

    __slots__ = ("bound", "keys", "predicate")

    def __init__(self, filter: Mapping[str, Any]) -> None:
        self.predicate = mongo.compile_filter(filter)  # validates first
        self.keys = _key_set(filter)
        self.bound = _modified_bound(filter)


def _plan(filter: Any) -> _Plan:
    """The plan of a request's filter; :class:`InvalidParameterError` if not a document, or if
    it holds what no client can send (:func:`hivevault.mongo.check_wire`)."""
    mongo.check_wire(check_mapping(filter, "filter"), "filter")
    return _Plan(filter)


def _simple_key(filter: Any) -> tuple[Any, ...] | None:
    """A cache key for a one-condition filter, ``{field: string}`` or ``{field: {op: value}}``
    with a string or a number (not NaN) as value, or None for any other filter.

    The value's type is part of the key (``1``, ``1.0`` and ``True`` are equal in Python but not
    for MongoDB)."""
    if type(filter) is not dict or len(filter) != 1:
        return None
    ((field, condition),) = filter.items()
    kind = type(condition)
    if kind is str:
        return (field, condition)
    if kind is dict and len(condition) == 1:
        ((op, value),) = condition.items()
        kind = type(value)
        if kind is str or ((kind is int or kind is float) and value == value):
            return (field, op, value, kind)
    return None


_UndoStep = tuple[Any, ...]
"""How to undo one change: ``("put", coll, oid, previous document or None)``, ``("removed",
coll, oid, document, seq)``, ``("created", name)`` or ``("deleted", name, coll)``."""


class _Collection:
    """A collection's documents in natural order, with the indexes on ``key`` and ``modified``.

    ``docs`` maps ``_id`` hex to the stored document; it must only be changed through
    :meth:`put` and :meth:`remove`, which keep the indexes in step:

    * ``_seq``: each document's insertion number (natural order; a replaced document keeps its
      place and number, a deleted and re-inserted one goes to the end);
    * ``_by_key``: string -> ids of the documents whose top-level ``key`` is that string or an
      array holding it; ``_odd_keys``: ids whose ``key`` might equal a string without being one;
    * ``_by_modified``: sorted ``(modified, seq, id)`` of the documents whose ``modified`` is a
      number or an array holding numbers (the largest), see :func:`_modified_entry`.

    Stored documents are never changed in place (an update stores a new one), so :meth:`copy`
    can copy the top level at once and only descend into the fields noted as holding documents
    or arrays.
    """

    __slots__ = (
        "_by_key",
        "_by_modified",
        "_entries",
        "_next_seq",
        "_odd_keys",
        "_seq",
        "docs",
        "journal",
        "name",
        "nested",
        "undo",
    )

    modified_share: float = 0.5
    """Use the ``modified`` index only if it leaves at most this share of the documents (a class
    setting; tests raise it to 1.0 to exercise the index on small collections)."""

    def __init__(self, name: str = "", journal: VaultJournal | None = None) -> None:
        self.name = name
        self.journal = journal
        """Told of every :meth:`put` and :meth:`remove` (None: nobody is)."""
        self.docs: dict[str, Document] = {}
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self._by_key: dict[str, set[str]] = {}
        self._odd_keys: set[str] = set()
        self._by_modified: list[tuple[_Number, int, str]] = []
        # What each document contributed to the indexes, to take it out again.
        self._entries: dict[str, tuple[tuple[str, ...], _Number | None]] = {}
        self.nested: dict[str, list[str]] = {}
        """Per document, its fields holding documents or arrays (what a copy descends into)."""
        self.undo: list[_UndoStep] | None = None
        """Where each change notes how to undo it, while the vault has begun a transaction."""

    def put(self, oid: str, doc: Document, seq: int | None = None) -> None:
        """Store ``doc`` under ``oid``: replace it in place, or append it to natural order
        (at ``seq`` when given: a rollback putting back a deleted document, see
        :meth:`FakeVault.rollback`, which then restores the order)."""
        if self.undo is not None:
            self.undo.append(("put", self, oid, self.docs.get(oid)))
        keys, odd = _key_entries(doc)
        modified = _modified_entry(doc)
        before = self._entries.get(oid)
        if before is None:
            if seq is None:
                seq = self._next_seq
                self._next_seq += 1
            self._seq[oid] = seq
            old_keys: tuple[str, ...] = ()
            old_modified: _Number | None = None
        else:  # a replacement keeps its place; only the index entries that changed move
            seq = self._seq[oid]
            old_keys, old_modified = before
            if old_modified is not None and old_modified != modified:
                entry = (old_modified, seq, oid)
                index = bisect_left(self._by_modified, entry)
                assert self._by_modified[index] == entry
                del self._by_modified[index]
        if keys != old_keys:
            for key in old_keys:
                holders = self._by_key[key]
                holders.remove(oid)
                if not holders:
                    del self._by_key[key]
            for key in keys:
                self._by_key.setdefault(key, set()).add(oid)
        if odd:
            self._odd_keys.add(oid)
        elif before is not None:
            self._odd_keys.discard(oid)
        if modified is not None and (old_modified is None or old_modified != modified):
            insort(self._by_modified, (modified, seq, oid))
        self._entries[oid] = (keys, modified)
        self.docs[oid] = doc
        self.nested[oid] = [k for k, v in doc.items() if type(v) is dict or type(v) is list]
        if self.journal is not None:
            self.journal.document_stored(self.name, oid, doc)

    def copy(self, oid: str) -> Document:
        """A deep copy of the document ``oid`` (what :func:`mongo.copy_value` makes)."""
        out = self.docs[oid].copy()
        for key in self.nested[oid]:
            out[key] = mongo.copy_value(out[key])
        return out

    def remove(self, oid: str) -> None:
        """Delete the document ``oid``."""
        if self.undo is not None:
            self.undo.append(("removed", self, oid, self.docs[oid], self._seq[oid]))
        self._unindex(oid)
        del self.docs[oid]
        del self._seq[oid]
        del self.nested[oid]
        if self.journal is not None:
            self.journal.document_deleted(self.name, oid)

    def restore_order(self) -> None:
        """Put ``docs`` back in natural order (after a rollback re-inserted documents)."""
        self.docs = dict(sorted(self.docs.items(), key=lambda item: self._seq[item[0]]))

    def _unindex(self, oid: str) -> None:
        keys, modified = self._entries.pop(oid)
        for key in keys:
            holders = self._by_key[key]
            holders.remove(oid)
            if not holders:
                del self._by_key[key]
        self._odd_keys.discard(oid)
        if modified is not None:
            entry = (modified, self._seq[oid], oid)
            index = bisect_left(self._by_modified, entry)
            assert self._by_modified[index] == entry
            del self._by_modified[index]

    def candidates(self, plan: _Plan) -> Iterable[tuple[str, Document]]:
        """``(id, document)`` pairs in natural order, a superset of the matches of ``plan``.

        Uses the ``key`` index, or the ``modified`` index when it leaves at most half of the
        collection (a scan is cheaper otherwise, and a limited find can stop early), or else
        every document.
        """
        docs = self.docs
        best: list[str] | None = None
        keys = plan.keys
        if keys is not None:
            ids: Collection[str]
            if len(keys) == 1 and not self._odd_keys:  # the commonest: one key
                ids = self._by_key.get(next(iter(keys)), ())
            else:
                ids = set(self._odd_keys)
                for key in keys:
                    ids.update(self._by_key.get(key, ()))
            best = list(ids) if len(ids) < 2 else sorted(ids, key=self._seq.__getitem__)
        bound = plan.bound
        if bound is not None:
            start = bisect_left(self._by_modified, (bound,))
            count = len(self._by_modified) - start
            if count <= len(docs) * self.modified_share and (best is None or count < len(best)):
                tail = sorted(self._by_modified[start:], key=itemgetter(1))
                best = [oid for _, _, oid in tail]
        if best is None:
            return docs.items()
        return [(oid, docs[oid]) for oid in best]


class FakeVault:
    """In-memory :class:`brh.vault.Vault` with Hive's semantics (see the module docstring).

    ``clock`` returns UNIX seconds (``time.time`` by default; tests inject one). With
    ``record=True`` every call appends a :class:`VaultRequest` to :attr:`requests`;
    :attr:`request_count` and :meth:`counts_by_op` are kept either way. ``journal`` is told of
    every change to the data (see :class:`VaultJournal`).
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
        self._collections: dict[str, _Collection] = {}
        self._next_counter = 0
        self.requests: list[VaultRequest] = []
        self.request_count = 0
        self._op_counts: dict[str, int] = {}
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        """Plans of simple filters (see :func:`_simple_key`)."""
        self._undo: list[_UndoStep] | None = None
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
        reordered: dict[int, _Collection] = {}
        for step in reversed(undo):
            kind = step[0]
            if kind == "created":
                del self._collections[step[1]]
            elif kind == "deleted":
                self._collections[step[1]] = step[2]
            else:
                coll: _Collection = step[1]
                journal, coll.journal = coll.journal, None
                try:
                    if kind == "put":
                        _, _, oid, previous = step
                        if previous is None:
                            coll.remove(oid)
                        else:
                            coll.put(oid, previous)
                    else:
                        _, _, oid, doc, seq = step
                        coll.put(oid, doc, seq)
                        reordered[id(coll)] = coll
                finally:
                    coll.journal = journal
        for coll in reordered.values():
            coll.restore_order()
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
        """Forget the request log and counts (the stored data stays)."""
        self.requests.clear()
        self.request_count = 0
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
        restored: dict[str, _Collection] = {}
        for name, docs in collections.items():
            coll = _Collection(check_name(name))
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

    def _get(self, collection: Any) -> _Collection:
        if type(collection) is str:  # only valid names were ever created (or restored)
            docs = self._collections.get(collection)
            if docs is not None:
                return docs
        check_name(collection)
        raise CollectionNotFoundError(f"Can not find collection {collection}")

    def _now(self) -> int:
        return int(self._clock())

    def _store_new(self, coll: _Collection, doc: Document, now: int) -> ObjectId:
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

    def _plan(self, filter: Any) -> _Plan:
        """The plan of ``filter``: kept if it is a simple one (see :func:`_simple_key`)."""
        key = _simple_key(filter)
        if key is None:
            return _plan(filter)
        plan = self._plans.get(key)
        if plan is None:
            plan = _plan(filter)  # raises for an invalid filter: nothing is kept
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _matching(self, coll: _Collection, filter: Any, *, first: bool = False) -> list[str]:
        """The keys (``_id`` hex) of the matching documents, in natural order."""
        plan = self._plan(filter)
        predicate = plan.predicate
        found: list[str] = []
        for key, doc in coll.candidates(plan):
            if predicate(doc):
                found.append(key)
                if first:
                    break
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
        if sort:
            found = self._matching(coll, filter)
            position = {id(docs[key]): key for key in found}
            ranked = mongo.sort_documents([docs[key] for key in found], sort)
            selected = [position[id(doc)] for doc in ranked]
        else:
            plan = self._plan(filter)
            predicate = plan.predicate
            selected = []
            wanted = -1 if end is None else end  # stop once the window is full
            for key, doc in coll.candidates(plan):
                if predicate(doc):
                    selected.append(key)
                    if len(selected) == wanted:
                        break
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
        coll = self._collections[name] = _Collection(name, self._journal)
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
        """Insert several documents; see the module docstring for partial failures."""
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
