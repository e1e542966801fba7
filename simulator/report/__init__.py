"""Timeline reports: a simulator trace as one self-contained HTML page, to read before the logs.

:func:`render_timeline` reads a trace and writes the page; from the command line::

    python -m simulator.report TRACE.jsonl OUT.html

One module per part: :mod:`~simulator.report.layout` reads the trace and lays it out (no HTML),
:mod:`~simulator.report.findings` groups the findings and finds the events that caused them,
:mod:`~simulator.report.glyphs` holds the SVG building blocks and the legend,
:mod:`~simulator.report.timeline` draws the lanes, :mod:`~simulator.report.page` assembles the
page. The report reads trace files only: it imports nothing of the world or the scenarios, just
the fault table (:mod:`simulator.faults`) for its labels.
"""

from simulator.report.page import main, render_timeline

__all__ = ["main", "render_timeline"]
