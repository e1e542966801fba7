"""The implementation's process and its pipes: the one part of the harness that reads real time.

:class:`ImplementationProcess` starts a command line in a process group of its own (a crash
kills all of it), appends its stderr to ``<store>.stderr.log`` and, with ``log_traffic``, every
protocol line to ``<store>.traffic.log``. It writes and reads lines against a deadline in real
seconds, the watchdog of a turn, so that a hung implementation fails the run with a clear error
instead of hanging it; reading uses ``select`` on the pipes (POSIX). A process that does not
read, does not answer, dies or writes out of turn raises :class:`PipeFailure`, which
:class:`~conformance.protocol.client.ProcessHelper` reports as a :class:`ProtocolError` naming
the implementation and ending with the tail of its stderr.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import signal
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ImplementationProcess", "PipeFailure", "ProtocolError"]


class ProtocolError(RuntimeError):
    """The implementation broke the protocol, hung, died mid-turn, or could not start."""


class PipeFailure(Exception):
    """The process did not read, did not write a line in time, exited, or wrote out of turn;
    ``problem`` says which (the harness adds whose process it was)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the implementation's whole process group (a wrapper script's children too), and
    reap the process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class ImplementationProcess:
    """``argv`` running beside the store directory ``store``, its pipes non-blocking.

    ``timeout`` is only used in messages (the deadlines are the caller's); ``env`` adds
    environment variables; ``log_traffic`` keeps every line written and read.
    """

    def __init__(
        self,
        argv: Sequence[str],
        store: Path,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        log_traffic: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self.stderr_path = store.with_name(store.name + ".stderr.log")
        """Where the implementation's stderr goes (appended to across restarts)."""
        self.traffic_path = store.with_name(store.name + ".traffic.log")
        """With ``log_traffic``: every protocol line, ``> `` harness to implementation, ``< ``
        implementation to harness (appended to across restarts)."""
        self.process = self._spawn(store, env)
        self._traffic = self.traffic_path.open("ab") if log_traffic else None
        self._finalizer = weakref.finalize(self, kill, self.process)
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin, self._stdout = self.process.stdin.fileno(), self.process.stdout.fileno()
        os.set_blocking(self._stdin, False)
        os.set_blocking(self._stdout, False)
        self._readable = selectors.DefaultSelector()
        self._readable.register(self._stdout, selectors.EVENT_READ)
        self._writable = selectors.DefaultSelector()
        self._writable.register(self._stdin, selectors.EVENT_WRITE)
        self._buffer = bytearray()

    def _spawn(self, store: Path, env: Mapping[str, str] | None) -> subprocess.Popen[bytes]:
        with self.stderr_path.open("ab") as log:
            log.write(f"--- {shlex.join(self.argv)} (store {store})\n".encode())
            log.flush()
            try:
                return subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=None if env is None else {**os.environ, **env},
                    start_new_session=True,  # its own process group: a crash kills all of it
                )
            except OSError as exc:
                raise ProtocolError(
                    f"cannot start the implementation {shlex.join(self.argv)!r}: {exc}"
                ) from exc

    def stderr_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the stderr log, indented (empty if it cannot be read)."""
        try:
            with self.stderr_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 8192))
                tail = log.read().decode("utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n".join("    " + line for line in tail)

    def kill(self) -> None:
        """Kill the process group (once; later calls do nothing)."""
        self._finalizer()

    def close(self) -> None:
        """Close the pipes, the selectors and the traffic log (after :meth:`kill`)."""
        for selector in (self._readable, self._writable):
            selector.close()
        for stream in (self.process.stdin, self.process.stdout, self._traffic):
            if stream is not None:
                stream.close()

    def exit_status(self) -> str:
        """How the process ended, for a message (it closed its stdout: wait a little for it)."""
        try:
            status = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "closed its stdout but is still running"
        if status < 0:
            return f"was killed by signal {-status}"
        return f"exited with status {status}"

    def write(self, data: bytes, deadline: float) -> None:
        """Write ``data`` whole before ``deadline`` (``time.monotonic()`` seconds)."""
        if self._traffic is not None:
            self._traffic.write(b"> " + data)
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._writable.select(remaining):
                raise PipeFailure(
                    f"did not read its input for {self.timeout} s (is it reading stdin?)"
                )
            try:
                view = view[os.write(self._stdin, view) :]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise PipeFailure(f"{self.exit_status()} (its stdin is closed)") from None

    def read_line(self, deadline: float, waiting_for: str) -> bytes:
        """The next line the process writes (without its newline), before ``deadline``;
        ``waiting_for`` names what the harness waits for, in the message if none comes."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                if self._traffic is not None:
                    self._traffic.write(b"< " + line + b"\n")
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._readable.select(remaining):
                raise PipeFailure(
                    f"no {waiting_for} within {self.timeout} s (the turn timeout): it hangs, or "
                    "waits for something the harness will not send; every turn must end with "
                    '{"type":"idle",...} on stdout'
                )
            try:
                chunk = os.read(self._stdout, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise PipeFailure(
                    f"{self.exit_status()} while the harness waited for {waiting_for}"
                )
            self._buffer += chunk

    def check_quiet(self) -> None:
        """Between turns the implementation must not write: check nothing arrived since idle."""
        if self._buffer or self._readable.select(0):
            try:
                chunk = b"" if self._buffer else os.read(self._stdout, 1 << 16)
            except BlockingIOError:
                return
            if not self._buffer and not chunk:
                raise PipeFailure(f"{self.exit_status()} between turns")
            self._buffer += chunk
            line = bytes(self._buffer.split(b"\n", 1)[0])
            raise PipeFailure(
                "wrote after its idle, before the harness sent anything (it must only write "
                f"in a turn): {line[:200].decode('utf-8', errors='replace')}"
            )
