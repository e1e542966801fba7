"""The harness side of the protocol: any implementation, run as a process, as a simulator Helper.

:class:`ProcessHelper` implements :class:`simulator.impl.Helper` by speaking the protocol of
``PROTOCOL.md`` to a subprocess; :func:`command_factory` turns a command line into the factory
a :class:`simulator.world.World` (or the conformance plugin's ``--brh-cmd``) needs.

Turns keep virtual time exact. Each message to the process starts a turn: the harness writes
it, then reads the process's stdout *synchronously* until ``idle``, so the virtual clock cannot
move while the implementation computes. The requests read during the turn are then served
asynchronously on the virtual loop: vault calls go through the device's (simulated) link and
take virtual time, callbacks run the app's callback; each answer is a ``reply``, which starts
another turn. The ``wake_at`` of the last ``idle`` is one timer on the loop (``call_at``) that
sends a ``tick``.

Real time appears in one place only: a watchdog on each turn (``timeout``, 30 s by default), so
that a hung implementation fails the run with a clear error instead of hanging it. It never
changes what happens in a run that completes. The process and its pipes, where the watchdog
runs, are :mod:`conformance.protocol.process`.

A protocol violation (a malformed line, an unknown id, a process that exits mid-turn or
overruns the watchdog) is a :class:`ProtocolError`: the process is killed, every command
waiting for a result fails with it, and every later call raises it. Its message names the
command line, the device, the offending message type and field, and ends with the tail of the
implementation's stderr, which is kept in ``<store>.stderr.log`` beside the store directory.
With ``log_traffic``, every protocol line is kept in ``<store>.traffic.log`` too.

Optional commands (``holds``) are sent only to an implementation whose hello announced them:
:meth:`ProcessHelper.holds` otherwise answers from ``local_entries``, which every implementation
speaks, so an implementation that predates them keeps working. Helper options
(``Installation.options``) do not cross the protocol: a process runs on its own defaults.

``close()`` (the simulator's crash) kills the process with SIGKILL: a crash is not announced.
:meth:`ProcessHelper.stop` is the orderly stop (the ``close`` command, then a clean exit).
:meth:`ProcessHelper.crash_after_lines` arms a crash inside a turn: the process is killed right
after the harness reads the k-th line it writes, before the harness acts on that line
(``world.crash_at(device, line=k)``, see :mod:`simulator.world.crashpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import math
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brh import HelperClosedError, InvalidArgumentError
from brh.vault import InsertResult, NetworkError, UpdateResult, Vault, VaultClock, VaultError
from conformance.protocol.errors import (
    command_error_from_wire,
    request_error_to_wire,
)
from conformance.protocol.messages import (
    COMMANDS,
    PROTOCOL_VERSION,
    SCHEMA,
    VAULT_OPS,
    MessageError,
    is_finite_json,
    parse,
    render,
    to_wire,
)
from conformance.protocol.process import ImplementationProcess, PipeFailure, ProtocolError
from conformance.protocol.validator import Violation, validate
from simulator.impl import Callback, Helper, Installation

__all__ = ["DEFAULT_TIMEOUT", "CommandFactory", "ProcessHelper", "ProtocolError", "command_factory"]

DEFAULT_TIMEOUT = 30.0
"""Real seconds a turn (or the start, up to the first idle) may take before the run fails."""

STALLED_TICKS = 1000
"""Ticks in a row that do not move the monotonic clock before the harness gives up: a timer the
implementation keeps asking for but never runs would otherwise spin forever."""

_KINDS = ("insert", "modify", "delete")

_OPTIONAL = frozenset(name for name, command in COMMANDS.items() if command.get("optional"))
"""Commands sent only to an implementation whose hello lists them in ``optional_commands``."""

_IN_CALLBACK: contextvars.ContextVar[tuple[ProcessHelper, int] | None] = contextvars.ContextVar(
    "conformance_protocol_in_callback", default=None
)
"""Set while the app's callback for a request runs (and inherited by the tasks it starts)."""


