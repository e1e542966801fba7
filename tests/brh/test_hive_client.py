"""brh.hive.HiveVault on its own: the requests it sends and how it reads answers and failures.

The vault here is an ``httpx.MockTransport`` that records each request and answers as a test
says (no network); ``tests/brh/test_hive_http.py`` runs the same client against the real server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from brh.errors import InvalidArgumentError
from brh.hive import API_PREFIX, MAX_FIND_URL, HiveVault
from brh.hive_wire import decode, dumps, encode, error_body, error_for, loads
from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InsertResult,
    InvalidParameterError,
    NetworkError,
    ObjectId,
    ServerError,
    UnauthorizedError,
    UpdateResult,
    Vault,
    VaultError,
    VaultFrozenError,
    VaultNotFoundError,
)

T = TypeVar("T")
URL = "http://vault.test"
OID = ObjectId("65a1b2c3d4e5f60718293a4b")
OID2 = ObjectId("65a1b2c3d4e5f60718293a4c")

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeNode:
    """A MockTransport handler: records requests, answers with queued responses (or 200 {})."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            return httpx.Response(200, json={})
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


def vault(node: FakeNode, token: Any = "tok", **kwargs: Any) -> HiveVault:
    return HiveVault(URL, token, transport=httpx.MockTransport(node), **kwargs)


def answer(status: int, body: Any = None) -> httpx.Response:
    return httpx.Response(status, json=body) if body is not None else httpx.Response(status)


def hive_error(status: int, message: str, code: int | None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "internal_code": code}})


# -- the wire format of each operation ----------------------------------------------------------


def test_hive_vault_implements_the_vault_protocol() -> None:
    """HiveVault offers every method of brh.vault.Vault, so the helper accepts it."""
    assert isinstance(HiveVault(URL, "tok"), Vault)


def test_collection_requests() -> None:
    """HTTP-3: create is PUT /collections/{name}, delete is DELETE /{name}, list is
    GET /collections; names are percent-encoded; every request carries 'token <jwt>'."""
    node = FakeNode(
        answer(200, {"name": "a b"}),
        answer(204),
        answer(200, {"collections": [{"name": "x", "is_encrypt": False, "encrypt_method": ""}]}),
    )
    v = vault(node)
    run(v.create_collection("a b"))
    run(v.delete_collection("a/b"))
    assert run(v.list_collections()) == ["x"]
    assert [(r.method, r.url.raw_path.decode()) for r in node.requests] == [
        ("PUT", f"{API_PREFIX}/collections/a%20b"),
        ("DELETE", f"{API_PREFIX}/a%2Fb"),
        ("GET", f"{API_PREFIX}/collections"),
    ]
    assert {r.headers["authorization"] for r in node.requests} == {"token tok"}


def test_list_collections_reads_404_as_none() -> None:
    """Hive answers GET /collections with 404 when the vault has no collection."""
    node = FakeNode(hive_error(404, "Can not find any collection.", 4))
    assert run(vault(node).list_collections()) == []


def test_insert_sends_documents_and_options_and_reads_hex_ids() -> None:
    """HTTP-3: inserts POST {"document": [...], "options": {...}} with ObjectIds as {"$oid"};
    the answer's hex ids come back as ObjectIds."""
    node = FakeNode(
        answer(201, {"acknowledged": True, "inserted_ids": [OID.hex]}),
        answer(201, {"acknowledged": True, "inserted_ids": [OID.hex, {"$oid": OID2.hex}]}),
    )
    v = vault(node)
    assert run(v.insert_one("c", {"_id": OID, "a": (1, 2)})) == InsertResult(True, [OID])
    assert (node.last.method, node.last.url.path) == ("POST", f"{API_PREFIX}/collection/c")
    assert node.body() == {
        "document": [{"_id": {"$oid": OID.hex}, "a": [1, 2]}],
        "options": {"ordered": True, "bypass_document_validation": False, "timestamp": True},
    }
    result = run(v.insert_many("c", [{"a": 1}, {"b": 2}], ordered=False, timestamp=False))
    assert result == InsertResult(True, [OID, OID2])
    assert node.body()["options"] == {
        "ordered": False,
        "bypass_document_validation": False,
        "timestamp": False,
    }


