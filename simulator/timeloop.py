"""An asyncio event loop on virtual time: time only moves when every task is waiting.

``loop.time()`` returns virtual seconds. When nothing is ready to run, the loop does not block:
it jumps straight to the next scheduled timer (``asyncio.sleep``, ``call_later``, timeouts).
Code under test runs unchanged, its sleeps, debounces and retry backoffs included, and a
simulated day passes in milliseconds. If every task waits and no timer is scheduled, nothing
could ever happen again: the loop raises :class:`VirtualDeadlock` instead of hanging.

The same loop serves the three ways the project drives virtual time:

* a whole simulation at once, jumping from timer to timer: :func:`run`;
* one coroutine at a time from synchronous code, time standing still between two runs:
  ``loop.run_until_complete`` (:class:`simulator.stepping.Stepper` wraps it);
* a clock set from outside, never moved by the loop itself (the implementation side of the
  process protocol, whose harness owns the clock): :meth:`VirtualTimeLoop.run_until_idle` runs
  what is ready and due and returns the time of the next timer, :meth:`VirtualTimeLoop.set_time`
  moves the clock.

No threads, no real waiting: with the same inputs the same callbacks run in the same order, and
timers due at the same instant run in the order they were scheduled (asyncio leaves that order
undefined). The one exception is a run against a real vault (:mod:`simulator.live`): while a
request to it is in flight (:meth:`VirtualTimeLoop.real_io`), virtual time stands still and the
loop waits for the real sockets, up to :attr:`VirtualTimeLoop.real_io_timeout` seconds of real
time.

How, with asyncio's public interfaces only (as trio's ``MockClock`` is a clock given to the run
loop, not a patched run loop): :class:`PortableVirtualTimeLoop` overrides ``time()``, keeps its
timers itself (``call_at`` and ``call_later`` are public and overridable) and is given a
selector whose ``select`` never blocks. asyncio asks the selector once per iteration, without a
timeout exactly when nothing is ready and the loop is not stopping (the loop keeps no timers in
asyncio's own queue, so asyncio never computes a timeout); the selector then jumps the clock to
the next timer. Each time, it hands the timers that are due to asyncio's ready queue with
``call_soon``, and they run in that same iteration. asyncio's own ``_run_once`` runs unchanged.

Letting asyncio keep the timers, and overriding only ``time()`` and the selector, would not do:
timers due together would run in its heap's order, and at epoch-sized times a timer due exactly
now would never be due (asyncio's resolution is below a float's step there): the loop would
spin.

:class:`VirtualTimeLoop`, the loop everything uses, is the portable loop with a trimmed copy of
asyncio's iteration plugged in on the Python versions it is tested against:
:mod:`simulator.timeloop_fast` says why (speed: the portable iteration costs up to 29% more per
simulated request) and how it is kept honest.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import selectors
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, TypeVarTuple, Unpack

from simulator import timeloop_fast

__all__ = [
    "PortableVirtualTimeLoop",
    "RealIOTimeout",
    "VirtualDeadlock",
    "VirtualTimeLoop",
    "run",
]

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")

RESOLUTION = 1e-6
"""A timer is due when ``when < time() + RESOLUTION``. At epoch-sized times a float's step is
about 2e-7 s, so the resolution must be larger than that or a timer could stay a rounding error
away from due forever (asyncio's own resolution, the system clock's, is 1e-9)."""

_SWEEP_MIN = 100
"""Cancelled timers stay in the heap until they reach its top; once it holds more than this and
twice what the last sweep kept, a sweep drops them all (asyncio compacts its queue likewise)."""

_Entry = tuple[
    float, int, asyncio.TimerHandle, Callable[..., object], tuple[Any, ...], contextvars.Context
]
"""A scheduled timer: ``(when, sequence, handle, callback, args, context)``. The sequence breaks
ties, so timers due together run first-scheduled first; tuples compare in C."""


class VirtualDeadlock(RuntimeError):
    """Every task is waiting and no timer is scheduled: the run can never progress."""


class RealIOTimeout(RuntimeError):
    """A real vault did not answer within the loop's ``real_io_timeout`` (real seconds)."""


