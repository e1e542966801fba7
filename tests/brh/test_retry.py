"""Backoff of failed passes (SPEC §5)."""

from __future__ import annotations

import random

import pytest

from brh import InvalidArgumentError, RetryPolicy


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    """RETRY-2: without jitter the n-th delay is initial * multiplier^(n-1), capped."""
    policy = RetryPolicy(initial_delay=1, max_delay=10, multiplier=2, jitter=0)
    rng = random.Random(1)
    assert [policy.delay(n, rng) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.delay(10**9, rng) == 10  # no overflow however long it failed


def test_jitter_stays_within_its_band_and_is_seeded() -> None:
    """RETRY-2: jitter scales each delay by a factor in [1 - jitter, 1], reproducibly."""
    policy = RetryPolicy(initial_delay=4, max_delay=4, jitter=0.5)
    first = [policy.delay(3, random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1  # same seed, same draw
    draws = [policy.delay(1, rng) for rng in [random.Random(s) for s in range(200)]]
    assert all(2.0 <= d <= 4.0 for d in draws)
    assert max(draws) - min(draws) > 1.0  # it does spread


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"initial_delay": 0}, "initial_delay"),
        ({"initial_delay": 5, "max_delay": 1}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_bad_policies_name_the_argument(kwargs: dict[str, float], argument: str) -> None:
    """ERR-1: a bad retry option is refused with an error naming it."""
    with pytest.raises(InvalidArgumentError) as info:
        RetryPolicy(**kwargs)
    assert info.value.argument == argument
