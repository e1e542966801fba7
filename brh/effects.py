"""What a sync pass asks its driver to do: the effects of :mod:`brh.machine`.

The pass machine does no I/O. It yields one of these values at a time and is resumed with the
answer; the asyncio driver (:class:`brh.engine.SyncEngine`) performs each one: a read or a
transaction of the local store, a vault request, a callback, a look at a clock, an event or a log
record. A vault error is thrown back into the machine where it yielded the request.

Every effect names the context it is about. The answer each kind gets is in its docstring.
Effects are plain slotted dataclasses, never changed once yielded (one is built for every step
of every pass, and a frozen dataclass costs several times as much to build).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brh.core import Action
from brh.hlc import Version
from brh.store import ContextState, Record
from brh.vault import SortSpec
from brh.wire import RemoteDoc

__all__ = [
    "READS",
    "VAULT",
    "WRITES",
    "ApplyRemote",
    "ClearRefusals",
    "ClearRejection",
    "ClearStale",
    "CreateCollection",
    "DeleteMany",
    "DeleteOne",
    "Deliver",
    "Effect",
    "Emit",
    "FindMany",
    "ForgetRemoteDeleted",
    "HasRefusals",
    "LiveSyncedKeys",
    "LoadState",
    "Local",
    "LocalState",
    "Log",
    "LoopTime",
    "MarkStale",
    "NoteRefusal",
    "NoteRejection",
    "Now",
    "Observe",
    "Pending",
    "PurgeTombstones",
    "Query",
    "Refusals",
    "Rejections",
    "Requeue",
    "RequeueAll",
    "SaveState",
    "SetBase",
    "StaleKeys",
    "Stuck",
    "UpdateOne",
    "VaultTime",
]


@dataclass(slots=True)
class Effect:
    context: str


# -- reads of the local store -----------------------------------------------------------------


@dataclass(slots=True)
class LoadState(Effect):
    """The context's stored progress: a :class:`~brh.store.ContextState`."""


@dataclass(slots=True)
class Local(Effect):
    """The local entry of ``key``: a :class:`~brh.store.Record`, or None."""

    key: str


@dataclass(slots=True)
class LocalState(Effect):
    """The local entry of ``key`` without its data (what a decision needs): a
    :class:`~brh.store.EntryState`, or None."""

    key: str


@dataclass(slots=True)
class Pending(Effect):
    """The entries with a local change to upload, in key order: ``list[Record]``."""


@dataclass(slots=True)
class StaleKeys(Effect):
    """Keys whose newer remote version has not been delivered yet: ``list[str]``."""


@dataclass(slots=True)
class LiveSyncedKeys(Effect):
    """Keys of live entries the vault has held and nothing newer is pending: ``list[str]``."""


@dataclass(slots=True)
class Rejections(Effect):
    """Uploads the vault refused, still current: ``list[brh.store.Rejection]``."""


@dataclass(slots=True)
class HasRefusals(Effect):
    """Whether some key of the context has a refusal streak: ``bool``."""


@dataclass(slots=True)
class Refusals(Effect):
    """The refusal streak of ``key``: ``int``."""

    key: str


@dataclass(slots=True)
class Stuck(Effect):
    """The context's stuck entries (RETRY-3, RETRY-6): ``list[brh.StuckEntry]``."""


# -- clocks -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Now(Effect):
    """The device clock, in whole milliseconds: ``int``."""


@dataclass(slots=True)
class VaultTime(Effect):
    """The vault's clock as its latest answer gave it, or None (see SYNC-4): ``float | None``."""


@dataclass(slots=True)
class LoopTime(Effect):
    """The event loop's monotonic time, in seconds: ``float``."""


@dataclass(slots=True)
class Observe(Effect):
    """The hybrid clock sees ``version``: later local writes are stamped after it."""

    version: Version


# -- transactions of the local store ----------------------------------------------------------


@dataclass(slots=True)
class SaveState(Effect):
    """Store the context's progress."""

    state: ContextState


