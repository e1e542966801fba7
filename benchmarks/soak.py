"""A bounded reliability soak: devices writing through a fault proxy to a vault killed with -9.

    python benchmarks/soak.py [--seed N] [--devices 4] [--kills 6] [--duration 60] [--quick]
                              [--rate 0.1] [--keys 16] [--json FILE] [--keep DIR]

What runs, all on 127.0.0.1:

* ``brh-vault serve`` (``python -m vaultd serve``) in a child process, on a SQLite file in a
  temporary directory;
* :class:`vaultd.faultproxy.FaultProxy` in front of it, injecting every fault it has (500s before
  and after forwarding, bodies that are not JSON, resets before forwarding and halfway through
  an answer, slow drips, 401s) at ``--rate`` per request, from the seed;
* ``--devices`` writer devices, each a :class:`brh.BackupRestoreHelper` with its own SQLite store
  and its own :class:`brh.hive.HiveVault` (through the proxy), upserting and deleting keys of
  one small shared key space (so their writes conflict) and syncing, for ``--duration`` seconds;
* meanwhile the vault process is killed with SIGKILL ``--kills`` times at seeded moments and
  restarted on the same file and port after a short, seeded downtime.

Then the faults are healed and every device syncs until all agree (bounded), a full pass each
last. The check: every *acknowledged* write (the helper's ``pushed`` event: the vault answered
the upload) must be on the vault, or superseded there by a newer version of its key
(``brhVersion`` strings order as versions do); one that is neither is *lost*. *Duplicates* are
keys with more than one live document on the vault. *Converged* means every device's local
copy, its app model and the vault's newest document of each key agree, and nothing is pending.
The run prints a table and exits 1 on a loss, a duplicate or no convergence (2 on bad options).

Bounded everywhere: the writers stop after ``--ops`` operations or ``--duration`` seconds, each
vault request of a helper is cut at its ``request_deadline`` (``--request-deadline``, 3 s: a
dripped answer cannot hold a pass, SPEC RETRY-5), each sync call the soak makes waits at most
``--sync-timeout`` seconds (a pass meeting several slow requests can take longer; it then
carries on in the background and the timeout is counted), a restart gives up after 20 s,
healing after ``--heal-rounds`` rounds or ``--heal-seconds``, and the whole run has a wall-time
cap.

Why one asyncio process for every device: the helper is asyncio code and what is under test is
how devices, vault and network interact, not Python's parallelism. Each device still has its
own store file, HTTP client and connections, so the vault sees concurrent, interleaved requests
from distinct clients; and the acknowledgements are read from the helpers' listeners directly,
so no acknowledgement can be lost between a device and the soak. On a 2-core machine, separate
processes for 4 devices, the proxy and the vault would mostly measure the scheduler. The vault,
the one process that is killed, is a real process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from brh import BackupRestoreHelper, Entry, RetryPolicy, SyncEvent, SyncResult
from brh.hive import HiveVault
from vaultd.faultproxy import Fault, FaultPlan, FaultProxy

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOKEN = "soak"
CONTEXT = "notes"
COLLECTION = f"backup_{CONTEXT}"
START_TIMEOUT = 20.0
"""Seconds a vault process may take to print its URL."""
STOP_TIMEOUT = 10.0


@dataclass
class Settings:
    """One soak's parameters (the defaults are the README's run; ``quick`` a smoke test)."""

    seed: int = 1
    devices: int = 4
    kills: int = 6
    duration: float = 60.0
    ops: int = 2000
    keys: int = 16
    rate: float = 0.1
    sync_timeout: float = 10.0
    request_deadline: float = 3.0
    drip_interval: float = 0.5
    drip_limit: float = 8.0
    heal_rounds: int = 30
    heal_seconds: float = 60.0
    pause: tuple[float, float] = (0.02, 0.2)

    @classmethod
    def quick(cls, seed: int) -> Settings:
        return cls(
            seed=seed,
            devices=3,
            kills=2,
            duration=5.0,
            ops=400,
            sync_timeout=4.0,
            drip_limit=1.5,
            heal_seconds=30.0,
        )

    @property
    def wall_cap(self) -> float:
        """Seconds after which the whole run is abandoned (a bug in the soak, not a finding)."""
        return self.duration + self.heal_seconds + self.kills * START_TIMEOUT + 60.0


# -- the check: pure, on what the run recorded and what the vault holds at the end --------------


@dataclass(frozen=True)
class Ack:
    """An acknowledged write: the vault answered the upload of ``version`` of ``key``."""

    device: str
    key: str
    version: str


@dataclass
class DeviceView:
    """What one device holds after healing."""

    local: dict[str, Any]
    """Key -> data of the helper's live local entries."""
    model: dict[str, Any]
    """Key -> data of the app's model, as its callbacks and its own writes left it."""
    pending: int


