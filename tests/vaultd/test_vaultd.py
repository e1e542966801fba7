"""vaultd, the development vault behind ``brh-vault serve``: its HTTP answers byte by byte, its
token scopes, its SQLite durability, and the command line.

Requests here are raw (``httpx.Client``), so they check the wire format the server itself
speaks, including malformed requests no HiveVault would send.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest

from brh.hive import API_PREFIX
from brh.vault import InvalidParameterError, ServerError
from hivevault.vault import FakeVault
from tests.http_support import (
    DEADLINE,
    LineProcess,
    ManualClock,
    ServerThread,
    VaultProcess,
    start_vault_process,
)
from tests.unstorable import ACCEPTED, UNSTORABLE, Case
from vaultd import store as store_module
from vaultd.app import create_app
from vaultd.cli import listening_socket
from vaultd.limits import Limits
from vaultd.store import StoreError, VaultStore
from vaultd.tokens import DEFAULT_SCOPE, Scope, TokenTable, parse_token_spec

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_750_000_000
OID = "65a1b2c3d4e5f60718293a4b"


class Client:
    """Raw requests to a server, with a token."""

    def __init__(self, url: str, token: str | None = "dev") -> None:
        self.http = httpx.Client(base_url=url + API_PREFIX, verify=False)  # plain http
        self.token = token

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        **params: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        if body is not None:
            content = json.dumps(body).encode()
        return self.http.request(method, path, content=content, params=params, headers=headers)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    clock = ManualClock(EPOCH)
    store = VaultStore(tmp_path_factory.mktemp("vaultd") / "vault.sqlite", clock=clock)
    tokens = TokenTable(
        ["dev", "phone", "alice=did:alice/app", "bob=did:bob/app", "alice2=did:alice/other"]
    )
    with ServerThread(create_app(store, tokens)) as thread:
        yield thread.url
    store.close()


def error(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "internal_code"}
    return response.status_code, body["error"]["message"], body["error"]["internal_code"]


# -- the wire format ----------------------------------------------------------------------------


def test_status_codes_and_bodies_are_hives(server: str) -> None:
    """HTTP-3: every endpoint answers with hive-vault-api.md's status code and body shape;
    inserted and upserted ids are hex strings, _id values in documents {"$oid"}."""
    call = Client(server, "alice2")
    assert error(call("GET", "/collections")) == (404, "Can not find any collection.", 4)
    created = call("PUT", "/collections/notes")
    assert (created.status_code, created.json()) == (200, {"name": "notes"})
    assert error(call("PUT", "/collections/notes"))[::2] == (455, -1)
    inserted = call(
        "POST",
        "/collection/notes",
        {"document": [{"k": 1}, {"k": 2, "_id": {"$oid": OID}}], "options": {"timestamp": True}},
    )
    assert inserted.status_code == 201
    ids = inserted.json()["inserted_ids"]
    assert inserted.json()["acknowledged"] is True and ids[1] == OID and len(ids[0]) == 24
    counted = call("POST", "/collection/notes", {"filter": {"k": {"$gt": 0}}}, op="count")
    assert (counted.status_code, counted.json()) == (201, {"count": 2})
    updated = call(
        "PATCH",
        "/collection/notes",
        {"filter": {"k": 3}, "update": {"$set": {"v": 1}}, "options": {"upsert": True}},
        updateone="true",
    )
    assert updated.status_code == 200
    assert updated.json()["upserted_id"] is not None and updated.json()["matched_count"] == 0
    found = call("GET", "/notes", filter=json.dumps({"_id": {"$oid": OID}}))
    assert found.status_code == 200
    assert found.json() == {
        "items": [{"_id": {"$oid": OID}, "k": 2, "created": EPOCH, "modified": EPOCH}],
        "is_encrypt": False,
        "encrypt_method": "",
    }
    queried = call(
        "POST",
        "/query",
        {
            "collection": "notes",
            "filter": {},
            "options": {"sort": [["k", -1]], "projection": {"_id": 0, "k": 1}},
        },
    )
    assert (queried.status_code, queried.json()["items"]) == (201, [{"k": 3}, {"k": 2}, {"k": 1}])
    deleted = call("DELETE", "/collection/notes", {"filter": {"k": 1}}, deleteone="false")
    assert (deleted.status_code, deleted.content) == (204, b"")
    listed = call("GET", "/collections")
    assert (listed.status_code, listed.json()) == (
        200,
        {"collections": [{"name": "notes", "is_encrypt": False, "encrypt_method": ""}]},
    )
    dropped = call("DELETE", "/notes")
    assert (dropped.status_code, dropped.content) == (204, b"")
    assert error(call("DELETE", "/notes")) == (404, "Can not find collection notes", 4)


@pytest.mark.parametrize(
    "authorization, message",
    [
        (None, "missing Authorization header"),
        ("Bearer dev", "must be 'token <access token>'"),
        ("token", "must be 'token <access token>'"),
        ("token not-a-known-one", "unknown or expired access token"),
    ],
)
def test_bad_tokens_are_refused_with_401(
    server: str, authorization: str | None, message: str
) -> None:
    """A request without a known 'token <jwt>' is a 401 that says what is wrong; nothing runs."""
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.put(f"{server}{API_PREFIX}/collections/x", headers=headers)
    status, text, _ = error(response)
    assert status == 401 and message in text
    assert Client(server)("GET", "/x", filter="{}").status_code == 404  # nothing was created


@pytest.mark.parametrize(
    "method, path, body, params, message",
    [
        ("POST", "/collection/c", b"{not json", {}, "not JSON"),
        ("POST", "/collection/c", b"[1, 2]", {}, "must be a JSON object"),
        ("POST", "/collection/c", b'{"document": [{"x": NaN}]}', {}, "NaN is not JSON"),
        ("POST", "/collection/c", b'{"document": [{"_id": {"$oid": "xyz"}}]}', {}, "$oid"),
        ("POST", "/collection/c", b"{}", {}, "needs 'document'"),
        ("POST", "/collection/c", b'{"document": {"a": 1}}', {}, "list of documents"),
        ("POST", "/collection/c", b'{"document": [{}], "options": []}', {}, "'options' must be"),
        ("POST", "/collection/c", b'{"document": [{}], "options": {"ordered": 1}}', {}, "boolean"),
        ("POST", "/collection/c", b'{"filter": {}}', {"op": "sum"}, "'op' must be"),
        ("POST", "/collection/c", b"{}", {"op": "count"}, "needs 'filter'"),
        ("PATCH", "/collection/c", b'{"filter": {}, "update": {}}', {}, "'updateone' must be"),
        ("PATCH", "/collection/c", b'{"filter": {}}', {"updateone": "true"}, "needs 'update'"),
        (
            "PATCH",
            "/collection/c",
            b'{"filter": 5, "update": {"$set": {}}}',
            {"updateone": "true"},
            "filter must",
        ),
        ("DELETE", "/collection/c", b'{"filter": {}}', {"deleteone": "yes"}, "'deleteone' must"),
        ("DELETE", "/collection/c", b"{}", {"deleteone": "true"}, "needs 'filter'"),
        ("GET", "/c", None, {}, "'filter' is required"),
        ("GET", "/c", None, {"filter": "{bad"}, "'filter' is not JSON"),
        ("GET", "/c", None, {"filter": "{}", "skip": "two"}, "'skip' must be an integer"),
        ("GET", "/c", None, {"filter": "{}", "limit": "-1"}, "limit must be"),
        ("POST", "/query", b'{"filter": {}}', {}, "needs 'collection'"),
        (
            "POST",
            "/query",
            b'{"collection": "c", "filter": {}, "options": {"sort": {"a": 1}}}',
            {},
            "sort",
        ),
        ("POST", "/query", b'{"collection": 5, "filter": {}}', {}, "collection name"),
    ],
)
def test_malformed_requests_are_400_with_a_clear_message(
    server: str, method: str, path: str, body: bytes | None, params: dict[str, str], message: str
) -> None:
    """Requests the server cannot read are 400 with a message naming what is wrong, and change
    nothing."""
    call = Client(server, "bob")
    if call("GET", "/collections").status_code == 404:
        call("PUT", "/collections/c")
    before = call("GET", "/c", filter="{}").json()
    status, text, code = error(call(method, path, content=body, **params))
    assert (status, code) == (400, 1) and message in text
    assert call("GET", "/c", filter="{}").json() == before


def test_unknown_endpoints_and_methods_answer_in_hives_error_shape(server: str) -> None:
    """A path or method the API does not have is a 404/405 with Hive's error body."""
    call = Client(server)
    assert error(call("GET", "/no/such/thing"))[:1] == (404,)
    status, message, code = error(call("PUT", "/query"))
    assert (status, code) == (405, -1) and "PUT" in message


