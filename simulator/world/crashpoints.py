"""Crashes inside a device's work: armed at a point, they kill the device when it gets there.

``world.crash(name)`` kills a device wherever it happens to be at that virtual instant. Many
steps of a pass happen at one instant (a local commit, the next request, a callback's record),
so a crash by time cannot choose between them. A :class:`CrashPoint` can: it names the point by
what the harness sees the implementation do, counted from the moment it is armed
(``world.crash_at(name, ...)``):

* ``request=n``: the device's n-th vault request. With ``applied=False`` the device dies as
  the request leaves: it never reaches the vault. With ``applied=True`` the vault applies it and
  the device dies before the answer arrives (a write that took effect, which the device never
  learnt of: SPEC ORD-5, CB-7). Any implementation, in process or over the protocol: the
  harness's link to the vault counts (:attr:`simulator.world.link.Link.crash_trap`).
* ``line=k``: an implementation run as a process (``--brh-cmd``, PROTOCOL.md) is killed right
  after the harness reads the k-th line it writes (``idle`` lines not counted: each kill lands
  inside a turn), before the harness acts on that line: a result is never delivered, a request
  is never served. What the process did after writing that line and before the signal reached
  it may or may not be on its disk, as with any real crash.
* ``step=k``: an implementation in process is killed at the k-th time one of its tasks
  suspends (an ``await`` that yields to the event loop: a vault request, a callback, a timer, a
  yield inside its own local store's write), counted over every task it started from a call
  of the harness or from a timer it set (:class:`StepTrap`). The one crash point that sees
  inside an implementation's own awaits: an asynchronous local store that awaits in the middle
  of a change is killed there. Tasks the helper started before the crash was armed are not
  counted (their coroutines cannot be wrapped any more): arm it while the device is idle.
* ``callback=n``: the n-th callback request the device makes. With ``applied=False`` the device
  dies as it calls the app, which never sees the change; with ``applied=True`` the app takes
  the change (and updates its model) and the device dies before the helper learns the answer
  (SPEC CB-7: a crash between a callback and the helper's own record redelivers it). Any
  implementation, in process or over the protocol (:class:`CallbackTrap`).

"Killed" is the simulator's crash (:meth:`simulator.world.device.SimDevice.crash`): the
installation stops where it is, its tasks and memory are gone, its store keeps exactly what it
had written (a SQLite transaction not committed rolls back; an implementation that writes one
change in several steps keeps the steps it made). The request in flight at the kill is never
answered. The device stays crashed until it is restarted (``world.restart``, or the settle
phase).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.world.device import SimDevice

__all__ = [
    "DEVICE",
    "CallbackTrap",
    "CrashArming",
    "CrashPoint",
    "RequestTrap",
    "StepTrap",
    "never_answered",
]

DEVICE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "simulator_device", default=None
)
"""The device whose helper the running code works for: set while the harness calls into it
(:meth:`simulator.world.device.SimDevice.as_device`); while a :class:`StepTrap` is armed, the
tasks and timers that device's helper starts carry it too."""

_POINTS = ("request", "callback", "line", "step")


@dataclass(frozen=True)
class CrashPoint:
    """Where an armed crash lands: exactly one of ``request``, ``callback`` and ``line``
    (counted from the moment it is armed, from 1), and for the first two whether the vault or
    the app has ``applied`` it first."""

    request: int | None = None
    callback: int | None = None
    line: int | None = None
    step: int | None = None
    applied: bool = False

    def __post_init__(self) -> None:
        given = [name for name in _POINTS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "crash_at: give exactly one of request (the n-th vault request), callback (the "
                "n-th callback request), line (the k-th line a process writes) or step (the "
                "k-th suspension of an in-process helper's tasks), got "
                f"{', '.join(given) or 'none'}"
            )
        value = getattr(self, given[0])
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"crash_at: {given[0]} must be an integer >= 1, got {value!r}")
        if not isinstance(self.applied, bool):
            raise ValueError(f"crash_at: applied must be true or false, got {self.applied!r}")
        if self.applied and (self.line is not None or self.step is not None):
            raise ValueError(
                "crash_at: applied goes with request or callback (a line or a step is where "
                "the kill lands)"
            )

    def describe(self) -> str:
        """The point in words, for the trace."""
        if self.request is not None:
            when = "after the vault applied it" if self.applied else "as it leaves"
            return f"at its vault request #{self.request} from now, {when}"
        if self.callback is not None:
            when = "after the app took the change" if self.applied else "before the app sees it"
            return f"at its callback #{self.callback} from now, {when}"
        if self.line is not None:
            return f"after the line #{self.line} its process writes from now (idle not counted)"
        return f"at the suspension #{self.step} of its tasks from now"


class RequestTrap:
    """A crash armed on a device's link: fires at the ``count``-th request from now, as it
    leaves or once the vault applied it (``applied``)."""

    def __init__(self, count: int, applied: bool, fire: Callable[[], None]) -> None:
        self.remaining = count
        self.applied = applied
        self.fire = fire
        self.request_id: int | None = None
        """The trace id of the request the trap waits to see applied (``applied`` only)."""


class CallbackTrap:
    """A crash armed on a device's apps: fires at the ``count``-th callback from now, before
    the app sees the change or once it took it (``applied``)."""

    def __init__(self, count: int, applied: bool, fire: Callable[[], None]) -> None:
        self.remaining = count
        self.applied = applied
        self.fire = fire

    def reached(self) -> bool:
        """Count one callback; whether it is the one the crash waits for."""
        self.remaining -= 1
        return self.remaining == 0


