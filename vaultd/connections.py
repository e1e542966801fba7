"""Connections to the development vault: timeouts and a bound on how many are open.

uvicorn's own HTTP/1.1 protocol (h11) closes a connection that stays silent after an answer
(its keep-alive timeout), but not one that never completes a request head, nor does it bound
how many connections are open: 1,100 sockets that connect and send nothing used up the
process's file descriptors, and every real request then timed out. :func:`server_config` gives
uvicorn a protocol that adds, per :class:`~vaultd.limits.Limits`:

* a header timeout: a connection must deliver a complete request head within
  ``header_timeout`` seconds of opening, or of its previous answer, or it is closed;
* the idle timeout (uvicorn's keep-alive) between requests;
* at most ``max_connections`` connections: a new one beyond it takes the place of the one idle
  longest (no request in progress), or is closed at once if every one is busy. So requests in
  progress are bounded too (h11 serves one request at a time per connection).

Answers keep uvicorn's ``Date`` and ``Server`` headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vaultd.limits import Limits

__all__ = ["protocol_for", "server_config"]


class _Connections:
    """The open connections of one server, and since when each is idle (None: busy)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.idle_since: dict[H11Protocol, float | None] = {}

    def opened(self, connection: H11Protocol, now: float) -> bool:
        """Admit a new connection (True), evicting the longest idle one if full, or refuse it."""
        if len(self.idle_since) >= self.limits.max_connections:
            idle = [(since, id(c), c) for c, since in self.idle_since.items() if since is not None]
            if not idle:
                return False
            _, _, oldest = min(idle)
            self.closed(oldest)
            oldest.transport.close()
        self.idle_since[connection] = now
        return True

    def closed(self, connection: H11Protocol) -> None:
        self.idle_since.pop(connection, None)

    def update(self, connection: H11Protocol, busy: bool, now: float) -> None:
        if connection in self.idle_since:
            if busy:
                self.idle_since[connection] = None
            elif self.idle_since[connection] is None:
                self.idle_since[connection] = now


def protocol_for(limits: Limits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the header timeout and the connection bound of ``limits``
    (one class per server: it holds that server's connections)."""
    connections = _Connections(limits)

    class VaultProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not connections.opened(self, self.loop.time()):
                self._refused = True
                transport.close()
                return
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            connections.closed(self)
            self._stop_waiting()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _busy(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _follow(self) -> None:
            """After h11 moved on: a request in progress stops the head timer; waiting for the
            next one (re)starts it."""
            if self.transport.is_closing():
                return
            busy = self._busy()
            connections.update(self, busy, self.loop.time())
            if busy:
                self._stop_waiting()
            elif self._head_timer is None:
                self._await_head()

        def _await_head(self) -> None:
            self._stop_waiting()
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_too_late)

        def _stop_waiting(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_late(self) -> None:
            self._head_timer = None
            if not self._busy() and not self.transport.is_closing():
                connections.closed(self)
                self.transport.close()

    return VaultProtocol


def server_config(app: Any, limits: Limits, **options: Any) -> uvicorn.Config:
    """A uvicorn configuration serving ``app`` within ``limits`` (``options`` are passed on)."""
    return uvicorn.Config(
        app,
        http=protocol_for(limits),
        timeout_keep_alive=max(1, round(limits.idle_timeout)),
        lifespan="off",
        **options,
    )
