"""A fault-injecting HTTP proxy for a vault: ``brh-vault proxy``, or :class:`FaultProxy`.

It sits between clients (:class:`brh.hive.HiveVault`) and a vault (``brh-vault serve``, or any
HTTP server), forwards each request, and breaks some of them on purpose, chosen by a seeded
:class:`FaultPlan` (a script of faults for known requests, then random draws at given rates)::

    plan = FaultPlan(seed=7, rates={Fault.RESET_AFTER: 0.05, Fault.DRIP: 0.02})
    async with FaultProxy("http://127.0.0.1:8080", plan=plan) as proxy:
        vault = HiveVault(proxy.url, token)  # talks to the vault through the faults
        ...
        plan.heal()  # from now on every request goes through untouched

The faults (:class:`Fault`), each a way a real network or gateway fails a client:

* ``error-before``: a 500 answer; the request never reaches the vault;
* ``error-after``: the request is forwarded (a write applies), the client gets a 500;
* ``bad-json``: forwarded; the answer keeps its status (a 204 becomes a 200) and headers, but
  its body is not JSON;
* ``reset-before``: the connection is reset (TCP RST) once the request has arrived; nothing is
  forwarded, though the client cannot know that;
* ``reset-after``: forwarded; the answer's head and half its body are sent, then the connection
  is reset;
* ``drip``: forwarded; the answer is sent one byte every ``drip_interval`` seconds (0.5), which
  a per-read client timeout never catches, until ``drip_limit`` seconds (30) have passed; then
  the rest goes at once, so a dripped answer is late, never endless;
* ``unauthorized``: a 401 answer, not forwarded (an expired token: HiveVault asks its token
  provider again and resends once, SPEC HTTP-2).

When the vault cannot be reached (down, restarting after ``kill -9``) or breaks off its answer,
the proxy answers 502, or 504 after ``upstream_timeout`` seconds, as a gateway does. Malformed
requests get a 400 (431, 413 for a head or body over the limits) that says what was wrong.

It is HTTP/1.1 on raw asyncio streams, not an ASGI app: a drip and a reset in the middle of an
answer need control of the bytes and of the socket. Clients keep their connections alive; each
request is forwarded on a new upstream connection, so a restarted vault is found again at once.
Nothing is retried. The proxy is meant for loopback and for tests: it buffers whole requests and
answers (up to ``max_body`` bytes each) and speaks plain HTTP only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import logging
import math
import random
import signal
import socket
import struct
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

from brh.errors import InvalidArgumentError
from brh.hive_wire import NO_INTERNAL_CODE

__all__ = ["Fault", "FaultPlan", "FaultProxy", "configure_parser", "run_command"]

_log = logging.getLogger("vaultd.faultproxy")

MAX_HEAD = 64 * 1024
"""Longest request or answer head (request line or status line, and headers) in bytes."""

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",  # set again for the bytes actually sent
        "host",
    }
)
_NO_BODY = frozenset({204, 304})
_BAD_JSON = b'{"brh-vault proxy": this answer is not JSON'


class Fault(enum.Enum):
    """A way the proxy breaks one request (see the module's docstring)."""

    ERROR_BEFORE = "error-before"
    ERROR_AFTER = "error-after"
    BAD_JSON = "bad-json"
    RESET_BEFORE = "reset-before"
    RESET_AFTER = "reset-after"
    DRIP = "drip"
    UNAUTHORIZED = "unauthorized"

    @property
    def forwards(self) -> bool:
        """Whether the vault receives the request (and may apply it) despite the fault."""
        return self in (Fault.ERROR_AFTER, Fault.BAD_JSON, Fault.RESET_AFTER, Fault.DRIP)


class FaultPlan:
    """Which request gets which fault: the ``script`` first, one entry per request (``None``:
    no fault), then a random draw per request from ``random.Random(seed)`` at ``rates`` (each
    fault's probability; together at most 1). The same seed, rates and request order give the
    same faults. :meth:`heal` stops all faults; :meth:`set_rates` changes the rates.
    """

    def __init__(
        self,
        seed: int = 0,
        rates: Mapping[Fault, float] | None = None,
        script: Iterable[Fault | None] = (),
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidArgumentError("seed", f"must be an integer, got {seed!r}")
        self.seed = seed
        self._rng = random.Random(seed)
        self._rates: tuple[tuple[Fault, float], ...] = ()
        self.set_rates(rates or {})
        self._script: list[Fault | None] = []
        for fault in script:
            if fault is not None and not isinstance(fault, Fault):
                raise InvalidArgumentError("script", f"{fault!r} is not a Fault or None")
            self._script.append(fault)
        self._script.reverse()

    @property
    def rates(self) -> dict[Fault, float]:
        return dict(self._rates)

    def set_rates(self, rates: Mapping[Fault, float]) -> None:
        """Use these rates from the next request on (the script still comes first)."""
        checked: list[tuple[Fault, float]] = []
        for fault, rate in rates.items():
            if not isinstance(fault, Fault):
                raise InvalidArgumentError("rates", f"{fault!r} is not a Fault")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise InvalidArgumentError(
                    "rates", f"the rate of {fault.value} must be between 0 and 1, got {rate!r}"
                )
            if rate > 0:
                checked.append((fault, float(rate)))
        total = math.fsum(rate for _, rate in checked)
        if total > 1 + 1e-9:
            raise InvalidArgumentError(
                "rates", f"must add up to 1 at most, they add up to {total:g}"
            )
        checked.sort(key=lambda item: item[0].value)  # a fixed order, whatever the mapping's
        self._rates = tuple(checked)

    def heal(self) -> None:
        """No more faults: forget the script and set every rate to 0."""
        self._script.clear()
        self._rates = ()

    def next(self) -> Fault | None:
        """The fault of the next request, or None."""
        if self._script:
            return self._script.pop()
        if not self._rates:
            return None
        draw = self._rng.random()
        for fault, rate in self._rates:
            if draw < rate:
                return fault
            draw -= rate
        return None


class _BadMessage(Exception):
    """A request (or an upstream answer) that cannot be read; ``status`` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    has_body: bool

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in _header(self.headers, "connection").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _header(headers: list[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


def _parse_headers(lines: list[bytes]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise _BadMessage(400, f"malformed header line {line[:80]!r}")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return headers


async def _read_head(reader: asyncio.StreamReader) -> list[bytes] | None:
    """The head's lines (without the blank line), or None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise _BadMessage(400, "the connection ended in the middle of a head") from None
    except asyncio.LimitOverrunError:
        raise _BadMessage(431, f"the head is longer than {MAX_HEAD} bytes") from None
    return head[:-4].split(b"\r\n")


async def _read_body(
    reader: asyncio.StreamReader, headers: list[tuple[str, str]], limit: int, *, to_eof: bool
) -> tuple[bytes, bool]:
    """The body framed by ``headers`` (chunked, Content-Length, or, for an answer without
    either, the rest of the stream) and whether there was one at all."""
    if "chunked" in _header(headers, "transfer-encoding").lower():
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                length = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadMessage(400, f"malformed chunk size {line[:40]!r}") from None
            if length < 0:
                raise _BadMessage(400, f"malformed chunk size {line[:40]!r}")
            size += length
            if size > limit:
                raise _BadMessage(413, f"the chunked body is longer than {limit} bytes")
            if length == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, ignored
                    pass
                return b"".join(chunks), True
            chunks.append(await reader.readexactly(length))
            await reader.readexactly(2)
    declared = _header(headers, "content-length")
    if declared:
        if not declared.isdigit():
            raise _BadMessage(400, f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > limit:
            raise _BadMessage(
                413, f"Content-Length {declared} is over the proxy's limit of {limit} bytes"
            )
        return await reader.readexactly(int(declared)), True
    if to_eof:
        body = await reader.read(limit + 1)
        while len(body) <= limit and (more := await reader.read(limit + 1 - len(body))):
            body += more
        if len(body) > limit:
            raise _BadMessage(502, f"the vault's answer is longer than {limit} bytes")
        return body, True
    return b"", False


def _encode_answer(answer: _Answer, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {answer.status} {answer.reason}"]
    lines += [f"{name}: {value}" for name, value in answer.headers]
    if answer.status not in _NO_BODY:
        lines.append(f"content-length: {len(answer.body)}")
    lines.append(f"connection: {'keep-alive' if keep_alive else 'close'}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if answer.status in _NO_BODY else head + answer.body


def _phrase(status: int) -> str:
    """The reason phrase of ``status`` ("" for codes outside the standard, such as Hive's 455)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _error_answer(status: int, message: str) -> _Answer:
    body = json.dumps(
        {"error": {"message": f"brh-vault proxy: {message}", "internal_code": NO_INTERNAL_CODE}}
    ).encode()
    return _Answer(status, _phrase(status), [("content-type", "application/json")], body)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP reset (RST), dropping anything not yet sent."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _upstream_parts(upstream: object) -> tuple[str, int, str] | None:
    """(host, port, netloc) of a plain ``http://HOST[:PORT]`` URL, or None if it is not one."""
    if not isinstance(upstream, str):
        return None
    try:
        parts = urlsplit(upstream)
        port = parts.port or 80
    except ValueError:
        return None
    if (
        parts.scheme != "http"
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    return parts.hostname, port, parts.netloc


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(name, f"must be > 0 seconds, got {value!r}")
    if not math.isfinite(value):
        raise InvalidArgumentError(name, f"must be finite, got {value!r}")
    return float(value)


class FaultProxy:
    """An HTTP proxy on ``host:port`` (default 127.0.0.1, a free port) in front of the vault at
    ``upstream`` (``http://HOST:PORT``), breaking the requests ``plan`` says.

    ``drip_interval``, ``drip_limit``: a dripped answer's pace and how long it drips at most
    (seconds); ``upstream_timeout``: seconds for a whole exchange with the vault (then 504);
    ``idle_timeout``: seconds a client connection may take to send its next request;
    ``max_body``: the largest request or answer body, in bytes (413 or 502 beyond).

    :meth:`start` (or ``async with``) starts serving; :attr:`url` is then the URL to give
    clients; :meth:`aclose` stops serving and drops every connection. :attr:`counts` counts
    ``connections``, ``requests``, ``forwarded`` (reached the vault), ``upstream_failed``
    (answered 502/504) and each fault by its value (``"reset-after"``, ...).
    """

    def __init__(
        self,
        upstream: str,
        *,
        plan: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        drip_interval: float = 0.5,
        drip_limit: float = 30.0,
        upstream_timeout: float = 30.0,
        idle_timeout: float = 60.0,
        max_body: int = 64 * 1024 * 1024,
    ) -> None:
        parts = _upstream_parts(upstream)
        if parts is None:
            raise InvalidArgumentError(
                "upstream", f"must be a plain http://HOST:PORT URL, got {upstream!r}"
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError("port", f"must be 0 to 65535, got {port!r}")
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise InvalidArgumentError("max_body", f"must be a positive integer, got {max_body!r}")
        if plan is not None and not isinstance(plan, FaultPlan):
            raise InvalidArgumentError("plan", f"must be a FaultPlan, got {plan!r}")
        self.upstream = f"http://{parts[2]}"
        self._upstream_host, self._upstream_port, self._upstream_netloc = parts
        self.plan = plan if plan is not None else FaultPlan()
        self.host = host
        self.port = port
        self.drip_interval = _positive("drip_interval", drip_interval)
        self.drip_limit = _positive("drip_limit", drip_limit)
        self.upstream_timeout = _positive("upstream_timeout", upstream_timeout)
        self.idle_timeout = _positive("idle_timeout", idle_timeout)
        self.max_body = max_body
        self.counts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running proxy (the port it really got)."""
        if self._server is None:
            raise RuntimeError("the proxy is not started: call start() first")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        """Listen (the port is bound when this returns)."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._connection, self.host, self.port, limit=MAX_HEAD, reuse_address=True
            )

    async def aclose(self) -> None:
        """Stop listening and drop every open connection (answers in progress included)."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- one client connection ------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counts["connections"] += 1
        try:
            keep_alive = True
            while keep_alive:
                try:
                    request = await asyncio.wait_for(self._read_request(reader), self.idle_timeout)
                except (TimeoutError, ConnectionError):
                    return
                except _BadMessage as exc:
                    answer = _error_answer(exc.status, exc.message)
                    writer.write(_encode_answer(answer, keep_alive=False))
                    await writer.drain()
                    return
                if request is None:
                    return
                keep_alive = await self._handle(request, writer)
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # aclose() cancels the connections. asyncio's server then asks this task for its
            # exception, which re-raises the cancellation into the event loop's error log; end
            # quietly instead. Any other cancellation goes on.
            if not self._closing:
                raise
        except Exception:
            _log.exception("a bug in the proxy: the connection is dropped")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        lines = await _read_head(reader)
        if lines is None:
            return None
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[0].isalpha():
            raise _BadMessage(400, f"not an HTTP/1.x request line: {lines[0][:80]!r}")
        headers = _parse_headers(lines[1:])
        try:
            body, has_body = await _read_body(reader, headers, self.max_body, to_eof=False)
        except asyncio.IncompleteReadError:
            raise _BadMessage(400, "the connection ended in the middle of a body") from None
        except asyncio.LimitOverrunError:
            raise _BadMessage(400, f"a chunk size line is longer than {MAX_HEAD} bytes") from None
        return _Request(
            method=parts[0].decode("ascii"),
            target=parts[1].decode("latin-1"),
            version=parts[2].decode("ascii"),
            headers=headers,
            body=body,
            has_body=has_body,
        )

    async def _handle(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request as the plan says; whether the connection may serve another."""
        self.counts["requests"] += 1
        number = self.counts["requests"]
        fault = self.plan.next()
        if fault is not None:
            self.counts[fault.value] += 1
            _log.info("request %d (%s %s): %s", number, request.method, request.target, fault.value)
        keep_alive = request.keep_alive
        if fault is Fault.RESET_BEFORE:
            _reset(writer)
            return False
        if fault is Fault.ERROR_BEFORE:
            answer = _error_answer(500, "injected error (the request was not forwarded)")
        elif fault is Fault.UNAUTHORIZED:
            answer = _error_answer(401, "injected 401: the token is refused, ask for a new one")
        else:
            answer = await self._forward(request)
            if fault is Fault.ERROR_AFTER:
                answer = _error_answer(500, "injected error (the request was forwarded)")
            elif fault is Fault.BAD_JSON:
                status = 200 if answer.status in _NO_BODY else answer.status
                answer = _Answer(status, _phrase(status), answer.headers, _BAD_JSON)
        data = _encode_answer(answer, keep_alive)
        if fault is Fault.RESET_AFTER:
            head_length = data.index(b"\r\n\r\n") + 4
            cut = head_length + (len(data) - head_length) // 2 if len(data) > head_length else 12
            writer.write(data[:cut])
            await writer.drain()
            _reset(writer)
            return False
        if fault is Fault.DRIP:
            await self._drip(writer, data)
        else:
            writer.write(data)
            await writer.drain()
        return keep_alive

    async def _drip(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.drip_limit
        for index in range(len(data)):
            if loop.time() >= give_up:
                writer.write(data[index:])
                break
            writer.write(data[index : index + 1])
            await writer.drain()
            if index + 1 < len(data):
                await asyncio.sleep(self.drip_interval)
        await writer.drain()

    # -- the vault ------------------------------------------------------------------------------

    async def _forward(self, request: _Request) -> _Answer:
        """The vault's answer to ``request`` (sent on a connection of its own), or a 502/504."""
        self.counts["forwarded"] += 1
        try:
            return await asyncio.wait_for(self._exchange(request), self.upstream_timeout)
        except TimeoutError:
            self.counts["upstream_failed"] += 1
            return _error_answer(504, f"no answer from {self.upstream} in time")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.counts["upstream_failed"] += 1
            return _error_answer(502, f"{self.upstream}: {type(exc).__name__}: {exc}")
        except _BadMessage as exc:
            self.counts["upstream_failed"] += 1
            return _error_answer(502, f"{self.upstream} answered badly: {exc.message}")

    async def _exchange(self, request: _Request) -> _Answer:
        reader, writer = await asyncio.open_connection(
            self._upstream_host, self._upstream_port, limit=MAX_HEAD
        )
        try:
            lines = [
                f"{request.method} {request.target} HTTP/1.1",
                f"host: {self._upstream_netloc}",
            ]
            lines += [f"{k}: {v}" for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
            if request.has_body:
                lines.append(f"content-length: {len(request.body)}")
            lines.append("connection: close")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
            await writer.drain()
            head = await _read_head(reader)
            if head is None:
                raise _BadMessage(502, "the connection closed before an answer")
            status_line = head[0].split(b" ", 2)
            if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
                raise _BadMessage(502, f"not an HTTP status line: {head[0][:80]!r}")
            try:
                status = int(status_line[1])
            except ValueError:
                raise _BadMessage(502, f"not an HTTP status line: {head[0][:80]!r}") from None
            reason = status_line[2].decode("latin-1") if len(status_line) > 2 else ""
            headers = _parse_headers(head[1:])
            if status in _NO_BODY or request.method == "HEAD":
                body = b""
            else:
                body, _ = await _read_body(reader, headers, self.max_body, to_eof=True)
            kept = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
            return _Answer(status, reason or _phrase(status), kept, body)
        finally:
            writer.transport.abort()


# -- brh-vault proxy ----------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The options of ``brh-vault proxy``."""
    names = ", ".join(fault.value for fault in Fault)
    parser.add_argument(
        "--upstream", required=True, help="the vault to forward to: http://HOST:PORT"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (8081; 0 picks a free one)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the fault draws (default: random, printed)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.1,
        help="probability that a request gets a fault, shared equally by the chosen faults (0.1)",
    )
    parser.add_argument(
        "--faults",
        default=",".join(fault.value for fault in Fault),
        help=f"comma-separated faults to inject (default all: {names})",
    )
    parser.add_argument(
        "--drip-interval", type=float, default=0.5, help="seconds between dripped bytes (0.5)"
    )
    parser.add_argument(
        "--drip-limit", type=float, default=30.0, help="seconds a drip lasts at most (30)"
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level; info logs every injected fault (warning)",
    )


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``brh-vault proxy`` until SIGTERM or Ctrl-C; bad options exit 2 naming them."""
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0 to 65535, got {args.port}")
    if not 0 <= args.rate <= 1:
        parser.error(f"--rate must be between 0 and 1, got {args.rate}")
    chosen: list[Fault] = []
    for name in filter(None, (part.strip() for part in args.faults.split(","))):
        try:
            chosen.append(Fault(name))
        except ValueError:
            known = ", ".join(fault.value for fault in Fault)
            parser.error(f"--faults: unknown fault {name!r} (known: {known})")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rates = {fault: args.rate / len(chosen) for fault in chosen} if chosen else {}
    try:
        proxy = FaultProxy(
            args.upstream,
            plan=FaultPlan(seed, rates),
            host=args.host,
            port=args.port,
            drip_interval=args.drip_interval,
            drip_limit=args.drip_limit,
        )
    except InvalidArgumentError as exc:
        parser.error(f"--{exc.argument.replace('_', '-')}: {exc.problem}")
    logging.basicConfig(level=args.log_level.upper(), format="brh-vault proxy: %(message)s")
    try:
        asyncio.run(_serve(proxy, seed, args.rate, chosen))
    except OSError as exc:
        print(f"brh-vault: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(proxy: FaultProxy, seed: int, rate: float, faults: list[Fault]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with proxy:
        kinds = ", ".join(fault.value for fault in faults) or "none"
        print(
            f"brh-vault: proxy {proxy.url} -> {proxy.upstream} "
            f"(seed {seed}, fault rate {rate:g}: {kinds})",
            flush=True,
        )
        await stop.wait()
