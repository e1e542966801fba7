"""Everyday situations: several devices, reinstalls, a week offline, a large first restore, a
flaky network, a vault outage, clocks in chaos."""

from __future__ import annotations

from brh import RetryPolicy
from simulator.scenarios.moves import (
    DAY,
    HOUR,
    MINUTE,
    scenario_rng,
    seed_vault,
    sync_all,
)
from simulator.scenarios.registry import scenario
from simulator.world import World


@scenario(
    "two-phones-and-a-tablet",
    "a family's two phones and a tablet edit and delete shared notes through a day, syncing "
    "as they go",
    clauses=("SYNC-1", "SYNC-3", "ORD-2", "CB-1", "CB-2", "CB-3"),
)
async def two_phones_and_a_tablet(world: World) -> None:
    """Ordinary use: random edits and deletes (seeded), every device online, some clock skew."""
    rng = scenario_rng(world)
    devices = [
        world.add_device("alice-phone", offset=1.5),
        world.add_device("bob-phone", offset=-40.0),
        world.add_device("tablet", drift_ppm=-300),
    ]
    keys = [f"note-{i}" for i in range(8)]
    for hour in range(24):
        for _ in range(rng.randint(0, 3)):
            device = rng.choice(devices)
            key = rng.choice(keys)
            if rng.random() < 0.2:
                await device.remove(key)
            else:
                await device.put(key, {"text": f"{device.name} at hour {hour}"})
            await world.advance(rng.uniform(0, 30))
        await world.advance(HOUR / 2)
        await rng.choice(devices).sync()
        await world.advance(HOUR / 2)


@scenario(
    "reinstall-and-restore",
    "a reinstalled device restores everything and loses only what it never uploaded",
    clauses=("RES-1", "OFF-4", "CB-1"),
    contexts=("notes", "contacts"),
)
async def reinstall_and_restore(world: World) -> None:
    """The tablet is reinstalled twice, the second time with offline writes (lost on purpose:
    the checker abandons them)."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    for i in range(20):
        await phone.put(f"n{i}", f"note {i}", context="notes")
        await phone.put(f"c{i}", {"name": f"contact {i}"}, context="contacts")
    await phone.remove("n3")
    await world.advance(5)
    await sync_all(world)
    world.note("the tablet is reinstalled: a fresh store restores everything")
    await world.reinstall("tablet")
    await tablet.sync()
    world.note("offline writes on the tablet, then a reinstall before it reconnects: lost")
    world.disconnect("tablet")
    await tablet.put("never-uploaded", "lost with the reinstall")
    await world.advance(MINUTE)
    await world.reinstall("tablet")
    world.reconnect("tablet")
    await tablet.sync()
    await phone.put("n0", "edited after the reinstalls")
    await world.advance(MINUTE)


@scenario(
    "wipe-and-restore",
    "an app that resets one context with wipe_local_context_data gets every live entry back "
    "through insertions, its own writes included, and the other context is untouched",
    clauses=("RES-2", "API-5", "RES-1", "CB-4"),
    contexts=("notes", "contacts"),
)
async def wipe_and_restore(world: World) -> None:
    """The phone's app resets its notes and restores them from the vault."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    for i in range(5):
        await phone.put(f"n{i}", f"note {i}", context="notes")
        await tablet.put(f"c{i}", f"contact {i}", context="contacts")
    await tablet.put("n-tablet", "the tablet's note", context="notes")
    await world.advance(5)
    await sync_all(world)
    world.note("the phone's app resets its notes (its model too) and restores them from the vault")
    await world.wipe("phone", "notes")
    await phone.sync()
    await phone.put("n0", "edited after the restore")
    await world.advance(MINUTE)


@scenario(
    "a-week-offline",
    "a tablet offline for a week, edited on both sides daily, catches up in one go",
    clauses=("OFF-1", "OFF-3", "ORD-2", "RETRY-2"),
    options={"retry": RetryPolicy(initial_delay=1, max_delay=15 * MINUTE, jitter=0.5)},
)
async def a_week_offline(world: World) -> None:
    """Seven days apart: the tablet keeps retrying while offline, backing off to a quarter of
    an hour (as an app would configure it; the world's default stops at two minutes)."""
    rng = scenario_rng(world)
    phone = world.add_device("phone")
    tablet = world.add_device("tablet", offset=-2 * MINUTE)
    for i in range(10):
        await phone.put(f"k{i}", f"v0 {i}")
    await world.advance(5)
    await sync_all(world)
    world.note("the tablet goes offline for seven days")
    world.disconnect("tablet")
    for day in range(7):
        await world.advance(rng.uniform(6, 10) * HOUR)
        await phone.put(f"k{rng.randrange(10)}", f"phone day {day}")
        await tablet.put(f"k{rng.randrange(10)}", f"tablet day {day}")
        if day == 3:
            await phone.remove("k9")
            await tablet.put("tablet-only", "written offline on day 3")
        await world.advance(DAY - 10 * HOUR)
    world.note("the tablet reconnects after a week")
    world.reconnect("tablet")
    await world.advance(5 * MINUTE)
    await phone.sync()


