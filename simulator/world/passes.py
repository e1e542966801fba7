"""A device's passes as the harness sees them, for any implementation (an implementation
reports no passes): the state the checkers keep for CB-6 and RETRY-1 (see
:meth:`simulator.world.checkers.Checker.request_sent`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from brh.vault import NetworkError, ServerError, UnauthorizedError, VaultFrozenError

__all__ = ["PASS_FAILURES", "READS", "Lane"]


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


READS = frozenset({"query", "find_many", "find_one", "count_documents"})
PASS_FAILURES = (NetworkError, ServerError, UnauthorizedError, VaultFrozenError)