def test_tokens_scope_the_data(server: str) -> None:
    """Each (user, app) has its own collections: alice's and bob's vaults never mix, and
    alice's other app is another vault; plain tokens share the default vault."""
    Client(server, "alice")("PUT", "/collections/mine")
    assert Client(server, "bob")("GET", "/mine", filter="{}").status_code == 404
    assert Client(server, "alice2")("GET", "/mine", filter="{}").status_code == 404
    assert Client(server, "alice")("GET", "/mine", filter="{}").status_code == 200
    Client(server, "dev")("PUT", "/collections/shared")
    assert Client(server, "phone")("GET", "/shared", filter="{}").status_code == 200


# -- tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("tok", ("tok", DEFAULT_SCOPE)),
        (
            "tok=did:elastos:alice/did:elastos:notes",
            ("tok", Scope("did:elastos:alice", "did:elastos:notes")),
        ),
    ],
)
def test_token_specs(spec: str, parsed: tuple[str, Scope]) -> None:
    """--token TOKEN uses the shared default vault; TOKEN=USER/APP names its vault."""
    assert parse_token_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "token must be non-empty"),
        ("=u/a", "token must be non-empty"),
        ("t=u", "exactly one '/'"),
        ("t=u/a/b", "exactly one '/'"),
        ("t=/a", "user must be"),
        ("t=u/", "application must be"),
        ("t k", "token must be"),
    ],
)
def test_bad_token_specs_say_what_is_wrong(spec: str, message: str) -> None:
    """A malformed --token is refused with a message quoting it."""
    with pytest.raises(ValueError, match=message) as info:
        parse_token_spec(spec)
    assert "--token" in str(info.value)