@dataclass
class Verdict:
    acknowledged: int
    on_vault: int
    """Acknowledged writes whose version is their key's newest on the vault."""
    superseded: int
    """Acknowledged writes a newer version of their key replaced."""
    lost: list[Ack]
    duplicates: list[str]
    """Keys with more than one live document on the vault."""
    extra_documents: int
    """Documents beyond one per key (older duplicates, live or not)."""
    disagreements: list[str]

    @property
    def converged(self) -> bool:
        return not self.disagreements

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicates and self.converged


def check(
    acks: Sequence[Ack], documents: Sequence[Mapping[str, Any]], devices: Mapping[str, DeviceView]
) -> Verdict:
    """Judge a run: lost acknowledged writes, duplicates, and whether everyone agrees."""
    newest: dict[str, Mapping[str, Any]] = {}
    live_documents: Counter[str] = Counter()
    for doc in documents:
        key, version = doc.get("key"), doc.get("brhVersion")
        if not isinstance(key, str) or not isinstance(version, str):
            continue
        if doc.get("deletionDate") is None:
            live_documents[key] += 1
        if key not in newest or version > newest[key]["brhVersion"]:
            newest[key] = doc
    on_vault = superseded = 0
    lost: list[Ack] = []
    for ack in sorted(set(acks), key=lambda a: (a.key, a.version, a.device)):
        winner = newest.get(ack.key)
        if winner is None or winner["brhVersion"] < ack.version:
            lost.append(ack)
        elif winner["brhVersion"] == ack.version:
            on_vault += 1
        else:
            superseded += 1
    vault_live = {
        key: doc["data"] for key, doc in sorted(newest.items()) if doc.get("deletionDate") is None
    }
    disagreements: list[str] = []
    for name, view in sorted(devices.items()):
        if view.pending:
            disagreements.append(f"{name}: {view.pending} changes still pending")
        for what, held in (("local copy", view.local), ("app model", view.model)):
            if held != vault_live:
                keys = sorted(
                    key
                    for key in set(held) | set(vault_live)
                    if key not in held or key not in vault_live or held[key] != vault_live[key]
                )
                disagreements.append(f"{name}: {what} differs from the vault on {keys[:5]}")
    return Verdict(
        acknowledged=len(set(acks)),
        on_vault=on_vault,
        superseded=superseded,
        lost=lost,
        duplicates=sorted(key for key, count in live_documents.items() if count > 1),
        extra_documents=len(documents) - len(newest),
        disagreements=disagreements,
    )


# -- the vault process ---------------------------------------------------------------------------


