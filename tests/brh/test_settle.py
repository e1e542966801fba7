"""The pull cursor settles on the vault's clock, never on the device's (SYNC-4)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from brh.core import cursor_settles
from brh.hive import HiveVault
from hivevault.vault import FakeVault
from simulator.world.clocks import SkewedClock
from simulator.world.link import Link
from simulator.world.server import VaultServer
from tests.support import EPOCH, Device, fake_vault


@pytest.mark.parametrize(
    ("cursor", "vault_now", "settles"),
    [
        (100, None, False),  # the vault's time is unknown: never
        (100, 105.0, False),  # inside the overlap (5 s): a write stamped 100 may not show yet
        (100, 105.9, False),
        (100, 106.0, True),  # stamped before 101, visible by 106 at the latest
        (100, 7200.0, True),
        (100, 50.0, False),  # the vault's clock behind the cursor (it stepped back)
    ],
)
def test_a_cursor_settles_once_the_vaults_clock_has_passed_the_overlap(
    cursor: int, vault_now: float | None, settles: bool
) -> None:
    """SYNC-4: the pure rule, with the default overlap of 5 s plus the 1 s of stamp rounding."""
    assert cursor_settles(cursor, 5, vault_now) is settles


async def test_a_late_upload_is_read_while_the_vaults_clock_has_not_moved() -> None:
    """SYNC-4 (issue 11): a vault whose clock stands still while the device's runs on (a live
    vault under a simulator's virtual time, or a vault clock far behind the device's): minutes
    of device time pass, yet the cursor does not settle, and a write landing in the vault
    second of the cursor is still read. The helper used to settle after 6 s of its own time
    and miss it for ever (no full pass repaired it: it was not below the cursor by more than
    the overlap)."""
    vault = FakeVault(clock=lambda: EPOCH)  # stands still
    a = Device("a", vault, auto_sync=False, full_sync_interval=None)
    b = Device("b", vault, auto_sync=False, full_sync_interval=None)
    await a.put("x", 1)
    assert await a.helper.sync()
    for _ in range(5):
        assert await b.helper.sync()
        await asyncio.sleep(120)
    assert not b.helper.store.context_state("notes").settled
    await a.put("y", "uploaded late, same vault second")
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert b.app.items == {"x": 1, "y": "uploaded late, same vault second"}
    for device in (a, b):
        await device.helper.close()


async def test_a_vault_that_does_not_tell_its_time_is_judged_by_its_stamps() -> None:
    """SYNC-4: without a Date, the newest stamp read stands for the vault's clock: an idle
    device never settles on its own writes' stamps alone, but stays correct."""

    class Untold:
        """The Vault methods of a FakeVault, without vault_time()."""

        def __init__(self, inner: FakeVault) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            if name == "vault_time":
                raise AttributeError(name)
            return getattr(self._inner, name)

    vault = fake_vault()
    a = Device("a", Untold(vault), auto_sync=False)
    b = Device("b", Untold(vault), auto_sync=False)
    await a.put("x", 1)
    assert await a.helper.sync()
    for _ in range(3):
        assert await b.helper.sync()
        await asyncio.sleep(60)
    assert not b.helper.store.context_state("notes").settled
    await a.put("y", 2)
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert b.app.items == {"x": 1, "y": 2}
    await asyncio.sleep(60)
    await a.put("z", 3)  # a newer stamp, a minute on: the stamp of x is long passed
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert b.app.items == {"x": 1, "y": 2, "z": 3}
    for device in (a, b):
        await device.helper.close()


async def test_the_simulated_network_tells_the_vault_time_of_answers_that_arrive() -> None:
    """SYNC-4: a device learns the vault's clock (its whole seconds, as a Date header) from
    each answer it receives, never from one lost on the way."""
    clock = SkewedClock(offset=-3600.5)  # the vault's host is an hour and a half second slow
    link = Link(VaultServer(random.Random(1), clock=clock))
    assert link.vault_time() is None
    await link.create_collection("c")
    first = link.vault_time()
    assert first == float(int(EPOCH - 3600.5))
    await asyncio.sleep(30)
    link.answers_lost = True
    with pytest.raises(Exception, match="lost"):
        await link.find_many("c", {})
    assert link.vault_time() == first  # the lost answer told nothing
    link.answers_lost = False
    await link.find_many("c", {})
    assert link.vault_time() == first + 60  # 30 s waited, 30 s for the lost one to time out


