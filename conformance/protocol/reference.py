"""The reference helper as a protocol implementation: ``python -m conformance.protocol.reference``.

It runs :class:`brh.BackupRestoreHelper` (its SQLite store in the directory the harness names)
the way any implementation must behave (see ``PROTOCOL.md``):

* its event loop is the simulator's :class:`~simulator.timeloop.VirtualTimeLoop`, which here
  never moves time by itself: each message's ``mono`` becomes its time (``set_time``) and
  ``run_until_idle`` runs what the message made ready and due; its clock is the last ``now``
  received; its random generator is seeded with the hello's ``seed``;
* the vault is :class:`RemoteVault`: each call is a ``vault`` request, answered by a ``reply``;
* each app callback is a ``callback`` request whose reply is the app's answer;
* each command runs as its own task and answers with a ``result`` when it is done; after each
  message it runs until every task waits, then writes ``idle`` with its earliest timer;
* its hello announces the optional command ``holds`` (one keyed lookup for the harness's
  callback checks); ``--no-optional-commands`` announces none, so the harness falls back to
  ``local_entries`` as it does for an implementation without it;
* ``--factory package.module:factory`` builds the helper with that factory instead (one that
  returns :class:`simulator.impl.ReferenceHelper`, as every mutant of
  :mod:`conformance.implementations.mutants` does), so a buggy variant of brh runs behind the
  protocol too: ``--brh-cmd`` and ``brh-sim --cmd`` can be seen failing.

Logs go to stderr (``--debug`` for brh's step-by-step log); stdout carries protocol lines only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import random
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import brh
from brh import BackupRestoreHelper, Entry, UnknownContextError
from brh.errors import ReentrantCallError
from brh.vault import Document, InsertResult, SortSpec, UpdateResult
from conformance.protocol.errors import (
    command_error_to_wire,
    request_error_from_wire,
)
from conformance.protocol.messages import PROTOCOL_VERSION, MessageError, parse, render
from simulator.impl import Factory, FactoryError, Installation, ReferenceHelper, load_factory
from simulator.timeloop import VirtualTimeLoop

__all__ = [
    "OPTIONAL_COMMANDS",
    "Channel",
    "Reference",
    "RemoteVault",
    "Requests",
    "main",
    "serve",
]

_log = logging.getLogger("conformance.protocol.reference")

_WRITES = frozenset({"upsert", "delete", "wipe", "sync"})
"""Commands refused when made from inside a callback (SPEC CB-8)."""


class ProtocolViolation(RuntimeError):
    """The harness sent something this implementation cannot accept."""


class Channel:
    """Protocol lines in (from the harness) and out (to it), each one checked."""

    def __init__(self, incoming: IO[bytes], outgoing: IO[bytes]) -> None:
        self._in = incoming
        self._out = outgoing

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in self._in:
            yield parse(line, "harness")

    def send(self, message: Mapping[str, Any]) -> None:
        self._out.write(render(message, "implementation"))

    def flush(self) -> None:
        self._out.flush()


class Requests:
    """This implementation's requests to the harness that wait for a reply, by id."""

    def __init__(self, loop: asyncio.AbstractEventLoop, channel: Channel) -> None:
        self._loop = loop
        self._channel = channel
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._abandoned: set[int] = set()
        """Requests whose caller stopped waiting (cancelled): their replies are dropped."""
        self.vault_date: float | None = None
        """The vault's clock as the latest reply that told it gave it (``vault_date``)."""

    async def ask(self, message: Mapping[str, Any]) -> Any:
        """Send a request; its reply's value (or the error it stands for, raised)."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting[request_id] = future
        self._channel.send({"type": message["type"], "id": request_id, **message})
        try:
            return await future
        except asyncio.CancelledError:
            self._abandoned.add(request_id)
            raise
        finally:
            self._waiting.pop(request_id, None)

    def answer(self, reply: Mapping[str, Any]) -> None:
        request_id = reply["id"]
        if "vault_date" in reply:
            self.vault_date = float(reply["vault_date"])
        future = self._waiting.pop(request_id, None)
        if future is None:
            if request_id in self._abandoned:
                self._abandoned.discard(request_id)
                return
            raise ProtocolViolation(f"a reply to request {request_id}, which is not waiting")
        if reply["ok"]:
            future.set_result(reply["value"])
        else:
            future.set_exception(request_error_from_wire(reply["error"]))


class RemoteVault:
    """A :class:`brh.vault.Vault` whose every call is a ``vault`` request to the harness."""

    def __init__(self, requests: Requests) -> None:
        self._requests = requests

    async def _call(self, op: str, **args: Any) -> Any:
        return await self._requests.ask({"type": "vault", "op": op, "args": args})

    def vault_time(self) -> float | None:
        """The vault's clock as the harness last told it (:class:`brh.vault.VaultClock`)."""
        return self._requests.vault_date

    async def create_collection(self, name: str) -> None:
        await self._call("create_collection", name=name)

    async def delete_collection(self, name: str) -> None:
        await self._call("delete_collection", name=name)

    async def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        value = await self._call(
            "insert_one", collection=collection, document=document, timestamp=timestamp
        )
        return InsertResult(value["acknowledged"], list(value["inserted_ids"]))

    async def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        value = await self._call(
            "insert_many",
            collection=collection,
            documents=list(documents),
            ordered=ordered,
            timestamp=timestamp,
        )
        return InsertResult(value["acknowledged"], list(value["inserted_ids"]))

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        return _update_result(
            await self._call(
                "update_one",
                collection=collection,
                filter=filter,
                update=update,
                upsert=upsert,
                timestamp=timestamp,
            )
        )

    async def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        return _update_result(
            await self._call(
                "update_many",
                collection=collection,
                filter=filter,
                update=update,
                upsert=upsert,
                timestamp=timestamp,
            )
        )

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._call("delete_one", collection=collection, filter=filter)

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        await self._call("delete_many", collection=collection, filter=filter)

    async def find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        value: Document | None = await self._call("find_one", collection=collection, filter=filter)
        return value

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        value: list[Document] = await self._call(
            "find_many", collection=collection, filter=filter, skip=skip, limit=limit
        )
        return value

    async def query(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        value: list[Document] = await self._call(
            "query",
            collection=collection,
            filter=filter,
            sort=None if sort is None else [[name, order] for name, order in sort],
            skip=skip,
            limit=limit,
            projection=projection,
        )
        return value

    async def count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        value: int = await self._call(
            "count_documents", collection=collection, filter=filter, skip=skip, limit=limit
        )
        return value


def _update_result(value: Mapping[str, Any]) -> UpdateResult:
    return UpdateResult(
        value["acknowledged"],
        value["matched_count"],
        value["modified_count"],
        value["upserted_id"],
    )


def entry_to_wire(entry: Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "data": entry.data,
        "creationDate": entry.creation_date,
        "modificationDate": entry.modification_date,
        "deletionDate": entry.deletion_date,
    }


class Reference:
    """brh behind the protocol: commands in, results, vault and callback requests out."""

    def __init__(
        self,
        hello: Mapping[str, Any],
        channel: Channel,
        loop: VirtualTimeLoop,
        *,
        debug: bool,
        factory: Factory | None = None,
    ) -> None:
        self.channel = channel
        self.loop = loop
        self.now: float = hello["now"]
        self.requests = Requests(loop, channel)
        self.contexts: set[str] = set()
        self.closed = False
        store = Path(hello["store"])
        if factory is None:
            self.helper = BackupRestoreHelper(
                RemoteVault(self.requests),
                store / "brh.sqlite3",
                device_id=hello["device_id"],
                clock=lambda: self.now,
                rng=random.Random(hello["seed"]),
                debug=debug,
            )
        else:
            self.helper = _built(factory, hello, RemoteVault(self.requests), self, debug)
        self._commands: dict[str, Callable[..., Awaitable[Any]]] = {
            "add_context": self.add_context,
            "upsert": self.upsert,
            "delete": self.delete,
            "sync": self.sync,
            "wipe": self.wipe,
            "get": self.get,
            "local_entries": self.local_entries,
            "holds": self.holds,
            "close": self.close,
        }

    # -- messages ---------------------------------------------------------------------------

    def receive(self, message: Mapping[str, Any]) -> None:
        """Take one message from the harness (the caller then runs the loop until idle)."""
        if message["mono"] < self.loop.time():
            raise ProtocolViolation(
                f"mono went backwards: {message['mono']!r} after {self.loop.time()!r}"
            )
        self.now = message["now"]
        self.loop.set_time(message["mono"])
        kind = message["type"]
        if kind == "command":
            self.loop.create_task(self.run_command(message))
        elif kind == "reply":
            self.requests.answer(message)
        elif kind == "hello":
            raise ProtocolViolation("a second hello")
        # a tick only moves the time: the loop then runs the timers due

    async def run_command(self, message: Mapping[str, Any]) -> None:
        name, args = message["name"], message["args"]
        try:
            if "in_callback" in message and name in _WRITES:
                raise ReentrantCallError(
                    f"{name} was called from inside the app's callback (request "
                    f"{message['in_callback']}); callbacks must only update the app's own "
                    "model: the helper records the remote change itself once the callback "
                    "returns True"
                )
            value = await self._commands[name](**args)
        except Exception as exc:
            if not isinstance(exc, brh.BrhError):
                _log.exception("command %s failed", name)
            renamed = {"name": "context"} if name == "add_context" else None
            error = command_error_to_wire(exc, renamed)
            self.channel.send({"type": "result", "id": message["id"], "ok": False, "error": error})
            return
        self.channel.send({"type": "result", "id": message["id"], "ok": True, "value": value})

    # -- commands ---------------------------------------------------------------------------

    async def add_context(self, context: str) -> None:
        self.helper.add_sync_context(
            context,
            self._callback(context, "insert"),
            self._callback(context, "modify"),
            self._callback(context, "delete"),
        )
        self.contexts.add(context)

    def _callback(self, context: str, kind: str) -> Callable[[Entry], Awaitable[bool]]:
        async def callback(entry: Entry) -> bool:
            message = {
                "type": "callback",
                "context": context,
                "kind": kind,
                "entry": entry_to_wire(entry),
            }
            return (await self.requests.ask(message)) is True

        return callback

    async def upsert(self, context: str, key: str, data: Any) -> None:
        await self.helper.upsert_database_entry(context, key, data)

    async def delete(self, context: str, key: str, locally_only: bool = False) -> None:
        await self.helper.delete_database_entry(context, key, locally_only=locally_only)

    async def sync(self, full: bool = False) -> bool:
        return (await self.helper.sync(full=full)).completed

    async def wipe(self, context: str) -> None:
        await self.helper.wipe_local_context_data(context)

    async def get(self, context: str, key: str) -> dict[str, Any] | None:
        entry = await self.helper.get_database_entry(context, key)
        return None if entry is None else entry_to_wire(entry)

    async def local_entries(self, context: str) -> dict[str, Any]:
        if self.helper.closed:
            raise brh.HelperClosedError("local_entries() was called after close()")
        if context not in self.contexts:
            raise UnknownContextError(context)
        return {record.key: record.data for record in self.helper.store.entries(context)}

    async def holds(self, context: str, key: str) -> bool:
        """The optional ``holds`` command: one indexed lookup in the local store."""
        if self.helper.closed:
            raise brh.HelperClosedError("holds() was called after close()")
        if context not in self.contexts:
            raise UnknownContextError(context)
        state = self.helper.store.state(context, key)
        return state is not None and not state.deleted

    async def close(self) -> None:
        await self.helper.close()
        self.closed = True


def _built(
    factory: Factory,
    hello: Mapping[str, Any],
    vault: RemoteVault,
    implementation: Reference,
    debug: bool,
) -> BackupRestoreHelper:
    """The helper ``factory`` builds for this installation (``--factory``): it must be the
    reference's wrapper, whose :class:`brh.BackupRestoreHelper` this server drives."""
    installation = Installation(
        vault=vault,
        store=Path(hello["store"]),
        clock=lambda: implementation.now,
        device_id=hello["device_id"],
        rng=random.Random(hello["seed"]),
        options=MappingProxyType({"debug": debug}),
    )
    helper = factory(installation)
    if not isinstance(helper, ReferenceHelper):
        raise FactoryError(
            f"--factory: the factory returned a {type(helper).__name__}, not a "
            "simulator.impl.ReferenceHelper (this server drives brh itself)"
        )
    return helper.brh


OPTIONAL_COMMANDS = ("holds",)
"""The optional commands this implementation answers, announced in its hello."""


def serve(
    incoming: IO[bytes],
    outgoing: IO[bytes],
    *,
    debug: bool = False,
    optional_commands: Sequence[str] = OPTIONAL_COMMANDS,
    factory: Factory | None = None,
) -> int:
    """Speak the protocol over these streams until ``close`` or the end of input; exit status.

    ``optional_commands``: the optional commands to announce in the hello (``()`` makes it
    behave, to the harness, like an implementation that answers none). ``factory``: build the
    helper with it (``--factory``; it must return a :class:`simulator.impl.ReferenceHelper`)."""
    channel = Channel(incoming, outgoing)
    messages = iter(channel)
    try:
        hello = next(messages, None)
        if hello is None:
            return 0
        if hello["type"] != "hello":
            raise ProtocolViolation(f"the first message is {hello['type']!r}, not 'hello'")
        if hello["protocol"] != PROTOCOL_VERSION:
            _log.error(
                "the harness speaks protocol %s; this implementation speaks %s",
                hello["protocol"],
                PROTOCOL_VERSION,
            )
            return 2
        loop = VirtualTimeLoop(hello["mono"])
        asyncio.set_event_loop(loop)
        implementation = Reference(hello, channel, loop, debug=debug, factory=factory)
        hello_back: dict[str, Any] = {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "implementation": {"name": "brh", "version": brh.__version__},
        }
        if optional_commands:
            hello_back["optional_commands"] = list(optional_commands)
        channel.send(hello_back)
        while True:
            channel.send({"type": "idle", "wake_at": loop.run_until_idle()})
            channel.flush()
            if implementation.closed:
                return 0
            message = next(messages, None)
            if message is None:  # the harness went away: stop as a crash would
                return 0
            implementation.receive(message)
    except (MessageError, ProtocolViolation) as exc:
        _log.error("protocol error: %s", exc)
        return 2
    except FactoryError as exc:  # --factory built something this server cannot drive
        _log.error("%s", exc)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.protocol.reference",
        description="The reference helper (brh), speaking the brh helper protocol on "
        "stdin/stdout (see PROTOCOL.md).",
    )
    parser.add_argument("--debug", action="store_true", help="log every step to stderr")
    parser.add_argument(
        "--no-optional-commands",
        action="store_true",
        help="announce no optional command in the hello (to see the harness fall back to "
        "what every implementation answers)",
    )
    parser.add_argument(
        "--factory",
        metavar="MODULE:FACTORY",
        help="build the helper with this factory, one returning simulator.impl.ReferenceHelper "
        "(e.g. conformance.implementations.mutants:echo_own_writes, to see a bug caught "
        "over the protocol)",
    )
    options = parser.parse_args(argv)
    factory = None
    if options.factory is not None:
        try:
            factory = load_factory(options.factory)
        except FactoryError as exc:
            parser.error(f"--factory: {exc}")  # exits 2, before the hello
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if options.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # stdout belongs to the protocol: keep a private handle on it and point file descriptor 1
    # at stderr, so that a stray print (ours or a library's) cannot corrupt the stream.
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(
        sys.stdin.buffer,
        protocol_out,
        debug=options.debug,
        optional_commands=() if options.no_optional_commands else OPTIONAL_COMMANDS,
        factory=factory,
    )


if __name__ == "__main__":
    sys.exit(main())