def test_update_sends_filter_update_options_and_reads_counts() -> None:
    """HTTP-3: updates PATCH /collection/{name}?updateone=true|false; ObjectIds in the filter
    and the update travel as {"$oid"}; upserted_id comes back as an ObjectId."""
    counts = {"acknowledged": True, "matched_count": 0, "modified_count": 0}
    node = FakeNode(
        answer(200, {**counts, "upserted_id": OID.hex}),
        answer(200, {**counts, "matched_count": 2, "modified_count": 1, "upserted_id": None}),
    )
    v = vault(node)
    result = run(v.update_one("c", {"_id": {"$gt": OID}}, {"$set": {"r": OID2}}, upsert=True))
    assert result == UpdateResult(True, 0, 0, OID)
    assert (node.last.method, node.last.url.path) == ("PATCH", f"{API_PREFIX}/collection/c")
    assert node.last.url.params["updateone"] == "true"
    assert node.body() == {
        "filter": {"_id": {"$gt": {"$oid": OID.hex}}},
        "update": {"$set": {"r": {"$oid": OID2.hex}}},
        "options": {"upsert": True, "bypass_document_validation": False, "timestamp": True},
    }
    assert run(v.update_many("c", {}, {"$inc": {"n": 1}}, timestamp=False)) == UpdateResult(
        True, 2, 1, None
    )
    assert node.last.url.params["updateone"] == "false"
    assert node.body()["options"]["timestamp"] is False


def test_delete_documents_send_the_filter_in_a_delete_body() -> None:
    """DELETE /collection/{name}?deleteone=true|false with {"filter"}; 204 has no count."""
    node = FakeNode(answer(204), answer(204))
    v = vault(node)
    assert run(v.delete_one("c", {"_id": OID})) is None
    assert node.last.url.params["deleteone"] == "true"
    assert node.body() == {"filter": {"_id": {"$oid": OID.hex}}}
    run(v.delete_many("c", {"k": {"$in": ["a", "b"]}}))
    assert (node.last.method, node.last.url.path) == ("DELETE", f"{API_PREFIX}/collection/c")
    assert node.last.url.params["deleteone"] == "false"
    assert node.body() == {"filter": {"k": {"$in": ["a", "b"]}}}


def test_find_is_a_get_with_a_json_filter_and_decodes_oids() -> None:
    """HTTP-3: find is GET /{name}?filter=<JSON>&skip=&limit=; find_one asks for one document;
    {"$oid"} values in the answer (at any depth) become ObjectIds."""
    items = [{"_id": {"$oid": OID.hex}, "ref": [{"$oid": OID2.hex}], "n": 1}]
    node = FakeNode(answer(200, {"items": items}), answer(200, {"items": items}))
    v = vault(node)
    found = run(v.find_many("c", {"_id": OID}, skip=2, limit=3))
    assert found == [{"_id": OID, "ref": [OID2], "n": 1}]
    request = node.last
    assert (request.method, request.url.path) == ("GET", f"{API_PREFIX}/c")
    assert json.loads(request.url.params["filter"]) == {"_id": {"$oid": OID.hex}}
    assert (request.url.params["skip"], request.url.params["limit"]) == ("2", "3")
    assert run(v.find_one("c", {})) == found[0]
    assert node.last.url.params["limit"] == "1"
    node.answers.append(answer(200, {"items": []}))
    assert run(v.find_one("c", {})) is None


def test_find_without_limit_sends_no_limit() -> None:
    """Hive has no default limit: find_many without one must not send one."""
    node = FakeNode(answer(200, {"items": []}))
    run(vault(node).find_many("c", {}))
    assert "limit" not in node.last.url.params and node.last.url.params["skip"] == "0"


