"""Drive a virtual-time event loop one coroutine at a time, from code that is not async.

A caller that is itself synchronous (a Hypothesis state machine's rules, a scenario file's
runner) owns a :class:`Stepper`: :meth:`Stepper.run` runs one coroutine to completion on a
:class:`~simulator.timeloop.VirtualTimeLoop` with ``loop.run_until_complete``. Between two runs
the loop is stopped and virtual time stands still; tasks a run left behind (a retry timer, a
request in flight, a pass started by a debounce) wait on the loop and go on in the next run.
:meth:`Stepper.close` cancels what is left and closes the loop.

Scenario files run this way too, one step per run (see
:class:`simulator.scenarios.files.ScenarioRun`), so a run recorded step by step as a file replays
exactly: the same coroutines in the same order on the same loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from simulator.timeloop import VirtualTimeLoop
from simulator.world import START

__all__ = ["Stepper"]

T = TypeVar("T")


class Stepper:
    """A :class:`VirtualTimeLoop` (starting at ``start``) run one coroutine at a time."""

    def __init__(self, start: float = START) -> None:
        self.loop = VirtualTimeLoop(start)

    @property
    def closed(self) -> bool:
        return self.loop.is_closed()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to completion on the loop (virtual time moves only meanwhile)."""
        if self.closed:
            coroutine.close()
            raise RuntimeError("Stepper.run: the stepper is closed")
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Cancel every task still waiting, finish async generators, close the loop (as
        :func:`asyncio.run` does at the end). Closing twice is harmless."""
        if self.closed:
            return
        try:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
