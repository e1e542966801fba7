"""A model of an app for one sync context: what it would show, and how its callbacks behave.

Behaviours, as real apps have them:

* ``apply``: apply the change and return True;
* ``refuse``: return False ``refusals`` times (per change), then apply (the app counts the
  refusals of the last change offered for each key: a bounded record, however long the run);
* ``flaky``: return False with probability ``probability`` (seeded), else apply;
* ``slow``: take ``delay`` seconds of (virtual) time, like asking the user, then apply;
* ``decline``: return True *without* applying (the design document allows it: the user said no).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, overload

from brh import Entry
from simulator.world.crashpoints import CallbackTrap, never_answered

__all__ = ["CALLS_KEPT", "AppModel", "Behaviour", "Call", "CallLog"]

MODES = ("apply", "refuse", "flaky", "slow", "decline")

Call = tuple[str, str, Any]
"""One callback as the app saw it: ``(kind, key, data)``."""

CALLS_KEPT = 32
"""How many of its most recent callbacks an app model keeps (it counts them all): more than
any test reads, few enough that a long run's ten apps hold well under 100 KB of them (each
call keeps its own copy of the entry's data)."""


class CallLog:
    """An app model's callback log: it counts every callback and keeps the most recent
    ``limit``, so that a long run's memory does not grow with its callbacks.

    It reads like the list of the calls it kept (``len``, iteration, ``in``, indexing, ``==``
    with a list). :attr:`total` counts every call since the log began (or was last cleared);
    :meth:`since` gives the calls after a given total, and refuses if some were dropped. A log
    that dropped calls equals no list (it cannot show them all), only another log with the
    same total and the same kept calls.
    """

    __slots__ = ("_kept", "total")

    def __init__(self, calls: list[Call] | None = None, *, limit: int = CALLS_KEPT) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"CallLog: limit must be an int >= 1, got {limit!r}")
        self._kept: deque[Call] = deque(maxlen=limit)
        self.total = 0
        """Callbacks recorded since the log began or was last cleared, dropped ones included."""
        for call in calls or ():
            self.append(call)

    @property
    def limit(self) -> int:
        """How many calls it keeps."""
        assert self._kept.maxlen is not None
        return self._kept.maxlen

    @property
    def dropped(self) -> int:
        """Calls counted but no longer kept (the oldest ones)."""
        return self.total - len(self._kept)

    def append(self, call: Call) -> None:
        self._kept.append(call)
        self.total += 1

    def clear(self) -> None:
        """Forget every call and start counting again."""
        self._kept.clear()
        self.total = 0

    def since(self, total: int) -> list[Call]:
        """The calls recorded after the first ``total`` (a value :attr:`total` had)."""
        if not 0 <= total <= self.total:
            raise ValueError(f"since: {total} is not between 0 and the total {self.total}")
        if total < self.dropped:
            raise LookupError(
                f"since: {self.dropped - total} of the calls after the first {total} were "
                f"dropped (the log keeps the last {self.limit})"
            )
        kept = list(self._kept)
        return kept[total - self.dropped :]

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[Call]:
        return iter(self._kept)

    def __contains__(self, call: object) -> bool:
        return call in self._kept

    @overload
    def __getitem__(self, index: int) -> Call: ...
    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...
    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        if isinstance(index, slice):
            return list(self._kept)[index]
        return self._kept[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CallLog):
            return self.total == other.total and list(self._kept) == list(other._kept)
        if isinstance(other, list):
            return self.dropped == 0 and list(self._kept) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        dropped = f", {self.dropped} older dropped" if self.dropped else ""
        return f"CallLog({list(self._kept)!r}{dropped})"


@dataclass
class Behaviour:
    mode: str = "apply"
    refusals: int = 0
    probability: float = 0.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {MODES}")


