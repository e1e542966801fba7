"""brh.hive.HiveVault against the development vault (vaultd) over real HTTP on 127.0.0.1.

One server for the module runs in a background thread with a clock the tests move; each test
gets a vault of its own (a fresh token for a fresh (user, app) scope).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from brh import BackupRestoreHelper, Entry
from brh.hive import API_PREFIX, HiveVault
from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InvalidParameterError,
    NetworkError,
    ObjectId,
    ServerError,
    UnauthorizedError,
    UpdateResult,
    VaultError,
)
from hivevault.vault import FakeVault
from tests.http_support import ManualClock, ServerThread, Tap, closed_port
from vaultd.app import create_app
from vaultd.store import VaultStore
from vaultd.tokens import Scope, TokenTable

T = TypeVar("T")
EPOCH = 1_750_000_000
LATE = httpx.Timeout(30.0, read=1.0)
"""A client that gives up on an answer after 1 s (a held one), but not on anything else."""


class Node:
    """The module's server: the app behind a :class:`Tap`, a clock, and a scope per test."""

    def __init__(self, directory: Path) -> None:
        self.clock = ManualClock(EPOCH)
        self.store = VaultStore(directory / "vault.sqlite", clock=self.clock)
        self.tokens = TokenTable()
        self.tap = Tap(create_app(self.store, self.tokens))
        self.server = ServerThread(self.tap)
        self._numbers = itertools.count(1)

    def new_token(self) -> str:
        """A token for a vault nobody used yet."""
        number = next(self._numbers)
        token = f"token-{number}"
        self.tokens.add(token, Scope(f"user-{number}", "app"))
        return token


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = Node(tmp_path_factory.mktemp("hive-http"))
    with node.server:
        yield node
        node.tap.release()
    node.store.close()


@pytest.fixture
def token(node: Node) -> str:
    node.clock.now = EPOCH
    node.tap.requests.clear()
    node.tap.hold = 0
    return node.new_token()


def run(node: Node, token: Any, use: Callable[[HiveVault], Awaitable[T]], **kwargs: Any) -> T:
    """Run ``use`` with a HiveVault on the module's server."""

    async def main() -> T:
        async with HiveVault(node.server.url, token, **kwargs) as vault:
            return await use(vault)

    return asyncio.run(main())


def statuses(node: Node) -> list[tuple[str, str, int]]:
    return [
        (method, path.removeprefix(API_PREFIX), status)
        for method, path, status in node.tap.requests
    ]


