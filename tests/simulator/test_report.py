"""The HTML timeline of a simulator trace (:mod:`simulator.report`), on hand-written traces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise
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


# -- issue 12: reports that explain a failure ------------------------------------------------


def lost_update() -> list[dict[str, Any]]:
    """Two writes of one key; the checker finds the later one lost and names it as the cause."""
    write = {"context": "notes", "key": "x", "op": "upsert"}
    return [
        ev(0, "device", device="phone", event="join", offset=0.0, drift_ppm=0.0),
        ev(0, "device", device="laptop", event="join", offset=0.0, drift_ppm=0.0),
        ev(1, "write", device="phone", **write, value="phone's", version="v1"),
        ev(2, "write", device="laptop", **write, value="laptop's", version="v2"),
        ev(
            3,
            "callback",
            device="phone",
            context="notes",
            key="x",
            action="modify",
            accepted=True,
            value={"text": "laptop's"},
            version="v2",
        ),
        ev(
            9,
            "check",
            checker="no lost update",
            clause="ORD-2",
            context="notes",
            key="x",
            message="acknowledged 'laptop's' by laptop (v2) is not the final state",
            causes=[
                {
                    "kind": "write",
                    "device": "laptop",
                    "context": "notes",
                    "key": "x",
                    "version": "v2",
                }
            ],
        ),
    ]


def test_a_finding_is_marked_on_the_write_that_caused_it_and_linked_both_ways(
    tmp_path: Path,
) -> None:
    """Issue 12, "finding markers sit on the writes and deliveries that caused them": the
    check's named cause (the laptop's write at t=2) carries the finding's number, links to its
    entry in the findings box, and the entry links back to it; the other write carries none."""
    html, root = render(tmp_path, lost_update())
    (cause,) = root.find("g", "cause")
    assert cause.attrs["data-t"] == "2" and cause.attrs["id"] == "cause-1-1"
    assert cause.attrs["data-finding"] == "1"
    assert "1" in [n.text for n in cause.walk() if n.tag == "text"]
    assert '<a href="#summary-1"><g class="mark cause"' in html
    (entry,) = [n for n in root.find("li") if n.attrs.get("id") == "summary-1"]
    links = [a.attrs["href"] for a in entry.find("a")]
    assert "#cause-1-1" in links and "#finding-1" in links
    assert "laptop's" in entry.all_text() and "v2" in entry.all_text()  # the detail row
    (finding,) = root.find("g", "finding")
    assert '<a href="#summary-1"><g class="mark finding"' in html and finding.attrs["id"]


def test_a_finding_without_named_causes_marks_the_events_on_its_key_as_related(
    tmp_path: Path,
) -> None:
    """Issue 12: a check naming no cause (an older trace, a convergence check) still points at
    the last write of its key and the last callback for it on its device, as *related*."""
    events = lost_update()
    check = events[-1]
    del check["causes"]
    check["device"] = "phone"
    _html, root = render(tmp_path, events)
    marks = root.find("g", "cause", "related")
    assert sorted(m.attrs["data-t"] for m in marks) == ["2", "3"]
    assert "Related" in root.find("section", "findings")[0].all_text()


def test_tooltips_show_the_value_and_version_of_writes_and_callbacks(tmp_path: Path) -> None:
    """Issue 12, "tooltips and detail rows show the value and the version"."""
    _html, root = render(tmp_path, lost_update())
    (write,) = [w for w in root.find("g", "write") if w.attrs["data-t"] == "2"]
    tip = write.find("title")[0].text
    assert 'value "laptop\'s"' in tip and "version v2" in tip
    (callback,) = root.find("g", "callback")
    tip = callback.find("title")[0].text
    assert 'value {"text": "laptop\'s"}' in tip and "version v2" in tip


def test_findings_about_one_key_or_one_clause_are_one_group(tmp_path: Path) -> None:
    """Issue 12, "findings with one root cause are grouped (by key, by clause)": three
    findings on notes/x (two devices, two clauses) are group 1, the one on notes/y group 2,
    two COST-1 findings without a key group 3; every marker carries its group's number."""

    def check(clause: str, device: str, key: str | None) -> dict[str, Any]:
        where = {"context": "notes", "key": key} if key else {}
        return ev(50, "check", checker="c", clause=clause, device=device, message="m", **where)

    events = [
        *lost_update()[:-1],
        check("SYNC-1", "phone", "x"),
        check("CB-5", "phone", "x"),
        check("SYNC-1", "laptop", "x"),
        check("SYNC-1", "laptop", "y"),
        check("COST-1", "phone", None),
        check("COST-1", "laptop", None),
    ]
    _html, root = render(tmp_path, events)
    box = root.find("section", "findings", "bad")[0]
    assert "6 finding" in box.all_text() and "in 3 groups" in box.all_text()
    items = [n for n in box.find("li") if n.attrs.get("id", "").startswith("summary-")]
    assert [n.attrs["id"] for n in items] == ["summary-1", "summary-2", "summary-3"]
    assert "+2 more" in items[0].all_text() and "+1 more" in items[2].all_text()
    badges = [
        next(t.text for t in g.walk() if t.tag == "text" and t.text.isdigit())
        for g in root.find("g", "finding")
    ]
    assert badges == ["1", "1", "1", "2", "3", "3"]
    (by_clause,) = box.find("p", "by-clause")
    assert "c ×3 over 2 keys" in by_clause.all_text()


