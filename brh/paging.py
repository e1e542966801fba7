"""The bookkeeping of a pull's pages: what a page read moves, and where the next page starts.

A pull (:meth:`brh.machine._ContextPass.pull`) reads pages in the vault's ``(modified, _id)``
order (SYNC-4, SYNC-9). After each page the context's progress is the newest stamp read (the
cursor, never behind the stored one), the highest stamp seen, and the ``(stamp, brhVersion)``
of the documents read inside the overlap window; the next page starts after the page's last
``(modified, _id)`` (keyset paging). These pure functions compute both from the raw page, the
same for a page of whole documents as for a page of their projection.
"""

from __future__ import annotations

from typing import Any

from brh.vault import Document

__all__ = ["Keyset", "Progress", "newest", "next_page", "page_progress"]

Keyset = tuple[int, Any]
"""The ``(modified, _id)`` after which the next page starts."""

Progress = tuple[int | None, int | None, set[tuple[int, str]]]
"""``(cursor, max_stamp, window)`` of a pull."""


def newest(a: int | None, b: int | None) -> int | None:
    """The higher of two stamps, either of which may be unknown."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def page_progress(progress: Progress, raw: list[Document]) -> tuple[Progress, list[int]]:
    """The progress once ``raw`` (a page, in pull order) is read, and the page's stamps.

    A page without vault stamps (documents Hive's default client never wrote) moves nothing.
    """
    cursor, max_stamp, window = progress
    stamps = [d["modified"] for d in raw if isinstance(d.get("modified"), int)]
    if not stamps:
        return progress, stamps
    page_cursor = stamps[-1] if cursor is None else max(cursor, stamps[-1])
    page_window = window | {
        (d["modified"], d["brhVersion"])
        for d in raw
        if isinstance(d.get("modified"), int) and isinstance(d.get("brhVersion"), str)
    }
    return (page_cursor, newest(max_stamp, max(stamps)), page_window), stamps


def next_page(
    raw: list[Document], after: Any, skip: int, *, by_id: bool = False
) -> tuple[Any, int]:
    """Where the page after ``raw`` (a full one) starts: after its last ``(modified, _id)``,
    or, for documents without vault stamps, ``skip`` past them. ``by_id``: a page in ``_id``
    order (a full pass of projections, :data:`brh.full_pass.FULL_PASS_SORT`): after its last
    ``_id``."""
    last = raw[-1]
    if by_id and last.get("_id") is not None:
        return last["_id"], 0
    if isinstance(last.get("modified"), int) and last.get("_id") is not None:
        return (last["modified"], last["_id"]), 0
    return after, skip + len(raw)
