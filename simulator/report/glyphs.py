"""SVG building blocks of the timeline report: elements, colours, glyphs and the legend.

Everything returns SVG text. Numbers are printed with one decimal at most, attributes in the
order given, so the same drawing gives the same bytes. The glyphs are shared by the timeline
(:mod:`simulator.report.timeline`) and the legend, so the legend always shows what is drawn.
"""

from __future__ import annotations

import html

from simulator.faults import FAULTS

__all__ = [
    "BLUE",
    "DEVICE_EVENTS",
    "FAULT_COLOURS",
    "GREEN",
    "MUTED",
    "ORANGE",
    "PURPLE",
    "RED",
    "applied_glyph",
    "arrow",
    "bracket",
    "callback_glyph",
    "closed",
    "cross",
    "definite_glyph",
    "defs",
    "legend_svg",
    "line",
    "lost",
    "mark",
    "num",
    "svg_root",
    "tag",
    "text",
    "write_glyph",
    "zigzag",
]

INK, MUTED = "#222", "#888"
BLUE, PALE, GREEN, AMBER = "#1f5fbf", "#8ea6c9", "#2e8b57", "#c98a00"
RED, ORANGE, PURPLE = "#d62728", "#e67e00", "#7b3fb0"
FAULT_COLOURS = {**{f.name: f.colour for f in FAULTS.values()}, "behave": PURPLE}
"""The colour of each fault of :mod:`simulator.faults`, and of the app's behaviour."""
DEVICE_EVENTS = {"join": GREEN, "crash": RED, "restart": BLUE, "reinstall": PURPLE}
ARROWS = {"write": BLUE, "read": PALE, "ok": GREEN, "error": AMBER, "late": ORANGE}
"""Arrow styles (each has its arrowhead marker ``head-<style>``) and their colours."""


# -- elements -----------------------------------------------------------------------------------


def num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def tag(name: str, *children: str, **attrs: object) -> str:
    """An element; ``cls`` is ``class``, underscores are dashes, None drops an attribute."""
    parts = [name]
    for key, value in attrs.items():
        if value is not None:
            attr = "class" if key == "cls" else key.replace("_", "-")
            shown = num(value) if isinstance(value, float) else str(value)
            parts.append(f'{attr}="{html.escape(shown)}"')
    opening = " ".join(parts)
    return f"<{opening}>{''.join(children)}</{name}>" if children else f"<{opening}/>"


def svg_root(*children: str, width: float, height: float, **attrs: object) -> str:
    return tag(
        "svg",
        *children,
        **attrs,
        xmlns="http://www.w3.org/2000/svg",
        width=width,
        height=height,
        viewBox=f"0 0 {num(width)} {num(height)}",
    )


def text(x: float, y: float, content: str, **attrs: object) -> str:
    return tag("text", html.escape(content, quote=False), x=x, y=y, **attrs)


def mark(cls: str, title: str, *shapes: str, **attrs: object) -> str:
    """A hoverable mark: a group of shapes with a tooltip."""
    tip = tag("title", html.escape(title, quote=False))
    return tag("g", tip, *shapes, cls=f"mark {cls}", **attrs)