def test_a_find_too_long_for_a_url_becomes_an_unsorted_query() -> None:
    """A filter that would make the GET URL longer than MAX_FIND_URL goes in the body of an
    unsorted POST /query, which answers the same documents in the same order."""
    keys = [f"key-{i:04d}" for i in range(MAX_FIND_URL // 10)]
    node = FakeNode(answer(201, {"items": [{"key": "key-0001"}]}))
    assert run(vault(node).find_many("c", {"key": {"$in": keys}}, skip=1)) == [{"key": "key-0001"}]
    assert (node.last.method, node.last.url.path) == ("POST", f"{API_PREFIX}/query")
    assert node.body() == {
        "collection": "c",
        "filter": {"key": {"$in": keys}},
        "options": {"skip": 1},
    }


def test_query_sends_sort_as_pairs_projection_and_window() -> None:
    """HTTP-3: query is POST /query {"collection", "filter", "options": {"skip", "limit",
    "projection", "sort": [[field, ±1]]}} (201); ObjectIds in the filter as {"$oid"}."""
    node = FakeNode(answer(201, {"items": [{"_id": {"$oid": OID.hex}}]}))
    found = run(
        vault(node).query(
            "c",
            {"$or": [{"m": {"$gt": 5}}, {"m": 5, "_id": {"$gt": OID2}}]},
            sort=[("m", 1), ("_id", -1)],
            skip=3,
            limit=10,
            projection={"key": 1},
        )
    )
    assert found == [{"_id": OID}]
    assert (node.last.method, node.last.url.path) == ("POST", f"{API_PREFIX}/query")
    assert node.body() == {
        "collection": "c",
        "filter": {"$or": [{"m": {"$gt": 5}}, {"m": 5, "_id": {"$gt": {"$oid": OID2.hex}}}]},
        "options": {
            "skip": 3,
            "limit": 10,
            "projection": {"key": 1},
            "sort": [["m", 1], ["_id", -1]],
        },
    }


def test_count_is_a_post_with_op_count() -> None:
    """count: POST /collection/{name}?op=count {"filter", "options": {"skip", "limit"}} → 201."""
    node = FakeNode(answer(201, {"count": 7}))
    assert run(vault(node).count_documents("c", {"k": "a"}, skip=1, limit=9)) == 7
    assert (node.last.method, node.last.url.path) == ("POST", f"{API_PREFIX}/collection/c")
    assert node.last.url.params["op"] == "count"
    assert node.body() == {"filter": {"k": "a"}, "options": {"skip": 1, "limit": 9}}


def test_base_url_with_a_path_prefix_and_trailing_slash() -> None:
    """A node behind a path prefix (a reverse proxy) keeps it; a trailing slash is ignored."""
    node = FakeNode(answer(200, {"name": "c"}))
    v = HiveVault("https://proxy.test/hive/", "tok", transport=httpx.MockTransport(node))
    run(v.create_collection("c"))
    assert str(node.last.url) == f"https://proxy.test/hive{API_PREFIX}/collections/c"


# -- answers the client cannot use --------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, content=b"<html>ok</html>"),
        httpx.Response(201, json=["not", "an", "object"]),
        httpx.Response(201, json={"acknowledged": True}),
        httpx.Response(201, json={"inserted_ids": ["nothex"]}),
        httpx.Response(201, json={"inserted_ids": [{"$oid": "short"}]}),
    ],
)
def test_a_malformed_success_answer_is_a_server_error(response: httpx.Response) -> None:
    """A 2xx answer without the fields Hive sends is a ServerError naming the operation (the
    write may have applied, but the answer cannot be read)."""
    with pytest.raises(ServerError, match="insert_one: malformed answer") as info:
        run(vault(FakeNode(response)).insert_one("c", {}))
    assert info.value.status == 201


@pytest.mark.parametrize(
    "response, read",
    [
        (httpx.Response(200, json={"items": [1]}), lambda v: v.find_many("c", {})),
        (httpx.Response(201, json={"items": {"a": 1}}), lambda v: v.query("c", {})),
        (httpx.Response(200, json={"collections": [{"nom": "x"}]}), lambda v: v.list_collections()),
        (httpx.Response(201, json={"count": True}), lambda v: v.count_documents("c", {})),
    ],
)
def test_malformed_read_answers(
    response: httpx.Response, read: Callable[[HiveVault], Awaitable[Any]]
) -> None:
    """Items that are not documents, collections without names, a count that is not an int:
    a ServerError with the answer's status."""
    with pytest.raises(ServerError, match="malformed answer") as info:
        run(read(vault(FakeNode(response))))
    assert info.value.status == response.status_code


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, code, error",
    [
        (400, 1, InvalidParameterError),
        (401, None, UnauthorizedError),
        (403, 1, VaultFrozenError),
        (403, 7, ServerError),
        (404, 4, CollectionNotFoundError),
        (404, 1, VaultNotFoundError),
        (404, None, ServerError),
        (455, None, AlreadyExistsError),
        (500, -1, ServerError),
        (503, None, ServerError),
        (507, 3, ServerError),
    ],
)
def test_error_answers_map_to_typed_errors(
    status: int, code: int | None, error: type[VaultError]
) -> None:
    """Hive's status and internal_code pick the typed error (as hive-js-sdk's exceptions do);
    the message names the operation and keeps the server's words."""
    node = FakeNode(hive_error(status, "what went wrong", code))
    with pytest.raises(error) as info:
        run(vault(node).count_documents("c", {}))
    assert type(info.value) is error
    assert info.value.status == status
    assert str(info.value) == "count_documents: what went wrong"
    if error is ServerError:
        assert info.value.internal_code == (None if code == -1 else code)  # -1: none given


