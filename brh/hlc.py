"""Hybrid logical clocks and the versions built from them.

A version orders every write to an entry: ``(wall_ms, counter, device)``. ``wall_ms`` follows the
writing device's clock but never goes behind a version that device has already seen, so a device
whose clock runs hours behind still stamps its later edits after what it observed (Kulkarni et
al., 2014). ``device`` breaks ties, so all devices pick the same winner. No I/O: the functions
take the current time as an argument, and :class:`HybridClock` reads it from the clock it is
given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LEGACY_DEVICE", "HybridClock", "Version", "decode_version", "next_version", "observe"]

LEGACY_DEVICE = ""
"""Device part of versions derived from documents the original helper wrote (sorts lowest)."""

_WALL_DIGITS = 15
_COUNTER_DIGITS = 6
_COUNTER_MAX = 10**_COUNTER_DIGITS - 1


@dataclass(frozen=True, order=True)
class Version:
    """A point in the total order of writes. Comparison is ``(wall_ms, counter, device)``."""

    wall_ms: int
    counter: int
    device: str

    def encode(self) -> str:
        """Fixed-width text whose string order is the version order (the ``brhVersion`` field)."""
        return self._text

    @functools.cached_property
    def _text(self) -> str:
        # Computed once per version (kept in the instance, outside the compared fields): a
        # version is encoded for every store write, vault filter, event and trace line.
        return f"{self.wall_ms:0{_WALL_DIGITS}d}.{self.counter:0{_COUNTER_DIGITS}d}.{self.device}"

    @classmethod
    def decode(cls, text: str) -> Version:
        """Parse :meth:`encode`'s output; ``ValueError`` if ``text`` is not a version."""
        return _decode(text)

    @classmethod
    def _parse(cls, text: str) -> Version:
        wall, sep1, rest = text.partition(".")
        counter, sep2, device = rest.partition(".")
        if (
            not sep1
            or not sep2
            or len(wall) != _WALL_DIGITS
            or len(counter) != _COUNTER_DIGITS
            or not wall.isdigit()
            or not counter.isdigit()
        ):
            raise ValueError(f"not a brh version: {text!r}")
        return cls(int(wall), int(counter), device)

    @classmethod
    def legacy(cls, modification_date: int) -> Version:
        """The version of a document written by the original helper (no ``brhVersion``)."""
        return cls(modification_date, 0, LEGACY_DEVICE)

    @property
    def is_legacy(self) -> bool:
        return self.device == LEGACY_DEVICE

    def __str__(self) -> str:
        return self.encode()


@functools.lru_cache(maxsize=1024)
def _decode(text: str) -> Version:
    """Versions are decoded over and over (every stored record has two): keep recent ones."""
    return Version._parse(text)


decode_version = _decode
"""``Version.decode`` without the classmethod's extra call (for the store's hot paths)."""


def next_version(last: Version | None, now_ms: int, device: str) -> Version:
    """The stamp of a new local write: after ``last`` and close to ``now_ms``."""
    if last is None or now_ms > last.wall_ms:
        return Version(now_ms, 0, device)
    if last.counter >= _COUNTER_MAX:
        return Version(last.wall_ms + 1, 0, device)
    return Version(last.wall_ms, last.counter + 1, device)


def observe(last: Version | None, seen: Version) -> Version:
    """The clock state after seeing ``seen``: never behind anything observed."""
    if last is None or seen > last:
        return seen
    return last


class HybridClock:
    """A device's hybrid logical clock: stamps local writes and observes remote versions.

    ``wall`` returns seconds since the epoch (the device clock); ``last`` is the newest version
    written or seen (persisted by the local store with every write).
    """

    def __init__(self, device: str, wall: Callable[[], float], last: Version | None) -> None:
        self.device = device
        self.wall = wall
        self.last = last

    def now_ms(self) -> int:
        """The device clock in whole milliseconds."""
        return math.floor(self.wall() * 1000)

    def stamp(self) -> Version:
        """The version of a new local write."""
        self.last = next_version(self.last, self.now_ms(), self.device)
        return self.last

    def observe(self, seen: Version) -> None:
        """Never stamp a later write behind ``seen``."""
        self.last = observe(self.last, seen)