def test_many_findings_leave_the_timeline_in_view_and_show_where_they_are(
    tmp_path: Path,
) -> None:
    """Issue 12, "the timeline stays above the fold": the findings box is capped in height
    (it scrolls), and a strip as wide as the page shows each finding and cause at its place in
    the whole run, linked to it (a finding at the far right end is at the far right)."""
    events = [*lost_update(), ev(3000, "note", text="the end")]
    events[-2]["t"] = 2999
    html, root = render(tmp_path, events)
    assert re.search(r"\.findings \{[^}]*max-height: 32vh; overflow-y: auto;", html)
    (strip,) = root.find("div", "overview")
    links = {a.attrs["href"]: a.attrs["style"] for a in strip.find("a")}
    assert set(links) == {"#finding-1", "#cause-1-1"}
    at = {href: float(style.split(":")[1].strip(" %")) for href, style in links.items()}
    assert at["#cause-1-1"] < 30 < 60 < at["#finding-1"] < 100
    assert html.index('class="overview"') < html.index('id="timeline"')


CHAR_W = 6.0
"""A generous width of a character of a 10 px label (what the report keeps labels apart by)."""


def _label_extents(root: Node, cls: str, anchor_middle: bool) -> list[tuple[float, float]]:
    found = []
    for node in root.find("text", cls):
        width = CHAR_W * len(node.text)
        x = float(node.attrs["x"])
        found.append((x - width / 2, x + width / 2) if anchor_middle else (x, x + width))
    return found


def test_note_labels_do_not_overlap_the_labels_of_cut_gaps(tmp_path: Path) -> None:
    """Issue 12, "labels do not overlap at cut edges": notes just before and just after a
    cut-out gap keep off its label (and off each other): they start after it or are cut."""
    long = "a scenario note long enough to run far to the right"
    events = [
        ev(0, "device", device="a", event="join"),
        ev(10, "note", text=long),
        ev(500, "note", text=long),
        ev(500.001, "note", text="x"),
        ev(2000, "note", text=long),
    ]
    _html, root = render(tmp_path, events)
    labels = _label_extents(root, "break-label", True) + _label_extents(root, "note-label", False)
    assert len(labels) == 2 + 4
    labels.sort()
    for (_a0, a1), (b0, _b1) in pairwise(labels):
        assert a1 <= b0, labels