def test_a_token_cannot_name_two_vaults() -> None:
    """Giving one token two scopes is an error; giving it twice the same scope is harmless."""
    assert len(TokenTable(["a=u/x", "a=u/x", "b"])) == 2
    with pytest.raises(ValueError, match="both u/x and u/y"):
        TokenTable(["a=u/x", "a=u/y"])


# -- durability ---------------------------------------------------------------------------------


async def _apply(store: VaultStore, scope: Scope, op: str, *args: Any, **kwargs: Any) -> Any:
    return await store.run(scope, lambda vault: getattr(vault, op)(*args, **kwargs))


def _snapshot(store: VaultStore, scope: Scope) -> dict[str, list[dict[str, Any]]]:
    async def read(vault: FakeVault) -> dict[str, list[dict[str, Any]]]:
        return {name: vault.documents(name) for name in vault.collection_names()}

    return asyncio.run(store.run(scope, read))


def test_a_reopened_store_has_everything_in_natural_order(tmp_path: Path) -> None:
    """A restarted server finds every collection and document, stamps included, in natural
    order (a replaced document keeps its place, a re-inserted one goes last), per scope, and
    continues the _id sequence."""
    clock = ManualClock(EPOCH)
    path = tmp_path / "vault.sqlite"
    other = Scope("bob", "app")

    async def write(store: VaultStore) -> None:
        for scope in (DEFAULT_SCOPE, other):
            await _apply(store, scope, "create_collection", "c")
        await _apply(store, DEFAULT_SCOPE, "create_collection", "dropped")
        await _apply(store, DEFAULT_SCOPE, "insert_many", "c", [{"k": i} for i in range(4)])
        await _apply(store, other, "insert_one", "c", {"k": "bob"})
        clock.now += 7
        await _apply(store, DEFAULT_SCOPE, "update_one", "c", {"k": 0}, {"$set": {"v": 1}})
        await _apply(store, DEFAULT_SCOPE, "delete_one", "c", {"k": 1})
        await _apply(store, DEFAULT_SCOPE, "insert_one", "c", {"k": 1})
        await _apply(store, DEFAULT_SCOPE, "delete_collection", "dropped")

    first = VaultStore(path, clock=clock)
    asyncio.run(write(first))
    before = {scope: _snapshot(first, scope) for scope in (DEFAULT_SCOPE, other)}
    last_id = before[DEFAULT_SCOPE]["c"][-1]["_id"]
    first.close()

    second = VaultStore(path, clock=clock)
    assert {scope: _snapshot(second, scope) for scope in (DEFAULT_SCOPE, other)} == before
    assert [d["k"] for d in before[DEFAULT_SCOPE]["c"]] == [0, 2, 3, 1]
    assert before[DEFAULT_SCOPE]["c"][0]["modified"] == EPOCH + 7
    new = asyncio.run(_apply(second, DEFAULT_SCOPE, "insert_one", "c", {"k": 4})).inserted_ids[0]
    assert new > last_id
    second.close()


