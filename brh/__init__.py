"""brh: offline-first backup and multi-device sync of app entries to a Hive vault.

The public surface is re-exported here::

    from brh import BackupRestoreHelper, Entry, SyncResult, RetryPolicy

It logs through ``logging.getLogger("brh")``, which has only a ``NullHandler``, as a library's
logger should: the app decides where the records go (``logging.basicConfig()`` shows them).
"""

import logging

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

logging.getLogger("brh").addHandler(logging.NullHandler())
