"""What a sync pass is asked to do, what it answers, and what it remembers for the next.

:func:`brh.machine.sync_pass` takes a :class:`Plan` and returns an :class:`Outcome`; the
driver keeps the outcome's :class:`Memory` for the next pass and throws
:class:`ContextReset` into the machine when a context is wiped under it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from brh.core import Rules
from brh.entry import StuckEntry, SyncResult
from brh.hlc import Version
from brh.options import SyncOptions

__all__ = [
    "MAX_CAS_ATTEMPTS",
    "MAX_PUSH_ROUNDS",
    "MAX_WINDOW",
    "PASS",
    "STALE_FETCH_CHUNK",
    "ContextReset",
    "Memory",
    "Outcome",
    "Plan",
    "Tally",
]

MAX_CAS_ATTEMPTS = 4
"""Compare-and-set attempts of one upload in one pass before it waits for the next pass."""
MAX_WINDOW = 10_000
"""At most this many versions (about 300 KB of filter) are excluded by name when re-reading the
overlap window; past that, the window's documents are re-read and skipped locally until the
cursor settles. Excluding is far cheaper than re-reading: a version costs ~30 bytes of filter,
a document its whole size in the answer."""
STALE_FETCH_CHUNK = 200
"""Keys per request when fetching the winners of stale entries by key."""
MAX_PUSH_ROUNDS = 3
"""Push rounds per context in one pass (a round that lost to newer versions delivers them and
pushes again)."""

PASS = ""
"""The context name of effects about the whole pass (its start and end events)."""


class ContextReset(Exception):
    """Thrown in by the driver: the context was wiped (or the helper closed) during the pass,
    which leaves it alone from there (RES-2, API-6)."""


@dataclass(frozen=True)
class Memory:
    """What a helper keeps between passes outside its store (a restart forgets it, harmlessly)."""

    ready: frozenset[str] = frozenset()
    """Contexts whose collection is known to exist on the vault (else: the stored flag)."""
    held: Mapping[tuple[str, str], tuple[Version, float]] = field(default_factory=dict)
    """Per (context, key): the local version the vault refused, and the loop time before which
    its upload is not tried again (RETRY-6)."""
    stamp_seen: int | None = None
    """The newest vault stamp read in any context: a reading of the vault's clock for a vault
    that does not tell its time (SYNC-4)."""


@dataclass(frozen=True)
class Plan:
    """What one pass is asked to do."""

    contexts: Sequence[tuple[str, str]]
    """``(context, collection)`` of every registered context, in registration order."""
    full: bool
    options: SyncOptions
    rules: Rules
    memory: Memory = Memory()
    quiet: bool = False
    """A retry series is under way: repeated vault errors are logged at INFO, not WARNING."""
    upload_delay: Callable[[int], float] | None = None
    """``refusals -> seconds``: how long to hold back an upload the vault refused that many
    times in a row (the retry backoff, jitter included, drawn by the driver)."""


@dataclass(frozen=True)
class Outcome:
    result: SyncResult
    memory: Memory


@dataclass
class Tally:
    """What a pass did so far, and the :class:`~brh.SyncResult` it reports."""

    pulled: int = 0
    pushed: int = 0
    delivered: int = 0
    requests: int = 0
    failed: list[str] = field(default_factory=list)
    error: str | None = None
    rejected: list[StuckEntry] = field(default_factory=list)

    def fail(self, context: str, error: str) -> None:
        """The context's work ended early; the pass reports the first such error."""
        self.failed.append(context)
        self.error = self.error or error

    def result(
        self,
        refused: tuple[str, str] | None,
        stuck: list[StuckEntry],
        reason_of: Callable[[bool, bool, bool], str | None],
    ) -> SyncResult:
        """The pass's result: its reason is the worst of what happened, as ``reason_of``
        (:attr:`brh.core.Rules.pass_reason`) tells it (RETRY-1: any reason means the pass did
        not complete and is retried)."""
        reason = reason_of(refused is not None, bool(self.failed), bool(self.rejected))
        return SyncResult(
            completed=reason is None,
            reason=reason,
            error=self.error,
            refused=refused,
            pulled=self.pulled,
            pushed=self.pushed,
            delivered=self.delivered,
            requests=self.requests,
            failed_contexts=tuple(self.failed),
            stuck=tuple(stuck),
            rejected=tuple(self.rejected),
        )
