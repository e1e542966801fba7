"""Mutants of the reference: each is ``brh`` with ONE realistic bug, to prove the suite bites.

Every mutant is a factory (``conformance.implementations.mutants:<name>``, usable with
``--brh-impl``) and an entry of :data:`MUTANTS` (name -> the bug in one line, the factory).
``tests/conformance/test_mutants.py`` asserts that each one fails a conformance test naming one
of its clauses;
``benchmarks/mutants.py`` measures which tests catch it and how fast.

How a bug is put in: through the helper's documented seams, never by patching a live object.
Most mutants swap one entry of the helper's :class:`brh.core.Rules` (a decision function or a
flag of the pass machine), as ``BackupRestoreHelper(..., rules=replace(RULES, decide=...))``.
The bugs of the local store itself are :class:`brh.store.LocalStore` subclasses, passed as the
helper's ``store``; a bug that is a wrong setting is one constructor option. Several devices,
mutated or not, share one process and one event loop. Each bug says in a ``BUG:`` comment
which real bug it stands for.

The mutants live in one module per part of the SPEC, each with the registry rows of its part:
:mod:`.mutants_api` (§1 API, §2 data, §11 errors, CB-9), :mod:`.mutants_delivery` (§3
callbacks, §7 ordering, §8 deletion, §9 restore), :mod:`.mutants_passes` (§4 passes, §10 cost)
and :mod:`.mutants_retry` (§5 retry, §6 offline); all are built with :mod:`.seams` and are
attributes of this module, so ``--brh-impl conformance.implementations.mutants:NAME`` loads any.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.implementations.mutants_api import API_ROWS
from conformance.implementations.mutants_api import callback_shares_data as callback_shares_data
from conformance.implementations.mutants_api import close_waits_for_pass as close_waits_for_pass
from conformance.implementations.mutants_api import (
    collection_named_after_context as collection_named_after_context,
)
from conformance.implementations.mutants_api import contexts_by_name as contexts_by_name
from conformance.implementations.mutants_api import (
    creation_date_in_seconds as creation_date_in_seconds,
)
from conformance.implementations.mutants_api import (
    data_checked_as_json_only as data_checked_as_json_only,
)
from conformance.implementations.mutants_api import key_only_lookup as key_only_lookup
from conformance.implementations.mutants_api import (
    local_delete_keeps_tombstone as local_delete_keeps_tombstone,
)
from conformance.implementations.mutants_api import (
    recreated_key_stays_deleted as recreated_key_stays_deleted,
)
from conformance.implementations.mutants_api import register_after_close as register_after_close
from conformance.implementations.mutants_api import (
    second_registration_replaces as second_registration_replaces,
)
from conformance.implementations.mutants_api import strict_document_parse as strict_document_parse
from conformance.implementations.mutants_api import (
    vault_errors_not_reported as vault_errors_not_reported,
)
from conformance.implementations.mutants_delivery import DELIVERY_ROWS
from conformance.implementations.mutants_delivery import (
    accepted_same_data_not_recorded as accepted_same_data_not_recorded,
)
from conformance.implementations.mutants_delivery import (
    clock_ignores_remote as clock_ignores_remote,
)
from conformance.implementations.mutants_delivery import (
    clock_not_reread_per_write as clock_not_reread_per_write,
)
from conformance.implementations.mutants_delivery import create_by_insert as create_by_insert
from conformance.implementations.mutants_delivery import (
    delete_for_unknown_key as delete_for_unknown_key,
)
from conformance.implementations.mutants_delivery import (
    delete_of_unheld_key_uploaded as delete_of_unheld_key_uploaded,
)
from conformance.implementations.mutants_delivery import echo_own_writes as echo_own_writes
from conformance.implementations.mutants_delivery import (
    edit_keeps_local_deletion as edit_keeps_local_deletion,
)
from conformance.implementations.mutants_delivery import false_ignored as false_ignored
from conformance.implementations.mutants_delivery import (
    insert_for_unsynced_key as insert_for_unsynced_key,
)
from conformance.implementations.mutants_delivery import (
    late_older_delivery_ignored as late_older_delivery_ignored,
)
from conformance.implementations.mutants_delivery import (
    lost_collection_not_refilled as lost_collection_not_refilled,
)
from conformance.implementations.mutants_delivery import (
    modify_for_deleted_key as modify_for_deleted_key,
)
from conformance.implementations.mutants_delivery import (
    no_full_pass_after_absence as no_full_pass_after_absence,
)
from conformance.implementations.mutants_delivery import (
    no_redelivery_after_crash as no_redelivery_after_crash,
)
from conformance.implementations.mutants_delivery import (
    own_writes_not_restored as own_writes_not_restored,
)
from conformance.implementations.mutants_delivery import (
    page_stored_after_last_callback as page_stored_after_last_callback,
)
from conformance.implementations.mutants_delivery import (
    refusal_halts_one_context as refusal_halts_one_context,
)
from conformance.implementations.mutants_delivery import (
    sync_allowed_in_callback as sync_allowed_in_callback,
)
from conformance.implementations.mutants_delivery import ties_by_local_order as ties_by_local_order
from conformance.implementations.mutants_delivery import (
    tombstone_not_propagated as tombstone_not_propagated,
)
from conformance.implementations.mutants_delivery import (
    tombstones_kept_forever as tombstones_kept_forever,
)
from conformance.implementations.mutants_delivery import wipe_keeps_cursor as wipe_keeps_cursor
from conformance.implementations.mutants_delivery import (
    writer_without_incarnation as writer_without_incarnation,
)
from conformance.implementations.mutants_passes import PASS_ROWS
from conformance.implementations.mutants_passes import (
    collections_created_at_every_start as collections_created_at_every_start,
)
from conformance.implementations.mutants_passes import cursor_past_refusal as cursor_past_refusal
from conformance.implementations.mutants_passes import device_clock_cursor as device_clock_cursor
from conformance.implementations.mutants_passes import find_then_insert as find_then_insert
from conformance.implementations.mutants_passes import (
    full_pass_clock_reset_by_every_pull as full_pass_clock_reset_by_every_pull,
)
from conformance.implementations.mutants_passes import (
    full_pass_cursor_at_vault_clock as full_pass_cursor_at_vault_clock,
)
from conformance.implementations.mutants_passes import (
    full_pass_ignores_missing as full_pass_ignores_missing,
)
from conformance.implementations.mutants_passes import (
    full_pass_trusts_held_keys as full_pass_trusts_held_keys,
)
from conformance.implementations.mutants_passes import (
    idle_pass_reads_everything as idle_pass_reads_everything,
)
from conformance.implementations.mutants_passes import (
    one_cursor_for_all_contexts as one_cursor_for_all_contexts,
)
from conformance.implementations.mutants_passes import pages_after_stamp as pages_after_stamp
from conformance.implementations.mutants_passes import pages_until_empty as pages_until_empty
from conformance.implementations.mutants_passes import push_before_pull as push_before_pull
from conformance.implementations.mutants_passes import (
    push_skipped_after_refusal as push_skipped_after_refusal,
)
from conformance.implementations.mutants_passes import (
    settles_without_overlap as settles_without_overlap,
)
from conformance.implementations.mutants_passes import (
    sync_joins_running_pass as sync_joins_running_pass,
)
from conformance.implementations.mutants_passes import writes_sync_at_once as writes_sync_at_once
from conformance.implementations.mutants_retry import RETRY_ROWS
from conformance.implementations.mutants_retry import backoff_never_resets as backoff_never_resets
from conformance.implementations.mutants_retry import no_request_deadline as no_request_deadline
from conformance.implementations.mutants_retry import no_retry as no_retry
from conformance.implementations.mutants_retry import (
    outage_blamed_on_entries as outage_blamed_on_entries,
)
from conformance.implementations.mutants_retry import (
    pending_queue_in_memory as pending_queue_in_memory,
)
from conformance.implementations.mutants_retry import (
    refused_upload_blocks_others as refused_upload_blocks_others,
)
from conformance.implementations.mutants_retry import retry_without_backoff as retry_without_backoff
from conformance.implementations.mutants_retry import split_local_write as split_local_write
from conformance.implementations.mutants_retry import vault_error_ends_pass as vault_error_ends_pass
from conformance.implementations.mutants_retry import write_awaits_sync as write_awaits_sync
from simulator.impl import Factory

__all__ = ["MUTANTS", "Mutant"]


@dataclass(frozen=True)
class Mutant:
    """One mutant: its factory name, the bug it carries, and the factory."""

    name: str
    bug: str
    factory: Factory
    clauses: tuple[str, ...]
    """The SPEC clauses the bug breaks; the suite must fail it by a test naming one of them."""

    @property
    def spec(self) -> str:
        """The ``--brh-impl`` value that runs this mutant."""
        return f"{__name__}:{self.name}"


def _registry(*mutants: tuple[Factory, str, str]) -> dict[str, Mutant]:
    """Mutants from ``(factory, bug, "CLAUSE-1 CLAUSE-2")`` rows."""
    return {
        factory.__name__: Mutant(factory.__name__, bug, factory, tuple(clauses.split()))
        for factory, bug, clauses in mutants
    }


MUTANTS: dict[str, Mutant] = _registry(*API_ROWS, *DELIVERY_ROWS, *PASS_ROWS, *RETRY_ROWS)
"""Every mutant, by name (the factory's name, an attribute of this module)."""
