"""What a sync pass costs (SPEC §10): vault requests, CPU time and local SQL statements.

Run ``python benchmarks/sync_cost.py`` (N = 100, 1,000 and 10,000 stored entries), ``--quick``
(N = 100 and 1,000) or ``--sizes 100 5000``. Progress goes to stderr; stdout gets the Python
version and platform, then a Markdown table that can be pasted into the README as is.

Everything runs on :func:`simulator.timeloop.run` (virtual time): the helper, the fake vault and
the benchmark itself only read the virtual loop's clock. The one real clock read is
``time.process_time()`` around each measured pass, and around each fake-vault request and
clock read (:class:`MeteredVault`), to split the pass's CPU time between the helper and the
in-process fake vault. Every number but the CPU times is deterministic, "documents examined"
too (the documents the fake vault evaluated a filter on: what its indexes saved).

Per N, one device ``a`` writes N entries (0.01 s of virtual time apart) in one context, syncs
once, and syncs again past the 5 s overlap window (reading its own writes back, and doing its
first tombstone purge); virtual time then moves past the overlap window again. Measured:

* ``local, idle``: the first pass of ``a`` with nothing to do, after the pass that read its N
  uploads back (one vault second) past the overlap window: that pass settled the cursor (SPEC
  SYNC-4), so this pull asks only for newer stamps (issue 15 item 6: it used to list all N
  versions read in the window, 360 KB at N = 10,000);
* ``local, idle again``: the next pass;
* ``pull, idle after an early read``: the first idle pass of a device ``e`` that restored the N
  entries in the vault second they landed, inside the overlap: its cursor could not settle
  then, so this pull still lists the versions it read in the window (at most 10,000; past that
  it re-reads the window), the case item 6 leaves;
* ``local``: a pass of ``a`` after 1 or 100 of its entries changed locally (push cost);
* ``restore``: a fresh device ``b`` (new ``:memory:`` store) syncing once;
* ``pull``: a pass of ``b`` after ``a`` changed 0, 1 or 100 entries (pull cost).

``--bytes`` measures only bytes on the wire (issue 15 item 3, ``benchmarks/sync_bytes.py``): the
answers of a full pass per unchanged entry at N = 1,000 and 10,000 (or ``--sizes``), and one
day of two devices sharing 1,000 entries, with the full pass's projection on and off in the
same run, each device's bytes split into requests and answers, full pass and the rest; it
prints the ratio of the targets (at most 150 bytes per entry; under half the day's bytes).

``--restore-scaling`` measures only restores (issue 15): for N = 10,000, 20,000 and 40,000 (or
``--sizes``), device ``a`` uploads N entries in one pass (one vault second: every page of a
restore then starts inside that second), then fresh devices restore them, ``--repeats`` times
per N (3 by default; the sizes in turn, the best run counts). It prints, per N, the requests,
documents examined and CPU times, and the ratio of the restore's fake-vault CPU at the second N
to the first (target: at most 2.5x, i.e. close to linear).
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
from pathlib import Path
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
SCALING_SIZES = (10_000, 20_000, 40_000)
SCALING_REPEATS = 3
SCALING_TARGET = 2.5
"""Issue 15: a restore's fake-vault CPU at the second size at most this times the first's."""
WRITE_GAP = 0.01
"""Virtual seconds between two writes of the initial data set."""
PAST_OVERLAP = 60.0
"""Virtual seconds slept after a sync so that the next pass is past the 5 s overlap window."""

_T = TypeVar("_T")


class MeteredVault(FakeVault):
    """A :class:`FakeVault` that also measures its own CPU time and the size of query filters.

    Every operation of the fake vault runs through :meth:`FakeVault._counted` (the protocol's
    coroutines and :meth:`FakeVault.perform` alike), so timing it times every request; the
    vault's clock (:meth:`FakeVault.vault_time`, which the helper reads too) is timed apart.
    :attr:`metered` counts the timed requests: a meter that no longer sees the vault's
    operations shows as ``metered != request_count`` (``tests/test_sync_cost.py``).
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock, record=False)
        self.cpu = 0.0
        """CPU seconds spent inside requests and clock reads since :meth:`reset_log`."""
        self.metered = 0
        """Requests timed since :meth:`reset_log`."""
        self.filters: list[Mapping[str, Any]] = []
        """The filters of the ``query`` requests since :meth:`reset_log` (sized afterwards, so
        that encoding them is not counted as the helper's work)."""

    def reset_log(self) -> None:
        super().reset_log()
        self.cpu = 0.0
        self.metered = 0
        self.filters = []

    def filter_bytes(self) -> int:
        """JSON size of the filters of the ``query`` requests since :meth:`reset_log`."""
        return sum(len(json.dumps(f, default=str, separators=(",", ":"))) for f in self.filters)

    def _counted(self, op: str, collection: Any, body: Callable[..., _T], *args: Any) -> _T:
        # Every operation of the fake vault runs through here (see FakeVault._counted).
        self.metered += 1
        started = time.process_time()
        try:
            return super()._counted(op, collection, body, *args)
        finally:
            self.cpu += time.process_time() - started

    def vault_time(self) -> float:
        started = time.process_time()
        try:
            return super().vault_time()
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
        self.filters.append(filter)
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
    total_ms: float
    metered: int
    examined: int
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
        """Run one pass of ``helper`` and return what it cost.

        The pass's CPU time is split in two: the fake vault's (its requests, timed by
        :class:`MeteredVault`) and the helper's (the rest: the engine, SQLite, the callbacks).
        """
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
            total_ms=cpu * 1000,
            metered=self.vault.metered,
            examined=self.vault.examined,
            sql=statements,
            callbacks=dict(app.calls),
            filter_bytes=self.vault.filter_bytes(),
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


