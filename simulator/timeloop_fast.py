"""The virtual-time loop's speed piece: the one module that uses asyncio's internals.

:class:`simulator.timeloop.PortableVirtualTimeLoop` keeps virtual time through asyncio's public
interfaces only and runs asyncio's own iteration (``BaseEventLoop._run_once``) unchanged. In a
simulation that costs: a simulated vault request takes three iterations, two timers and a task
wake-up, and asyncio spends them on calls that do nothing on virtual time (asking the selector,
reading the clock, processing no events, a frame per callback), while a due timer can only reach
asyncio's ready queue through ``call_soon`` as a second handle with a wrapper, and every handle
is built with asyncio's debug bookkeeping. Instructions per unit, measured with ``valgrind
--tool=cachegrind`` on ``benchmarks/simulator_speed.py``'s rows (Python 3.11.7), the previous
custom loop -> the portable loop -> with this module:

* raw requests: 201.7k -> 259.6k (+28.7%) -> 214.0k (+6.1%);
* requests on a 2,000-document collection: 403.8k -> 461.4k (+14.3%) -> 416.3k (+3.1%);
* 5 devices, per device-minute: 3.29M -> 3.45M (+4.8%) -> 3.31M (+0.8%);
* swarm, per seed: 731M -> 801M (+9.6%) -> 742M (+1.4%).

So :class:`simulator.timeloop.VirtualTimeLoop` replaces five methods with the functions below,
on the Python versions they are tested against (:data:`TESTED_VERSIONS`); on any other the
portable loop runs. ``run_once`` is asyncio's iteration with the portable selector's work
inlined; ``release_due`` puts due timers on the ready queue as they are; ``call_at``,
``call_later`` and ``call_soon`` build handles without the debug bookkeeping (in debug mode, or
on a closed loop, the portable methods run). They read asyncio's private ``_ready``,
``_stopping``, ``_closed``, ``_debug`` and ``_process_events``, and the handles' private slots,
as ``BaseEventLoop._run_once`` and ``Handle.__init__`` do in 3.11, 3.12 and 3.13.

What keeps them honest: ``tests/simulator/timeloop_equivalence.py`` runs the same workloads on
both loops and requires the same callbacks in the same order at the same virtual times (and,
for a simulated world, the same trace bytes); ``tests/simulator/test_timeloop.py`` runs it under
each supported Python that is installed. It caught, for instance, that 3.13 prints a failing
callback's arguments in debug mode only (``_callback_source`` below).
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import SelectorEventLoop, format_helpers
from collections.abc import Callable
from contextvars import Context, copy_context
from heapq import heappop, heappush
from typing import Any

__all__ = [
    "SUPPORTED",
    "TESTED_VERSIONS",
    "call_at",
    "call_later",
    "call_soon",
    "release_due",
    "run_once",
]

TESTED_VERSIONS = ((3, 11), (3, 12), (3, 13))
"""The Python versions whose asyncio this module is written against and tested on."""

SUPPORTED = sys.version_info[:2] in TESTED_VERSIONS
"""Whether :class:`simulator.timeloop.VirtualTimeLoop` uses this module on this Python."""


def release_due(loop: Any) -> bool:
    """Move the timers due by now to asyncio's ready queue, themselves (no second handle, no
    wrapper: the iteration below runs them and skips them if cancelled meanwhile)."""
    timers = loop._timers
    due_by = loop._virtual_now + loop.resolution
    if not timers or timers[0][0] >= due_by:
        return False
    ready = loop._ready
    released = False
    while timers and timers[0][0] < due_by:
        handle = heappop(timers)[2]
        if not handle._cancelled:
            ready.append(handle)
            released = True
    return released


def run_once(loop: Any) -> None:
    """One iteration of the loop: what the portable loop's selector and asyncio's
    ``BaseEventLoop._run_once`` do together, in the same order, minus the calls that do nothing
    on virtual time.

    Due timers join the ready queue; if nothing is ready, the loop goes idle (waits on real
    I/O, stops, or jumps to its next timer); then what was ready at that point runs, and what it
    makes ready waits for the next iteration. (In debug mode slow callbacks are not reported:
    that would read real time; on virtual time none is slow.)
    """
    ready = loop._ready
    timers = loop._timers
    due = timers and timers[0][0] < loop._virtual_now + loop.resolution and release_due(loop)
    if not due and not ready and not loop._stopping:
        events = loop._idle()
        if events:
            loop._process_events(events)
    for _ in range(len(ready)):
        handle = ready.popleft()
        if handle._cancelled:
            continue
        try:  # Handle._run, inlined
            handle._context.run(handle._callback, *handle._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            _failed(loop, handle, exc)
    handle = None  # as asyncio's own loop: an error's traceback must not hold the handle


def _failed(loop: Any, handle: Any, exc: BaseException) -> None:
    """Report a failed callback as the portable loop does (a timer) or as asyncio does."""
    if isinstance(handle, asyncio.TimerHandle):
        loop._timer_failed(handle, exc)
        return
    source = _callback_source(handle)
    context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    loop.call_exception_handler(context)


if sys.version_info >= (3, 13):  # asyncio shows a callback's arguments in debug mode only

    def _callback_source(handle: Any) -> str:
        return format_helpers._format_callback_source(
            handle._callback, handle._args, debug=handle._loop.get_debug()
        )

else:

    def _callback_source(handle: Any) -> str:
        return format_helpers._format_callback_source(handle._callback, handle._args)


class TimerHandle(asyncio.TimerHandle):
    """asyncio's timer handle, built without the debug bookkeeping (and named as asyncio's, so
    that it prints the same)."""

    __slots__ = ()

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: Context,
    ) -> None:
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False


class Handle(asyncio.Handle):
    """asyncio's handle, built without the debug bookkeeping (named as asyncio's, likewise)."""

    __slots__ = ()

    def __init__(
        self, callback: Callable[..., object], args: tuple[Any, ...], loop: Any, context: Context
    ) -> None:
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


def call_at(
    loop: Any,
    when: float,
    callback: Callable[..., object],
    *args: Any,
    context: Context | None = None,
) -> asyncio.TimerHandle:
    """The portable ``call_at`` without its checks' frames (in debug mode, or on a closed loop,
    the portable one runs them)."""
    if when is None:
        raise TypeError("when cannot be None")
    if loop._closed or loop._debug:
        return loop._schedule(when, callback, args, context, "call_at")  # type: ignore[no-any-return]
    return _push(loop, when, callback, args, context)


def call_later(
    loop: Any,
    delay: float,
    callback: Callable[..., object],
    *args: Any,
    context: Context | None = None,
) -> asyncio.TimerHandle:
    """The portable ``call_later``, likewise."""
    if delay is None:
        raise TypeError("delay must not be None")
    when = loop._virtual_now + delay
    if loop._closed or loop._debug:
        return loop._schedule(when, callback, args, context, "call_later")  # type: ignore[no-any-return]
    return _push(loop, when, callback, args, context)


def _push(
    loop: Any,
    when: float,
    callback: Callable[..., object],
    args: tuple[Any, ...],
    context: Context | None,
) -> asyncio.TimerHandle:
    if context is None:
        context = copy_context()
    handle = TimerHandle(when, callback, args, loop, context)
    timers = loop._timers
    heappush(timers, (when, next(loop._sequence), handle, callback, args, context))
    if len(timers) > loop._sweep_at:
        loop._sweep()
    return handle


def call_soon(
    loop: Any, callback: Callable[..., object], *args: Any, context: Context | None = None
) -> asyncio.Handle:
    """asyncio's ``call_soon`` without the frames it spends on checks (in debug mode, or on a
    closed loop, asyncio's own runs them)."""
    if loop._closed or loop._debug:
        return SelectorEventLoop.call_soon(loop, callback, *args, context=context)
    handle = Handle(callback, args, loop, context if context is not None else copy_context())
    loop._ready.append(handle)
    return handle
