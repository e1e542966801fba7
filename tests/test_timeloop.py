"""The virtual-time loop's scheduling: what asyncio promises, plus a defined order for ties."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulator.timeloop import VirtualTimeLoop, run


def test_timers_due_together_run_in_the_order_they_were_scheduled() -> None:
    """Determinism (issue 3): timers due at the same virtual instant run first-scheduled
    first, whichever of call_later/call_at scheduled them, and after the ready callbacks."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        now = loop.time()
        for name in "abcdefghij":
            if name in "aeg":
                loop.call_at(now + 5, order.append, name)
            else:
                loop.call_later(5, order.append, name)
        loop.call_later(1, order.append, "early")
        loop.call_soon(order.append, "soon")
        await asyncio.sleep(10)
        return order

    assert run(main()) == ["soon", "early", *"abcdefghij"]


def test_cancelled_timers_never_run_and_time_jumps_past_them() -> None:
    """A cancelled timer does not fire and does not stop time from jumping to the next one;
    many cancellations are compacted away without losing live timers."""

    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        handles = [loop.call_later(i + 1, fired.append, i) for i in range(300)]
        for i, handle in enumerate(handles):
            if i % 3:
                handle.cancel()
        start = loop.time()
        await asyncio.sleep(1000)
        return fired, loop.time() - start

    fired, elapsed = run(main())
    assert fired == list(range(0, 300, 3))
    assert elapsed == pytest.approx(1000)


def test_a_raising_callback_goes_to_the_exception_handler_and_the_loop_goes_on() -> None:
    """A callback that raises is reported as asyncio reports it (message, exception, handle);
    the callbacks after it still run."""
    seen: list[dict[str, Any]] = []

    def boom() -> None:
        raise ValueError("boom")

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: seen.append(context))
        after: list[str] = []
        loop.call_later(1, boom)
        loop.call_later(1, after.append, "after")
        await asyncio.sleep(2)
        return after

    assert run(main()) == ["after"]
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ValueError)
    assert "Exception in callback" in seen[0]["message"] and "boom" in seen[0]["message"]
    assert isinstance(seen[0]["handle"], asyncio.TimerHandle)


def test_a_closed_loop_refuses_new_callbacks_and_debug_mode_checks_them() -> None:
    """As asyncio does: scheduling on a closed loop is an error; in debug mode a coroutine
    function is refused as a callback, with the method named."""
    loop = VirtualTimeLoop()
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_at(1, print)

    async def coroutine_function() -> None:
        return None

    loop = VirtualTimeLoop()
    loop.set_debug(True)
    try:
        with pytest.raises(TypeError, match="call_later"):
            loop.call_later(1, coroutine_function)
        with pytest.raises(TypeError, match="call_soon"):
            loop.call_soon(coroutine_function)
    finally:
        loop.close()
