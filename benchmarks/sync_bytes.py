"""What a device sends and receives in a day, and what a full pass costs per entry (issue 15
item 3). Run through ``python benchmarks/sync_cost.py --bytes`` (see its docstring).

:class:`MeteredLink` is one device's link to the shared fake vault: it sizes every request as
the JSON body (or, for a ``find``, the filter) ``brh.hive.HiveVault`` sends, and every answer as
the JSON Hive sends back (``{"items": [...], "is_encrypt": false, "encrypt_method": ""}`` for a
read, ``{"acknowledged", "matched_count", ...}`` for an update, nothing for a delete's 204, the
error body for an error), encoded by ``brh.hive_wire.dumps`` as ``brh-vault serve`` does. HTTP
headers and the URL are not counted. Everything is deterministic (virtual time, seeded edits).

* ``full pass per unchanged entry``: a device holding N synced entries does ``sync(full=True)``;
  the bytes of its answers divided by N, with the projection (``brh.core.Rules``:
  ``full_pass_projection``) on and off, side by side (target: at most 150 bytes);
* ``one day``: two devices sharing N entries (notes of about 245 bytes of JSON each), each
  editing a few entries an hour (:data:`EDITS_PER_HOUR`, at seeded random times), each write's
  debounced pass run by the helper itself, the app calling ``sync()`` every
  :data:`POLL_MINUTES` minutes; the day measured follows half a day of the same, and holds each
  device's periodic full pass (SYNC-11, one a day). Bytes per device per day, requests and
  answers, the full pass apart from the rest, with the projection on and off in one run, and
  the ratio (target: under 0.5).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from brh import BackupRestoreHelper, Entry
from brh.core import RULES, Rules
from brh.events import SyncEvent
from brh.hive_wire import dumps, error_body, items_answer, query_body, update_answer, update_body
from brh.vault import Document, SortSpec, UpdateResult, VaultError
from hivevault.vault import FakeVault
from simulator.timeloop import run

EPOCH = 1_750_000_000.0
"""Virtual start time (seconds since the epoch), as in ``sync_cost.py``."""

CONTEXT = "notes"
EDITS_PER_HOUR = 3
POLL_MINUTES = 15
WARM_UP_HOURS = 12
DAY = 86_400.0
SEED = 15
ENTRY_TARGET = 150
"""Issue 15: bytes of answer per unchanged entry in a full pass, at most."""
DAY_TARGET = 0.5
"""Issue 15: a day's bytes with the projection, under this fraction of those without."""
BODY = (
    "Buy bread and milk on the way home; call the plumber about the kitchen tap before Friday; "
    "book the train for the conference and send the slides to Anna; water the plants twice."
)


def note(key: str, revision: int) -> dict[str, Any]:
    """A plausible entry: a short note (about 245 bytes of JSON, 500 as a vault document)."""
    return {"title": f"Note {key}", "body": BODY, "tags": ["home", "todo"], "revision": revision}


def _size(value: Any) -> int:
    return len(dumps(value, "answer").encode())


@dataclass
class Bytes:
    """Bytes sent and received, and requests made."""

    sent: int = 0
    received: int = 0
    requests: int = 0

    def __sub__(self, other: Bytes) -> Bytes:
        return Bytes(
            self.sent - other.sent, self.received - other.received, self.requests - other.requests
        )

    def __add__(self, other: Bytes) -> Bytes:
        return Bytes(
            self.sent + other.sent, self.received + other.received, self.requests + other.requests
        )


