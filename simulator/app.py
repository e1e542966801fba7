"""A model of an app for one sync context: what it would show, and how its callbacks behave.

Behaviours, as real apps have them:

* ``apply``: apply the change and return True;
* ``refuse``: return False ``refusals`` times (per change), then apply;
* ``flaky``: return False with probability ``probability`` (seeded), else apply;
* ``slow``: take ``delay`` seconds of (virtual) time, like asking the user, then apply;
* ``decline``: return True *without* applying (the design document allows it: the user said no).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from brh import Entry

__all__ = ["AppModel", "Behaviour"]

MODES = ("apply", "refuse", "flaky", "slow", "decline")


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
    ``calls`` records every callback as ``(kind, key, data)``, refused ones included;
    ``declined`` the keys whose last delivered change the app chose not to apply.
    ``observer(kind, entry)`` is called first (a simulator checks the helper's state there).
    """

    items: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    refuse: Callable[[str, Entry], bool] | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    declined: set[str] = field(default_factory=set)
    observer: Callable[[str, Entry], None] | None = None
    edits: int = 0
    """How many local edits the app made (the simulated device counts them)."""
    _refused: dict[tuple[str, int], int] = field(default_factory=dict)

    def _decide(self, kind: str, entry: Entry) -> bool:
        """True to accept the change now."""
        if self.refuse is not None and self.refuse(kind, entry):
            return False
        b = self.behaviour
        if b.mode == "refuse":
            change = (entry.key, entry.modification_date)
            done = self._refused.get(change, 0)
            if done < b.refusals:
                self._refused[change] = done + 1
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
        before = self.items.get(entry.key, _UNSET)
        edits = self.edits
        await asyncio.sleep(self.behaviour.delay)
        self.calls.append((kind, entry.key, entry.data))
        if not self._decide(kind, entry):
            return False
        if self.edits != edits and self.items.get(entry.key, _UNSET) is not before:
            # The user edited this item while we were asking: their edit is newer (ORD-7), so
            # a well-behaved app keeps it and still reports the remote change as handled.
            return True
        self._apply(kind, entry)
        return True

    def _dispatch(self, kind: str, entry: Entry) -> bool | Awaitable[bool]:
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