def test_a_change_sqlite_cannot_store_is_undone_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If writing a change to SQLite fails part-way (here: the 2nd document of an update_many),
    the request is a 500, and memory and file are both as before it."""
    store = VaultStore(tmp_path / "vault.sqlite", clock=ManualClock(EPOCH))
    asyncio.run(_apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    asyncio.run(_apply(store, DEFAULT_SCOPE, "insert_many", "c", [{"k": 1}, {"k": 2}]))
    before = _snapshot(store, DEFAULT_SCOPE)
    original = store_module._Journal.document_stored
    calls = []

    def failing(self: Any, collection: str, oid: str, document: dict[str, Any]) -> None:
        calls.append(oid)
        if len(calls) == 2:
            raise store_module._JournalError("disk full")
        original(self, collection, oid, document)

    monkeypatch.setattr(store_module._Journal, "document_stored", failing)
    with pytest.raises(Exception, match="could not store the change: disk full") as info:
        asyncio.run(_apply(store, DEFAULT_SCOPE, "update_many", "c", {}, {"$set": {"x": 1}}))
    assert getattr(info.value, "status", None) == 500
    monkeypatch.undo()
    assert _snapshot(store, DEFAULT_SCOPE) == before
    store.close()
    reopened = VaultStore(tmp_path / "vault.sqlite")
    assert _snapshot(reopened, DEFAULT_SCOPE) == before
    reopened.close()


def test_an_unexpected_failure_mid_request_is_undone_and_the_store_goes_on(tmp_path: Path) -> None:
    """A bug that raises after a change (not a vault error) rolls the change back in memory and
    on disk, and the next request runs normally (no transaction left open)."""
    store = VaultStore(tmp_path / "vault.sqlite")
    asyncio.run(_apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    before = _snapshot(store, DEFAULT_SCOPE)

    async def broken(vault: FakeVault) -> None:
        await vault.insert_one("c", {"half": "done"})
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(store.run(DEFAULT_SCOPE, broken))
    assert _snapshot(store, DEFAULT_SCOPE) == before
    asyncio.run(_apply(store, DEFAULT_SCOPE, "insert_one", "c", {"k": 1}))
    assert [d["k"] for d in _snapshot(store, DEFAULT_SCOPE)["c"]] == [1]
    store.close()


def test_a_document_json_cannot_hold_is_refused_and_undone(tmp_path: Path) -> None:
    """An $inc that overflows to infinity cannot be stored as JSON: the vault refuses it
    (400) before anything reaches the journal, and nothing changed."""
    store = VaultStore(tmp_path / "vault.sqlite")
    asyncio.run(_apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    asyncio.run(_apply(store, DEFAULT_SCOPE, "insert_one", "c", {"n": 1e308}))
    before = _snapshot(store, DEFAULT_SCOPE)
    with pytest.raises(InvalidParameterError, match="inf, which JSON cannot carry"):
        asyncio.run(_apply(store, DEFAULT_SCOPE, "update_one", "c", {}, {"$inc": {"n": 1e308}}))
    assert _snapshot(store, DEFAULT_SCOPE) == before
    store.close()


def test_one_server_per_database_file(tmp_path: Path) -> None:
    """A second store on a file in use is refused (its copy in memory would go stale);
    files that are not a brh-vault database are refused with a message naming them."""
    path = tmp_path / "vault.sqlite"
    first = VaultStore(path)
    with pytest.raises(StoreError, match="in use by another brh-vault server"):
        VaultStore(path)
    first.close()
    VaultStore(path).close()
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(StoreError, match="not a brh-vault database"):
        VaultStore(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"garbage\.sqlite"):
        VaultStore(garbage)


def test_listening_sockets_turn_nagle_off_for_connections() -> None:
    """Regression: uvicorn given a socket made without IPPROTO_TCP kept Nagle's algorithm on,
    and every answer waited ~40 ms for a delayed ACK; listening_socket() avoids it."""
    sock = listening_socket("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw = writer.get_extra_info("socket")
            found.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        value = await asyncio.wait_for(found, 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


# -- the command line ---------------------------------------------------------------------------


def test_the_console_script_is_installed() -> None:
    """pyproject declares brh-vault = vaultd.cli:main."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "brh-vault"]
    assert script.value == "vaultd.cli:main"


