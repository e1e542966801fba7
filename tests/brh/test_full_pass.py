"""A full pass of a context that has a cursor reads a projection first (COST-2, SYNC-10; issue
15 item 3): the whole documents of the keys that may have changed follow, by key, at most one
request per page; a first pull still reads whole documents (COST-2, COST-3).

The machine tests answer the effects from a :class:`~tests.brh.test_machine.Device` and a list
of vault documents; the last test runs the helper on the fake vault and sizes its answers as
Hive sends them (``brh.hive_wire.dumps``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from brh import effects as fx
from brh.core import FULL_PASS_PROJECTION, RULES, Action
from brh.hive_wire import dumps
from brh.hlc import Version
from brh.options import SyncOptions
from brh.store import ContextState, Record
from brh.vault import Document, UpdateResult
from hivevault.mongo import compile_projection
from simulator.timeloop import run
from tests.brh.test_machine import NOW_MS, STAMP, Device, doc, v
from tests.support import EPOCH, fake_vault, settle
from tests.support import Device as SimDevice


def synced(key: str, version: Version, **flags: Any) -> Record:
    """A local entry the vault holds at ``version`` (its base), unless ``flags`` say more."""
    fields: dict[str, Any] = {"base": version, **flags}
    return Record("notes", key, key, version.wall_ms, version.wall_ms, None, version, **fields)


class Vault:
    """The documents of ``backup_notes``, in pull order (and ``_id`` order); answers the pull's
    pages (projected as asked) and the fetches by key, and counts each request."""

    def __init__(self, docs: list[Document]) -> None:
        self.docs = docs
        self.requests: list[fx.Effect] = []

    def __call__(self, effect: fx.Effect) -> Any:
        self.requests.append(effect)
        if isinstance(effect, fx.Query):
            assert effect.skip == 0 and effect.limit is not None
            if effect.projection is not None:  # a full pass: in _id order, keyset {"_id": ...}
                assert effect.sort == (("_id", 1),)
                after = effect.filter
            else:  # a pull: keyset {"$or": [..., {"modified": s, "_id": ...}]}
                after = effect.filter.get("$or", [{}, {}])[1]
            start = 0
            if after:
                last = after["_id"]["$gt"]
                start = next(i for i, d in enumerate(self.docs) if d["_id"] == last) + 1
            page = self.docs[start : start + effect.limit]
            if effect.projection is None:
                return [dict(d) for d in page]
            shape = compile_projection(effect.projection)
            return [shape(d) for d in page]
        if isinstance(effect, fx.FindMany):
            keys = effect.filter["key"]["$in"]
            return [dict(d) for d in self.docs if d["key"] in keys]
        if isinstance(effect, fx.UpdateOne):
            return UpdateResult(True, 1, 1)
        return None


class Synced(Device):
    """A device whose synced live keys are its records (what reconcile_missing asks)."""

    def answer(self, effect: fx.Effect) -> Any:
        if isinstance(effect, fx.Query) and self.vault is not None:  # every page from the vault
            self.effects.append(effect)
            return self.vault(effect)
        if isinstance(effect, fx.LiveSyncedKeys):
            self.effects.append(effect)
            return sorted(k for k, r in self.records.items() if not r.pending and not r.deleted)
        return super().answer(effect)


CURSOR = ContextState("notes", cursor=STAMP + 100, collection_ready=True, last_full_ms=NOW_MS)


def device(records: dict[str, Record], docs: list[Document]) -> Synced:
    """A device with a cursor, whose vault holds ``docs`` (in pull order)."""
    return Synced(records=records, state=CURSOR, vault=Vault(docs))


def requests(device: Device) -> list[fx.Effect]:
    assert isinstance(device.vault, Vault)
    return device.vault.requests


def test_a_full_pass_of_unchanged_entries_asks_only_for_the_projection() -> None:
    """COST-2, SYNC-10: every entry is held at the vault's version: one projection query, no
    fetch, no callback, no write of an entry, and the full pass is recorded."""
    docs = [doc(k, k, v(i), STAMP + i, n=i) for i, k in enumerate("abc", start=1)]
    one = device({d["key"]: synced(d["key"], v(i)) for i, d in enumerate(docs, start=1)}, docs)
    outcome = one.run(rules=RULES, full=True)
    assert outcome.result.completed and outcome.result.pulled == 3
    (query,) = requests(one)
    assert isinstance(query, fx.Query) and query.projection == FULL_PASS_PROJECTION
    assert one.kinds(fx.Deliver) == [] and one.kinds(fx.ApplyRemote) == []
    assert one.kinds(fx.Requeue) == [] and one.kinds(fx.SetBase) == []
    assert one.state.last_full_ms == NOW_MS and one.state.cursor == STAMP + 100


def test_a_full_pass_fetches_by_key_exactly_the_keys_that_may_have_changed() -> None:
    """COST-2, SYNC-10, CB-2, CB-1: of six keys, one is unchanged; the others (a newer vault
    version, a pending local change, a stale entry, a key this device lacks, a document of the
    original helper) are fetched whole in one request, in page order, and decided as today."""
    legacy = {**doc("f", "old", Version.legacy(NOW_MS + 6), STAMP + 6, n=6)}
    del legacy["brhVersion"]
    docs = [
        doc("a", "same", v(1), STAMP + 1, n=1),
        doc("b", "newer", v(20), STAMP + 2, n=2),
        doc("c", "mine", v(3, "a~1"), STAMP + 3, n=3),
        doc("d", "same", v(4), STAMP + 4, n=4),
        doc("e", "new", v(5), STAMP + 5, n=5),
        legacy,
    ]
    records = {
        "a": synced("a", v(1)),
        "b": synced("b", v(2)),
        "c": synced("c", v(3, "a~1"), base=v(0), pending=True),  # its upload's answer was lost
        "d": synced("d", v(4), stale=True),
        "f": synced("f", Version.legacy(NOW_MS + 6)),
    }
    one = device(records, docs)
    assert one.run(rules=RULES, full=True).result.completed
    query, fetch = requests(one)[:2]
    assert isinstance(query, fx.Query) and query.projection == FULL_PASS_PROJECTION
    assert isinstance(fetch, fx.FindMany)
    assert fetch.filter == {"key": {"$in": ["b", "c", "d", "e", "f"]}}
    assert [(e.action, e.remote.key) for e in one.kinds(fx.Deliver)] == [
        (Action.MODIFY, "b"),
        (Action.INSERT, "e"),
    ]
    assert one.records["b"].data == "newer" and one.records["e"].data == "new"
    pulled = one.effects[: next(i for i, e in enumerate(one.effects) if isinstance(e, fx.Pending))]
    echoed = [e.key for e in pulled if isinstance(e, fx.SetBase) and e.clear_if_version]
    assert echoed == ["c"]  # the echo of its own write: landed, no callback
    assert [k for e in one.kinds(fx.ClearStale) for k in e.keys] == ["d"]


def test_the_fetches_cost_at_most_one_request_per_projection_page() -> None:
    """COST-2, SYNC-9: pages of two; a changed key in the first and third pages costs one fetch
    each, the page in between none; the pages follow the keyset."""
    docs = [doc(f"k{i}", i, v(i), STAMP + i, n=i) for i in range(1, 7)]
    records = {d["key"]: synced(d["key"], v(i)) for i, d in enumerate(docs, start=1)}
    records["k1"] = synced("k1", v(0))
    records["k6"] = synced("k6", v(0))
    one = device(records, docs)
    options = SyncOptions(page_size=2)
    assert one.run(rules=RULES, full=True, options=options).result.completed
    kinds = [type(e).__name__ for e in requests(one)]
    assert kinds == ["Query", "FindMany", "Query", "Query", "FindMany"]
    fetched = [e.filter["key"]["$in"] for e in requests(one) if isinstance(e, fx.FindMany)]
    assert fetched == [["k1"], ["k6"]]
    assert [e.remote.key for e in one.kinds(fx.Deliver)] == ["k1", "k6"]


@pytest.mark.parametrize(
    ("vault_time", "cursor", "settled"),
    [
        (STAMP + 1000.7, STAMP + 1000 - 6, True),  # every write stamped up to here was visible
        (STAMP + 106.0, STAMP + 100, True),  # not past the cursor: it stays, and it settles
        (STAMP + 105.0, STAMP + 100, False),  # inside the overlap: neither moves nor settles
        (None, STAMP + 100, False),  # the vault's clock unknown: the cursor stays
    ],
)
def test_a_complete_full_pass_moves_the_cursor_by_the_vaults_clock_before_it(
    vault_time: float | None, cursor: int, settled: bool
) -> None:
    """SYNC-4, SYNC-10, COST-2 (issue 15 item 3): a full pass of projections reads no vault
    stamp, so it moves the cursor only once complete, to what the vault's clock read before it
    was sent, less the overlap and the stamp's second; never back. The first page starts from
    no filter, the next after the last ``_id``, in ``_id`` order."""
    docs = [doc(f"k{i}", i, v(i), STAMP + 50 * i, n=i) for i in range(1, 6)]
    records = {d["key"]: synced(d["key"], v(i)) for i, d in enumerate(docs, start=1)}
    one = device(records, docs)
    one.vault_time = vault_time
    assert one.run(rules=RULES, full=True, options=SyncOptions(page_size=2)).result.completed
    assert (one.state.cursor, one.state.settled, one.state.window) == (cursor, settled, ())
    queries = [e for e in requests(one) if isinstance(e, fx.Query)]
    assert [q.filter for q in queries] == [
        {},
        {"_id": {"$gt": docs[1]["_id"]}},
        {"_id": {"$gt": docs[3]["_id"]}},
    ]
    assert {q.sort for q in queries} == {(("_id", 1),)}
    assert not one.kinds(fx.FindMany)  # every key held at its version: nothing fetched


def test_a_full_pass_that_cannot_move_the_cursor_keeps_its_window() -> None:
    """SYNC-4, COST-1: a full pass of projections sent before the vault's clock passed the
    cursor's overlap leaves the cursor where it was, and the versions already processed in its
    window stay known: the next pull does not read them again."""
    docs = [doc(f"k{i}", i, v(i), STAMP + 98 + i, n=i) for i in range(1, 3)]
    records = {d["key"]: synced(d["key"], v(i)) for i, d in enumerate(docs, start=1)}
    one = device(records, docs)
    window = ((STAMP + 99, v(1).encode()), (STAMP + 100, v(2).encode()))
    one.state = replace(CURSOR, window=window)
    one.vault_time = STAMP + 102.0
    assert one.run(rules=RULES, full=True).result.completed
    assert (one.state.cursor, one.state.settled, one.state.window) == (STAMP + 100, False, window)


def test_a_full_pass_still_finds_what_the_vault_lost() -> None:
    """SYNC-10, RES-3: the projection names every key the vault holds; a synced entry it no
    longer has is uploaded again, the others are left alone."""
    docs = [doc("a", "a", v(1), STAMP + 1, n=1)]
    one = device({"a": synced("a", v(1)), "gone": synced("gone", v(2))}, docs)
    assert one.run(rules=RULES, full=True).result.completed
    assert [e.key for e in one.kinds(fx.Requeue)] == ["gone"]
    (query,) = requests(one)
    assert isinstance(query, fx.Query) and query.projection == FULL_PASS_PROJECTION
    assert one.kinds(fx.Deliver) == []


def test_a_key_with_two_documents_in_a_page_is_fetched_and_its_duplicate_removed() -> None:
    """COST-2, ORD-4: the page holds the entry's version and an older duplicate of it: both
    are fetched by key and the older one is deleted, as an incremental pull would."""
    docs = [doc("a", "old", v(1), STAMP + 1, n=1), doc("a", "same", v(2), STAMP + 2, n=2)]
    docs.append(doc("b", "b", v(3), STAMP + 3, n=3))
    one = device({"a": synced("a", v(2)), "b": synced("b", v(3))}, docs)
    assert one.run(rules=RULES, full=True).result.completed
    fetch = [e.filter for e in requests(one) if isinstance(e, fx.FindMany)]
    assert fetch == [{"key": {"$in": ["a"]}}]
    deleted = [e.filter for e in one.kinds(fx.DeleteOne)]
    assert deleted == [{"key": "a", "brhVersion": v(1).encode()}]
    assert one.kinds(fx.Deliver) == []


def test_a_first_pull_and_a_full_pass_without_the_projection_read_whole_documents() -> None:
    """COST-2, COST-3: a context without a cursor restores from whole documents (no fetch by
    key); the Rules seam turns the projection off for a full pass too."""
    docs = [doc("a", "a", v(1), STAMP + 1, n=1)]
    fresh = Synced(records={}, vault=Vault(docs))
    assert fresh.run(rules=RULES, full=True).result.delivered == 1
    assert [type(e).__name__ for e in requests(fresh)] == ["CreateCollection", "Query"]
    assert [e.projection for e in requests(fresh) if isinstance(e, fx.Query)] == [None]
    off = device({"a": synced("a", v(1))}, docs)
    off.run(rules=replace(RULES, full_pass_projection=False), full=True)
    assert [e.projection for e in requests(off)] == [None]  # type: ignore[attr-defined]


# -- what it costs on the wire ---------------------------------------------------------------

UNCHANGED_BYTES = 150
"""What one unchanged entry's projection may cost in a full pass's answers with this test's
keys and device ids (issue 15 item 3's target; about 140 bytes)."""


async def full_pass_answers(entries: int, data: str) -> tuple[int, dict[str, int]]:
    """Bytes of the answers of a periodic full pass on a device holding ``entries`` unchanged
    entries, each with ``data``, and its requests by operation."""
    vault = fake_vault()
    a = SimDevice("a", vault, auto_sync=False)
    for i in range(entries):
        await a.helper.upsert_database_entry("notes", f"k{i}", data)
    await settle(a)
    await asyncio.sleep(86_400 + 60)  # the next pass is a periodic full pass (SYNC-11)
    answers: list[list[Document]] = []
    query = vault.query

    async def metered(*args: Any, **kwargs: Any) -> list[Document]:
        answer = await query(*args, **kwargs)
        answers.append(answer)
        return answer

    vault.query = metered  # type: ignore[method-assign]
    vault.reset_log()
    assert await a.helper.sync()
    await a.helper.close()
    size = sum(
        len(dumps({"items": docs, "is_encrypt": False, "encrypt_method": ""})) for docs in answers
    )
    return size, vault.counts_by_op()


def test_an_unchanged_entry_costs_its_projection_not_its_data() -> None:
    """COST-2 (issue 15 item 3): a periodic full pass over 600 unchanged entries of 2 KB each
    answers with their projections only, two pages of them: at most 150 bytes per entry
    whatever the data's size, and no fetch by key."""
    size, ops = run(full_pass_answers(600, "x" * 2000), start=EPOCH)
    assert ops == {"query": 2}
    assert size <= 600 * UNCHANGED_BYTES, size / 600


async def write_during_full_pass() -> tuple[Any, Any]:
    vault = fake_vault()
    a = SimDevice("a", vault, auto_sync=False)
    b = SimDevice("b", vault, auto_sync=False, page_size=2)
    for i in range(6):
        await a.put(f"k{i}", i)
    assert await a.helper.sync()
    for _ in range(2):
        await asyncio.sleep(60)
        assert await b.helper.sync()
    query = vault.query
    pages = 0

    async def racing(*args: Any, **kwargs: Any) -> list[Document]:
        nonlocal pages
        if kwargs.get("projection") is not None:
            pages += 1
            if pages == 2:  # k0's projection was read with the first page: a changes it now
                await a.put("k0", "during the full pass")
                assert await a.helper.sync()
        return await query(*args, **kwargs)

    vault.query = racing  # type: ignore[method-assign]
    assert await b.helper.sync(full=True)
    during = b.app.items["k0"]
    assert await b.helper.sync()  # incremental: the cursor left k0's new stamp unread
    after = b.app.items["k0"]
    await a.helper.close()
    await b.helper.close()
    return during, after


def test_a_write_behind_the_full_pass_keyset_is_read_by_the_next_pull() -> None:
    """SYNC-4, SYNC-10 (issue 15 item 3): a full pass in ``_id`` order does not see a document
    changed behind its keyset while it runs; the cursor it leaves (the vault's clock before it,
    less the overlap) is below that change's stamp, so the next incremental pull delivers it. A
    cursor moved to the vault's clock itself and taken as settled would skip it for good (the
    change is stamped in the same vault second)."""
    during, after = run(write_during_full_pass(), start=EPOCH)
    assert during == 0
    assert after == "during the full pass"
