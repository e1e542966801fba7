"""The fault proxy (``vaultd.faultproxy``, ``brh-vault proxy``) in front of a real vault.

The upstream is the development vault's app served by uvicorn in a thread on 127.0.0.1; the
proxy runs on the test's event loop. Each fault is scripted for one known request, so every
test knows which request it hits; what the vault holds afterwards is read directly, not through
the proxy. These are real sockets: waits are bounded (:data:`tests.http_support.DEADLINE`).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from brh.errors import InvalidArgumentError
from brh.hive import API_PREFIX, HiveVault
from brh.vault import AlreadyExistsError, NetworkError, ServerError, UnauthorizedError
from tests.http_support import DEADLINE, LineProcess, ServerThread, closed_port
from vaultd.app import create_app
from vaultd.cli import _parser, main
from vaultd.faultproxy import Fault, FaultPlan, FaultProxy
from vaultd.store import VaultStore
from vaultd.tokens import Scope, TokenTable

T = TypeVar("T")
DOC = {"key": "k", "value": 1}


class Upstream:
    """The module's vault, with a fresh (user, app) scope per test."""

    def __init__(self, directory: Path) -> None:
        self.store = VaultStore(directory / "vault.sqlite")
        self.tokens = TokenTable()
        self.server = ServerThread(create_app(self.store, self.tokens))
        self.url = self.server.url
        self._numbers = itertools.count(1)

    def new_token(self) -> str:
        number = next(self._numbers)
        token = f"token-{number}"
        self.tokens.add(token, Scope(f"user-{number}", "app"))
        return token

    def documents(self, token: str, collection: str = "c") -> list[dict[str, Any]]:
        """What the vault holds, read directly (not through the proxy)."""

        async def read() -> list[dict[str, Any]]:
            async with HiveVault(self.url, token) as vault:
                return await vault.find_many(collection, {})

        return asyncio.run(read())


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    node = Upstream(tmp_path_factory.mktemp("proxy"))
    with node.server:
        yield node
    node.store.close()


def through(
    upstream: Upstream,
    plan: FaultPlan,
    use: Callable[[HiveVault, FaultProxy], Awaitable[T]],
    token: Any = None,
    **options: Any,
) -> T:
    """Run ``use`` with a HiveVault that talks to ``upstream`` through a fresh proxy."""

    async def main() -> T:
        async with (
            FaultProxy(upstream.url, plan=plan, **options) as proxy,
            HiveVault(proxy.url, token or upstream.new_token(), timeout=10) as vault,
        ):
            return await asyncio.wait_for(use(vault, proxy), DEADLINE)

    return asyncio.run(main())


