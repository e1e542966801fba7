"""The HTML timeline of a simulator trace (:mod:`simulator.report`), on hand-written traces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from simulator.report import main, render_timeline
from simulator.report.layout import format_duration, format_time

RED = "#d62728"


# -- helpers ------------------------------------------------------------------------------------


def ev(t: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, "kind": kind, **fields}


def write_trace(path: Path, events: list[dict[str, Any]]) -> Path:
    """Write ``events`` as a trace (sorted by time, keys sorted, like :class:`Trace`)."""
    ordered = sorted(events, key=lambda e: e["t"])  # stable: same-time events keep their order
    lines = (json.dumps(e, sort_keys=True, separators=(",", ":")) for e in ordered)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def timeout(t: float, device: str, rid: int) -> dict[str, Any]:
    """The client gave up waiting: the answer never arrived."""
    return ev(
        t, "answer", device=device, id=rid, ok=False, lost=True, definite=False, error="timeout"
    )


def story() -> list[dict[str, Any]]:
    """Two devices: a lost answer, a partition, a definite failure, a late apply, a finding."""
    return [
        ev(0, "meta", seed=7, contexts=["notes"]),
        ev(0, "device", device="phone", event="join", offset=0.0, drift_ppm=0.0),
        ev(0, "device", device="tablet", event="join", offset=-3600, drift_ppm=0.0),
        ev(0, "write", device="phone", context="notes", key="x", op="upsert", version="v1"),
        ev(1, "pass", device="phone", phase="start", full=False),
        ev(1, "request", device="phone", id=2, op="update_one", collection="c", key="x"),
        ev(1.02, "applied", device="phone", id=2, ok=True, error=None),
        ev(10, "fault", target="tablet", fault="partition", on=True),
        ev(11, "request", device="tablet", id=1, op="update_one", collection="c", key="y"),
        ev(20, "fault", target="tablet", fault="jump_clock", on=True, detail={"seconds": -600}),
        timeout(31, "phone", 2),
        ev(31, "pass", device="phone", phase="end", completed=False, reason="vault_error"),
        timeout(41, "tablet", 1),
        ev(60, "fault", target="tablet", fault="partition", on=False),
        ev(70, "device", device="tablet", event="crash"),
        ev(80, "request", device="phone", id=3, op="query", collection="c", key=None),
        ev(80.01, "applied", device="phone", id=3, ok=True, error=None),
        ev(80.03, "answer", device="phone", id=3, ok=True, lost=False, error=None),
        ev(
            80.03,
            "callback",
            device="phone",
            context="notes",
            key="y",
            action="insert",
            accepted=True,
            version="v2",
        ),
        ev(
            80.03,
            "callback",
            device="phone",
            context="notes",
            key="z",
            action="modify",
            accepted=False,
            version="v3",
        ),
        ev(90, "request", device="tablet", id=4, op="update_one", collection="c", key="y"),
        ev(
            90,
            "answer",
            device="tablet",
            id=4,
            ok=False,
            lost=True,
            definite=True,
            error="unreachable",
        ),
        ev(100, "request", device="phone", id=5, op="update_one", collection="c", key="x"),
        timeout(130, "phone", 5),
        ev(140, "applied", device="phone", id=5, ok=True, error=None, late=True),
        ev(
            150,
            "check",
            checker="convergence",
            clause="S1",
            device="phone",
            context="notes",
            key="x",
            message="phone and tablet disagree on notes/x",
        ),
    ]


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: str, *classes: str) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag and set(classes) <= n.classes]

    def all_text(self) -> str:
        return self.text + "".join(child.all_text() for child in self.children)


class TreeBuilder(HTMLParser):
    """A strict little DOM: every element must be closed, in order."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> while <{self.stack[-1].tag}> is open")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.errors == []
    assert [n.tag for n in builder.stack] == ["#document"], "unclosed elements"
    return builder.root


def render(tmp_path: Path, events: list[dict[str, Any]], **options: Any) -> tuple[str, Node]:
    trace = write_trace(tmp_path / "trace.jsonl", events)
    out = render_timeline(trace, tmp_path / "out" / "report.html", **options)
    html = out.read_text(encoding="utf-8")
    return html, parse(html)


