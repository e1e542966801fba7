"""Opening the local store fails cleanly (SPEC ERR-5, ERR-6).

A failed open closes what it opened (no file descriptor, no lock left behind, even when the app
keeps the exceptions and so their tracebacks), raises a :class:`brh.LocalStoreError` naming the
file and what to do, and changes nothing. File descriptors are counted in ``/proc/self/fd``.

Read-only locations are made with ``chmod``, which does not stop a privileged user (root in a
CI container). Running as root, those checks run in a forked child process that has become the
unprivileged user ``nobody``; where that is not possible they are skipped, saying why.
"""

from __future__ import annotations

import os
import pwd
import select
import shutil
import signal
import sqlite3
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from brh import (
    BackupRestoreHelper,
    LocalStore,
    LocalStoreCorruptError,
    LocalStoreError,
    LocalStoreReadOnlyError,
    LocalStoreVersionError,
)
from brh.hlc import HybridClock
from brh.store import Record
from hivevault.vault import FakeVault

ATTEMPTS = 50
CHILD_BOUND = 60.0
"""Real seconds the read-only checks may take in their child process before it is killed."""


def open_files_under(folder: Path) -> int:
    """How many of this process's file descriptors point into ``folder``."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd to count open files (Linux)")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        if target.startswith(str(folder)):
            count += 1
    return count


def good_store(path: Path, entries: int = 0) -> None:
    """A store at ``path`` with a device id and ``entries`` entries (written in one
    transaction, behind the store's back: only the file's size matters here), closed."""
    store = LocalStore(path)
    store.set_device_id("dev")
    store.close()
    if entries:
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO entries (context, key, data, creation_date, modification_date, "
                "version) VALUES ('notes', ?, ?, 1000, 1000, ?)",
                [(f"k{i}", '"' + "x" * 200 + '"', f"{i:015}.000000.dev") for i in range(entries)],
            )
        db.close()


def usable(path: Path) -> None:
    """A store opened at ``path`` takes a write and reads it back."""
    store = LocalStore(path)
    try:
        clock = HybridClock("dev~00000000", lambda: 5.0, None)
        store.write_local(
            "notes",
            "k",
            clock,
            lambda current, version: Record("notes", "k", {"ok": 1}, 5_000, 5_000, None, version),
        )
        assert store.get("notes", "k").data == {"ok": 1}  # type: ignore[union-attr]
    finally:
        store.close()


def schema_mismatch(folder: Path) -> Path:
    path = folder / "newer.sqlite"
    good_store(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    db.close()
    return path


def garbage(folder: Path) -> Path:
    path = folder / "garbage.sqlite"
    path.write_bytes(bytes(range(256)) * 32)
    return path


def text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 20)
    return path


def truncated(folder: Path) -> Path:
    path = folder / "truncated.sqlite"
    good_store(path, entries=300)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def directory(folder: Path) -> Path:
    path = folder / "a-folder"
    path.mkdir()
    return path


def missing_folder(folder: Path) -> Path:
    return folder / "no-such-folder" / "store.sqlite"


FAILURES: dict[str, tuple[Callable[[Path], Path], type[LocalStoreError]]] = {
    "schema mismatch": (schema_mismatch, LocalStoreVersionError),
    "garbage bytes": (garbage, LocalStoreCorruptError),
    "a text file": (text_file, LocalStoreCorruptError),
    "truncated database": (truncated, LocalStoreCorruptError),
    "a directory": (directory, LocalStoreError),
    "missing folder": (missing_folder, LocalStoreError),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failed_opens_leave_nothing_open_and_the_next_open_works(case: str, tmp_path: Path) -> None:
    """ERR-5: 50 failed opens, whose exceptions the app keeps, leave no file open and no lock:
    the file can then be repaired in place, and a good store opens and takes writes."""
    make, kind = FAILURES[case]
    path = make(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    assert open_files_under(tmp_path) == 0
    kept: list[LocalStoreError] = []
    for _ in range(ATTEMPTS):
        with pytest.raises(LocalStoreError) as info:
            LocalStore(path)
        kept.append(info.value)  # keeps the traceback, and with it the failed open's frames
    assert open_files_under(tmp_path) == 0
    assert all(type(error) is kind and error.path == str(path) for error in kept)
    if before is not None:
        assert path.read_bytes() == before  # a failed open changes nothing
    if case == "schema mismatch":  # repairing in place needs the write lock at once
        with sqlite3.connect(path, timeout=0) as db:
            db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
        db.close()
        usable(path)
    usable(tmp_path / "fresh.sqlite")
    assert open_files_under(tmp_path) == 0


@pytest.mark.parametrize("case", ["garbage bytes", "a text file", "truncated database"])
def test_a_corrupted_file_names_itself_and_what_to_do(case: str, tmp_path: Path) -> None:
    """ERR-6: a file that is not a database, or a damaged one, is a LocalStoreCorruptError that
    names the file and says what to do; the file is left as it was."""
    make, _ = FAILURES[case]
    path = make(tmp_path)
    with pytest.raises(LocalStoreCorruptError) as info:
        LocalStore(path)
    message = str(info.value)
    assert str(path) in message
    assert "move the file aside" in message and "restores every entry from the vault" in message
    assert "not yet on the vault are lost" in message


def test_a_newer_schema_says_which_versions_and_what_to_do(tmp_path: Path) -> None:
    """ERR-6: a store of another schema version names both versions and the way out."""
    path = schema_mismatch(tmp_path)
    with pytest.raises(LocalStoreVersionError) as info:
        LocalStore(path)
    message = str(info.value)
    assert str(path) in message and "schema version 2" in message and "understands 1" in message
    assert "newer brh" in message
    assert isinstance(info.value, RuntimeError)  # what this error was before it had a type


def test_a_directory_or_a_missing_folder_is_named(tmp_path: Path) -> None:
    """ERR-6: a path that is a directory, or in a folder that does not exist, says so."""
    with pytest.raises(LocalStoreError, match="is a directory; give the path of a file"):
        LocalStore(directory(tmp_path))
    with pytest.raises(LocalStoreError, match="does not exist; create it first") as info:
        LocalStore(missing_folder(tmp_path))
    assert str(tmp_path / "no-such-folder") in str(info.value)


def test_a_helper_whose_store_fails_to_open_leaks_nothing(tmp_path: Path) -> None:
    """ERR-5: BackupRestoreHelper(vault, path) closes the store it opened when any part of its
    construction fails: the open itself, or reading the store's identity and clock."""
    bad = schema_mismatch(tmp_path)
    broken_clock = tmp_path / "broken-clock.sqlite"
    good_store(broken_clock)
    with sqlite3.connect(broken_clock) as db:
        db.execute("INSERT INTO meta (name, value) VALUES ('clock', 'not a version')")
    db.close()
    kept: list[Exception] = []
    for _ in range(ATTEMPTS):
        with pytest.raises(LocalStoreVersionError) as info:
            BackupRestoreHelper(FakeVault(), bad)
        kept.append(info.value)
        with pytest.raises(ValueError, match="not a brh version") as broken:
            BackupRestoreHelper(FakeVault(), broken_clock)
        kept.append(broken.value)
    assert open_files_under(tmp_path) == 0
    usable(tmp_path / "fresh.sqlite")