async def raw_exchange(url: str, request: bytes) -> tuple[list[bytes], BaseException | None]:
    """Send raw bytes to ``url``; the chunks read back until EOF, and the error that ended it."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    chunks: list[bytes] = []
    error: BaseException | None = None
    try:
        writer.write(request)
        await writer.drain()
        while chunk := await asyncio.wait_for(reader.read(65536), DEADLINE):
            chunks.append(chunk)
    except (ConnectionError, OSError) as exc:
        error = exc
    finally:
        writer.close()
    return chunks, error


def insert_request(token: str, host: str = "127.0.0.1") -> bytes:
    body = b'{"document": [{"key": "raw"}], "options": {}}'
    return (
        f"POST {API_PREFIX}/collection/c HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: token {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


# -- the plan: which request gets which fault ---------------------------------------------------


def test_the_same_seed_gives_the_same_faults() -> None:
    """Fault proxy, seeded schedule: a plan's faults are a function of its seed and rates; a
    script comes first; heal() stops every fault."""
    rates = {Fault.ERROR_BEFORE: 0.1, Fault.RESET_AFTER: 0.1, Fault.DRIP: 0.05}
    first = [FaultPlan(seed=5, rates=rates).next() for _ in range(1)]
    plan_a, plan_b = FaultPlan(seed=5, rates=rates), FaultPlan(seed=5, rates=rates)
    run_a = [plan_a.next() for _ in range(500)]
    assert run_a == [plan_b.next() for _ in range(500)]
    assert run_a[:1] == first
    other = FaultPlan(seed=6, rates=rates)
    assert [other.next() for _ in range(500)] != run_a
    injected = [fault for fault in run_a if fault is not None]
    assert 100 < len(injected) < 150  # a rate of 0.25 over 500 requests
    assert set(injected) == set(rates)

    forwarded = {fault for fault in Fault if fault.forwards}
    assert forwarded == {Fault.ERROR_AFTER, Fault.BAD_JSON, Fault.RESET_AFTER, Fault.DRIP}

    scripted = FaultPlan(seed=5, rates=rates, script=[None, Fault.UNAUTHORIZED])
    assert [scripted.next(), scripted.next()] == [None, Fault.UNAUTHORIZED]
    scripted.heal()
    assert [scripted.next() for _ in range(100)] == [None] * 100


@pytest.mark.parametrize(
    ("rates", "problem"),
    [
        ({Fault.DRIP: -0.1}, "between 0 and 1"),
        ({Fault.DRIP: 0.7, Fault.ERROR_AFTER: 0.4}, "add up to 1.1"),
        ({"drip": 0.1}, "not a Fault"),
        ({Fault.DRIP: float("nan")}, "between 0 and 1"),
    ],
)
def test_a_bad_rate_is_refused_naming_it(rates: Any, problem: str) -> None:
    """Bad input: a rate outside [0, 1], rates adding up to more than 1, or a key that is not a
    fault is an InvalidArgumentError naming ``rates``."""
    with pytest.raises(InvalidArgumentError, match=problem) as caught:
        FaultPlan(seed=1, rates=rates)
    assert caught.value.argument == "rates"


def test_a_bad_upstream_or_timing_is_refused_naming_it() -> None:
    """Bad input: the proxy's upstream must be an http URL with a host; timings must be > 0."""
    for upstream in ("https://127.0.0.1:1", "127.0.0.1:8080", "http://", "http://h:1/x?y"):
        with pytest.raises(InvalidArgumentError) as caught:
            FaultProxy(upstream)
        assert caught.value.argument == "upstream"
    with pytest.raises(InvalidArgumentError) as caught:
        FaultProxy("http://127.0.0.1:1", drip_interval=0)
    assert caught.value.argument == "drip_interval"


# -- each fault, on a real request --------------------------------------------------------------


def test_no_fault_forwards_every_request(upstream: Upstream) -> None:
    """Fault proxy: without faults it is transparent: HiveVault works through it, on one kept-
    alive connection, Hive's own status codes included."""

    async def use(vault: HiveVault, proxy: FaultProxy) -> list[dict[str, Any]]:
        await vault.create_collection("c")
        with pytest.raises(AlreadyExistsError):  # 455, a status without a standard phrase
            await vault.create_collection("c")
        await vault.insert_one("c", DOC)
        await vault.update_one("c", {"key": "k"}, {"$set": {"value": 2}})
        await vault.delete_one("c", {"key": "nothing"})  # a 204 answer
        found = await vault.find_many("c", {})
        assert proxy.counts["requests"] == proxy.counts["forwarded"] == 6
        assert proxy.counts["connections"] == 1
        return found

    found = through(upstream, FaultPlan(seed=1), use)
    assert [(doc["key"], doc["value"]) for doc in found] == [("k", 2)]


def test_error_before_forwarding_is_a_500_and_nothing_applies(upstream: Upstream) -> None:
    """Fault proxy, 500 before forwarding: the client gets a 500 and the vault never saw the
    write."""
    token = upstream.new_token()

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        await vault.create_collection("c")
        with pytest.raises(ServerError) as caught:
            await vault.insert_one("c", DOC)
        assert caught.value.status == 500
        assert proxy.counts[Fault.ERROR_BEFORE.value] == 1 and proxy.counts["forwarded"] == 1

    through(upstream, FaultPlan(seed=1, script=[None, Fault.ERROR_BEFORE]), use, token)
    assert upstream.documents(token) == []


