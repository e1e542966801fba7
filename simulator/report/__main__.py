"""``python -m simulator.report TRACE.jsonl OUT.html``: see :func:`simulator.report.main`."""

from simulator.report.page import main

if __name__ == "__main__":
    raise SystemExit(main())
