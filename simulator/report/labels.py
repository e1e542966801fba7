"""Keeping the timeline's labels apart: shelves of taken x intervals, and text cut to fit.

A label's width is estimated as :data:`CHAR_W` pixels a character: a 10 px label's glyphs take
a little less, so labels that do not overlap by this estimate do not overlap on screen. A
*shelf* is one row of labels (a band of a lane at one height, or the strip above the lanes):
labels placed on it never overlap one another, nor the intervals blocked on it from the start
(the torn edges of cut-out gaps, finding badges). A label that has not the room is cut and ends
in ``…`` (its mark's tooltip has the whole text); one that has no room for even ``…`` is left
out.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

__all__ = ["CHAR_W", "GAP", "TORN", "Shelf", "fit", "width"]

CHAR_W = 6.0
"""The width of a character of a 10 px label, a little generous (to keep labels apart)."""
GAP = 1.0
"""The least space between two things on a shelf."""
TORN = 4.0
"""Half the width of a torn edge (its zigzag and stroke), kept free of labels."""
ELLIPSIS = "…"


def width(text: str) -> float:
    return CHAR_W * len(text)


def fit(text: str, room: float) -> str:
    """``text`` if it fits in ``room`` pixels; else as much of it as fits followed by ``…``;
    ``""`` when not even ``…`` fits."""
    chars = int(room / CHAR_W + 1e-9)
    if len(text) <= chars:
        return text
    if chars <= 0:
        return ""
    return text[: chars - 1] + ELLIPSIS


class Shelf:
    """One row of labels: the x intervals taken on it, kept sorted."""

    def __init__(self, blocked: Iterable[tuple[float, float]] = ()) -> None:
        self.taken: list[tuple[float, float]] = sorted(blocked)

    def free(self, x0: float, x1: float) -> bool:
        return all(b + GAP <= x0 or x1 + GAP <= a for a, b in self.taken)

    def take(self, x0: float, x1: float) -> None:
        bisect.insort(self.taken, (x0, x1))

    def left(
        self,
        x: float,
        text: str,
        limit: float,
        *,
        push: float = float("inf"),
        least: int = 1,
    ) -> tuple[float, str]:
        """Where a label anchored at its left end ``x`` would start and what of ``text`` it
        would show: moved right past what is taken at ``x`` (at most ``push`` pixels), cut where
        the next taken interval or ``limit`` begins. When fewer than ``least`` characters would
        show there, it tries again past that next interval (still within ``push``). Takes
        nothing (see :meth:`take_left`)."""
        start, first = x, None
        while True:
            for a, b in self.taken:  # sorted by start: one sweep moves past overlapping runs
                if a - GAP < start < b + GAP:
                    start = max(start, b + GAP)
            if start - x > push:
                return first or (start, "")
            ahead = [a for a, _b in self.taken if a >= start]
            end = min([limit, *ahead]) - GAP
            shown = fit(text, end - start)
            first = first or (start, shown)
            if len(shown) >= min(least, len(text)) or end >= limit - GAP:
                return start, shown
            start = end + GAP  # inside the next interval: the sweep moves past it

    def before(self, x: float, text: str, limit: float) -> tuple[float, str]:
        """Where a label anchored at its right end ``x`` would start and what of ``text`` it
        would show, cut where the taken interval before ``x`` or ``limit`` ends (it is never
        moved). Takes nothing."""
        behind = [b for a, b in self.taken if a < x]
        if any(b > x - GAP for b in behind):
            return x, ""
        room = x - max([limit, *behind]) - GAP
        shown = fit(text, room)
        return x - width(shown), shown

    def take_left(
        self, x: float, text: str, limit: float, *, push: float = float("inf")
    ) -> tuple[float, str]:
        """:meth:`left`, taking the room of what is shown."""
        start, shown = self.left(x, text, limit, push=push)
        if shown:
            self.take(start, start + width(shown))
        return start, shown

    def take_text(self, start: float, shown: str) -> None:
        if shown:
            self.take(start, start + width(shown))

    def take_centred(self, x: float, text: str, shifts: Iterable[float] = (0.0,)) -> float | None:
        """Take the room of ``text`` centred on ``x`` moved by the first of ``shifts`` that
        leaves it free; the centre taken, or None (nothing taken) when none does."""
        half = width(text) / 2
        for shift in shifts:
            centre = x + shift
            if self.free(centre - half, centre + half):
                self.take(centre - half, centre + half)
                return centre
        return None
