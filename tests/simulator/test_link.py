"""A device's link to the vault (simulator/world/link.py): latency, lost requests and answers,
late arrivals, and what a client sees of each.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from brh.vault import CollectionNotFoundError, NetworkError, ServerError
from simulator.timeloop import run
from simulator.world import World
from simulator.world.clocks import SkewedClock
from simulator.world.link import Link
from simulator.world.server import VaultServer
from simulator.world.trace import Trace, read


def test_a_request_on_the_link_arrives_then_answers() -> None:
    """A request applies ``up`` seconds after it is sent and is answered ``down`` later; a
    client that stops waiting before it arrives never applies it; a slow vault set meanwhile
    still delays it; a lost answer times out."""

    async def main() -> None:
        world = World(1)
        world.add_device("a")
        link, vault = world.links["a"], world.server.vault
        link.latency = 2.0
        await vault.create_collection("c")
        start = world.now()
        await link.insert_one("c", {"k": 1})
        assert world.now() - start == pytest.approx(4.0)

        async def stop_after(seconds: float) -> None:
            call = asyncio.ensure_future(link.insert_one("c", {"k": seconds}))
            await asyncio.sleep(seconds)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await asyncio.sleep(10)  # whatever was still to happen has happened

        await stop_after(1.0)  # before it arrived: never applied
        await stop_after(3.0)  # after it arrived: applied, the answer is dropped
        assert [d["k"] for d in vault.documents("c")] == [1, 3.0]

        start = world.now()
        call = asyncio.ensure_future(link.find_many("c", {}))
        await asyncio.sleep(1.0)
        world.slow_vault(5.0)  # in flight, not arrived: the vault is slow when it arrives
        assert len(await call) == 2
        assert world.now() - start == pytest.approx(2.0 + 5.0 + 2.0)
        world.fast_vault()

        link.lose_answers = 1
        start = world.now()
        with pytest.raises(NetworkError) as lost:
            await link.insert_one("c", {"k": 4})
        assert not lost.value.definite and world.now() - start == pytest.approx(link.timeout)
        assert [d["k"] for d in vault.documents("c")] == [1, 3.0, 4]
        await world.close()

    run(main())


def _linked(trace: Trace | None = None, *, seed: int = 1) -> tuple[Link, VaultServer]:
    """Device ``phone``'s link to a fresh vault server (build it on the running loop)."""
    server = VaultServer(random.Random("server"), SkewedClock())
    return Link(server, device="phone", rng=random.Random(seed), trace=trace), server


async def _failure(call: Awaitable[Any]) -> tuple[NetworkError, float]:
    """The network error ``call`` ends with, and how long it took."""
    start = asyncio.get_running_loop().time()
    with pytest.raises(NetworkError) as raised:
        await call
    return raised.value, asyncio.get_running_loop().time() - start


def test_a_disconnected_link_fails_at_once_and_definitely(tmp_path: Path) -> None:
    """Issue 14 item 4: ``down`` refuses a request at once, a definite
    failure; it is counted and traced as lost with stage ``refused``, and nothing applies."""

    async def main() -> None:
        link, server = _linked(Trace(tmp_path / "t.jsonl"))
        await server.vault.create_collection("c")
        link.down = True
        error, took = await _failure(link.insert_one("c", {"k": 1}))
        assert error.definite and took == 0 and link.requests == 1
        assert server.vault.documents("c") == []
        assert link.trace is not None
        link.trace.close()

    run(main())
    lines = [(e["kind"], e.get("stage"), e.get("definite")) for e in read(tmp_path / "t.jsonl")]
    assert lines == [("request", None, None), ("answer", "refused", True)]


