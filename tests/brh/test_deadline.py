"""Every vault request has an overall deadline: ``sync()`` never hangs (SPEC RETRY-5, HTTP-1).

Most tests run on virtual time (a request that never answers ends after exactly the deadline,
without real waiting). Two run a real server on 127.0.0.1 that answers one byte every 0.5 s,
which no idle-read timeout ever trips; their real waits are bounded by :data:`BOUND`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pytest

from brh import BackupRestoreHelper, Entry, InvalidArgumentError, RetryPolicy
from brh.deadline import DeadlineVault, with_deadline
from brh.hive import HiveVault
from brh.vault import NetworkError, Vault
from hivevault.vault import FakeVault
from tests.support import EPOCH, now

T = TypeVar("T")

BOUND = 15.0
"""Real seconds a real-server test may take at most before it fails (instead of hanging)."""


def accept(entry: Entry) -> bool:
    return True


class SilentVault(FakeVault):
    """A fake vault whose chosen operations never answer (each call is counted)."""

    def __init__(self, *silent: str) -> None:
        super().__init__(clock=now)
        self.silent = set(silent)
        self.calls: list[str] = []

    def _hang_or(self, op: str) -> bool:
        self.calls.append(op)
        return op in self.silent

    async def create_collection(self, *args: Any, **kwargs: Any) -> None:
        if self._hang_or("create_collection"):
            await asyncio.get_running_loop().create_future()
        await super().create_collection(*args, **kwargs)

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        if self._hang_or("query"):
            await asyncio.get_running_loop().create_future()
        return await super().query(*args, **kwargs)


# -- the helper's request_deadline, on virtual time ----------------------------------------------


@pytest.mark.parametrize("deadline", [None, 7.5])
async def test_a_query_that_never_answers_ends_the_pass_at_the_virtual_deadline(
    deadline: float | None,
) -> None:
    """RETRY-5: a vault whose query never answers: sync() returns a vault_error after exactly
    the request deadline (default 60 s) of virtual time, and the retry comes by itself."""
    expected = 60.0 if deadline is None else deadline
    vault = SilentVault("query")
    options: dict[str, Any] = {} if deadline is None else {"request_deadline": deadline}
    helper = BackupRestoreHelper(
        vault, ":memory:", clock=now, retry=RetryPolicy(initial_delay=5, jitter=0), **options
    )
    assert helper.vault is vault  # the deadline wraps only what the engine talks to
    helper.add_sync_context("notes", accept, accept, accept)
    start = now()
    result = await helper.sync()
    assert now() - start == expected
    assert not result and result.reason == "vault_error"
    assert result.failed_contexts == ("notes",)
    assert result.error is not None and result.error.startswith("NetworkError: query: ")
    assert f"{expected:g} s" in result.error and "may have applied" in result.error
    assert vault.calls == ["create_collection", "query"]
    await asyncio.sleep(5 + expected + 1)  # the retry: 5 s later, cut again at the deadline
    assert vault.calls == ["create_collection", "query", "query"]
    assert helper.last_result is not None and helper.last_result.reason == "vault_error"
    await helper.close()


async def test_other_contexts_still_run_after_one_is_cut() -> None:
    """RETRY-5, RETRY-4: a request cut by the deadline ends only its context's work."""
    vault = SilentVault()
    helper = BackupRestoreHelper(vault, ":memory:", clock=now, request_deadline=3)
    helper.add_sync_context("first", accept, accept, accept)
    helper.add_sync_context("second", accept, accept, accept)
    vault.silent.add("create_collection")
    hung = asyncio.ensure_future(helper.sync())
    await asyncio.sleep(1)
    vault.silent.clear()  # only the first context's creation hangs
    result = await hung
    assert result.reason == "vault_error" and result.failed_contexts == ("first",)
    assert vault.calls == ["create_collection", "create_collection", "query"]
    await helper.close()


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, True, "5", None])
def test_a_bad_request_deadline_is_refused_naming_it(bad: object) -> None:
    """ERR-1: request_deadline must be a finite number of seconds > 0."""
    with pytest.raises(InvalidArgumentError) as info:
        BackupRestoreHelper(FakeVault(), ":memory:", request_deadline=bad)  # type: ignore[arg-type]
    assert info.value.argument == "request_deadline"