def test_error_after_forwarding_is_a_500_for_a_write_that_applied(upstream: Upstream) -> None:
    """Fault proxy, 500 after forwarding: the vault applied the write, the client sees a 500."""
    token = upstream.new_token()

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        await vault.create_collection("c")
        with pytest.raises(ServerError) as caught:
            await vault.insert_one("c", DOC)
        assert caught.value.status == 500

    through(upstream, FaultPlan(seed=1, script=[None, Fault.ERROR_AFTER]), use, token)
    assert [doc["key"] for doc in upstream.documents(token)] == ["k"]


def test_bad_json_is_an_unreadable_answer_to_a_write_that_applied(upstream: Upstream) -> None:
    """Fault proxy, invalid JSON: the vault's answer keeps its status but its body is not JSON
    (a 204 becomes a 200 with a body); the write applied."""
    token = upstream.new_token()

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        await vault.create_collection("c")
        with pytest.raises(ServerError, match="malformed answer") as caught:
            await vault.insert_one("c", DOC)
        assert caught.value.status == 201
        with pytest.raises(ServerError, match="malformed answer"):
            await vault.find_many("c", {})
        with pytest.raises(ServerError, match="malformed answer") as caught:
            await vault.delete_one("c", {"key": "k"})
        assert caught.value.status == 200

    script = [None, Fault.BAD_JSON, Fault.BAD_JSON, Fault.BAD_JSON]
    through(upstream, FaultPlan(seed=1, script=script), use, token)
    assert upstream.documents(token) == []  # inserted, then deleted: both applied


def test_reset_before_forwarding_is_a_network_error_and_nothing_applies(
    upstream: Upstream,
) -> None:
    """Fault proxy, reset before forwarding: the connection is reset once the request arrived;
    HiveVault reports an indefinite network error (HTTP-1) although nothing applied."""
    token = upstream.new_token()

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        await vault.create_collection("c")
        with pytest.raises(NetworkError) as caught:
            await vault.insert_one("c", DOC)
        assert caught.value.definite is False
        assert proxy.counts["forwarded"] == 1
        await vault.insert_one("c", {"key": "after"})  # a new connection works

    through(upstream, FaultPlan(seed=1, script=[None, Fault.RESET_BEFORE]), use, token)
    assert [doc["key"] for doc in upstream.documents(token)] == ["after"]


def test_reset_after_forwarding_cuts_the_answer_of_a_write_that_applied(
    upstream: Upstream,
) -> None:
    """Fault proxy, reset after forwarding: part of the vault's answer is sent, then the
    connection is reset; the write applied, HiveVault reports an indefinite network error."""
    token = upstream.new_token()

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        await vault.create_collection("c")
        with pytest.raises(NetworkError) as caught:
            await vault.insert_one("c", DOC)
        assert caught.value.definite is False

    through(upstream, FaultPlan(seed=1, script=[None, Fault.RESET_AFTER]), use, token)
    assert [doc["key"] for doc in upstream.documents(token)] == ["k"]

    async def raw(vault: HiveVault, proxy: FaultProxy) -> tuple[list[bytes], Any]:
        return await raw_exchange(proxy.url, insert_request(token))

    chunks, error = through(upstream, FaultPlan(seed=1, script=[Fault.RESET_AFTER]), raw, token)
    received = b"".join(chunks)
    assert isinstance(error, ConnectionResetError)
    assert received.startswith(b"HTTP/1.1 201 ")  # the head, and half the body
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    assert 0 < len(body) < length
    assert len(upstream.documents(token)) == 2


