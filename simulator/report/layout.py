"""Reading a trace for the timeline report and laying it out (no HTML here).

:func:`read_trace` streams a trace file line by line and keeps at most :data:`MAX_EVENTS`
events: the first half and the last half, counting what lies between (the *elided* part).
Check lines are all kept, wherever they are.

:func:`lay_out` gives every kept event an x position. The axis follows event order rather than
proportional time, so a few hundred events stay readable whether a run spans seconds or days:

* events at the same instant share an x, except on one lane, where they stand side by side in
  trace order (an answer, then its callbacks, then the next request);
* the space between two instants grows with the logarithm of the time between them;
* a gap longer than :data:`IDLE_BREAK` seconds becomes a fixed-width *break* labelled with its
  duration; the elided part of a long trace becomes a wider break of its own; the events
  either side of a break stand at least :data:`EDGE` pixels off its torn edges, and a break
  begins only after the labels of the crashes, restarts, joins, reinstalls and clock jumps
  just before it (so a cut never squeezes them).

Tick labels name the true time of the instant they stand on.
"""

from __future__ import annotations

import json
import math
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from simulator.faults import FORMER_NAMES
from simulator.report.labels import CHAR_W, GAP, TORN, width

__all__ = [
    "MAX_EVENTS",
    "TOP",
    "VAULT",
    "Axis",
    "Break",
    "Digest",
    "Event",
    "Exchange",
    "Span",
    "event_label",
    "exchanges",
    "fault_spans",
    "format_duration",
    "format_time",
    "lay_out",
    "pass_spans",
    "read_trace",
]

VAULT = "vault"
"""The vault's lane (and the ``target`` of vault faults)."""
TOP = ""
"""The strip above the lanes, where findings and notes stand."""
MAX_EVENTS = 3000
"""Beyond this many events, only the first and the last half of them are drawn."""

LEFT = 16.0
"""Room before the first event, in pixels."""
RIGHT = 48.0
SLOT = 11.0
"""Distance between events of one lane at one instant."""
GAP_MIN, GAP_LOG, GAP_UNIT = 5.0, 11.0, 0.01
"""The space between instants ``dt`` apart: ``GAP_MIN + GAP_LOG * log10(1 + dt / GAP_UNIT)``."""
IDLE_BREAK = 60.0
"""Gaps at least this long (seconds) are drawn as breaks."""
BREAK_WIDTH, ELISION_WIDTH = 76.0, 150.0
EDGE = 8.0
"""Room between a break's torn edge and the events either side of it (their lines and labels
stay off the edge)."""
TICK_SPACING = 118.0
"""Minimum distance between two tick labels."""

Key = tuple[str, str]