def test_the_wrapper_is_a_vault_and_forwards_vault_time_only_when_there_is_one() -> None:
    """RETRY-5: the deadline wrapper is a Vault; it offers vault_time() exactly when the vault
    it wraps does, and passes its answer through."""

    class Clocked(FakeVault):
        def vault_time(self) -> float:
            return 1234.5

    class Unclocked:
        """A vault that does not tell its time (the Vault methods of a FakeVault only)."""

        def __init__(self) -> None:
            self._inner = FakeVault()

        def __getattr__(self, name: str) -> Any:
            if name == "vault_time":
                raise AttributeError(name)
            return getattr(self._inner, name)

    plain = with_deadline(Unclocked(), 5)
    clocked = with_deadline(Clocked(), 5)
    assert isinstance(plain, Vault) and isinstance(clocked, Vault)
    assert not hasattr(plain, "vault_time")
    assert clocked.vault_time() == 1234.5  # type: ignore[attr-defined]


async def test_the_vaults_own_timeout_error_is_not_taken_for_the_deadline() -> None:
    """RETRY-5: only the deadline's expiry becomes a NetworkError; other errors pass unchanged."""

    class Raising(FakeVault):
        async def find_one(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("the vault's own")

    vault = DeadlineVault(Raising(clock=now), 5)
    with pytest.raises(TimeoutError, match="the vault's own"):
        await vault.find_one("c", {})
    assert now() == EPOCH


async def test_a_cut_request_is_an_indefinite_network_error_naming_op_and_deadline() -> None:
    """RETRY-5: an expiry is NetworkError(definite=False): the request may have applied."""
    vault = with_deadline(SilentVault("query"), 2.5)
    with pytest.raises(NetworkError) as info:
        await vault.query("backup_notes", {})
    assert info.value.definite is False
    assert str(info.value).startswith("query: ") and "2.5 s" in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert now() == EPOCH + 2.5


# -- HiveVault's own deadline, on virtual time ----------------------------------------------------


class HangingTransport(httpx.AsyncBaseTransport):
    """Reports the given httpcore ``trace`` events for each request, then never answers."""

    def __init__(self, *events: str) -> None:
        self.events = events
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        trace = request.extensions.get("trace")
        for event in self.events:
            if trace is not None:
                await trace(event, {})
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "events, definite",
    [
        ((), False),  # a transport that reports nothing gives no proof that nothing left
        (("connection.connect_tcp.started",), True),
        (("connection.connect_tcp.started", "connection.connect_tcp.complete"), True),
        (("connection.connect_tcp.complete", "connection.start_tls.started"), True),
        (("connection.connect_tcp.complete", "http11.send_request_headers.started"), False),
        (("http11.send_request_headers.started",), False),  # a pooled connection
        (("http11.receive_response_headers.started",), False),
    ],
)
async def test_hive_vault_cuts_a_request_at_its_deadline(
    events: tuple[str, ...], definite: bool
) -> None:
    """HTTP-1, RETRY-5: HiveVault used alone ends a request at ``deadline`` seconds; the error
    is definite only when the request was cut while still connecting."""
    transport = HangingTransport(*events)
    async with HiveVault("http://vault.test", "tok", deadline=4, transport=transport) as v:
        with pytest.raises(NetworkError) as info:
            await v.update_one("c", {}, {"$set": {"a": 1}})
    assert now() == EPOCH + 4 and transport.requests == 1
    assert info.value.definite is definite
    assert str(info.value).startswith("update_one: ") and "deadline of 4 s" in str(info.value)