async def populate(bench: Bench, size: int) -> tuple[BackupRestoreHelper, BackupRestoreHelper]:
    """Device ``a`` holding ``size`` synced entries, with a steady-state cursor; and device
    ``e``, which restored them in the vault second they landed (inside the overlap)."""
    a = bench.device("a")
    progress(f"N={size}: writing {size} entries...")
    for i in range(size):
        await a.upsert_database_entry(CONTEXT, f"k{i}", {"key": f"k{i}", "revision": 0})
        await asyncio.sleep(WRITE_GAP)
    progress(f"N={size}: first sync (uploads {size} entries)...")
    await complete(a)
    progress(f"N={size}: a restore in the same vault second...")
    early = bench.device("e")
    await complete(early)
    progress(f"N={size}: second sync (reads them back)...")
    await bench.settle(a)
    return a, early


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
    a, early = await populate(bench, size)
    progress(f"N={size}: pull pass, idle, after a read inside the overlap...")
    late = await bench.measure(early, "pull, idle after an early read", size, 0)
    await early.close()
    rows = await local_passes(bench, a, size)
    rows.append(late)
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
        "documents examined",
        "SQL statements",
        "callbacks",
        "query filter bytes",
    )
    right = {1, 2, 3, 5, 6, 7, 8, 10}
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
            f"{row.examined:,}",
            f"{row.sql:,}",
            format_counts(row.callbacks),
            f"{row.filter_bytes:,}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def uploaded(size: int) -> Bench:
    """A vault holding ``size`` entries that device ``a`` wrote and uploaded in one pass: all
    stamped in one vault second, the worst case for pages that follow ``(modified, _id)``."""
    bench = Bench()
    a = bench.device("a")
    progress(f"N={size}: writing {size} entries and uploading them...")
    for i in range(size):
        await a.upsert_database_entry(CONTEXT, f"k{i}", {"key": f"k{i}", "revision": 0})
        await asyncio.sleep(WRITE_GAP)
    await complete(a)
    await a.close()
    await asyncio.sleep(PAST_OVERLAP)
    return bench


async def restore_scaling(sizes: tuple[int, ...], repeats: int) -> list[list[Row]]:
    """Per size, ``repeats`` restores by fresh devices, the sizes taken in turn in each round
    (so that a slower spell of the machine spreads over all of them)."""
    benches = [await uploaded(size) for size in sizes]
    rows: list[list[Row]] = [[] for _ in sizes]
    for attempt in range(repeats):
        for bench, size, runs in zip(benches, sizes, rows, strict=True):
            progress(f"N={size}: restore {attempt + 1} of {repeats}...")
            device = bench.device(f"b{attempt}")
            runs.append(await bench.measure(device, "restore", size, None))
            await device.close()
    return rows


