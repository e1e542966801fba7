"""vaultd, the development vault behind ``brh-vault serve``: its HTTP answers byte by byte, its
token scopes and the command line (its SQLite store and its limits have modules of their own).

Requests here are raw (``httpx.Client``), so they check the wire format the server itself
speaks, including malformed requests no HiveVault would send.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

from brh.hive import API_PREFIX
from tests.http_support import (
    LineProcess,
    ManualClock,
    ServerThread,
    VaultProcess,
    start_vault_process,
)
from tests.vaultd.support import EPOCH, OID, Client, error
from vaultd.app import create_app
from vaultd.cli import listening_socket
from vaultd.store import VaultStore
from vaultd.tokens import DEFAULT_SCOPE, Scope, TokenTable, parse_token_spec

ROOT = Path(__file__).resolve().parents[2]


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


# -- the command line ---------------------------------------------------------------------------


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