async def test_hive_vault_deadline_covers_a_token_provider_that_never_answers() -> None:
    """HTTP-1, RETRY-5: a provider that never returns is cut too; nothing was sent: definite."""

    async def never() -> str:
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    transport = HangingTransport()
    async with HiveVault("http://vault.test", never, deadline=2, transport=transport) as v:
        with pytest.raises(NetworkError) as info:
            await v.find_many("c", {})
    assert info.value.definite is True and transport.requests == 0
    assert now() == EPOCH + 2


@pytest.mark.parametrize("bad", [0, -2, math.inf, math.nan, True, "9", None])
def test_a_bad_hive_deadline_is_refused_naming_it(bad: object) -> None:
    """ERR-1: HiveVault's deadline must be a finite number of seconds > 0."""
    with pytest.raises(InvalidArgumentError) as info:
        HiveVault("http://vault.test", "tok", deadline=bad)  # type: ignore[arg-type]
    assert info.value.argument == "deadline"


# -- a real server that answers one byte every 0.5 s ---------------------------------------------


class TricklingServer:
    """An HTTP server on 127.0.0.1 that reads a request and answers it one byte every
    ``interval`` seconds, for ever (a valid status line and headers, then a body that never
    ends). An idle-read timeout longer than ``interval`` never fires."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.connections = 0
        self.bytes_sent = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        )
        try:
            await reader.readuntil(b"\r\n\r\n")
            for index in range(10**6):
                writer.write(answer[index : index + 1] if index < len(answer) else b" ")
                await writer.drain()
                self.bytes_sent += 1
                await asyncio.sleep(self.interval)  # the trickle itself (a real socket test)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up
        finally:
            writer.close()
            self._handlers.discard(task)

    async def __aenter__(self) -> TricklingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()


def run_bounded(coroutine: Awaitable[T]) -> T:
    """Run on a real event loop; fail after :data:`BOUND` real seconds instead of hanging."""

    async def main() -> T:
        try:
            return await asyncio.wait_for(coroutine, BOUND)
        except TimeoutError:
            raise AssertionError(f"still waiting after {BOUND} s: the request hangs") from None

    return asyncio.run(main())


def test_sync_returns_at_the_deadline_against_a_server_trickling_one_byte_every_half_second() -> (
    None
):
    """RETRY-5 (the issue's case): a server sending one byte every 0.5 s, behind HiveVault
    whose per-phase timeout (2 s) it never trips: sync() still returns a vault_error after
    about the helper's request_deadline (1 s), and close() is prompt."""

    async def main() -> tuple[float, Any, TricklingServer]:
        loop = asyncio.get_running_loop()
        server = TricklingServer()
        async with server, HiveVault(server.url, "tok", timeout=2) as vault:
            helper = BackupRestoreHelper(vault, ":memory:", request_deadline=1.0)
            helper.add_sync_context("notes", accept, accept, accept)
            start = loop.time()
            result = await helper.sync()
            elapsed = loop.time() - start
            await helper.close()
        return elapsed, result, server

    elapsed, result, server = run_bounded(main())
    assert not result and result.reason == "vault_error"
    assert "create_collection: " in result.error and "1 s" in result.error
    assert server.connections == 1 and server.bytes_sent >= 2  # it did trickle meanwhile
    assert 1.0 <= elapsed < 1.0 + 3.0, elapsed  # slack for a slow, shared machine


def test_hive_vault_alone_stops_waiting_on_a_trickling_server_at_its_deadline() -> None:
    """RETRY-5, HTTP-1: HiveVault on its own (no helper) ends the trickled request at its
    ``deadline``: an indefinite NetworkError (the request was sent and may have applied)."""

    async def main() -> tuple[float, NetworkError]:
        loop = asyncio.get_running_loop()
        server = TricklingServer()
        async with server, HiveVault(server.url, "tok", timeout=2, deadline=1.0) as vault:
            start = loop.time()
            try:
                await vault.insert_one("c", {"a": 1})
            except NetworkError as exc:
                return loop.time() - start, exc
        raise AssertionError("the trickled request succeeded")

    elapsed, error = run_bounded(main())
    assert error.definite is False and "may have applied" in str(error)
    assert 1.0 <= elapsed < 1.0 + 3.0, elapsed
