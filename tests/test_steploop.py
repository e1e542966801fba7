"""The implementation side's event loop: time moves only when the harness says so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from conformance.protocol.steploop import SteppedLoop

T0 = 1_750_000_000.0


@pytest.fixture
def loop() -> Iterator[SteppedLoop]:
    loop = SteppedLoop(T0)
    yield loop
    loop.close()


def test_idle_reports_the_earliest_timer_and_time_stays(loop: SteppedLoop) -> None:
    """run_until_idle never moves time; its answer is the exact time of the next timer."""
    fired: list[str] = []
    loop.call_later(2.5, fired.append, "late")
    loop.call_later(0.05, fired.append, "debounce")
    cancelled = loop.call_later(0.01, fired.append, "cancelled")
    cancelled.cancel()
    assert loop.run_until_idle() == T0 + 0.05
    assert fired == [] and loop.time() == T0
    loop.set_time(T0 + 0.05)
    assert loop.run_until_idle() == T0 + 2.5
    assert fired == ["debounce"]
    loop.set_time(T0 + 3)
    assert loop.run_until_idle() is None
    assert fired == ["debounce", "late"]


def test_a_tick_runs_everything_its_timers_make_ready(loop: SteppedLoop) -> None:
    """Sleeps, then work without delay, all in one turn (as tasks do after a timer)."""
    steps: list[str] = []

    async def task() -> None:
        await asyncio.sleep(1)
        steps.append("woke")
        await asyncio.sleep(0)
        steps.append("went on")
        await asyncio.sleep(2)
        steps.append("again")

    loop.create_task(task())
    assert loop.run_until_idle() == T0 + 1
    loop.set_time(T0 + 1)
    assert loop.run_until_idle() == T0 + 3
    assert steps == ["woke", "went on"]


def test_a_timer_just_inside_the_clock_resolution_is_followed_through(
    loop: SteppedLoop,
) -> None:
    """asyncio runs a timer due within its resolution in the very iteration in which the loop
    decided it was idle; what that timer makes ready must still run before idle is reported."""
    done: list[int] = []
    loop.call_at(T0 + 5e-7, lambda: loop.call_soon(done.append, 1))
    assert loop.run_until_idle() is None
    assert done == [1]


def test_the_clock_never_goes_back(loop: SteppedLoop) -> None:
    loop.set_time(T0 + 1)
    with pytest.raises(ValueError, match="before the current time"):
        loop.set_time(T0)