class VaultProcess:
    """``brh-vault serve`` on 127.0.0.1, killed and restarted on the same file and port."""

    def __init__(self, db: Path, log: Path) -> None:
        self.db = db
        self.log = log
        self.port = 0
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None
        self.starts: list[float] = []
        """Seconds each start took until the vault printed its URL."""

    async def start(self) -> None:
        """Start it (on the port of the first start, once there was one); bounded."""
        args = [sys.executable, "-m", "vaultd", "serve", "--db", str(self.db), "--host", HOST]
        args += ["--port", str(self.port), "--token", TOKEN]
        began = time.monotonic()
        give_up = began + START_TIMEOUT
        while True:  # the port may take a moment to be free again after a kill
            with self.log.open("a") as log:
                process = await asyncio.create_subprocess_exec(
                    *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=log
                )
            assert process.stdout is not None
            try:
                left = max(0.1, give_up - time.monotonic())
                line = (await asyncio.wait_for(process.stdout.readline(), left)).decode()
            except TimeoutError:
                line = ""
            found = re.search(r"serving (http://127\.0\.0\.1:(\d+))", line)
            if found:
                self.process = process
                self.url, self.port = found.group(1), int(found.group(2))
                self.starts.append(time.monotonic() - began)
                return
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            if self.port == 0 or time.monotonic() > give_up:
                raise RuntimeError(
                    f"brh-vault serve did not start within {START_TIMEOUT:g} s; "
                    f"its log is {self.log}"
                )
            await asyncio.sleep(0.25)

    async def kill(self) -> None:
        """``kill -9``, and wait (bounded) until it is gone."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)

    async def stop(self) -> None:
        """SIGTERM; SIGKILL if it has not stopped in time."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)


# -- devices -------------------------------------------------------------------------------------


class Device:
    """An app with a brh helper whose vault is reached through the fault proxy."""

    def __init__(self, name: str, store: Path, url: str, settings: Settings, seed: int) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.model: dict[str, Any] = {}
        self.acks: list[Ack] = []
        self.counts: Counter[str] = Counter()
        self.settings = settings
        self._syncs: list[asyncio.Task[SyncResult | None]] = []
        self.vault = HiveVault(url, self._token, timeout=5.0)
        self.helper = BackupRestoreHelper(
            self.vault,
            str(store),
            device_id=name,
            retry=RetryPolicy(initial_delay=0.2, max_delay=2.0),
            request_deadline=settings.request_deadline,
            rng=random.Random(seed + 1),
            listener=self._on_event,
        )
        self.helper.add_sync_context(CONTEXT, self._on_insert, self._on_modify, self._on_delete)

    # The app: plain callbacks and writes that change the model and tell the helper in one
    # step of the event loop, so the model and the helper's copy cannot drift apart.
    def _on_insert(self, entry: Entry) -> bool:
        self.model[entry.key] = entry.data
        return True

    def _on_modify(self, entry: Entry) -> bool:
        self.model[entry.key] = entry.data
        return True

    def _on_delete(self, entry: Entry) -> bool:
        self.model.pop(entry.key, None)
        return True

    def _token(self) -> str:
        self.counts["token requests"] += 1
        return TOKEN

    def _on_event(self, event: SyncEvent) -> None:
        if event.kind == "pushed" and event.key is not None and event.version is not None:
            self.acks.append(Ack(self.name, event.key, event.version))
            self.counts["pushed events"] += 1
        elif event.kind == "superseded":
            self.counts["superseded"] += 1
        elif event.kind == "pass_finished" and event.result is not None:
            self.counts["uploads counted by passes"] += event.result.pushed
            if event.result.completed:
                self.counts["passes completed"] += 1
            else:
                self.counts[f"passes failed ({event.result.reason})"] += 1
            if "request deadline" in (event.result.error or ""):
                self.counts["passes cut at the request deadline"] += 1

    async def sync(self, *, full: bool = False) -> SyncResult | None:
        """One sync call, waiting at most ``sync_timeout`` (None: it timed out; the pass
        itself carries on in the background)."""
        self.counts["sync calls"] += 1
        try:
            return await asyncio.wait_for(self.helper.sync(full=full), self.settings.sync_timeout)
        except TimeoutError:
            self.counts["sync calls timed out"] += 1
            return None

    async def write(self, until: float) -> None:
        """Upsert and delete keys of the shared key space, syncing now and then; bounded by
        ``ops`` operations and the monotonic deadline ``until``."""
        low, high = self.settings.pause
        for number in range(self.settings.ops):
            if time.monotonic() >= until:
                break
            key = f"k{self.rng.randrange(self.settings.keys):02d}"
            if key in self.model and self.rng.random() < 0.3:
                del self.model[key]
                await self.helper.delete_database_entry(CONTEXT, key)
                self.counts["deletes"] += 1
            else:
                value = {"by": self.name, "n": number}
                self.model[key] = value
                await self.helper.upsert_database_entry(CONTEXT, key, value)
                self.counts["upserts"] += 1
            if self.rng.random() < 0.2:
                # The app asks for a sync but keeps working meanwhile (offline first): a pass
                # held up by a dripping answer must not stop the writes.
                self._syncs.append(asyncio.create_task(self.sync()))
            await asyncio.sleep(self.rng.uniform(low, high))
        await asyncio.gather(*self._syncs)  # each bounded by sync_timeout

    async def view(self) -> DeviceView:
        local: dict[str, Any] = {}
        for number in range(self.settings.keys):
            key = f"k{number:02d}"
            entry = await self.helper.get_database_entry(CONTEXT, key)
            if entry is not None:
                local[key] = entry.data
        return DeviceView(
            local, dict(sorted(self.model.items())), self.helper.pending_count(CONTEXT)
        )

    async def close(self) -> None:
        await self.helper.close()
        await self.vault.aclose()


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Report:
    settings: dict[str, Any]
    seconds: float = 0.0
    chaos_seconds: float = 0.0
    heal_seconds: float = 0.0
    heal_rounds: int = 0
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    proxy: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0
    on_vault: int = 0
    superseded: int = 0
    lost: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    extra_documents: int = 0
    converged: bool = False
    disagreements: list[str] = field(default_factory=list)
    documents: int = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicates and self.converged


