"""The mutants of SPEC §1 (API), §2 (data and vault layout), §11 (errors) and CB-9 (see
:mod:`.mutants`, whose registry lists them: each is ``brh`` with one realistic bug, put in
through one documented seam, with a ``BUG:`` comment saying which real bug it stands for).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from brh import Entry, InvalidArgumentError
from brh.core import pass_reason
from brh.hlc import Version
from brh.store import _ENTRY_COLUMNS, LocalStore, Record, _record
from brh.vault import Document, ServerError
from brh.wire import RemoteDoc, document_fields, parse_document
from conformance.implementations.seams import build as _build
from conformance.implementations.seams import with_rules as _with
from simulator.impl import Factory, Installation, ReferenceHelper

__all__ = ["API_ROWS"]


def _by_name(registered: Sequence[str]) -> list[str]:
    # BUG: the contexts are kept in a map ordered by name (a sorted map, or sorted "for a
    # stable order"), so a pass visits them alphabetically, not in the order the app
    # registered them: the app's dependencies between contexts (folders before their notes)
    # arrive the wrong way round (API-1).
    return sorted(registered)


def contexts_by_name(installation: Installation) -> ReferenceHelper:
    """A pass visits the contexts in name order, not registration order."""
    return _with(pass_order=_by_name)(installation)


class _DeletionKeptStore(LocalStore):
    def _write(self, record: Record, *, pending: bool, stale: bool) -> None:
        current = self.get(record.context, record.key)
        if current is not None and current.deleted and not record.deleted:
            # BUG: the entry row is written by an upsert (``ON CONFLICT DO UPDATE SET``) that
            # lists every column but ``deletion_date``: a key deleted and written again keeps
            # its deletion, so the new data is never returned (API-2) and uploads as a delete.
            record = replace(record, deletion_date=current.deletion_date)
        super()._write(record, pending=pending, stale=stale)


def recreated_key_stays_deleted(installation: Installation) -> ReferenceHelper:
    """A key deleted and written again stays deleted locally."""
    return _build(installation, store=_DeletionKeptStore)


def _refusals_and_rejections_only(refused: bool, failed: bool, rejected: bool) -> str | None:
    # BUG: a context whose vault request failed is logged and skipped (RETRY-4), but the pass's
    # result looks at refusals and refused uploads only: a pass that reached no vault reports
    # completed, as the original helper did (W14), and arms no retry.
    return pass_reason(refused, False, rejected)


def vault_errors_not_reported(installation: Installation) -> ReferenceHelper:
    """A pass whose contexts met vault errors reports it completed."""
    return _with(pass_reason=_refusals_and_rejections_only)(installation)


def close_waits_for_pass(installation: Installation) -> ReferenceHelper:
    """close() lets the running pass go on to its next step instead of stopping it."""
    # BUG: close() is a "graceful" shutdown: it sets the closed flag and waits for the running
    # pass to notice it between two steps, so a pass waiting on a slow callback (an app asking
    # its user) or a slow request keeps close(), and the app's exit, waiting (API-6).
    return _with(close_cancels_pass=False)(installation)


def register_after_close(installation: Installation) -> ReferenceHelper:
    """add_sync_context after close() is accepted silently."""
    # BUG: registering a context touches neither the store nor the vault, so its closed check
    # was left out: a context registered after close() is taken without a word, and the app
    # believes it is synced (ERR-3).
    return _with(register_checks_closed=False)(installation)


def second_registration_replaces(installation: Installation) -> ReferenceHelper:
    """Registering a context a second time silently replaces its callbacks."""
    # BUG: the contexts are a plain map assignment, ``contexts[name] = callbacks``: a second
    # registration (a screen registering its context each time it opens) replaces the first
    # one's callbacks without an error, and the first model stops hearing of changes (ERR-2).
    return _with(duplicate_context_is_error=False)(installation)


def _context_as_collection(context: str) -> str:
    # BUG: the collection is named after the context alone, not ``backup_<context>``: the
    # original helper's devices and this helper's never see each other's backups (DATA-1).
    return context


def collection_named_after_context(installation: Installation) -> ReferenceHelper:
    """Each context's collection is named after the context alone."""
    return _with(collection_for=_context_as_collection)(installation)


def _creation_in_seconds(
    key: str, data: Any, creation_date: int, deletion_date: int | None, version: Version
) -> dict[str, Any]:
    fields = document_fields(key, data, creation_date, deletion_date, version)
    # BUG: creationDate is written in seconds, the platform clock's unit (``int(time.time())``),
    # where the original helper writes milliseconds: a device running the original shows
    # every entry as created in January 1970 (DATA-2).
    fields["creationDate"] = creation_date // 1000
    return fields