class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks: where asyncio would wait, the loop's clock moves instead."""

    def __init__(self, loop: PortableVirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        if loop._release_due() or timeout is not None:
            return []  # something is ready to run in this iteration
        return loop._idle()  # nothing is ready and nothing is due: every task is waiting

    def poll(self, timeout: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Real file descriptors (the loop's wake-up pipe, a real vault's sockets)."""
        events: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        return events


class PortableVirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual and jumps to the next timer, through asyncio's
    public interfaces only.

    ``start``: the virtual time at which the clock starts (seconds, any origin)."""

    resolution = RESOLUTION
    """A timer is due when ``when < time() + resolution`` (see :data:`RESOLUTION`)."""

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = float(start)
        self.real_io_held = 0
        """Requests to a real server in flight (see :meth:`real_io`)."""
        self.real_io_timeout = 60.0
        """Real seconds to wait for a real server before :class:`RealIOTimeout`."""
        self._timers: list[_Entry] = []
        """The scheduled timers, a heap of :data:`_Entry`; cancelled ones are dropped lazily."""
        self._sweep_at = _SWEEP_MIN
        self._sequence = itertools.count()
        self._jumps = True
        """Whether an idle loop jumps to its next timer (False inside :meth:`run_until_idle`)."""
        self._virtual_selector = _VirtualSelector(self)
        self.time_listener: Callable[[float], None] | None = None
        """Called with the new time whenever the clock moves (by a jump to the next timer,
        :meth:`advance` or :meth:`set_time`); :mod:`simulator.wallclock` keeps the system clock
        in step through it."""
        self._closers: list[Callable[[], None]] = []
        super().__init__(selector=self._virtual_selector)

    # -- the clock --------------------------------------------------------------------------

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by hand (between runs; timers due by then fire next)."""
        if seconds < 0:
            raise ValueError(f"advance: seconds must be >= 0, got {seconds!r}")
        self._virtual_now += seconds
        if self.time_listener is not None:
            self.time_listener(self._virtual_now)

    def set_time(self, now: float) -> None:
        """Set the clock to ``now`` (between runs; never backwards)."""
        if now < self._virtual_now:
            raise ValueError(f"set_time: {now!r} is before the current time {self._virtual_now!r}")
        self._virtual_now = float(now)
        if self.time_listener is not None:
            self.time_listener(self._virtual_now)

    def next_timer(self) -> float | None:
        """The time of the earliest timer still scheduled, or None."""
        timers = self._timers
        while timers and timers[0][2].cancelled():
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def run_until_idle(self) -> float | None:
        """Run what is ready and every timer due by the current time, and what they make ready,
        until every task waits; the time of the next timer (or None). Time does not move: the
        caller moves it (:meth:`set_time`, :meth:`advance`) and runs again."""
        self._jumps = False
        try:
            self.run_forever()
        finally:
            self._jumps = True
        return self.next_timer()

    @contextmanager
    def real_io(self) -> Iterator[None]:
        """Hold virtual time still while the body awaits a real socket (a live vault)."""
        self.real_io_held += 1
        try:
            yield
        finally:
            self.real_io_held -= 1

    # -- scheduling -------------------------------------------------------------------------

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback(*args)`` at virtual time ``when`` (see :meth:`call_later`)."""
        if when is None:
            raise TypeError("when cannot be None")
        return self._schedule(when, callback, args, context, "call_at")

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback(*args)`` ``delay`` virtual seconds from now."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self._schedule(self._virtual_now + delay, callback, args, context, "call_later")

    def _schedule(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
        method: str,
    ) -> asyncio.TimerHandle:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        if self.get_debug():
            _refuse_non_callback(callback, method)
        if context is None:
            context = contextvars.copy_context()
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        timers = self._timers
        heapq.heappush(timers, (when, next(self._sequence), handle, callback, args, context))
        if len(timers) > self._sweep_at:
            self._sweep()
        return handle

    def _sweep(self) -> None:
        """Drop every cancelled timer from the heap."""
        kept = [entry for entry in self._timers if not entry[2].cancelled()]
        heapq.heapify(kept)
        self._timers = kept
        self._sweep_at = max(_SWEEP_MIN, 2 * len(kept))

    def _release_due(self) -> bool:
        """Hand the timers due by now to asyncio's ready queue; whether there were any."""
        timers = self._timers
        due_by = self._virtual_now + self.resolution
        released = False
        while timers and timers[0][0] < due_by:
            _, _, handle, callback, args, context = heapq.heappop(timers)
            if not handle.cancelled():
                # The wrapper runs outside the timer's context, which it enters for the callback
                # only: asyncio (3.12+) runs the exception handler in that context.
                self.call_soon(
                    self._fire, handle, callback, args, context, context=contextvars.Context()
                )
                released = True
        return released

    def _fire(
        self,
        handle: asyncio.TimerHandle,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        """Run a due timer unless it was cancelled since; report a failure as asyncio does."""
        if handle.cancelled():
            return
        try:
            context.run(callback, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._timer_failed(handle, exc)

    def _timer_failed(self, handle: asyncio.TimerHandle, exc: BaseException) -> None:
        """A timer's callback raised: to the exception handler, as asyncio reports it."""
        self.call_exception_handler(
            {"message": f"Exception in callback {handle!r}", "exception": exc, "handle": handle}
        )

    def _idle(self) -> list[tuple[selectors.SelectorKey, int]]:
        """Nothing is ready and nothing is due: wait on real I/O, stop, or jump the clock."""
        selector = self._virtual_selector
        if self.real_io_held:
            # A request to a real server is in flight: time stands still while we wait for it.
            events = selector.poll(self.real_io_timeout)
            if not events:
                raise RealIOTimeout(
                    f"no answer from the real vault within {self.real_io_timeout} s"
                )
            return events
        if not self._jumps:
            self.stop()  # run_until_idle: the caller moves time
            return []
        when = self.next_timer()
        if when is None:
            # No timer: only a thread-safe callback (the wake-up pipe) could still wake us.
            events = selector.poll(0)
            if events:
                return events
            raise VirtualDeadlock(
                "every task is waiting and no timer is scheduled: nothing can happen any more "
                "(a future nobody will resolve, or an event nobody will set)"
            )
        if when > self._virtual_now:
            self._virtual_now = when
            if self.time_listener is not None:
                self.time_listener(when)
        self._release_due()
        return []

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the loop closes (a frozen system clock is given back then,
        at the latest, whatever failed before)."""
        self._closers.append(callback)

    def close(self) -> None:
        try:
            super().close()
            self._timers.clear()
        finally:
            closers, self._closers = self._closers, []
            for closer in closers:
                closer()


class VirtualTimeLoop(PortableVirtualTimeLoop):
    """The virtual-time loop: :class:`PortableVirtualTimeLoop`, with the trimmed iteration and
    light handles of :mod:`simulator.timeloop_fast` (which says why) on the Python versions they
    are tested against; elsewhere exactly the portable loop. Both run the same callbacks in the
    same order at the same virtual times."""

    if timeloop_fast.SUPPORTED:
        _run_once = timeloop_fast.run_once
        _release_due = timeloop_fast.release_due
        call_at = timeloop_fast.call_at  # type: ignore[assignment]
        call_later = timeloop_fast.call_later  # type: ignore[assignment]
        call_soon = timeloop_fast.call_soon  # type: ignore[assignment]


def _refuse_non_callback(callback: Callable[..., object], method: str) -> None:
    """Debug mode: a coroutine function is not a callback (as asyncio checks it)."""
    if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")


def run(main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop` starting at ``start``."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(main)
