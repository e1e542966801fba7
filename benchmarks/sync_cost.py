"""What a sync pass costs (SPEC §10): vault requests, CPU time and local SQL statements.

Run ``python benchmarks/sync_cost.py`` (N = 100, 1,000 and 10,000 stored entries), ``--quick``
(N = 100 and 1,000) or ``--sizes 100 5000``. Progress goes to stderr; stdout gets the Python
version and platform, then a Markdown table that can be pasted into the README as is.

Everything runs on :func:`simulator.timeloop.run` (virtual time): the helper, the fake vault and
the benchmark itself only read the virtual loop's clock. The one real clock read is
``time.process_time()`` around each measured pass (and around each fake-vault request, to split
the pass's CPU time between the helper and the in-process fake vault, which scans every document
of a collection per request where a real vault would use an index). Every number but the CPU
times is deterministic.

Per N, one device ``a`` writes N entries (0.01 s of virtual time apart) in one context, syncs
once, and syncs again past the 5 s overlap window (reading its own writes back, and doing its
first tombstone purge); virtual time then moves past the overlap window again. Measured:

* ``local, idle``: the first pass of ``a`` with nothing to do. Its cursor is past the overlap
  window but not yet *settled* (SPEC SYNC-4), so its pull filter still lists the versions seen
  in the overlap window: here all N, which one pass uploaded within one vault second;
* ``local, idle again``: the next pass, with a settled cursor;
* ``local``: a pass of ``a`` after 1 or 100 of its entries changed locally (push cost);
* ``restore``: a fresh device ``b`` (new ``:memory:`` store) syncing once;
* ``pull``: a pass of ``b`` after ``a`` changed 0, 1 or 100 entries (pull cost).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from brh import BackupRestoreHelper, Entry
from brh.vault import Document, SortSpec
from hivevault.vault import FakeVault
from simulator.timeloop import run

EPOCH = 1_750_000_000.0
"""Virtual start time (seconds since the epoch), as in the tests."""

CONTEXT = "notes"
CHANGES = (0, 1, 100)
SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100, 1_000)
WRITE_GAP = 0.01
"""Virtual seconds between two writes of the initial data set."""
PAST_OVERLAP = 60.0
"""Virtual seconds slept after a sync so that the next pass is past the 5 s overlap window."""

_T = TypeVar("_T")


class MeteredVault(FakeVault):
    """A :class:`FakeVault` that also measures its own CPU time and the size of query filters."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock, record=False)
        self.cpu = 0.0
        """CPU seconds spent inside requests since :meth:`reset_log`."""
        self.filter_bytes = 0
        """JSON size of the filters of the ``query`` requests since :meth:`reset_log`."""

    def reset_log(self) -> None:
        super().reset_log()
        self.cpu = 0.0
        self.filter_bytes = 0

    def _counted(self, op: str, collection: Any, body: Callable[..., _T], *args: Any) -> _T:
        # Every operation of the fake vault runs through here (see FakeVault._counted).
        started = time.process_time()
        try:
            return super()._counted(op, collection, body, *args)
        finally:
            self.cpu += time.process_time() - started

    async def query(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        self.filter_bytes += len(json.dumps(filter, default=str, separators=(",", ":")))
        return await super().query(
            collection, filter, sort=sort, skip=skip, limit=limit, projection=projection
        )


@dataclass
class App:
    """Counts the callbacks a device receives (and accepts them all)."""

    calls: dict[str, int] = field(default_factory=dict)

    def _count(self, kind: str) -> bool:
        self.calls[kind] = self.calls.get(kind, 0) + 1
        return True

    def on_insert(self, entry: Entry) -> bool:
        return self._count("insert")

    def on_modify(self, entry: Entry) -> bool:
        return self._count("modify")

    def on_delete(self, entry: Entry) -> bool:
        return self._count("delete")


@dataclass(frozen=True)
class Row:
    """The cost of one measured pass."""

    scenario: str
    size: int
    changed: int | None
    requests: int
    by_op: dict[str, int]
    helper_ms: float
    vault_ms: float
    sql: int
    callbacks: dict[str, int]
    filter_bytes: int


class Bench:
    """Two devices on one metered fake vault, on the running virtual-time loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.vault = MeteredVault(clock=self.loop.time)
        self.apps: dict[str, App] = {}

    def device(self, name: str) -> BackupRestoreHelper:
        helper = BackupRestoreHelper(
            self.vault, ":memory:", device_id=name, clock=self.loop.time, auto_sync=False
        )
        app = self.apps[name] = App()
        helper.add_sync_context(CONTEXT, app.on_insert, app.on_modify, app.on_delete)
        return helper

    async def settle(self, helper: BackupRestoreHelper) -> None:
        """An unmeasured pass past the overlap window, then time moves past it again."""
        await asyncio.sleep(PAST_OVERLAP)
        await complete(helper)
        await asyncio.sleep(PAST_OVERLAP)

    async def measure(
        self,
        helper: BackupRestoreHelper,
        scenario: str,
        size: int,
        changed: int | None,
    ) -> Row:
        """Run one pass of ``helper`` and return what it cost."""
        app = self.apps[helper.device_id]
        app.calls.clear()
        statements = 0

        def count_statement(_sql: str) -> None:
            nonlocal statements
            statements += 1

        gc.collect()
        self.vault.reset_log()
        helper.store._db.set_trace_callback(count_statement)
        started = time.process_time()
        result = await helper.sync()
        cpu = time.process_time() - started
        helper.store._db.set_trace_callback(None)
        if not result:
            raise RuntimeError(f"{scenario} N={size}: the pass did not complete: {result}")
        return Row(
            scenario=scenario,
            size=size,
            changed=changed,
            requests=self.vault.request_count,
            by_op=self.vault.counts_by_op(),
            helper_ms=(cpu - self.vault.cpu) * 1000,
            vault_ms=self.vault.cpu * 1000,
            sql=statements,
            callbacks=dict(app.calls),
            filter_bytes=self.vault.filter_bytes,
        )


async def complete(helper: BackupRestoreHelper) -> None:
    result = await helper.sync()
    if not result:
        raise RuntimeError(f"device {helper.device_id}: a setup pass did not complete: {result}")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def changed_keys(size: int, count: int) -> list[str]:
    """``count`` keys spread evenly over the ``size`` stored ones."""
    return [f"k{i * size // count}" for i in range(count)]


async def change(helper: BackupRestoreHelper, size: int, count: int, revision: int) -> None:
    for key in changed_keys(size, count):
        await helper.upsert_database_entry(CONTEXT, key, {"key": key, "revision": revision})
        await asyncio.sleep(WRITE_GAP)


async def populate(bench: Bench, size: int) -> BackupRestoreHelper:
    """Device ``a`` holding ``size`` synced entries, with a steady-state cursor."""
    a = bench.device("a")
    progress(f"N={size}: writing {size} entries...")
    for i in range(size):
        await a.upsert_database_entry(CONTEXT, f"k{i}", {"key": f"k{i}", "revision": 0})
        await asyncio.sleep(WRITE_GAP)
    progress(f"N={size}: first sync (uploads {size} entries)...")
    await complete(a)
    progress(f"N={size}: second sync (reads them back)...")
    await bench.settle(a)
    return a


async def local_passes(bench: Bench, a: BackupRestoreHelper, size: int) -> list[Row]:
    """Passes of ``a``: idle twice, then after 1 and 100 local changes."""
    progress(f"N={size}: local pass, idle...")
    rows = [await bench.measure(a, "local, idle", size, 0)]
    progress(f"N={size}: local pass, idle again...")
    rows.append(await bench.measure(a, "local, idle again", size, 0))
    for revision, count in enumerate(CHANGES[1:], start=1):
        progress(f"N={size}: local pass, {count} changed...")
        await change(a, size, count, revision)
        rows.append(await bench.measure(a, "local", size, count))
        await bench.settle(a)
    return rows


async def restore_pass(bench: Bench, size: int) -> tuple[BackupRestoreHelper, Row]:
    """A fresh device ``b`` syncing once."""
    progress(f"N={size}: restore on a fresh device...")
    b = bench.device("b")
    row = await bench.measure(b, "restore", size, None)
    await asyncio.sleep(PAST_OVERLAP)
    return b, row


async def pull_passes(
    bench: Bench, a: BackupRestoreHelper, b: BackupRestoreHelper, size: int
) -> list[Row]:
    """Passes of ``b`` after ``a`` changed 0, 1 and 100 entries (and synced them)."""
    rows = []
    for revision, count in enumerate(CHANGES, start=len(CHANGES) + 1):
        progress(f"N={size}: pull pass, {count} changed by another device...")
        await change(a, size, count, revision)
        await complete(a)
        await bench.settle(a)
        rows.append(await bench.measure(b, "pull", size, count))
        await asyncio.sleep(PAST_OVERLAP)
    return rows


async def scenarios(size: int) -> list[Row]:
    """Every measured pass for ``size`` stored entries."""
    bench = Bench()
    a = await populate(bench, size)
    rows = await local_passes(bench, a, size)
    b, restore = await restore_pass(bench, size)
    rows.append(restore)
    rows.extend(await pull_passes(bench, a, b, size))
    await a.close()
    await b.close()
    return rows


def format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items())) or "-"


def table(rows: list[Row]) -> str:
    """A Markdown table of ``rows``."""
    header = (
        "scenario",
        "N",
        "changed",
        "requests",
        "by operation",
        "helper CPU ms",
        "fake-vault CPU ms",
        "SQL statements",
        "callbacks",
        "query filter bytes",
    )
    right = {1, 2, 3, 5, 6, 7, 9}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|",
    ]
    for row in rows:
        cells = (
            row.scenario,
            f"{row.size:,}",
            "-" if row.changed is None else f"{row.changed:,}",
            f"{row.requests:,}",
            format_counts(row.by_op),
            f"{row.helper_ms:.1f}",
            f"{row.vault_ms:.1f}",
            f"{row.sql:,}",
            format_counts(row.callbacks),
            f"{row.filter_bytes:,}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quick", action="store_true", help=f"N = {', '.join(map(str, QUICK_SIZES))} only"
    )
    group.add_argument(
        "--sizes", type=int, nargs="+", metavar="N", help="numbers of stored entries to try"
    )
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = tuple(args.sizes) if args.sizes else SIZES
    if args.quick:
        sizes = QUICK_SIZES
    if any(size < max(CHANGES) for size in sizes):
        parser.error(f"every size must be at least {max(CHANGES)}")
    rows: list[Row] = []
    for size in sizes:
        rows.extend(run(scenarios(size), start=EPOCH))
    implementation = platform.python_implementation()
    print(f"Python {platform.python_version()} ({implementation}) on {platform.platform()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
