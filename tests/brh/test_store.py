"""The local store (SPEC OFF-2, OFF-4, DATA-5, RES-2)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from brh.hlc import HybridClock, Version
from brh.store import LocalStore, Record


def record(context: str, key: str, data: object = 1, version: Version | None = None) -> Record:
    version = version or Version(1000, 0, "d")
    return Record(context, key, data, 1000, version.wall_ms, None, version, pending=True)


def put(store: LocalStore, rec: Record) -> HybridClock:
    """Write ``rec`` as a local change; returns the clock that stamped it (its ``last`` is what
    the store persisted)."""
    clock = HybridClock("d", lambda: rec.version.wall_ms / 1000, None)
    store.write_local(rec.context, rec.key, clock, lambda current, version: rec)
    return clock


def test_keys_and_contexts_cannot_collide() -> None:
    """DATA-5 (W13): ('a_b', 'c') and ('a', 'b_c'), or a key named 'index', stay distinct."""
    store = LocalStore()
    put(store, record("a_b", "c", "first"))
    put(store, record("a", "b_c", "second"))
    put(store, record("a", "index", "third"))
    assert store.get("a_b", "c").data == "first"  # type: ignore[union-attr]
    assert store.get("a", "b_c").data == "second"  # type: ignore[union-attr]
    assert [r.key for r in store.entries("a")] == ["b_c", "index"]


def test_a_local_write_is_all_or_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """OFF-2 (W12): if saving the clock fails, the entry is not written either."""
    store = LocalStore()

    def broken(clock: Version | None) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "_save_clock", broken)
    with pytest.raises(OSError):
        put(store, record("c", "k"))
    assert store.get("c", "k") is None and store.pending("c") == []


def test_everything_survives_reopening(tmp_path: Path) -> None:
    """OFF-4: entries, pending flags, clock, cursors and device id persist in the file."""
    path = tmp_path / "s.sqlite"
    store = LocalStore(path)
    store.set_device_id("dev")
    clock = put(store, record("c", "k", {"deep": [1, 2]})).last
    state = store.context_state("c")
    from dataclasses import replace

    store.save_context_state(replace(state, cursor=42, max_stamp=50, collection_ready=True))
    store.close()
    again = LocalStore(path)
    assert again.device_id() == "dev" and again.clock() == clock
    assert [r.key for r in again.pending("c")] == ["k"]
    assert again.get("c", "k").data == {"deep": [1, 2]}  # type: ignore[union-attr]
    assert again.context_state("c").cursor == 42 and again.context_state("c").collection_ready
    again.close()
    with pytest.raises(RuntimeError, match="closed"):
        put(again, record("c", "k2"))


def test_wipe_is_one_transaction() -> None:
    """RES-2: wiping removes entries, cursor and refusal counts of one context only."""
    store = LocalStore()
    put(store, record("c", "k"))
    put(store, record("other", "k"))
    from dataclasses import replace

    store.save_context_state(replace(store.context_state("c"), cursor=9))
    store.note_refusal("c", "k")
    assert store.wipe_context("c") == 1
    assert store.get("c", "k") is None and store.context_state("c").cursor is None
    assert store.refusals("c", "k") == 0 and store.get("other", "k") is not None


def test_remote_apply_is_guarded_by_the_expected_version() -> None:
    """ORD-7: a delivered version is not stored over a local write made meanwhile."""
    store = LocalStore()
    put(store, record("c", "k", "local", Version(2000, 0, "me")))
    remote = Record("c", "k", "remote", 1, 1500, None, Version(1500, 0, "them"))
    assert not store.apply_remote(remote, expected=Version(1000, 0, "me"), clock=None)
    assert store.get("c", "k").data == "local"  # type: ignore[union-attr]
    assert store.apply_remote(remote, expected=Version(2000, 0, "me"), clock=None)
    assert store.get("c", "k").data == "remote"  # type: ignore[union-attr]


def test_a_delivery_another_helper_recorded_meanwhile_is_no_local_write() -> None:
    """ORD-1, ORD-7 (regression two-instances-deliver-out-of-order): two helpers on one store
    deliver two versions of a key at once. If the other helper recorded an older remote
    version while this callback ran, the newer one is stored over it; if it recorded this
    version, nothing changes; either way the delivery counts as stored, so the pass does not
    take the other helper's record for the app's write and push it back (a newer one recorded
    meanwhile: the next test)."""
    store = LocalStore()
    older = Record("c", "k", "older", 1, 1000, None, Version(1000, 0, "b"))
    newer = Record("c", "k", "newer", 1, 2000, None, Version(2000, 0, "b"))
    assert store.apply_remote(older, expected=None, clock=None)  # the other helper's record
    assert store.apply_remote(newer, expected=None, clock=None)
    stored = store.get("c", "k")
    assert stored is not None and stored.data == "newer" and not stored.pending
    assert store.apply_remote(newer, expected=None, clock=None)  # the same one, again
    stored = store.get("c", "k")
    assert stored is not None and stored.data == "newer" and not stored.pending


def test_an_older_delivery_returning_last_is_recorded_stale() -> None:
    """ORD-1, CB-5 (regression two-instances-older-delivery-returns-last): two helpers on one
    store deliver two versions of a key, and the older one's callback returns last, after the
    other helper recorded the newer one. The app holds the older one now: the store says so,
    marked stale so that the newer one is fetched and delivered again. A newer version this
    device wrote (the app's own, uploaded meanwhile) is left as it is."""
    store = LocalStore()
    store.set_device_id("me")
    older = Record("c", "k", "older", 1, 1000, None, Version(1000, 0, "b~1"))
    newer = Record("c", "k", "newer", 1, 2000, None, Version(2000, 0, "b~1"))
    assert store.apply_remote(newer, expected=None, clock=None)  # the other helper's record
    assert store.apply_remote(older, expected=None, clock=None)  # returned last
    stored = store.get("c", "k")
    assert stored is not None and stored.data == "older" and stored.stale
    assert store.stale_keys("c") == ["k"]
    own = Record("c", "j", "mine", 1, 3000, None, Version(3000, 0, "me~2"))
    store.apply_remote(own, expected=None, clock=None)  # stands for the app's uploaded write
    late = Record("c", "j", "older", 1, 1000, None, Version(1000, 0, "b~1"))
    assert store.apply_remote(late, expected=None, clock=None)
    kept = store.get("c", "j")
    assert kept is not None and kept.data == "mine" and not kept.stale


def test_pending_and_stale_lookups_use_their_indexes() -> None:
    """COST-1: finding what to upload or re-fetch reads an index, not every stored entry."""
    store = LocalStore()
    plans = []
    for sql in (
        "SELECT key FROM entries INDEXED BY entries_pending WHERE context = 'c' AND pending = 1",
        "SELECT key FROM entries INDEXED BY entries_stale WHERE context = 'c' AND stale = 1",
    ):
        rows = store._db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        plans.append(" ".join(str(row[-1]) for row in rows))
    assert "entries_pending" in plans[0] and "entries_stale" in plans[1]
    import inspect

    source = inspect.getsource(LocalStore.pending) + inspect.getsource(LocalStore.stale_keys)
    assert "INDEXED BY entries_pending" in source and "INDEXED BY entries_stale" in source


def test_set_base_keeps_the_known_vault_version_from_going_back() -> None:
    """SYNC-7, ORD-5: noting the vault's version never moves it backwards (unless the entry is
    stale), and the pending flag is cleared only for the pushed version, or forced; checked
    over every combination against the rule written out in Python."""
    versions = [
        Version(1000, 0, ""),  # legacy (sorts first at its millisecond)
        Version(1000, 0, "a"),
        Version(1000, 1, "a"),
        Version(1000, 1, "é"),  # a device id beyond ASCII
        Version(2000, 0, "b"),
    ]
    store = LocalStore()
    for local, known, stale, was_pending in itertools.product(
        versions, [None, *versions], (False, True), (False, True)
    ):
        start = Record("c", "k", {"x": 1}, 1, 2, None, local, known, was_pending, stale)
        for noted, pending, clear in itertools.product(
            versions, (None, False, True), (None, local, versions[0])
        ):
            with store._transaction():  # the starting state, exactly
                store._write(start, pending=was_pending, stale=stale)
            before = store.state("c", "k")
            assert before is not None and (before.base, before.stale) == (known, stale)
            store.set_base("c", "k", noted, pending=pending, clear_if_version=clear)
            want_pending = before.pending if pending is None else pending
            if clear is not None and before.version == clear:
                want_pending = False
            want_base = noted
            if before.base is not None and noted < before.base and not before.stale:
                want_base = before.base
            assert store.state("c", "k") == before._replace(base=want_base, pending=want_pending)
    assert store.get("c", "k").data == {"x": 1}  # type: ignore[union-attr]
    store.set_base("c", "absent", versions[0])  # nothing to note, nothing happens
    assert store.get("c", "absent") is None


def test_stale_keys_are_found_after_a_restart_and_a_new_mark(tmp_path: Path) -> None:
    """OFF-4: a key waiting for its newer remote version is still fetched after a restart
    (the store skips the lookup only for contexts that cannot have one)."""
    path = tmp_path / "store.db"
    store = LocalStore(path)
    version = Version(1000, 0, "d")
    put(store, record("c", "k", version=version))
    put(store, record("other", "k", version=version))
    assert store.stale_keys("c") == []
    store.mark_stale("c", "k", lost=version)
    assert store.stale_keys("c") == ["k"] and store.stale_keys("other") == []
    store.close()
    again = LocalStore(path)
    assert again.stale_keys("c") == ["k"] and again.stale_keys("other") == []
    again.clear_stale("c", ["k"])
    assert again.stale_keys("c") == []
    again.close()


def test_two_stores_on_one_file_stamp_increasing_versions(tmp_path: Path) -> None:
    """ORD-1 (issue 11): two helpers on one store file each keep a clock in memory; the store
    re-reads the persisted clock inside every write's transaction, so a write through either
    is stamped after every version written or seen through the other, whatever their device
    clocks say (here the second one's clock is an hour behind and its memory is stale)."""
    path = tmp_path / "shared.sqlite"
    first, second = LocalStore(path), LocalStore(path)
    now = 1_750_000_000.0
    fast = HybridClock("dev~aaaaaaaa", lambda: now, first.clock())
    slow = HybridClock("dev~bbbbbbbb", lambda: now - 3600, second.clock())
    written: list[Version] = []

    def write(store: LocalStore, clock: HybridClock, data: int) -> None:
        def change(current: Record | None, version: Version) -> Record:
            return Record("c", "k", data, 1, version.wall_ms, None, version, pending=True)

        rec = store.write_local("c", "k", clock, change)
        assert rec is not None
        written.append(rec.version)

    for turn in range(6):
        write(first if turn % 3 else second, fast if turn % 3 else slow, turn)
    assert written == sorted(written) and len(set(written)) == len(written)
    assert second.get("c", "k").data == 5  # type: ignore[union-attr]
    assert first.clock() == written[-1]
    first.close()
    second.close()


def test_the_persisted_clock_never_moves_back() -> None:
    """ORD-1: saving a clock state older than the stored one (another helper on the file saw a
    newer version) keeps the newer one."""
    store = LocalStore()
    newer = Version(2000, 0, "b~00000001")
    store.apply_remote(record("c", "k", version=newer), expected=None, clock=newer)
    store.apply_remote(
        record("c", "j", version=Version(1000, 0, "a~00000002")),
        expected=None,
        clock=Version(1000, 0, "a~00000002"),
    )
    assert store.clock() == newer


def test_a_change_that_writes_nothing_leaves_the_store_alone() -> None:
    """API-3, DEL-4: deleting a key that is not live (``change`` returns None) writes nothing."""
    store = LocalStore()
    clock = HybridClock("d~00000000", lambda: 5.0, None)
    assert store.write_local("c", "k", clock, lambda current, version: None) is None
    assert store.get("c", "k") is None and store.clock() is None
