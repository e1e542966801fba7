"""The timeline report explains a failure (issue 12): findings on their causes, values and
versions, grouped findings, a strip over the whole run, labels kept apart, failing assertions
traced by the conformance harness."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from simulator.report import render_timeline
from tests.simulator.test_report import Node, ev, exchange, parse, render


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
    cut-out gap keep off its label, its torn edges and each other: they stand left of their
    line, start after the label or are cut; the note squeezed between two gaps (13 px) keeps
    its line and tooltip only."""
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
    assert len(labels) == 2 + 3
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
    # (the legacy also never retries, W6, and asks about every key in idle passes, W9: those
    # findings name no write)
    assert [f.key for f in outcome.findings if f.clause == "ORD-2"] == ["x", "y"]
    lines = read(trace)
    writes = [line for line in lines if line["kind"] == "write"]
    assert all("value" in line for line in writes)
    assert all("value" in line for line in lines if line["kind"] == "callback")
    numbered = list(enumerate((line for line in lines if line["kind"] == "check"), 1))
    checks = [check for _n, check in numbered if check["clause"] == "ORD-2"]
    assert [len(c["causes"]) for c in checks] == [1, 2]  # "expected one of" names 1, then 2
    _html, root = render_file(tmp_path, trace)
    marked = {(m.attrs["data-finding"], m.attrs["data-t"]) for m in root.find("g", "cause")}
    expected = {
        (str(n), _stamp(w["t"]))
        for n, check in numbered
        if check["clause"] == "ORD-2"
        for w in writes
        for cause in check["causes"]
        if w["device"] == cause["device"]
        and w["key"] == cause["key"]
        and w["value"] == cause["value"]
    }
    # the report numbers its findings its own way: the two ORD-2 findings mark exactly their
    # writes, three in all
    assert {t for _n, t in marked} == {t for _n, t in expected} and len(marked) == 3
    assert len({n for n, _t in marked}) == 2


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