async def kill_now_and_then(
    vault: VaultProcess, settings: Settings, rng: random.Random, report: Report
) -> None:
    """Kill the vault ``kills`` times at seeded moments of the chaos phase; restart each time."""
    began = time.monotonic()
    moments = sorted(rng.uniform(0.05, 0.9) * settings.duration for _ in range(settings.kills))
    downtimes = [rng.uniform(0.1, 1.0) for _ in moments]
    for moment, downtime in zip(moments, downtimes, strict=True):
        await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
        await vault.kill()
        report.kills += 1
        await asyncio.sleep(downtime)
        await vault.start()


async def heal(devices: list[Device], settings: Settings, report: Report) -> None:
    """Sync every device until a round changes nothing and nothing is pending, then a full
    pass each; bounded by ``heal_rounds`` and ``heal_seconds``."""
    began = time.monotonic()
    quiet_rounds = 0
    for round_number in range(1, settings.heal_rounds + 1):
        report.heal_rounds = round_number
        if time.monotonic() - began > settings.heal_seconds:
            return
        full = quiet_rounds >= 1
        results = await asyncio.gather(*(device.sync(full=full) for device in devices))
        quiet = all(
            result is not None
            and result.completed
            and result.pushed == 0
            and result.delivered == 0
            and device.helper.pending_count(CONTEXT) == 0
            for device, result in zip(devices, results, strict=True)
        )
        if not quiet:
            quiet_rounds = 0
            continue
        if full:
            return  # a quiet round, then a quiet round of full passes
        quiet_rounds += 1


async def read_vault(url: str) -> list[dict[str, Any]]:
    async with HiveVault(url, TOKEN, timeout=10.0) as vault:
        return await vault.find_many(COLLECTION, {})