def scaling_table(sizes: tuple[int, ...], rows: list[list[Row]]) -> str:
    """A Markdown table of the restores per size (best run), and the ratio of the target."""
    header = (
        "N",
        "requests",
        "documents examined",
        "helper CPU ms (best)",
        "fake-vault CPU ms (best)",
        "fake-vault CPU ms, each run",
        f"fake-vault CPU vs N={sizes[0]:,}",
    )
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" for _ in header) + "|",
    ]
    first = min(row.vault_ms for row in rows[0])
    for size, runs in zip(sizes, rows, strict=True):
        best = min(row.vault_ms for row in runs)
        cells = (
            f"{size:,}",
            f"{runs[0].requests:,}",
            f"{runs[0].examined:,}",
            f"{min(row.helper_ms for row in runs):.1f}",
            f"{best:.1f}",
            ", ".join(f"{row.vault_ms:.1f}" for row in runs),
            f"{best / first:.2f}x",
        )
        lines.append("| " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        ratio = min(row.vault_ms for row in rows[1]) / first
        verdict = "met" if ratio <= SCALING_TARGET else "NOT met"
        lines.append(
            f"\nRestore fake-vault CPU, N={sizes[1]:,} vs N={sizes[0]:,}: {ratio:.2f}x "
            f"(target <= {SCALING_TARGET}x: {verdict})"
        )
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
    parser.add_argument(
        "--restore-scaling",
        action="store_true",
        help=(
            "only restores, by fresh devices, of N = "
            f"{', '.join(map(str, SCALING_SIZES))} (or --sizes) entries uploaded in one vault "
            f"second, and how the fake vault's CPU grows from the first N to the second "
            f"(target: at most {SCALING_TARGET}x)"
        ),
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=SCALING_REPEATS,
        metavar="R",
        help=(
            f"restores per size with --restore-scaling; the best counts (default {SCALING_REPEATS})"
        ),
    )
    parser.add_argument(
        "--bytes",
        action="store_true",
        help=(
            "only bytes on the wire (issue 15 item 3): a full pass's answers per unchanged "
            "entry at N = 1,000 and 10,000 (or --sizes), and one day of 2 devices with 1,000 "
            "entries, the full pass's projection on and off (benchmarks/sync_bytes.py)"
        ),
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="S", help="the day's edits (--bytes)"
    )
    args = parser.parse_args(argv)
    if args.bytes:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
        from benchmarks import sync_bytes

        seed = sync_bytes.SEED if args.seed is None else args.seed
        sizes_b = tuple(args.sizes) if args.sizes else sync_bytes.ENTRY_SIZES
        implementation = platform.python_implementation()
        print(f"Python {platform.python_version()} ({implementation}) on {platform.platform()}\n")
        print(sync_bytes.report(sizes_b, sync_bytes.DAY_SIZE, seed))
        return
    if args.restore_scaling and args.quick:
        parser.error("--quick does not apply to --restore-scaling (use --sizes)")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    default = SCALING_SIZES if args.restore_scaling else SIZES
    sizes: tuple[int, ...] = tuple(args.sizes) if args.sizes else default
    if args.quick:
        sizes = QUICK_SIZES
    if any(size < max(CHANGES) for size in sizes):
        parser.error(f"every size must be at least {max(CHANGES)}")
    implementation = platform.python_implementation()
    if args.restore_scaling:
        scaling = run(restore_scaling(sizes, args.repeats), start=EPOCH)
        print(f"Python {platform.python_version()} ({implementation}) on {platform.platform()}\n")
        print(scaling_table(sizes, scaling))
        return
    rows: list[Row] = []
    for size in sizes:
        rows.extend(run(scenarios(size), start=EPOCH))
    print(f"Python {platform.python_version()} ({implementation}) on {platform.platform()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
