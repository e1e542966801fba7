"""Where the conformance suite keeps failing Hypothesis examples (``--brh-example-db``).

The property-based tests (the state machine of :mod:`conformance.machine`) save every failing
example they find in Hypothesis's example database and replay the saved ones first on the next
run, before generating new ones, as Hypothesis users expect:

* by default, a directory: ``.brh-examples/`` under the pytest rootdir
  (:class:`hypothesis.database.DirectoryBasedExampleDatabase`);
* ``--brh-example-db DIR``: that directory instead;
* ``--brh-example-db redis://HOST:PORT/N`` (or ``rediss://``): shared failure memory for a
  team or a fleet of machines, through Hypothesis's own
  :class:`hypothesis.extra.redis.RedisExampleDatabase` on ``redis.Redis.from_url(URL)``, with
  the local directory beside it (examples are written to both and read from both), so a failing
  example found on one machine is replayed first on every other;
* ``--brh-example-db none``: no database; a run is then reproduced by its options alone.

Examples are keyed by the test (its module and name, not its path, which differs from machine to
machine) and the implementation under test (:func:`example_key`): a failure found on a mutant is
replayed on that mutant, not on the reference.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
)

__all__ = [
    "DEFAULT_DIRECTORY",
    "REDIS_KEY_PREFIX",
    "ExampleDbError",
    "example_key",
    "open_example_db",
]

DEFAULT_DIRECTORY = ".brh-examples"
"""The default database: this directory under the pytest rootdir."""
REDIS_KEY_PREFIX = b"brh-example:"
"""The prefix of the suite's keys in a shared Redis (apart from other Hypothesis users')."""
_REDIS_SCHEMES = ("redis", "rediss")
_CONNECT_TIMEOUT = 5.0
"""Seconds to reach a Redis server (once, when the run starts) before giving up."""


class ExampleDbError(ValueError):
    """A ``--brh-example-db`` value that names no usable database (the message says why)."""


def open_example_db(spec: str | None, rootdir: Path) -> ExampleDatabase | None:
    """The example database ``spec`` names: None for the default directory
    (``rootdir/.brh-examples``), ``none`` for no database, a ``redis://`` or ``rediss://`` URL
    (checked, and the server reached once), or a directory path. Raises
    :class:`ExampleDbError` for anything else; creates nothing then."""
    local = rootdir / DEFAULT_DIRECTORY
    if spec is None:
        return DirectoryBasedExampleDatabase(local)
    text = spec.strip()
    if not text:
        raise ExampleDbError("empty; give a directory, a redis://HOST:PORT/N URL or 'none'")
    if text.lower() == "none":
        return None
    if "://" not in text:
        return DirectoryBasedExampleDatabase(Path(text))
    shared = _redis(text)
    return MultiplexedDatabase(DirectoryBasedExampleDatabase(local), shared)


def _redis(url: str) -> ExampleDatabase:
    shown = _redacted(url)
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES:
        raise ExampleDbError(
            f"{shown}: expected a redis://HOST:PORT/N URL (or rediss://), a directory or 'none'"
        )
    if not parts.hostname:
        raise ExampleDbError(f"{shown}: no host (expected redis://HOST:PORT/N)")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise ExampleDbError(f"{shown}: the port must be a number from 0 to 65535") from None
    number = parts.path.strip("/")
    if number and not number.isdigit():
        raise ExampleDbError(f"{shown}: the database number must be an integer, got {number!r}")
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise ExampleDbError(
            f"{shown}: needs the redis package (pip install redis, or brh[dev])"
        ) from None
    client = redis.Redis.from_url(
        url, socket_connect_timeout=_CONNECT_TIMEOUT, socket_timeout=_CONNECT_TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise ExampleDbError(f"{shown}: cannot reach the Redis server: {exc}") from None
    return RedisExampleDatabase(client, key_prefix=REDIS_KEY_PREFIX)


def _redacted(url: str) -> str:
    """``url`` without its password, if it has one (error messages end up in CI logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def example_key(module: str, test: str, implementation: str) -> bytes:
    """The key of one test's examples on one implementation: the same on every machine (no
    paths) and in every process (no seed, no worker)."""
    return hashlib.sha256(f"{module}::{test}::{implementation}".encode()).digest()
