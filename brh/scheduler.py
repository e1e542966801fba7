"""When passes run: single flight, debounced triggers, and retries with backoff.

At most one pass runs and at most one waits; every request made meanwhile joins the waiting
one. A pass that does not complete arms a retry timer (exponential backoff with jitter, reset by
a completed pass). Timers live on the running event loop, so a virtual-time loop drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import Awaitable, Callable

from brh.core import RULES, Rules
from brh.entry import SyncResult
from brh.retry import RetryPolicy

__all__ = ["PassScheduler"]


class PassScheduler:
    """Runs ``run_pass`` on request, one at a time, and retries failed passes by itself."""

    def __init__(
        self,
        run_pass: Callable[[bool], Awaitable[SyncResult]],
        *,
        retry: RetryPolicy,
        rng: random.Random,
        debounce: float,
        device_id: str,
        on_retrying: Callable[[bool], None] = lambda retrying: None,
        rules: Rules = RULES,
    ) -> None:
        self._run_pass = run_pass
        self.retry = retry
        self._retry_delay = rules.retry_delay
        self._wait_for_next = rules.sync_waits_for_next_pass
        self._cancel_on_close = rules.close_cancels_pass
        self.debounce = debounce
        self._rng = rng
        self._device_id = device_id
        self._on_retrying = on_retrying
        self._log = logging.getLogger("brh")
        self.failures = 0
        """Consecutive passes that did not complete."""
        self.last_result: SyncResult | None = None
        self._closed = False
        self._runner: asyncio.Task[None] | None = None
        self._next: asyncio.Future[SyncResult] | None = None
        self._running: asyncio.Future[SyncResult] | None = None
        """The future of the pass that runs now, if any."""
        self._next_full = False
        self._debounce_timer: asyncio.TimerHandle | None = None
        self._retry_timer: asyncio.TimerHandle | None = None

    def request(self, full: bool = False) -> asyncio.Future[SyncResult]:
        """Queue a pass (or join the queued one); the future resolves with its result."""
        loop = asyncio.get_running_loop()
        running = self._running
        if not self._wait_for_next and running is not None and not running.done():
            return running
        if self._next is None:
            self._next = loop.create_future()
            self._next_full = False
        self._next_full = self._next_full or full
        future = self._next
        if self._runner is None:
            # A fresh context: the runner must not inherit a caller's context variables.
            self._runner = loop.create_task(self._run(), context=contextvars.Context())
        return future

    def trigger(self) -> None:
        """Request a pass after the debounce delay; triggers inside the window coalesce."""
        if self._closed or self._debounce_timer is not None:
            return
        self._debounce_timer = asyncio.get_running_loop().call_later(
            self.debounce, self._fire_debounce, context=contextvars.Context()
        )

    async def close(self) -> None:
        """Cancel timers and the running pass; every waiter gets a ``closed`` result."""
        self._closed = True
        for timer in (self._debounce_timer, self._retry_timer):
            if timer is not None:
                timer.cancel()
        self._debounce_timer = self._retry_timer = None
        runner = self._runner
        if runner is not None and not runner.done():
            if self._cancel_on_close:
                runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if self._next is not None and not self._next.done():
            self._next.set_result(SyncResult(False, reason="closed"))
        self._next = None

    def _fire_debounce(self) -> None:
        self._debounce_timer = None
        if not self._closed:
            self.request(False)

    def _fire_retry(self) -> None:
        self._retry_timer = None
        if not self._closed:
            self.request(False)

    async def _run(self) -> None:
        try:
            while self._next is not None and not self._closed:
                future, full = self._next, self._next_full
                self._next = None
                self._running = future
                try:
                    result = await self._run_pass(full)
                except Exception as exc:  # a bug or a broken local store: report, retry
                    self._log.exception("[%s] sync pass failed unexpectedly", self._device_id)
                    result = SyncResult(
                        False, reason="internal_error", error=f"{type(exc).__name__}: {exc}"
                    )
                finally:
                    if not future.done() and self._closed:
                        future.set_result(SyncResult(False, reason="closed"))
                self.last_result = result
                if not future.done():
                    future.set_result(result)
                self._running = None
                self._after(result)
        finally:
            self._runner = None
            self._running = None

    def _after(self, result: SyncResult) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        if result.completed:
            self.failures = 0
            self._on_retrying(False)
            return
        self.failures += 1
        self._on_retrying(True)
        delay = self._retry_delay(self.retry, self.failures, self._rng)
        if delay is None:
            return
        self._log.info(
            "[%s] sync pass did not complete (%s%s); retrying in %.3f s (attempt %d)",
            self._device_id,
            result.reason,
            f": {result.error}" if result.error else "",
            delay,
            self.failures,
        )
        self._retry_timer = asyncio.get_running_loop().call_later(
            delay, self._fire_retry, context=contextvars.Context()
        )