@dataclass
class AppModel:
    """The app's own model of one context, driven by the helper's three callbacks.

    ``refuse(kind, entry)`` returning True makes a callback return False whatever the behaviour.
    ``calls`` records every callback as ``(kind, key, data)``, refused ones included (a
    :class:`CallLog`: it counts them all and keeps the most recent :data:`CALLS_KEPT`);
    ``declined`` the keys whose last delivered change the app chose not to apply.
    ``observer(kind, entry)`` is called first (a simulator checks the helper's state there).
    """

    items: dict[str, Any] = field(default_factory=dict)
    calls: CallLog = field(default_factory=CallLog)
    refuse: Callable[[str, Entry], bool] | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    declined: set[str] = field(default_factory=set)
    observer: Callable[[str, Entry], None] | None = None
    edits: int = 0
    """How many local edits the app made (the simulated device counts them)."""
    edited: dict[str, int] = field(default_factory=dict)
    """key -> the app's local edits of it that changed its model (a put, a delete of an item it
    showed): what a slow callback checks to keep the user's edit made meanwhile (ORD-7)."""
    crash_trap: CallbackTrap | None = None
    """A crash armed at a coming callback of the device (``world.crash_at``; shared by the
    device's apps): at that callback the device dies, before the app sees the change or once
    it took it, and the helper never gets the answer."""
    _refused: dict[str, tuple[int, int]] = field(default_factory=dict)
    """key -> (modification date of the last change offered, times it was refused)."""

    def _decide(self, kind: str, entry: Entry) -> bool:
        """True to accept the change now."""
        if self.refuse is not None and self.refuse(kind, entry):
            return False
        b = self.behaviour
        if b.mode == "refuse":
            change, done = self._refused.get(entry.key, (entry.modification_date, 0))
            if change != entry.modification_date:  # another change of the key: count anew
                done = 0
            if done < b.refusals:
                self._refused[entry.key] = (entry.modification_date, done + 1)
                return False
        return not (b.mode == "flaky" and self.rng.random() < b.probability)

    def _apply(self, kind: str, entry: Entry) -> None:
        if self.behaviour.mode == "decline":
            self.declined.add(entry.key)
            return
        self.declined.discard(entry.key)
        if kind == "delete":
            self.items.pop(entry.key, None)
        else:
            self.items[entry.key] = entry.data

    def _handle(self, kind: str, entry: Entry) -> bool:
        if self.observer is not None:
            self.observer(kind, entry)
        self.calls.append((kind, entry.key, entry.data))
        if not self._decide(kind, entry):
            return False
        self._apply(kind, entry)
        return True

    async def _slowly(self, kind: str, entry: Entry) -> bool:
        if self.observer is not None:
            self.observer(kind, entry)
        edits = self.edited.get(entry.key, 0)
        await asyncio.sleep(self.behaviour.delay)
        self.calls.append((kind, entry.key, entry.data))
        if not self._decide(kind, entry):
            return False
        if self.edited.get(entry.key, 0) != edits:
            # The user edited this item while we were asking: their edit is newer (ORD-7), so
            # a well-behaved app keeps it and still reports the remote change as handled. (By
            # the edits, not the value: a put then a delete leaves the item as it was, and is
            # still newer.)
            return True
        self._apply(kind, entry)
        return True

    def _dispatch(self, kind: str, entry: Entry) -> bool | Awaitable[bool]:
        trap = self.crash_trap
        if trap is not None and trap.reached():
            return self._crash_in_callback(trap, kind, entry)
        return self._answer(kind, entry)

    async def _crash_in_callback(self, trap: CallbackTrap, kind: str, entry: Entry) -> bool:
        """The device dies in this callback: after the app took the change (``applied``) or
        before it saw it. The helper never learns the answer."""
        if trap.applied:
            await _resolve(self._answer(kind, entry))
        trap.fire()
        return await never_answered()

    def _answer(self, kind: str, entry: Entry) -> bool | Awaitable[bool]:
        if self.behaviour.mode == "slow" and self.behaviour.delay > 0:
            return self._slowly(kind, entry)
        return self._handle(kind, entry)

    def on_insert(self, entry: Entry) -> bool | Awaitable[bool]:
        return self._dispatch("insert", entry)

    async def on_modify(self, entry: Entry) -> bool:  # a coroutine on purpose: both kinds work
        return await _resolve(self._dispatch("modify", entry))

    def on_delete(self, entry: Entry) -> bool | Awaitable[bool]:
        return self._dispatch("delete", entry)

    def kinds(self) -> list[str]:
        return [kind for kind, _key, _data in self.calls]


_UNSET: Any = object()


async def _resolve(value: bool | Awaitable[bool]) -> bool:
    return value if isinstance(value, bool) else await value
