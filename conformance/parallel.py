"""The conformance suite under pytest-xdist (``pytest --pyargs conformance -n auto``).

Each worker collects every test, runs its share and keeps its records
(:class:`conformance.report.TestRecord`) as in a serial run. A record travels to the controller
on the test's own report (xdist sends a report's plain attributes along): :func:`record_on`
puts it there, and on the controller :class:`ReportMerger` gathers them into the one report
that the terminal summary prints and ``--brh-report`` writes, in collection order, so the
file is the same as a serial run's. Workers write no report file.

Seeds do not depend on the worker: every test runs with ``--brh-seed`` whichever worker runs
it, and its Hypothesis examples are keyed by test, not by worker (see
:mod:`conformance.exampledb`). A test that never ran (``-x``, a crashed worker) is missing from
a parallel report, where a serial one lists it as "not run".
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from conformance.report import Report, TestRecord

__all__ = ["ReportMerger", "record_on"]

_ATTRIBUTE = "brh_record"


def record_on(report: pytest.TestReport, record: TestRecord) -> None:
    """Attach ``record`` (as plain data) to ``report``, for the xdist controller."""
    data = asdict(record)
    data["clauses"] = list(record.clauses)
    setattr(report, _ATTRIBUTE, data)


def _record_from(data: dict[str, Any]) -> TestRecord:
    return TestRecord(
        **{
            **data,
            "clauses": tuple(data["clauses"]),
            "failed_clauses": tuple(data.get("failed_clauses", ())),
        }
    )


class ReportMerger:
    """On the xdist controller, gathers the workers' records into :attr:`report`; in a serial
    run or on a worker it does nothing (the records there are the plugin's own)."""

    def __init__(self, config: pytest.Config, report: Report) -> None:
        self.config = config
        self.report = report
        self.order: dict[str, int] = {}
        self.merged: dict[str, int] = {}
        """nodeid -> index in :attr:`report`'s records."""

    def _controller(self) -> bool:
        return self.config.pluginmanager.has_plugin("dsession")

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        if not self.order:  # every worker collects the same tests, in the same order
            self.order = {nodeid: i for i, nodeid in enumerate(ids)}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, _ATTRIBUTE, None)
        if not isinstance(data, dict) or not self._controller():
            return
        record = _record_from(data)
        index = self.merged.get(record.nodeid)
        if index is None:
            self.merged[record.nodeid] = len(self.report.records)
            self.report.add(record)
        else:
            self.report.records[index] = record

    def pytest_sessionfinish(self) -> None:
        """Collection order (the terminal summary and the report file come after this)."""
        if not self.merged:
            return
        last = len(self.order)
        self.report.records.sort(key=lambda r: self.order.get(r.nodeid, last))
        self.merged = {r.nodeid: i for i, r in enumerate(self.report.records)}