@dataclass(slots=True)
class ApplyRemote(Effect):
    """Store a delivered remote version unless the local version is no longer ``expected``
    (the app wrote the key meanwhile): ``bool``, whether it was stored."""

    record: Record
    expected: Version | None


@dataclass(slots=True)
class SetBase(Effect):
    """Note that the vault holds ``base`` for ``key`` (see :meth:`LocalStore.set_base`)."""

    key: str
    base: Version
    pending: bool | None = None
    clear_if_version: Version | None = None


@dataclass(slots=True)
class MarkStale(Effect):
    """A newer remote version beat the local version ``lost``: stop pushing it."""

    key: str
    lost: Version


@dataclass(slots=True)
class ClearStale(Effect):
    keys: tuple[str, ...]


@dataclass(slots=True)
class NoteRefusal(Effect):
    """The app refused the remote change of ``key`` once more: ``int``, the streak."""

    key: str


@dataclass(slots=True)
class ClearRefusals(Effect):
    key: str


@dataclass(slots=True)
class NoteRejection(Effect):
    """The vault refused to store ``version`` of ``key``: ``int``, refusals in a row."""

    key: str
    version: Version
    reason: str
    definite: bool


@dataclass(slots=True)
class ClearRejection(Effect):
    key: str


@dataclass(slots=True)
class Requeue(Effect):
    """The vault lost ``key``'s document: upload the local copy as new."""

    key: str


@dataclass(slots=True)
class RequeueAll(Effect):
    """The vault lost the context's collection: upload every local entry as new."""


@dataclass(slots=True)
class ForgetRemoteDeleted(Effect):
    """Drop the synced entry ``key`` at ``expected``: its tombstone was purged: ``bool``."""

    key: str
    expected: Version


@dataclass(slots=True)
class PurgeTombstones(Effect):
    """Drop synced local tombstones written before ``older_than_ms``: ``int``, how many."""

    older_than_ms: int


# -- vault requests (answers as brh.vault.Vault's; a VaultError is thrown back) ---------------


@dataclass(slots=True)
class CreateCollection(Effect):
    collection: str


@dataclass(slots=True)
class Query(Effect):
    collection: str
    filter: Mapping[str, Any]
    sort: SortSpec | None = None
    skip: int = 0
    limit: int | None = None
    projection: Mapping[str, Any] | None = None


@dataclass(slots=True)
class FindMany(Effect):
    collection: str
    filter: Mapping[str, Any]


@dataclass(slots=True)
class UpdateOne(Effect):
    collection: str
    filter: Mapping[str, Any]
    update: Mapping[str, Any]
    upsert: bool = False


@dataclass(slots=True)
class DeleteOne(Effect):
    collection: str
    filter: Mapping[str, Any]


@dataclass(slots=True)
class DeleteMany(Effect):
    collection: str
    filter: Mapping[str, Any]


# -- the app and the observer -----------------------------------------------------------------


@dataclass(slots=True)
class Deliver(Effect):
    """Call the app's callback for ``action`` with ``remote`` as an entry: what it answered
    (True, False, anything else), or the exception it raised."""

    action: Action
    remote: RemoteDoc


@dataclass(slots=True)
class Emit(Effect):
    """Tell the listener: a :class:`brh.SyncEvent` of ``kind`` with ``fields``."""

    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Log(Effect):
    """A record on the ``brh`` logger: ``message % args`` at ``level``."""

    level: int
    message: str
    args: Sequence[Any] = ()


READS = (
    LoadState,
    Local,
    LocalState,
    Pending,
    StaleKeys,
    LiveSyncedKeys,
    Rejections,
    HasRefusals,
    Refusals,
)
"""Effects that read the local store."""
WRITES = (
    SaveState,
    ApplyRemote,
    SetBase,
    MarkStale,
    ClearStale,
    NoteRefusal,
    ClearRefusals,
    NoteRejection,
    ClearRejection,
    Requeue,
    RequeueAll,
    ForgetRemoteDeleted,
    PurgeTombstones,
)
"""Effects that change the local store (each one transaction)."""
VAULT = (CreateCollection, Query, FindMany, UpdateOne, DeleteOne, DeleteMany)
"""Effects that are vault requests."""
