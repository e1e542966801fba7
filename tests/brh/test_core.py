"""The pure decision functions of the sync algorithm (SPEC §3, §4, §7)."""

from __future__ import annotations

from typing import Any

import pytest

from brh.core import (
    RULES,
    Action,
    Conflict,
    decide,
    entry_for_app,
    group_by_key,
    pass_order,
    pass_reason,
    pull_filter,
    resolve_conflict,
)
from brh.hlc import Version
from brh.store import Record
from brh.vault import ObjectId
from brh.wire import RemoteDoc, document_fields, parse_document, version_filter


def v(wall: int, device: str = "b", counter: int = 0) -> Version:
    return Version(wall, counter, device)


def remote(version: Version, *, deleted: bool = False, key: str = "k") -> RemoteDoc:
    return RemoteDoc(
        key=key,
        data={"v": version.wall_ms},
        creation_date=1,
        modification_date=version.wall_ms,
        deletion_date=version.wall_ms if deleted else None,
        version=version,
        stamp=100,
        doc_id=None,
    )


def local(
    version: Version,
    *,
    base: Version | None = None,
    deleted: bool = False,
    pending: bool = False,
) -> Record:
    return Record(
        context="c",
        key="k",
        data={"v": version.wall_ms},
        creation_date=1,
        modification_date=version.wall_ms,
        deletion_date=version.wall_ms if deleted else None,
        version=version,
        base=base,
        pending=pending,
    )


@pytest.mark.parametrize(
    ("local_record", "remote_doc", "expected"),
    [
        # CB-1: insertion for a key the device does not hold
        (None, remote(v(10)), Action.INSERT),
        (local(v(5, "a"), base=v(5, "a"), deleted=True), remote(v(10)), Action.INSERT),
        # CB-2: modification for a key it holds
        (local(v(5, "a"), base=v(5, "a")), remote(v(10)), Action.MODIFY),
        # CB-3: deletion for a remote delete of a key it holds
        (local(v(5, "a"), base=v(5, "a")), remote(v(10), deleted=True), Action.DELETE),
        # CB-4: no callback for tombstones of keys it does not hold, nor for known versions
        (None, remote(v(10), deleted=True), Action.ADOPT),
        (local(v(5, "a"), base=v(5, "a"), deleted=True), remote(v(10), deleted=True), Action.ADOPT),
        (local(v(10), base=v(10)), remote(v(10)), Action.SKIP),
        # CB-4: the device's own write coming back is an echo
        (local(v(10, "a"), base=v(5), pending=True), remote(v(10, "a")), Action.ECHO),
        # ORD-2/ORD-6: a newer local version (edit or delete) beats an older remote one
        (local(v(20, "a"), base=v(5), pending=True), remote(v(10)), Action.KEEP_LOCAL),
        (
            local(v(20, "a"), base=v(5), deleted=True, pending=True),
            remote(v(10)),
            Action.KEEP_LOCAL,
        ),
        # ORD-6: a newer remote edit beats an older local delete: re-inserted, never both
        (local(v(5, "a"), base=v(1), deleted=True, pending=True), remote(v(10)), Action.INSERT),
        # ORD-4: an older duplicate of a key whose newer version is known
        (local(v(10), base=v(10)), remote(v(7)), Action.DOMINATED),
    ],
)
def test_decision_table(
    local_record: Record | None, remote_doc: RemoteDoc, expected: Action
) -> None:
    """CB-1, CB-2, CB-3, CB-4, ORD-2, ORD-4, ORD-6: which callback a remote version gets."""
    assert decide(local_record, remote_doc).action is expected


def test_equal_wall_times_still_pick_one_winner() -> None:
    """ORD-2 (W8): same modificationDate, different devices: both devices agree on the winner."""
    mine, theirs = v(10, "a"), v(10, "b")
    on_a = decide(local(mine, base=v(1), pending=True), remote(theirs))
    on_b = decide(local(theirs, base=v(1), pending=True), remote(mine))
    assert on_a.action is Action.MODIFY  # b's write wins on a
    assert on_b.action is Action.KEEP_LOCAL  # and b keeps it


def test_duplicates_resolve_to_the_highest_version_in_first_seen_order() -> None:
    """ORD-4 (W4): duplicates of one key: the highest version wins, the others are dominated."""
    docs = [remote(v(5, "a")), remote(v(1), key="other"), remote(v(9, "b")), remote(v(7, "c"))]
    grouped = group_by_key(docs)
    assert [winner.key for winner, _ in grouped] == ["k", "other"]
    winner, losers = grouped[0]
    assert winner.version == v(9, "b")
    assert sorted(d.version for d in losers) == [v(5, "a"), v(7, "c")]


