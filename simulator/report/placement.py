"""Where the timeline's labels go (:class:`Placement`), worked out before anything is drawn.

Every label is kept off the others and off the torn edges of the breaks (see
:mod:`simulator.report.labels` for the estimate of a label's width and the shelves): note labels
on the strip above the lanes, fault labels in rows at the top of a lane and inside their bar,
pass signs, ``?`` and the labels of device events and clock jumps in one row at the bottom of a
lane, ``late`` under the vault's line. A label without the room is cut with ``…`` (its mark's
tooltip has the whole text) or left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from simulator.report.glyphs import GREEN, MUTED, ORANGE, RED
from simulator.report.labels import CHAR_W, TORN, Shelf, fit, width
from simulator.report.layout import (
    SLOT,
    Axis,
    Break,
    Digest,
    Event,
    Exchange,
    Span,
    event_label,
)

__all__ = ["FAULT_ROWS", "NOTE_CHARS", "Placement", "fault_label", "pass_look", "pending"]

FAULT_ROWS = 3
"""Rows of fault labels at the top of a lane (under them stand the writes and callbacks)."""
SIGN_SHIFTS = (0.0, -4.0, -8.0, -12.0, 4.0, 8.0)
"""Where a pass's sign may stand, relative to the pass's end, to keep off other labels."""
NOTE_CHARS = 28
"""A note's label is cut to this many characters (its tooltip has it all)."""
NOTE_PUSH = 200.0
"""How far right of its line a note's label may start, to find room past a break."""


