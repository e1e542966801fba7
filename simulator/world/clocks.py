"""Clocks that lie: each device, and the vault's host, reads its own clock.

True time is the event loop's virtual time. A :class:`SkewedClock` adds an offset, a drift in
parts per million (it runs fast or slow from the moment drift is set) and jumps forward or
backward, as real clocks do (NTP steps, a user changing the date, a dead RTC battery).
"""

from __future__ import annotations

import asyncio

__all__ = ["SkewedClock"]


class SkewedClock:
    """``clock()`` returns seconds since the epoch as this machine believes it to be."""

    def __init__(self, *, offset: float = 0.0, drift_ppm: float = 0.0) -> None:
        self.offset = offset
        self.drift_ppm = drift_ppm
        self._drift_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def true_time(self) -> float:
        """The virtual time of the loop this clock runs on (also read between two steps of a
        stepped world, when that loop is not running: a harness stamping a message then)."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None:
                raise
        return self._loop.time()

    def __call__(self) -> float:
        now = self.true_time()
        if self._drift_since is None:
            self._drift_since = now
        return now + self.offset + (now - self._drift_since) * self.drift_ppm * 1e-6

    def jump(self, seconds: float) -> None:
        """Step the clock forward (positive) or backward (negative)."""
        self.offset += seconds

    def set_drift(self, ppm: float) -> None:
        """Run fast (positive) or slow (negative) from now on, keeping the current reading."""
        reading = self()
        self.drift_ppm = ppm
        self._drift_since = self.true_time()
        self.offset = reading - self._drift_since

    def error(self) -> float:
        """How far this clock is from true time, in seconds (positive: ahead)."""
        return self() - self.true_time()
