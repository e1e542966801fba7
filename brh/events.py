"""What a helper tells an observer while it works: passes, callbacks, conflicts.

Pass ``listener=`` to :class:`brh.BackupRestoreHelper` to receive :class:`SyncEvent` values
synchronously, in order (for a status line, metrics, or a simulator's checkers). A listener
must be quick and must not call the helper; an exception it raises is logged and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brh.entry import SyncResult

__all__ = ["Listener", "SyncEvent"]


@dataclass(frozen=True)
class SyncEvent:
    """One step of a helper's work.

    ``kind`` is one of:

    * ``"pass_started"`` (``full`` says whether it is a full pass);
    * ``"pass_finished"`` (``result`` is the pass's :class:`~brh.SyncResult`);
    * ``"callback"``: a callback returned; ``action`` is ``insert``/``modify``/``delete``,
      ``accepted`` what it answered (False also when it raised), ``version`` the delivered
      version (``brhVersion`` text);
    * ``"pushed"``: a local change reached the vault (``version``);
    * ``"superseded"``: a local change lost to a newer remote ``version``;
    * ``"rejected"``: the vault refused to store a local change (``version``); ``error`` is its
      answer. The change stays queued and is retried with backoff (RETRY-6).
    """

    kind: str
    device: str
    context: str | None = None
    key: str | None = None
    action: str | None = None
    accepted: bool | None = None
    version: str | None = None
    full: bool | None = None
    result: SyncResult | None = None
    error: str | None = None


Listener = Callable[[SyncEvent], None]