def test_a_slow_drip_sends_the_answer_one_byte_at_a_time(upstream: Upstream) -> None:
    """Fault proxy, slow drip: the whole answer, one byte every ``drip_interval`` seconds, until
    ``drip_limit`` seconds have passed; then the rest at once."""
    token = upstream.new_token()

    async def raw(vault: HiveVault, proxy: FaultProxy) -> tuple[list[bytes], float]:
        started = time.monotonic()
        chunks, error = await raw_exchange(proxy.url, insert_request(token))
        assert error is None
        return chunks, time.monotonic() - started

    chunks, elapsed = through(
        upstream,
        FaultPlan(seed=1, script=[Fault.DRIP]),
        raw,
        token,
        drip_interval=0.02,
        drip_limit=0.3,
    )
    answer = b"".join(chunks)
    assert answer.startswith(b"HTTP/1.1 404 ") and answer.endswith(b"}")  # no collection c
    assert len(chunks) >= 8 and all(len(chunk) == 1 for chunk in chunks[:8])
    assert len(chunks[-1]) > 1  # the limit passed: the rest came at once
    assert 0.25 < elapsed < 5

    async def use(vault: HiveVault, proxy: FaultProxy) -> float:
        await vault.create_collection("c2")
        started = time.monotonic()
        await vault.insert_one("c2", DOC)  # slow, but complete
        return time.monotonic() - started

    slow = through(
        upstream,
        FaultPlan(seed=1, script=[None, Fault.DRIP]),
        use,
        token,
        drip_interval=0.003,
        drip_limit=10,
    )
    assert slow > 0.3  # over 100 bytes (head and body) at 0.003 s each: all of it dripped
    assert len(upstream.documents(token, "c2")) == 1


def test_a_401_makes_hive_vault_ask_its_token_provider_again(upstream: Upstream) -> None:
    """Fault proxy, 401: not forwarded; HiveVault asks its provider again and resends once
    (HTTP-2), so one 401 costs nothing but a new token; two in a row are an error."""
    token = upstream.new_token()
    asked: list[str] = []

    def provider() -> str:
        asked.append(token)
        return token

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        await vault.create_collection("c")
        await vault.insert_one("c", DOC)
        assert len(asked) == 2  # the first request, then the 401
        with pytest.raises(UnauthorizedError):
            await vault.insert_one("c", {"key": "never"})
        assert len(asked) == 3
        assert proxy.counts[Fault.UNAUTHORIZED.value] == 3 and proxy.counts["forwarded"] == 2

    script = [None, Fault.UNAUTHORIZED, None, Fault.UNAUTHORIZED, Fault.UNAUTHORIZED]
    through(upstream, FaultPlan(seed=1, script=script), use, provider)
    assert [doc["key"] for doc in upstream.documents(token)] == ["k"]


def test_an_unreachable_upstream_is_a_502(upstream: Upstream) -> None:
    """Fault proxy: when the vault is down (killed, restarting) the proxy answers 502, as a
    gateway does, instead of hanging."""

    async def main() -> None:
        async with (
            FaultProxy(f"http://127.0.0.1:{closed_port()}") as proxy,
            HiveVault(proxy.url, "t", timeout=10) as vault,
        ):
            with pytest.raises(ServerError) as caught:
                await asyncio.wait_for(vault.create_collection("c"), DEADLINE)
            assert caught.value.status == 502
            assert proxy.counts["upstream_failed"] == 1

    asyncio.run(main())


def test_closing_the_proxy_drops_open_connections_quietly(upstream: Upstream) -> None:
    """Fault proxy: aclose() ends connections that are idle or in the middle of a drip at
    once, without an error in the event loop's log."""
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: errors.append(context)
        )
        plan = FaultPlan(seed=1, script=[Fault.DRIP])
        proxy = FaultProxy(upstream.url, plan=plan, drip_interval=5, drip_limit=60)
        await proxy.start()
        host, port = proxy.url.removeprefix("http://").split(":")
        dripping = await asyncio.open_connection(host, int(port))
        dripping[1].write(insert_request(upstream.new_token()))
        idle = await asyncio.open_connection(host, int(port))
        assert await asyncio.wait_for(dripping[0].read(1), DEADLINE) == b"H"  # the drip began
        await asyncio.wait_for(proxy.aclose(), DEADLINE)
        for reader, writer in (dripping, idle):
            assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
            writer.close()
        await asyncio.sleep(0)  # let the server's done-callbacks run

    asyncio.run(main())
    assert errors == []


