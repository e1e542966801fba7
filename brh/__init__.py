"""brh: offline-first backup and multi-device sync of app entries to a Hive vault.

The public surface is re-exported here::

    from brh import BackupRestoreHelper, Entry, SyncResult, RetryPolicy
"""

from brh.entry import Entry, StuckEntry, SyncResult
from brh.errors import (
    BrhError,
    HelperClosedError,
    InvalidArgumentError,
    LocalStoreCorruptError,
    LocalStoreError,
    LocalStoreReadOnlyError,
    LocalStoreVersionError,
    ReentrantCallError,
    UnknownContextError,
)
from brh.events import SyncEvent
from brh.helper import BackupRestoreHelper, Callback
from brh.retry import RetryPolicy
from brh.store import LocalStore

__all__ = [
    "BackupRestoreHelper",
    "BrhError",
    "Callback",
    "Entry",
    "HelperClosedError",
    "InvalidArgumentError",
    "LocalStore",
    "LocalStoreCorruptError",
    "LocalStoreError",
    "LocalStoreReadOnlyError",
    "LocalStoreVersionError",
    "ReentrantCallError",
    "RetryPolicy",
    "StuckEntry",
    "SyncEvent",
    "SyncResult",
    "UnknownContextError",
]

__version__ = "0.1.0"