def test_error_answers_that_are_not_hive_json() -> None:
    """A proxy's HTML or empty error page still gives a ServerError with its status and text."""
    node = FakeNode(
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(503),
        httpx.Response(500, json={"error": "flat string"}),
    )
    v = vault(node)
    with pytest.raises(ServerError, match="Bad Gateway") as info:
        run(v.find_many("c", {}))
    assert info.value.status == 502
    with pytest.raises(ServerError, match="Service Unavailable") as info:
        run(v.find_many("c", {}))
    assert info.value.status == 503
    with pytest.raises(ServerError, match="flat string"):
        run(v.find_many("c", {}))


def test_error_body_and_error_for_are_inverses() -> None:
    """The server's error bodies read back as the same typed errors."""
    for error in (
        CollectionNotFoundError("gone"),
        AlreadyExistsError("there"),
        VaultFrozenError("frozen"),
        VaultNotFoundError("no vault"),
        InvalidParameterError("bad"),
        UnauthorizedError("who"),
        ServerError("boom", status=507, internal_code=9),
    ):
        status, body = error_body(error)
        back = error_for(status, body["error"]["message"], body["error"]["internal_code"])
        assert (type(back), back.status, back.message, back.internal_code) == (
            type(error),
            error.status,
            error.message,
            error.internal_code,
        )


# -- tokens -------------------------------------------------------------------------------------


def test_a_401_asks_the_provider_once_more_and_retries_once() -> None:
    """HTTP-2: after a 401 the provider is asked again and that request is sent again, once,
    with the new token; later requests keep the new token."""
    tokens = iter(["old", "new"])
    node = FakeNode(
        hive_error(401, "expired", None), answer(201, {"count": 1}), answer(201, {"count": 2})
    )
    v = vault(node, lambda: next(tokens))
    assert run(v.count_documents("c", {})) == 1
    assert run(v.count_documents("c", {})) == 2
    assert [r.headers["authorization"] for r in node.requests] == [
        "token old",
        "token new",
        "token new",
    ]
    assert node.requests[0].content == node.requests[1].content


def test_a_second_401_is_an_unauthorized_error_and_no_third_try() -> None:
    """HTTP-2: the retry happens once; a second 401 raises UnauthorizedError."""
    calls: list[str] = []

    async def provider() -> str:
        calls.append("asked")
        return f"token-{len(calls)}"

    node = FakeNode(hive_error(401, "no", None), hive_error(401, "still no", None))
    with pytest.raises(UnauthorizedError, match="still no"):
        run(vault(node, provider).insert_one("c", {}))
    assert len(node.requests) == 2 and calls == ["asked", "asked"]


def test_a_plain_string_token_is_not_retried() -> None:
    """HTTP-2: a fixed token has no provider to ask: a 401 is raised at once."""
    node = FakeNode(hive_error(401, "expired", None))
    with pytest.raises(UnauthorizedError):
        run(vault(node, "fixed").find_many("c", {}))
    assert len(node.requests) == 1


