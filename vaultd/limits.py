"""What one request and one connection may cost the development vault (``brh-vault serve``).

The vault runs on shared machines and in CI, and stands for a Hive node in tests: no request or
client may stall it for the others. MongoDB's own limits (16 MiB documents, 100 levels of
nesting, paths and filter depth, 64-bit integers) are Hive semantics and are enforced by the
fake vault itself (:mod:`hivevault.limits`); these are the HTTP server's, each a command-line
option of ``brh-vault serve`` (``--max-body`` and so on).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Limits"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The server's bounds; the defaults suit a development vault shared by a few users."""

    max_body: int = 17 * MIB
    """Bytes of a request body: beyond it, 413 and the connection is closed. A 16 MiB
    document and the request around it fit."""
    max_documents: int = 10_000
    """Documents one insert may carry (a tenth of MongoDB's write batch); beyond it, 400."""
    body_timeout: float = 30.0
    """Seconds to receive a request's body once its head has arrived; beyond it, 408."""
    header_timeout: float = 10.0
    """Seconds a connection has to send a complete request head, from its opening or its
    previous answer; then it is closed."""
    idle_timeout: float = 5.0
    """Seconds an open connection may stay silent between requests (uvicorn's keep-alive,
    rounded to whole seconds, at least 1)."""
    max_connections: int = 64
    """Connections served at once, hence requests in progress. A new connection beyond it takes
    the place of the one idle longest, or is closed at once if none is idle."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{field.name} must be a positive number, got {value!r}")
        if not isinstance(self.max_connections, int) or not isinstance(self.max_documents, int):
            raise ValueError("max_connections and max_documents must be integers")
        if not isinstance(self.max_body, int):
            raise ValueError(f"max_body must be an integer, got {self.max_body!r}")
