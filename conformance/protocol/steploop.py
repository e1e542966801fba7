"""An asyncio event loop for the implementation side of the protocol: the harness sets its time.

The harness owns the clock. :class:`SteppedLoop` never waits and never moves time by itself:
:meth:`SteppedLoop.run_until_idle` runs every ready callback and every timer due by the current
time, and stops as soon as all that is left is waiting (for a reply, or for a timer); it returns
the time of the earliest pending timer, which becomes the ``wake_at`` of the ``idle`` message.
On a ``tick`` the harness's ``mono`` becomes the loop's time (:meth:`SteppedLoop.set_time`) and
the timers due by then run.

Code on this loop uses ``asyncio.sleep``, ``call_later`` and timeouts unchanged: their deadlines
are read from ``loop.time()``, which is the harness's ``mono``.
"""

from __future__ import annotations

import asyncio
import contextvars
import selectors
from collections.abc import Callable
from typing import TypeVarTuple, Unpack

__all__ = ["SteppedLoop"]

_Ts = TypeVarTuple("_Ts")

_RESOLUTION = 1e-6
"""Timers within this much of the current time are due (asyncio's clock resolution; the float
step of epoch-sized seconds is about 2e-7, so it must be larger than that)."""


class _NeverWaitingSelector(selectors.DefaultSelector):
    """Polls, and instead of blocking asks the loop to stop: the loop is idle."""

    def __init__(self, stop: Callable[[], None]) -> None:
        super().__init__()
        self._stop = stop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            # Nothing is ready: every task waits for a reply or a timer. asyncio still runs the
            # timers due within its clock resolution in this iteration; run_until_idle checks.
            self._stop()
            return []
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        return ready


class SteppedLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock only moves when :meth:`set_time` is called."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._timers: list[asyncio.TimerHandle] = []
        super().__init__(selector=_NeverWaitingSelector(self.stop))
        self._clock_resolution = _RESOLUTION

    def time(self) -> float:
        return self._now

    def set_time(self, now: float) -> None:
        """Move the clock to ``now`` (never backwards: the harness's ``mono`` is monotonic)."""
        if now < self._now:
            raise ValueError(f"set_time: {now!r} is before the current time {self._now!r}")
        self._now = float(now)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        # Every timer (call_later and asyncio.sleep come through here) is remembered, so that
        # the next wake-up time is known exactly, without reading asyncio's private heap.
        handle = super().call_at(when, callback, *args, context=context)
        self._timers.append(handle)
        return handle

    def _prune(self) -> bool:
        """Forget cancelled timers and those already due; whether any was due."""
        due_by = self._now + _RESOLUTION  # asyncio's own test for a due timer
        due = False
        pending = []
        for handle in self._timers:
            if handle.cancelled():
                continue
            if handle.when() < due_by:
                due = True
            else:
                pending.append(handle)
        self._timers = pending
        return due

    def run_until_idle(self) -> float | None:
        """Run until every task waits; the time of the earliest pending timer, or None."""
        while True:
            self.run_forever()
            # The selector stops the loop when nothing is ready. In that last iteration asyncio
            # may still have run timers due within its resolution, and they may have made more
            # work ready: go round again until a round ran no timer at all. (A round after the
            # clock moved always finds the timers it made due, and goes round once more.)
            if not self._prune():
                break
        return min((handle.when() for handle in self._timers), default=None)