def test_every_operation_over_http(node: Node, token: str) -> None:
    """HTTP-3: each Vault operation goes through the server with Hive's method, path and
    status code; stamps come from the server's clock; ObjectIds round-trip."""

    async def use(v: HiveVault) -> None:
        assert await v.list_collections() == []
        await v.create_collection("c")
        one = await v.insert_one("c", {"k": "a", "n": 1})
        node.clock.now += 10
        many = await v.insert_many(
            "c", [{"k": "b", "n": 2}, {"k": "c", "n": 3, "ref": one.inserted_ids[0]}]
        )
        assert len(many.inserted_ids) == 2 and many.acknowledged
        first = await v.find_one("c", {"_id": one.inserted_ids[0]})
        assert first == {
            "_id": one.inserted_ids[0],
            "k": "a",
            "n": 1,
            "created": EPOCH,
            "modified": EPOCH,
        }
        assert [d["k"] for d in await v.find_many("c", {}, skip=1, limit=1)] == ["b"]
        assert [d["k"] for d in await v.find_many("c", {"ref": one.inserted_ids[0]})] == ["c"]
        ranked = await v.query(
            "c", {"n": {"$gte": 2}}, sort=[("n", -1)], projection={"k": 1, "_id": 0}
        )
        assert ranked == [{"k": "c"}, {"k": "b"}]
        assert await v.count_documents("c", {"n": {"$gt": 1}}) == 2
        node.clock.now += 10
        upsert = await v.update_one("c", {"k": "d"}, {"$set": {"n": 4}}, upsert=True)
        assert upsert.upserted_id is not None and upsert.matched_count == 0
        assert await v.update_many("c", {"n": {"$lt": 3}}, {"$inc": {"n": 10}}) == UpdateResult(
            True, 2, 2, None
        )
        stamps = {d["k"]: (d["created"], d["modified"]) for d in await v.find_many("c", {})}
        assert stamps == {
            "a": (EPOCH, EPOCH + 20),
            "b": (EPOCH + 10, EPOCH + 20),
            "c": (EPOCH + 10, EPOCH + 10),
            "d": (EPOCH + 20, EPOCH + 20),
        }
        await v.delete_one("c", {"n": {"$gt": 0}})
        await v.delete_many("c", {"k": {"$in": ["b", "c"]}})
        assert [d["k"] for d in await v.find_many("c", {})] == ["d"]
        assert await v.list_collections() == ["c"]
        await v.delete_collection("c")

    run(node, token, use)
    assert statuses(node) == [
        ("GET", "/collections", 404),
        ("PUT", "/collections/c", 200),
        ("POST", "/collection/c", 201),
        ("POST", "/collection/c", 201),
        ("GET", "/c", 200),
        ("GET", "/c", 200),
        ("GET", "/c", 200),
        ("POST", "/query", 201),
        ("POST", "/collection/c", 201),
        ("PATCH", "/collection/c", 200),
        ("PATCH", "/collection/c", 200),
        ("GET", "/c", 200),
        ("DELETE", "/collection/c", 204),
        ("DELETE", "/collection/c", 204),
        ("GET", "/c", 200),
        ("GET", "/collections", 200),
        ("DELETE", "/c", 204),
    ]


