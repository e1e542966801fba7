"""A device's passes as the harness sees them, for any implementation (an implementation
reports no passes): the state the checkers keep for CB-6 and RETRY-1 (see
:meth:`simulator.world.checkers.Checker.request_sent`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brh.vault import NetworkError, ServerError, UnauthorizedError, VaultError, VaultFrozenError

if TYPE_CHECKING:
    from simulator.world.checkers import Checker

__all__ = ["PASS_FAILURES", "READS", "Lane", "LinkWatch"]


@dataclass
class Lane:
    """A device's passes as the harness sees them, for any implementation."""

    refused: set[int] = field(default_factory=set)
    """Helper instances whose current pass had a callback refused (CB-6)."""
    retry_since: float | None = None
    """When a pass of the device failed with no new pass started since (RETRY-1)."""
    retry_why: str = ""
    syncs_waiting: int = 0
    """``sync()`` calls of the harness not yet returned: each is an outside trigger."""
    sync_called_at: float | None = None
    """When the harness last called ``sync()``."""
    pass_started_at: float | None = None
    """When the device's latest observable pass started (its first request)."""
    passes_since_call: int = 0
    """Passes the device started (any of its instances) since the harness last called
    ``sync()``: more than one per instance means a retry already began."""


READS = frozenset({"query", "find_many", "find_one", "count_documents"})
PASS_FAILURES = (NetworkError, ServerError, UnauthorizedError, VaultFrozenError)


class LinkWatch:
    """Tells the checker what a device's link sees (:class:`~simulator.world.link.LinkWatcher`)."""

    def __init__(self, checker: Checker, device: str) -> None:
        self.checker = checker
        self.device = device

    def sent(self, op: str, collection: str | None, filter: Mapping[str, Any] | None) -> None:
        self.checker.request_sent(self.device, op, collection, filter)

    def failed(self, op: str, error: VaultError) -> None:
        self.checker.request_failed(self.device, op, error)
