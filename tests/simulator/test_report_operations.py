"""A finding from a cost or liveness check names the operations behind it (issue 10, item 9): when
its trace line names vault requests as causes, the timeline report rings each of them, names
each by its operation, and counts them by operation in the finding's entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.report import render_timeline
from tests.simulator.test_report import ev, parse, render, write_trace


def idle_pass_cost() -> list[dict[str, Any]]:
    """An idle pass of three requests, two of them named as the causes of a COST-1 finding, a
    third named by an ``op`` only (as a cause in the elided part of a long trace would be)."""
    events: list[dict[str, Any]] = [ev(0, "device", device="phone", event="join")]
    for rid, (t, op) in enumerate(((1, "query"), (2, "query"), (3, "update_one")), 1):
        events += [
            ev(t, "request", device="phone", id=rid, op=op, collection="notes"),
            ev(t + 0.01, "applied", device="phone", id=rid, ok=True, error=None),
            ev(t + 0.02, "answer", device="phone", id=rid, ok=True, lost=False, error=None),
        ]
    events.append(
        ev(
            9,
            "check",
            checker="cost",
            clause="COST-1",
            device="phone",
            message="an idle pass cost 4 requests (budget 3)",
            causes=[
                {"kind": "request", "device": "phone", "id": 1},
                {"kind": "request", "device": "phone", "id": 3},
                {"kind": "request", "device": "phone", "id": 2},
                {"kind": "request", "device": "phone", "id": 99, "op": "find_many"},
            ],
        )
    )
    return events


def test_a_cost_finding_counts_and_rings_the_requests_it_names(tmp_path: Path) -> None:
    """Issue 10, item 9: the finding's entry says which operations made it ("query ×2, ...")
    and names each request by its operation and collection; each request is ringed on the
    timeline with a tooltip naming its operation; the message is shown whole."""
    html, root = render(tmp_path, idle_pass_cost())
    (entry,) = [n for n in root.find("li") if n.attrs.get("id") == "summary-1"]
    text = entry.all_text()
    assert "an idle pass cost 4 requests (budget 3)" in text
    assert "Operations: query ×2, find_many ×1, update_one ×1 (4 vault requests)" in text
    assert "query notes by phone at" in text and "update_one notes by phone at" in text
    assert "callback" not in text  # a request is not named as a callback
    rings = root.find("g", "cause")
    assert [g.attrs["data-t"] for g in rings] == ["1", "2", "3"]
    tips = [g.find("title")[0].text for g in rings]
    assert tips[0].startswith("request query notes a cause of finding #1")
    assert tips[2].startswith("request update_one notes a cause of finding #1")
    assert "(1 cause(s) not drawn" in html  # the one only named by its op


def test_a_finding_naming_no_requests_has_no_operations_line(tmp_path: Path) -> None:
    """Issue 10, item 9: the operations line is there only when requests are named (a finding
    about values keeps its values-and-versions rows)."""
    events = [ev(0, "device", device="phone", event="join")]
    events.append(
        ev(5, "check", checker="cost", clause="COST-1", device="phone", message="too many")
    )
    trace = write_trace(tmp_path / "trace.jsonl", events)
    out = render_timeline(trace, tmp_path / "report.html")
    root = parse(out.read_text(encoding="utf-8"))
    (entry,) = [n for n in root.find("li") if n.attrs.get("id") == "summary-1"]
    assert "Operations:" not in entry.all_text()
    assert "too many" in entry.all_text()
