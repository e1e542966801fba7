"""A first restore with the local store on disk, against the same restore in memory.

    python benchmarks/restore_disk.py [--entries 10000] [--repeat 3] [--dir PATH]

One device uploads N entries to an in-process fake vault; then a fresh device restores them
all (one ``sync()``), its store either ``:memory:`` or a SQLite file in ``--dir`` (default: a
temporary directory in the current one, so on the same disk as the checkout; ``/tmp`` may be
memory). Prints, for each, the best and median wall time of ``--repeat`` restores and the
ratio on disk / in memory: a file store syncs to disk at every commit (``synchronous=FULL``),
so the ratio is the price of durability, which the helper keeps low by storing each pulled
page in one transaction (SPEC CB-7).

Wall time is read here, for the figures only; the restores run on virtual time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from brh import BackupRestoreHelper, Entry
from hivevault import FakeVault
from simulator.timeloop import run

EPOCH = 1_750_000_000.0


def _accept(entry: Entry) -> bool:
    return True


def _vault_with(entries: int) -> FakeVault:
    """A fake vault holding ``entries`` entries of one context, uploaded by one device."""

    async def main() -> FakeVault:
        vault = FakeVault(clock=lambda: EPOCH, record=False)
        async with BackupRestoreHelper(
            vault, ":memory:", device_id="writer", auto_sync=False
        ) as writer:
            writer.add_sync_context("notes", _accept, _accept, _accept)
            for i in range(entries):
                await writer.upsert_database_entry("notes", f"k{i:06d}", {"n": i, "text": "x" * 40})
            assert await writer.sync()
        return vault

    return run(main(), start=EPOCH)


def restore(vault: FakeVault, store: str) -> float:
    """Wall seconds of one fresh device's first sync, its store at ``store``."""

    async def main() -> float:
        async with BackupRestoreHelper(vault, store, device_id="reader", auto_sync=False) as b:
            b.add_sync_context("notes", _accept, _accept, _accept)
            started = time.perf_counter()
            result = await b.sync()
            elapsed = time.perf_counter() - started
            assert result, result
        return elapsed

    return run(main(), start=EPOCH + 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000, help="default 10000")
    parser.add_argument("--repeat", type=int, default=3, help="restores of each kind (3)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the file stores go")
    args = parser.parse_args(argv)
    if args.entries < 1 or args.repeat < 1:
        parser.error("--entries and --repeat must be >= 1")
    print(f"building a vault of {args.entries:,} entries...", file=sys.stderr)
    vault = _vault_with(args.entries)
    memory: list[float] = []
    disk: list[float] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for attempt in range(args.repeat):  # interleaved, so both meet the same machine
            print(f"restore {attempt + 1}/{args.repeat}...", file=sys.stderr)
            memory.append(restore(vault, ":memory:"))
            disk.append(restore(vault, str(Path(folder) / f"store-{attempt}.sqlite")))
    impl = platform.python_implementation()
    print(f"Python {platform.python_version()} ({impl}) on {platform.platform()}")
    print()
    print("| store | entries | best s | median s |")
    print("|---|---:|---:|---:|")
    for name, times in (("in memory", memory), ("on disk", disk)):
        line = f"| {name} | {args.entries:,} | {min(times):.2f} | {statistics.median(times):.2f} |"
        print(line)
    print()
    ratio = statistics.median(disk) / statistics.median(memory)
    print(f"on disk / in memory (medians): {ratio:.2f}x (target: at most 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