def creation_date_in_seconds(installation: Installation) -> ReferenceHelper:
    """Documents carry creationDate in seconds, not milliseconds."""
    return _with(document_fields=_creation_in_seconds)(installation)


class _KeyOnlyLookupStore(LocalStore):
    def get(self, context: str, key: str) -> Record | None:
        # BUG: the entry lookup's WHERE clause names the key only (``WHERE key = ?``, the
        # context column forgotten): a key of one context finds another context's entry, and a
        # write of it takes that entry's dates and vault version (DATA-5).
        row = self._execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE key = ?", (key,))
        found = row.fetchone()
        return None if found is None else _record(found)


def key_only_lookup(installation: Installation) -> ReferenceHelper:
    """The local store looks entries up by key alone, whatever their context."""
    return _build(installation, store=_KeyOnlyLookupStore)


def _strict_parse(doc: Document) -> RemoteDoc | None:
    parsed = parse_document(doc)
    if parsed is None:
        # BUG: pulled pages are decoded strictly: a document that is not an entry fails the
        # whole answer as a bad answer from the vault, so the context's pull stops there on
        # every pass, and nothing after it ever arrives (DATA-6).
        raise ServerError(f"the vault answered a document that is not an entry: {doc!r}")
    return parsed


def strict_document_parse(installation: Installation) -> ReferenceHelper:
    """A vault document that is not an entry fails the context's pull."""
    return _with(parse_document=_strict_parse)(installation)


def _shared_data(remote: RemoteDoc) -> Entry:
    # BUG: the callback is handed the pulled document's data itself, not a copy: an app that
    # changes what it was given (marks it read, appends to a list) changes the version the
    # helper then stores as the local entry (CB-9).
    return Entry(
        remote.key,
        remote.data,
        remote.creation_date,
        remote.modification_date,
        remote.deletion_date,
    )


def callback_shares_data(installation: Installation) -> ReferenceHelper:
    """Callbacks receive the helper's own copy of the data, not one of their own."""
    return _with(entry_for_app=_shared_data)(installation)


def _json_only(key: str, data: Any) -> str:
    # BUG: data is checked only for being JSON, not for what a Hive vault can store: field
    # names starting with '$', integers beyond 64 bits and nesting past 99 levels are taken,
    # and the vault refuses the upload later, for ever (ERR-1).
    try:
        return json.dumps(data, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("data", f"is not JSON: {exc}") from None


def data_checked_as_json_only(installation: Installation) -> ReferenceHelper:
    """Upserted data is checked for being JSON only, not for what the vault can store."""
    return _with(encode_data=_json_only)(installation)


class _LocalTombstoneStore(LocalStore):
    def erase(self, context: str, key: str) -> bool:
        # BUG: a local-only delete soft-deletes the entry as an ordinary delete does, only
        # without the upload mark: the local tombstone keeps the vault's version, so no pass,
        # not even a full one, brings the entry back (until someone edits it elsewhere).
        with self._transaction():
            record = self.get(context, key)
            if record is None:
                return False
            gone = replace(record, deletion_date=record.modification_date)
            self._write(gone, pending=False, stale=False)
            return True


def local_delete_keeps_tombstone(installation: Installation) -> ReferenceHelper:
    """A locally_only delete leaves a synced local tombstone instead of forgetting the entry."""
    return _build(installation, store=_LocalTombstoneStore)


API_ROWS: tuple[tuple[Factory, str, str], ...] = (
    (
        data_checked_as_json_only,
        "data is checked for being JSON only, not for what a vault stores",
        "ERR-1",
    ),
    (
        local_delete_keeps_tombstone,
        "a local-only delete leaves a tombstone: never restored",
        "API-3",
    ),
    (contexts_by_name, "a pass visits the contexts by name, not in registration order", "API-1"),
    (recreated_key_stays_deleted, "a key deleted and written again stays deleted", "API-2"),
    (vault_errors_not_reported, "a pass that met vault errors reports it completed", "API-4"),
    (close_waits_for_pass, "close() waits for the running pass instead of stopping it", "API-6"),
    (register_after_close, "add_sync_context after close() is accepted", "ERR-3"),
    (second_registration_replaces, "registering a context twice replaces its callbacks", "ERR-2"),
    (collection_named_after_context, "a context's collection is named without backup_", "DATA-1"),
    (creation_date_in_seconds, "documents carry creationDate in seconds", "DATA-2"),
    (key_only_lookup, "the local store looks entries up by key alone", "DATA-5"),
    (strict_document_parse, "a document that is not an entry stops the context's pull", "DATA-6"),
    (callback_shares_data, "a callback gets the helper's copy of the data, not its own", "CB-9"),
)
"""Registry rows of these mutants: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""
