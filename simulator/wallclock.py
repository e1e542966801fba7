"""The system clock on simulated time, for implementations that read it themselves.

The reference helper takes its clock as an argument, so the simulator hands each device a
skewed clock of its own. An implementation that calls ``time.time()``, ``datetime.now()`` or
``date.today()`` itself would read the machine's real clock instead, and a run would no longer
replay from its seed. :class:`SystemClock` ties those functions to the virtual-time loop with
freezegun while a world runs:

* when virtual time moves, the system clock moves to the world's true time;
* when the harness calls into a device (a write, a sync, starting or restarting its helper), the
  system clock reads that device's skewed clock, until virtual time next moves.

What is lost against an injected clock: the device's skew and drift are seen only from the moment
the harness calls into a device until virtual time next moves. A device's own background work (a
timer firing, a pass the helper started by itself) reads true time, since several devices share
one loop and the harness cannot tell whose code runs; so does every device between two of its
calls once time has moved. Runs stay deterministic either way: the system clock is a function of
the virtual time and of the calls the scenario makes.

``time.monotonic()`` and ``time.perf_counter()`` are frozen too (freezegun patches them); they
follow true time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SystemClock"]

_IGNORED = (
    "httpx",
    "httpcore",
    "anyio",
    "h11",
    "conformance.protocol",
    "distributed",
    "tornado",
    "dask",
    "concurrent",
    "multiprocessing",
    "rich",
)
"""Modules that keep reading the real clock: the HTTP stack of a live vault, the client of a
process implementation (PROTOCOL.md), and the machinery a world may run inside (a Dask worker's
own threads and event loop, a process pool), whose timeouts are real: frozen, a Dask worker
running a seed stopped heart-beating and hung. (freezegun matches a prefix of
the caller's module, up to five frames up: the loop's own modules must not be listed, or every
coroutine would read the real clock.)"""


def _moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class SystemClock:
    """``time.time()`` and ``datetime.now()`` follow a virtual-time loop while this is active
    (``with SystemClock(loop):`` or :meth:`start` / :meth:`stop`; see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        if not hasattr(loop, "time_listener"):
            raise TypeError(
                "SystemClock: loop must be the simulator's virtual-time loop "
                f"(simulator.timeloop), got {type(loop).__name__}"
            )
        self._loop: Any = loop
        self._freezer: Any = None
        self._frozen: Any = None

    @property
    def active(self) -> bool:
        return self._frozen is not None

    def start(self) -> None:
        """Freeze the system clock at the loop's time, and keep it in step with the loop."""
        if self.active:
            return
        try:
            import freezegun
        except ImportError as exc:  # pragma: no cover - freezegun is in the sim and dev extras
            raise RuntimeError(
                "the system clock of a simulated run needs freezegun: pip install 'brh[sim]'"
            ) from exc
        if self._loop.time_listener is not None:
            raise RuntimeError("SystemClock: the loop's clock already has a listener")
        self._freezer = freezegun.freeze_time(
            _moment(self._loop.time()),
            ignore=list(_IGNORED),
            real_asyncio=True,  # other event loops (a Dask worker's) keep real time
        )
        self._frozen = self._freezer.start()
        self._loop.time_listener = self._follow
        self._loop.on_close(self.stop)  # never outlive the loop, whatever fails before stop()

    def stop(self) -> None:
        """Give the real clock back."""
        if not self.active:
            return
        self._loop.time_listener = None
        self._freezer.stop()
        self._freezer = self._frozen = None

    def __enter__(self) -> SystemClock:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _follow(self, now: float) -> None:
        self._frozen.move_to(_moment(now))

    @contextmanager
    def reading(self, clock: Callable[[], float]) -> Iterator[None]:
        """The system clock reads ``clock`` (a device's) now, and true time again as soon as
        virtual time moves or the block ends. Nothing happens while it is not frozen."""
        if not self.active:
            yield
            return
        self._frozen.move_to(_moment(clock()))
        try:
            yield
        finally:
            if self.active:
                self._frozen.move_to(_moment(self._loop.time()))
