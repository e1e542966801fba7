"""The vault layout: collection names, document fields, and the filters that address a version.

One collection per sync context, ``backup_<context>``; one document per entry with the original
helper's fields (``key``, ``data``, ``creationDate``, ``modificationDate``, ``deletionDate``) so a
device running the original can read what we write, plus ``brhVersion`` (the write's
:class:`~brh.hlc.Version`) and ``brhFormat``. The vault adds ``_id``, ``created`` and ``modified``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from brh.entry import Entry, copy_json
from brh.hlc import Version
from brh.store import Record
from brh.vault import Document, ObjectId

__all__ = [
    "COLLECTION_PREFIX",
    "FORMAT",
    "MAX_DOCUMENT_BYTES",
    "RemoteDoc",
    "collection_for",
    "document_fields",
    "parse_document",
    "version_filter",
]

COLLECTION_PREFIX = "backup_"
FORMAT = 1
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's document size limit; the helper refuses data that cannot fit."""

CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Context names the vault can use in a collection name (letters, digits, ``_ . -``)."""


def collection_for(context: str) -> str:
    """The vault collection holding ``context``'s entries."""
    return COLLECTION_PREFIX + context


@dataclass(slots=True)
class RemoteDoc:
    """A vault document, parsed and validated."""

    key: str
    data: Any
    creation_date: int
    modification_date: int
    deletion_date: int | None
    version: Version
    stamp: int | None
    """The vault's ``modified`` stamp (integer seconds, vault clock), when present."""
    doc_id: ObjectId | None

    @property
    def deleted(self) -> bool:
        return self.deletion_date is not None

    def as_record(self, context: str) -> Record:
        """This version as the local entry of ``context`` (the vault holds it: its base)."""
        return Record(
            context=context,
            key=self.key,
            data=self.data,
            creation_date=self.creation_date,
            modification_date=self.modification_date,
            deletion_date=self.deletion_date,
            version=self.version,
            base=self.version,
        )

    @classmethod
    def purged(cls, local: Record, now_ms: int) -> RemoteDoc:
        """The deletion of ``local`` that a purged tombstone stood for (SYNC-10, DEL-3): dated
        ``now_ms``, at the version the device holds."""
        return cls(
            key=local.key,
            data=local.data,
            creation_date=local.creation_date,
            modification_date=now_ms,
            deletion_date=now_ms,
            version=local.version,
            stamp=None,
            doc_id=None,
        )

    def to_entry(self) -> Entry:
        """The app's view, with a private copy of the data."""
        data = copy_json(self.data)
        return Entry(self.key, data, self.creation_date, self.modification_date, self.deletion_date)


def _int_or_none(value: Any) -> int | None:
    if type(value) is int:  # the commonest
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_document(doc: Document) -> RemoteDoc | None:
    """Parse a vault document, or None if it is not an entry this helper can use.

    Documents without ``brhVersion`` were written by the original helper: their version is
    derived from ``modificationDate``. So are documents whose ``brhVersion`` no longer agrees with
    their ``modificationDate`` (the original rewrote them with ``$set`` and left our field stale).
    """
    key = doc.get("key")
    modification = _int_or_none(doc.get("modificationDate"))
    if not isinstance(key, str) or not key or modification is None:
        return None
    creation = _int_or_none(doc.get("creationDate"))
    deletion = _int_or_none(doc.get("deletionDate"))
    version = Version.legacy(modification)
    raw = doc.get("brhVersion")
    if isinstance(raw, str):
        try:
            decoded = Version.decode(raw)
        except ValueError:
            decoded = None
        if decoded is not None and decoded.wall_ms == modification:
            version = decoded
    raw_id = doc.get("_id")
    return RemoteDoc(
        key=key,
        data=doc.get("data"),
        creation_date=creation if creation is not None else modification,
        modification_date=modification,
        deletion_date=deletion,
        version=version,
        stamp=_int_or_none(doc.get("modified")),
        doc_id=raw_id if isinstance(raw_id, ObjectId) else None,
    )


def document_fields(
    key: str,
    data: Any,
    creation_date: int,
    deletion_date: int | None,
    version: Version,
) -> dict[str, Any]:
    """The fields a write sets (``$set``) on the entry's vault document."""
    return {
        "key": key,
        "data": data,
        "creationDate": creation_date,
        "modificationDate": version.wall_ms,
        "deletionDate": deletion_date,
        "brhVersion": version.encode(),
        "brhFormat": FORMAT,
    }


def version_filter(key: str, version: Version) -> dict[str, Any]:
    """A filter matching exactly the document(s) of ``key`` holding ``version``.

    Used for compare-and-set: an update with this filter only applies if the vault still holds
    the version this device last saw.
    """
    if version.is_legacy:
        return {"key": key, "modificationDate": version.wall_ms}
    return {"key": key, "brhVersion": version.encode()}
