"""A device's link to the vault, with the simple faults the first tests need.

``down`` refuses every request (a definite network error: it never reached the vault);
``lose_answers`` applies that many upcoming writes but loses their answers (an indefinite error);
``latency`` makes each request take virtual time, so concurrent passes interleave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from brh.vault import NetworkError, Vault

__all__ = ["Link"]

_WRITES = frozenset(
    {"insert_one", "insert_many", "update_one", "update_many", "delete_one", "delete_many"}
)
_OPERATIONS = _WRITES | {
    "create_collection",
    "delete_collection",
    "find_one",
    "find_many",
    "query",
    "count_documents",
}


class Link:
    """Wraps a vault and implements the same protocol, adding faults and latency."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.down = False
        self.lose_answers = 0
        self.latency = 0.0

    def __getattr__(self, name: str) -> Any:
        if name not in _OPERATIONS:
            raise AttributeError(name)
        target: Callable[..., Awaitable[Any]] = getattr(self.vault, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise NetworkError(f"{name}: vault unreachable", definite=True)
            if self.latency:
                await asyncio.sleep(self.latency)
            result = await target(*args, **kwargs)
            if name in _WRITES and self.lose_answers > 0:
                self.lose_answers -= 1
                raise NetworkError(f"{name}: the answer was lost", definite=False)
            return result

        return call