@pytest.mark.slow
def test_serve_stops_cleanly_and_keeps_the_data(tmp_path: Path) -> None:
    """brh-vault serve prints its URL, serves, exits 0 on SIGTERM, and a new server on the same
    file has the data; a second server on a file in use exits 1 saying so."""
    db = tmp_path / "vault.sqlite"
    server = start_vault_process(db, ["t=u/a"])
    try:
        assert Client(server.url, "t")("PUT", "/collections/kept").status_code == 200
        second = LineProcess(
            [
                sys.executable,
                "-m",
                "vaultd",
                "serve",
                "--db",
                str(db),
                "--port",
                "0",
                "--token",
                "t",
            ],
            name="second server",
        )
        assert second.process.wait(20) == 1 and "in use by another" in second.stderr
        second.close()
        assert server.stop() == 0
    finally:
        server.close()
    again = start_vault_process(db, ["t=u/a"])
    try:
        assert (
            Client(again.url, "t")("GET", "/collections").json()["collections"][0]["name"] == "kept"
        )
    finally:
        again.close()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--db", "x.sqlite"], "--token"),
        (["--db", "x.sqlite", "--token", "t=u"], "exactly one '/'"),
        (["--db", "x.sqlite", "--token", "t", "--port", "70000"], "--port must be"),
        (["--token", "t"], "--db"),
    ],
)
def test_bad_command_lines_exit_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Command-line mistakes exit with status 2 and say which option is wrong."""
    from vaultd.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", *args])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_vault_process_helper_reports_a_server_that_does_not_start(tmp_path: Path) -> None:
    """The test helper fails clearly (with the server's stderr) when brh-vault exits early."""
    with pytest.raises(AssertionError, match="exited"):
        VaultProcess(tmp_path / "db.sqlite", ["bad=spec"])


def test_imports_stay_within_their_extras() -> None:
    """brh (with brh.hive) never imports the simulator or the server, and the server needs no
    HTTP client library: each extra installs only what its side uses."""
    import subprocess

    probes = [
        "import brh, brh.hive; assert not {'simulator', 'vaultd', 'starlette', 'uvicorn'} & M",
        "import vaultd.app, vaultd.cli; assert 'httpx' not in M",
    ]
    for probe in probes:
        code = probe.replace("; assert", "; import sys; M = set(sys.modules); assert")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- hardening: what a request may cost, and what it may not do ------------------------------


class Served:
    """A server thread over its own store, the store at hand (for its scopes and counts)."""

    def __init__(self, tmp_path: Path, limits: Limits | None = None) -> None:
        self.store = VaultStore(tmp_path / "vault.sqlite", clock=ManualClock(EPOCH))
        tokens = TokenTable(["dev", "other=did:bob/app"])
        self.thread = ServerThread(create_app(self.store, tokens, limits), limits)
        self.url = self.thread.url
        self.loads: list[Scope] = []  # each time a scope is read from the file
        original = self.store._load

        def counted(scope: Scope) -> Any:
            self.loads.append(scope)
            return original(scope)

        self.store._load = counted  # type: ignore[method-assign]

    def __enter__(self) -> Served:
        self.thread.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.thread.__exit__(*exc)
        self.store.close()


def _update_body(case: Case) -> bytes:
    """The helper's upsert of ``case`` (its value as key or data), as JSON text."""
    if case.argument == "key":
        values = f'"key": {case.wire}, "data": 1'
    else:
        values = f'"key": "k", "data": {case.wire}'
    text = '{"filter": {"n": 1}, "update": {"$set": {' + values + '}}, "options": {"upsert": true}}'
    return text.encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served(tmp_path_factory.mktemp("served")) as server:
        call = Client(server.url)
        assert call("PUT", "/collections/c").status_code == 200
        assert call("POST", "/collection/c", {"document": [{"n": 0}]}).status_code == 201
        yield server


@pytest.mark.parametrize("case", UNSTORABLE, ids=lambda case: case.name)
def test_values_a_vault_cannot_store_are_400_over_http(served: Served, case: Case) -> None:
    """ERR-1 (tests/unstorable.py) and issue A.2: the same values sent as JSON text (1e999,
    "\\ud800", 10**5000 digits, NaN...) are a 400 with Hive's error body saying why, before
    anything reaches the journal: nothing is written and the vault is not reloaded."""
    call = Client(served.url)
    before = call("GET", "/c", filter="{}").json()
    loads = len(served.loads)
    answer = call("PATCH", "/collection/c", content=_update_body(case), updateone="true")
    status, message, code = error(answer)
    assert (status, code) == (400, 1) and case.message in message.lower()
    assert call("GET", "/c", filter="{}").json() == before
    assert len(served.loads) == loads


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_values_that_look_unstorable_are_stored_over_http(served: Served, case: Case) -> None:
    """ERR-1 (tests/unstorable.py): the look-alikes are stored and come back as they were."""
    call = Client(served.url)
    call("DELETE", "/collection/c", {"filter": {"n": 1}}, deleteone="false")
    answer = call("PATCH", "/collection/c", content=_update_body(case), updateone="true")
    assert answer.status_code == 200, answer.text
    (found,) = call("GET", "/c", filter='{"n": 1}').json()["items"]
    field = "key" if case.argument == "key" else "data"
    assert repr(found[field]) == repr(json.loads(case.wire))


@pytest.mark.parametrize(
    "body",
    [
        b'{"document":[{"x":1e999}]}',  # 26 bytes
        b'{"document":[{"x":"\\ud800"}]}',
        b'{"document":[{"x":1' + b"0" * 5000 + b"}]}",
        b'{"document":' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["1e999", "surrogate", "5001 digits", "5000 levels"],
)
def test_a_refused_request_never_reloads_the_vault(tmp_path: Path, body: bytes) -> None:
    """Issue A.2: invalid input used to pass the vault and fail in the journal (JSON could not
    hold 1e999, SQLite no lone surrogate): a 500, and the scope was dropped and read back from
    the file by the next request (6-8 s on a 200,000-document vault). Now it is a 400 and the
    vault stays loaded."""
    with Served(tmp_path) as server:
        call = Client(server.url)
        assert call("PUT", "/collections/c").status_code == 200
        assert server.loads == [DEFAULT_SCOPE]
        status, message, _ = error(call("POST", "/collection/c", content=body))
        assert status == 400, message
        assert call("POST", "/collection/c", {"document": [{"n": 1}]}).status_code == 201
        assert [d["n"] for d in call("GET", "/c", filter="{}").json()["items"]] == [1]
        assert server.loads == [DEFAULT_SCOPE]


def test_a_change_sqlite_cannot_store_is_undone_without_a_reload(tmp_path: Path) -> None:
    """Issue A.2: when SQLite fails part-way through storing a request's changes (here a
    trigger refuses the third write: a delete, an update_many and an insert were noted), the
    request is a 500, the file is as before, and the vault in memory is undone in place
    (natural order included): the scope is not read back from the file."""
    store = VaultStore(tmp_path / "vault.sqlite", clock=ManualClock(EPOCH))
    asyncio.run(_apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    asyncio.run(_apply(store, DEFAULT_SCOPE, "insert_many", "c", [{"k": i} for i in range(4)]))
    before = _snapshot(store, DEFAULT_SCOPE)
    vault = store._loaded[DEFAULT_SCOPE].vault
    store._db.execute(
        "CREATE TEMP TRIGGER full BEFORE INSERT ON documents WHEN NEW.body LIKE '%\"fail\"%' "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )

    async def request(vault: FakeVault) -> None:
        await vault.delete_one("c", {"k": 1})
        await vault.update_many("c", {}, {"$set": {"x": 1}})
        await vault.insert_one("c", {"fail": True})

    with pytest.raises(ServerError, match="could not store the change: disk full") as info:
        asyncio.run(store.run(DEFAULT_SCOPE, request))
    assert info.value.status == 500
    assert store._loaded[DEFAULT_SCOPE].vault is vault
    assert _snapshot(store, DEFAULT_SCOPE) == before
    asyncio.run(_apply(store, DEFAULT_SCOPE, "insert_one", "c", {"k": 4}))
    store.close()
    reopened = VaultStore(tmp_path / "vault.sqlite")
    assert [d["k"] for d in _snapshot(reopened, DEFAULT_SCOPE)["c"]] == [0, 1, 2, 3, 4]
    reopened.close()


def test_bodies_over_the_limit_are_413_and_close_the_connection(tmp_path: Path) -> None:
    """Issue A.1 (body size): a body over --max-body is a 413 in Hive's error shape, with or
    without a Content-Length (chunked), its connection closed; nothing is written."""
    with Served(tmp_path, Limits(max_body=2000)) as server:
        call = Client(server.url)
        call("PUT", "/collections/c")
        big = json.dumps({"document": [{"blob": "x" * 3000}]}).encode()
        answer = call("POST", "/collection/c", content=big)
        assert error(answer)[:1] == (413,) and "--max-body" in error(answer)[1]
        assert answer.headers["connection"] == "close"

        def chunks() -> Iterator[bytes]:
            yield big[:1000]
            yield big[1000:]

        headers = {"Authorization": "token dev"}
        streamed = httpx.post(
            f"{server.url}{API_PREFIX}/collection/c", content=chunks(), headers=headers
        )
        assert "content-length" not in streamed.request.headers
        assert error(streamed)[:1] == (413,)
        assert call("GET", "/c", filter="{}").json()["items"] == []
        assert call("POST", "/collection/c", {"document": [{"ok": 1}]}).status_code == 201


def test_documents_per_request_are_bounded(tmp_path: Path) -> None:
    """Issue A.1/A.3 (documents per request): an insert of more documents than
    --max-documents is a 400 before any is stored; the default bound (10,000) refuses
    300,000 empty documents (a 0.9 MB body) at once instead of working for minutes."""
    with Served(tmp_path, Limits(max_documents=3)) as server:
        call = Client(server.url)
        call("PUT", "/collections/c")
        status, message, _ = error(call("POST", "/collection/c", {"document": [{}] * 4}))
        assert status == 400 and "at most 3" in message
        assert call("POST", "/collection/c", {"document": [{}] * 3}).status_code == 201
    with Served(tmp_path / "..", None) as server:
        call = Client(server.url)
        call("PUT", "/collections/many")
        body = b'{"document": [' + b",".join([b"{}"] * 300_000) + b"]}"
        status, message, _ = error(call("POST", "/collection/many", content=body))
        assert status == 400 and "at most 10000" in message


def test_put_collections_without_a_name_is_400_not_a_redirect(served: Served) -> None:
    """Issue A.5: PUT /collections/ used to be redirected to /collections; it is a 400 in
    Hive's error shape, and no path is redirected."""
    call = Client(served.url)
    answer = call("PUT", "/collections/")
    assert "location" not in answer.headers
    status, message, code = error(answer)
    assert (status, code) == (400, 1) and "needs a collection name" in message
    assert "location" not in call("GET", "/collections/").headers


def test_every_answer_has_a_date_header(served: Served) -> None:
    """Helpers will read the vault's clock from the Date header: every answer carries one,
    errors included."""
    call = Client(served.url)
    answers = [
        call("GET", "/collections"),
        call("POST", "/collection/c", {"document": [{"d": 1}]}),
        call("DELETE", "/collection/c", {"filter": {"d": 1}}, deleteone="true"),
        call("POST", "/collection/c", content=b"{bad"),
        Client(served.url, "nobody")("GET", "/collections"),
        call("GET", "/no-such", filter="{}"),
        call("PUT", "/query"),
    ]
    assert [a.status_code for a in answers] == [200, 201, 204, 400, 401, 404, 405]
    for answer in answers:
        assert answer.headers.get("date", "").endswith(" GMT")


def test_one_vault_at_work_does_not_stall_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue A.3: a request that takes long (here: held until the test lets it go) holds its
    own vault only; requests to other vaults are answered meanwhile. (All used to wait for it
    behind one lock on one event loop.)"""
    started, release = threading.Event(), threading.Event()
    original = FakeVault.find_many

    async def slow(self: FakeVault, collection: str, *args: Any, **kwargs: Any) -> Any:
        if collection == "slow":
            started.set()
            release.wait(DEADLINE)
        return await original(self, collection, *args, **kwargs)

    monkeypatch.setattr(FakeVault, "find_many", slow)
    with Served(tmp_path) as server:
        Client(server.url)("PUT", "/collections/slow")
        Client(server.url, "other")("PUT", "/collections/c")
        answers: list[httpx.Response] = []
        held = threading.Thread(
            target=lambda: answers.append(Client(server.url)("GET", "/slow", filter="{}"))
        )
        held.start()
        try:
            assert started.wait(DEADLINE)
            other = httpx.Client(base_url=server.url + API_PREFIX, timeout=5)
            answer = other.get(
                "/c", params={"filter": "{}"}, headers={"Authorization": "token other"}
            )
            assert answer.status_code == 200 and not answers
        finally:
            release.set()
            held.join(DEADLINE)
        assert answers[0].status_code == 200


def test_a_catastrophic_regex_is_answered_at_once(served: Served) -> None:
    """Issue A.1 (regex cost): ^(a+)+$ against 30 letters and a '!' took a backtracking
    engine minutes, doubling with each letter, with every other user waiting; RE2 answers at
    once (the client gives up after 10 s)."""
    call = Client(served.url)
    call("POST", "/collection/c", {"document": [{"s": "a" * 30 + "!"}]})
    answer = call.http.post(
        "/query",
        json={"collection": "c", "filter": {"s": {"$regex": "^(a+)+$"}}},
        headers={"Authorization": "token dev"},
        timeout=10,
    )
    assert (answer.status_code, answer.json()["items"]) == (201, [])


def _idle_sockets(url: str, count: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
        sockets.append(sock)
    return sockets


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (what it sends is read)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        pass
    return True


def test_connections_that_send_no_request_head_are_closed(tmp_path: Path) -> None:
    """Issue A.4 (header timeout): a connection that sends nothing, or half a request head,
    is closed after --header-timeout; a connection silent after an answer after
    --idle-timeout. (They used to stay open for ever.)"""
    limits = Limits(header_timeout=0.5, idle_timeout=1)
    with Served(tmp_path, limits) as server:
        silent, partial = _idle_sockets(server.url, 2)
        partial.sendall(b"GET /api/v2/vault/db/collections HTTP/1.1\r\nHost: x\r\n")
        assert _closed_by_server(silent, 5) and _closed_by_server(partial, 5)
        answered = _idle_sockets(server.url, 1)[0]
        answered.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answered.recv(12) == b"HTTP/1.1 404"
        assert _closed_by_server(answered, 5)
        for sock in (silent, partial, answered):
            sock.close()


def test_idle_connections_beyond_the_limit_make_room_for_real_requests(tmp_path: Path) -> None:
    """Issue A.4 (concurrency limit): at most --max-connections are open; a new connection
    beyond it takes the place of the one idle longest, so idle sockets cannot lock real
    clients out (1,100 of them used to exhaust the file descriptors)."""
    with Served(tmp_path, Limits(max_connections=4)) as server:
        idle = _idle_sockets(server.url, 10)
        answer = httpx.get(f"{server.url}{API_PREFIX}/collections", timeout=5)
        assert error(answer)[:1] == (401,)
        closed = sum(_closed_by_server(sock, 0.5) for sock in idle)
        assert closed >= 7  # the 10 idle ones and the request's share 4 places
        for sock in idle:
            sock.close()


@pytest.mark.slow
def test_a_real_request_gets_through_more_idle_sockets_than_open_files(tmp_path: Path) -> None:
    """Issue A.4: brh-vault serve limited to 256 open files, 400 sockets that connect and
    send nothing: a real request is still answered, since idle connections beyond
    --max-connections give way (before, accept() failed once the descriptors ran out and
    every real request timed out)."""
    server = start_vault_process(
        tmp_path / "vault.sqlite", ["t"], options=["--max-connections", "32"], open_files=256
    )
    try:
        idle = _idle_sockets(server.url, 400)
        answer = httpx.get(
            f"{server.url}{API_PREFIX}/collections",
            headers={"Authorization": "token t"},
            timeout=DEADLINE,
        )
        assert error(answer)[:1] == (404,)  # no collection yet: the vault answered
        for sock in idle:
            sock.close()
    finally:
        server.close()


def test_serve_help_shows_the_limits_and_their_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue A: every limit is an option of brh-vault serve whose help shows its default."""
    from vaultd.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for option, default in [
        ("--max-body", "17825792 = 17 MiB"),
        ("--max-documents", "(10000)"),
        ("--body-timeout", "(30)"),
        ("--header-timeout", "(10)"),
        ("--idle-timeout", "(5)"),
        ("--max-connections", "(64)"),
    ]:
        assert option in shown and default in shown.split(option, 2)[2][:400], option


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-body", "0"], "must be positive"),
        (["--max-connections", "many"], "not a number"),
        (["--header-timeout", "-1"], "must be positive"),
        (["--max-connections", "10000000"], "open files"),
    ],
)
def test_bad_limits_exit_2_naming_the_option(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A limit that is not a positive number, or more connections than the process may open
    files for, is refused with status 2 and a message naming the option."""
    from vaultd.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--db", "x.sqlite", "--token", "t", *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and args[0] in err