class MeteredLink:
    """One device's :class:`brh.vault.Vault`: the shared fake vault, each exchange sized (see
    the module docstring). :attr:`total` counts what went through it."""

    def __init__(self, vault: FakeVault) -> None:
        self.vault = vault
        self.total = Bytes()

    def __getattr__(self, name: str) -> Any:  # the rest of the Vault protocol, unmetered
        return getattr(self.vault, name)

    def vault_time(self) -> float | None:
        return self.vault.vault_time()

    async def _call(self, body: Mapping[str, Any] | None, call: Any, answer: Any) -> Any:
        self.total.requests += 1
        self.total.sent += 0 if body is None else _size(body)
        try:
            result = await call
        except VaultError as exc:
            self.total.received += _size(error_body(exc)[1])
            raise
        self.total.received += 0 if answer is None else _size(answer(result))
        return result

    async def create_collection(self, name: str) -> None:
        await self._call(None, self.vault.create_collection(name), lambda _: {"name": name})

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
        body = query_body(
            collection, filter, sort=sort, skip=skip, limit=limit, projection=projection
        )
        call = self.vault.query(
            collection, filter, sort=sort, skip=skip, limit=limit, projection=projection
        )
        docs: list[Document] = await self._call(body, call, items_answer)
        return docs

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        call = self.vault.find_many(collection, filter, skip=skip, limit=limit)
        docs: list[Document] = await self._call(filter, call, items_answer)
        return docs

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        body = update_body(filter, update, upsert=upsert, timestamp=timestamp)
        call = self.vault.update_one(collection, filter, update, upsert=upsert, timestamp=timestamp)
        result: UpdateResult = await self._call(body, call, update_answer)
        return result

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._call({"filter": filter}, self.vault.delete_one(collection, filter), None)

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._call({"filter": filter}, self.vault.delete_many(collection, filter), None)


def accept(entry: Entry) -> bool:
    return True


@dataclass
class Meter:
    """One device: its link, and what its passes cost, full passes apart."""

    link: MeteredLink
    helper: BackupRestoreHelper | None = None
    full: Bytes = field(default_factory=Bytes)
    rest: Bytes = field(default_factory=Bytes)
    full_passes: int = 0
    _start: Bytes = field(default_factory=Bytes)
    _last_full: int | None = None

    def listen(self, event: SyncEvent) -> None:
        """At each pass's start and end: its bytes go to :attr:`full` when it was a full pass
        of the context (its ``last_full_ms`` moved), else to :attr:`rest`."""
        assert self.helper is not None
        if event.kind == "pass_started":
            self._start = replace(self.link.total)
            self._last_full = self.helper.store.context_state(CONTEXT).last_full_ms
        elif event.kind == "pass_finished":
            spent = self.link.total - self._start
            if self.helper.store.context_state(CONTEXT).last_full_ms != self._last_full:
                self.full, self.full_passes = self.full + spent, self.full_passes + 1
            else:
                self.rest = self.rest + spent

    def reset(self) -> None:
        self.full, self.rest, self.full_passes = Bytes(), Bytes(), 0


def device(vault: FakeVault, name: str, rules: Rules, *, auto_sync: bool) -> Meter:
    loop = asyncio.get_running_loop()
    meter = Meter(MeteredLink(vault))
    meter.helper = BackupRestoreHelper(
        meter.link,
        ":memory:",
        device_id=name,
        clock=loop.time,
        auto_sync=auto_sync,
        rules=rules,
        listener=meter.listen,
    )
    meter.helper.add_sync_context(CONTEXT, accept, accept, accept)
    return meter


async def synced(meter: Meter) -> BackupRestoreHelper:
    helper = meter.helper
    assert helper is not None
    result = await helper.sync()
    if not result:
        raise RuntimeError(f"device {helper.device_id}: a pass did not complete: {result}")
    return helper


async def shared(size: int, rules: Sequence[Rules], *, auto_sync: bool = False) -> list[Meter]:
    """Devices, one per ``rules``, on one fake vault holding ``size`` notes that the first
    wrote; every device holds them all, synced, past the overlap window."""
    loop = asyncio.get_running_loop()
    vault = FakeVault(clock=loop.time, record=False)
    meters = [device(vault, f"d{i}", r, auto_sync=auto_sync) for i, r in enumerate(rules)]
    first = meters[0].helper
    assert first is not None
    for i in range(size):
        await first.upsert_database_entry(CONTEXT, f"k{i}", note(f"k{i}", 0))
    await synced(meters[0])
    for _ in range(2):
        for meter in meters:
            await synced(meter)
        await asyncio.sleep(60)
    return meters


async def full_pass_per_entry(size: int) -> tuple[float, float]:
    """Bytes of answer per unchanged entry of a full pass, projection on and off."""
    on, off = await shared(size, [RULES, replace(RULES, full_pass_projection=False)])
    figures = []
    for meter in (on, off):
        assert meter.helper is not None
        before = replace(meter.link.total)
        if not await meter.helper.sync(full=True):
            raise RuntimeError("the full pass did not complete")
        figures.append((meter.link.total - before).received / size)
        await meter.helper.close()
    return figures[0], figures[1]