class Placement:
    """The labels of a timeline: where each starts and what it shows."""

    def __init__(
        self,
        digest: Digest,
        axis: Axis,
        lanes: Iterable[str],
        fault_spans: list[Span],
        pass_spans: list[Span],
        exchanges: list[Exchange],
    ) -> None:
        self.digest, self.axis, self.lanes = digest, axis, list(lanes)
        self.fault_spans, self.pass_spans, self.exchanges = fault_spans, pass_spans, exchanges
        self.note_labels = self._place_notes()
        """Note seq -> where its label starts and what it shows (see :meth:`_place_notes`)."""
        self.fault_labels: list[tuple[int, float, str]] = []
        """Per fault span: the row of its label, where it starts and what it shows."""
        self.signs: dict[int, float | None] = {}
        """Per pass span (index): where its sign stands (None: no room for it)."""
        self.pending_marks: dict[int, float | None] = {}
        """Per pending request (seq): where its ``?`` stands (None: no room for it)."""
        self.event_labels: dict[int, tuple[float, str, list[Event]]] = {}
        """Per first of a run of device events and clock jumps close together on a lane (seq):
        where their joined label starts, what it shows and the events it names."""
        self.late_labels: set[int] = set()
        """The late applies (seq) with room for the word ``late``."""
        self._place_lane_labels()

    def break_label(self, cut: Break) -> str:
        """A break's label, cut to stay inside the break (its tooltip says it all)."""
        return fit(cut.label, cut.width - 2 * TORN - 2)

    def break_label_extent(self, cut: Break) -> tuple[float, float]:
        """Where a break's label stands on the top strip (centred on the break)."""
        middle, half = cut.x + cut.width / 2, width(self.break_label(cut)) / 2
        return middle - half, middle + half

    def torn_edges(self) -> list[tuple[float, float]]:
        """The torn edges of the breaks, as x intervals no label crosses."""
        edges = (x for cut in self.axis.breaks for x in (cut.x, cut.x + cut.width))
        return [(x - TORN, x + TORN) for x in edges]

    def _place_notes(self) -> dict[int, tuple[float, str]]:
        """Note labels on the top strip, kept off the torn edges and labels of the breaks, the
        finding badges and each other: a label that would start on one of them starts after it,
        and every label is cut (``…``) where the next thing on the strip begins."""
        strip = Shelf(self.torn_edges())
        for cut in self.axis.breaks:
            strip.take(*self.break_label_extent(cut))
        for check in self.digest.checks:
            if check.seq in self.axis.x:
                strip.take(self.axis.of(check) - 9, self.axis.of(check) + 9)
        notes = [e for e in self.digest.events if e.kind == "note"]
        placed: dict[int, tuple[float, str]] = {}
        for index, note in enumerate(notes):
            x = self.axis.of(note) + 3
            whole = "✎ " + fit(str(note.get("text", "")), CHAR_W * NOTE_CHARS)
            ahead = [self.axis.of(n) for n in notes[index + 1 :]]
            behind = [self.axis.of(n) for n in notes[:index]]
            limit = min([*[a for a in ahead if a > x], self.axis.width])
            tries = [strip.left(x, whole, limit, push=0.0)]  # right of its line
            tries.append(strip.before(x - 6, whole, max([*behind, 0.0])))  # left of it
            pushed, _ = strip.left(x, whole, self.axis.width, push=NOTE_PUSH, least=4)
            limit = min([*[a for a in ahead if a > pushed], self.axis.width])
            tries.append(strip.left(x, whole, limit, push=NOTE_PUSH, least=4))  # past a break
            start, shown = max(tries, key=lambda t: (t[1] == whole, len(t[1]) >= 4))
            if shown != whole and len(shown) < 4:  # "✎ a…" at least, or the pencil alone
                shown = "✎" if shown else ""
            strip.take_text(start, shown)
            placed[note.seq] = (start, shown)
        return placed

    def _place_lane_labels(self) -> None:
        """The labels on each lane, kept off each other and off the torn edges.

        Fault labels take the first of :data:`FAULT_ROWS` rows at the top of the lane where
        they fit whole, else the row where most of them fits; they stay inside their shaded bar
        and are cut (``…``) to it. The labels of crashes, restarts, joins, reinstalls and
        clock jumps, pass signs and the ``?`` of a request still unanswered share one row at
        the bottom of the lane. Labels come first: those of events close together on a lane
        are joined into one (``crash, restart``) that starts right of the first line (the
        layout leaves room for it before a break and at the end), or ends left of it when
        there is no room on the right, and is cut where the next one's line stands. Then signs
        and ``?`` stand at their place, or a few pixels aside, or not at all (the bracket's
        colour and its tooltip still tell the outcome). The word ``late`` under a late apply
        is left out where it would touch another.
        """
        edges = self.torn_edges()
        rows = {name: [Shelf(edges) for _ in range(FAULT_ROWS)] for name in self.lanes}
        for span in self.fault_spans:
            if span.lane not in rows:
                self.fault_labels.append((0, span.x0 + 3, ""))
                continue
            whole = fault_label(span)
            tries = [row.left(span.x0 + 3, whole, span.x1 - 2) for row in rows[span.lane]]
            best = max(range(FAULT_ROWS), key=lambda r: (tries[r][1] == whole, len(tries[r][1])))
            start, shown = tries[best]
            rows[span.lane][best].take_text(start, shown)
            self.fault_labels.append((best, start, shown))
        bottom = {name: Shelf(edges) for name in self.lanes}
        clusters: list[list[Event]] = []  # events of a lane whose labels would run together
        last: dict[str, list[Event]] = {}
        for event in self.digest.events:
            if not event_label(event) or event.lane not in bottom:
                continue
            x, group = self.axis.of(event), last.get(event.lane)
            if group is not None:
                head = self.axis.of(group[0])
                end = head + 3 + width(", ".join(event_label(e) for e in group)) + CHAR_W
                if x + 3 < end and not any(head < a < x for a, _b in edges):
                    group.append(event)
                    continue
            last[event.lane] = [event]
            clusters.append(last[event.lane])
        heads: dict[str, list[float]] = {}
        for group in clusters:
            heads.setdefault(group[0].lane, []).append(self.axis.of(group[0]))
        for group in clusters:
            x, shelf = self.axis.of(group[0]), bottom[group[0].lane]
            whole = ", ".join(event_label(e) for e in group)
            later = [a for a in heads[group[0].lane] if a > x]
            earlier = [a for a in heads[group[0].lane] if a < x]
            start, shown = shelf.left(x + 3, whole, min([*later, self.axis.width]), push=SLOT)
            if any(x < a < start for a, _b in edges):
                shown = ""  # not past a torn edge: the label would stand for later events
            if shown != whole:  # no room on the right (a torn edge, the next event): the left?
                left = shelf.before(x - 3, whole, max([*earlier, 0.0]))
                if len(left[1]) > len(shown):
                    start, shown = left
            if shown != whole and len(shown) < 3:  # "…" or "c…" would say nothing
                shown = ""
            shelf.take_text(start, shown)
            self.event_labels[group[0].seq] = (start, shown, group)
        for index, span in enumerate(self.pass_spans):
            on = bottom.get(span.lane)
            sign = pass_look(span)[2]
            self.signs[index] = on.take_centred(span.x1, sign, SIGN_SHIFTS) if on else None
        for ex in self.exchanges:
            if pending(ex):
                first = ex.request or ex.applied or ex.answer
                assert first is not None
                on = bottom.get(ex.device)
                x = self.axis.of(first) + 10
                self.pending_marks[first.seq] = on.take_centred(x, "?") if on else None
        late = Shelf(edges)
        for event in self.digest.events:
            wanted = event.kind == "applied" and event.get("late")
            if wanted and late.take_centred(self.axis.of(event), "late") is not None:
                self.late_labels.add(event.seq)


def pass_look(span: Span) -> tuple[str, str, str, str]:
    """How a pass is drawn: its class, colour, sign and outcome."""
    end = span.end
    if end is None:
        return "unfinished", MUTED, "…", "did not finish"
    if end.get("completed"):
        return "completed", GREEN, "✓", "completed"
    if end.get("reason") == "refused":
        return "refused", ORANGE, "⊘", "refused by the app"
    return "failed", RED, "!", f"failed: {end.get('reason')}"


def pending(ex: Exchange) -> bool:
    """A request neither applied nor given up on in the drawn part (drawn with a ``?``)."""
    return ex.applied is None and not (ex.answer is not None and ex.answer.get("lost"))


def fault_label(span: Span) -> str:
    label = span.name  # the fault's verb, as the World, scenario files and the legend name it
    detail = span.start.get("detail") if span.start is not None else None
    if isinstance(detail, dict) and detail:
        label += ": " + " ".join(f"{k}={v}" for k, v in sorted(detail.items()))
    return label
