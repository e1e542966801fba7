"""Hybrid logical clocks and the versions built from them.

A version orders every write to an entry: ``(wall_ms, counter, writer)``. ``wall_ms`` follows the
writing device's clock but never goes behind a version that device has already seen, so a device
whose clock runs hours behind still stamps its later edits after what it observed (Kulkarni et
al., 2014). ``writer`` breaks ties, so all devices pick the same winner.

A version must name one write only, for ever (ORD-1). A device's clock state lives in its local
store, and two things can run a clock that does not know every version the device issued: a
reinstalled app (a fresh store, while the old installation's last write may still be in flight)
and a second helper opened on the same store file. So ``writer`` is not the bare device id but
``<device id>~<incarnation>``, where the incarnation is drawn at random each time a helper opens
its store (:func:`new_incarnation`); two helpers never share one, so they never issue the same
version even when their clocks agree. (Within one store, the store also re-reads the persisted
clock inside each write's transaction, so versions written through one file still increase.)

No I/O: the functions take the current time as an argument, and :class:`HybridClock` reads it
from the clock it is given.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from typing import NamedTuple

__all__ = [
    "LEGACY_WRITER",
    "HybridClock",
    "Version",
    "new_incarnation",
    "next_version",
    "observe",
    "writer_device",
    "writer_id",
]

LEGACY_WRITER = ""
"""Writer part of versions derived from documents the original helper wrote (sorts lowest)."""

INCARNATION_SEPARATOR = "~"
_INCARNATION_BITS = 32

_WALL_DIGITS = 15
_COUNTER_DIGITS = 6
_COUNTER_MAX = 10**_COUNTER_DIGITS - 1


class Version(NamedTuple):
    """A point in the total order of writes: a tuple, compared as ``(wall_ms, counter,
    writer)``.

    ``writer`` is :func:`writer_id`'s ``<device id>~<incarnation>`` for versions this helper
    issues; any string sorts, so versions written by other implementations or by older releases
    (a bare device id) compare just as well.
    """

    wall_ms: int
    counter: int
    writer: str

    def encode(self) -> str:
        """Fixed-width text whose string order is the version order (the ``brhVersion`` field)."""
        return _encode(self)

    @classmethod
    def decode(cls, text: str) -> Version:
        """Parse :meth:`encode`'s output; ``ValueError`` if ``text`` is not a version."""
        return _decode(text)

    @classmethod
    def _parse(cls, text: str) -> Version:
        wall, sep1, rest = text.partition(".")
        counter, sep2, writer = rest.partition(".")
        if (
            not sep1
            or not sep2
            or len(wall) != _WALL_DIGITS
            or len(counter) != _COUNTER_DIGITS
            or not wall.isdigit()
            or not counter.isdigit()
        ):
            raise ValueError(f"not a brh version: {text!r}")
        return cls(int(wall), int(counter), writer)

    @classmethod
    def legacy(cls, modification_date: int) -> Version:
        """The version of a document written by the original helper (no ``brhVersion``)."""
        return cls(modification_date, 0, LEGACY_WRITER)

    @property
    def is_legacy(self) -> bool:
        return self.writer == LEGACY_WRITER

    def __str__(self) -> str:
        return self.encode()


# Versions go to and from text for every record the store reads or writes, every vault filter
# and every event, and the same few over and over: both directions remember recent answers
# (benchmarks/simulator_speed.py: a simulated hour of five devices costs 14% more instructions
# without them). They are process-wide and keep about one version per write until full, some
# 400 bytes a version with both directions: at 4,096 each they took some 20 simulated hours of
# a swarm seed to fill and grew to 3 MiB. At 1,024 they are full after about a thousand writes
# and keep 0.8 MiB, with the same hits in the simulator (a version is looked up again soon
# after it is made, or not for long) and 1% more instructions in benchmarks/sync_cost.py's
# passes over 1,000 entries, whose versions all fit in 4,096 (3% more at 512).

VERSION_CACHE_SIZE = 1024
"""How many versions each of the two caches (to text, from text) keeps."""


@functools.lru_cache(maxsize=VERSION_CACHE_SIZE)
def _decode(text: str) -> Version:
    return Version._parse(text)


@functools.lru_cache(maxsize=VERSION_CACHE_SIZE)
def _encode(version: Version) -> str:
    wall_ms, counter, writer = version
    return f"{wall_ms:0{_WALL_DIGITS}d}.{counter:0{_COUNTER_DIGITS}d}.{writer}"


def new_incarnation(rng: random.Random) -> str:
    """A fresh incarnation: 8 hex digits drawn from ``rng``, once per opening of a store.

    32 random bits, as Yjs draws its client ids: it need only differ between the helpers that
    can issue the same ``(wall_ms, counter)`` for one device, which are few at any time.
    """
    return f"{rng.getrandbits(_INCARNATION_BITS):08x}"


def writer_id(device: str, incarnation: str) -> str:
    """The ``writer`` of the versions a helper issues: ``<device id>~<incarnation>``."""
    return f"{device}{INCARNATION_SEPARATOR}{incarnation}"


def writer_device(writer: str) -> str:
    """The device id of a ``writer`` (:func:`writer_id`'s inverse; a bare device id is itself)."""
    return writer.partition(INCARNATION_SEPARATOR)[0]


def next_version(last: Version | None, now_ms: int, writer: str) -> Version:
    """The stamp of a new local write: after ``last`` and close to ``now_ms``."""
    if last is None or now_ms > last.wall_ms:
        return Version(now_ms, 0, writer)
    if last.counter >= _COUNTER_MAX:
        return Version(last.wall_ms + 1, 0, writer)
    return Version(last.wall_ms, last.counter + 1, writer)


def observe(last: Version | None, seen: Version) -> Version:
    """The clock state after seeing ``seen``: never behind anything observed."""
    if last is None or seen > last:
        return seen
    return last


class HybridClock:
    """A helper's hybrid logical clock: stamps local writes and observes remote versions.

    ``writer`` names this helper in its versions (:func:`writer_id`); ``wall`` returns seconds
    since the epoch (the device clock); ``last`` is the newest version written or seen (persisted
    by the local store with every write, and re-read by it before each stamp).
    """

    def __init__(self, writer: str, wall: Callable[[], float], last: Version | None) -> None:
        self.writer = writer
        self.wall = wall
        self.last = last

    def now_ms(self) -> int:
        """The device clock in whole milliseconds."""
        return math.floor(self.wall() * 1000)

    def stamp(self) -> Version:
        """The version of a new local write."""
        self.last = next_version(self.last, self.now_ms(), self.writer)
        return self.last

    def observe(self, seen: Version) -> None:
        """Never stamp a later write behind ``seen``."""
        self.last = observe(self.last, seen)