def test_a_lost_update_in_a_real_run_is_marked_on_the_lost_writes(tmp_path: Path) -> None:
    """Issue 12, end to end: the legacy helper loses updates under clock skew (W2); the trace's
    writes and callbacks carry their values, each ORD-2 check names the writes that should
    have won, and the report marks exactly those writes with the finding's number."""
    from conformance.implementations import legacy
    from simulator.scenarios import get
    from simulator.world import simulate
    from simulator.world.trace import read

    info = get("w2-clock-skew")
    trace = tmp_path / "w2.jsonl"
    outcome = simulate(
        info,
        seed=1,
        factory=legacy.factory,
        workdir=tmp_path / "stores",
        trace_path=trace,
        **info.world_options(),
    )
    assert [f.key for f in outcome.findings] == ["x", "y"]
    lines = read(trace)
    writes = [line for line in lines if line["kind"] == "write"]
    assert all("value" in line for line in writes)
    assert all("value" in line for line in lines if line["kind"] == "callback")
    checks = [line for line in lines if line["kind"] == "check"]
    assert [len(c["causes"]) for c in checks] == [1, 2]  # "expected one of" names 1, then 2
    _html, root = render_file(tmp_path, trace)
    marked = {(m.attrs["data-finding"], m.attrs["data-t"]) for m in root.find("g", "cause")}
    expected = {
        (str(n), _stamp(w["t"]))
        for n, check in enumerate(checks, 1)
        for w in writes
        for cause in check["causes"]
        if w["device"] == cause["device"]
        and w["key"] == cause["key"]
        and w["value"] == cause["value"]
    }
    assert marked == expected and len(marked) == 3


def _stamp(t: float) -> str:
    return f"{t:.6f}".rstrip("0").rstrip(".")


def render_file(tmp_path: Path, trace: Path) -> tuple[str, Node]:
    out = render_timeline(trace, tmp_path / "out.html")
    html = out.read_text(encoding="utf-8")
    return html, parse(html)


def test_an_assertion_failing_in_a_conformance_test_is_a_finding_in_its_trace(
    tmp_path: Path,
) -> None:
    """Issue 12, "an assertion failure inside a test is recorded in its trace": the harness
    traces it as a check (clause TEST, its message), so the report is not "No findings"."""
    from conformance.harness import Sim, Target
    from simulator.world import World

    sim = Sim(Target("reference", None), seed=1, workdir=tmp_path, nodeid="t.py::test_it")

    async def scenario(world: World) -> None:
        phone = world.add_device("phone")
        await phone.put("x", 1)
        await world.advance(5)
        assert phone.local() == {"x": 2}, "phone holds the wrong value"

    with pytest.raises(AssertionError, match="wrong value"):
        sim.run(scenario)
    (trace,) = sim.traces
    (check,) = [line for line in read_lines(trace) if line["kind"] == "check"]
    assert check["clause"] == "TEST" and "test_it" in check["checker"]
    assert "phone holds the wrong value" in check["message"]
    _html, root = render_file(tmp_path, trace)
    assert root.find("section", "findings", "bad") and not root.find("section", "findings", "ok")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_a_write_request_shows_the_value_and_version_it_sets(tmp_path: Path) -> None:
    """Issue 12, "tooltips show the value and the version" of requests: the request's tooltip
    names what it sets; a real run traces them on its write requests."""
    events = [
        ev(0, "device", device="a", event="join"),
        ev(
            1,
            "request",
            device="a",
            id=1,
            op="update_one",
            collection="c",
            key="x",
            value={"n": 1},
            version="v7",
        ),
        ev(1.01, "applied", device="a", id=1, ok=True, error=None),
        ev(1.02, "answer", device="a", id=1, ok=True, lost=False, error=None),
    ]
    _html, root = render(tmp_path, events)
    tip = exchange(root, 1).find("title")[0].text
    assert 'value {"n": 1}' in tip and "version v7" in tip

    from simulator.scenarios import get
    from simulator.world import simulate
    from simulator.world.trace import read

    info = get("w2-clock-skew")
    trace = tmp_path / "ref.jsonl"
    simulate(info, seed=1, trace_path=trace, **info.world_options())
    writes = [r for r in read(trace) if r["kind"] == "request" and r["op"] == "update_one"]
    assert writes and all("value" in r and "version" in r for r in writes)
