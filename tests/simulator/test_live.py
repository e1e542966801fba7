"""A real vault in a simulated world (simulator.live): time holds during real I/O, runs are
isolated by namespace, and faults a real vault cannot take are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hivevault.vault import FakeVault
from simulator.live import LiveVault, UnsupportedFault
from simulator.timeloop import RealIOTimeout, VirtualTimeLoop, run
from simulator.world import START, World


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readline()
        writer.write(data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _round_trip(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    return answer


def test_virtual_time_stands_still_while_real_io_is_held() -> None:
    """A real socket round trip inside real_io() completes, and virtual time does not move."""

    async def main() -> tuple[float, float, bytes]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        server, port = await _echo_server()
        before = loop.time()
        with loop.real_io():
            answer = await _round_trip(port)
        after = loop.time()
        server.close()
        return before, after, answer

    before, after, answer = run(main(), start=START)
    assert answer == b"ping\n"
    assert after == before


def test_a_real_server_that_never_answers_times_out_in_real_time() -> None:
    """RealIOTimeout instead of a hang when a held request gets no answer."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.real_io_timeout = 0.2

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with loop.real_io():
                reader, _writer = await asyncio.open_connection("127.0.0.1", port)
                await reader.readline()
        finally:
            server.close()

    with pytest.raises(RealIOTimeout):
        run(main(), start=START)


def test_a_world_on_a_live_vault_syncs_in_its_own_namespace() -> None:
    """Runs sharing one vault are isolated: collection names carry the run's namespace, and
    drop() removes them; devices converge through it."""
    shared = FakeVault(clock=lambda: START)

    async def scenario(namespace: str, value: str) -> dict[str, Any]:
        live = LiveVault(shared, namespace)
        world = World(1, vault=live)
        a, b = world.add_device("a"), world.add_device("b")
        await a.put("x", value)
        await world.advance(5)
        await b.sync()
        findings = await world.settle()
        assert findings == []
        items = dict(b.app.items)
        await world.close()
        return items

    assert run(scenario("one", "first"), start=START) == {"x": "first"}
    assert run(scenario("two", "second"), start=START) == {"x": "second"}
    assert shared.collection_names() == ["backup_notes_one", "backup_notes_two"]

    async def drop() -> None:
        live = LiveVault(shared, "one")
        live.created.add("backup_notes_one")
        await live.drop()

    run(drop(), start=START)
    assert shared.collection_names() == ["backup_notes_two"]


def test_faults_inside_a_real_vault_are_refused() -> None:
    """A real vault's clock and upsert behaviour cannot be injected: the world says so."""

    async def main() -> None:
        world = World(1, vault=LiveVault(FakeVault(), "x"))
        with pytest.raises(UnsupportedFault, match="vault clock jump"):
            world.jump_clock("vault", 60)
        with pytest.raises(UnsupportedFault, match="upsert_race"):
            world.upsert_race(1.0)
        with pytest.raises(UnsupportedFault, match="drift"):
            world.set_drift("vault", 100)
        with pytest.raises(UnsupportedFault, match="commit_lag"):
            world.commit_lag(1.0)
        world.stop_upsert_race()  # turning a fault off is always fine
        world.commit_at_once()
        await world.close()

    run(main(), start=START)


def test_a_namespace_must_be_a_plain_word() -> None:
    """A namespace becomes part of collection names: letters, digits and '_' only."""
    with pytest.raises(ValueError, match="namespace"):
        LiveVault(FakeVault(), "a-b")
