"""The run's trace: one JSON object per line, streamed to disk as it happens.

Every line has ``t`` (true virtual seconds since the run started) and ``kind``; the other
fields depend on the kind (see ``docs`` in :data:`KINDS`). Keys are sorted and floats rounded,
so the same seed and code give a byte-identical file. Nothing is kept in memory but counters.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

__all__ = ["KINDS", "Trace"]

KINDS = {
    "meta": "the run: seed, scenario, devices, contexts, configuration",
    "request": "device -> vault: id, device, op, collection, key (when one entry is concerned); "
    "a write also version and value (the brhVersion and data it sets, when it sets them)",
    "applied": "the vault processed a request: id, ok, error",
    "answer": "vault -> device: id, ok, error, lost (never arrived), definite, stage "
    "(refused / request_lost / request_late / answer_lost, when lost)",
    "write": "the app changed an entry: device, context, key, op (upsert/delete), version, "
    "value (the data written; null for a delete)",
    "callback": "a callback answered: device, context, key, action, accepted, version, value "
    "(the data delivered; null for a delete)",
    "pass": "a pass started or finished: device, phase, full / completed, reason, requests",
    "fault": "a fault began or ended: target, fault (its name in simulator.faults), on "
    "(true/false), detail; also a clock jump (fault jump_clock, on true), a drift "
    "(set_drift) or the app's behaviour (behave)",
    "device": "join, crash, restart, reinstall of a device, or a wipe of one of its contexts",
    "check": "a checker's finding: checker, clause, device, context, key, message; causes "
    "(when known: the events that caused it, each a kind and the fields to find it by)",
    "note": "free text from a scenario",
}


class Trace:
    """Writes trace lines to ``path`` (or nowhere when None), counting them by kind."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = (
            self.path.open("w", encoding="utf-8") if self.path is not None else None
        )
        self.counts: Counter[str] = Counter()
        self._start: float | None = None

    def now(self) -> float:
        loop_time = asyncio.get_running_loop().time()
        if self._start is None:
            self._start = loop_time
        return loop_time - self._start

    def wants(self, kind: str) -> bool:
        """Whether an event of ``kind`` needs its fields: True when lines are written (then
        :meth:`emit` it); when not, the event is counted here and False is returned, so a hot
        path need not build the fields :meth:`emit` would drop."""
        if self._file is not None:
            return True
        if kind not in KINDS:
            raise ValueError(f"unknown trace kind {kind!r}; known: {sorted(KINDS)}")
        self.counts[kind] += 1
        return False

    def emit(self, kind: str, **fields: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown trace kind {kind!r}; known: {sorted(KINDS)}")
        self.counts[kind] += 1
        if self._file is None:
            return
        line = {"t": round(self.now(), 6), "kind": kind, **fields}
        self._file.write(json.dumps(line, sort_keys=True, separators=(",", ":"), default=str))
        self._file.write("\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read(path: Path | str) -> list[dict[str, Any]]:
    """Every line of a trace file, parsed."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