def test_malformed_requests_get_a_4xx(upstream: Upstream) -> None:
    """Servers answer 4xx, never hang: a request line that is not HTTP is a 400, a body over
    the limit a 413, each naming what was wrong; the proxy keeps serving."""

    async def use(vault: HiveVault, proxy: FaultProxy) -> None:
        chunks, _ = await raw_exchange(proxy.url, b"HELLO\r\n\r\n")
        assert b"".join(chunks).startswith(b"HTTP/1.1 400 ")
        assert b"request line" in b"".join(chunks)
        big = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n"
        chunks, _ = await raw_exchange(proxy.url, big)
        assert b"".join(chunks).startswith(b"HTTP/1.1 413 ")
        assert b"Content-Length" in b"".join(chunks)
        await vault.create_collection("c")  # still serving
        assert proxy.counts["forwarded"] == 1

    through(upstream, FaultPlan(seed=1), use, max_body=1_000_000)


def test_a_chunked_request_body_is_forwarded_whole(upstream: Upstream) -> None:
    """Fault proxy: a request body sent in chunks reaches the vault as one body."""
    token = upstream.new_token()

    async def use(vault: HiveVault, proxy: FaultProxy) -> bytes:
        await vault.create_collection("c")
        body = b'{"document": [{"key": "chunked"}], "options": {}}'
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:9], body[9:]))
        request = (
            (
                f"POST {API_PREFIX}/collection/c HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: token {token}\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + chunked
            + b"0\r\n\r\n"
        )
        chunks, _ = await raw_exchange(proxy.url, request)
        return b"".join(chunks)

    assert through(upstream, FaultPlan(seed=1), use, token).startswith(b"HTTP/1.1 201 ")
    assert [doc["key"] for doc in upstream.documents(token)] == ["chunked"]


# -- brh-vault proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--upstream", "ftp://x"], "--upstream"),
        (["--upstream", "http://127.0.0.1:1", "--rate", "1.5"], "--rate"),
        (["--upstream", "http://127.0.0.1:1", "--faults", "drip,boom"], "--faults"),
        (["--upstream", "http://127.0.0.1:1", "--port", "70000"], "--port"),
        (["--upstream", "http://127.0.0.1:1", "--drip-interval", "0"], "--drip-interval"),
    ],
)
def test_the_proxy_command_refuses_bad_arguments_naming_them(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input: ``brh-vault proxy`` exits 2 with a message naming the option."""
    with pytest.raises(SystemExit) as caught:
        main(["proxy", *argv])
    assert caught.value.code == 2
    assert named in capsys.readouterr().err


def test_the_proxy_command_parses_its_documented_options() -> None:
    """``brh-vault proxy`` takes the options the README shows."""
    args = _parser().parse_args(
        [
            *("proxy", "--upstream", "http://127.0.0.1:8080", "--port", "8081", "--seed", "7"),
            *("--rate", "0.2", "--faults", "error-before,drip", "--drip-interval", "0.5"),
        ]
    )
    assert (args.command, args.port, args.seed, args.rate) == ("proxy", 8081, 7, 0.2)


@pytest.mark.slow
def test_the_proxy_command_serves_until_stopped(upstream: Upstream) -> None:
    """``brh-vault proxy`` prints its URL and seed, injects its faults (every request a 500
    here) and stops cleanly on SIGTERM."""
    args = [sys.executable, "-m", "vaultd", "proxy", "--upstream", upstream.url]
    args += ["--port", "0", "--seed", "3", "--rate", "1", "--faults", "error-before"]
    process = LineProcess(args, name="brh-vault proxy")
    try:
        line = process.next_line()
        found = re.search(r"proxy (http://127\.0\.0\.1:\d+) -> ", line)
        assert found and "seed 3" in line, line

        async def use() -> None:
            async with HiveVault(found.group(1), upstream.new_token(), timeout=10) as vault:
                with pytest.raises(ServerError) as caught:
                    await vault.create_collection("c")
                assert caught.value.status == 500

        asyncio.run(asyncio.wait_for(use(), DEADLINE))
        assert process.stop() == 0
    finally:
        process.close()