async def one_day(size: int, rules: Rules, seed: int, hours: float = 24.0) -> list[Meter]:
    """Two devices sharing ``size`` notes: half a day, then ``hours`` measured (see the module
    docstring); the meters of the measured part."""
    loop = asyncio.get_running_loop()
    meters = await shared(size, [rules, rules], auto_sync=True)  # a pass after each write
    span = (WARM_UP_HOURS + hours) * 3600
    start = loop.time()
    measured = start + WARM_UP_HOURS * 3600

    async def run_device(index: int, meter: Meter) -> None:
        helper = meter.helper
        assert helper is not None
        rng = random.Random(f"{seed}/{index}")  # the same day whatever the other device does
        edits = [(rng.uniform(0, span), "edit") for _ in range(int(EDITS_PER_HOUR * span / 3600))]
        offset = index * POLL_MINUTES * 30.0  # the devices' polls half a period apart
        polls = [(t, "poll") for t in _range(offset, span, POLL_MINUTES * 60.0)]
        reset = False
        for at, what in sorted(edits + polls):
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            if not reset and loop.time() >= measured:
                meter.reset()
                reset = True
            if what == "edit":
                key = f"k{rng.randrange(size)}"
                await helper.upsert_database_entry(CONTEXT, key, note(key, rng.randrange(10**6)))
            else:
                await helper.sync()
        await asyncio.sleep(max(0.0, start + span - loop.time()))

    await asyncio.gather(*(run_device(i, m) for i, m in enumerate(meters)))
    for meter in meters:
        assert meter.helper is not None
        await meter.helper.close()
    return meters


def _range(first: float, end: float, step: float) -> list[float]:
    out, at = [], first
    while at < end:
        out.append(at)
        at += step
    return out


ENTRY_SIZES = (1_000, 10_000)
DAY_SIZE = 1_000


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f}"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(entry_sizes: Sequence[int], day_size: int, seed: int) -> str:
    """Both measurements, each on its own virtual-time loop, as Markdown tables with the
    targets' verdicts."""
    lines = [
        "Full pass, bytes of answer per unchanged entry:",
        "",
        "| N | projection on | projection off | on / off |",
        "|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for size in entry_sizes:
        progress(f"N={size}: a full pass with the projection on and off...")
        on, off = run(full_pass_per_entry(size), start=EPOCH)
        worst = max(worst, on)
        lines.append(f"| {size:,} | {on:.1f} | {off:.1f} | {on / off:.2f} |")
    verdict = "met" if worst <= ENTRY_TARGET else "NOT met"
    lines += ["", f"Per unchanged entry: {worst:.1f} bytes (target <= {ENTRY_TARGET}: {verdict})"]
    lines += [
        "",
        f"One day, 2 devices, {day_size:,} entries (KB per device per day; seed {seed}):",
        "",
        "| projection | device | requests, full pass | requests, rest | answers, full pass "
        "| answers, rest | total | full pass share | full passes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals = []
    for label, rules in (("on", RULES), ("off", replace(RULES, full_pass_projection=False))):
        progress(f"one day, projection {label}...")
        meters = run(one_day(day_size, rules, seed), start=EPOCH)
        total = 0
        for meter in meters:
            assert meter.helper is not None
            both = meter.full + meter.rest
            day = both.sent + both.received
            total += day
            share = (meter.full.sent + meter.full.received) / day
            lines.append(
                f"| {label} | {meter.helper.device_id} | {_kb(meter.full.sent)} | "
                f"{_kb(meter.rest.sent)} | {_kb(meter.full.received)} | "
                f"{_kb(meter.rest.received)} | {_kb(day)} | {share:.0%} | {meter.full_passes} |"
            )
        totals.append(total / len(meters))
    ratio = totals[0] / totals[1]
    verdict = "met" if ratio < DAY_TARGET else "NOT met"
    lines += [
        "",
        f"One day per device: {_kb(totals[0])} KB with the projection, {_kb(totals[1])} KB "
        f"without: {ratio:.2f}x (target < {DAY_TARGET}: {verdict})",
    ]
    return "\n".join(lines)