def exchange(root: Node, t: float) -> Node:
    """The mark of the request sent at ``t``."""
    found = [g for g in root.find("g", "exchange") if g.attrs["data-t"] == f"{t:g}"]
    assert len(found) == 1
    return found[0]


# -- tests --------------------------------------------------------------------------------------


def test_page_is_well_formed_and_self_contained(tmp_path: Path) -> None:
    """The page parses with every element closed, has exactly three SVGs (lane names, timeline,
    legend), one mark per request, and loads nothing from outside (no script, no URL)."""
    html, root = render(tmp_path, story())
    assert html.startswith("<!DOCTYPE html>")
    assert len(root.find("svg")) == 3
    assert len(root.find("g", "exchange")) == 5
    assert all(g.children[0].tag == "title" for g in root.find("g", "mark"))
    assert not root.find("script") and not root.find("link")
    assert re.findall(r'(?:src|href)="(?!#)', html) == []
    urls = set(re.findall(r"https?://[^\s\"')]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}


def test_lanes_follow_first_appearance_then_vault(tmp_path: Path) -> None:
    """One lane per device, in order of first appearance (a fault's target counts), the vault
    last."""
    events = [
        ev(0, "fault", target="zeta", fault="disconnect", on=True),
        ev(1, "write", device="alpha", context="c", key="k", op="upsert", version="v"),
        ev(2, "device", device="mid", event="join"),
        ev(3, "write", device="zeta", context="c", key="k", op="delete", version="w"),
    ]
    _html, root = render(tmp_path, events)
    names = [t.all_text() for t in root.find("text", "lane-name")]
    assert names == ["zeta", "alpha", "mid", "vault"]


def test_findings_head_the_page_and_are_marked_at_their_time(tmp_path: Path) -> None:
    """Check lines fill the findings box (clause, checker, device, key, time, message) and each
    is marked on the timeline at its time, linked from the box; caller strings are shown too,
    once even when they repeat a check line."""
    given = [
        "[S1] convergence at t=150.000s phone/notes/x: phone and tablet disagree on notes/x",
        "the idle cost was 12 requests",
    ]
    html, root = render(tmp_path, story(), findings=given, title="Run 7")
    box = root.find("section", "findings", "bad")[0]
    text = box.all_text()
    assert "2 findings" in text
    for part in ("[S1]", "convergence", "phone", "notes", "x", "2m 30.000s", "disagree"):
        assert part in text
    assert "the idle cost was 12 requests" in text
    assert text.count("disagree") == 1
    assert html.index('class="findings bad"') < html.index('id="timeline"')
    (finding,) = root.find("g", "finding")
    assert finding.attrs["data-t"] == "150" and finding.attrs["id"] == "finding-1"
    assert box.find("a")[0].attrs["href"] == "#finding-1"
    assert "Run 7" in root.find("h1")[0].all_text()


def test_no_findings_says_so(tmp_path: Path) -> None:
    """A clean trace gets a green box saying there are no findings."""
    events = [e for e in story() if e["kind"] != "check"]
    _html, root = render(tmp_path, events)
    assert root.find("section", "findings", "ok")
    assert not root.find("g", "finding")


def test_lost_answer_is_dashed_red_and_ends_in_a_cross(tmp_path: Path) -> None:
    """An answer that never arrived is drawn from the vault as a dashed red line ending in ✕,
    not as an answer arrow; a definite failure and a late apply are marked differently."""
    _html, root = render(tmp_path, story())
    lost = exchange(root, 1)
    assert {"lost"} <= lost.classes and "definite" not in lost.classes
    dashed = [n for n in lost.find("line") if n.attrs.get("stroke-dasharray")]
    assert dashed and dashed[0].attrs["stroke"] == RED
    assert "marker-end" not in dashed[0].attrs
    assert [p.attrs["stroke"] for p in lost.find("path")] == [RED]  # the ✕
    assert "NO ANSWER" in lost.find("title")[0].text

    definite = exchange(root, 90)
    assert "definite" in definite.classes and "lost" not in definite.classes
    late = exchange(root, 100)
    assert {"late", "lost"} <= late.classes
    assert any(t.text == "late" for t in late.find("text"))
    ok = exchange(root, 80)
    assert not ok.classes & {"lost", "late", "definite", "pending"}
    arrows = [n for n in ok.find("line") if "marker-end" in n.attrs]
    assert len(arrows) == 2  # the request down, the answer back up


def test_partition_shades_its_lane_from_on_to_off(tmp_path: Path) -> None:
    """A partition shades the target's lane from its ``on: true`` to its ``on: false``: a mark
    of that lane between the two lies inside the shading, one after it outside."""
    _html, root = render(tmp_path, story())
    (shade,) = root.find("g", "fault-partition")
    assert (shade.attrs["data-lane"], shade.attrs["data-t0"], shade.attrs["data-t1"]) == (
        "tablet",
        "10",
        "60",
    )
    rect = shade.find("rect")[0]
    left, right = float(rect.attrs["x"]), float(rect.attrs["x"]) + float(rect.attrs["width"])
    inside = float(root.find("g", "clock-jump")[0].find("line")[0].attrs["x1"])  # t=20
    after = float(root.find("g", "device-crash")[0].find("line")[0].attrs["x1"])  # t=70
    assert left < inside < right < after
    tablet = next(t for t in root.find("text", "lane-name") if t.text == "tablet")
    phone = next(t for t in root.find("text", "lane-name") if t.text == "phone")
    y = float(rect.attrs["y"])
    assert float(phone.attrs["y"]) < y < float(tablet.attrs["y"])  # on the tablet's lane


def test_clock_jumps_callbacks_writes_and_passes_are_marked(tmp_path: Path) -> None:
    """A clock jump shows its size; callbacks show accepted vs refused; writes and the end of a
    pass that failed are marked."""
    _html, root = render(tmp_path, story())
    assert "clock −10m" in root.find("g", "clock-jump")[0].all_text()
    assert len(root.find("g", "callback", "accepted")) == 1
    (refused,) = root.find("g", "callback", "refused")
    assert "✕" in refused.all_text() and "REFUSED" in refused.find("title")[0].text
    assert len(root.find("g", "write", "write-upsert")) == 1
    assert len(root.find("g", "pass-failed")) == 1
    assert len(root.find("g", "device-join")) == 2


def test_same_trace_gives_byte_identical_html(tmp_path: Path) -> None:
    """Rendering is deterministic: the same trace, wherever it lies, gives the same bytes."""
    first = write_trace(tmp_path / "a.jsonl", story())
    second = write_trace(tmp_path / "b.jsonl", story())
    one = render_timeline(first, tmp_path / "one.html", findings=["x"]).read_bytes()
    two = render_timeline(first, tmp_path / "two.html", findings=["x"]).read_bytes()
    three = render_timeline(second, tmp_path / "three.html", findings=["x"]).read_bytes()
    assert one == two == three


def test_long_idle_gaps_are_cut_and_ticks_use_large_units(tmp_path: Path) -> None:
    """A two-day gap becomes a labelled break instead of two days of width, and tick labels
    name days; a short run's ticks show fractions of a second."""
    long = [
        ev(0, "write", device="d", context="c", key="k", op="upsert", version="1"),
        ev(1, "write", device="d", context="c", key="k", op="upsert", version="2"),
        ev(172_800, "write", device="d", context="c", key="k", op="upsert", version="3"),
        ev(172_801, "write", device="d", context="c", key="k", op="upsert", version="4"),
    ]
    _html, root = render(tmp_path, long)
    (cut,) = root.find("g", "break")
    assert "+1d 23h" in cut.all_text()
    assert float(root.find("svg")[1].attrs["width"]) < 600
    ticks = [t.text for t in root.find("text", "tick")]
    assert ticks[0] == "0s" and any(label.startswith("2d 0h 0m") for label in ticks)

    short = [
        ev(i / 4, "write", device="d", context="c", key="k", op="upsert", version=str(i))
        for i in range(40)
    ]
    _html, root = render(tmp_path, short)
    ticks = [t.text for t in root.find("text", "tick")]
    assert len(ticks) >= 2 and all(re.fullmatch(r"\d+\.\ds", label) for label in ticks)
    assert not root.find("g", "break")


def test_long_trace_draws_head_and_tail_and_says_what_was_elided(tmp_path: Path) -> None:
    """Beyond 3000 events the first and last parts are drawn and the middle is elided (and
    said so); a finding in the middle is still listed; a partition open across the cut is
    shaded on both sides of it."""
    events = [ev(0, "fault", target="d", fault="partition", on=True)]
    for i in range(1, 1500):
        t = float(i)
        events += [
            ev(t, "request", device="d", id=i, op="query", collection="c", key=None),
            ev(t + 0.25, "applied", device="d", id=i, ok=True, error=None),
            ev(t + 0.5, "answer", device="d", id=i, ok=True, lost=False, error=None),
        ]
    events.append(ev(700.7, "check", checker="cost", clause="C9", message="too many requests"))
    events.append(ev(1499.9, "fault", target="d", fault="partition", on=False))
    html, root = render(tmp_path, events)
    notice = root.find("p", "notice")[0].all_text()
    assert "the first 1500 and the last 1500 events are drawn" in notice
    elided = len(events) - 3000
    assert f"the {elided} events between" in notice
    assert f"{elided} events elided" in root.find("g", "elided")[0].all_text()
    assert len(root.find("g", "exchange")) <= 1002
    assert "too many requests" in root.find("section", "findings")[0].all_text()
    assert not root.find("g", "finding")  # elided: listed, not drawn
    shades = root.find("g", "fault-partition")
    assert [(s.attrs.get("data-t0"), s.attrs.get("data-t1")) for s in shades] == [
        ("0", None),
        ("0", "1499.9"),
    ]
    assert html.count("<svg") == 3


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    """Garbage lines do not stop the report; the page says how many were skipped."""
    trace = write_trace(tmp_path / "t.jsonl", story())
    with trace.open("a", encoding="utf-8") as handle:
        handle.write("not json\n\n[1, 2]\n")
    html = render_timeline(trace, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "2 unreadable trace lines were skipped" in html
    parse(html)


def test_cli_writes_the_page_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m simulator.report TRACE OUT`` writes OUT and prints its path."""
    trace = write_trace(tmp_path / "t.jsonl", story())
    out = tmp_path / "page.html"
    assert main([str(trace), str(out), "--finding", "given by hand"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert "given by hand" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("seconds", "time", "duration"),
    [
        (0.25, "0.250s", "0.250s"),
        (75.4, "1m 15.400s", "1m 15s"),
        (3600, "1h 0m 0.000s", "1h"),
        (-600, "−10m 0.000s", "−10m"),
        (86_400 * 2 + 7, "2d 0h 0m 7.000s", "2d"),
    ],
)
def test_time_formats(seconds: float, time: str, duration: str) -> None:
    """Times name every unit down to the second; durations keep their two largest units."""
    assert format_time(seconds, 3) == time
    assert format_duration(seconds) == duration


def test_a_callback_without_a_version_shows_none(tmp_path: Path) -> None:
    """Another implementation reports no versions: its callbacks and writes say nothing of
    one, while the reference's still show theirs."""
    events = [
        ev(0.0, "device", device="a", event="join"),
        ev(1.0, "write", device="a", context="notes", key="x", op="upsert", version=None),
        ev(
            2.0,
            "callback",
            device="a",
            context="notes",
            key="x",
            action="insert",
            accepted=True,
            version=None,
        ),
        ev(
            3.0,
            "callback",
            device="a",
            context="notes",
            key="y",
            action="insert",
            accepted=True,
            version="000001750000000.000000.b",
        ),
    ]
    html, _ = render(tmp_path, events)
    assert "version None" not in html
    assert "version 000001750000000.000000.b" in html