def _script(oid: ObjectId) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Operations covering filters, updates, sorts, projections and their errors."""
    return [
        ("create_collection", ("c",), {}),
        ("create_collection", ("c",), {}),
        (
            "insert_many",
            ("c", [{"key": k, "n": i, "tags": [k, "x"]} for i, k in enumerate("abcd")]),
            {},
        ),
        ("insert_one", ("c", {"_id": oid, "key": "e", "nested": {"deep": [1, {"v": 2}]}}), {}),
        ("insert_one", ("c", {"_id": oid}), {}),
        ("insert_many", ("c", [{"key": "f"}, {"_id": oid}, {"key": "g"}]), {"ordered": False}),
        ("find_many", ("c", {"tags": "x", "n": {"$ne": 2}}), {}),
        ("find_many", ("c", {"$or": [{"key": "a"}, {"nested.deep.v": 2}]}), {}),
        ("find_many", ("c", {"_id": {"$gte": oid}}), {}),
        ("find_many", ("c", {"n": {"$exists": False}}), {"limit": 2}),
        ("find_many", ("c", {"n": {"$bogus": 1}}), {}),
        ("find_many", ("c", {}), {"skip": -1}),
        ("query", ("c", {}), {"sort": [("n", -1), ("key", 1)], "skip": 1, "limit": 3}),
        ("query", ("c", {"key": {"$in": ["a", "e"]}}), {"projection": {"nested": 0, "tags": 0}}),
        ("query", ("c", {}), {"sort": [("n", 2)]}),
        ("count_documents", ("c", {"tags": {"$in": ["b", "c"]}}), {}),
        ("count_documents", ("c", {}), {"limit": 0}),
        ("update_one", ("c", {"key": "a"}, {"$set": {"n": 9}, "$unset": {"tags": ""}}), {}),
        ("update_many", ("c", {"n": {"$lt": 3}}, {"$inc": {"n": 100}}), {}),
        (
            "update_one",
            ("c", {"key": "z", "n": 5}, {"$setOnInsert": {"new": True}}),
            {"upsert": True},
        ),
        ("update_one", ("c", {"key": "a"}, {"replacement": 1}), {}),
        ("update_one", ("c", {"key": "a"}, {"$inc": {"modified": 1}}), {}),
        ("update_many", ("c", {}, {"$set": {"plain": 1}}), {"timestamp": False}),
        ("delete_one", ("c", {"n": {"$gte": 100}}), {}),
        ("delete_many", ("c", {"key": {"$in": ["c", "d"]}}), {}),
        ("find_many", ("c", {}), {}),
        ("create_collection", ("system.users",), {}),
        ("find_one", ("missing", {}), {}),
        ("delete_collection", ("c",), {}),
        ("count_documents", ("c", {}), {}),
    ]


def _outcome(result: Any) -> Any:
    if isinstance(result, VaultError):
        return (type(result).__name__, result.status, result.internal_code)
    return result


def test_the_server_answers_as_the_fake_vault(node: Node, token: str) -> None:
    """HTTP-3: the same operations give the same results and the same typed errors from the
    fake vault in memory and from HiveVault through the server (one implementation)."""
    oid = ObjectId("65a1b2c3d4e5f60718293a4b")
    fake = FakeVault(clock=node.clock)

    async def play(vault: Any) -> list[Any]:
        outcomes = []
        for op, args, kwargs in _script(oid):
            node.clock.now += 1
            try:
                outcomes.append(_outcome(await getattr(vault, op)(*args, **kwargs)))
            except VaultError as exc:
                outcomes.append(_outcome(exc))
        return outcomes

    start = node.clock.now
    over_http = run(node, token, play)
    node.clock.now = start
    in_memory = asyncio.run(play(fake))
    assert over_http == in_memory
    assert ("ServerError", 500, None) in in_memory and (
        "AlreadyExistsError",
        455,
        None,
    ) in in_memory


@pytest.mark.parametrize(
    "call",
    [
        lambda v: v.delete_collection("nope"),
        lambda v: v.insert_one("nope", {"a": 1}),
        lambda v: v.insert_many("nope", [{"a": 1}]),
        lambda v: v.update_one("nope", {}, {"$set": {"a": 1}}, upsert=True),
        lambda v: v.update_many("nope", {}, {"$set": {"a": 1}}),
        lambda v: v.delete_one("nope", {}),
        lambda v: v.delete_many("nope", {}),
        lambda v: v.find_one("nope", {}),
        lambda v: v.find_many("nope", {}),
        lambda v: v.query("nope", {}),
        lambda v: v.count_documents("nope", {}),
    ],
)
def test_every_operation_on_a_missing_collection_is_404_code_4(
    node: Node, token: str, call: Callable[[HiveVault], Awaitable[Any]]
) -> None:
    """DATA-1, RES-3: Hive's 404/4 arrives as CollectionNotFoundError, which the helper reads
    as "the collection is gone"."""
    with pytest.raises(CollectionNotFoundError) as info:
        run(node, token, call)
    assert (info.value.status, info.value.internal_code) == (404, 4)
    assert node.tap.requests[-1][2] == 404


def test_already_exists_bad_request_and_internal_error(node: Node, token: str) -> None:
    """DATA-1: a second create is AlreadyExistsError (455); a bad collection name or window is
    InvalidParameterError (400); invalid MongoDB input is ServerError (500)."""

    async def use(v: HiveVault) -> list[VaultError]:
        await v.create_collection("c")
        errors = []
        for call in (
            lambda: v.create_collection("c"),
            lambda: v.create_collection("system.profile"),
            lambda: v.find_many("c", {}, limit=-5),
            lambda: v.query("c", {"$where": "1"}),
        ):
            try:
                await call()
            except VaultError as exc:
                errors.append(exc)
        return errors

    errors = run(node, token, use)
    assert [type(e) for e in errors] == [
        AlreadyExistsError,
        InvalidParameterError,
        InvalidParameterError,
        ServerError,
    ]
    assert [e.status for e in errors] == [455, 400, 400, 500]
    assert "system.profile" in str(errors[1]) and "limit" in str(errors[2])


def test_a_401_renews_the_token_and_retries_the_write_once(node: Node, token: str) -> None:
    """HTTP-2: a token the server refuses is replaced by the provider's next one and the write
    is sent again once: it applies exactly once."""
    given = iter(["expired-token", token])
    calls = []

    async def provider() -> str:
        calls.append(1)
        return next(given)

    async def use(v: HiveVault) -> int:
        await v.create_collection("c")
        await v.insert_one("c", {"a": 1})
        return await v.count_documents("c", {})

    assert run(node, provider, use) == 1
    assert len(calls) == 2
    assert [status for _, _, status in node.tap.requests] == [401, 200, 201, 201]


def test_a_token_refused_twice_is_an_unauthorized_error(node: Node, token: str) -> None:
    """HTTP-2: when the renewed token is refused too, the request fails with
    UnauthorizedError after exactly two attempts, and nothing applied."""
    calls = []

    def provider() -> str:
        calls.append(1)
        return f"wrong-{len(calls)}"

    with pytest.raises(UnauthorizedError, match="unknown or expired"):
        run(node, provider, lambda v: v.create_collection("c"))
    assert len(calls) == 2 and [s for _, _, s in node.tap.requests] == [401, 401]
    assert run(node, token, lambda v: v.list_collections()) == []


def test_connection_refused_is_a_definite_network_error() -> None:
    """HTTP-1: nothing listens on the port: the write never left, NetworkError(definite=True)."""

    async def main() -> None:
        async with HiveVault(f"http://127.0.0.1:{closed_port()}", "tok", timeout=5) as v:
            await v.insert_one("c", {"a": 1})

    with pytest.raises(NetworkError) as info:
        asyncio.run(main())
    assert info.value.definite is True and "could not be reached" in str(info.value)


def test_a_write_whose_answer_times_out_is_indefinite_and_did_apply(node: Node, token: str) -> None:
    """HTTP-1: the server applies the write but its answer is late; the client gives up after
    its read timeout with NetworkError(definite=False), and indeed the write applied."""
    run(node, token, lambda v: v.create_collection("c"))
    node.tap.hold = 1
    with pytest.raises(NetworkError) as info:
        run(node, token, lambda v: v.insert_one("c", {"a": 1}), timeout=LATE)
    assert info.value.definite is False and "may have applied" in str(info.value)
    node.tap.release()
    assert run(node, token, lambda v: v.count_documents("c", {})) == 1


def test_helpers_sync_through_the_server_despite_a_lost_answer(
    node: Node, token: str, tmp_path: Path
) -> None:
    """ORD-5, HTTP-1, SYNC-1: a helper over HiveVault whose upload answer was lost fails the
    pass, retries it without creating a duplicate, and another helper receives the entry."""
    received: dict[str, Any] = {}

    def keep(entry: Entry) -> bool:
        received[entry.key] = entry.data
        return True

    async def main(directory: Path) -> tuple[bool, bool, int]:
        async with (
            HiveVault(node.server.url, token, timeout=LATE) as vault_a,
            HiveVault(node.server.url, token) as vault_b,
            BackupRestoreHelper(
                vault_a, directory / "a.sqlite", device_id="a", auto_sync=False
            ) as a,
            BackupRestoreHelper(
                vault_b, directory / "b.sqlite", device_id="b", auto_sync=False
            ) as b,
        ):
            a.add_sync_context("notes", keep, keep, keep)
            b.add_sync_context("notes", keep, keep, keep)
            assert await a.sync()  # creates the collection
            await a.upsert_database_entry("notes", "x", {"v": 1})
            node.tap.hold = 1
            lost = await a.sync()
            node.tap.release()
            again = await a.sync()
            await b.sync()
            documents = await vault_b.find_many("backup_notes", {})
            return bool(lost), bool(again), len(documents)

    assert asyncio.run(main(tmp_path)) == (False, True, 1)
    assert received == {"x": {"v": 1}}