def test_a_partitioned_link_times_out_and_the_request_never_applies() -> None:
    """Issue 14 item 4: in a partition the request vanishes: the client waits out its timeout
    and gets an indefinite failure, and the vault never sees the request, however long after."""

    async def main() -> None:
        link, server = _linked()
        await server.vault.create_collection("c")
        link.partitioned = True
        error, took = await _failure(link.insert_one("c", {"k": 1}))
        assert not error.definite and took == link.timeout
        await asyncio.sleep(3600)
        assert server.vault.documents("c") == []

    run(main())


def test_lost_answers_apply_the_request_and_time_out() -> None:
    """Issue 14 item 4: with answers cut the request applies but the client times out,
    indefinite, and learns nothing of the vault's clock; ``lose_answers`` loses the answers of
    that many writes only (reads in between are answered)."""

    async def main() -> None:
        link, server = _linked()
        await server.vault.create_collection("c")
        link.answers_lost = True
        error, took = await _failure(link.insert_one("c", {"k": 1}))
        assert not error.definite and took == link.timeout
        assert [d["k"] for d in server.vault.documents("c")] == [1]
        assert link.vault_time() is None
        link.answers_lost = False
        link.lose_answers = 2
        await _failure(link.insert_one("c", {"k": 2}))
        assert len(await link.find_many("c", {})) == 2
        await _failure(link.insert_one("c", {"k": 3}))
        await link.insert_one("c", {"k": 4})
        assert link.lose_answers == 0 and link.vault_time() is not None
        assert [d["k"] for d in server.vault.documents("c")] == [1, 2, 3, 4]

    run(main())


def test_a_request_slower_than_the_timeout_applies_after_its_client_gave_up(
    tmp_path: Path,
) -> None:
    """Issue 14 item 4: a request whose way to the vault outlasts the client's timeout fails
    (indefinite) at the timeout, is counted as ``late`` while it travels, and still applies
    when it arrives, traced as a late apply."""

    async def main() -> None:
        trace = Trace(tmp_path / "t.jsonl")
        link, server = _linked(trace)
        await server.vault.create_collection("c")
        link.latency = (40.0, 40.0)
        error, took = await _failure(link.insert_one("c", {"k": 1}))
        assert not error.definite and took == link.timeout
        assert link.late == 1 and server.vault.documents("c") == []
        await asyncio.sleep(10)
        assert link.late == 0 and [d["k"] for d in server.vault.documents("c")] == [1]
        trace.close()

    run(main())
    applied = [e for e in read(tmp_path / "t.jsonl") if e["kind"] == "applied"]
    assert [(e["t"], e["ok"], e.get("late")) for e in applied] == [(40.0, True, True)]


def _round_trips(seed: int) -> list[float]:
    """How long ten requests of a link with latency (1, 3) s per leg took."""

    async def main() -> list[float]:
        link, server = _linked(seed=seed)
        await server.vault.create_collection("c")
        link.latency = (1.0, 3.0)
        took = []
        for n in range(10):
            start = asyncio.get_running_loop().time()
            await link.find_many("c", {"n": n})
            took.append(asyncio.get_running_loop().time() - start)
        return took

    return run(main())


def test_each_leg_draws_its_latency_from_the_links_seeded_generator() -> None:
    """Issue 14 item 4, determinism: each leg of a request takes a latency drawn uniformly from
    the link's range with its own seeded generator: round trips stay within twice the range,
    vary, and repeat exactly for the same seed."""
    first, again, other = _round_trips(1), _round_trips(1), _round_trips(2)
    assert all(2.0 <= t <= 6.0 for t in first) and len(set(first)) == len(first)
    assert first == again and first != other