@pytest.mark.parametrize(
    ("docs", "kind"),
    [
        ([], Conflict.RECREATE),
        ([remote(v(10, "a"))], Conflict.LANDED),
        ([remote(v(10, "a")), remote(v(3))], Conflict.LANDED),
        ([remote(v(7))], Conflict.RETRY),
        ([remote(v(12))], Conflict.REMOTE_WINS),
        ([remote(v(10, "a")), remote(v(12))], Conflict.REMOTE_WINS),
    ],
)
def test_failed_compare_and_set_resolution(docs: list[RemoteDoc], kind: Conflict) -> None:
    """SYNC-7, ORD-5: a CAS that matched nothing resolves from the key's documents."""
    assert resolve_conflict(local(v(10, "a"), base=v(1), pending=True), docs).kind is kind


def test_pull_filters() -> None:
    """SYNC-4, SYNC-9, COST-1: by vault stamp from the cursor minus the overlap, skipping the
    versions already processed in the window, then keyset pages on (modified, _id)."""
    assert pull_filter(None, 5) == {}
    assert pull_filter(100, 5) == {"modified": {"$gte": 95}}
    assert pull_filter(100, 5, ["v2", "v1", "v2"]) == {
        "$or": [
            {"modified": {"$gt": 100}},
            {"modified": {"$gte": 95, "$lte": 100}, "brhVersion": {"$nin": ["v1", "v2"]}},
        ]
    }
    oid = ObjectId("0" * 23 + "1")
    page = {"$or": [{"modified": {"$gt": 120}}, {"modified": 120, "_id": {"$gt": oid}}]}
    assert pull_filter(None, 5, after=(120, oid)) == page
    assert pull_filter(100, 5, after=(120, oid)) == {"$and": [{"modified": {"$gte": 95}}, page]}


def test_documents_keep_the_original_fields() -> None:
    """DATA-2, DATA-3: the original helper's fields, plus brhVersion and brhFormat."""
    version = v(1_750_000_000_123, "dev", 4)
    fields = document_fields("k", {"a": 1}, 1_700_000_000_000, None, version)
    assert fields == {
        "key": "k",
        "data": {"a": 1},
        "creationDate": 1_700_000_000_000,
        "modificationDate": 1_750_000_000_123,
        "deletionDate": None,
        "brhVersion": "001750000000123.000004.dev",
        "brhFormat": 1,
    }
    parsed = parse_document({**fields, "modified": 1_750_000_001, "_id": ObjectId("a" * 24)})
    assert parsed is not None and parsed.version == version and parsed.stamp == 1_750_000_001


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"key": "k", "modificationDate": 50, "data": 1}, Version.legacy(50)),
        (  # rewritten by the original with $set: brhVersion no longer matches
            {"key": "k", "modificationDate": 60, "brhVersion": "000000000000050.000000.x"},
            Version.legacy(60),
        ),
        ({"key": "k", "modificationDate": 50, "brhVersion": "garbage"}, Version.legacy(50)),
    ],
)
def test_legacy_documents(doc: dict[str, Any], expected: Version) -> None:
    """DATA-4: documents the original helper wrote get a version from modificationDate."""
    parsed = parse_document(doc)
    assert parsed is not None and parsed.version == expected
    assert version_filter("k", expected) == {"key": "k", "modificationDate": expected.wall_ms}


@pytest.mark.parametrize(
    "doc",
    [{}, {"key": "", "modificationDate": 1}, {"key": 3, "modificationDate": 1}, {"key": "k"}],
)
def test_documents_that_are_not_entries(doc: dict[str, Any]) -> None:
    """DATA-6: a document without a string key and integer modificationDate is not an entry."""
    assert parse_document(doc) is None


def test_the_pass_decisions_a_helper_takes_from_its_rules() -> None:
    """API-1: a pass visits the contexts in registration order; API-4: its reason is the worst
    of what happened, and none means it completed; CB-9: a callback's entry has its own copy of
    the data (changing it leaves the pulled version alone)."""
    assert RULES.pass_order is pass_order and RULES.pass_reason is pass_reason
    assert pass_order(["photos", "contacts", "notes"]) == ["photos", "contacts", "notes"]
    assert pass_reason(False, False, False) is None
    assert pass_reason(True, True, True) == "refused"
    assert pass_reason(False, True, True) == "vault_error"
    assert pass_reason(False, False, True) == "rejected"
    remote = RemoteDoc("k", {"tags": ["a"]}, 1, 2, None, Version(2, 0, "w"), 1, None)
    entry = entry_for_app(remote)
    entry.data["tags"].append("b")
    assert remote.data == {"tags": ["a"]}
    assert (entry.key, entry.creation_date, entry.modification_date) == ("k", 1, 2)