async def soak(settings: Settings, directory: Path) -> Report:
    report = Report(settings={k: v for k, v in asdict(settings).items() if k != "pause"})
    rng = random.Random(settings.seed)
    started = time.monotonic()
    vault = VaultProcess(directory / "vault.sqlite", directory / "vault.log")
    await vault.start()
    fault_rates = {fault: settings.rate / len(Fault) for fault in Fault}
    plan = FaultPlan(seed=rng.randrange(2**32), rates=fault_rates)
    proxy = FaultProxy(
        vault.url,
        plan=plan,
        host=HOST,
        drip_interval=settings.drip_interval,
        drip_limit=settings.drip_limit,
        upstream_timeout=10.0,
    )
    devices: list[Device] = []
    try:
        await proxy.start()
        for number in range(settings.devices):
            name = f"dev{number}"
            store = directory / f"{name}.sqlite"
            devices.append(Device(name, store, proxy.url, settings, rng.randrange(2**32)))
        until = time.monotonic() + settings.duration
        await asyncio.gather(
            kill_now_and_then(vault, settings, random.Random(rng.randrange(2**32)), report),
            *(device.write(until) for device in devices),
        )
        report.chaos_seconds = time.monotonic() - started
        plan.heal()
        healing = time.monotonic()
        await heal(devices, settings, report)
        report.heal_seconds = time.monotonic() - healing
        documents = await read_vault(vault.url)
        views = {device.name: await device.view() for device in devices}
        verdict = check([ack for device in devices for ack in device.acks], documents, views)
        report.documents = len(documents)
        report.acknowledged = verdict.acknowledged
        report.on_vault = verdict.on_vault
        report.superseded = verdict.superseded
        report.lost = [asdict(ack) for ack in verdict.lost]
        report.duplicates = verdict.duplicates
        report.extra_documents = verdict.extra_documents
        report.converged = verdict.converged
        report.disagreements = verdict.disagreements
    finally:
        for device in devices:
            await asyncio.wait_for(device.close(), STOP_TIMEOUT)
        await asyncio.wait_for(proxy.aclose(), STOP_TIMEOUT)
        await vault.stop()
    totals: Counter[str] = Counter()
    for device in devices:
        totals.update(device.counts)
    report.devices = dict(sorted(totals.items()))
    report.faults = {fault.value: proxy.counts[fault.value] for fault in Fault}
    report.proxy = {k: proxy.counts[k] for k in ("requests", "forwarded", "upstream_failed")}
    report.restart_seconds = vault.starts[1:]
    report.seconds = time.monotonic() - started
    return report


# -- output --------------------------------------------------------------------------------------


