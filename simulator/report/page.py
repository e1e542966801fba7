"""The report's HTML page: the findings, the timeline, the legend and the tallies of a trace.

:func:`render_timeline` reads a trace (streaming, see :mod:`simulator.report.layout`) and writes
one HTML file: the findings first (the trace's ``check`` lines grouped by root cause, each with
its causes' values and versions, and any strings the caller passes), then a strip standing for
the whole run with every finding and cause on it, then the timeline (one lane per device in
order of first appearance and one for the vault, drawn by :mod:`simulator.report.timeline`),
then a legend and the tallies. The page has
inline CSS and SVG only: no script, no external resource, no generation time; the same trace
gives the same bytes. Hover any mark for its details. From the command line::

    python -m simulator.report TRACE.jsonl OUT.html
"""

from __future__ import annotations

import argparse
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from simulator.report.findings import Group, operations_text
from simulator.report.glyphs import legend_svg
from simulator.report.layout import (
    IDLE_BREAK,
    Digest,
    Event,
    format_duration,
    format_time,
    lay_out,
    read_trace,
)
from simulator.report.timeline import LABEL_W, Timeline, value_text

__all__ = ["main", "render_timeline"]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 14px 20px; background: #fff; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 15px; margin: 0 0 4px; }
.sub, .hint { color: #555; margin: 0 0 8px; }
.hint { font-size: 12.5px; }
.findings { border: 2px solid; border-radius: 6px; padding: 8px 14px; margin: 10px 0;
            max-height: 32vh; overflow-y: auto; }
.findings.bad { border-color: #d62728; background: #fff4f3; }
.findings.ok { border-color: #2e8b57; background: #f2faf5; }
.findings ol, .findings ul { margin: 2px 0; padding-left: 22px; }
.findings a { color: #b00; font-weight: 700; }
.clause { font-weight: 700; }
.notice { border-left: 4px solid #7b3fb0; background: #f6f1fb; padding: 4px 10px; }
.timeline { display: flex; border: 1px solid #ccc; border-radius: 4px; margin: 6px 0 12px; }
.labels { flex: none; border-right: 1px solid #ccc; }
.scroll { overflow-x: auto; flex: 1; }
svg { display: block; }
svg text { font-family: inherit; }
.tick { font-size: 11px; fill: #444; }
.lane-name { font-size: 14px; font-weight: 600; }
.lane-note { font-size: 11px; fill: #777; }
.glyph { font-size: 9px; font-weight: 700; text-anchor: middle; }
.sign { font-size: 10px; font-weight: 700; text-anchor: middle; }
.small { font-size: 10px; text-anchor: middle; }
.badge { font-size: 10px; font-weight: 700; fill: #fff; text-anchor: middle; }
.fault-label, .event-label { font-size: 10px; font-weight: 600; }
.break-label { font-size: 10px; fill: #555; text-anchor: middle; }
.note-label { font-size: 10px; fill: #666; }
.legend-label { font-size: 12px; }
.mark:hover line, .mark:hover path, .mark:hover polyline { stroke-width: 3; }
.fault:hover rect { fill-opacity: 0.25; }
.tally p { margin: 2px 0; font-size: 13px; }
.findings li { margin: 2px 0; scroll-margin-top: 8px; }
.mark.finding, .mark.cause { scroll-margin: 150px 260px 40px; }
.findings .by-clause { margin: 0 0 4px; font-size: 13px; }
.overview a { white-space: nowrap; }
.findings details { margin: 0 0 4px; }
.findings summary { cursor: pointer; color: #555; font-size: 12.5px; }
.findings table { border-collapse: collapse; font-size: 12.5px; margin: 2px 0 4px; }
.findings td, .findings th { border-top: 1px solid #f0c8c4; padding: 1px 8px 1px 0;
                             text-align: left; vertical-align: top; }
.findings td.value { font-family: ui-monospace, monospace; }
.overview { position: relative; height: 22px; margin: 6px 0 0; border: 1px solid #ddd;
            border-radius: 4px; background: #fafafa; }
.overview .track { position: absolute; left: 0; right: 0; top: 0; bottom: 0; }
.overview .name { position: absolute; left: 8px; top: 3px; font-size: 11px; color: #777; }
.overview a { position: absolute; top: 2px; transform: translateX(-50%); text-decoration: none;
              font: 700 10px/16px system-ui, sans-serif; color: #fff; background: #d62728;
              border-radius: 8px; min-width: 16px; text-align: center; }
.overview a.cause { background: #fff; color: #d62728; border: 1.5px solid #d62728;
                    line-height: 13px; min-width: 13px; }
"""


def render_timeline(
    trace_path: Path | str,
    html_path: Path | str,
    *,
    title: str | None = None,
    findings: Sequence[str] | None = None,
) -> Path:
    """Write the timeline of the trace at ``trace_path`` to ``html_path``; return that path.

    ``findings`` are shown at the top next to the trace's own ``check`` lines (a string that
    repeats a check line as :class:`simulator.world.checkers.Finding` prints it is shown once).
    """
    digest = read_trace(trace_path)
    page = render_page(digest, title=title, findings=list(findings or []))
    out = Path(html_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(page.encode("utf-8"))
    return out


def render_page(digest: Digest, *, title: str | None = None, findings: Sequence[str] = ()) -> str:
    """The whole HTML page for a digest."""
    axis = lay_out(digest)
    timeline = Timeline(digest, axis)
    heading = title or _default_title(digest)
    body = [
        f"<h1>{_esc(heading)}</h1>",
        f'<p class="sub">{_esc(_summary(digest))}</p>',
        _findings_box(digest, findings, timeline.groups),
        *_notices(digest),
        _overview(timeline),
        '<div class="timeline">',
        f'<div class="labels">{timeline.labels_svg()}</div>',
        f'<div class="scroll">{timeline.svg()}</div>',
        "</div>",
        '<p class="hint">Time flows left to right but not to scale: events keep their order, '
        "the space between two moments grows with the logarithm of the time between them, and "
        f"gaps of {format_duration(IDLE_BREAK)} or more are cut out (torn edges, labelled with "
        "their length). Hover any mark for its details. A numbered red badge on the timeline's "
        "top strip is a finding; the same number on a write or a callback marks what caused it "
        "(a dashed ring: only related, the checker named no cause). Click either to go to the "
        "other; the strip above the timeline shows where they all are in the whole run.</p>",
        "<h2>Legend</h2>",
        legend_svg(),
        "<h2>Tallies</h2>",
        _tallies(digest),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{_esc(heading)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _esc(text: object) -> str:
    return html.escape(str(text), quote=False)


def _default_title(digest: Digest) -> str:
    meta = digest.meta
    parts = [f"scenario {meta['scenario']}"] if "scenario" in meta else []
    if "seed" in meta:
        parts.append(f"seed {meta['seed']}")
    return "Simulator run" + (": " + ", ".join(parts) if parts else "")


def _summary(digest: Digest) -> str:
    events = sum(digest.counts.values())
    parts = [
        f"{len(digest.devices)} device{'s' * (len(digest.devices) != 1)}",
        f"{events} events",
        f"{format_time(digest.end, 1)} of virtual time",
    ]
    for key, value in sorted(digest.meta.items()):
        if key != "scenario":
            parts.append(f"{key} {json.dumps(value, sort_keys=True)}")
    return " · ".join(parts)


def _findings_box(digest: Digest, given: Sequence[str], groups: Sequence[Group]) -> str:
    """The findings, grouped by root cause: one line per group (its first finding, how many
    more, what caused it), the group's findings and causes as detail rows under it."""
    own = {_as_finding_string(check) for check in digest.checks}
    extra = [text for text in given if text not in own]
    total = len(digest.checks) + len(extra)
    if total == 0:
        return (
            '<section class="findings ok"><h2>No findings</h2>'
            "<p>The checkers reported nothing in this trace.</p></section>"
        )
    drawn = {event.seq for event in digest.events}
    heading = f"{total} finding{'s' * (total != 1)}"
    if groups and len(groups) != len(digest.checks):
        heading += f" in {len(groups)} groups (by key; by clause where there is none)"
    parts = ['<section class="findings bad">', f"<h2>{_esc(heading)}</h2>"]
    if len(groups) > 1:
        parts.append(f'<p class="by-clause">{_by_clause(digest.checks)}</p>')
    if groups:
        parts.append("<ol>")
        parts += (
            f'<li id="summary-{group.number}" value="{group.number}">'
            f"{_group_item(group, drawn)}</li>"
            for group in groups
        )
        parts.append("</ol>")
    if extra:
        parts.append("<p>Also reported:</p>" if digest.checks else "")
        parts += ["<ul>", *(f"<li>{_esc(text)}</li>" for text in extra), "</ul>"]
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _by_clause(checks: Sequence[Event]) -> str:
    """One line: how many findings of each clause, over how many keys."""
    found: dict[tuple[str, str], set[str]] = {}
    counts: dict[tuple[str, str], int] = {}
    for check in checks:
        name = (str(check.get("clause")), str(check.get("checker")))
        counts[name] = counts.get(name, 0) + 1
        if check.get("key") is not None:
            found.setdefault(name, set()).add(f"{check.get('context')}/{check.get('key')}")
    items = []
    for (clause, checker), n in sorted(counts.items()):
        keys = len(found.get((clause, checker), ()))
        over = f" over {keys} key{'s' * (keys != 1)}" if keys else ""
        items.append(f'<span class="clause">[{_esc(clause)}]</span> {_esc(checker)} ×{n}{over}')
    return "By clause: " + " · ".join(items)


def _group_item(group: Group, drawn: set[int]) -> str:
    first = group.checks[0]
    line = _finding_item(group.number, first, first.seq in drawn)
    more = len(group.checks) - 1
    if more:
        clauses = sorted({str(c.get("clause")) for c in group.checks})
        devices = sorted({str(c.get("device")) for c in group.checks if c.get("device")})
        on = f" on {', '.join(devices)}" if devices else ""
        line += (
            f" <b>+{more} more</b> about <b>{_esc(group.about)}</b> "
            f"({_esc(', '.join(clauses))}{_esc(on)})"
        )
    rows: list[str] = []
    if group.causes:
        what = "Related (no cause named)" if group.related else "Caused by"
        links = ", ".join(
            f'<a href="#cause-{group.number}-{n}">{_esc(_cause_name(e))}</a>'
            for n, e in enumerate(group.causes, 1)
        )
        line += f"<br>{what}: {links}"
    if group.operations:
        total = sum(group.operations.values())
        line += (
            f'<br><span class="operations">Operations: {_esc(operations_text(group.operations))}'
            f" ({total} vault request{'s' * (total != 1)})</span>"
        )
    if group.missing:
        line += f" <i>({group.missing} cause(s) not drawn: elided or not in the trace)</i>"
    if group.causes:
        rows.append(
            "<table><tr><th>cause</th><th>time</th><th>device</th><th>key</th>"
            "<th>value</th><th>version</th></tr>"
        )
        rows += (
            f"<tr><td>{_esc(_cause_name(e))}</td><td>{_esc(format_time(e.t, 3))}</td>"
            f"<td>{_esc(e.get('device'))}</td><td>{_esc(_where(e))}</td>"
            f'<td class="value">{_esc(_value_cell(e))}</td>'
            f"<td>{_esc(e.get('version') or '—')}</td></tr>"
            for e in group.causes
        )
        rows.append("</table>")
    if more:
        rows.append("<table><tr><th>finding</th><th>device</th><th>time</th><th>message</th></tr>")
        rows += (
            f"<tr><td>[{_esc(c.get('clause'))}] {_esc(c.get('checker'))}</td>"
            f"<td>{_esc(c.get('device') or '—')}</td><td>{_esc(format_time(c.t, 3))}</td>"
            f"<td>{_esc(c.get('message'))}</td></tr>"
            for c in group.checks
        )
        rows.append("</table>")
    if rows:
        shown = [_detail_name(group)] if group.causes else []
        shown += [f"all {len(group.checks)} findings"] if more else []
        line += f"<details><summary>{' · '.join(shown)}</summary>{''.join(rows)}</details>"
    return line


def _detail_name(group: Group) -> str:
    """What the causes' detail rows show."""
    if all(e.kind == "request" for e in group.causes):
        return "the requests"
    return "values and versions"


def _cause_name(event: Event) -> str:
    when = format_time(event.t, 3)
    if event.kind == "write":
        return f"{event.get('op')} by {event.get('device')} at {when}"
    if event.kind == "callback":
        verdict = "accepted" if event.get("accepted") else "refused"
        action = event.get("action")
        return f"{action} callback on {event.get('device')} at {when} ({verdict})"
    if event.kind == "request":
        return f"{event.get('op')} {_where(event)} by {event.get('device')} at {when}"
    if event.kind == "pass":
        return f"pass ({event.get('phase')}) on {event.get('device')} at {when}"
    return f"{event.kind} on {event.get('device') or event.lane} at {when}"


def _where(event: Event) -> str:
    """What a cause is about: ``context/key`` (a write, a callback), ``collection/key`` or
    ``collection`` (a vault request), or — ."""
    place = event.get("context") if event.kind != "request" else event.get("collection")
    key = event.get("key")
    if place is None and key is None:
        return "—"
    return "/".join(str(part) for part in (place, key) if part is not None)


def _value_cell(event: Event) -> str:
    if "value" not in event.data:
        return "(not traced)"
    if event.get("op") == "delete" or event.get("action") == "delete":
        return "(deleted)"
    return value_text(event.get("value"), 80)


def _finding_item(number: int, check: Event, drawn: bool) -> str:
    where = "".join(
        f" · {name} <b>{_esc(check.get(name))}</b>"
        for name in ("device", "context", "key")
        if check.get(name) is not None
    )
    anchor = f'<a href="#finding-{number}">#{number}</a>' if drawn else f"#{number}"
    clause = f'<span class="clause">[{_esc(check.get("clause"))}]</span>'
    when = f"at {_esc(format_time(check.t, 3))} (t={check.t:.6f}s)"
    hidden = "" if drawn else " <i>(in the elided part: not drawn)</i>"
    return (
        f"{anchor} {clause} {_esc(check.get('checker'))}{where} · {when}: "
        f"{_esc(check.get('message'))}{hidden}"
    )


def _overview(timeline: Timeline) -> str:
    """A strip as wide as the page standing for the whole timeline: each finding and cause at
    its place, linked to it, so what lies beyond the scrolled view is seen and one click away."""
    if not timeline.groups:
        return ""
    width = timeline.axis.width or 1.0
    drawn = {event.seq for event in timeline.digest.events}

    def left(event: Event) -> str:
        return f"{100 * timeline.axis.of(event) / width:.2f}%"

    marks: list[str] = []
    findings: dict[str, list[Group]] = {}  # findings at one place share one badge
    for group in timeline.groups:
        for n, event in enumerate(group.causes, 1):
            marks.append(
                f'<a class="cause" href="#cause-{group.number}-{n}" style="left: {left(event)}" '
                f'title="{_esc_attr(_cause_name(event))} (finding #{group.number})">'
                f"{group.number}</a>"
            )
        first = next((c for c in group.checks if c.seq in drawn), None)
        if first is not None:
            findings.setdefault(left(first), []).append(group)
    for place, together in findings.items():
        about = "; ".join(f"#{g.number} {g.about}" for g in together)
        numbers = _ranges([g.number for g in together])
        marks.append(
            f'<a href="#finding-{together[0].number}" style="left: {place}" '
            f'title="{_esc_attr("findings " + about)}">&nbsp;{numbers}&nbsp;</a>'
        )
    return (
        f'<div class="overview" style="margin-left: {LABEL_W + 1:.0f}px" '
        'title="the whole timeline, squeezed to this width: findings and their causes">'
        f'<div class="track">{"".join(marks)}</div></div>'
    )


def _ranges(numbers: list[int]) -> str:
    """``1,2,3,5`` as ``1–3,5``."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ",".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def _esc_attr(text: object) -> str:
    return html.escape(str(text), quote=True)


def _as_finding_string(check: Event) -> str:
    """The check as :class:`simulator.world.checkers.Finding` prints itself."""
    where = "/".join(str(check.get(n)) for n in ("device", "context", "key") if check.get(n))
    head = f"[{check.get('clause')}] {check.get('checker')} at t={check.t:.3f}s"
    return f"{head} {where}: {check.get('message')}"


def _notices(digest: Digest) -> Iterable[str]:
    if digest.cut is not None:
        elided = sum(digest.elided.values())
        first, last = digest.elided_span or (0.0, 0.0)
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(digest.elided.items()))
        drawn = len(digest.events)
        yield (
            f'<p class="notice">This trace is long: the first {digest.cut} and the last '
            f"{drawn - digest.cut} events are drawn; the {elided} events between "
            f"{_esc(format_time(first, 1))} and {_esc(format_time(last, 1))} are left out "
            f"({_esc(kinds)}). Findings in that part are listed above but not drawn.</p>"
        )
    if digest.skipped:
        yield f'<p class="notice">{digest.skipped} unreadable trace lines were skipped.</p>'


def _tallies(digest: Digest) -> str:
    lines = [("Events by kind", digest.counts), ("Of note", digest.notable)]
    rows = [
        f"<p><b>{heading}:</b> "
        + " · ".join(f"{_esc(name)} <b>{n}</b>" for name, n in sorted(counts.items()))
        + "</p>"
        for heading, counts in lines
        if counts
    ]
    return f'<div class="tally">{"".join(rows)}</div>'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.report", description="Render a simulator trace as HTML."
    )
    parser.add_argument("trace", type=Path, help="the trace (JSON lines)")
    parser.add_argument("out", type=Path, help="the HTML file to write")
    parser.add_argument("--title", help="the page's title (default: from the trace's meta line)")
    parser.add_argument(
        "--finding", action="append", default=[], help="a finding to show (repeatable)"
    )
    args = parser.parse_args(argv)
    path = render_timeline(args.trace, args.out, title=args.title, findings=args.finding)
    print(path)
    return 0
