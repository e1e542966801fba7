"""Real servers and processes on 127.0.0.1 for the HTTP tests, started and stopped by the tests.

Waiting for a real server or process is the one place where these tests wait on real time:
always by polling, or by blocking on a queue, with a deadline (:data:`DEADLINE`), never by a fixed
sleep.

* :class:`ServerThread`: an ASGI app served by uvicorn in a background thread (so a test can
  inject the server's clock), on a free port;
* :class:`Tap`: ASGI middleware that logs requests and can hold answers back (a write that
  applied but whose answer is late: the client times out);
* :class:`LineProcess`: a child process whose stdout lines are collected by a thread, so a test
  can wait for a line with a deadline; :func:`start_vault_process` runs ``brh-vault serve``.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vaultd.cli import listening_socket
from vaultd.connections import server_config
from vaultd.limits import Limits

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 20.0
"""Seconds a test waits at most for a server or a process (generous: CI machines are slow)."""


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.01)  # the poll interval, not a synchronisation


class ManualClock:
    """A server clock a test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Tap:
    """ASGI middleware: records ``(method, path, status)`` of each request, and holds back the
    answers of the next :attr:`hold` requests (after the app handled them) until
    :meth:`release`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str, int]] = []
        self.hold = 0
        self._gates: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gate: asyncio.Event | None = None
        if self.hold > 0:
            self.hold -= 1
            gate = asyncio.Event()
            self._gates.append((asyncio.get_running_loop(), gate))

        async def tapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.requests.append((scope["method"], scope["path"], message["status"]))
                if gate is not None:
                    await gate.wait()
            await send(message)

        await self.app(scope, receive, tapped)

    def release(self) -> None:
        """Let every held answer go (thread-safe)."""
        for loop, gate in self._gates:
            loop.call_soon_threadsafe(gate.set)
        self._gates.clear()


class ServerThread:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a background thread, with
    ``brh-vault serve``'s connection handling and ``limits`` (default: its defaults).

    Use as a context manager; :attr:`url` is the base URL for :class:`brh.hive.HiveVault`.
    """

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        config = server_config(
            app, limits or Limits(), log_level="warning", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.socket = listening_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "uvicorn to start")
        assert self.server.started, "the server thread died while starting"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(DEADLINE)
        self.socket.close()
        assert not self.thread.is_alive(), "the server thread did not stop"


class LineProcess:
    """A child process (its stdout read line by line by a thread; stderr kept for failures);
    ``open_files`` lowers its limit on open files (``ulimit -n``)."""

    def __init__(self, args: Sequence[str], *, name: str, open_files: int | None = None) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

        def limit_files() -> None:
            if open_files is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

        self.process = subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit_files if open_files is not None else None,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def next_line(self, timeout: float = DEADLINE) -> str:
        """The next stdout line; fails if none comes in time or the process ended."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no output within {timeout} s") from None
        if line is None:
            self.process.wait(DEADLINE)
            raise AssertionError(
                f"{self.name} exited ({self.process.returncode}) instead of answering; "
                f"stderr:\n{self.stderr}"
            )
        return line

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """``kill -9``, and wait for it to be gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(DEADLINE)

    def stop(self) -> int:
        """SIGTERM, and the exit code once it is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(DEADLINE)

    def close(self) -> None:
        self.kill()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class VaultProcess(LineProcess):
    """``brh-vault serve`` (as ``python -m vaultd``) in a child process; :attr:`url` once up.
    ``options`` are more command-line options."""

    def __init__(
        self,
        db: Path,
        tokens: Sequence[str],
        port: int = 0,
        options: Sequence[str] = (),
        open_files: int | None = None,
    ) -> None:
        args = [sys.executable, "-m", "vaultd", "serve", "--db", str(db), "--port", str(port)]
        for token in tokens:
            args += ["--token", token]
        super().__init__([*args, *options], name="brh-vault serve", open_files=open_files)
        line = self.next_line()
        found = re.search(r"serving (http://127\.0\.0\.1:(\d+))", line)
        assert found, f"unexpected first line: {line!r}"
        self.url, self.port = found.group(1), int(found.group(2))


def start_vault_process(
    db: Path,
    tokens: Sequence[str],
    port: int = 0,
    options: Sequence[str] = (),
    open_files: int | None = None,
) -> VaultProcess:
    """Start ``brh-vault serve`` and return once it answers HTTP requests."""
    import httpx

    server = VaultProcess(db, tokens, port, options, open_files)

    def answers() -> bool:
        try:
            httpx.get(server.url + "/api/v2/vault/db/collections", timeout=1.0)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, "brh-vault serve to answer")
    return server


class DeviceProcess(LineProcess):
    """A device in its own process (``tests/device_process.py``), driven by JSON commands."""

    def __init__(self, url: str, token: str, directory: Path, device: str, *flags: str) -> None:
        args = [
            sys.executable,
            "-m",
            "tests.device_process",
            "--url",
            url,
            "--token",
            token,
            "--store",
            str(directory / f"{device}.sqlite"),
            "--model",
            str(directory / f"{device}-model.json"),
            "--device",
            device,
            *flags,
        ]
        super().__init__(args, name=f"device {device}")
        assert self.event() == {"event": "ready"}

    def event(self, timeout: float = DEADLINE) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.next_line(timeout))
        return message

    def call(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send a command and return its answer (events before it are skipped)."""
        self.send(json.dumps(command))
        while True:
            message = self.event()
            if "event" not in message:
                assert message.get("ok"), f"{self.name}: {command} failed: {message}"
                return message
