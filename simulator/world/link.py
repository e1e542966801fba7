"""A device's network link to the vault: latency, partitions, lost requests and lost answers.

Faults, as a client sees them (the attribute each sets; in a world, turn them on and off with
the verbs of :mod:`simulator.faults`, named in brackets):

* ``down`` (``disconnect``): no route (the request is refused at once): a *definite* failure;
* ``partitioned`` (``partition``): requests vanish; the client times out: *indefinite* (it
  cannot know);
* ``answers_lost`` (``cut_answers``, a one-way partition): requests arrive and apply, answers
  vanish: indefinite;
* ``request_loss`` / ``answer_loss`` (``lossy``): the same two, with a probability per request;
* ``lose_answers``: lose the answers of that many upcoming writes (a knob for tests);
* ``log``: set it to a list and each request is recorded there as a :class:`Sent` (when it
  left, what it was, how many documents its answer carried): what a test reads of a device's
  requests, whatever the implementation (a knob for tests);
* ``crash_trap``: a crash armed at one of the device's upcoming requests (as it leaves, or once
  the vault applied it; ``world.crash_at``, :mod:`simulator.world.crashpoints`): the request's
  answer never arrives, the device dies there;
* ``latency`` (``slow_link``): each leg draws uniformly from ``latency`` (seconds) with the
  world's seeded random generator, so requests of different devices interleave and reorder; a
  request whose round trip exceeds ``timeout`` times out (it may still apply afterwards, as on a
  real network).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from brh.vault import (
    Document,
    InsertResult,
    NetworkError,
    SortSpec,
    UpdateResult,
    Vault,
    VaultClock,
    VaultError,
)
from simulator.world.crashpoints import RequestTrap, never_answered
from simulator.world.server import LATER, WRITES, VaultServer
from simulator.world.trace import Trace

__all__ = ["OPERATIONS", "Link", "LinkWatcher", "Sent"]

OPERATIONS = WRITES | {"find_one", "find_many", "query", "count_documents"}
_STAGES = {
    "refused": "vault unreachable",
    "request_lost": "timed out (partition)",
    "request_late": "timed out",
    "answer_lost": "the answer was lost",
}


_UNKNOWN: Any = object()


class LinkWatcher(Protocol):
    """What a :class:`Link` tells about the requests of its device, as the harness sees them."""

    def sent(self, op: str, collection: str | None, filter: Mapping[str, Any] | None) -> None:
        """A request left: its operation, collection and filter (None when it has none)."""

    def failed(self, op: str, error: VaultError) -> None:
        """The client of a request got ``error`` (an answer, or a :class:`NetworkError`)."""


def _key_of(args: tuple[Any, ...]) -> str | None:
    """The entry key a request is about, for the trace (when its filter names one)."""
    if len(args) >= 2 and (type(args[1]) is dict or isinstance(args[1], Mapping)):
        key = args[1].get("key")
        if isinstance(key, str):
            return key
    return None


def _written_of(op: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """What a write request stores, for the trace: the ``brhVersion`` and ``data`` it sets
    (``update_one``'s ``$set``, ``insert_one``'s document), as ``version`` and ``value``; those
    it does not carry are left out (another implementation's format may have neither)."""
    doc: Any = None
    if op in ("update_one", "update_many") and len(args) >= 3 and isinstance(args[2], Mapping):
        doc = args[2].get("$set")
    elif op == "insert_one" and len(args) >= 2:
        doc = args[1]
    if not isinstance(doc, Mapping):
        return {}
    found = {}
    if "brhVersion" in doc:
        found["version"] = doc["brhVersion"]
    if "data" in doc:
        found["value"] = doc["data"]
    return found


@dataclass
class Sent:
    """One request a device sent, as its link saw it (see ``Link.log``)."""

    at: float
    """Event-loop (virtual) time when it left the device."""
    op: str
    collection: str | None
    key: str | None
    """The entry key its filter names, if any."""
    documents: int | None = None
    """How many documents its answer carried (a read's list; None: no list, or no answer)."""


class Link:
    """Implements :class:`brh.vault.Vault` for one device, through the network to a server."""

    def __init__(
        self,
        server: VaultServer | Vault,
        *,
        device: str = "device",
        rng: random.Random | None = None,
        trace: Trace | None = None,
        timeout: float = 30.0,
        ids: Iterator[int] | None = None,
    ) -> None:
        self.server = server
        self._served: VaultServer | None = server if isinstance(server, VaultServer) else None
        """The :class:`VaultServer` requests go to as timers (None: a plain vault, as sleeps)."""
        self.device = device
        self.rng = rng or random.Random(0)
        self.trace = trace
        self.timeout = timeout
        self._ids = ids if ids is not None else itertools.count(1)
        """Request ids, shared by the links of one world so that they are unique in a trace."""
        self.down = False
        self.partitioned = False
        self.answers_lost = False
        self.request_loss = 0.0
        self.answer_loss = 0.0
        self.lose_answers = 0
        self.latency: float | tuple[float, float] = 0.0
        self.crash_trap: RequestTrap | None = None
        """A crash armed at an upcoming request of this device (see
        :mod:`simulator.world.crashpoints`); None: none."""
        self.requests = 0
        """Requests sent through this link (for the cost checker)."""
        self.log: list[Sent] | None = None
        """When a list, every request sent from now on is appended to it (a knob for tests)."""
        self.sent_at: float | None = None
        """When (event-loop time) the latest request was sent (None before the first)."""
        self.silence = 0.0
        """The longest time between two requests sent through this link so far."""
        self.sent_by: Counter[tuple[str, str]] = Counter()
        """Requests sent, by (operation, collection): what a cost finding names."""
        self.documents_read: Counter[tuple[str, str]] = Counter()
        """Documents the answers of reads carried to the device, by (operation, collection)."""
        self.watcher: LinkWatcher | None = None
        """Told of each request as it is sent and of each failure its client sees (the
        world's black-box checkers listen here)."""
        self.late = 0
        """Requests whose client gave up but which are still on their way to the server (they
        may yet apply, even after the device that sent them crashed)."""
        self._vault_time: float | None = None
        """The vault's clock as the latest answer that reached the device gave it."""
        self._clock: Any = _UNKNOWN
        """What tells the server's time (None: nothing does), once found."""

    def longest_silence(self, now: float | None = None) -> float:
        """The longest time this link sent no request: between two requests, or from the
        latest one to ``now`` (event-loop time; default: the loop's time now)."""
        if self.sent_at is None:
            return 0.0
        if now is None:
            now = asyncio.get_running_loop().time()
        return max(self.silence, now - self.sent_at)

    def vault_time(self) -> float | None:
        """The vault's clock as the ``Date`` of the latest answer this device received gave it
        (:class:`brh.vault.VaultClock`): read when the server made the answer, in whole
        seconds; a lost answer tells nothing."""
        return self._vault_time

    def _server_date(self) -> float | None:
        """The server's clock now, as the Date header of an answer made now would say."""
        clock = self._clock
        if clock is _UNKNOWN:  # found once: a protocol check costs more than a request
            server = self.server
            if isinstance(server, VaultServer):
                server = server.backend if server.live else server.vault
            clock = self._clock = server if isinstance(server, VaultClock) else None
        return None if clock is None else clock.vault_time()

    # -- the Vault protocol: each request goes through _call -------------------------------

    def create_collection(self, name: str) -> Coroutine[Any, Any, None]:
        return self._call("create_collection", (name,), {})

    def delete_collection(self, name: str) -> Coroutine[Any, Any, None]:
        return self._call("delete_collection", (name,), {})

    def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> Coroutine[Any, Any, InsertResult]:
        return self._call("insert_one", (collection, document), {"timestamp": timestamp})

    def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> Coroutine[Any, Any, InsertResult]:
        return self._call(
            "insert_many", (collection, documents), {"ordered": ordered, "timestamp": timestamp}
        )

    def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> Coroutine[Any, Any, UpdateResult]:
        return self._call(
            "update_one", (collection, filter, update), {"upsert": upsert, "timestamp": timestamp}
        )

    def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> Coroutine[Any, Any, UpdateResult]:
        return self._call(
            "update_many", (collection, filter, update), {"upsert": upsert, "timestamp": timestamp}
        )

    def delete_one(self, collection: str, filter: Mapping[str, Any]) -> Coroutine[Any, Any, None]:
        return self._call("delete_one", (collection, filter), {})

    def delete_many(self, collection: str, filter: Mapping[str, Any]) -> Coroutine[Any, Any, None]:
        return self._call("delete_many", (collection, filter), {})

    def find_one(
        self, collection: str, filter: Mapping[str, Any]
    ) -> Coroutine[Any, Any, Document | None]:
        return self._call("find_one", (collection, filter), {})

    def find_many(
        self, collection: str, filter: Mapping[str, Any], *, skip: int = 0, limit: int | None = None
    ) -> Coroutine[Any, Any, list[Document]]:
        return self._call("find_many", (collection, filter), {"skip": skip, "limit": limit})

    def query(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> Coroutine[Any, Any, list[Document]]:
        return self._call(
            "query",
            (collection, filter),
            {"sort": sort, "skip": skip, "limit": limit, "projection": projection},
        )

    def count_documents(
        self, collection: str, filter: Mapping[str, Any], *, skip: int = 0, limit: int | None = None
    ) -> Coroutine[Any, Any, int]:
        return self._call("count_documents", (collection, filter), {"skip": skip, "limit": limit})

    def _leg(self) -> float:
        if isinstance(self.latency, tuple):
            low, high = self.latency
            return low + (high - low) * self.rng.random()  # random.uniform, without the call
        return self.latency

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.trace is not None:
            self.trace.emit(kind, device=self.device, **fields)

    async def _apply(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if isinstance(self.server, VaultServer):
            return await self.server.handle(self.device, op, args, kwargs)
        return await getattr(self.server, op)(*args, **kwargs)

    def _lost(self, rid: int, op: str, stage: str, *, definite: bool) -> NetworkError:
        """Trace a request that got no answer, and the error its client sees."""
        error = "unreachable" if definite else "timeout"
        self._emit(
            "answer", id=rid, ok=False, lost=True, definite=definite, error=error, stage=stage
        )
        lost = NetworkError(f"{op}: {_STAGES[stage]}", definite=definite)
        if self.watcher is not None:
            self.watcher.failed(op, lost)
        return lost

    async def _call(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        rid = next(self._ids)
        self.requests += 1
        sent: Sent | None = None
        if self.log is not None:
            sent = Sent(asyncio.get_running_loop().time(), op, args[0] if args else None, None)
            sent.key = _key_of(args)
            self.log.append(sent)
        now = asyncio.get_running_loop().time()
        if self.sent_at is not None and now - self.sent_at > self.silence:
            self.silence = now - self.sent_at
        self.sent_at = now
        self.sent_by[(op, args[0] if args and isinstance(args[0], str) else "")] += 1
        if self.watcher is not None:
            filter = args[1] if len(args) >= 2 and isinstance(args[1], Mapping) else None
            self.watcher.sent(op, args[0] if args else None, filter)
        trace = self.trace
        if trace is not None and trace.wants("request"):
            trace.emit(
                "request",
                device=self.device,
                id=rid,
                op=op,
                collection=args[0] if args else None,
                key=_key_of(args),
                **_written_of(op, args),
            )
        if self.crash_trap is not None and self._crashes_as_it_leaves(rid):
            return await never_answered()
        if self.down or (self.request_loss and self.rng.random() < self.request_loss):
            raise self._lost(rid, op, "refused", definite=True)
        latency = self.latency
        if type(latency) is tuple:  # _leg(), twice, inlined
            low, high = latency
            draw = self.rng.random
            up = low + (high - low) * draw()
            down = low + (high - low) * draw()
        else:
            up = down = self._leg()
        if self.partitioned:
            await asyncio.sleep(self.timeout)
            raise self._lost(rid, op, "request_lost", definite=False)
        if up >= self.timeout:  # the request arrives after the client gave up
            self.late += 1
            asyncio.get_running_loop().create_task(self._late(rid, up, op, args, kwargs))
            await asyncio.sleep(self.timeout)
            raise self._lost(rid, op, "request_late", definite=False)
        if self._served is None:
            result = await self._exchange(rid, op, args, kwargs, up, down)
            if sent is not None and isinstance(result, list):
                sent.documents = len(result)
            return result
        # The request's journey as timers: it arrives (and applies) ``up`` seconds from now,
        # its answer ``down`` seconds later, and this coroutine waits on one future meanwhile.
        # (Two sleeps around the call would take twice the event-loop iterations.)
        loop = asyncio.get_running_loop()
        flight = _Flight(rid, op, args, kwargs, up, down, loop.create_future())
        flight.timer = loop.call_later(up, self._arrive, flight)
        try:
            answer = await flight.answer
            if sent is not None and isinstance(answer, list):
                sent.documents = len(answer)
            return answer
        finally:
            if flight.timer is not None:
                flight.timer.cancel()  # cancelled while in flight: the rest never happens
            # An error's traceback holds this frame, and the frame the flight whose future holds
            # the error: without this, every failed request would be a reference cycle, left
            # for the garbage collector's rare full collections (memory grew with the run).
            del flight

    def _crashes_as_it_leaves(self, rid: int) -> bool:
        """Count request ``rid`` against the armed crash; whether the device dies as it sends
        it (the request never reaches the vault). A crash after the vault applies it only
        notes the request's id here."""
        trap = self.crash_trap
        assert trap is not None
        if trap.request_id is not None:
            return False  # armed on an earlier request, waiting for the vault to apply it
        trap.remaining -= 1
        if trap.remaining > 0:
            return False
        if trap.applied:
            trap.request_id = rid
            return False
        self.crash_trap = None
        trap.fire()
        return True

    def _crashes_once_applied(self, rid: int) -> bool:
        """Whether the device dies now that the vault applied request ``rid`` (its answer never
        leaves the vault)."""
        trap = self.crash_trap
        if trap is None or trap.request_id != rid:
            return False
        self.crash_trap = None
        trap.fire()
        return True

    def _arrive(self, flight: _Flight) -> None:
        """The request reaches the server (a timer callback ``up`` seconds after sending)."""
        flight.timer = None
        if flight.answer.done():  # the caller was cancelled meanwhile
            return
        server = self._served
        assert server is not None
        try:
            result = server.handle_now(self.device, flight.op, flight.args, flight.kwargs)
        except VaultError as exc:
            self._applied(flight, None, exc)
        except Exception as exc:  # a bug: the client sees it at once, as an awaited call would
            flight.answer.set_exception(exc)
        else:
            if result is LATER:  # a slow vault, an upsert race, a real backend
                flight.timer = asyncio.get_running_loop().create_task(self._serve_slowly(flight))
            else:
                self._applied(flight, result, None)
        del flight  # the error's traceback holds this frame: no cycle through the flight

    async def _serve_slowly(self, flight: _Flight) -> None:
        assert isinstance(self.server, VaultServer)
        try:
            result = await self.server.handle(self.device, flight.op, flight.args, flight.kwargs)
        except VaultError as exc:
            self._applied(flight, None, exc)
        except Exception as exc:
            if not flight.answer.done():
                flight.answer.set_exception(exc)
        else:
            self._applied(flight, result, None)
        del flight  # the error's traceback holds this frame: no cycle through the flight

    def _applied(self, flight: _Flight, result: Any, error: VaultError | None) -> None:
        """The server processed the request: send the answer back, or lose it."""
        trace = self.trace
        if trace is not None and trace.wants("applied"):
            trace.emit(
                "applied",
                device=self.device,
                id=flight.rid,
                ok=error is None,
                error=None if error is None else _describe(error),
            )
        if self.crash_trap is not None and self._crashes_once_applied(flight.rid):
            flight.timer = None
            return  # the device died: its answer is never sent, nobody waits for it any more
        loop = asyncio.get_running_loop()
        if (
            self.answers_lost or self.answer_loss or self.lose_answers  # rarely: draw and count
        ) and self._answer_lost(flight.op, flight.up, flight.down):
            delay = max(0.0, self.timeout - flight.up)
            flight.timer = loop.call_later(delay, self._give_up, flight)
        elif flight.up + flight.down >= self.timeout:
            flight.timer = loop.call_later(self.timeout - flight.up, self._give_up, flight)
        else:
            flight.result, flight.error = result, error
            flight.date = self._server_date()
            flight.timer = loop.call_later(flight.down, self._answer, flight)

    def _answer(self, flight: _Flight) -> None:
        flight.timer = None
        if flight.answer.done():
            return
        error = flight.error
        trace = self.trace
        if trace is not None and trace.wants("answer"):
            trace.emit(
                "answer",
                device=self.device,
                id=flight.rid,
                ok=error is None,
                lost=False,
                error=None if error is None else _describe(error),
            )
        if flight.date is not None:
            self._vault_time = flight.date
        if error is not None:
            if self.watcher is not None:
                self.watcher.failed(flight.op, error)
            flight.answer.set_exception(error)
        else:
            self._read(flight.op, flight.args, flight.result)
            flight.answer.set_result(flight.result)

    def _give_up(self, flight: _Flight) -> None:
        flight.timer = None
        if not flight.answer.done():
            flight.answer.set_exception(
                self._lost(flight.rid, flight.op, "answer_lost", definite=False)
            )

    def _answer_lost(self, op: str, up: float, down: float) -> bool:
        """Whether the answer of an applied request never reaches the client (draws at once)."""
        lose = self.answers_lost or (self.answer_loss and self.rng.random() < self.answer_loss)
        if op in WRITES and self.lose_answers > 0:
            self.lose_answers -= 1
            lose = True
        return bool(lose) or up + down >= self.timeout

    async def _exchange(
        self,
        rid: int,
        op: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        up: float,
        down: float,
    ) -> Any:
        """The request's journey as sleeps, for a server that is a plain vault."""
        await asyncio.sleep(up)
        error: VaultError | None = None
        result: Any = None
        try:
            result = await self._apply(op, args, kwargs)
        except VaultError as exc:
            error = exc
        date = self._server_date()
        self._emit("applied", id=rid, ok=error is None, error=_describe(error))
        if self.crash_trap is not None and self._crashes_once_applied(rid):
            return await never_answered()
        if self._answer_lost(op, up, down):
            await asyncio.sleep(max(0.0, self.timeout - up))
            raise self._lost(rid, op, "answer_lost", definite=False)
        await asyncio.sleep(down)
        self._emit("answer", id=rid, ok=error is None, lost=False, error=_describe(error))
        if date is not None:
            self._vault_time = date
        if error is not None:
            if self.watcher is not None:
                self.watcher.failed(op, error)
            raise error
        self._read(op, args, result)
        return result

    def _read(self, op: str, args: tuple[Any, ...], result: Any) -> None:
        """Count the documents a read's answer carries (see :attr:`documents_read`)."""
        if op in ("query", "find_many") and isinstance(result, list):
            count = len(result)
        elif op == "find_one" and result is not None:
            count = 1
        else:
            return
        if count:
            self.documents_read[(op, args[0] if args and isinstance(args[0], str) else "")] += count

    async def _late(
        self, rid: int, delay: float, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            await asyncio.sleep(delay)
            await self._apply(op, args, kwargs)
            self._emit("applied", id=rid, ok=True, error=None, late=True)
        except VaultError as exc:
            self._emit("applied", id=rid, ok=False, error=_describe(exc), late=True)
        finally:
            self.late -= 1


class _Flight:
    """One request on its way through the network, and the future its client awaits."""

    __slots__ = (
        "answer",
        "args",
        "date",
        "down",
        "error",
        "kwargs",
        "op",
        "result",
        "rid",
        "timer",
        "up",
    )

    def __init__(
        self,
        rid: int,
        op: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        up: float,
        down: float,
        answer: asyncio.Future[Any],
    ) -> None:
        self.rid = rid
        self.op = op
        self.args = args
        self.kwargs = kwargs
        self.up = up
        self.down = down
        self.answer = answer
        self.timer: asyncio.TimerHandle | asyncio.Task[None] | None = None
        """What happens next to the request: cancelled if the client stops waiting."""
        self.result: Any = None
        self.error: VaultError | None = None
        self.date: float | None = None
        """The server's clock when it made the answer (its Date header)."""


def _describe(error: VaultError | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"
