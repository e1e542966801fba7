"""Issue 3, memory that stays flat over long simulator runs: what the simulator keeps is bounded
by the key space and the device count, not by the number of writes, callbacks or passes."""

from __future__ import annotations

import pytest

from brh import Entry
from simulator.app import CALLS_KEPT, AppModel, Behaviour, CallLog


def test_a_call_log_counts_every_call_and_keeps_the_last_ones() -> None:
    """Issue 3 (memory flat over long runs): an app model's callback log counts all its calls
    but keeps only the most recent ``limit``."""
    log = CallLog(limit=3)
    assert log == [] and log.total == 0 and log.dropped == 0
    calls = [("insert", f"k{i}", i) for i in range(5)]
    for call in calls[:3]:
        log.append(call)
    assert log == calls[:3] and calls[:3] == log and len(log) == 3
    assert log.since(1) == calls[1:3] and log[-1] == calls[2] and log[1:] == calls[1:3]
    for call in calls[3:]:
        log.append(call)
    assert log.total == 5 and len(log) == 3 and log.dropped == 2
    assert list(log) == calls[2:] and calls[4] in log and calls[0] not in log
    assert log.since(2) == calls[2:] and log.since(5) == []
    with pytest.raises(LookupError, match="dropped"):
        log.since(1)  # the calls after the first one are not all kept any more
    # a log that dropped calls cannot show them all: it equals no list, not even its tail
    assert log != calls[2:] and log != calls
    assert log == CallLog(calls, limit=3) and log != CallLog(calls[2:], limit=3)
    assert "2 older dropped" in repr(log)
    log.clear()
    assert log == [] and log.total == 0
    assert CallLog().limit == CALLS_KEPT
    with pytest.raises(ValueError, match="limit"):
        CallLog(limit=0)


def test_an_app_that_refuses_remembers_one_change_per_key() -> None:
    """Issue 3 (memory flat over long runs): an app in mode ``refuse`` still refuses each change
    ``refusals`` times and then accepts it, while what it remembers to do so stays one record
    per key, however many changes it was offered."""
    app = AppModel(behaviour=Behaviour(mode="refuse", refusals=2))
    for stamp in range(1, 201):
        for key in ("a", "b", "c"):
            entry = Entry(key, stamp, 0, stamp)
            assert [app._handle("modify", entry) for _ in range(3)] == [False, False, True]
            assert app._handle("modify", entry)  # accepted once, accepted from then on
            assert app.items[key] == stamp
    assert len(app._refused) == 3  # one record per key, not one per change (600 here)
    assert app.calls.total == 200 * 3 * 4 and len(app.calls) == CALLS_KEPT
