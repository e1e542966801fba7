"""``make demo``: three devices keep a notes app in step through one fake vault.

A short story on virtual time (it runs in well under a second): a laptop whose clock is three
hours slow, a tablet that goes offline for two hours, a phone whose app refuses a change once,
then a reinstall that restores everything. Each step prints what happened; the end checks that
every device, every app model and the vault agree, and exits non-zero if not.

Run it with ``python -m simulator.demo`` (``--seed N`` varies the retry jitter).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from typing import Any

from brh import Entry, RetryPolicy
from hivevault.vault import FakeVault
from simulator.timeloop import run
from simulator.world.device import SimDevice
from simulator.world.link import Link

START = 1_750_000_000.0
HOUR = 3600.0


def _stamp() -> str:
    elapsed = asyncio.get_running_loop().time() - START
    hours, rest = divmod(int(elapsed), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02}:{minutes:02}:{seconds:02}"


def say(text: str) -> None:
    print(f"  [{_stamp()}] {text}")


def live(vault: FakeVault) -> dict[str, Any]:
    best: dict[str, dict[str, Any]] = {}
    for doc in vault.documents("backup_notes"):
        if doc["key"] not in best or doc["brhVersion"] > best[doc["key"]]["brhVersion"]:
            best[doc["key"]] = doc
    return {k: d["data"] for k, d in sorted(best.items()) if d["deletionDate"] is None}


async def story(seed: int) -> bool:
    vault = FakeVault(clock=asyncio.get_running_loop().time)
    retry = RetryPolicy(initial_delay=5, max_delay=300, jitter=0.5)
    tablet_link = Link(vault)

    def device(name: str, link: Any = vault, offset: float = 0.0) -> SimDevice:
        rng = random.Random(f"{seed}:{name}")
        return SimDevice(name, link, offset=offset, retry=retry, rng=rng)

    phone = device("phone")
    laptop = device("laptop", offset=-3 * HOUR)
    tablet = device("tablet", tablet_link)
    devices = [phone, laptop, tablet]

    async def sync_all() -> None:
        for d in devices:
            await d.helper.sync()

    print(f"brh demo: three devices, one vault, virtual time (seed {seed})")
    say("phone writes two notes; each write starts a sync by itself")
    await phone.put("groceries", "milk, eggs")
    await phone.put("ideas", "sync that never loses an edit")
    await asyncio.sleep(1)
    await sync_all()
    say(f"laptop (clock 3 h slow) and tablet received: {sorted(laptop.app.items)}")

    say("tablet goes offline and edits 'groceries'")
    tablet_link.down = True
    await tablet.put("groceries", "milk, eggs, coffee (from the tablet, offline)")
    await asyncio.sleep(60)
    say("laptop edits 'ideas' after seeing the phone's version, its clock 3 h behind")
    await laptop.put("ideas", "hybrid logical clocks (laptop)")
    await asyncio.sleep(60)

    refusals = {"left": 1}

    def refuse_once(kind: str, entry: Entry) -> bool:
        if refusals["left"]:
            refusals["left"] -= 1
            say(f"phone's app refuses the {kind} of {entry.key!r} (busy); the helper will retry")
            return True
        return False

    phone.app.refuse = refuse_once
    result = await phone.helper.sync()
    say(f"phone's pass: completed={result.completed} reason={result.reason}")
    await asyncio.sleep(2 * HOUR)
    say(f"two hours later, with no sync() call, phone shows ideas = {phone.app.items['ideas']!r}")

    say("tablet comes back online; its queued edit uploads on the next retry")
    tablet_link.down = False
    await asyncio.sleep(HOUR)
    await sync_all()
    await sync_all()
    say(f"phone shows groceries = {phone.app.items['groceries']!r}")

    say("phone deletes 'groceries'; the laptop is reinstalled and restores from the vault")
    await phone.remove("groceries")
    await asyncio.sleep(1)
    await laptop.helper.close()
    laptop = device("laptop", offset=-3 * HOUR)
    devices[1] = laptop
    await sync_all()
    await sync_all()
    say(f"new laptop install received {laptop.app.kinds()} -> {sorted(laptop.app.items)}")

    expected = live(vault)
    print()
    print(f"  {'device':8} {'app model agrees':18} {'local copy agrees':18}")
    ok = True
    for d in devices:
        app_ok = d.app.items == expected
        local_ok = d.local() == expected
        ok = ok and app_ok and local_ok
        print(f"  {d.name:8} {app_ok!s:18} {local_ok!s:18}")
    print(f"\n  vault: {expected}")
    print(f"  vault requests: {vault.request_count}, virtual time: {_stamp()}")
    for d in devices:
        await d.helper.close()
    print("\nconverged" if ok else "\nNOT CONVERGED")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1, help="seed of the retry jitter")
    args = parser.parse_args(argv)
    return 0 if run(story(args.seed), start=START) else 1


if __name__ == "__main__":
    sys.exit(main())
