"""Errors the helper raises to its caller (vault errors live in :mod:`brh.vault`)."""

from __future__ import annotations

__all__ = [
    "BrhError",
    "HelperClosedError",
    "InvalidArgumentError",
    "ReentrantCallError",
    "UnknownContextError",
]


class BrhError(Exception):
    """Base class of the helper's own errors."""


class InvalidArgumentError(BrhError, ValueError):
    """An argument was rejected before anything changed.

    ``argument`` names the offending parameter; the message says what was wrong with it.
    """

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class UnknownContextError(InvalidArgumentError, KeyError):
    """The context was never registered with ``add_sync_context``."""

    def __init__(self, context: str) -> None:
        super().__init__(
            "context",
            f"unknown sync context {context!r}; register it first with add_sync_context()",
        )
        self.context = context

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return f"{self.argument}: {self.problem}"


class ReentrantCallError(BrhError, RuntimeError):
    """A sync callback tried to change the helper's entries.

    Callbacks must only update the app's own model: once a callback returns True the helper
    records the remote change itself. Writing from inside a callback would re-stamp the entry
    being restored and echo it back to every device (weakness W11 of the original helper).
    """


class HelperClosedError(BrhError, RuntimeError):
    """The helper was closed; create a new one to continue."""
