"""``brh-vault``: run the development vault.

::

    brh-vault serve --db vault.sqlite --host 127.0.0.1 --port 8080 --token devtoken
    brh-vault serve --db vault.sqlite --port 0 --token phone --token laptop \\
        --token other=did:example:bob/did:example:notes
    brh-vault proxy --upstream http://127.0.0.1:8080 --port 8081 --seed 7 --rate 0.2

``--port 0`` picks a free port. Once the database is open and the port is bound, one line goes
to standard output: ``brh-vault: serving http://HOST:PORT (database PATH, N tokens)``; the URL
is what :class:`brh.hive.HiveVault` takes. SIGTERM or Ctrl-C stops the server cleanly (exit 0);
every acknowledged write is already on disk, so even ``kill -9`` loses nothing.

``brh-vault proxy`` runs :mod:`vaultd.faultproxy` in front of a vault: a proxy that injects
errors, resets, slow answers and 401s at a seeded rate.

``--max-body``, ``--max-documents``, ``--body-timeout``, ``--header-timeout``,
``--idle-timeout`` and ``--max-connections`` bound what a request and a connection may cost
(:class:`vaultd.limits.Limits`, whose defaults ``--help`` shows).
"""

from __future__ import annotations

import argparse
import resource
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType

import uvicorn

from vaultd import faultproxy
from vaultd.app import create_app
from vaultd.connections import server_config
from vaultd.limits import MIB, Limits
from vaultd.store import StoreError, VaultStore
from vaultd.tokens import TokenTable

_SPARE_FILES = 32
"""File descriptors the server needs besides its connections (the database, its WAL, the
listening socket, Python's own)."""

__all__ = ["listening_socket", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brh-vault",
        description="A Hive vault for tests and development (not a production Hive node).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve Hive Node v2's database API from a SQLite file",
        description="Serve Hive Node v2's database API (/api/v2/vault/db) with the fake "
        "vault's semantics, stored durably in a SQLite file.",
    )
    serve.add_argument("--db", required=True, help="SQLite file (created if missing)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (8080; 0 picks a free one)")
    serve.add_argument(
        "--token",
        action="append",
        required=True,
        metavar="TOKEN[=USER/APP]",
        help="an accepted access token, repeatable; TOKEN alone uses the shared vault "
        "default/default, TOKEN=USER/APP the vault of that user and application",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (warning)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    limits = serve.add_argument_group(
        "limits",
        "what one request and one connection may cost (MongoDB's own limits, such as "
        "16 MiB documents and 100 levels of nesting, always apply)",
    )
    default = Limits()
    limits.add_argument(
        "--max-body",
        type=_positive(int),
        default=default.max_body,
        metavar="BYTES",
        help=f"largest request body; a larger one is a 413 ({default.max_body} = "
        f"{default.max_body // MIB} MiB)",
    )
    limits.add_argument(
        "--max-documents",
        type=_positive(int),
        default=default.max_documents,
        metavar="N",
        help=f"most documents one insert may carry ({default.max_documents})",
    )
    limits.add_argument(
        "--body-timeout",
        type=_positive(float),
        default=default.body_timeout,
        metavar="SECONDS",
        help=f"time to receive a body once the head arrived; then 408 ({default.body_timeout:g})",
    )
    limits.add_argument(
        "--header-timeout",
        type=_positive(float),
        default=default.header_timeout,
        metavar="SECONDS",
        help="time a connection has to send a complete request head, from its opening or its "
        f"previous answer; then it is closed ({default.header_timeout:g})",
    )
    limits.add_argument(
        "--idle-timeout",
        type=_positive(float),
        default=default.idle_timeout,
        metavar="SECONDS",
        help=f"time a connection may stay silent between requests ({default.idle_timeout:g})",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive(int),
        default=default.max_connections,
        metavar="N",
        help="connections served at once, so requests in progress; a new one beyond it takes "
        "the place of the one idle longest, or is closed if all are busy "
        f"({default.max_connections})",
    )
    faultproxy.configure_parser(
        commands.add_parser(
            "proxy",
            help="a proxy in front of a vault that injects faults (errors, resets, drips, 401s)",
            description="Forward to a vault, breaking requests at a seeded rate.",
        )
    )
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _enough_files(connections: int) -> str | None:
    """Raise the soft limit on open files if ``connections`` need it; say why if it cannot."""
    needed = connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or needed <= soft:
        return None
    if hard != resource.RLIM_INFINITY and needed > hard:
        return (
            f"--max-connections {connections} needs {needed} open files, and this process may "
            f"open at most {hard} (ulimit -Hn)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return None


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port) and listening, for uvicorn.

    Created with ``IPPROTO_TCP`` explicitly: asyncio turns Nagle's algorithm off only for
    sockets whose protocol says TCP, and with it on every answer waits ~40 ms for a delayed ACK.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart on the same port
        sock.bind(address)
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "proxy":
        return faultproxy.run_command(args, parser)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0 to 65535, got {args.port}")
    try:
        tokens = TokenTable(args.token)
    except ValueError as exc:
        parser.error(str(exc))
    limits = Limits(
        max_body=args.max_body,
        max_documents=args.max_documents,
        body_timeout=args.body_timeout,
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
    )
    problem = _enough_files(limits.max_connections)
    if problem is not None:
        parser.error(problem)
    # uvicorn re-raises the signal that stopped it once it has shut down: end quietly then.
    signal.signal(signal.SIGTERM, _stop)
    try:
        store = VaultStore(args.db)
    except StoreError as exc:
        print(f"brh-vault: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            sock = listening_socket(args.host, args.port)
        except OSError as exc:
            print(f"brh-vault: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"brh-vault: serving http://{shown}:{port} (database {args.db}, {len(tokens)} tokens)",
            flush=True,
        )
        config = server_config(
            create_app(store, tokens, limits),
            limits,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_graceful_shutdown=5,
        )
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
