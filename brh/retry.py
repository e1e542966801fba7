"""When to try again: exponential backoff with jitter, reset on success."""

from __future__ import annotations

import random
from dataclasses import dataclass

from brh.errors import InvalidArgumentError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed or refused sync pass is retried without any outside trigger.

    The n-th consecutive failure (n = 1, 2, ...) waits
    ``min(max_delay, initial_delay * multiplier ** (n - 1))`` seconds, scaled by a random factor
    drawn uniformly from ``[1 - jitter, 1]`` so that devices do not retry in lockstep. A pass that
    completes resets the count.
    """

    initial_delay: float = 1.0
    max_delay: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not self.initial_delay > 0:
            raise InvalidArgumentError(
                "initial_delay", f"must be > 0 seconds, got {self.initial_delay!r}"
            )
        if not self.max_delay >= self.initial_delay:
            raise InvalidArgumentError(
                "max_delay",
                f"must be >= initial_delay ({self.initial_delay!r}), got {self.max_delay!r}",
            )
        if not self.multiplier >= 1:
            raise InvalidArgumentError("multiplier", f"must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgumentError("jitter", f"must be in [0, 1], got {self.jitter!r}")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failed passes (``failures >= 1``)."""
        if failures < 1:
            raise InvalidArgumentError("failures", f"must be >= 1, got {failures!r}")
        base = self.initial_delay
        for _ in range(min(failures - 1, 10_000)):  # stepwise: huge counts cannot overflow
            if base >= self.max_delay:
                break
            base *= self.multiplier
        base = min(base, self.max_delay)
        return base * (1.0 - self.jitter * rng.random())
