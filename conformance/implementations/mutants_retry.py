"""The mutants of SPEC §5 (retry) and §6 (offline).

:mod:`.mutants` registers them: each is ``brh`` with one realistic bug, put in through one
documented seam (:mod:`.seams`), with a ``BUG:`` comment saying which real bug it stands for.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from brh.core import UploadFailure
from brh.hlc import HybridClock, Version
from brh.retry import RetryPolicy
from brh.store import LocalStore, Record
from brh.vault import VaultError
from conformance.implementations.seams import build as _build
from conformance.implementations.seams import with_rules as _with
from simulator.impl import Factory, Installation, ReferenceHelper

__all__ = ["RETRY_ROWS"]


def _never_again(policy: RetryPolicy, failures: int, rng: random.Random) -> float | None:
    # BUG: a pass that did not complete is counted but no retry timer is armed: a refused
    # change or an upload that met an outage waits for the app's next write or sync (W6).
    return None


def no_retry(installation: Installation) -> ReferenceHelper:
    """A failed or refused pass schedules no retry."""
    return _with(retry_delay=_never_again)(installation)


class _UnmarkedWriteStore(LocalStore):
    """A store whose local writes keep the data and the clock but not the "to upload" mark:
    the written keys wait in memory (``_unmarked``) for what each bug does with them."""

    def __init__(self, path: Any = ":memory:") -> None:
        super().__init__(path)
        self._unmarked: set[tuple[str, str]] = set()

    def write_local(
        self,
        context: str,
        key: str,
        clock: HybridClock,
        change: Callable[[Record | None, Version], Record | None],
    ) -> Record | None:
        with self._transaction():
            current = self.get(context, key)
            record = change(current, clock.stamp())
            if record is None:
                return None
            self._write(record, pending=current is not None and current.pending, stale=record.stale)
            self._save_clock(clock.last)
        self._unmarked.add((context, key))
        return record


class _SplitWriteStore(_UnmarkedWriteStore):
    # BUG: a local write is split in two transactions: the data and clock now, the
    # "to upload" mark later, when the next pass reads the queue (kept in memory until
    # then). The app's call returns in between; a crash there loses the upload for good.

    def pending(self, context: str) -> list[Record]:
        queued = sorted(item for item in self._unmarked if item[0] == context)
        if queued:
            with self._transaction():
                self._db.executemany(
                    "UPDATE entries SET pending = 1 WHERE context = ? AND key = ?", queued
                )
            self._unmarked.difference_update(queued)
        return super().pending(context)


def split_local_write(installation: Installation) -> ReferenceHelper:
    """A local write is two transactions: data first, the upload mark at the next pass."""
    return _build(installation, store=_SplitWriteStore)


def _initial_delay_every_time(
    policy: RetryPolicy, failures: int, rng: random.Random
) -> float | None:
    # BUG: the retry timer is armed with the first delay every time (the failure count is
    # kept but never used): no backoff, so an outage gets a pass from every device every
    # second for as long as it lasts.
    return policy.delay(1, rng)


def retry_without_backoff(installation: Installation) -> ReferenceHelper:
    """A failed pass is always retried after the initial delay: the backoff never grows."""
    return _with(retry_delay=_initial_delay_every_time)(installation)


def backoff_never_resets(installation: Installation) -> ReferenceHelper:
    """The backoff counts every failed pass since the helper started: a success never resets it."""
    failed = itertools.count(1)

    def counting(policy: RetryPolicy, failures: int, rng: random.Random) -> float | None:
        # BUG: the backoff keeps its own count of failed passes, which nothing resets: after a
        # completed pass, the next outage starts where the last one ended (at the cap), so a
        # device back from a long outage waits minutes on the first error of a short one.
        return policy.delay(next(failed), rng)

    return _with(retry_delay=counting)(installation)


def vault_error_ends_pass(installation: Installation) -> ReferenceHelper:
    """A vault error in one context ends the whole pass: later contexts are skipped."""
    # BUG: one try around the loop over contexts instead of one per context: a vault error in
    # one context (its collection unavailable, say) skips every later context for the pass,
    # and for every retry while it lasts.
    return _with(vault_error_ends_context_only=False)(installation)


def no_request_deadline(installation: Installation) -> ReferenceHelper:
    """Vault requests have no overall deadline (a week)."""
    # BUG: the HTTP client's defaults are kept: an idle-read timeout, no overall deadline. A
    # vault that never answers, or answers a byte at a time, holds the pass, and every sync()
    # waiting behind it, for as long as it takes.
    return _build(installation, request_deadline=7 * 86400.0)


def _every_failure_stops_uploads(error: VaultError) -> UploadFailure:
    # BUG: every failed upload is handled as the vault being in trouble: the context's uploads
    # stop for the pass and nothing is held back, so a document the vault will never take (too
    # large, invalid for it) blocks every upload after it, in every pass.
    return UploadFailure.TRANSPORT


def refused_upload_blocks_others(installation: Installation) -> ReferenceHelper:
    """An upload the vault refuses stops the context's other uploads, in every pass."""
    return _with(upload_failure=_every_failure_stops_uploads)(installation)