def line(x1: float, y1: float, x2: float, y2: float, colour: str, **attrs: object) -> str:
    return tag("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=colour, **attrs)


def closed(*points: tuple[float, float]) -> str:
    """Path data for a closed polygon."""
    return "M" + "L".join(f"{num(x)},{num(y)}" for x, y in points) + "Z"


def defs() -> str:
    """Arrowheads and the partition hatching (the legend uses them too)."""
    heads = [
        tag(
            "marker",
            tag("path", d="M0,0L8,4L0,8Z", fill=colour),
            id=f"head-{style}",
            viewBox="0 0 8 8",
            refX="8",
            refY="4",
            markerWidth="7",
            markerHeight="7",
            orient="auto",
        )
        for style, colour in sorted(ARROWS.items())
    ]
    hatch = tag(
        "pattern",
        line(0, 0, 0, 8, RED, stroke_width=1.2, stroke_opacity="0.35"),
        id="hatch",
        width="8",
        height="8",
        patternUnits="userSpaceOnUse",
        patternTransform="rotate(45)",
    )
    return tag("defs", *heads, hatch)


# -- glyphs -------------------------------------------------------------------------------------


def cross(x: float, y: float, colour: str = RED, size: float = 4.5) -> str:
    d = f"M{num(x - size)},{num(y - size)}L{num(x + size)},{num(y + size)}"
    d += f"M{num(x - size)},{num(y + size)}L{num(x + size)},{num(y - size)}"
    return tag("path", d=d, stroke=colour, stroke_width=2.2, fill="none")


def arrow(x1: float, y1: float, x2: float, y2: float, style: str) -> str:
    colour = ARROWS[style]
    return line(x1, y1, x2, y2, colour, stroke_width=1.4, marker_end=f"url(#head-{style})")


def lost(x1: float, y1: float, x2: float, y2: float) -> str:
    """Dashed red, ending in ✕: a request or an answer that never arrived."""
    return line(x1, y1, x2, y2, RED, stroke_width=1.6, stroke_dasharray="4 3") + cross(x2, y2)


def definite_glyph(x: float, y: float) -> str:
    """⊘ under a short stub: refused at once (a definite failure)."""
    return (
        line(x, y - 9, x, y - 5, RED, stroke_width=1.6)
        + tag("circle", cx=x, cy=y, r=5.0, fill="#fff", stroke=RED, stroke_width=1.8)
        + line(x - 3.5, y + 3.5, x + 3.5, y - 3.5, RED, stroke_width=1.8)
    )


def applied_glyph(x: float, y: float, ok: bool, late: bool, *, labelled: bool = True) -> str:
    colour = ORANGE if late else GREEN if ok else AMBER
    dot = tag("circle", cx=x, cy=y, r=3.5, fill=colour, stroke="#fff", stroke_width=0.8)
    if late:
        dot += tag("circle", cx=x, cy=y, r=6.5, fill="none", stroke=ORANGE, stroke_width=1.5)
        dot += text(x, y + 17, "late", cls="small", fill=ORANGE) if labelled else ""
    return dot


def write_glyph(x: float, y: float, op: str) -> str:
    """A diamond: filled for an upsert, hollow and struck through for a delete."""
    d = closed((x, y - 6), (x + 5, y), (x, y + 6), (x - 5, y))
    if op == "delete":
        strike = line(x - 3, y + 3, x + 3, y - 3, INK, stroke_width=1.5)
        return tag("path", d=d, fill="#fff", stroke=INK, stroke_width=1.5) + strike
    return tag("path", d=d, fill=BLUE, stroke="#fff", stroke_width=0.8)


def callback_glyph(x: float, y: float, action: str, accepted: bool) -> str:
    """The action's initial in a green circle under ✓, or in a red square under ✕."""
    if accepted:
        shape = tag("circle", cx=x, cy=y, r=6.0, fill=GREEN)
    else:
        shape = tag("rect", x=x - 6, y=y - 6, width=12.0, height=12.0, fill=RED, rx=1.5)
    letter = text(x, y + 3.5, (action[:1] or "?").upper(), cls="glyph", fill="#fff")
    sign = text(x, y - 9, "✓" if accepted else "✕", cls="sign", fill=GREEN if accepted else RED)
    return shape + letter + sign


def bracket(x0: float, x1: float, y: float, colour: str) -> str:
    d = f"M{num(x0)},{num(y - 5)}V{num(y)}H{num(x1)}V{num(y - 5)}"
    return tag("path", d=d, fill="none", stroke=colour, stroke_width=1.6)


def zigzag(x: float, top: float, bottom: float) -> str:
    """A torn edge: the sign of a break in the axis."""
    points = [
        f"{num(x + (3 if i % 2 else -3))},{num(y)}"
        for i, y in enumerate(range(int(top), int(bottom) + 1, 6))
    ]
    return tag("polyline", points=" ".join(points), fill="none", stroke="#aaa", stroke_width=1.2)


def _shade(colour: str, opacity: str) -> str:
    return tag("rect", x=0.0, y=-9.0, width=40.0, height=18.0, fill=colour, fill_opacity=opacity)


# -- the legend ---------------------------------------------------------------------------------


def _fault_swatch(name: str) -> str:
    """A fault's shading as the timeline draws it (a partition is hatched too)."""
    colour = FAULT_COLOURS[name]
    swatch = _shade(colour, "0.1") + line(0, -9, 0, 9, colour)
    if name == "partition":
        swatch += tag("rect", x=0.0, y=-9.0, width=40.0, height=18.0, fill="url(#hatch)")
    return swatch


def _legend_items() -> list[tuple[str, str]]:
    """(symbol drawn in a 40 × 18 box around (20, 0), its meaning)."""
    torn = tag("rect", x=8.0, y=-9.0, width=24.0, height=18.0, fill="#efefef")
    badge = tag("circle", cx=20.0, cy=0.0, r=8.0, fill=RED) + text(20, 3.5, "1", cls="badge")
    return [
        (arrow(2, -7, 38, 7, "write"), "request that writes (device → vault)"),
        (arrow(2, -7, 38, 7, "read"), "request that reads"),
        (arrow(2, 7, 38, -7, "ok"), "answer (vault → device)"),
        (arrow(2, 7, 38, -7, "error"), "answer with a vault error"),
        (lost(2, 7, 34, -5), "lost: request or answer never arrived"),
        (definite_glyph(20, 4), "refused at once (definite failure)"),
        (
            arrow(2, -7, 30, 5, "late") + applied_glyph(32, 5, True, True, labelled=False),
            "applied late",
        ),
        (
            applied_glyph(14, 0, True, False) + applied_glyph(28, 0, False, False),
            "applied: ok, error",
        ),
        (write_glyph(12, 0, "upsert") + write_glyph(28, 0, "delete"), "write: upsert, delete"),
        (callback_glyph(20, 4, "insert", True), "callback accepted (I/M/D: action)"),
        (callback_glyph(20, 4, "modify", False), "callback refused"),
        (bracket(2, 38, 3, GREEN), "pass ✓ completed"),
        (bracket(2, 38, 3, ORANGE), "pass ⊘ refused by the app"),
        (bracket(2, 38, 3, RED), "pass ! failed (vault error…)"),
        (bracket(2, 38, 3, MUTED), "pass … unfinished"),
        *[(_fault_swatch(f.name), f"{f.name}: {f.does}") for f in FAULTS.values()],
        (_fault_swatch("behave"), "behave: the app refuses, is flaky, slow…"),
        (_shade(MUTED, "0.12"), "other (labelled)"),
        (
            line(20, -9, 20, 9, PURPLE, stroke_dasharray="3 2"),
            "clock jump (labelled with its size)",
        ),
        (line(20, -9, 20, 9, RED, stroke_width=2.0), "join, crash, restart, reinstall"),
        (badge, "checker finding (numbered)"),
        (torn + zigzag(8, -9, 9) + zigzag(32, -9, 9), "idle time cut out"),
        (line(20, -9, 20, 9, MUTED, stroke_dasharray="1 3"), "✎ note"),
    ]


def legend_svg(columns: int = 3) -> str:
    """Every kind of mark with its meaning (it uses the timeline's :func:`defs`); the faults
    come from :mod:`simulator.faults`."""
    items = _legend_items()
    rows = -(-len(items) // columns)
    width, height = 430.0, 26.0
    parts: list[str] = []
    for index, (symbol, label) in enumerate(items):
        x, y = (index // rows) * width + 8, (index % rows) * height + 16
        parts.append(tag("g", symbol, transform=f"translate({num(x)},{num(y)})"))
        parts.append(text(x + 50, y + 4, label, cls="legend-label"))
    return svg_root(*parts, width=columns * width, height=rows * height + 8, cls="legend")