@dataclass(frozen=True)
class Event:
    """One trace line: ``seq`` is its line number, ``data`` the whole parsed line."""

    seq: int
    t: float
    kind: str
    data: Mapping[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    @property
    def lane(self) -> str:
        """The lane this event stands on (its slot on the axis is taken there)."""
        if self.kind in ("check", "note"):
            return TOP
        if self.kind == "applied":
            return VAULT
        if self.kind == "fault":
            return str(self.data.get("target") or VAULT)
        device = self.data.get("device")
        return VAULT if device is None else str(device)


@dataclass
class Digest:
    """What :func:`read_trace` kept of a trace."""

    meta: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    """The kept events, in time order: the head, then the tail."""
    cut: int | None = None
    """Index in ``events`` where the elided part was (None when nothing was elided)."""
    elided: Counter[str] = field(default_factory=Counter)
    elided_span: tuple[float, float] | None = None
    devices: list[str] = field(default_factory=list)
    """Device names in order of first appearance (anywhere in the trace)."""
    checks: list[Event] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    notable: Counter[str] = field(default_factory=Counter)
    """Tallies over the whole trace: timeouts, refusals, late applies, failed passes."""
    skipped: int = 0
    """Lines that were not a JSON object with a numeric ``t`` and a ``kind``."""
    faults_at_cut: dict[Key, Event] = field(default_factory=dict)
    """Faults that were on where the kept tail begins, with the event that turned them on."""
    end: float = 0.0


def _parse(seq: int, line: str) -> Event | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    t = data.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
        return None
    if data["kind"] == "fault" and data.get("fault") in FORMER_NAMES:
        data["fault"] = FORMER_NAMES[data["fault"]]  # a trace written before the renaming
    return Event(seq, float(t), data["kind"], data)


def _track_fault(state: dict[Key, Event], event: Event) -> None:
    if event.kind != "fault" or event.get("fault") == "jump_clock":
        return
    key = (event.lane, str(event.get("fault")))
    if event.get("on"):
        state[key] = event
    else:
        state.pop(key, None)


def _tally(notable: Counter[str], event: Event) -> None:
    if event.kind == "answer" and event.get("lost"):
        notable["refused at once" if event.get("definite") else "timed out"] += 1
    elif event.kind == "applied" and event.get("late"):
        notable["applied late"] += 1
    elif event.kind == "callback" and not event.get("accepted"):
        notable["callbacks refused"] += 1
    elif event.kind == "pass" and event.get("phase") == "end" and not event.get("completed"):
        notable["passes not completed"] += 1


def read_trace(path: Path | str, *, limit: int = MAX_EVENTS) -> Digest:
    """Stream the trace at ``path``; keep the first and last ``limit // 2`` events or so."""
    digest = Digest()
    head: list[Event] = []
    tail: deque[Event] = deque(maxlen=max(1, limit - limit // 2))
    state: dict[Key, Event] = {}
    seen: set[str] = set()
    with Path(path).open(encoding="utf-8") as handle:
        for seq, line in enumerate(handle):
            if not line.strip():
                continue
            event = _parse(seq, line)
            if event is None:
                digest.skipped += 1
                continue
            digest.end = max(digest.end, event.t)
            if event.kind == "meta":
                digest.meta.update((k, v) for k, v in event.data.items() if k not in ("t", "kind"))
                continue
            digest.counts[event.kind] += 1
            for name in (event.get("device"), event.lane):
                if isinstance(name, str) and name not in (VAULT, TOP) and name not in seen:
                    seen.add(name)
                    digest.devices.append(name)
            if event.kind == "check":
                digest.checks.append(event)
            _tally(digest.notable, event)
            if len(head) < limit // 2:
                head.append(event)
                _track_fault(state, event)
                continue
            if len(tail) == tail.maxlen:
                dropped = tail[0]
                digest.elided[dropped.kind] += 1
                start = digest.elided_span[0] if digest.elided_span else dropped.t
                digest.elided_span = (start, dropped.t)
                _track_fault(state, dropped)
            tail.append(event)
    order = attrgetter("t", "seq")  # a trace's lines are in time order, but be sure
    digest.events = sorted(head, key=order) + sorted(tail, key=order)
    if digest.elided:
        digest.cut = len(head)
        digest.faults_at_cut = state
    return digest


# -- time labels ------------------------------------------------------------------------------


def format_time(seconds: float, decimals: int = 0) -> str:
    """``seconds`` as ``2d 3h 4m 5.6s``, leading zero units left out."""
    scale = 10**decimals
    units = round(abs(seconds) * scale)
    whole, fraction = divmod(units, scale)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}.{fraction:0{decimals}d}s" if decimals else f"{secs}s")
    text = " ".join(parts)
    return ("−" if seconds < 0 and units else "") + text


def format_duration(seconds: float, *, signed: bool = False) -> str:
    """A duration in its two largest units (``1d 2h``, ``8m 16s``, ``1.5s``, ``0.023s``)."""
    decimals = 0 if abs(seconds) >= 10 or not seconds else 1 if abs(seconds) >= 1 else 3
    parts = format_time(abs(seconds), decimals).split(" ")[:2]
    while len(parts) > 1 and parts[-1][0] == "0":
        parts.pop()
    sign = "−" if seconds < 0 else "+" if signed else ""
    return sign + " ".join(parts)


def event_label(event: Event) -> str:
    """The label of a device event or a clock jump (other events have none)."""
    if event.kind == "device":
        return str(event.get("event"))
    if event.kind == "fault" and event.get("fault") == "jump_clock":
        detail = event.get("detail")
        seconds = detail.get("seconds", 0) if isinstance(detail, dict) else 0
        return f"clock {format_duration(float(seconds), signed=True)}"
    return ""


# -- the axis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """A stretch of the axis standing for idle time (or for the elided events)."""

    x: float
    width: float
    label: str
    title: str
    elided: bool = False


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    t: float


@dataclass
class Axis:
    x: dict[int, float] = field(default_factory=dict)
    """The x of every kept event, by ``seq``."""
    breaks: list[Break] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    rug: list[float] = field(default_factory=list)
    """The x of every instant (a small mark under the axis)."""
    width: float = 0.0

    def of(self, event: Event) -> float:
        return self.x[event.seq]

    def elision(self) -> Break | None:
        return next((b for b in self.breaks if b.elided), None)


def _gap(dt: float) -> float:
    return GAP_MIN + GAP_LOG * math.log10(1.0 + max(0.0, dt) / GAP_UNIT)


def _instants(digest: Digest) -> Iterator[tuple[bool, list[Event]]]:
    """The kept events grouped by instant: (first group after the cut?, events)."""
    group: list[Event] = []
    for index, event in enumerate(digest.events):
        at_cut = index == digest.cut
        if group and (at_cut or event.t != group[0].t):
            yield False, group
            group = []
        if at_cut:
            yield True, []
        group.append(event)
    if group:
        yield False, group


def lay_out(digest: Digest) -> Axis:
    """Place every kept event on the x axis (see the module docstring)."""
    axis = Axis()
    x = LEFT
    previous: float | None = None
    instants: list[tuple[float, float, bool]] = []  # (t, x, forced tick)
    forced = True
    runs: dict[str, tuple[float, str]] = {}  # per lane, the run of event labels last begun
    for at_cut, group in _instants(digest):
        edge = max([x + EDGE, *(head + _run_room(text) for head, text in runs.values())])
        if at_cut:
            count = sum(digest.elided.values())
            first, last = digest.elided_span or (0.0, 0.0)
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(digest.elided.items()))
            title = (
                f"{count} events elided, t={first:.6f}s to t={last:.6f}s ({kinds})"
                if count
                else "elided"
            )
            label = f"{count} events elided"
            axis.breaks.append(Break(edge, ELISION_WIDTH, label, title, True))
            x = edge + ELISION_WIDTH + EDGE
            previous, forced, runs = None, True, {}
            continue
        t = group[0].t
        if previous is not None:
            dt = t - previous
            if dt >= IDLE_BREAK:
                label = format_duration(dt, signed=True)
                title = f"{format_duration(dt)} without events (t={previous:.6f}s to {t:.6f}s)"
                axis.breaks.append(Break(edge, BREAK_WIDTH, label, title))
                x = edge + BREAK_WIDTH + EDGE
                forced, runs = True, {}
            else:
                x += _gap(dt)
        per_lane: Counter[str] = Counter()
        for event in group:
            axis.x[event.seq] = x + SLOT * per_lane[event.lane]
            per_lane[event.lane] += 1
            if label := event_label(event):
                head, text = runs.get(event.lane, (-math.inf, ""))
                if axis.x[event.seq] < head + width(text) + CHAR_W:  # as placement joins
                    runs[event.lane] = (head, f"{text}, {label}")
                else:
                    runs[event.lane] = (axis.x[event.seq], label)
        axis.rug.append(x)
        instants.append((t, x, forced))
        forced = False
        x += SLOT * (max(per_lane.values()) - 1)
        previous = t
    axis.width = max([x + RIGHT, *(head + _run_room(text) for head, text in runs.values())])
    axis.ticks = _ticks(instants)
    return axis


def _run_room(text: str) -> float:
    """From the line of the first of a run of events to where a break may begin after the run's
    joined label ``text``: the label, a character for a pass's sign in front of it, the torn
    edge (see :mod:`simulator.report.placement`)."""
    return 3 + CHAR_W + width(text) + TORN + GAP


def _ticks(instants: list[tuple[float, float, bool]]) -> list[Tick]:
    """Labels on instants at least :data:`TICK_SPACING` apart; always after a break.

    A label is precise to a fifth of the time to its nearest labelled neighbour (at most ms).
    """
    forced_at = [x for _t, x, forced in instants if forced]
    chosen: list[tuple[float, float]] = []
    for t, x, forced in instants:
        if not forced:
            if chosen and x - chosen[-1][1] < TICK_SPACING:
                continue
            upcoming = next((f for f in forced_at if f > x), None)
            if upcoming is not None and upcoming - x < TICK_SPACING:
                continue
        chosen.append((t, x))
    ticks: list[Tick] = []
    for index, (t, x) in enumerate(chosen):
        gaps = [abs(t - n) for n, _x in chosen[max(0, index - 1) : index + 2] if n != t]
        decimals = 0
        if gaps:
            decimals = min(3, max(0, math.ceil(-math.log10(min(gaps) / 5))))
        ticks.append(Tick(x, format_time(t, decimals), t))
    return ticks


# -- pairing ----------------------------------------------------------------------------------


@dataclass
class Exchange:
    """A request with what became of it (any part may be missing from the kept events)."""

    id: Any
    device: str
    request: Event | None = None
    applied: Event | None = None
    answer: Event | None = None


def exchanges(events: list[Event]) -> list[Exchange]:
    """Requests, applies and answers tied by ``device`` and ``id``, in order of first event.

    (Ids are unique per link; a world may or may not share one sequence between its links.)
    """
    current: dict[str, Exchange] = {}
    found: list[Exchange] = []
    for event in events:
        if event.kind not in ("request", "applied", "answer"):
            continue
        rid = json.dumps([event.get("device"), event.get("id")], sort_keys=True)
        exchange = current.get(rid)
        if exchange is None or getattr(exchange, event.kind) is not None:
            exchange = Exchange(event.get("id"), str(event.get("device", "?")))
            current[rid] = exchange
            found.append(exchange)
        setattr(exchange, event.kind, event)
    return found


@dataclass(frozen=True)
class Span:
    """Something on a lane from ``x0`` to ``x1``: a fault or a pass."""

    lane: str
    name: str
    start: Event | None
    end: Event | None
    x0: float
    x1: float


class _Spans:
    """Open spans by key; closing one appends it to ``done``."""

    def __init__(self) -> None:
        self.open: dict[Key, tuple[Event | None, float]] = {}
        self.done: list[Span] = []
        self.origin = LEFT / 2
        """Where a span whose start was not kept begins: the left edge, or the elision."""

    def begin(self, key: Key, start: Event | None, x: float) -> None:
        self.open[key] = (start, x)

    def close(self, key: Key, end: Event | None, x: float) -> None:
        start, x0 = self.open.pop(key, (None, self.origin))
        self.done.append(Span(key[0], key[1], start, end, x0, x))

    def close_all(self, x: float) -> None:
        for key in sorted(self.open):
            self.close(key, None, x)

    def at_cut(self, elision: Break | None) -> None:
        """Close what is open at the elision; later spans without a start begin after it."""
        if elision is not None:
            self.close_all(elision.x)
            self.origin = elision.x + elision.width


def fault_spans(digest: Digest, axis: Axis) -> list[Span]:
    """Faults from their ``on: true`` to the matching ``on: false`` (clock jumps are points)."""
    spans = _Spans()
    for index, event in enumerate(digest.events):
        if index == digest.cut:
            spans.at_cut(axis.elision())
            for key, on in sorted(digest.faults_at_cut.items()):
                spans.begin(key, on, spans.origin)
        if event.kind != "fault" or event.get("fault") == "jump_clock":
            continue
        key = (event.lane, str(event.get("fault")))
        x = axis.of(event)
        if key in spans.open or not event.get("on"):
            spans.close(key, event, x)
        if event.get("on"):
            spans.begin(key, event, x)
    spans.close_all(axis.width - RIGHT / 2)
    return sorted(spans.done, key=lambda s: (s.x0, s.lane, s.name))


def pass_spans(digest: Digest, axis: Axis) -> list[Span]:
    """Sync passes from start to end; a crash or reinstall ends an open pass unfinished."""
    spans = _Spans()
    for index, event in enumerate(digest.events):
        if index == digest.cut:
            spans.at_cut(axis.elision())
        key = (event.lane, "pass")
        interrupted = event.kind == "device" and event.get("event") in ("crash", "reinstall")
        if interrupted and key in spans.open:
            spans.close(key, None, axis.of(event))
        if event.kind != "pass":
            continue
        if event.get("phase") == "start":
            if key in spans.open:
                spans.close(key, None, axis.of(event))
            spans.begin(key, event, axis.of(event))
        else:
            spans.close(key, event, axis.of(event))
    spans.close_all(axis.width - RIGHT / 2)
    return sorted(spans.done, key=lambda s: (s.x0, s.lane))
