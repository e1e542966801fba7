"""Versions and the hybrid logical clock (SPEC §7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brh.hlc import Version, next_version, observe

devices = st.text(alphabet="abcdef.-_0123456789", min_size=1, max_size=12)
versions = st.builds(Version, st.integers(0, 10**14), st.integers(0, 999_999), devices)


@given(versions, versions)
def test_encoding_preserves_order(a: Version, b: Version) -> None:
    """DATA-3: string order of ``brhVersion`` is version order, and it round-trips."""
    assert Version.decode(a.encode()) == a
    assert (a.encode() < b.encode()) == (a < b)


def test_decode_rejects_garbage() -> None:
    """DATA-4: a malformed ``brhVersion`` is not a version (the document is treated as legacy)."""
    for bad in ["", "12.3.x", "000000000000001.00000.a", "x" * 15 + ".000000.a"]:
        with pytest.raises(ValueError):
            Version.decode(bad)


@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=50))
def test_local_writes_strictly_increase_whatever_the_clock_does(clock: list[int]) -> None:
    """ORD-1: each write's version is after the previous one, even if the clock goes backwards."""
    last = None
    for now_ms in clock:
        version = next_version(last, now_ms, "dev")
        assert last is None or version > last
        assert version.wall_ms >= now_ms or (last is not None and version.wall_ms >= last.wall_ms)
        last = version


def test_a_slow_device_still_writes_after_what_it_has_seen() -> None:
    """ORD-3: after observing a version from a clock hours ahead, the next write is later."""
    seen = Version(1_750_000_000_000 + 3 * 3600_000, 0, "fast")
    state = observe(next_version(None, 1_750_000_000_000, "slow"), seen)
    mine = next_version(state, 1_750_000_000_500, "slow")
    assert mine > seen
    assert mine.wall_ms == seen.wall_ms and mine.counter == 1


def test_ties_are_broken_by_device() -> None:
    """ORD-2: two writes at the same wall time and counter still have a total order (W8)."""
    a, b = Version(5, 0, "a"), Version(5, 0, "b")
    assert a < b and a != b
    assert Version.legacy(5) < a  # legacy documents lose ties (DATA-4)


def test_counter_overflow_moves_to_the_next_millisecond() -> None:
    """ORD-1: a burst of a million writes in one millisecond still stays ordered."""
    version = next_version(Version(10, 999_999, "d"), 10, "d")
    assert version == Version(11, 0, "d")
