"""The same workloads on both iterations of the virtual-time loop, which must agree exactly.

:class:`simulator.timeloop.VirtualTimeLoop` runs the trimmed iteration of
:mod:`simulator.timeloop_fast` (asyncio's internals) on the Python versions it is tested
against; :class:`simulator.timeloop.PortableVirtualTimeLoop` runs asyncio's own. Each workload
here runs on both and records what happened, when (exact virtual times) and in which order:
timers due together, cancellations (also of a timer already due in the same iteration), many
cancellations (the heap's sweep), tasks, sleeps, ``wait_for`` and ``asyncio.timeout``, events
and queues, failing callbacks, long jumps, debug mode, a closed loop, stepping from synchronous
code, ``run_until_idle`` with a clock set from outside, a deadlock; then a whole simulated
world, whose trace must be the same bytes.

Standard library and this repository only, so that any installed Python can run it::

    PYTHONPATH=. python3.12 -m tests.simulator.timeloop_equivalence --workload-only   # 0: identical

``tests/simulator/test_timeloop.py`` runs it in process and under every supported Python it finds.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from simulator import timeloop_fast
from simulator.timeloop import PortableVirtualTimeLoop, VirtualDeadlock, VirtualTimeLoop
from simulator.world import simulation

T = TypeVar("T")
START = 1_750_000_000.0
LoopClass = type[PortableVirtualTimeLoop]


class _Log:
    """What a workload saw, one line per event, with the exact virtual time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lines: list[str] = []

    def __call__(self, *what: object) -> None:
        self.lines.append(f"{self.loop.time()!r} " + " ".join(str(part) for part in what))

    def exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        timer = isinstance(context.get("handle"), asyncio.TimerHandle)
        self("error", context["message"], repr(context["exception"]), "timer" if timer else "")


def _boom(label: str) -> None:
    raise ValueError(label)


async def _timers(loop: asyncio.AbstractEventLoop, log: _Log) -> None:
    now = loop.time()
    for index, name in enumerate("abcdefghij"):
        if index % 3 == 0:
            loop.call_at(now + 5, log, "tie", name)
        else:
            loop.call_later(5, log, "tie", name)
    victims: list[asyncio.TimerHandle] = []
    loop.call_later(7, lambda: victims[0].cancel())  # runs first, in its victim's iteration
    victims.append(loop.call_later(7, log, "cancelled while due: must not run"))
    loop.call_later(7, log, "after the cancelled one")
    loop.call_at(now - 3, log, "scheduled in the past")
    loop.call_soon(log, "soon")
    loop.call_soon(_boom, "soon failed")
    loop.call_later(1, _boom, "timer failed")
    handles = [loop.call_later(10 + i * 0.5, log, "kept", i) for i in range(300)]
    for i, handle in enumerate(handles):
        if i % 4:
            handle.cancel()  # most of them: the heap is swept
    await asyncio.sleep(200)
    log("200 s later")
    await asyncio.sleep(3 * 86_400)
    log("three days later")


