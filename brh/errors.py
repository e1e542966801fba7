"""Errors the helper raises to its caller (vault errors live in :mod:`brh.vault`)."""

from __future__ import annotations

__all__ = [
    "BrhError",
    "HelperClosedError",
    "InvalidArgumentError",
    "LocalStoreCorruptError",
    "LocalStoreError",
    "LocalStoreReadOnlyError",
    "LocalStoreVersionError",
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


class LocalStoreError(BrhError, RuntimeError):
    """The local store could not be opened.

    ``path`` is the store's file; the message names it, says what went wrong and what to do.
    Raised for what is found at the path (a directory, a missing folder, a lock held elsewhere),
    not for the form of the argument (that is :class:`InvalidArgumentError` naming ``store``):
    the same path can work once the problem is fixed. A failed open leaves nothing open and
    nothing changed. Subclasses single out the cases an app may want to handle apart.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"local store {path!r}: {problem}")
        self.path = path
        self.problem = problem


class LocalStoreReadOnlyError(LocalStoreError):
    """The store's file or its folder cannot be written (permissions, a read-only file system).

    SQLite writes the file and creates journal files beside it (``-wal``, ``-shm``), so both
    the file and its folder must be writable.
    """


class LocalStoreCorruptError(LocalStoreError):
    """The file is not a SQLite database, or SQLite found it damaged.

    What to do: move the file aside (keep it for diagnosis) and open a fresh store at the same
    path; the next sync restores every entry from the vault. Changes made on this device that
    had not reached the vault yet are lost with the damaged file.
    """


class LocalStoreVersionError(LocalStoreError):
    """The store was written by a brh with another store schema version (usually a newer one)."""
