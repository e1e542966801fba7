"""Crashes inside a device's work: armed at a point, they kill the device when it gets there.

``world.crash(name)`` kills a device wherever it happens to be at that virtual instant. Many
steps of a pass happen at one instant (a local commit, the next request, a callback's record),
so a crash by time cannot choose between them. A :class:`CrashPoint` can: it names the point by
what the harness sees the implementation do, counted from the moment it is armed
(``world.crash_at(name, ...)``):

* ``request=n``: the device's n-th vault request. With ``applied=False`` the device dies as
  the request leaves: it never reaches the vault. With ``applied=True`` the vault applies it and
  the device dies before the answer arrives (a write that took effect, which the device never
  learnt of: SPEC ORD-5, CB-7). Any implementation, in process or over the protocol: the
  harness's link to the vault counts (:attr:`simulator.world.link.Link.crash_trap`).
* ``line=k``: an implementation run as a process (``--brh-cmd``, PROTOCOL.md) is killed right
  after the harness reads the k-th line it writes (``idle`` lines not counted: each kill lands
  inside a turn), before the harness acts on that line: a result is never delivered, a request
  is never served. What the process did after writing that line and before the signal reached
  it may or may not be on its disk, as with any real crash.
* ``callback=n``: the n-th callback request the device makes. With ``applied=False`` the device
  dies as it calls the app, which never sees the change; with ``applied=True`` the app takes
  the change (and updates its model) and the device dies before the helper learns the answer
  (SPEC CB-7: a crash between a callback and the helper's own record redelivers it). Any
  implementation, in process or over the protocol (:class:`CallbackTrap`).

"Killed" is the simulator's crash (:meth:`simulator.world.device.SimDevice.crash`): the
installation stops where it is, its tasks and memory are gone, its store keeps exactly what it
had written (a SQLite transaction not committed rolls back; an implementation that writes one
change in several steps keeps the steps it made). The request in flight at the kill is never
answered. The device stays crashed until it is restarted (``world.restart``, or the settle
phase).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CallbackTrap", "CrashPoint", "RequestTrap", "never_answered"]

_POINTS = ("request", "callback", "line")


@dataclass(frozen=True)
class CrashPoint:
    """Where an armed crash lands: exactly one of ``request``, ``callback`` and ``line``
    (counted from the moment it is armed, from 1), and for the first two whether the vault or
    the app has ``applied`` it first."""

    request: int | None = None
    callback: int | None = None
    line: int | None = None
    applied: bool = False

    def __post_init__(self) -> None:
        given = [name for name in _POINTS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "crash_at: give exactly one of request (the n-th vault request), callback (the "
                "n-th callback request) or line (the k-th line a process writes), got "
                f"{', '.join(given) or 'none'}"
            )
        value = getattr(self, given[0])
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"crash_at: {given[0]} must be an integer >= 1, got {value!r}")
        if not isinstance(self.applied, bool):
            raise ValueError(f"crash_at: applied must be true or false, got {self.applied!r}")
        if self.applied and self.line is not None:
            raise ValueError(
                "crash_at: applied goes with request or callback (a line is killed right after "
                "it is read)"
            )

    def describe(self) -> str:
        """The point in words, for the trace."""
        if self.request is not None:
            when = "after the vault applied it" if self.applied else "as it leaves"
            return f"at its vault request #{self.request} from now, {when}"
        if self.callback is not None:
            when = "after the app took the change" if self.applied else "before the app sees it"
            return f"at its callback #{self.callback} from now, {when}"
        return f"after the line #{self.line} its process writes from now (idle not counted)"


class RequestTrap:
    """A crash armed on a device's link: fires at the ``count``-th request from now, as it
    leaves or once the vault applied it (``applied``)."""

    def __init__(self, count: int, applied: bool, fire: Callable[[], None]) -> None:
        self.remaining = count
        self.applied = applied
        self.fire = fire
        self.request_id: int | None = None
        """The trace id of the request the trap waits to see applied (``applied`` only)."""


class CallbackTrap:
    """A crash armed on a device's apps: fires at the ``count``-th callback from now, before
    the app sees the change or once it took it (``applied``)."""

    def __init__(self, count: int, applied: bool, fire: Callable[[], None]) -> None:
        self.remaining = count
        self.applied = applied
        self.fire = fire

    def reached(self) -> bool:
        """Count one callback; whether it is the one the crash waits for."""
        self.remaining -= 1
        return self.remaining == 0


async def never_answered() -> bool:
    """What the helper awaits from a request or callback its device died in: nothing ever
    comes (the crash cancels the waiting task)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable: a future nobody resolves")