def _every_failure_blamed_on_the_entry(error: VaultError) -> UploadFailure:
    # BUG: every failed upload is counted against its entry: a frozen vault, an expired token
    # or a lost connection while uploading puts each queued change on a backoff of its own,
    # so the first pass after the outage skips them.
    return UploadFailure.ENTRY


def outage_blamed_on_entries(installation: Installation) -> ReferenceHelper:
    """Upload errors that say nothing about the document hold the entry back anyway."""
    return _with(upload_failure=_every_failure_blamed_on_the_entry)(installation)


def write_awaits_sync(installation: Installation) -> ReferenceHelper:
    """An upsert or delete awaits the pass it starts."""
    # BUG: the write awaits the sync it starts (as the original's earlier versions did): an
    # app write waits for the vault, for as long as the network takes to fail.
    return _with(write_returns_before_sync=False)(installation)


class _MemoryQueueStore(_UnmarkedWriteStore):
    # BUG: the upload queue is a set in memory that the app's writes add to; the store
    # keeps the data and the clock only. A restart forgets every change not uploaded yet
    # (its data stays, so the device shows it, but no pass uploads it).

    def pending(self, context: str) -> list[Record]:
        found = {record.key: record for record in super().pending(context)}
        for queued_context, key in sorted(self._unmarked):
            record = self.get(context, key) if queued_context == context else None
            if record is not None and key not in found:
                found[key] = replace(record, pending=True)
        return [found[key] for key in sorted(found)]

    def set_base(
        self,
        context: str,
        key: str,
        base: Version,
        *,
        pending: bool | None = None,
        clear_if_version: Version | None = None,
    ) -> None:
        super().set_base(context, key, base, pending=pending, clear_if_version=clear_if_version)
        record = self.get(context, key)
        if clear_if_version is not None and (record is None or record.version == clear_if_version):
            self._unmarked.discard((context, key))


def pending_queue_in_memory(installation: Installation) -> ReferenceHelper:
    """The queue of changes to upload is kept in memory only."""
    return _build(installation, store=_MemoryQueueStore)


RETRY_ROWS: tuple[tuple[Factory, str, str], ...] = (
    (no_retry, "a pass that did not complete schedules no retry", "RETRY-1"),
    (split_local_write, "a local write is two transactions: data now, upload mark later", "OFF-2"),
    (retry_without_backoff, "a failed pass is retried after the first delay every time", "RETRY-2"),
    (backoff_never_resets, "a completed pass does not reset the backoff", "RETRY-2"),
    (vault_error_ends_pass, "a vault error in one context skips the later contexts", "RETRY-4"),
    (no_request_deadline, "vault requests have no overall deadline", "RETRY-5"),
    (
        refused_upload_blocks_others,
        "an upload the vault refuses stops the context's other uploads",
        "RETRY-6",
    ),
    (write_awaits_sync, "an upsert or delete awaits the pass it starts", "OFF-1"),
    (
        outage_blamed_on_entries,
        "upload errors of an outage hold each queued change back",
        "OFF-3 RETRY-6",
    ),
    (pending_queue_in_memory, "the upload queue is kept in memory only", "OFF-4"),
)
"""Registry rows of this part: ``(factory, bug, "CLAUSE-1 CLAUSE-2")``."""
