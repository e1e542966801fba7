"""The timeline of the report: one lane per device, one for the vault, as one SVG.

:class:`Timeline` draws the kept events of a :class:`~simulator.report.layout.Digest` at the x
positions of its :class:`~simulator.report.layout.Axis`. Requests are arrows down to the vault,
answers arrows back up; a request or an answer that never arrived is dashed red and ends in ✕
just under the device's line (at the moment the client gave up); a request refused at once is a
stub ending in ⊘; a late apply is orange. Faults shade the lane they hit; passes are brackets
under a lane; writes and callbacks stand above it; findings are red dashed lines with a
numbered badge (one number per group, :mod:`~simulator.report.findings`), and the writes and
callbacks that caused them are ringed in red under the same number; both link to the
finding's entry at the top of the page. Every mark is a ``<g class="mark ...">`` with an SVG
``<title>`` (its tooltip) and ``data-t`` (the trace's ``t``; ``data-t0`` and ``data-t1`` for
faults).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from simulator.report.findings import Group, group_findings
from simulator.report.glyphs import (
    DEVICE_EVENTS,
    FAULT_COLOURS,
    MUTED,
    PURPLE,
    RED,
    applied_glyph,
    arrow,
    bracket,
    callback_glyph,
    closed,
    cross,
    definite_glyph,
    defs,
    line,
    lost,
    mark,
    svg_root,
    tag,
    text,
    write_glyph,
    zigzag,
)
from simulator.report.layout import (
    VAULT,
    Axis,
    Digest,
    Event,
    Exchange,
    event_label,
    exchanges,
    fault_spans,
    format_duration,
    format_time,
    pass_spans,
)
from simulator.report.placement import Placement, fault_label, pass_look

__all__ = ["LABEL_W", "Timeline"]

AXIS_H, STRIP_H, LANE_H, VAULT_H, LABEL_W = 30.0, 26.0, 92.0, 64.0, 170.0
READS = frozenset({"find_one", "find_many", "query", "count_documents"})
"""Operations that change nothing on the vault (every other one is drawn as a write)."""


@dataclass(frozen=True)
class Lane:
    name: str
    top: float
    height: float

    @property
    def mid(self) -> float:
        return self.top + self.height / 2

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def above(self) -> float:
        """Where writes and callbacks stand."""
        return self.mid - 17

    @property
    def missed(self) -> float:
        """Where the ✕ of a request or answer that never arrived stands."""
        return self.mid + 11

    @property
    def below(self) -> float:
        """Where pass brackets run."""
        return self.mid + 25


def _lanes(digest: Digest) -> dict[str, Lane]:
    lanes: dict[str, Lane] = {}
    top = AXIS_H + STRIP_H
    for name in [*digest.devices, VAULT]:
        lanes[name] = Lane(name, top, VAULT_H if name == VAULT else LANE_H)
        top += lanes[name].height
    return lanes


def _when(t: float) -> str:
    return f"t={t:.6f}s ({format_time(t, 3)})"


def _stamp(t: float | None) -> str | None:
    """A trace time for a ``data-t`` attribute: as written in the trace (µs), no trailing 0."""
    return None if t is None else f"{t:.6f}".rstrip("0").rstrip(".")


def _fields(event: Event, *skip: str) -> str:
    hidden = {"t", "kind", *skip}
    items = sorted(event.data.items())
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in items if k not in hidden)


class Timeline:
    """Draws the kept events of a digest onto its axis (see the module docstring)."""

    def __init__(self, digest: Digest, axis: Axis) -> None:
        self.digest = digest
        self.axis = axis
        self.lanes = _lanes(digest)
        self.bottom = max(lane.bottom for lane in self.lanes.values())
        self.groups: list[Group] = group_findings(digest)
        self.numbers = {check.seq: g.number for g in self.groups for check in g.checks}
        self.caused: dict[int, list[int]] = {}
        """Event seq -> the numbers of the finding groups it caused (or is related to)."""
        for group in self.groups:
            for event in group.causes:
                self.caused.setdefault(event.seq, []).append(group.number)
        self._finding_ids: dict[int, int] = {}
        self.fault_spans = fault_spans(digest, axis)
        self.pass_spans = pass_spans(digest, axis)
        self.exchanges = exchanges(digest.events)
        self.placed = Placement(
            digest, axis, self.lanes, self.fault_spans, self.pass_spans, self.exchanges
        )
        """Where every label goes (:mod:`simulator.report.placement`)."""
        self._points: dict[str, Callable[[Event, Lane | None, float], str]] = {
            "write": self._write,
            "callback": self._callback,
            "device": self._device_event,
            "fault": self._clock_jump,
            "check": self._finding,
            "note": self._note,
        }

    def svg(self) -> str:
        parts = [
            defs(),
            *self._background(),
            *self._breaks(),
            *self._faults(),
            *self._ticks(),
            *self._passes(),
            *(self._exchange(exchange) for exchange in self.exchanges),
            *(self._point(event) for event in self.digest.events),
            *self._causes(),
        ]
        return svg_root(*parts, width=self.axis.width, height=self.bottom, id="timeline")

    def labels_svg(self) -> str:
        """The lane names (kept in view while the timeline scrolls)."""
        joins: dict[str, Event] = {}
        for event in self.digest.events:
            if event.kind == "device" and event.get("event") == "join":
                joins.setdefault(event.lane, event)
        parts = [
            text(8, AXIS_H - 9, "time", cls="lane-note"),
            text(8, AXIS_H + 17, "findings · notes", cls="lane-note"),
        ]
        for lane in self.lanes.values():
            fill = "#eef1f7" if lane.name == VAULT else "#fff"
            parts.append(
                tag("rect", x=0.0, y=lane.top, width=LABEL_W, height=lane.height, fill=fill)
            )
            parts.append(text(10, lane.mid - 2, lane.name, cls="lane-name"))
            note = "server" if lane.name == VAULT else _clock_note(joins.get(lane.name))
            parts.append(text(10, lane.mid + 14, note, cls="lane-note"))
        return svg_root(*parts, width=LABEL_W, height=self.bottom, cls="lane-labels")

    # -- layers, back to front ------------------------------------------------------------------

    def _background(self) -> Iterable[str]:
        width = self.axis.width
        for index, lane in enumerate(self.lanes.values()):
            fill = "#eef1f7" if lane.name == VAULT else "#fafafa" if index % 2 else "#fff"
            yield tag("rect", x=0.0, y=lane.top, width=width, height=lane.height, fill=fill)
            yield line(0, lane.mid, width, lane.mid, "#c8c8c8")
            yield line(0, lane.top, width, lane.top, "#e2e2e2")

    def _breaks(self) -> Iterable[str]:
        height = self.bottom - AXIS_H
        for cut in self.axis.breaks:
            fill = "#e4ddf0" if cut.elided else "#efefef"
            shapes = [
                tag("rect", x=cut.x, y=AXIS_H, width=cut.width, height=height, fill=fill),
                zigzag(cut.x, AXIS_H, self.bottom),
                zigzag(cut.x + cut.width, AXIS_H, self.bottom),
                text(
                    cut.x + cut.width / 2,
                    AXIS_H + 17,
                    self.placed.break_label(cut),
                    cls="break-label",
                ),
            ]
            yield mark("elided" if cut.elided else "break", cut.title, *shapes)

    def _faults(self) -> Iterable[str]:
        for span, (row, start, shown) in zip(
            self.fault_spans, self.placed.fault_labels, strict=True
        ):
            lane = self.lanes.get(span.lane)
            if lane is None:
                continue
            label = fault_label(span)
            colour = FAULT_COLOURS.get(span.name, MUTED)
            box = {"x": span.x0, "y": lane.top + 1, "width": max(2.0, span.x1 - span.x0)}
            shapes = [tag("rect", **box, height=lane.height - 2, fill=colour, fill_opacity="0.1")]
            if span.name == "partition":
                shapes.append(tag("rect", **box, height=lane.height - 2, fill="url(#hatch)"))
            shapes.append(line(span.x0, lane.top + 1, span.x0, lane.bottom - 1, colour))
            if shown:
                y = lane.top + 11 + 11 * row
                shapes.append(text(start, y, shown, cls="fault-label", fill=colour))
            t0 = span.start.t if span.start else None
            t1 = span.end.t if span.end else None
            since = _when(t0) if t0 is not None else "before the drawn part"
            until = _when(t1) if t1 is not None else "the end of the drawn part"
            title = f"fault {label} on {span.lane}\nfrom {since}\nuntil {until}"
            yield mark(
                f"fault fault-{span.name}",
                title,
                *shapes,
                data_lane=span.lane,
                data_t0=_stamp(t0),
                data_t1=_stamp(t1),
            )

    def _ticks(self) -> Iterable[str]:
        yield line(0, AXIS_H, self.axis.width, AXIS_H, "#999")
        for x in self.axis.rug:
            yield line(x, AXIS_H, x, AXIS_H + 3, "#aaa")
        for tick in self.axis.ticks:
            yield line(tick.x, AXIS_H - 5, tick.x, self.bottom, "#ddd", stroke_dasharray="2 3")
            yield line(tick.x, AXIS_H - 6, tick.x, AXIS_H, "#666")
            if tick.x + 3 + 6.5 * len(tick.label) <= self.axis.width:
                yield text(tick.x + 3, AXIS_H - 9, tick.label, cls="tick")
            else:  # the last one, at the right edge
                yield text(tick.x - 3, AXIS_H - 9, tick.label, cls="tick", text_anchor="end")

    def _passes(self) -> Iterable[str]:
        for index, span in enumerate(self.pass_spans):
            lane = self.lanes.get(span.lane)
            if lane is None:
                continue
            end = span.end
            kind, colour, sign, outcome = pass_look(span)
            lines = [f"pass on {span.lane}: {outcome}"]
            if span.start is not None:
                lines.append(f"started {_when(span.start.t)}, full={span.start.get('full')}")
            if end is not None:
                lines.append(f"ended {_when(end.t)}; {_fields(end, 'device', 'phase')}")
            shapes = [bracket(span.x0, span.x1, lane.below, colour)]
            at = self.placed.signs.get(index)
            if at is not None:
                shapes.append(text(at, lane.below + 11, sign, cls="sign", fill=colour))
            yield mark(f"pass pass-{kind}", "\n".join(lines), *shapes)

    def _exchange(self, ex: Exchange) -> str:
        device = self.lanes.get(ex.device)
        if device is None:
            return ""
        vault = self.lanes[VAULT]
        top, bottom = device.mid + 4, vault.mid - 4
        request, applied, answer = ex.request, ex.applied, ex.answer
        first = request or applied or answer
        assert first is not None
        x = self.axis.of
        op = str(request.get("op")) if request else "?"
        classes = ["exchange", f"op-{op}"]
        shapes: list[str] = []
        gave_up = answer if answer is not None and answer.get("lost") else None
        if gave_up is not None and gave_up.get("definite"):
            classes.append("definite")
            shapes.append(definite_glyph(x(first), device.missed))
        elif applied is not None:
            late = bool(applied.get("late"))
            if request is not None:
                style = "late" if late else "read" if op in READS else "write"
                shapes.append(arrow(x(request), top, x(applied), bottom, style))
            labelled = applied.seq in self.placed.late_labels
            ok = bool(applied.get("ok"))
            shapes.append(applied_glyph(x(applied), vault.mid, ok, late, labelled=labelled))
            if late:
                classes.append("late")
            if gave_up is not None:
                classes.append("lost")
                if late:  # the client gave up before the request even arrived
                    shapes.append(cross(x(gave_up), device.missed))
                else:
                    shapes.append(lost(x(applied), bottom, x(gave_up), device.missed))
            elif answer is not None:
                style = "ok" if answer.get("ok") else "error"
                shapes.append(arrow(x(applied), bottom, x(answer), top, style))
        elif gave_up is not None:
            classes.append("lost")
            shapes.append(lost(x(first), top, x(gave_up), device.missed))
        else:
            classes.append("pending")
            xp = x(first)
            shapes.append(line(xp, top, xp + 8, top + 18, MUTED, stroke_dasharray="2 2"))
            at = self.placed.pending_marks.get(first.seq)
            if at is not None:
                shapes.append(text(at, top + 28, "?", cls="small", fill=MUTED))
        return mark(" ".join(classes), _exchange_title(ex), *shapes, data_t=_stamp(first.t))

    def _point(self, event: Event) -> str:
        draw = self._points.get(event.kind)
        if draw is None:
            return ""
        return draw(event, self.lanes.get(event.lane), self.axis.of(event))

    def _write(self, event: Event, lane: Lane | None, x: float) -> str:
        if lane is None:
            return ""
        op = str(event.get("op"))
        title = f"write ({op}) on {lane.name}: {event.get('context')}/{event.get('key')}"
        title += f"\n{_when(event.t)}" + _value(event) + _version(event)
        glyph = write_glyph(x, lane.above, op)
        return mark(f"write write-{op}", title, glyph, data_t=_stamp(event.t))

    def _callback(self, event: Event, lane: Lane | None, x: float) -> str:
        if lane is None:
            return ""
        accepted = bool(event.get("accepted"))
        action = str(event.get("action"))
        verdict = "accepted" if accepted else "refused"
        title = f"callback {action} on {lane.name}: {verdict.upper()}"
        title += f"\n{event.get('context')}/{event.get('key')}\n{_when(event.t)}"
        title += _value(event) + _version(event)
        glyph = callback_glyph(x, lane.above, action, accepted)
        return mark(f"callback {verdict}", title, glyph, data_t=_stamp(event.t))

    def _device_event(self, event: Event, lane: Lane | None, x: float) -> str:
        if lane is None:
            return ""
        name = str(event.get("event"))
        colour = DEVICE_EVENTS.get(name, MUTED)
        shapes = [line(x, lane.top + 3, x, lane.bottom - 3, colour, stroke_width=2.0)]
        shapes.extend(self._event_label(event, lane))
        title = f"{name} of {lane.name}\n{_when(event.t)}\n{_fields(event, 'device', 'event')}"
        return mark(f"device device-{name}", title, *shapes, data_t=_stamp(event.t))

    def _event_label(self, event: Event, lane: Lane) -> list[str]:
        """The label of the events joined under ``event`` (each part in its event's colour)."""
        start, shown, group = self.placed.event_labels.get(event.seq, (0.0, "", []))
        if not shown:
            return []
        parts, rest = [], shown
        for index, member in enumerate(group):
            part = event_label(member) + (", " if index < len(group) - 1 else "")
            piece, rest = rest[: len(part)], rest[len(part) :]
            if piece:
                parts.append(tag("tspan", html.escape(piece, quote=False), fill=_colour(member)))
        y = lane.bottom - 5
        return [tag("text", *parts, x=start, y=y, cls="event-label")]

    def _clock_jump(self, event: Event, lane: Lane | None, x: float) -> str:
        if lane is None or event.get("fault") != "jump_clock":
            return ""  # the other faults are spans
        detail = event.get("detail")
        seconds = detail.get("seconds", 0) if isinstance(detail, dict) else 0
        size = format_duration(float(seconds), signed=True)
        shapes = [line(x, lane.top + 3, x, lane.bottom - 3, PURPLE, stroke_dasharray="3 2")]
        shapes.extend(self._event_label(event, lane))
        title = f"clock jump on {lane.name}: {size}\n{_when(event.t)}"
        return mark("clock-jump", title, *shapes, data_t=_stamp(event.t))

    def _note(self, event: Event, lane: Lane | None, x: float) -> str:
        content = str(event.get("text", ""))
        start, label = self.placed.note_labels.get(event.seq, (x + 3, "✎"))
        shapes = [line(x, AXIS_H + 4, x, self.bottom, MUTED, stroke_dasharray="1 3")]
        if label:
            shapes.append(text(start, AXIS_H + 17, label, cls="note-label"))
        return mark("note", f"note: {content}\n{_when(event.t)}", *shapes, data_t=_stamp(event.t))

    def _finding(self, event: Event, lane: Lane | None, x: float) -> str:
        number = self.numbers.get(event.seq, 0)
        y = AXIS_H + STRIP_H / 2
        shapes = [
            line(x, y, x, self.bottom, RED, stroke_width=1.5, stroke_dasharray="5 3"),
            tag("circle", cx=x, cy=y, r=8.0, fill=RED),
            text(x, y + 3.5, str(number), cls="badge"),
        ]
        device = self.lanes.get(str(event.get("device")))
        if device is not None:  # a warning sign on the device's line
            mid = device.mid
            d = closed((x, mid - 9), (x + 8, mid + 6), (x - 8, mid + 6))
            shapes.append(tag("path", d=d, fill=RED, stroke="#fff"))
            shapes.append(text(x, mid + 4.5, "!", cls="badge"))
        title = f"finding #{number}: {finding_text(event)}\n(click: its entry in the findings)"
        seen = self._finding_ids[number] = self._finding_ids.get(number, 0) + 1
        ident = f"finding-{number}" if seen == 1 else f"finding-{number}-{seen}"
        drawn = mark("finding", title, *shapes, id=ident, data_t=_stamp(event.t))
        return tag("a", drawn, href=f"#summary-{number}")

    def _causes(self) -> Iterable[str]:
        """A red ring and numbered badges on each event that caused a finding, linked to it."""
        groups = {group.number: group for group in self.groups}
        counts: dict[int, int] = {}
        for event in self.digest.events:
            numbers = self.caused.get(event.seq)
            lane = self.lanes.get(event.lane)
            if not numbers or lane is None:
                continue
            x = self.axis.of(event)
            for index, number in enumerate(numbers):
                group = groups[number]
                counts[number] = counts.get(number, 0) + 1
                what = "related to" if group.related else "a cause of"
                kind = event.kind
                if kind == "request":  # which round trip: its operation and collection
                    kind += f" {event.get('op')} {event.get('collection')}"
                title = f"{kind} {what} finding #{number} ({group.about})\n"
                title += f"{_when(event.t)}{_value(event)}{_version(event)}"
                title += "\n(click: the finding)"
                shapes = []
                if index == 0:
                    shapes.append(
                        tag(
                            "circle",
                            cx=x,
                            cy=lane.above,
                            r=9.0,
                            fill="none",
                            stroke=RED,
                            stroke_width=1.6,
                            stroke_dasharray="3 2" if group.related else None,
                        )
                    )
                bx, by = x + 14.0 * index, lane.above - 17
                shapes.append(tag("circle", cx=bx, cy=by, r=6.5, fill=RED))
                shapes.append(text(bx, by + 3.5, str(number), cls="badge cause-badge"))
                drawn = mark(
                    "cause related" if group.related else "cause",
                    title,
                    *shapes,
                    id=f"cause-{number}-{counts[number]}",
                    data_finding=number,
                    data_t=_stamp(event.t),
                )
                yield tag("a", drawn, href=f"#summary-{number}")


def _clock_note(join: Event | None) -> str:
    if join is None:
        return ""
    offset = float(join.get("offset") or 0.0)
    drift = float(join.get("drift_ppm") or 0.0)
    parts = [f"clock {format_duration(offset, signed=True)}" if offset else "clock exact"]
    if drift:
        parts.append(f"drift {drift:g} ppm")
    return ", ".join(parts)


def _colour(event: Event) -> str:
    """The colour of a device event or clock jump."""
    return PURPLE if event.kind == "fault" else DEVICE_EVENTS.get(str(event.get("event")), MUTED)


def _exchange_title(ex: Exchange) -> str:
    lines = []
    if ex.request is not None:
        r = ex.request
        what = f"{r.get('op')} {r.get('collection') or ''}".strip()
        key = f" key={r.get('key')}" if r.get("key") is not None else ""
        lines.append(f"request #{ex.id} {ex.device} → vault: {what}{key}\n  sent {_when(r.t)}")
        if "value" in r.data:
            lines.append(f"  value {value_text(r.get('value'))}")
        if r.get("version") is not None:
            lines.append(f"  version {r.get('version')}")
    else:
        lines.append(f"request #{ex.id} from {ex.device} (sent in the elided part)")
    if ex.applied is not None:
        a = ex.applied
        outcome = "ok" if a.get("ok") else f"error: {a.get('error')}"
        late = " LATE (after the client gave up)" if a.get("late") else ""
        lines.append(f"  applied {_when(a.t)}: {outcome}{late}")
    else:
        lines.append("  not applied (in the drawn part)")
    if ex.answer is not None:
        b = ex.answer
        if b.get("lost") and b.get("definite"):
            lines.append(f"  refused at once {_when(b.t)}: {b.get('error')} (definite)")
        elif b.get("lost"):
            lines.append(f"  NO ANSWER: the client gave up {_when(b.t)} ({b.get('error')})")
        else:
            outcome = "ok" if b.get("ok") else f"error: {b.get('error')}"
            lines.append(f"  answered {_when(b.t)}: {outcome}")
    else:
        lines.append("  no answer in the drawn part of the trace")
    return "\n".join(lines)


def finding_text(event: Event) -> str:
    """A check line in one line of plain text."""
    where = " · ".join(
        f"{name} {event.get(name)}" for name in ("device", "context", "key") if event.get(name)
    )
    head = f"[{event.get('clause')}] {event.get('checker')}"
    when = f"at {format_time(event.t, 3)} (t={event.t:.6f}s)"
    return f"{head} {when}{' · ' + where if where else ''}: {event.get('message')}"


def value_text(value: object, limit: int = 120) -> str:
    """A value as JSON, cut to ``limit`` characters."""
    shown = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _value(event: Event) -> str:
    """The value line of a tooltip (traces written before values were traced carry none)."""
    if "value" not in event.data:
        return ""
    if event.get("op") == "delete" or event.get("action") == "delete":
        return "\nvalue: (deleted)"
    return f"\nvalue {value_text(event.get('value'))}"


def _version(event: Event) -> str:
    """The version line of a tooltip (another implementation's events carry none)."""
    version = event.get("version")
    return f"\nversion {version}" if version is not None else ""