def _positional_parameters() -> dict[str, tuple[str, ...]]:
    """Per vault operation, the arguments brh.vault.Vault takes positionally (the rest are
    keyword-only): the simulated link traces the collection and key from positional ones."""
    table = {}
    for op in VAULT_OPS:
        signature = inspect.signature(getattr(Vault, op))
        table[op] = tuple(
            name
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
    return table


_POSITIONAL = _positional_parameters()


@dataclass
class _Pending:
    name: str
    args: Mapping[str, Any]
    future: asyncio.Future[Any]


def _fail_quietly(future: asyncio.Future[Any], error: BaseException) -> None:
    """Fail a future that may have nobody awaiting it (the error is recorded elsewhere), without
    asyncio logging "exception was never retrieved" for it."""
    if not future.done():
        future.set_exception(error)
        future.exception()


class _Killed(Exception):
    """An armed crash killed the process in the middle of a turn: the turn ends there."""


class ProcessHelper:
    """:class:`simulator.impl.Helper` over the protocol, the implementation in a subprocess.

    Build it inside a running event loop (the simulator's virtual-time loop): its clock is the
    loop's (``mono``) and the installation's (``now``).
    """

    def __init__(
        self,
        installation: Installation,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        log_traffic: bool = False,
    ) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "ProcessHelper must be created inside a running event loop (the simulator's)"
            ) from None
        self.installation = installation
        self.argv = list(argv)
        self.timeout = timeout
        self.failure: ProtocolError | None = None
        """The protocol violation that stopped this process, if one did."""
        self.implementation: dict[str, Any] = {}
        """What the implementation said about itself in its hello (name, version)."""
        self.optional_commands: frozenset[str] = frozenset()
        """The optional commands (``holds``) its hello announced and this harness knows; the
        harness sends no other optional command."""
        self.closed = False
        self._ids = itertools.count(1)
        self._commands: dict[int, _Pending] = {}
        self._requests: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._callbacks: dict[str, tuple[Callback, Callback, Callback]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._wake_at: float | None = None
        self._mono = -math.inf
        self._stalled = 0
        self._in_turn = False
        self._crash_after: int | None = None
        """Lines (idle not counted) the process may still write before an armed crash kills
        it; None: no crash armed."""
        self._on_crash: Callable[[], None] | None = None
        installation.store.mkdir(parents=True, exist_ok=True)
        self.pipe = ImplementationProcess(
            self.argv, installation.store, timeout=timeout, env=env, log_traffic=log_traffic
        )
        """The implementation's process and its pipes (a new one for each restart)."""
        self.process = self.pipe.process
        """The implementation's process."""
        self.stderr_path = self.pipe.stderr_path
        """Where the implementation's stderr goes (appended to across restarts)."""
        self.traffic_path = self.pipe.traffic_path
        """With ``log_traffic``: where every protocol line is kept."""
        self._hello()

    def __repr__(self) -> str:
        return f"ProcessHelper({shlex.join(self.argv)!r}, device={self.installation.device_id!r})"

    # -- the process ------------------------------------------------------------------------

    def _failed(self, problem: str) -> ProtocolError:
        """Record a protocol violation: the process is killed, waiting commands fail with it."""
        if self.failure is not None:
            return self.failure
        message = (
            f"implementation {shlex.join(self.argv)!r} (device {self.installation.device_id!r}):"
            f" {problem}"
        )
        tail = self.pipe.stderr_tail()
        if tail:
            message += f"\n  its stderr ({self.stderr_path}) ends with:\n{tail}"
        self.failure = ProtocolError(message)
        self._shutdown()
        for pending in self._commands.values():
            _fail_quietly(pending.future, self.failure)
        self._commands.clear()
        return self.failure

    def _shutdown(self) -> None:
        """Kill the process (if alive), stop its timer and the requests being served."""
        self.pipe.kill()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        current = asyncio.current_task(self._loop) if self._loop.is_running() else None
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self.pipe.close()

    # -- turns ------------------------------------------------------------------------------

    def _usable(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.closed:
            raise HelperClosedError(
                f"device {self.installation.device_id!r}: the implementation's process was "
                "stopped; restart the device to start a new one"
            )

    def _stamp(self, message: dict[str, Any], at_least: float = -math.inf) -> dict[str, Any]:
        """Add the clocks: ``mono`` never decreases (and a tick's reaches its wake_at)."""
        mono = max(self._mono, self._loop.time(), at_least)
        self._mono = mono
        return {**message, "now": self.installation.clock(), "mono": mono}

    def _turn(self, message: dict[str, Any]) -> None:
        """Send one message and handle what the implementation writes until its idle."""
        if message["type"] != "tick":
            self._stalled = 0  # the implementation got something to do: not a stalled timer
        if self._in_turn:
            raise RuntimeError("ProcessHelper: a turn started inside another turn (a harness bug)")
        self._usable()
        self._in_turn = True
        try:
            self.pipe.check_quiet()
            deadline = time.monotonic() + self.timeout
            self.pipe.write(render(message, "harness"), deadline)
            self._until_idle(deadline)
        except PipeFailure as exc:
            raise self._failed(exc.problem) from None
        except _Killed:
            return  # an armed crash: the process is gone, what it wrote after is ignored
        finally:
            self._in_turn = False

    def _until_idle(self, deadline: float) -> None:
        """Handle the implementation's messages up to the idle that ends the turn."""
        while True:
            message = self._receive(self.pipe.read_line(deadline, "idle"))
            if message["type"] == "idle":
                self._schedule(message["wake_at"])
                return
            if self._crash_after is not None:
                self._crash_after -= 1
                if self._crash_after == 0:
                    self._crash_now()
            self._dispatch(message)

    # -- crashes inside a turn --------------------------------------------------------------

    def crash_after_lines(self, lines: int, on_crash: Callable[[], None]) -> None:
        """Arm a crash: kill the process right after the harness reads the ``lines``-th line
        it writes from now (idle lines not counted, so it dies inside a turn), before the
        harness acts on that line; then call ``on_crash()`` (the simulator's device learns
        it died). Replaces a crash armed before."""
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
            raise ValueError(f"crash_after_lines: lines must be an integer >= 1, got {lines!r}")
        self._usable()
        self._crash_after = lines
        self._on_crash = on_crash

    def disarm_crash(self) -> None:
        """Forget the crash armed by :meth:`crash_after_lines`, if it has not fired."""
        self._crash_after = None
        self._on_crash = None

    def _crash_now(self) -> None:
        on_crash = self._on_crash
        self.disarm_crash()
        self.kill()
        if on_crash is not None:
            on_crash()
        raise _Killed

    def kill(self) -> None:
        """A crash, at once and synchronously: SIGKILL; commands still waiting learn it (a
        waiting ``sync`` answers False). :meth:`close` does the same from a coroutine."""
        if not self.closed:
            self._end()

    def _receive(self, line: bytes) -> dict[str, Any]:
        try:
            return parse(line, "implementation")
        except MessageError as exc:
            raise self._failed(str(exc)) from None

    def _hello(self) -> None:
        message = {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "device_id": self.installation.device_id,
            "store": str(self.installation.store.resolve()),
            "seed": self.installation.rng.getrandbits(32),
        }
        self._in_turn = True
        try:
            deadline = time.monotonic() + self.timeout
            self.pipe.write(render(self._stamp(message), "harness"), deadline)
            first = self._receive(self.pipe.read_line(deadline, "its hello"))
            if first["type"] != "hello":
                raise self._failed(f"its first message is {first['type']!r}; it must be 'hello'")
            if first["protocol"] != PROTOCOL_VERSION:
                raise self._failed(
                    f"it speaks protocol version {first['protocol']}; this harness speaks "
                    f"{PROTOCOL_VERSION}"
                )
            self.implementation = dict(first["implementation"])
            self.optional_commands = frozenset(first.get("optional_commands", ())) & _OPTIONAL
            self._until_idle(deadline)
        except PipeFailure as exc:
            raise self._failed(exc.problem) from None
        finally:
            self._in_turn = False

    def _schedule(self, wake_at: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_at = wake_at
        if wake_at is not None:
            self._timer = self._loop.call_at(wake_at, self._tick, context=contextvars.Context())

    def _tick(self) -> None:
        self._timer = None
        wake_at = self._wake_at if self._wake_at is not None else -math.inf
        before = self._mono
        message = self._stamp({"type": "tick"}, at_least=wake_at)
        self._stalled = self._stalled + 1 if message["mono"] == before else 0
        if self._stalled >= STALLED_TICKS:
            self._failed(
                f"asked {STALLED_TICKS} times in a row to be woken at {wake_at!r}, which is not "
                f"later than the time it was already told (mono {message['mono']!r}): a timer "
                "that is due must run on the tick, and a later idle must not ask for it again"
            )
            return
        # A violation is recorded in self.failure: the next call raises it.
        with contextlib.suppress(ProtocolError):
            self._turn(message)

    # -- what the implementation writes -------------------------------------------------------

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "result":
            self._result(message)
        elif kind in ("vault", "callback"):
            request_id = message["id"]
            if request_id in self._requests:
                raise self._failed(
                    f"sent a {kind!r} request with id {request_id}, which is already waiting "
                    "for its reply (ids must be unique among unanswered requests)"
                )
            if kind == "callback" and message["context"] not in self._callbacks:
                raise self._failed(
                    f"asked for a callback of context {message['context']!r}, which was never "
                    f"added (contexts: {sorted(self._callbacks)})"
                )
            self._requests.add(request_id)
            serve = self._serve_vault(message) if kind == "vault" else self._serve_callback(message)
            task = self._loop.create_task(serve, context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            raise self._failed(f"sent {kind!r} in the middle of a session")

    def _result(self, message: dict[str, Any]) -> None:
        pending = self._commands.pop(message["id"], None)
        if pending is None:
            raise self._failed(
                f"sent a result for command {message['id']}, which is not waiting for one"
            )
        if not message["ok"]:
            error = command_error_from_wire(message["error"], pending.args)
            pending.future.set_exception(error)
            return
        try:
            # Command values are checked at the top level only (null, boolean, object), so the
            # decoded value will do: no need to walk it back to its wire form.
            validate(message["value"], COMMANDS[pending.name]["value"], SCHEMA, "value")
        except Violation as exc:
            raise self._failed(
                f"sent a 'result' message for {pending.name!r} that breaks the protocol: "
                f"{exc.path}: {exc.problem}"
            ) from None
        pending.future.set_result(message["value"])

    async def _serve_vault(self, request: dict[str, Any]) -> None:
        op, args = request["op"], dict(request["args"])
        if args.get("sort") is not None:
            args["sort"] = [tuple(pair) for pair in args["sort"]]
        positional = [args.pop(name) for name in _POSITIONAL[op] if name in args]
        vault = self.installation.vault
        try:
            value = await getattr(vault, op)(*positional, **args)
        except VaultError as exc:
            body = {"ok": False, "error": request_error_to_wire(exc), **_vault_date(vault, exc)}
            self._reply(request["id"], body)
            return
        except Exception as exc:  # not the implementation's fault, but the run cannot go on
            self._failed(f"the harness's vault raised on {op} (a harness bug): {exc!r}")
            assert self.failure is not None
            self.failure.__cause__ = exc
            return
        if isinstance(value, InsertResult):
            value = {"acknowledged": value.acknowledged, "inserted_ids": value.inserted_ids}
        elif isinstance(value, UpdateResult):
            value = {
                "acknowledged": value.acknowledged,
                "matched_count": value.matched_count,
                "modified_count": value.modified_count,
                "upserted_id": value.upserted_id,
            }
        try:
            validate(to_wire(value), VAULT_OPS[op]["value"], SCHEMA, "value")
        except Violation as exc:
            self._failed(f"the harness's vault answered {op} with {exc} (a harness bug)")
            return
        self._reply(request["id"], {"ok": True, "value": value, **_vault_date(vault, None)})

    async def _serve_callback(self, request: dict[str, Any]) -> None:
        callback = self._callbacks[request["context"]][_KINDS.index(request["kind"])]
        token = _IN_CALLBACK.set((self, request["id"]))
        try:
            outcome = callback(request["entry"])
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception as exc:
            body: dict[str, Any] = {"ok": False, "error": request_error_to_wire(exc)}
        else:
            body = {"ok": True, "value": outcome is True}
        finally:
            _IN_CALLBACK.reset(token)
        self._reply(request["id"], body)

    def _reply(self, request_id: int, body: dict[str, Any]) -> None:
        self._requests.discard(request_id)
        if self.failure is not None or self.closed:
            return  # the process is gone; nobody waits for this answer any more
        # A violation is recorded in self.failure: the commands waiting and the next call raise it.
        with contextlib.suppress(ProtocolError):
            self._turn(self._stamp({"type": "reply", "id": request_id, **body}))

    # -- commands ---------------------------------------------------------------------------

    def _send_command(self, name: str, args: dict[str, Any]) -> _Pending:
        self._usable()
        if name in _OPTIONAL and name not in self.optional_commands:
            raise RuntimeError(
                f"ProcessHelper: the optional command {name!r} was about to be sent to an "
                "implementation that did not announce it (a harness bug)"
            )
        try:
            validate(args, COMMANDS[name]["args"], SCHEMA)
        except Violation as exc:
            argument = exc.path.split(".")[0].split("[")[0] or "args"
            raise InvalidArgumentError(
                argument, f"{exc.problem} (the protocol cannot carry it to the implementation)"
            ) from None
        if not is_finite_json(args):
            raise InvalidArgumentError(
                "data", "is not JSON (NaN, infinity, a non-string key or a non-JSON type)"
            )
        command_id = next(self._ids)
        pending = _Pending(name, args, self._loop.create_future())
        self._commands[command_id] = pending
        message: dict[str, Any] = {"type": "command", "id": command_id, "name": name, "args": args}
        caller = _IN_CALLBACK.get()
        if caller is not None and caller[0] is self:
            message["in_callback"] = caller[1]
        self._turn(self._stamp(message))
        return pending

    def _immediate(self, name: str, args: dict[str, Any]) -> Any:
        """A command answered within its own turn (add_context, get, local_entries, holds,
        close)."""
        pending = self._send_command(name, args)
        if not pending.future.done():
            self._commands = {k: v for k, v in self._commands.items() if v is not pending}
            raise self._failed(
                f"did not answer the {name!r} command within its turn (before its idle); "
                f"{name} must be answered at once, without waiting for any reply"
            )
        return pending.future.result()

    async def _command(self, name: str, args: dict[str, Any]) -> Any:
        return await self._send_command(name, args).future

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        for argument, callback in (
            ("on_insert", on_insert),
            ("on_modify", on_modify),
            ("on_delete", on_delete),
        ):
            if not callable(callback):
                raise InvalidArgumentError(argument, f"must be callable, got {callback!r}")
        self._immediate("add_context", {"context": name})
        self._callbacks[name] = (on_insert, on_modify, on_delete)

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        await self._command("upsert", {"context": context, "key": key, "data": data})

    async def delete_database_entry(
        self, context: str, key: str, *, locally_only: bool = False
    ) -> None:
        args: dict[str, Any] = {"context": context, "key": key}
        if locally_only:
            args["locally_only"] = True
        await self._command("delete", args)

    async def get_database_entry(self, context: str, key: str) -> dict[str, Any] | None:
        """The local live entry (``key``, ``data``, ``creationDate``, ``modificationDate``,
        ``deletionDate``), or None: SPEC API-2, beyond :class:`simulator.impl.Helper`."""
        value: dict[str, Any] | None = self._immediate("get", {"context": context, "key": key})
        return value

    async def sync(self, *, full: bool = False) -> bool:
        value: bool = await self._command("sync", {"full": True} if full else {})
        return value

    async def wipe_local_context_data(self, context: str) -> None:
        await self._command("wipe", {"context": context})

    def local_entries(self, context: str) -> dict[str, Any]:
        value: dict[str, Any] = self._immediate("local_entries", {"context": context})
        return value

    def holds(self, context: str, key: str) -> bool:
        """Whether the live local copy has ``key``: the optional ``holds`` command when the
        implementation announced it, else a look in ``local_entries`` (the whole context)."""
        if "holds" in self.optional_commands:
            value: bool = self._immediate("holds", {"context": context, "key": key})
            return value
        return key in self.local_entries(context)

    # -- the end ----------------------------------------------------------------------------

    def _end(self) -> None:
        """The process is gone: commands still waiting learn it (a pass reports not completed)."""
        self.closed = True
        self._shutdown()
        for pending in self._commands.values():
            if pending.future.done():
                continue
            if pending.name == "sync":
                pending.future.set_result(False)
            else:
                _fail_quietly(
                    pending.future,
                    HelperClosedError(f"{pending.name}: the implementation's process was stopped"),
                )
        self._commands.clear()

    async def close(self) -> None:
        """A crash: kill the process at once (SIGKILL). What it stored durably stays stored."""
        if not self.closed:
            self._end()

    async def stop(self) -> None:
        """An orderly stop: the ``close`` command, then the process must exit with status 0."""
        self._immediate("close", {})
        try:
            status = self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise self._failed(f"did not exit within {self.timeout} s of 'close'") from None
        if status != 0:
            raise self._failed(f"exited with status {status} after 'close' (expected 0)")
        self._end()


class CommandFactory:
    """A :data:`simulator.impl.Factory` that runs a command line as each installation's helper."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        log_traffic: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self.env = dict(env) if env is not None else None
        self.log_traffic = log_traffic

    def __call__(self, installation: Installation) -> Helper:
        return ProcessHelper(
            installation,
            self.argv,
            timeout=self.timeout,
            env=self.env,
            log_traffic=self.log_traffic,
        )

    def __repr__(self) -> str:
        return f"command_factory({shlex.join(self.argv)!r})"


def command_factory(
    cmd: str | Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    log_traffic: bool = False,
) -> CommandFactory:
    """The factory running ``cmd`` (a shell-style string, split with :func:`shlex.split`, or an
    argument list) as a protocol implementation, one process per installation and restart.

    ``timeout``: real seconds a turn may take before the run fails (a hung implementation);
    ``env``: extra environment variables for the process; ``log_traffic``: keep every protocol
    line in ``<store>.traffic.log`` beside the store (to see what an implementation was sent).
    """
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if not argv or not all(isinstance(part, str) and part for part in argv):
        raise ValueError(f"command_factory: {cmd!r} is not a command (expected e.g. 'node x.js')")
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"command_factory: timeout must be a positive number, got {timeout!r}")
    return CommandFactory(argv, timeout=timeout, env=env, log_traffic=log_traffic)


def _vault_date(vault: Vault, error: VaultError | None) -> dict[str, float]:
    """The ``vault_date`` of a reply: the vault's clock as the answer just received gave it
    (none for a request that got no answer, or from a vault that does not tell its time)."""
    if isinstance(error, NetworkError) or not isinstance(vault, VaultClock):
        return {}
    date = vault.vault_time()
    return {} if date is None else {"vault_date": date}
