"""A collection: its documents in natural order, and the indexes on ``key`` and ``modified``.

Every request used to evaluate its filter on every document of the collection. The Hive
helper's commonest requests select by the top-level ``key`` (one key, or ``$in`` a few) or pull
by the top-level ``modified`` stamp from a lower bound, so a collection keeps two indexes on
those fields. They only *pre-select candidates*: the whole compiled filter is still evaluated on
each candidate, so an index needs only to be a superset of the matches (never miss one), and
candidates are visited in natural order, so results, their order and "first match" semantics
are those of a full scan.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import abc
from operator import itemgetter
from typing import Any

from brh.vault import Document, ObjectId
from hivevault import mongo
from hivevault.journal import VaultJournal
from hivevault.planner import Number, Plan

__all__ = ["Collection", "UndoStep", "undo_changes"]

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


def _modified_entry(doc: Document) -> Number | None:
    """The largest number a numeric lower bound on ``modified`` could match in ``doc``, or None.

    ``$gt``/``$gte``/equality with a number only match a top-level ``modified`` that is (or is an
    array with an element that is) an exact ``int``/``float`` (not bool, not NaN): see
    ``_compare_test`` and ``_eq_test``. A document without such a value matches no bound.
    """
    value = doc.get("modified")
    if type(value) is int or type(value) is float:
        return value if value == value else None
    if type(value) is list:
        numbers: list[Number] = [e for e in value if _is_number(e)]
        if numbers:
            return max(numbers)
    return None


UndoStep = tuple[Any, ...]
"""How to undo one change: ``("put", coll, oid, previous document or None)``, ``("removed",
coll, oid, document, seq)``, ``("created", name)`` or ``("deleted", name, coll)``."""


class Collection:
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
        self._by_modified: list[tuple[Number, int, str]] = []
        # What each document contributed to the indexes, to take it out again.
        self._entries: dict[str, tuple[tuple[str, ...], Number | None]] = {}
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
        modified = _modified_entry(doc)
        before = self._entries.get(oid)
        if before is None:
            if seq is None:
                seq = self._next_seq
                self._next_seq += 1
            self._seq[oid] = seq
            old_keys: tuple[str, ...] = ()
            old_modified: Number | None = None
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

    def candidates(self, plan: Plan) -> abc.Iterable[tuple[str, Document]]:
        """``(id, document)`` pairs in natural order, a superset of the matches of ``plan``.

        Uses the ``key`` index, or the ``modified`` index when it leaves at most half of the
        collection (a scan is cheaper otherwise, and a limited find can stop early), or else
        every document.
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