async def never_answered() -> bool:
    """What the helper awaits from a request or callback its device died in: nothing ever
    comes (the crash cancels the waiting task)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable: a future nobody resolves")


class StepTrap:
    """Counts the suspensions of one in-process device's tasks; fires at the ``count``-th.

    :meth:`install` puts it on the running loop until it fires or is disarmed: the loop's task
    factory wraps the coroutine of every task created where :data:`DEVICE` is the device (a
    call of the harness into its helper, or a task or timer that helper started: the trap sets
    :data:`DEVICE` in their contexts too, even in a fresh context the helper passes), and each
    time such a coroutine suspends the trap counts. At the ``count``-th, ``fire()`` runs while
    that task is suspended there; the crash then cancels it where it waits. Deterministic on
    the virtual-time loop: the same run suspends in the same order.
    """

    def __init__(self, device: str, count: int, fire: Callable[[], None]) -> None:
        self.device = device
        self.remaining = count
        self.fire = fire
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm it on ``loop`` (the world's)."""
        self._loop = loop
        self._previous = loop.get_task_factory()
        loop.set_task_factory(self._factory)
        call_at, call_later = loop.call_at, loop.call_later
        device = self.device

        def marked(context: contextvars.Context | None) -> contextvars.Context | None:
            if DEVICE.get() != device:
                return context
            context = context if context is not None else contextvars.copy_context()
            context.run(DEVICE.set, device)
            return context

        def at(when: float, callback: Any, *args: Any, context: Any = None) -> Any:
            return call_at(when, callback, *args, context=marked(context))

        def later(delay: float, callback: Any, *args: Any, context: Any = None) -> Any:
            return call_later(delay, callback, *args, context=marked(context))

        # instance attributes shadow the loop's methods while armed (asyncio.sleep, timeouts
        # and the helper's own timers all schedule through these)
        loop.__dict__["call_at"] = at
        loop.__dict__["call_later"] = later

    def disarm(self) -> None:
        """Take it off the loop (once; later calls do nothing)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.set_task_factory(self._previous)
        for name in ("call_at", "call_later"):
            loop.__dict__.pop(name, None)

    def _factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        if DEVICE.get() == self.device and self._loop is not None and asyncio.iscoroutine(coro):
            context = kwargs.get("context") or contextvars.copy_context()
            context.run(DEVICE.set, self.device)
            kwargs["context"] = context
            coro = _counted(coro, self)
        if self._previous is not None:
            task: asyncio.Future[Any] = self._previous(loop, coro, **kwargs)
            return task
        return asyncio.Task(coro, loop=loop, **kwargs)

    def suspended(self) -> None:
        """One of the device's tasks has just suspended: count it; fire at the last."""
        if self._loop is None:
            return
        self.remaining -= 1
        if self.remaining == 0:
            self.disarm()
            self.fire()


async def _counted(coro: Coroutine[Any, Any, Any], trap: StepTrap) -> Any:
    return await _Stepper(coro, trap)


class _Stepper:
    """Awaits ``coro`` step by step (as ``await coro`` would), telling ``trap`` each time the
    coroutine suspends."""

    def __init__(self, coro: Coroutine[Any, Any, Any], trap: StepTrap) -> None:
        self.coro = coro
        self.trap = trap

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            self.trap.suspended()
            try:
                value = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation: into the coroutine, where it waits
                error = exc


class CrashArming:
    """The world's crash points (mixed into :class:`~simulator.world.World`): arm a crash of a
    device inside its work, and carry it out when it fires."""

    _crashing: dict[str, asyncio.Task[None]]
    """Crashes an armed point fired that are still being carried out, by device."""

    if TYPE_CHECKING:
        devices: dict[str, SimDevice]

        def device(self, name: str) -> SimDevice: ...

        def note(self, text: str) -> None: ...

        async def crash(self, name: str) -> None: ...

    def crash_at(
        self,
        name: str,
        *,
        request: int | None = None,
        callback: int | None = None,
        line: int | None = None,
        step: int | None = None,
        applied: bool = False,
    ) -> CrashPoint:
        """Arm a crash of device ``name`` at its ``request``-th vault request or ``callback``-th
        callback from now (before, or once the vault or app ``applied`` it), after the
        ``line``-th line its process writes, or at the ``step``-th suspension of its in-process
        tasks (:mod:`simulator.world.crashpoints`). There it dies as in :meth:`crash` and stays
        crashed until restarted; arming again replaces it, the settle phase disarms it."""
        device = self.device(name)
        if not device.running:
            raise ValueError(f"crash_at: device {name!r} has crashed; restart it first")
        point = CrashPoint(
            request=request, callback=callback, line=line, step=step, applied=applied
        )
        device.arm_crash(point, lambda: self._crash_now(name))
        self.note(f"{name} will crash {point.describe()}")
        return point

    def disarm_crash(self, name: str) -> None:
        """Forget the crash armed on device ``name`` (if any) that has not fired."""
        self.device(name).disarm_crashes()

    def _crash_now(self, name: str) -> None:
        """An armed crash fired: a process dies at once, the rest of the crash follows."""
        device = self.devices[name]
        if not device.running or name in self._crashing:
            return
        device.kill()
        self._crashing[name] = asyncio.get_running_loop().create_task(self._armed_crash(name))

    async def _armed_crash(self, name: str) -> None:
        try:
            await self.crash(name)
        finally:
            self._crashing.pop(name, None)
