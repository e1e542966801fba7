"""What the helper hands to the app: entries and the outcome of a sync pass."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Entry", "StuckEntry", "SyncResult", "copy_json"]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (scalars are returned as they are).

    The same as ``json.loads(json.dumps(value))`` for anything ``json.dumps`` accepts: plain
    dicts with string keys, lists and exact scalars are copied directly; anything else (a
    subclass, a tuple, a non-string key) goes through JSON, which turns it into plain values.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return _copy(value)
    except _NotPlain:
        return json.loads(json.dumps(value))


class _NotPlain(Exception):
    pass


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            copied[key] = item if type(item) in _SCALARS else _copy(item)
        return copied
    if kind is list:
        return [item if type(item) in _SCALARS else _copy(item) for item in value]
    raise _NotPlain


@dataclass(frozen=True)
class Entry:
    """One backed-up item of a sync context, as the app sees it.

    Dates are milliseconds since the epoch, as in the original helper. ``deletion_date`` is
    None unless the entry is deleted (a tombstone). ``modification_date`` is the wall-clock part
    of the entry's hybrid logical clock stamp: close to the writing device's clock, but never
    behind anything that device had seen, so it can run ahead of a slow device's clock.
    """

    key: str
    data: Any
    creation_date: int
    modification_date: int
    deletion_date: int | None = None

    @property
    def deleted(self) -> bool:
        """True for a tombstone."""
        return self.deletion_date is not None


@dataclass(frozen=True)
class StuckEntry:
    """An entry that does not get through, and why.

    ``direction="delivery"``: a remote change that the app's callback has refused ``refusals``
    times in a row (RETRY-3). ``direction="upload"``: a local change that the vault has refused
    to store ``refusals`` times in a row, ``reason`` being its answer (RETRY-6). Either way the
    helper keeps retrying it with backoff, and the rest of the sync goes on.
    """

    context: str
    key: str
    refusals: int
    direction: str = "delivery"
    reason: str | None = None


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one sync pass; truthy iff the pass completed.

    A pass completes when every context pulled and pushed everything without a callback
    refusing and without a vault error. Otherwise ``reason`` says why (``"refused"``,
    ``"vault_error"``, ``"rejected"``: the vault refused some uploads, listed in ``rejected``,
    while everything else went through; ``"internal_error"``, ``"closed"``) and, unless closed,
    a retry is already scheduled. ``stuck`` lists every entry that does not get through.
    """

    completed: bool
    reason: str | None = None
    error: str | None = None
    refused: tuple[str, str] | None = None
    pulled: int = 0
    pushed: int = 0
    delivered: int = 0
    requests: int = 0
    failed_contexts: tuple[str, ...] = ()
    stuck: tuple[StuckEntry, ...] = field(default=())
    rejected: tuple[StuckEntry, ...] = field(default=())
    """Uploads the vault refused in this pass, or that wait out their backoff after an earlier
    refusal (their ``refusals`` and ``reason`` are the latest)."""

    def __bool__(self) -> bool:
        return self.completed