def test_concurrent_401s_renew_the_token_once() -> None:
    """HTTP-2: requests refused together share one renewal (the provider is asked twice in
    all: once at the start, once after the 401s)."""
    calls: list[int] = []

    async def provider() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        return "fresh" if len(calls) > 1 else "stale"

    def check(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "token stale":
            return hive_error(401, "expired", None)
        return answer(201, {"count": 0})

    node = FakeNode(*[check] * 6)

    async def main() -> list[int]:
        v = vault(node, provider)
        return await asyncio.gather(*(v.count_documents("c", {}) for _ in range(3)))

    assert asyncio.run(main()) == [0, 0, 0]
    assert len(calls) == 2


def test_a_failing_token_provider_is_an_unauthorized_error() -> None:
    """A provider that raises (no network for the sign-in, say) fails the request as a 401
    would, before anything is sent."""

    def provider() -> str:
        raise RuntimeError("sign-in failed")

    node = FakeNode()
    with pytest.raises(UnauthorizedError, match="sign-in failed") as info:
        run(vault(node, provider).insert_one("c", {}))
    assert isinstance(info.value.__cause__, RuntimeError) and node.requests == []


def test_a_token_provider_returning_no_string_is_a_bug_named_token() -> None:
    """ERR-1: the provider must return a non-empty string; anything else names 'token'."""
    for bad in ("", None, 42):
        with pytest.raises(InvalidArgumentError) as info:
            run(vault(FakeNode(), lambda bad=bad: bad).find_many("c", {}))
        assert info.value.argument == "token"


# -- no answer at all ---------------------------------------------------------------------------


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    "exc, definite",
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ConnectTimeout("slow connect"), True),
        (httpx.PoolTimeout("pool full"), True),
        (httpx.ReadTimeout("no answer"), False),
        (httpx.WriteTimeout("stuck sending"), False),
        (httpx.ReadError("reset"), False),
        (httpx.WriteError("broken pipe"), False),
        (httpx.RemoteProtocolError("server disconnected"), False),
    ],
)
def test_no_answer_is_a_network_error_definite_only_if_never_sent(
    exc: Exception, definite: bool
) -> None:
    """HTTP-1: without an HTTP answer the request raises NetworkError; definite only when it
    never left (no connection), otherwise it may have applied. It is not retried."""
    node = FakeNode(raising(exc))
    with pytest.raises(NetworkError) as info:
        run(vault(node).update_one("c", {}, {"$set": {"a": 1}}))
    assert info.value.definite is definite
    assert str(info.value).startswith("update_one: ")
    assert info.value.__cause__ is exc
    assert len(node.requests) == 1


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "vault.test"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "http://x:99999"}, "url"),
        ({"url": "http://x/?a=1"}, "url"),
        ({"url": 5}, "url"),
        ({"token": ""}, "token"),
        ({"token": 5}, "token"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"client": object()}, "client"),
        (
            {"client": httpx.AsyncClient(), "transport": httpx.MockTransport(FakeNode())},
            "transport",
        ),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    """ERR-1: HiveVault's constructor refuses bad arguments with an error naming them."""
    args: dict[str, Any] = {"url": URL, "token": "tok", **kwargs}
    with pytest.raises(InvalidArgumentError) as info:
        HiveVault(**args)
    assert info.value.argument == argument


@pytest.mark.parametrize(
    "call",
    [
        lambda v: v.find_many("c", {"x": float("nan")}),
        lambda v: v.insert_one("c", {"x": object()}),
        lambda v: v.insert_one("c", {1: "non-string key"}),
        lambda v: v.insert_many("c", {"a": 1}),
        lambda v: v.find_many(5, {}),
        lambda v: v.create_collection(""),
        lambda v: v.find_many("c", {}, skip="1"),
    ],
)
def test_what_json_cannot_carry_is_refused_before_sending(
    call: Callable[[HiveVault], Awaitable[Any]],
) -> None:
    """Values with no JSON form (NaN, objects, non-string keys), non-list documents, a name that
    is not a non-empty string and non-integer windows are InvalidParameterError, sent nowhere."""
    node = FakeNode()
    with pytest.raises(InvalidParameterError):
        run(call(vault(node)))
    assert node.requests == []


def test_injected_client_is_used_with_our_timeout_and_left_open() -> None:
    """An injected AsyncClient carries the requests (its hooks see them), gets HiveVault's
    timeout on each request, and stays open after aclose()."""
    node = FakeNode(answer(200, {"name": "c"}))
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    async def main() -> bool:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(node), event_hooks={"request": [hook]}
        ) as client:
            async with HiveVault(URL, "tok", client=client, timeout=2.5) as v:
                await v.create_collection("c")
            return client.is_closed

    assert run(main()) is False
    assert len(seen) == 1 and seen[0].extensions["timeout"]["read"] == 2.5


def test_own_client_is_closed_by_aclose() -> None:
    """A HiveVault closes the client it created."""
    v = HiveVault(URL, "tok")
    run(v.aclose())
    assert v._client.is_closed


# -- the $oid codec -----------------------------------------------------------------------------


def test_oid_codec_round_trips_at_any_depth() -> None:
    """HTTP-3: ObjectIds become {"$oid"} anywhere and come back; other values are untouched;
    a one-field {"$oid"} with a bad value is refused; uppercase hex is read as lowercase."""
    value = {"_id": OID, "a": [OID2, {"b": (1, OID)}], "s": "$oid", "n": None, "f": 1.5}
    wire = encode(value)
    assert wire["a"][1]["b"] == [1, {"$oid": OID.hex}]
    assert decode(json.loads(json.dumps(wire))) == {**value, "a": [OID2, {"b": [1, OID]}]}
    assert loads(dumps(value)) == decode(wire)
    assert decode({"$oid": OID.hex.upper()}) == OID
    assert decode({"$oid": OID.hex, "other": 1}) == {"$oid": OID.hex, "other": 1}
    for bad in ({"$oid": "xyz"}, {"$oid": 5}, [{"$oid": "0" * 23}]):
        with pytest.raises(InvalidParameterError):
            decode(bad)
    with pytest.raises(ValueError):
        loads("[NaN]")
