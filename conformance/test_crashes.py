"""Crashes anywhere (level ``robust``): a device killed at each point inside a pass loses no
acknowledged change, duplicates nothing and redelivers what it never recorded.

The harness arms each crash at a point it can see (``world.crash_at``,
``simulator/world/crashpoints.py``): a vault request as it leaves or once the vault applied it,
a callback before or after the app took the change, and at any step of a pass: for an
implementation run as a process (``--brh-cmd``) right after any line it writes, for one in
process at any suspension of its tasks. After each crash the device restarts
on the store the crash left (SPEC OFF-2: each local change and each sync step is one local
transaction; OFF-4: a restart resumes where it was). An implementation whose local writes take
several steps keeps half of one, or loses one it acknowledged (the original helper, W12).
"""

from __future__ import annotations

import asyncio

from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import sync_all
from simulator.world import World

ROUNDS = 4
"""Crash points tried in one run: the first ROUNDS requests (callbacks, lines) of a pass."""


async def _sync_until_crash_point(world: World, name: str) -> bool:
    """``name`` syncs with a crash armed; then it restarts if the crash fired, or the crash is
    disarmed if the pass never got there. Whether it fired."""
    device = world.device(name)
    running = asyncio.ensure_future(device.sync())
    await asyncio.gather(running, return_exceptions=True)  # cut short by the crash, or not
    await world.advance(1)
    if device.running:
        world.disarm_crash(name)
        return False
    await world.restart(name)
    return True


@clause("OFF-2", "OFF-4", "ORD-5", level="robust", weakness="W12")
def test_a_crash_at_any_request_of_a_pass_loses_no_acknowledged_change(brh_sim: Sim) -> None:
    """OFF-2, OFF-4, ORD-5 (W12): the phone makes changes (new keys, an edit, a delete) and its
    pass is cut at its 1st, 2nd, 3rd, 4th vault request, as the request leaves or once the vault
    applied it (the answer never arrives). Each time it restarts on the store the crash left:
    every change it acknowledged is still there, and in the end the tablet has exactly the
    phone's entries, with no duplicate (the checkers judge that too)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("kept", 0)
        await phone.put("doomed", 0)
        await world.advance(5)
        await sync_all(world)
        expected = {"kept": 0, "doomed": 0}
        crashes = 0
        for n in range(1, ROUNDS + 1):
            await phone.put(f"k{n}", n)
            await phone.put("kept", n)
            expected.update({f"k{n}": n, "kept": n})
            if n == 3:
                await phone.remove("doomed")
                del expected["doomed"]
            world.crash_at("phone", request=n, applied=n % 2 == 0)
            crashes += await _sync_until_crash_point(world, "phone")
            assert phone.local() == expected, (
                f"after a crash at request {n} of a pass, the restarted phone's local copy "
                "lost or changed acknowledged changes"
            )
        assert crashes > 0, "no pass reached a crash point: the test tried nothing"
        await sync_all(world, rounds=3)
        assert tablet.app.items == expected
        assert tablet.local() == expected

    brh_sim.run(scenario)


@clause("CB-7", "OFF-4", "SYNC-6", level="robust")
def test_a_crash_in_any_callback_of_a_pass_redelivers_what_was_not_recorded(
    brh_sim: Sim,
) -> None:
    """CB-7, OFF-4, SYNC-6: the tablet's pass is cut in its 1st, 2nd, 3rd callback, before the
    app saw the change or after the app took it (the helper never got the answer). After each
    restart the changes it did not record are delivered again, so in the end the tablet's app
    and local copy equal the phone's."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("a", 0)
        await world.advance(5)
        await sync_all(world)
        crashes = 0
        for n in range(1, 4):
            for key in ("a", "b", "c", "d"):
                await phone.put(key, f"{key}{n}")
            await world.advance(5)
            await phone.sync()
            world.crash_at("tablet", callback=n, applied=n % 2 == 1)
            crashes += await _sync_until_crash_point(world, "tablet")
        assert crashes > 0, "no pass reached a crash point: the test tried nothing"
        await sync_all(world, rounds=3)
        expected = {key: f"{key}3" for key in ("a", "b", "c", "d")}
        assert tablet.app.items == expected
        assert tablet.local() == expected

    brh_sim.run(scenario)


@clause("OFF-2", "OFF-4", level="robust", weakness="W12")
def test_a_helper_killed_at_any_step_of_a_pass_loses_nothing(brh_sim: Sim) -> None:
    """OFF-2, OFF-4 (W12): the phone is killed at the 1st, 2nd, 3rd, 4th point of a pass the
    harness can count inside it: over the protocol right after each line its process writes
    (a request, a callback, a result), before the harness acts on it; in process at each
    suspension of its tasks (any await of its own, a yield inside its store's write
    included). Each restart finds every acknowledged change, and in the end both devices hold
    the same entries."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        by_line = hasattr(phone.impl, "crash_after_lines")
        await tablet.put("from tablet", 0)
        await world.advance(5)
        await tablet.sync()
        own: dict[str, int] = {}
        crashes = 0
        for k in range(1, ROUNDS + 1):
            await world.advance(5)  # idle: a step crash counts only tasks started from now
            await phone.put(f"k{k}", k)
            own[f"k{k}"] = k
            if by_line:
                world.crash_at("phone", line=k)
            else:
                world.crash_at("phone", step=k)
            crashes += await _sync_until_crash_point(world, "phone")
            kept = {key: value for key, value in phone.local().items() if key in own}
            assert kept == own, f"a kill at point {k} of a pass lost acknowledged changes"
        assert crashes > 0, "no pass reached a crash point: the test tried nothing"
        await sync_all(world, rounds=3)
        assert tablet.local() == phone.local() == {"from tablet": 0, **own}

    brh_sim.run(scenario)
