"""A collection: its documents in natural order, and the indexes on ``key``, ``modified`` and
``_id``.

Every request used to evaluate its filter on every document of the collection. The Hive
helper's commonest requests select by the top-level ``key`` (one key, or ``$in`` a few) or pull
by the top-level ``modified`` stamp from a lower bound, page by page in ``(modified, _id)``
order, so a collection keeps two indexes on those fields. They only *pre-select candidates*: the
whole compiled filter is still evaluated on each candidate, so an index needs only to be a
superset of the matches (never miss one). Candidates are visited in natural order
(:meth:`Collection.candidates`), so results, their order and "first match" semantics are those
of a full scan; or, for a query sorted by ``(modified, _id)``, in that order
(:meth:`Collection.in_pull_order`), which is exactly the order MongoDB's sort gives, so the
query stops after its window instead of sorting every match. A query sorted by ``_id`` (a full
pass paging by ``_id`` alone) walks the ids in order likewise (:meth:`Collection.in_id_order`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import abc
from heapq import merge
from itertools import chain
from typing import Any

from brh.vault import Document, ObjectId
from hivevault import mongo
from hivevault.journal import VaultJournal
from hivevault.planner import Number, Plan

__all__ = ["PULL_ORDER", "Collection", "UndoStep", "undo_changes"]

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


def _largest_number(values: list[Any]) -> Number | None:
    """The largest number a numeric lower bound on ``modified`` could match in an array, or None.

    ``$gt``/``$gte``/equality with a number only match an array holding an exact ``int`` or
    ``float`` (not bool, not NaN) that passes: see ``_compare_test`` and ``_eq_test``.
    """
    numbers: list[Number] = [e for e in values if _is_number(e)]
    return max(numbers) if numbers else None


Entry = tuple[Any, ...]
"""An entry of the ``modified`` index: :func:`hivevault.mongo.ascending_key` of ``modified`` and
the ``_id`` hex (the id last)."""

_FIRST_STRING: Entry = mongo.ascending_token("")[:1]
"""Below every ``modified`` index entry of a string, above every entry of a number."""

_FIRST_RUN = 64
"""Index entries the walks of :meth:`Collection.in_pull_order` and :meth:`~Collection.in_id_order`
prepare first."""

_NUMBER, _EXACT = mongo.ascending_key(0, "")[:2]
"""How the entry of a number starts (the commonest, built here without a call)."""


PULL_ORDER = [(("modified",), 1), (("_id",), 1)]
"""A sort on ``(modified, _id)``, as :func:`mongo.sort_paths` gives it: the order of
:meth:`Collection.in_pull_order`."""

_BY_ID = (("_id",), 1)
"""An ascending sort on ``_id``, as :func:`mongo.sort_paths` gives it."""


UndoStep = tuple[Any, ...]
"""How to undo one change: ``("put", coll, oid, previous document or None)``, ``("removed",
coll, oid, document, seq)``, ``("created", name)`` or ``("deleted", name, coll)``."""


class Collection:
    """A collection's documents in natural order, with the indexes on ``key``, ``modified`` and
    ``_id``.

    ``docs`` maps ``_id`` hex to the stored document; it must only be changed through
    :meth:`put` and :meth:`remove`, which keep the indexes in step:

    * ``_seq``: each document's insertion number (natural order; a replaced document keeps its
      place and number, a deleted and re-inserted one goes to the end);
    * ``_by_key``: string -> ids of the documents whose top-level ``key`` is that string or an
      array holding it; ``_odd_keys``: ids whose ``key`` might equal a string without being one;
    * ``_by_modified``: sorted entries ``(*token, id)`` of the documents whose top-level
      ``modified`` is not an array, ``token`` being what an ascending sort on ``modified``
      orders them by (:func:`mongo.ascending_key`; missing and null first, then numbers, then
      strings...): the order of a sort on ``(modified, _id)``, since every ``_id`` is an
      ObjectId;
    * ``_modified_arrays``: id -> the largest number in ``modified`` (or None) of the documents
      whose ``modified`` is an array (they sort by their smallest element, and match a lower
      bound by their largest: they are few, and merged in when needed);
    * ``_by_id``: every id, sorted (a hex of 24 lowercase digits sorts as its ObjectId does).

    Stored documents are never changed in place (an update stores a new one), so :meth:`copy`
    can copy the top level at once and only descend into the fields noted as holding documents
    or arrays.
    """

    __slots__ = (
        "_by_id",
        "_by_key",
        "_by_modified",
        "_entries",
        "_modified_arrays",
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
    """Use the ``modified`` index for :meth:`candidates` only if it leaves at most this share of
    the documents (a class setting; tests raise it to 1.0 to exercise the index on small
    collections)."""

    def __init__(self, name: str = "", journal: VaultJournal | None = None) -> None:
        self.name = name
        self.journal = journal
        """Told of every :meth:`put` and :meth:`remove` (None: nobody is)."""
        self.docs: dict[str, Document] = {}
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self._by_key: dict[str, set[str]] = {}
        self._odd_keys: set[str] = set()
        self._by_modified: list[Entry] = []
        self._modified_arrays: dict[str, Number | None] = {}
        self._by_id: list[str] = []
        # What each document contributed to the indexes, to take it out again (its modified
        # entry, or None if it is in _modified_arrays).
        self._entries: dict[str, tuple[tuple[str, ...], Entry | None]] = {}
        self.nested: dict[str, list[str]] = {}
        """Per document, its fields holding documents or arrays (what a copy descends into)."""
        self.undo: list[UndoStep] | None = None
        """Where each change notes how to undo it, while the vault has begun a transaction."""

    def put(self, oid: str, doc: Document, seq: int | None = None) -> None:
        """Store ``doc`` under ``oid``: replace it in place, or append it to natural order
        (at ``seq`` when given: a rollback putting back a deleted document, see
        :func:`undo_changes`, which then restores the order)."""
        if self.undo is not None:
            self.undo.append(("put", self, oid, self.docs.get(oid)))
        keys, odd = _key_entries(doc)
        value = doc.get("modified", mongo.MISSING)
        kind = type(value)
        entry: Entry | None = None
        if (kind is int or kind is float) and value == value:  # mongo.ascending_key, inlined
            entry = (_NUMBER, _EXACT, value, oid)
        elif kind is list:
            self._modified_arrays[oid] = _largest_number(value)
        else:
            entry = mongo.ascending_key(value, oid)
        before = self._entries.get(oid)
        if before is None:
            if seq is None:
                seq = self._next_seq
                self._next_seq += 1
            self._seq[oid] = seq
            insort(self._by_id, oid)
            old_keys: tuple[str, ...] = ()
            old_entry: Entry | None = None
        else:  # a replacement keeps its place; only the index entries that changed move
            old_keys, old_entry = before
            if old_entry is None:
                if entry is not None:
                    del self._modified_arrays[oid]
            elif old_entry != entry:
                self._unindex_modified(old_entry)
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
        if entry is not None and (old_entry is None or old_entry != entry):
            insort(self._by_modified, entry)
        self._entries[oid] = (keys, entry)
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
        keys, entry = self._entries.pop(oid)
        for key in keys:
            holders = self._by_key[key]
            holders.remove(oid)
            if not holders:
                del self._by_key[key]
        self._odd_keys.discard(oid)
        by_id = self._by_id
        del by_id[bisect_left(by_id, oid)]
        if entry is None:
            del self._modified_arrays[oid]
        else:
            self._unindex_modified(entry)

    def _unindex_modified(self, entry: Entry) -> None:
        index = bisect_left(self._by_modified, entry)
        assert self._by_modified[index] == entry
        del self._by_modified[index]

    def _numbers_past(self, low: tuple[Number, str]) -> tuple[int, int]:
        """The slice ``[start:end]`` of ``_by_modified`` that holds the numbers past the lower
        bound ``low`` (:data:`hivevault.planner.Low`)."""
        index = self._by_modified
        start = bisect_right(index, (_NUMBER, _EXACT, low[0], low[1]))
        end = len(index)
        if end and index[-1][0] > _NUMBER:  # numbers last (the commonest): nothing to skip
            end = bisect_left(index, _FIRST_STRING, start)
        return start, end

    def _arrays_reaching(self, number: Number) -> list[str]:
        """The ids of the documents whose ``modified`` is an array holding a number that is at
        least ``number``."""
        return [
            oid
            for oid, largest in self._modified_arrays.items()
            if largest is not None and largest >= number
        ]

    def candidates(self, plan: Plan) -> abc.Iterable[tuple[str, Document]]:
        """``(id, document)`` pairs in natural order, a superset of the matches of ``plan``.

        Uses the ``key`` index, or the ``modified`` index when it leaves at most
        :attr:`modified_share` of the collection (a scan is cheaper otherwise, and a limited
        find can stop early), or else every document.
        """
        docs = self.docs
        best: list[str] | None = None
        keys = plan.keys
        if keys is not None:
            ids: abc.Collection[str]
            if len(keys) == 1 and not self._odd_keys:  # the commonest: one key
                ids = self._by_key.get(next(iter(keys)), ())
            else:
                ids = set(self._odd_keys)
                for key in keys:
                    ids.update(self._by_key.get(key, ()))
            best = list(ids) if len(ids) < 2 else sorted(ids, key=self._seq.__getitem__)
        low = plan.low
        if low is not None:
            start, end = self._numbers_past(low)
            count = end - start
            arrays = self._arrays_reaching(low[0]) if self._modified_arrays else None
            if arrays:
                count += len(arrays)
            if count <= len(docs) * self.modified_share and (best is None or count < len(best)):
                tail = [entry[-1] for entry in self._by_modified[start:end]]
                if arrays:
                    tail.extend(arrays)
                best = tail if count < 2 else sorted(tail, key=self._seq.__getitem__)
        if best is None:
            return docs.items()
        return [(oid, docs[oid]) for oid in best]

    def in_pull_order(self, plan: Plan) -> abc.Iterable[tuple[str, Document]]:
        """``(id, document)`` pairs in the order of a sort on ``(("modified", 1), ("_id", 1))``,
        a superset of the matches of ``plan``, produced as they are consumed.

        Walks the ``modified`` index from the plan's lower bound, if any (to the end of the
        numbers), or from its start, merging in the array documents (sorted on demand). A query
        that stops after its window has looked at the documents before the window and in it,
        plus those the filter refused on the way: a keyset page is proportional to its size,
        not to the collection.
        """
        docs = self.docs
        index = self._by_modified
        low = plan.low
        if low is None:
            start, end = 0, len(index)
            arrays = list(self._modified_arrays)
        else:
            start, end = self._numbers_past(low)
            arrays = self._arrays_reaching(low[0]) if self._modified_arrays else []
        if not arrays:  # the commonest: the index alone, a run at a time
            return chain.from_iterable(self._runs(index, start, end))
        extra = sorted(mongo.ascending_key(docs[oid]["modified"], oid) for oid in arrays)
        walk = merge((index[i] for i in range(start, end)), extra)
        return ((entry[-1], docs[entry[-1]]) for entry in walk)

    def in_id_order(self, plan: Plan) -> abc.Iterable[tuple[str, Document]]:
        """``(id, document)`` pairs in the order of a sort on ``(("_id", 1),)``, a superset of
        the matches of ``plan``, produced as they are consumed.

        Walks the sorted ids from the plan's ``_id`` lower bound, if any, to the end: a keyset
        page by ``_id`` (``{"_id": {"$gt": last}}``, limited) looks at its own documents and
        those the filter refused on the way, not at the collection. A descending sort on
        ``_id`` is not served (it sorts every match).
        """
        index = self._by_id
        start = 0 if plan.id_low is None else bisect_left(index, plan.id_low)
        return chain.from_iterable(self._runs(index, start, len(index)))

    def in_sort_order(
        self, plan: Plan, paths: list[tuple[Any, int]]
    ) -> abc.Iterable[tuple[str, Document]] | None:
        """:meth:`in_pull_order` for a sort on ``(modified, _id)`` and :meth:`in_id_order` for
        one on ``_id`` ascending (then anything: ids are unique), ``paths`` as
        :func:`mongo.sort_paths` gives them; None for any other sort (no index has its order)."""
        if paths == PULL_ORDER:
            return self.in_pull_order(plan)
        if paths and paths[0] == _BY_ID:
            return self.in_id_order(plan)
        return None

    def _runs(
        self, index: list[Any], start: int, end: int
    ) -> abc.Iterator[abc.Iterator[tuple[str, Document]]]:
        """The ``(id, document)`` pairs of ``index[start:end]`` (``_by_modified`` or
        ``_by_id``), in runs of doubling length: taken a run at a time, they cost little more
        per document than iterating ``docs`` (a generator resumed per document cost a third
        more), and a consumer that stops early has had at most twice what it took (and the
        first run) prepared."""
        docs = self.docs
        by_id = index is self._by_id
        size = _FIRST_RUN
        while start < end:
            stop = min(end, start + size)
            oids = index[start:stop] if by_id else [entry[-1] for entry in index[start:stop]]
            yield zip(oids, map(docs.__getitem__, oids), strict=True)
            start = stop
            size *= 2


def undo_changes(steps: abc.Sequence[UndoStep], collections: dict[str, Collection]) -> None:
    """Undo ``steps``, latest first: ``collections`` (a vault's, by name) and their documents,
    indexes and natural order are as before the first step. The journals are not told."""
    reordered: dict[int, Collection] = {}
    for step in reversed(steps):
        kind = step[0]
        if kind == "created":
            del collections[step[1]]
        elif kind == "deleted":
            collections[step[1]] = step[2]
        else:
            coll: Collection = step[1]
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
