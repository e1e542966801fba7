"""The conformance suite's example database (``--brh-example-db``): failing Hypothesis examples
are saved and replayed first on the next run, in a local directory by default and, through a
real ``redis-server``, on every machine sharing it (issue 12: "failing examples are saved in an
example database ... and replayed first on the next run"; issue 13 item 4: shared failure
memory). Also: Hypothesis's own seed and profile options are refused with a clear message.

The suite runs in subprocesses here (Hypothesis keeps process-wide state: its seed option and
its loaded profile would leak into this process), on a tiny broken implementation whose bug the
state machine finds after a few examples; each run is bounded by a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase

from conformance.exampledb import (
    DEFAULT_DIRECTORY,
    REDIS_KEY_PREFIX,
    ExampleDbError,
    example_key,
    open_example_db,
)
from tests.conformance.suite_process import run_suite

BROKEN = '''
from simulator.impl import ReferenceHelper, reference_factory


class ForgetsDeletes(ReferenceHelper):
    """The reference, except that deletions never leave the device."""

    async def delete_database_entry(self, context, key):
        return None


def factory(installation):
    return ForgetsDeletes(reference_factory(installation).brh)
'''
MACHINE = "test_random_work_and_faults_keep_every_invariant_and_converge"
EXPECTED = f'[expected-failures]\n{MACHINE} = "it forgets deletions"\n'
"""The state machine is expected to fail on the broken implementation: it then stops at its
first failing example (no shrinking, which takes minutes with stores on disk)."""


def _machine_on_broken(cwd: Path, *args: str) -> tuple[int | None, str]:
    """Run the state machine on the broken implementation in ``cwd`` (its stores in memory
    where the system has a tmpfs): (the example that failed first, as the machine prints it,
    or None if it passed; the output)."""
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "brokenimpl.py").write_text(BROKEN, encoding="utf-8")
    (cwd / "expected.toml").write_text(EXPECTED, encoding="utf-8")
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(
        prefix="brh-exampledb-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    ) as scratch:
        result = run_suite(
            cwd,
            *("-s", "-k", "state_machine", "--brh-impl", "brokenimpl:factory"),
            *("--brh-expectations", "expected.toml", "--brh-steps", "20"),
            *("--basetemp", scratch, *args),
        )
    out = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.OK, out
    first = None
    for line in out.splitlines():
        if line.startswith("state machine: first failure at example "):
            first = int(line.rsplit(" ", 1)[1])
    return first, out


# -- the option ---------------------------------------------------------------------------------


def test_the_default_is_a_directory_under_the_rootdir_created_only_when_needed(
    tmp_path: Path,
) -> None:
    """Issue 12 (example database): without the option, a directory database at
    ``.brh-examples`` under the rootdir; nothing is created until an example is saved."""
    db = open_example_db(None, tmp_path)
    assert isinstance(db, DirectoryBasedExampleDatabase)
    assert Path(db.path) == tmp_path / DEFAULT_DIRECTORY
    assert not (tmp_path / DEFAULT_DIRECTORY).exists()
    assert open_example_db("none", tmp_path) is None
    assert open_example_db(" NONE ", tmp_path) is None
    mine = open_example_db(str(tmp_path / "mine"), tmp_path)
    assert isinstance(mine, DirectoryBasedExampleDatabase)
    assert Path(mine.path) == tmp_path / "mine"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("http://localhost:6379/0", "expected a redis://HOST:PORT/N URL"),
        ("redis://:6379/0", "no host"),
        ("redis://localhost:port/0", "the port must be a number"),
        ("redis://localhost:99999/0", "the port must be a number"),
        ("redis://localhost:6379/zero", "the database number must be an integer"),
        ("redis://user:secret@localhost:6379/x", "user:***@localhost"),
    ],
)
def test_a_bad_url_is_refused_with_what_is_wrong(tmp_path: Path, spec: str, message: str) -> None:
    """Issue 13 item 4: a bad ``--brh-example-db`` value says what is wrong (a password never
    shows), and creates nothing."""
    with pytest.raises(ExampleDbError, match=re.escape(message)) as caught:
        open_example_db(spec, tmp_path)
    assert "secret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_url_or_an_unreachable_server_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester,
) -> None:
    """Issue 13 item 4: the plugin turns a bad URL, or a Redis server it cannot reach, into a
    pytest usage error (exit code 4) naming ``--brh-example-db``, before any test runs."""
    port = _free_port()  # nothing listens there
    for url, message in [
        ("redis://localhost:port/0", "*--brh-example-db: redis://localhost:port/0: the port*"),
        (f"redis://127.0.0.1:{port}/0", "*--brh-example-db: *cannot reach the Redis server*"),
    ]:
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", "--pyargs", "conformance", "--brh-example-db", url
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message])


def test_examples_are_keyed_by_test_and_implementation_not_by_machine_or_seed() -> None:
    """Issue 13 item 4: the same test on the same implementation has the same key everywhere
    (no path, no seed, no worker in it); another test or implementation another key."""
    key = example_key("conformance.test_state_machine", "test_x", "reference")
    assert key == example_key("conformance.test_state_machine", "test_x", "reference")
    assert key != example_key("conformance.test_state_machine", "test_y", "reference")
    assert key != example_key("conformance.test_state_machine", "test_x", "brokenimpl:factory")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "ours"),
    [("--hypothesis-seed=5", "--brh-seed N"), ("--hypothesis-profile=ci", "--brh-profile")],
)
def test_hypothesis_own_seed_and_profile_options_are_refused_with_a_clear_message(
    tmp_path: Path, option: str, ours: str
) -> None:
    """Issue 12 (Hypothesis's own options): ``--hypothesis-seed`` and ``--hypothesis-profile``
    would fight ``--brh-seed`` and ``--brh-profile`` (and the seed option would turn the
    example database off unseen): a usage error naming the option and what to give instead."""
    result = run_suite(tmp_path, "-k", "state_machine", option)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    name = option.split("=")[0]
    assert f"{name}: the conformance suite seeds Hypothesis" in result.stderr
    assert ours in result.stderr


# -- replay from a local directory ----------------------------------------------------------------


@pytest.mark.slow
def test_a_failing_example_is_saved_locally_and_replayed_first_on_the_next_run(
    tmp_path: Path,
) -> None:
    """Issue 12 (example database): a failure found in one run is saved under
    ``.brh-examples`` and is the very first example of the next run; with
    ``--brh-example-db none`` nothing is saved or replayed."""
    first, out = _machine_on_broken(tmp_path)
    assert first is not None and first > 1, out  # found by searching
    assert any((tmp_path / DEFAULT_DIRECTORY).rglob("*")), "nothing saved"
    again, out = _machine_on_broken(tmp_path)
    assert again == 1, out
    unseeded, out = _machine_on_broken(tmp_path / "elsewhere", "--brh-example-db", "none")
    assert unseeded == first, out
    assert not (tmp_path / "elsewhere" / DEFAULT_DIRECTORY).exists()


# -- shared through a real Redis ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


NO_DISK = ("--save", "", "--appendonly", "no", "--protected-mode", "no")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on a free port of 127.0.0.1, in a temporary directory, nothing
    persisted; stopped at the end. ``.ci/run`` installs it where it is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    import redis

    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), *NO_DISK],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
        deadline = time.monotonic() + 20.0  # a real server starting: bounded wait
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_the_redis_url_opens_hypothesis_own_redis_database_beside_the_local_one(
    tmp_path: Path, redis_url: str
) -> None:
    """Issue 13 item 4: ``redis://HOST:PORT/N`` is Hypothesis's ``RedisExampleDatabase``
    (over ``redis.Redis.from_url``), multiplexed with the local directory."""
    from hypothesis.extra.redis import RedisExampleDatabase

    db = open_example_db(redis_url, tmp_path)
    assert isinstance(db, MultiplexedDatabase)
    kinds = [type(part) for part in db._wrapped]
    assert kinds == [DirectoryBasedExampleDatabase, RedisExampleDatabase]


@pytest.mark.slow
def test_a_failure_found_on_one_machine_is_replayed_first_on_another_through_redis(
    tmp_path: Path, redis_url: str
) -> None:
    """Issue 13 item 4 (shared failure memory): a failing example found in one run (machine
    A's directory) lands in Redis, and a run in a fresh directory (machine B, nothing local)
    sharing that Redis fails on its very first example."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/1"  # a database of this test's own
    client = redis.Redis.from_url(url)
    client.flushdb()
    first, out = _machine_on_broken(tmp_path / "a", "--brh-example-db", url)
    assert first is not None and first > 1, out
    assert client.keys(REDIS_KEY_PREFIX + b"*"), "nothing shared in Redis"
    again, out = _machine_on_broken(tmp_path / "b", "--brh-example-db", url)
    assert again == 1, out
    client.close()