# -- read-only locations --------------------------------------------------------------------------


def check_read_only_locations(folder: str) -> None:
    """The read-only checks, in ``folder`` (writable, empty); run as an unprivileged user."""
    base = Path(folder)
    new_in_locked = base / "locked"
    new_in_locked.mkdir()
    existing_in_locked = base / "locked-existing"
    existing_in_locked.mkdir()
    good_store(existing_in_locked / "store.sqlite")
    read_only_file = base / "read-only-file.sqlite"
    good_store(read_only_file)
    read_only_file.chmod(0o444)
    for locked in (new_in_locked, existing_in_locked):
        locked.chmod(0o555)
    try:
        cases = [
            (new_in_locked / "store.sqlite", f"its folder {str(new_in_locked)!r} is read-only"),
            (
                existing_in_locked / "store.sqlite",
                f"its folder {str(existing_in_locked)!r} is read-only",
            ),
            (read_only_file, "the file is read-only"),
        ]
        for path, says in cases:
            for _ in range(ATTEMPTS):
                try:
                    LocalStore(path)
                except LocalStoreReadOnlyError as error:
                    assert error.path == str(path), error
                    assert says in str(error) and str(path) in str(error), str(error)
                else:
                    raise AssertionError(f"{path} opened, but it is read-only")
            assert open_files_under(base) == 0, path
        assert not (new_in_locked / "store.sqlite").exists()
    finally:
        for locked in (new_in_locked, existing_in_locked):
            locked.chmod(0o755)


def chmod_stops_writes(folder: Path) -> bool:
    """Whether a folder made read-only by chmod refuses new files to this process."""
    probe = folder / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "file").touch()
    except PermissionError:
        return True
    else:
        return False
    finally:
        probe.chmod(0o755)
        shutil.rmtree(probe)


def run_as(user: pwd.struct_passwd, check: Callable[[str], None], folder: str) -> str | None:
    """Run ``check(folder)`` in a forked child process as ``user`` (no exec: the interpreter
    may live where that user cannot read). Returns the child's failure, or None."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            check(folder)
            status = 0
        except BaseException:
            os.write(write, traceback.format_exc().encode())
        finally:
            os._exit(status)
    os.close(write)
    report = b""
    deadline = time.monotonic() + CHILD_BOUND
    try:
        while True:  # the child's report, until it exits (bounded: a hung child is killed)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                return f"the child did not finish within {CHILD_BOUND} s"
            ready, _, _ = select.select([read], [], [], remaining)
            chunk = os.read(read, 65536) if ready else b""
            if ready and not chunk:
                break
            report += chunk
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return report.decode(errors="replace") or f"the child failed with status {status}"


def test_a_read_only_location_gets_an_error_that_says_so(tmp_path: Path) -> None:
    """ERR-6: a store in a read-only folder (new or existing) or a read-only file is a
    LocalStoreReadOnlyError naming what is read-only; 50 of them leave nothing open."""
    if chmod_stops_writes(tmp_path):
        check_read_only_locations(str(tmp_path))
        return
    if os.geteuid() != 0:
        pytest.skip("chmod does not stop this process from writing, and it cannot switch users")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root (chmod does not stop root) and there is no user 'nobody'")
    folder = tempfile.mkdtemp(prefix="brh-read-only-")
    try:
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        failure = run_as(nobody, check_read_only_locations, folder)
    finally:
        shutil.rmtree(folder)
    assert failure is None, failure