@scenario(
    "large-first-restore",
    "a new phone and a tablet restore a lost phone's vault of two thousand entries (some "
    "written by the original helper) in pages",
    clauses=("RES-1", "SYNC-9", "COST-2", "DATA-4"),
)
async def large_first_restore(world: World) -> None:
    """The vault is seeded as a lost phone left it: 1,400 brh documents, 600 written by the
    original helper (legacy, no ``brhVersion``) and 50 tombstones, which RES-1 says are never
    delivered (more entries would not keep the run under two seconds of wall time).
    Uploading them through a device would cost the fake vault O(n²) (its filters scan every
    document), and World has no verb for a pre-filled vault, so the documents are inserted on
    the server directly."""
    await seed_vault(world, "notes", live=1400, legacy=600, tombstones=50)
    world.note("a new phone joins and restores everything in its first pass")
    phone = world.add_device("phone")
    await phone.sync()
    world.note("a tablet joins while the phone edits a few restored entries")
    tablet = world.add_device("tablet")
    await phone.put("item-00007", {"n": 7, "edited": True})
    await phone.put("legacy-00003", {"n": 3, "edited": True})
    await phone.remove("item-00011")
    await tablet.sync()
    await world.advance(MINUTE)


@scenario(
    "flaky-network",
    "lost requests, lost answers and latencies beyond the client timeout (late arrivals) "
    "neither duplicate nor lose a write",
    clauses=("ORD-5", "SYNC-7", "RETRY-1", "OFF-3"),
)
async def flaky_network(world: World) -> None:
    """The phone loses a fifth of its requests and answers; the tablet's requests take up to
    35 s one way, so some time out and still apply afterwards."""
    rng = scenario_rng(world)
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    laptop = world.add_device("laptop")
    world.lossy("phone", requests=0.2, answers=0.2)
    world.slow_link("tablet", (0.1, 35.0))
    devices = [phone, tablet, laptop]
    for step in range(30):
        device = rng.choice(devices)
        key = f"k{rng.randrange(6)}"
        if rng.random() < 0.15:
            await device.remove(key)
        else:
            await device.put(key, f"{device.name} step {step}")
        await world.advance(rng.uniform(1, 20))
    await world.advance(5 * MINUTE)
    world.note("the network calms down")
    world.lossless("phone")
    world.fast_link("tablet")
    await world.advance(2 * MINUTE)


@scenario(
    "vault-outage",
    "the vault goes down, then frozen, a token expires and the server fails before and after "
    "applying: nothing is lost and passes resume by themselves",
    clauses=("RETRY-1", "RETRY-4", "OFF-3", "ORD-5"),
    contexts=("notes", "contacts"),
)
async def vault_outage(world: World) -> None:
    """Every server-side fault in turn, with writes during each."""
    phone = world.add_device("phone")
    tablet = world.add_device("tablet")
    await phone.put("a", 1)
    await world.advance(5)
    world.note("the vault is down for ten minutes")
    world.take_down()
    await phone.put("b", "during the outage")
    await tablet.put("c", "during the outage", context="contacts")
    await world.advance(10 * MINUTE)
    world.bring_up()
    await world.advance(3 * MINUTE)
    world.note("the vault is frozen (reads work, writes fail) for five minutes")
    world.freeze()
    await phone.put("a", "edited while frozen")
    await tablet.remove("c", context="contacts")
    await world.advance(5 * MINUTE)
    world.unfreeze()
    await world.advance(3 * MINUTE)
    world.note("the tablet's token expires for five minutes")
    world.expire_token("tablet")
    await tablet.put("d", "with an expired token")
    await phone.put("e", "phone is fine")
    await world.advance(5 * MINUTE)
    world.renew_token("tablet")
    await world.advance(3 * MINUTE)
    world.note("the server fails a third of the requests before, and of writes after, applying")
    world.server_errors(before=0.3, after=0.3)
    for i in range(6):
        await phone.put(f"p{i}", i)
        await tablet.put(f"t{i}", i, context="contacts")
        await world.advance(20)
    await world.advance(5 * MINUTE)
    world.stop_server_errors()
    await world.advance(3 * MINUTE)


@scenario(
    "clock-chaos",
    "device and vault clocks jump forward and back by minutes to a day, and drift",
    clauses=("ORD-1", "ORD-2", "ORD-3", "SYNC-4", "SYNC-11"),
)
async def clock_chaos(world: World) -> None:
    """Clocks step both ways (NTP, a user changing the date, a dead RTC battery) and drift."""
    phone = world.add_device("phone", drift_ppm=800)
    tablet = world.add_device("tablet", drift_ppm=-800)
    laptop = world.add_device("laptop", offset=30)
    for key in "abc":
        await phone.put(key, f"{key} v1")
    await world.advance(10)
    await sync_all(world)
    world.note("the tablet's clock jumps a day ahead, writes, then jumps back")
    world.jump_clock("tablet", DAY)
    await tablet.put("a", "tablet, clock a day ahead")
    await world.advance(MINUTE)
    world.jump_clock("tablet", -DAY)
    await phone.put("a", "phone, after the tablet's future edit")
    await world.advance(MINUTE)
    world.note("the vault's clock steps back ten minutes, then forward an hour")
    world.jump_clock("vault", -10 * MINUTE)
    await laptop.put("b", "laptop, vault clock stepped back")
    await world.advance(MINUTE)
    await sync_all(world)
    await phone.put("c", "phone")
    await world.advance(MINUTE)
    world.jump_clock("vault", HOUR)
    await tablet.put("b", "tablet, vault clock an hour ahead")
    await world.advance(MINUTE)
    world.note("the laptop's clock falls back to a day in the past (dead RTC battery)")
    world.jump_clock("laptop", -DAY)
    await laptop.put("c", "laptop, clock a day behind")
    await laptop.put("d", "laptop, new entry")
    await world.advance(MINUTE)
    world.jump_clock("laptop", DAY)
    await world.advance(5 * MINUTE)
    await sync_all(world)
