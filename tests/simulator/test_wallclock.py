"""The system clock on simulated time (issue 12, freezegun): an implementation that reads
``time.time()`` itself still replays from its seed, and its writes carry the device's clock
where the harness knows which device runs (:mod:`simulator.wallclock`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from brh import BackupRestoreHelper
from brh.hlc import Version
from simulator.impl import Installation, ReferenceHelper
from simulator.timeloop import run
from simulator.wallclock import SystemClock
from simulator.world import World, simulate

EPOCH = 1_750_000_000.0
SKEW = 3600.0


def production_clock_reference(installation: Installation) -> ReferenceHelper:
    """The reference as an app would build it: no clock given, so it reads ``time.time``."""
    installation.store.mkdir(parents=True, exist_ok=True)
    helper = BackupRestoreHelper(
        installation.vault,
        installation.store / "brh.sqlite3",
        device_id=installation.device_id,
        rng=installation.rng,
        **installation.options,
    )
    return ReferenceHelper(helper)


VERSIONS: dict[str, tuple[float, Version]] = {}
"""key -> (simulated time of its last write, the version the vault holds for it)."""


async def _two_devices(world: World) -> None:
    a = world.add_device("a")
    b = world.add_device("b", offset=SKEW)
    written: dict[str, float] = {}
    for device, key, value in ((a, "x", 1), (b, "y", 2), (a, "x", 3)):
        written[key] = world.now()
        await device.put(key, value)
        await world.advance(30)
    await a.sync()
    await b.sync()
    for doc in world.server.vault.documents("backup_notes"):
        VERSIONS[doc["key"]] = (written[doc["key"]], Version.decode(doc["brhVersion"]))


def test_the_reference_on_its_production_clock_replays_and_writes_the_device_time(
    tmp_path: Path,
) -> None:
    """Issue 12 (freezegun): the reference with its default clock (``time.time``) runs in the
    simulator as any implementation that reads the system clock would: two runs of one seed
    give the same trace, and each write's version carries the writing device's clock (b runs
    an hour ahead), not the machine's."""
    traces = []
    for attempt in range(2):
        trace = tmp_path / f"run-{attempt}.jsonl"
        outcome = simulate(
            _two_devices,
            seed=5,
            trace_path=trace,
            factory=production_clock_reference,
            workdir=tmp_path / f"stores-{attempt}",
        )
        assert outcome.ok, outcome.findings
        traces.append(trace.read_text())
    assert traces[0] == traces[1]
    assert sorted(VERSIONS) == ["x", "y"]
    for key, skew in (("x", 0.0), ("y", SKEW)):  # a wrote x last, b (an hour ahead) wrote y
        t, version = VERSIONS[key]
        assert version.wall_ms == pytest.approx((EPOCH + t + skew) * 1000, abs=1), key


def test_without_the_frozen_clock_the_same_helper_reads_the_machine_clock(
    tmp_path: Path,
) -> None:
    """The test above can fail: with ``system_clock=False`` the writes carry today's date."""
    simulate(
        _two_devices,
        seed=5,
        factory=production_clock_reference,
        workdir=tmp_path / "stores",
        system_clock=False,
    )
    assert VERSIONS["x"][1].wall_ms / 1000 == pytest.approx(time.time(), abs=600)


def test_the_system_clock_follows_the_loop_and_reads_a_device_clock_until_time_moves() -> None:
    """``time.time()``, ``datetime.now()`` and ``time.monotonic()`` follow virtual time while
    the clock is frozen; ``reading(clock)`` shows that clock until time moves or the block
    ends; stopping gives the real clock back."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen: list[float] = []
        with SystemClock(loop) as clock:
            seen.append(time.time())
            await asyncio.sleep(90)
            seen.append(time.time())
            seen.append(dt.datetime.now(dt.UTC).timestamp())
            with clock.reading(lambda: loop.time() + 500):
                seen.append(time.time())
                await asyncio.sleep(10)
                seen.append(time.time())
            seen.append(time.time())
            # the client of a process implementation keeps its real timeouts
            protocol = {"__name__": "conformance.protocol.process", "time": time}
            seen.append(eval("time.time()", protocol))
        seen.append(time.time())
        return seen

    seen = run(main(), start=EPOCH)
    assert seen[:6] == [EPOCH, EPOCH + 90, EPOCH + 90, EPOCH + 590, EPOCH + 100, EPOCH + 100]
    assert abs(seen[6] - time.time()) < 60  # the process client's, real
    assert abs(seen[7] - time.time()) < 60  # the real clock again


def test_the_system_clock_needs_the_virtual_time_loop() -> None:
    """A clear error, not a frozen clock that never moves."""

    async def main() -> None:
        with pytest.raises(TypeError, match="virtual-time loop"):
            SystemClock(asyncio.get_running_loop())

    asyncio.run(main())


def test_a_world_checks_its_system_clock_argument() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="system_clock"):
            World(1, system_clock="yes")  # type: ignore[arg-type]

    run(main(), start=EPOCH)


def test_the_system_clock_is_given_back_when_its_loop_closes() -> None:
    """A world that fails before it is closed (a factory raising while a device joins) must not
    leave time frozen for the rest of the process: closing the loop stops the clock."""

    async def main() -> None:
        SystemClock(asyncio.get_running_loop()).start()  # and never stopped

    run(main(), start=EPOCH)
    assert abs(time.time() - dt.datetime.now(dt.UTC).timestamp()) < 1
    assert time.time() > EPOCH + 3 * 30 * 86400  # today's date, not the simulated one
