"""Labels on the timeline stay apart (issue 12, "labels do not overlap at cut edges").

The property is checked on the drawn SVG of many random traces, built so that crashes,
restarts, joins, reinstalls, clock jumps, faults, passes, late applies, notes and findings
crowd the edges of cut-out gaps and of the elided middle of a long trace.

A label's box is estimated from its text: :data:`~simulator.report.labels.CHAR_W` pixels a
character (a little more than a 10 px label's glyphs take), from 8 px above its baseline to
2 px under it; centred labels (break labels, pass signs, ``late``) are centred on their x. A
cut's torn edge is a zigzag 3 px either side of its x, from the axis down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from simulator.faults import FAULTS
from simulator.report.labels import CHAR_W
from simulator.report.layout import lay_out, read_trace
from simulator.report.timeline import AXIS_H, Timeline
from tests.simulator.test_report import Node, ev, parse, write_trace

LABELS = {"fault-label", "event-label", "note-label", "break-label"}
CENTRED = {"break-label", "sign", "small"}


@dataclass(frozen=True)
class Box:
    what: str
    x0: float
    x1: float
    y0: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )


def text_box(node: Node, kind: str) -> Box:
    content = node.all_text()
    width = CHAR_W * len(content)
    x, y = float(node.attrs["x"]), float(node.attrs["y"])
    middle = kind in CENTRED or node.attrs.get("text-anchor") == "middle"
    x0 = x - width / 2 if middle else x - width if node.attrs.get("text-anchor") == "end" else x
    return Box(f"{kind} {content!r}", x0, x0 + width, y - 8, y + 2)


def label_boxes(root: Node) -> list[tuple[Box, Node]]:
    """Every label drawn on the timeline, with the mark it belongs to."""
    found: list[tuple[Box, Node]] = []
    for group in root.find("g", "mark"):
        for child in group.children:
            if child.tag != "text" or not child.all_text():
                continue
            kinds = child.classes & LABELS
            if "pass" in group.classes and "sign" in child.classes:
                kinds = {"sign"}
            if "exchange" in group.classes and "small" in child.classes:
                kinds = {"small"}
            if kinds:
                found.append((text_box(child, kinds.pop()), group))
    return found


def torn_edges(root: Node, bottom: float) -> list[tuple[Box, Node]]:
    edges = []
    for group in root.find("g", "mark"):
        if not group.classes & {"break", "elided"}:
            continue
        rect = next(c for c in group.children if c.tag == "rect")
        x, width = float(rect.attrs["x"]), float(rect.attrs["width"])
        for edge in (x, x + width):
            edges.append((Box(f"torn edge at {edge}", edge - 3, edge + 3, AXIS_H, bottom), group))
    return edges


KINDS = ["device", "fault", "jump", "pass", "late", "note", "check"]
FAULT_NAMES = sorted(FAULTS)
DETAILS: list[dict[str, Any] | None] = [
    None,
    {"before": 0.3, "after": 0.3},
    {"min": 0.2, "max": 3.0},
    {"rate": 0.25},
]


@st.composite
def crowded_traces(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int]:
    """Clusters of events a few seconds long, far apart (each gap is cut out), each cluster's
    events crowded at its start and its end (next to a torn edge); sometimes cut in the middle
    (the elided part) by a small event limit."""
    devices = ["a", "b"]
    events = [ev(0, "device", device=d, event="join", offset=0.0, drift_ppm=0.0) for d in devices]
    rid = 0
    start = 1.0
    for _cluster in range(draw(st.integers(2, 4))):
        length = draw(st.sampled_from([0.0, 0.5, 3.0]))
        for _ in range(draw(st.integers(1, 7))):
            t = start + draw(st.sampled_from([0.0, 0.0, 0.001, 0.2, length, length, length - 0.1]))
            t = max(start, t)
            device = draw(st.sampled_from(devices))
            what = draw(
                st.sampled_from(["device", "fault", "jump", "pass", "late", "note", "check"])
            )
            if what == "device":
                name = draw(st.sampled_from(["crash", "restart", "join", "reinstall"]))
                events.append(ev(t, "device", device=device, event=name))
            elif what == "fault":
                fault = draw(st.sampled_from(FAULT_NAMES))
                target = draw(st.sampled_from([*devices, "vault"]))
                detail = draw(st.sampled_from(DETAILS))
                end = t + draw(st.sampled_from([0.0, 0.001, 0.3, 2.0, 200.0]))
                events.append(ev(t, "fault", target=target, fault=fault, on=True, detail=detail))
                events.append(ev(end, "fault", target=target, fault=fault, on=False))
            elif what == "jump":
                seconds = draw(st.sampled_from([-600, 3600, 0.5]))
                detail = {"seconds": seconds}
                events.append(
                    ev(t, "fault", target=device, fault="jump_clock", on=True, detail=detail)
                )
            elif what == "pass":
                end = t + draw(st.sampled_from([0.0, 0.01, 1.0]))
                events.append(ev(t, "pass", device=device, phase="start", full=False))
                if draw(st.booleans()):
                    events.append(ev(end, "device", device=device, event="crash"))
                else:
                    events.append(ev(end, "pass", device=device, phase="end", completed=True))
            elif what == "late":
                rid += 1
                op = {"op": "update_one", "collection": "c", "key": "k"}
                events.append(ev(t, "request", device=device, id=rid, **op))
                events.append(
                    ev(t, "answer", device=device, id=rid, ok=False, lost=True, error="timeout")
                )
                events.append(ev(t, "applied", device=device, id=rid, ok=True, late=True))
            elif what == "note":
                events.append(ev(t, "note", text=draw(st.sampled_from(["x", "a longer note"]))))
            else:
                message = "a and b disagree"
                events.append(ev(t, "check", checker="c", clause="S1", message=message))
        start += length + draw(st.sampled_from([60.0, 500.0, 90000.0]))
    limit = draw(st.sampled_from([10_000, 30, 12]))
    return events, limit


@seed(20261206)
@settings(max_examples=150, deadline=None, database=None)
@given(crowded_traces())
def test_no_two_labels_overlap_and_none_crosses_a_torn_edge_or_leaves_its_bar(
    tmp_path_factory: Any, case: tuple[list[dict[str, Any]], int]
) -> None:
    """Issue 12, "labels do not overlap at cut edges", as a property of the layout: on random
    traces crowded at the torn edges of cut-out gaps and of the elided part, no two label boxes
    overlap, no label crosses a torn edge (but a break's own label, inside its break), and a
    fault's label stays inside its shaded bar, shortened with "…" (its tooltip has it all);
    and every crash, restart, join, reinstall and clock jump is named whole, in order (events
    close together share one label, ``crash, restart``)."""
    events, limit = case
    path = write_trace(tmp_path_factory.mktemp("labels") / "trace.jsonl", events)
    digest = read_trace(path, limit=limit)
    timeline = Timeline(digest, lay_out(digest))
    root = parse(timeline.svg())
    labels = label_boxes(root)
    edges = torn_edges(root, timeline.bottom)
    for index, (box, group) in enumerate(labels):
        for other, _group in labels[index + 1 :]:
            assert not box.overlaps(other), (box, other)
        for edge, cut in edges:
            if cut is not group:
                assert not box.overlaps(edge), (box, edge)
        if "elided" in group.classes or "break" in group.classes:
            rect = next(c for c in group.children if c.tag == "rect")
            x = float(rect.attrs["x"])
            assert x + 3 <= box.x0 and box.x1 <= x + float(rect.attrs["width"]) - 3, box
        if "fault" in group.classes:
            rect = next(c for c in group.children if c.tag == "rect")
            x = float(rect.attrs["x"])
            assert x <= box.x0 and box.x1 <= x + float(rect.attrs["width"]), (box, rect.attrs)
            title = next(c for c in group.children if c.tag == "title").text
            label = next(c for c in group.children if c.tag == "text").all_text()
            assert label.removesuffix("…") in title
    drawn, named = named_events(root)
    assert named == drawn  # each event named once, whole, in order: none squeezed out by a cut


def named_events(root: Node) -> tuple[dict[float, list[str]], dict[float, list[str]]]:
    """Per lane (by the y of its event labels): the crashes, restarts, joins, reinstalls and
    clock jumps drawn, in x order, and the names their labels give, in x order."""
    events: dict[float, list[tuple[float, str]]] = {}
    named: dict[float, list[tuple[float, str]]] = {}
    for group in root.find("g", "mark"):
        if not group.classes & {"device", "clock-jump"}:
            continue
        stroke = next(c for c in group.children if c.tag == "line")
        y = float(stroke.attrs["y2"]) - 2
        name = (
            next(c[7:] for c in group.classes if c.startswith("device-"))
            if ("device" in group.classes)
            else "clock"
        )
        events.setdefault(y, []).append((float(stroke.attrs["x1"]), name))
        for child in group.children:
            if child.tag == "text":
                for part in child.all_text().split(", "):
                    named.setdefault(y, []).append((float(child.attrs["x"]), part.split(" ")[0]))
    return (
        {y: [n for _x, n in sorted(found)] for y, found in events.items()},
        {y: [n for _x, n in sorted(found, key=lambda p: p[0])] for y, found in named.items()},
    )


def test_a_long_fault_label_is_shortened_to_its_bar_and_whole_in_its_tooltip(
    tmp_path: Path,
) -> None:
    """Issue 12: a fault label longer than its bar ends in "…" inside the bar; the tooltip
    names the fault with its whole detail."""
    events = [
        ev(0, "device", device="a", event="join"),
        ev(1, "fault", target="vault", fault="server_errors", on=True, detail={"before": 0.3}),
        ev(3, "fault", target="vault", fault="server_errors", on=False),
        ev(5, "device", device="a", event="crash"),
    ]
    path = write_trace(tmp_path / "trace.jsonl", events)
    digest = read_trace(path)
    root = parse(Timeline(digest, lay_out(digest)).svg())
    (fault,) = root.find("g", "fault")
    label = next(c for c in fault.children if c.tag == "text").text
    assert label.endswith("…") and "server_errors: before=0.3".startswith(label[:-1])
    assert "server_errors: before=0.3" in next(c for c in fault.children if c.tag == "title").text
