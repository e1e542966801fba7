"""Hardening vaultd: what a request may cost and what it may not do (values a vault cannot
store, bodies and batches over the limits, slow and idle connections, one vault's work never
stalling the others).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from brh.hive import API_PREFIX
from brh.vault import ServerError
from hivevault.vault import FakeVault
from tests.http_support import (
    DEADLINE,
    ManualClock,
    ServerThread,
    start_vault_process,
)
from tests.unstorable import ACCEPTED, UNSTORABLE, Case
from tests.vaultd.support import EPOCH, Client, apply, error, snapshot
from vaultd.app import create_app
from vaultd.limits import Limits
from vaultd.store import VaultStore
from vaultd.tokens import DEFAULT_SCOPE, Scope, TokenTable

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
    asyncio.run(apply(store, DEFAULT_SCOPE, "create_collection", "c"))
    asyncio.run(apply(store, DEFAULT_SCOPE, "insert_many", "c", [{"k": i} for i in range(4)]))
    before = snapshot(store, DEFAULT_SCOPE)
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
    assert snapshot(store, DEFAULT_SCOPE) == before
    asyncio.run(apply(store, DEFAULT_SCOPE, "insert_one", "c", {"k": 4}))
    store.close()
    reopened = VaultStore(tmp_path / "vault.sqlite")
    assert [d["k"] for d in snapshot(reopened, DEFAULT_SCOPE)["c"]] == [0, 1, 2, 3, 4]
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
