"""When a context's pull is a full pass by itself (SYNC-10, SYNC-11, DEL-3).

Besides ``sync(full=True)`` and a context without a cursor (its first pull, or one after a
wipe), a pull reads every document when the device was away for over half the tombstone
retention (DEL-3: tombstones it never saw may have been purged meanwhile) or when its last full
pass is older than ``full_sync_interval`` (SYNC-11: it repairs what an incremental pull cannot
see). Both are judged on the device's clock, from the context's stored progress.
"""

from __future__ import annotations

from brh.options import SyncOptions
from brh.records import ContextState

__all__ = ["AWAY", "PERIODIC", "full_pass_reason"]

AWAY = "away for over half the tombstone retention"
PERIODIC = "full_sync_interval"


def full_pass_reason(
    options: SyncOptions, state: ContextState, now_ms: int, *, away: bool = True
) -> str | None:
    """Why this pull of ``state``'s context is a full pass by itself at ``now_ms`` (device
    clock, ms): :data:`AWAY` (DEL-3; only if ``away``, the rules'
    :attr:`~brh.core.Rules.full_pass_when_away`), :data:`PERIODIC` (SYNC-11), or None."""
    if (
        away
        and options.tombstone_retention is not None
        and state.last_pull_ms is not None
        and now_ms - state.last_pull_ms > options.tombstone_retention * 1000 / 2
    ):
        return AWAY
    if (
        options.full_sync_interval is not None
        and state.last_full_ms is not None
        and now_ms - state.last_full_ms > options.full_sync_interval * 1000
    ):
        return PERIODIC
    return None
