"""The fake vault's CPU for a full pass paging by ``_id`` alone, at two collection sizes.

    python benchmarks/id_walk.py [--sizes 10000,20000] [--page 500] [--repeat 3]

A collection holds N documents (ids of their own, not in insertion order, as after a client's
bulk upload). A pass reads them all as a helper's full pass does: sorted by ``_id``, ``{}`` for
the first page and ``{"_id": {"$gt": last}}`` for the next ones, limit page + 1, a projection.
Prints, per N, the pages, the documents examined and the best fake-vault CPU of ``--repeat``
passes, and the ratio to the first size: a pass that costs O(N) gives 2x for twice the
documents (issue 15 item 4 and its follow-up; the slow path sorted every match for every page,
O(N^2 / page)).

CPU time is read here, for the figures only.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import Any

from brh.vault import ObjectId
from hivevault import FakeVault
from simulator.timeloop import run

EPOCH = 1_750_000_000.0


def _vault_with(size: int) -> FakeVault:
    """A fake vault whose collection ``c`` holds ``size`` entry-like documents."""
    vault = FakeVault(clock=lambda: EPOCH, record=False)

    async def main() -> None:
        await vault.create_collection("c")
        docs = [
            {
                "_id": ObjectId(f"{(i * 7919) % size:024x}"),
                "key": f"k{i:06d}",
                "value": {"n": i, "text": "x" * 40},
            }
            for i in range(size)
        ]
        for start in range(0, size, 1000):
            await vault.insert_many("c", docs[start : start + 1000])

    run(main(), start=EPOCH)
    return vault


def _pass(vault: FakeVault, page: int) -> tuple[int, float]:
    """Pages read and CPU seconds of one full pass by ``_id``."""

    async def main() -> int:
        last: ObjectId | None = None
        pages = 0
        while True:
            filter: dict[str, Any] = {} if last is None else {"_id": {"$gt": last}}
            found = await vault.query(
                "c", filter, sort=[("_id", 1)], limit=page + 1, projection={"key": 1}
            )
            pages += 1
            if len(found) <= page:
                return pages
            last = found[page - 1]["_id"]

    started = time.process_time()
    pages = run(main(), start=EPOCH)
    return pages, time.process_time() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,20000", help="comma-separated N")
    parser.add_argument("--page", type=int, default=500, help="page size (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="passes per size; the best counts")
    args = parser.parse_args(argv)
    try:
        sizes = [int(part) for part in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1 or args.page < 1 or args.repeat < 1:
        parser.error("--sizes, --page and --repeat must be positive")
    print(f"python {platform.python_version()} on {platform.machine()}; page {args.page}")
    print("| N | pages | documents examined | fake-vault CPU ms (best) | vs first N |")
    print("|---:|---:|---:|---:|---:|")
    first: float | None = None
    for size in sizes:
        vault = _vault_with(size)
        best = float("inf")
        pages = 0
        for _ in range(args.repeat):
            vault.reset_log()
            pages, seconds = _pass(vault, args.page)
            best = min(best, seconds)
        first = first if first is not None else best
        print(
            f"| {size:,} | {pages} | {vault.examined:,} | {best * 1000:.1f} | {best / first:.2f}x |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