def test_hive_vault_reads_the_vaults_clock_from_the_date_header() -> None:
    """SYNC-4, HTTP-3: HiveVault.vault_time() is the Date of the latest answer, errors
    included; a malformed Date is ignored."""
    dates = iter(
        [
            "Sun, 06 Dec 2026 10:00:00 GMT",
            "Sun, 06 Dec 2026 10:00:07 GMT",
            "not a date",
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        date = next(dates)
        if request.method == "PUT":
            return httpx.Response(
                455, json={"error": {"message": "exists"}}, headers={"Date": date}
            )
        return httpx.Response(200, json={"items": []}, headers={"Date": date})

    async def main() -> list[float | None]:
        seen: list[float | None] = []
        async with HiveVault("http://vault.test", "t", transport=httpx.MockTransport(answer)) as v:
            seen.append(v.vault_time())
            await v.find_many("c", {})
            seen.append(v.vault_time())
            with pytest.raises(Exception, match="exists"):
                await v.create_collection("c")
            seen.append(v.vault_time())
            await v.find_many("c", {})
            seen.append(v.vault_time())
        return seen

    import datetime

    ten = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC).timestamp()
    assert asyncio.run(main()) == [None, ten, ten + 7, ten + 7]


async def test_a_device_clock_jump_does_not_settle_the_cursor_early() -> None:
    """SYNC-4: a device clock jumping a day forward right after a pull does not settle the
    cursor (the vault's clock did not move); a write landing in the same vault second is still
    read."""
    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    b = Device("b", vault, auto_sync=False)
    await a.put("x", 1)
    assert await a.helper.sync()
    assert await b.helper.sync()
    b.clock.jump(86_400)  # the user sets the date a day ahead
    assert await b.helper.sync()
    assert not b.helper.store.context_state("notes").settled
    await a.put("y", "same vault second")
    assert await a.helper.sync()
    assert await b.helper.sync()
    assert b.app.items == {"x": 1, "y": "same vault second"}
    for _ in range(2):  # (the first of these is the periodic full pass the jump brought)
        await asyncio.sleep(10)
        assert await b.helper.sync()
    assert b.helper.store.context_state("notes").settled  # real time passed: now it may
    for device in (a, b):
        await device.helper.close()


async def test_a_crash_between_pages_does_not_skip_documents_sharing_a_stamp() -> None:
    """SYNC-4, SYNC-9, OFF-4: a settled cursor moved by a first page, then a crash: the restarted
    helper re-reads the stamp the page ended on instead of asking only for newer ones."""
    from brh import Entry
    from brh.store import LocalStore

    vault = fake_vault()
    a = Device("a", vault, auto_sync=False)
    await a.put("seed", 0)
    assert await a.helper.sync()
    store = LocalStore()
    b = Device("b", vault, store=store, auto_sync=False, page_size=2)
    assert await b.helper.sync()
    for _ in range(2):
        await asyncio.sleep(10)
        assert await b.helper.sync()
    assert store.context_state("notes").settled
    for i in range(5):  # five documents with one vault stamp: three pages of two
        await a.put(f"k{i}", i)
    assert await a.helper.sync()
    started = asyncio.Event()

    async def hang_on_the_third(entry: Entry) -> bool:
        if entry.key == "k2":
            started.set()
            await asyncio.sleep(3600)
        b.app.items[entry.key] = entry.data
        return True

    b.helper._contexts["notes"].on_insert = hang_on_the_third
    running = asyncio.ensure_future(b.helper.sync())
    await started.wait()
    await b.helper.close()  # the process dies in the second page
    await running
    again = Device("b", vault, store=store, auto_sync=False, page_size=2)
    assert await again.helper.sync()
    assert sorted(again.local()) == ["k0", "k1", "k2", "k3", "k4", "seed"]
    await a.helper.close()
    await again.helper.close()