def table(report: Report) -> str:
    """The run as a Markdown table."""
    s, d = report.settings, report.devices
    failed = {
        name.removeprefix("passes failed (").removesuffix(")"): count
        for name, count in sorted(d.items())
        if name.startswith("passes failed")
    }
    why = ", ".join(f"{reason} {count:,}" for reason, count in failed.items())
    restarts = report.restart_seconds
    upserts, deletes = d.get("upserts", 0), d.get("deletes", 0)
    faults = ", ".join(f"{name} {count}" for name, count in report.faults.items())
    converged = "yes" if report.converged else "no"
    rows = [
        ("seed", f"{s['seed']}"),
        ("devices, writing for", f"{s['devices']}, {s['duration']:g} s"),
        ("shared key space", f"{s['keys']} keys"),
        ("local writes (upserts / deletes)", f"{upserts + deletes:,} ({upserts:,} / {deletes:,})"),
        (
            "vault kills (-9), each restarted in",
            f"{report.kills}, {min(restarts, default=0):.2f}-{max(restarts, default=0):.2f} s",
        ),
        (
            "requests through the proxy (502: vault down)",
            f"{report.proxy.get('requests', 0):,} ({report.proxy.get('upstream_failed', 0):,})",
        ),
        (f"faults injected (rate {s['rate']:g})", faults),
        ("token requests (first ones + after 401s)", f"{d.get('token requests', 0)}"),
        (
            "passes completed / failed",
            f"{d.get('passes completed', 0):,} / {sum(failed.values()):,}"
            + (f" ({why})" if why else ""),
        ),
        ("local changes that lost a conflict (superseded)", f"{d.get('superseded', 0):,}"),
        (
            f"passes cut at the helper's request deadline ({s['request_deadline']:g} s)",
            f"{d.get('passes cut at the request deadline', 0):,}",
        ),
        (
            f"sync calls / timed out (after {s['sync_timeout']:g} s)",
            f"{d.get('sync calls', 0):,} / {d.get('sync calls timed out', 0):,}",
        ),
        (
            "uploads counted by passes / pushed events",
            f"{d.get('uploads counted by passes', 0):,} / {d.get('pushed events', 0):,}",
        ),
        ("acknowledged writes (distinct pushed events)", f"{report.acknowledged:,}"),
        (
            "... still the newest on the vault / superseded",
            f"{report.on_vault:,} / {report.superseded:,}",
        ),
        ("**lost** (acknowledged, neither on the vault nor superseded)", f"**{len(report.lost)}**"),
        ("**duplicates** (keys with more than one live document)", f"**{len(report.duplicates)}**"),
        ("older documents left beside a key's newest", f"{report.extra_documents}"),
        (
            "**converged** (every device's copy and app = the vault)",
            f"**{converged}**, after {report.heal_rounds} heal rounds "
            f"({report.heal_seconds:.1f} s)",
        ),
        ("wall time", f"{report.seconds:.1f} s"),
    ]
    lines = ["| soak | result |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="soak.py", description="A bounded reliability soak of brh against brh-vault serve."
    )
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--quick", action="store_true", help="a smoke test of about 10 s")
    parser.add_argument("--devices", type=int, help="writer devices (4; quick 3)")
    parser.add_argument("--kills", type=int, help="kill -9 of the vault (6; quick 2)")
    parser.add_argument("--duration", type=float, help="seconds of writing (60; quick 5)")
    parser.add_argument("--ops", type=int, help="operations per device at most (2000)")
    parser.add_argument("--keys", type=int, help="size of the shared key space (16)")
    parser.add_argument("--rate", type=float, help="fault probability per request (0.1)")
    parser.add_argument("--sync-timeout", type=float, help="seconds a sync call waits (10)")
    parser.add_argument(
        "--request-deadline",
        type=float,
        help="the helpers' request_deadline: seconds one vault request may take (3)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--keep", type=Path, help="keep the vault and stores in this directory")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the helpers' warnings (vault errors)"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    settings = Settings.quick(seed) if args.quick else Settings(seed=seed)
    for name in (
        "devices",
        "kills",
        "duration",
        "ops",
        "keys",
        "rate",
        "sync_timeout",
        "request_deadline",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    checks = [
        ("--devices", settings.devices >= 1 and settings.devices <= 32, "1 to 32"),
        ("--kills", 0 <= settings.kills <= 100, "0 to 100"),
        ("--duration", 0 < settings.duration <= 3600, "over 0 and at most 3600 seconds"),
        ("--ops", settings.ops >= 1, "at least 1"),
        ("--keys", 1 <= settings.keys <= 100, "1 to 100"),
        ("--rate", 0 <= settings.rate <= 1, "between 0 and 1"),
        ("--sync-timeout", 0 < settings.sync_timeout <= 600, "over 0 and at most 600 seconds"),
        (
            "--request-deadline",
            0 < settings.request_deadline <= 600,
            "over 0 and at most 600 seconds",
        ),
    ]
    for option, good, expected in checks:
        if not good:
            value = getattr(settings, option[2:].replace("-", "_"))
            parser.error(f"{option} must be {expected}, got {value}")
    return settings, args


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = parse(argv)
    # Vault errors are what this run is made of: the helpers' warnings about them are noise
    # unless asked for. Errors (a pass that failed unexpectedly) still show.
    logging.getLogger("brh").setLevel(logging.INFO if args.verbose else logging.ERROR)
    print(
        f"soak: seed {settings.seed}; {settings.devices} devices for {settings.duration:g} s, "
        f"{settings.kills} kills, fault rate {settings.rate:g}",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            directory = args.keep
            directory.mkdir(parents=True, exist_ok=True)
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brh-soak-")))
        try:
            report = asyncio.run(asyncio.wait_for(soak(settings, directory), settings.wall_cap))
        except TimeoutError:
            print(f"soak: gave up after {settings.wall_cap:g} s, hung (seed {settings.seed})")
            return 1
    print(table(report))
    for ack in report.lost[:20]:
        print(f"LOST: {ack['device']} {ack['key']} {ack['version']}")
    for line in report.disagreements[:20]:
        print(f"NOT CONVERGED: {line}")
    if report.duplicates:
        print(f"DUPLICATES: {', '.join(report.duplicates)}")
    if args.json is not None:
        args.json.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    again = " ".join(["python benchmarks/soak.py", *(argv or sys.argv[1:])])
    if args.seed is None:
        again += f" --seed {settings.seed}"
    print(f"soak: {'ok' if report.ok else 'FAILED'} (seed {settings.seed}; again: {again})")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
