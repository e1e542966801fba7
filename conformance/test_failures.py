"""Failures and being offline (SPEC §5 Retry, §6 Offline): backoff, vault errors confined to
their context, a vault that never answers, an upload the vault refuses, writes that never wait
for the network, queues that outlive outages and restarts.

Every assertion reads only what the harness observes of any implementation: the times and
targets of a device's requests at its link to the vault (``Link.log``), the vault's documents in
the original helper's fields, callbacks and their answers, command results and each device's
local copy. Faults are the world's (``take_down``, ``freeze``, ``slow_vault``, ``partition``,
``disconnect``) and the vault server's knobs for tests: ``failing_collections`` (one context's
collection answers 503) and ``refused_keys`` (the vault refuses one entry's document).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from conformance.harness import Sim
from conformance.marks import clause
from conformance.steps import MINUTE, sync_all
from simulator.world import World
from simulator.world.link import Sent

HOUR = 3600.0

# RETRY-2's policy: the SPEC's defaults (1 s, doubling, at most 300 s, jitter 0.5), or the
# harness's own (the same with at most 120 s) for an implementation that takes the ``retry``
# option. A wait must lie between the smallest and the largest either allows.
_INITIAL, _MULTIPLIER, _JITTER = 1.0, 2.0, 0.5
_CAPS = (120.0, 300.0)
_EPSILON = 0.01


def _log(world: World, device: str) -> list[Sent]:
    """Start recording the requests ``device`` sends (what its link sees), from now on."""
    log: list[Sent] = []
    world.links[device].log = log
    return log


def _attempts(log: list[Sent], gap: float = 0.2) -> list[float]:
    """When each attempt (a burst of requests less than ``gap`` seconds apart) began."""
    starts: list[float] = []
    last = None
    for sent in log:
        if last is None or sent.at - last > gap:
            starts.append(sent.at)
        last = sent.at
    return starts


def _backoff_problems(starts: list[float], *, first: int = 1) -> list[str]:
    """Waits between attempts outside RETRY-2's band: the n-th failed pass in a row (n from
    ``first``) waits between ``(1 - jitter) * min(120, 2 ** (n - 1))`` and
    ``min(300, 2 ** (n - 1))`` seconds."""
    problems = []
    for n, (before, after) in enumerate(itertools.pairwise(starts), start=first):
        wait = after - before
        step = _INITIAL * _MULTIPLIER ** min(n - 1, 30)
        low = (1 - _JITTER) * min(_CAPS[0], step) - _EPSILON
        high = min(_CAPS[1], step) + _EPSILON
        if not low <= wait <= high:
            problems.append(f"failure {n}: waited {wait:.3f} s, not within [{low:.2f}, {high:.2f}]")
    return problems


def _vault_live(world: World, context: str = "notes") -> dict[str, Any] | None:
    """The vault's live entries (DATA-2 fields of the fake vault's documents); None on a live
    vault, whose documents the harness does not read."""
    return None if world.server.live else world.vault_live(context)


def _documents_of(world: World, key: str, context: str = "notes") -> list[dict[str, Any]] | None:
    """Every document of ``key`` on the fake vault; None on a live vault."""
    if world.server.live:
        return None
    name = "backup_" + context
    if name not in world.server.vault.collection_names():
        return []
    return [doc for doc in world.server.vault.documents(name) if doc.get("key") == key]


# -- RETRY-2: backoff ----------------------------------------------------------------------------


@clause("RETRY-2", "RETRY-1", level="robust", weakness="W6")
def test_retries_back_off_exponentially_with_jitter_up_to_a_cap_and_reset_after_success(
    brh_sim: Sim,
) -> None:
    """RETRY-2: while the vault answers 503 for two hours, each device retries by itself
    (RETRY-1), the n-th failed pass in a row waiting ``min(max, 1 s * 2^(n-1))`` scaled by a
    factor from ``[0.5, 1]`` (the SPEC's defaults, or the harness's ``retry`` option: at most
    120 s instead of 300 s). Two devices that failed at the same instant do not retry in
    lockstep (jitter). Once the vault is back a pass completes, and the next outage starts
    the backoff from 1 s again. Judged on the times of the requests each device sends."""
    devices = ("phone", "tablet")

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("seed", 0)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        for outage in (1, 2):
            logs = {name: _log(world, name) for name in devices}
            world.take_down()
            results = await asyncio.gather(phone.sync(), tablet.sync())
            assert not any(results), f"outage {outage}: a pass against a vault down completed"
            # judged as the outage goes on, so that a device retrying far too often fails early
            spans = (MINUTE, 10 * MINUTE, 2 * HOUR) if outage == 1 else (MINUTE, 10 * MINUTE)
            waited = 0.0
            for span in spans:
                await world.advance(span - waited)
                waited = span
                starts = {name: _attempts(log) for name, log in logs.items()}
                for name in devices:
                    problems = _backoff_problems(starts[name])
                    again = " (after a completed pass it must start again from 1 s)"
                    assert not problems, (
                        f"outage {outage}: {name}'s retries do not follow RETRY-2's backoff"
                        f"{again if outage > 1 else ''}:\n  " + "\n  ".join(problems[:6])
                    )
            for name in devices:
                times = starts[name]
                assert len(times) >= (12 if outage == 1 else 6), (
                    f"outage {outage}: {name} made {len(times) - 1} retries in "
                    f"{waited:.0f} s: it must retry by itself"
                )
            shared = set(starts["phone"][1:]) & set(starts["tablet"][1:])
            assert len(shared) <= 1, (
                f"outage {outage}: the two devices retried at the same instants {len(shared)} "
                "times: the backoff has no jitter"
            )
            world.bring_up()
            world.links["phone"].log = world.links["tablet"].log = None
            await world.advance(10 * MINUTE)  # the pending retries now complete by themselves
            assert phone.local() == tablet.local() == {"seed": 0}
            assert await phone.sync() and await tablet.sync()

    brh_sim.run(scenario, latency=(0.0, 0.0))


# -- RETRY-4: a vault error ends its own context's work only ------------------------------------


@clause("RETRY-4", "RETRY-1", "SYNC-1", level="robust", weakness="W6")
def test_a_vault_error_in_one_context_ends_that_context_only(brh_sim: Sim) -> None:
    """RETRY-4: three contexts, each with a remote change for the phone and a local change of
    the phone's; the vault fails every request on the middle context's collection (503). The
    phone's pass reports that it did not complete; the failing context's work ends at its first
    failed request (no further request on its collection in that pass), while the first and the
    last context still pull (the phone's app gets their changes) and push (the tablet gets the
    phone's). Once the collection works again, the pass is retried without an outside trigger
    (RETRY-1) and the middle context catches up both ways."""
    contexts = ("notes", "contacts", "photos")
    broken = "contacts"

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for context in contexts:
            await tablet.put(f"{context}-tablet", "from the tablet", context)
        await world.advance(5)
        assert await tablet.sync()
        await world.advance(MINUTE)
        world.server.failing_collections.add("backup_" + broken)
        log = _log(world, "phone")
        for context in contexts:
            await phone.put(f"{context}-phone", "from the phone", context)
        result = await phone.sync()
        assert not result, "a pass whose context met a vault error reported that it completed"
        on_broken = [sent.op for sent in log if sent.collection == "backup_" + broken]
        assert len(on_broken) == 1, (
            f"after a vault error the {broken} context went on with its work in the same pass: "
            f"{on_broken}"
        )
        await world.advance(1)
        await tablet.sync()
        for context in contexts:
            mine, theirs = f"{context}-phone", f"{context}-tablet"
            if context == broken:
                assert theirs not in phone.apps[context].items
                continue
            assert phone.apps[context].items.get(theirs) == "from the tablet", (
                f"the vault error in {broken} stopped the pull of {context}: "
                f"{phone.apps[context].calls}"
            )
            assert tablet.apps[context].items.get(mine) == "from the phone", (
                f"the vault error in {broken} stopped the upload of {context}"
            )
        world.server.failing_collections.clear()
        await world.advance(10 * MINUTE)  # retried by itself
        await tablet.sync()
        expected = {f"{broken}-phone": "from the phone", f"{broken}-tablet": "from the tablet"}
        assert phone.apps[broken].items == phone.local(broken) == expected
        assert tablet.apps[broken].items == expected

    brh_sim.run(scenario, contexts=contexts)


# -- RETRY-5: a vault that never answers --------------------------------------------------------


@clause("RETRY-5", "RETRY-1", "API-4", level="robust")
def test_a_vault_that_never_answers_is_cut_by_the_request_deadline(brh_sim: Sim) -> None:
    """RETRY-5: the vault takes three hours to answer anything. A sync() still returns, within
    ten minutes (a request deadline, 60 s by default, not an idle timeout), reporting that the
    pass did not complete, and without raising; once the vault answers again the helper retries
    by itself (RETRY-1) and the write made meanwhile reaches the other device. A sync() cut
    short by close() returns too, reporting that it did not complete."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await phone.put("before", 1)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        world.slow_vault(3 * HOUR)
        await phone.put("x", "written while the vault hangs")
        running = asyncio.ensure_future(phone.sync())
        done, _ = await asyncio.wait([running], timeout=10 * MINUTE)
        assert done, "sync() was still waiting ten minutes into a vault that never answers"
        assert running.exception() is None, f"sync() raised {running.exception()!r}"
        assert not running.result(), "a pass whose requests got no answer reported it completed"
        world.fast_vault()
        await world.advance(10 * MINUTE)  # retried by itself, now that the vault answers
        assert await tablet.sync()
        assert tablet.app.items == {"before": 1, "x": "written while the vault hangs"}

        world.slow_vault(3 * HOUR)
        await tablet.put("y", "written before the close")
        cut = asyncio.ensure_future(tablet.sync())
        await world.advance(1)
        assert not cut.done(), "the pass should still be waiting on the vault"
        await world.crash("tablet")  # the app closes the helper
        done, _ = await asyncio.wait([cut], timeout=MINUTE)
        assert done, "a sync() waiting on the vault did not return when the helper was closed"
        assert cut.exception() is None, f"sync() raised {cut.exception()!r} on close()"
        assert not cut.result(), "a pass cut short by close() reported that it completed"
        world.fast_vault()

    brh_sim.run(scenario)


# -- RETRY-6: an upload the vault refuses -------------------------------------------------------


@clause("RETRY-6", "RETRY-1", level="robust", weakness="W6")
def test_an_upload_the_vault_refuses_never_holds_up_the_others(brh_sim: Sim) -> None:
    """RETRY-6: the vault refuses one entry's document (413, too large for it), the first in
    key order and in write order. The phone's other changes still reach the vault in that same
    pass; the pass reports that it did not complete, and later passes keep uploading the rest.
    When the vault fails on one entry instead (500, every time), the other changes still all
    arrive within minutes, without an outside trigger. A new local version of the refused
    entry, once the vault takes it, is uploaded by the next pass."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        await world.advance(5)
        await sync_all(world)
        world.server.refused_keys["a-large"] = 413
        await phone.put("a-large", "too large for this vault")
        others = {key: f"value {key}" for key in ("b", "c", "d", "e")}
        for key, value in others.items():
            await phone.put(key, value)
        assert not await phone.sync(), "a pass whose upload was refused reported it completed"
        await tablet.sync()
        assert tablet.app.items == others, (
            f"the refused upload held up the others: the tablet has {sorted(tablet.app.items)}"
        )
        await phone.put("f", "written after the refusal")
        await world.advance(10 * MINUTE)
        await tablet.sync()
        assert tablet.app.items == {**others, "f": "written after the refusal"}

        world.server.refused_keys.clear()
        await phone.put("a-large", "small enough now")
        await phone.sync()
        await tablet.sync()
        assert tablet.app.items.get("a-large") == "small enough now", (
            "a new version of an entry the vault had refused was not uploaded by the next pass"
        )
        done = {**others, "f": "written after the refusal", "a-large": "small enough now"}
        assert tablet.app.items == done

        world.server.refused_keys["a-broken"] = 500
        await phone.put("a-broken", "the vault fails on this one")
        later = {key: f"later {key}" for key in ("g", "h", "i")}
        for key, value in later.items():
            await phone.put(key, value)
        await world.advance(30 * MINUTE)
        await tablet.sync()
        assert tablet.app.items == {**done, **later}, (
            "an upload the vault fails on every time held up the others for half an hour"
        )
        world.server.refused_keys.clear()
        await world.advance(10 * MINUTE)  # tried again once its backoff is over
        await tablet.sync()
        assert tablet.app.items.get("a-broken") == "the vault fails on this one"

    brh_sim.run(scenario)


# -- OFF-1: writes never wait for the network ---------------------------------------------------


@clause("OFF-1", level="robust", weakness="W10")
def test_writes_return_at_once_while_the_vault_cannot_be_reached(brh_sim: Sim) -> None:
    """OFF-1: with the phone's requests vanishing (a partition), with the vault taking an hour
    to answer, and while a pass waits on such a vault, upserts and deletes return at once (no
    virtual time passes) and the local copy shows them; once the vault answers again, every
    change reaches the other device."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        for key in ("p", "s", "w"):
            await phone.put(key, "kept for deleting")
        await world.advance(5)
        await sync_all(world)

        async def write(key: str, gone: str, why: str) -> None:
            started = world.now()
            await phone.put(key, why)
            await phone.remove(gone)
            took = world.now() - started
            assert took <= 0.5, f"an upsert and a delete took {took:.1f} s {why}"
            assert phone.local().get(key) == why and gone not in phone.local()

        world.partition("phone")
        await write("partitioned", "p", "while the phone's requests vanish")
        await world.advance(MINUTE)
        world.heal("phone")
        world.slow_vault(HOUR)
        await write("slow", "s", "while the vault takes an hour to answer")
        running = asyncio.ensure_future(phone.sync())
        await world.advance(1)
        await write("waiting", "w", "while a pass waits on the vault")
        world.fast_vault()
        await asyncio.wait([running], timeout=10 * MINUTE)
        await world.advance(10 * MINUTE)
        await sync_all(world)
        expected = {
            "partitioned": "while the phone's requests vanish",
            "slow": "while the vault takes an hour to answer",
            "waiting": "while a pass waits on the vault",
        }
        assert tablet.app.items == tablet.local() == expected

    brh_sim.run(scenario)


# -- OFF-3: changes queued offline upload at the first pass that reaches the vault --------------


@clause("OFF-3", "RETRY-6", level="core")
def test_changes_queued_offline_upload_at_the_first_pass_that_reaches_the_vault(
    brh_sim: Sim,
) -> None:
    """OFF-3: three outages of ten minutes each: no route to the vault, the vault down (503),
    and the vault frozen (it reads but refuses writes, 403). Meanwhile the phone writes and
    deletes; its passes fail and retry. When the outage ends, the first pass that reaches the
    vault uploads every queued change and completes: nothing waits for a later pass (RETRY-6:
    errors that say nothing about a document are not held against it)."""
    outages = {
        "disconnect": ("disconnect", "reconnect"),
        "down": ("take_down", "bring_up"),
        "frozen": ("freeze", "unfreeze"),
    }

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        expected: dict[str, Any] = {}
        for name in outages:
            await phone.put(f"{name}-doomed", "deleted during the outage")
            expected[f"{name}-doomed"] = "deleted during the outage"
            expected[f"{name}-edited"] = "before"
            await phone.put(f"{name}-edited", "before")
        await world.advance(5)
        await sync_all(world)
        for name, (on, off) in outages.items():
            args = ["phone"] if on == "disconnect" else []
            getattr(world, on)(*args)
            await phone.put(f"{name}-new", f"written while {name}")
            await phone.put(f"{name}-edited", f"edited while {name}")
            await phone.remove(f"{name}-doomed")
            del expected[f"{name}-doomed"]
            expected |= {
                f"{name}-new": f"written while {name}",
                f"{name}-edited": f"edited while {name}",
            }
            await world.advance(10 * MINUTE)
            assert phone.local() == expected
            getattr(world, off)(*args)
            assert await phone.sync(), (
                f"after the outage ({name}) the first pass that reached the vault did not complete"
            )
            live = _vault_live(world)
            missing = {k: v for k, v in expected.items() if live is not None and live.get(k) != v}
            assert not missing, (
                f"after the outage ({name}) the first pass that reached the vault left "
                f"changes queued: the vault lacks {missing}"
            )
            await tablet.sync()  # the deletion, as any device reads it
            assert tablet.app.items == expected, (
                f"after the outage ({name}) the first pass that reached the vault left changes "
                "queued"
            )
            await world.advance(MINUTE)

    brh_sim.run(scenario)


# -- OFF-4: a restart resumes pending changes, cursors and known versions ----------------------


@clause("OFF-4", level="robust", weakness="W12")
def test_a_restarted_device_resumes_its_queue_cursor_and_known_versions(brh_sim: Sim) -> None:
    """OFF-4: the phone has synced 31 entries and its pull has settled; offline, it edits one,
    writes a new one and deletes one, then crashes and restarts on the same store. Its local
    copy still has the three changes; its first pass back online uploads them (the pending
    queue survived), re-delivers nothing and reads at most a few documents from the vault (the
    cursor and the known versions survived: not a re-read of everything), and updates the
    edited entry's document in place (no second document of it: the known vault version
    survived)."""

    async def scenario(world: World) -> None:
        phone, tablet = world.add_device("phone"), world.add_device("tablet")
        entries: dict[str, Any] = {f"t{i:02}": i for i in range(30)}
        for key, value in entries.items():
            await tablet.put(key, value)
        await world.advance(5)
        await sync_all(world)
        await world.advance(MINUTE)
        await tablet.put("last", "the newest")
        entries["last"] = "the newest"
        await world.advance(5)
        await sync_all(world)
        for _ in range(3):  # until the phone's pull cursor settles (SYNC-4)
            await world.advance(10)
            assert await phone.sync()
        assert phone.app.items == entries

        world.disconnect("phone")
        await phone.put("t01", "edited offline")
        await phone.put("mine", "written offline")
        await phone.remove("t02")
        expected = {k: v for k, v in entries.items() if k != "t02"}
        expected |= {"t01": "edited offline", "mine": "written offline"}
        await world.crash("phone")
        await world.advance(MINUTE)
        await world.restart("phone")
        assert phone.local() == expected, "the restart lost local changes"
        world.reconnect("phone")
        log = _log(world, "phone")
        calls = phone.app.calls.total
        assert await phone.sync()
        assert phone.app.calls.since(calls) == [], "the restarted device re-delivered changes"
        read = sum(sent.documents or 0 for sent in log)
        assert read <= 5, (
            f"the restarted device's pass read {read} documents: it lost its pull cursor or "
            "the versions it knew"
        )
        documents = _documents_of(world, "t01")
        assert documents is None or len(documents) == 1, (
            f"the edit made before the restart left {len(documents)} documents of its key: "
            "the restarted device forgot the vault version it knew"
        )
        await tablet.sync()
        assert tablet.app.items == tablet.local() == expected, (
            "the changes queued before the restart did not reach the other device"
        )

    brh_sim.run(scenario)