async def _tasks(loop: asyncio.AbstractEventLoop, log: _Log) -> None:
    rng = random.Random(7)
    event = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=2)

    async def sleeper(name: int) -> int:
        for step in range(4):
            await asyncio.sleep(rng.choice([0, 0.001, 0.05, 0.05, 1.5]))
            log("sleeper", name, step)
        return name

    async def producer() -> None:
        for item in range(6):
            await queue.put(item)
            log("put", item)
            await asyncio.sleep(0.01)
        event.set()

    async def consumer() -> None:
        while not (event.is_set() and queue.empty()):
            item = await queue.get()
            log("got", item)
            await asyncio.sleep(0.02)

    async def slow() -> str:
        await asyncio.sleep(10)
        return "slow done"

    results = await asyncio.gather(*(sleeper(n) for n in range(5)), producer(), consumer())
    log("gathered", results)
    try:
        await asyncio.wait_for(slow(), timeout=2)
    except TimeoutError:
        log("wait_for timed out")
    log("wait_for in time", await asyncio.wait_for(slow(), timeout=20))
    try:
        async with asyncio.timeout(0.25):
            await asyncio.sleep(1)
    except TimeoutError:
        log("timeout fired")
    async with asyncio.timeout(5) as scope:
        scope.reschedule(loop.time() + 6)
        await asyncio.sleep(5.5)
    log("rescheduled timeout did not fire")
    task = asyncio.ensure_future(slow())
    await asyncio.sleep(1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    log("cancelled task", task.cancelled())


def _workload(loop_class: LoopClass, log_lines: list[str]) -> None:
    loop = loop_class(START)
    log = _Log(loop)
    loop.set_exception_handler(log.exception_handler)
    try:
        loop.run_until_complete(_timers(loop, log))
        loop.run_until_complete(_tasks(loop, log))

        # stepping from synchronous code: a task left behind goes on in the next run
        left = loop.create_task(asyncio.sleep(3, "left behind"))
        loop.run_until_complete(asyncio.sleep(1))
        log("between runs", left.done())
        loop.advance(10)  # by hand: due by the next run
        loop.run_until_complete(asyncio.sleep(0))
        log("after advancing", left.result())

        # a clock set from outside (the process protocol): time never moves by itself
        fired: list[float] = []
        for delay in (0.05, 2.5, 2.5, 9.0):
            loop.call_later(delay, fired.append, delay)
        loop.call_later(0.01, lambda: loop.call_soon(log, "made ready by a timer"))
        wake = loop.run_until_idle()
        log("idle", wake, fired)
        while wake is not None:
            loop.set_time(wake)
            wake = loop.run_until_idle()
            log("idle", wake, fired)

        # nothing can ever happen: a deadlock, not a hang
        try:
            loop.run_until_complete(asyncio.Event().wait())
        except VirtualDeadlock as exc:
            log("deadlock", exc)
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))

        # debug mode: asyncio's own checks and handles
        loop.set_debug(True)
        loop.run_until_complete(_timers(loop, log))
        loop.set_debug(False)
    finally:
        loop.close()
    try:
        loop.call_soon(log, "on a closed loop")
    except RuntimeError as exc:
        log("closed", exc)
    log_lines.extend(log.lines)


@contextmanager
def _simulations_on(loop_class: LoopClass) -> Iterator[None]:
    """Every simulated world started in the block runs on ``loop_class``."""

    def run(main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
        with asyncio.Runner(loop_factory=lambda: loop_class(start)) as runner:
            return runner.run(main)

    saved: Callable[..., Any] = simulation.run  # type: ignore[attr-defined]
    simulation.run = run  # type: ignore[attr-defined]
    try:
        yield
    finally:
        simulation.run = saved  # type: ignore[attr-defined]


def _simulation(loop_class: LoopClass, folder: Path, seed: int) -> bytes:
    from simulator.cli.explore import choose_config, run_config

    path = folder / f"{loop_class.__name__}-{seed}.jsonl"
    with _simulations_on(loop_class):
        outcome = run_config(choose_config(seed, duration=900.0), trace_path=path)
    assert outcome.requests > 0
    return path.read_bytes()


def differences(seeds: tuple[int, ...] = (3,)) -> list[str]:
    """What differs between the two iterations (nothing, if they agree)."""
    found: list[str] = []
    fast: list[str] = []
    portable: list[str] = []
    _workload(VirtualTimeLoop, fast)
    _workload(PortableVirtualTimeLoop, portable)
    if fast != portable:
        for index, (one, other) in enumerate(zip(fast, portable, strict=False)):
            if one != other:
                found.append(f"workload line {index}: fast {one!r}, portable {other!r}")
                break
        else:
            found.append(f"workload: {len(fast)} lines on the fast loop, {len(portable)} portable")
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            if _simulation(VirtualTimeLoop, Path(folder), seed) != _simulation(
                PortableVirtualTimeLoop, Path(folder), seed
            ):
                found.append(f"simulation seed {seed}: the traces differ")
    return found


def main(argv: list[str]) -> int:
    """Exit status 0: identical; 1: different; 3: this Python does not use the fast iteration.
    ``--workload-only``: leave the simulated world out."""
    version = ".".join(map(str, sys.version_info[:3]))
    if not timeloop_fast.SUPPORTED:
        print(f"Python {version}: the fast iteration is not used here (not a tested version)")
        return 3
    found = differences(seeds=() if "--workload-only" in argv else (3,))
    for line in found:
        print(line)
    print(f"Python {version}: {'different' if found else 'identical'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
