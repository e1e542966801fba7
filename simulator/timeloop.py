"""An asyncio event loop on virtual time: time only moves when every task is waiting.

``loop.time()`` returns virtual seconds. When nothing is ready to run, the loop does not block:
it jumps straight to the next scheduled timer (``asyncio.sleep``, ``call_later``, timeouts).
Code under test runs unchanged, its sleeps, debounces and retry backoffs included, and a
simulated day passes in milliseconds. If every task waits and no timer is scheduled, nothing
could ever happen again: the loop raises :class:`VirtualDeadlock` instead of hanging.

No threads, no real waiting: with the same inputs the same callbacks run in the same order.
The one exception is a run against a real vault (:mod:`simulator.live`): while a request to it
is in flight (:meth:`VirtualTimeLoop.real_io`), virtual time stands still and the loop waits
for the real sockets, up to :attr:`VirtualTimeLoop.real_io_timeout` seconds of real time.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import math
import selectors
from asyncio import format_helpers
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, TypeVarTuple, Unpack

__all__ = ["RealIOTimeout", "VirtualDeadlock", "VirtualTimeLoop", "run"]

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")

# asyncio's own constants (base_events): when to compact the timer heap, and the longest wait.
_MIN_SCHEDULED = 100
_MAX_CANCELLED = 0.5
_MAXIMUM_WAIT = 24 * 3600


class VirtualDeadlock(RuntimeError):
    """Every task is waiting and no timer is scheduled: the run can never progress."""


class RealIOTimeout(RuntimeError):
    """A real vault did not answer within the loop's ``real_io_timeout`` (real seconds)."""


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks: a would-be wait advances virtual time instead (unless real I/O is held)."""

    def __init__(self, advance: Callable[[float], None], loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._advance = advance
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._loop.real_io_held and timeout != 0:
            # A request to a real server is in flight: time stands still while we wait for it.
            events: list[tuple[selectors.SelectorKey, int]] = super().select(
                self._loop.real_io_timeout
            )
            if not events:
                raise RealIOTimeout(
                    f"no answer from the real vault within {self._loop.real_io_timeout} s"
                )
            return events
        if timeout is not None:
            # Jump to the next timer (or go on at once). Real file descriptors, only the loop's
            # wake-up pipe here, are not polled on this path: a simulation never waits on real
            # I/O, and thread-safe callbacks reach the ready queue without it.
            self._advance(timeout)
            return []
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready:
            return ready
        raise VirtualDeadlock(
            "every task is waiting and no timer is scheduled: nothing can happen any more "
            "(a future nobody will resolve, or an event nobody will set)"
        )


class _Timer(asyncio.TimerHandle):
    """A :class:`asyncio.TimerHandle` built without the debug bookkeeping (scheduled at once)."""

    __slots__ = ()

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        self._context = context if context is not None else contextvars.copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = True


class _Soon(asyncio.Handle):
    """A :class:`asyncio.Handle` built without the debug bookkeeping."""

    __slots__ = ()

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        self._context = context if context is not None else contextvars.copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual and jumps to the next timer."""

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = float(start)
        self.real_io_held = 0
        """Requests to a real server in flight (see :meth:`real_io`)."""
        self.real_io_timeout = 60.0
        """Real seconds to wait for a real server before :class:`RealIOTimeout`."""
        self._timers: list[tuple[float, int, Any]] = []
        """The scheduled timers: a heap of ``(when, sequence, handle)``."""
        self._sequence = itertools.count()
        super().__init__(selector=_JumpingSelector(self._advance, self))
        # Timers are due when ``when <= time() + resolution``. At epoch-sized times a float's
        # step is about 2e-7 s, so the resolution must be larger than that or a timer could
        # stay a rounding error away from due forever.
        self._clock_resolution = 1e-6

    def _advance(self, seconds: float) -> None:
        if seconds > 0:
            # Always move, even when ``seconds`` is below the float step at this magnitude.
            self._virtual_now = max(
                self._virtual_now + seconds, math.nextafter(self._virtual_now, math.inf)
            )

    def time(self) -> float:
        return self._virtual_now

    @contextmanager
    def real_io(self) -> Iterator[None]:
        """Hold virtual time still while the body awaits a real socket (a live vault)."""
        self.real_io_held += 1
        try:
            yield
        finally:
            self.real_io_held -= 1

    # -- scheduling -------------------------------------------------------------------------
    #
    # asyncio keeps its timers in a heap of TimerHandle objects, which compare through a Python
    # ``__lt__``; a simulation schedules two timers per vault request and spends much of its
    # time there. This loop keeps ``(when, sequence, handle)`` tuples instead, which compare in
    # C, and builds its handles without asyncio's debug bookkeeping. Timers due at the same
    # instant run in the order they were scheduled (asyncio leaves that order undefined).

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
        loop: Any = self  # asyncio's private attributes, which typeshed does not declare
        if loop._closed:
            raise RuntimeError("Event loop is closed")
        if loop._debug:
            self._debug_checks(callback, "call_at")
        timer = _Timer(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

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
        when = self._virtual_now + delay
        loop: Any = self  # asyncio's private attributes, which typeshed does not declare
        if loop._closed:
            raise RuntimeError("Event loop is closed")
        if loop._debug:
            self._debug_checks(callback, "call_later")
        timer = _Timer(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """Schedule ``callback(*args)`` for the next iteration (FIFO)."""
        loop: Any = self  # asyncio's private attributes, which typeshed does not declare
        if loop._closed:
            raise RuntimeError("Event loop is closed")
        if loop._debug:
            self._debug_checks(callback, "call_soon")
        handle = _Soon(callback, args, self, context)
        loop._ready.append(handle)
        return handle

    def _debug_checks(self, callback: Callable[..., object], method: str) -> None:
        loop: Any = self  # asyncio's private helpers, which typeshed does not declare
        loop._check_thread()
        loop._check_callback(callback, method)

    def _run_once(self) -> None:
        """One iteration of the loop, as :class:`asyncio.BaseEventLoop` runs it, minus the
        parts that cost time and do nothing here.

        The same steps in the same order: drop cancelled timers, jump to the next timer if
        nothing is ready, move the timers that are due to the ready queue, run what was ready.
        The selector is only consulted when nothing at all is scheduled (deadlock detection, or
        a real file descriptor): with a timeout it would only have moved the clock. (In debug
        mode the checks of ``call_soon``/``call_at`` run, but slow callbacks are not reported:
        that would read real time.)
        """
        loop: Any = self  # asyncio's private attributes, which typeshed does not declare
        if loop._timer_cancelled_count:
            self._drop_cancelled()
        timers = self._timers
        ready = loop._ready
        if not ready and not loop._stopping:
            if self.real_io_held:
                # a request to a real server is in flight: wait for its socket, time stands still
                loop._process_events(loop._selector.select(self.real_io_timeout))
            elif timers:
                when = timers[0][0]  # jump to it (at most a day at a time, as asyncio waits)
                if when > self._virtual_now:
                    self._virtual_now = min(when, self._virtual_now + _MAXIMUM_WAIT)
            else:
                loop._process_events(loop._selector.select(None))
        end_time = self._virtual_now + self._clock_resolution
        while timers and timers[0][0] < end_time:
            handle = heapq.heappop(timers)[2]
            handle._scheduled = False
            ready.append(handle)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            try:  # Handle._run, inlined
                handle._context.run(handle._callback, *handle._args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._callback_failed(handle, exc)
        handle = None  # as asyncio's own loop: an error's traceback must not hold the handle

    def _drop_cancelled(self) -> None:
        """Take cancelled timers off the heap: all of them when they are most of it (as
        asyncio does), else those at its top."""
        loop: Any = self
        timers = self._timers
        count = len(timers)
        if count > _MIN_SCHEDULED and loop._timer_cancelled_count / count > _MAX_CANCELLED:
            kept = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            self._timers = kept
            loop._timer_cancelled_count = 0
        else:
            while timers and timers[0][2]._cancelled:
                loop._timer_cancelled_count -= 1
                heapq.heappop(timers)[2]._scheduled = False

    def _callback_failed(self, handle: asyncio.Handle, exc: BaseException) -> None:
        """What :meth:`asyncio.Handle._run` does when its callback raises."""
        failed: Any = handle  # its private attributes
        source = format_helpers._format_callback_source(failed._callback, failed._args)
        self.call_exception_handler(
            {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
        )

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by hand (between runs; timers due by then fire next)."""
        if seconds < 0:
            raise ValueError(f"advance: seconds must be >= 0, got {seconds!r}")
        self._virtual_now += seconds


def run(main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop` starting at ``start``."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(main)