def test_lossy_links_lose_what_their_seeded_generator_draws() -> None:
    """Issue 14 item 4: ``request_loss`` refuses each request (definite) with its probability,
    ``answer_loss`` loses each answer of an applied request (indefinite); the same seed loses
    the same requests."""

    async def losses(seed: int) -> list[str]:
        link, server = _linked(seed=seed)
        await server.vault.create_collection("c")
        link.request_loss, link.answer_loss = 0.3, 0.3
        seen = []
        for n in range(40):
            try:
                await link.insert_one("c", {"n": n})
                seen.append("ok")
            except NetworkError as error:
                seen.append("refused" if error.definite else "answer lost")
        applied = [d["n"] for d in server.vault.documents("c")]
        assert applied == [n for n, what in enumerate(seen) if what != "refused"]
        return seen

    first, again, other = (run(losses(seed)) for seed in (1, 1, 2))
    assert {"ok", "refused", "answer lost"} <= set(first)
    assert first == again and first != other


def test_a_vault_error_reaches_the_client_as_the_vault_raised_it(tmp_path: Path) -> None:
    """Issue 14 item 4: an error the vault answers with is not a network failure: the client
    gets it after the round trip, and the trace shows it applied with that error."""

    async def main() -> None:
        trace = Trace(tmp_path / "t.jsonl")
        link, _ = _linked(trace)
        link.latency = 1.0
        start = asyncio.get_running_loop().time()
        with pytest.raises(CollectionNotFoundError):
            await link.find_many("missing", {})
        assert asyncio.get_running_loop().time() - start == 2.0
        trace.close()

    run(main())
    [applied, answer] = [e for e in read(tmp_path / "t.jsonl") if e["kind"] != "request"]
    assert applied["ok"] is False and applied["error"].startswith("CollectionNotFoundError")
    assert answer["ok"] is False and answer["lost"] is False


def test_the_link_log_records_each_request_and_what_its_answer_carried() -> None:
    """``Link.log`` (a knob for tests, used by the conformance suite's RETRY and OFF tests):
    once set to a list, each request is appended as a ``Sent`` with its send time, operation,
    collection and key, and the number of documents a read's answer carried."""

    async def main() -> None:
        link, server = _linked()
        link.latency = 0.5
        await server.vault.create_collection("c")
        await link.insert_one("c", {"key": "before"})
        link.log = []
        start = asyncio.get_running_loop().time()
        await link.update_one("c", {"key": "x"}, {"$set": {"key": "x"}}, upsert=True)
        assert len(await link.find_many("c", {})) == 2
        [write, read] = link.log
        assert (write.op, write.collection, write.key, write.documents) == (
            "update_one",
            "c",
            "x",
            None,
        )
        assert write.at == pytest.approx(start)
        assert (read.op, read.documents) == ("find_many", 2)
        assert read.at == pytest.approx(start + 1.0)

    run(main())


def test_the_server_fails_one_collection_or_refuses_one_key_on_demand() -> None:
    """The vault server's knobs for tests: ``failing_collections`` fails every request on a
    collection with 503, ``refused_keys`` every write naming a key (in its filter or its
    ``$set``) with the status given; nothing is applied, other collections and keys work, and a
    world's settle phase (``heal_all``) clears both."""

    async def main() -> None:
        world = World(1, latency=(0.0, 0.0))
        world.add_device("a")
        link, server = world.links["a"], world.server
        for name in ("c", "d"):
            await server.vault.create_collection(name)
        server.failing_collections.add("c")
        with pytest.raises(ServerError) as failed:
            await link.find_many("c", {})
        assert failed.value.status == 503
        assert await link.find_many("d", {}) == []
        server.refused_keys["big"] = 413
        with pytest.raises(ServerError) as refused:
            await link.update_one("d", {"key": "big"}, {"$set": {"key": "big"}}, upsert=True)
        assert refused.value.status == 413
        with pytest.raises(ServerError):
            await link.insert_one("d", {"key": "big"})
        await link.update_one("d", {"key": "ok"}, {"$set": {"key": "ok"}}, upsert=True)
        assert [doc["key"] for doc in server.vault.documents("d")] == ["ok"]
        world.heal_all()
        assert not server.failing_collections and not server.refused_keys
        await link.insert_one("d", {"key": "big"})
        await world.close()

    run(main())
