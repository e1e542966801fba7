"""``HiveVault``: the :class:`brh.vault.Vault` of a real Hive node, over its v2 REST API.

::

    from brh import BackupRestoreHelper
    from brh.hive import HiveVault

    async with HiveVault("https://hive.example.org", get_token) as vault:
        async with BackupRestoreHelper(vault, "brh-local.sqlite") as helper:
            ...

Needs ``httpx`` (``pip install 'brh[hive]'``). The wire format is Hive Node v2's database API
(``/api/v2/vault/db``, see ``shared/reference/hive-vault-api.md``): :mod:`brh.hive_wire`
converts ``_id`` values to and from ``{"$oid": hex}`` and error answers to typed errors.

How failures surface (the clauses are SPEC.md's §12):

* an HTTP error answer raises the typed error of its status and ``internal_code``
  (404/4 :class:`~brh.vault.CollectionNotFoundError`, 455
  :class:`~brh.vault.AlreadyExistsError`, 5xx :class:`~brh.vault.ServerError`, ...);
* 401: the token provider is asked once more and that one request is sent again, once
  (HTTP-2); a refused token is always refused before anything applied, so this retry is safe;
* no HTTP answer raises :class:`~brh.vault.NetworkError`: ``definite=True`` only when the
  request never left (no connection could be made), ``definite=False`` otherwise: a write whose
  answer was lost may have applied (HTTP-1). Nothing else is ever retried: the helper's own
  retry decides, and its writes are safe to repeat (ORD-5);
* every request has an overall ``deadline`` besides httpx's per-phase ``timeout``: a server
  that answers one byte at a time never trips a read timeout, but cannot hold a request past
  its deadline either. A request cut by it is a ``NetworkError``, definite only if it was cut
  before any of it was sent (asking the token provider, or still connecting).
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from brh.errors import InvalidArgumentError
from brh.hive_wire import API_PREFIX, dumps, error_for, loads, query_body, update_body
from brh.vault import (
    CollectionNotFoundError,
    Document,
    InsertResult,
    InvalidParameterError,
    NetworkError,
    ObjectId,
    ServerError,
    SortSpec,
    UnauthorizedError,
    UpdateResult,
)

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("brh.hive needs httpx: install it with pip install 'brh[hive]'") from exc

__all__ = ["API_PREFIX", "HiveVault", "TokenProvider"]

TokenProvider = str | Callable[[], str | Awaitable[str]]
"""An access token, or a function (plain or async) returning a current one."""

MAX_FIND_URL = 4000
"""Longest URL a ``find`` GET may have (common servers refuse request lines over 4 KiB, e.g.
gunicorn's 4094 bytes); a longer filter goes in the body of an unsorted ``query`` instead, which
answers the same documents in the same order."""

_CONNECTING = frozenset(
    {
        "connect_tcp",
        "connect_unix_socket",
        "start_tls",
        "retry",
        "setup_socks5_connection",
        "send_connection_init",
        "receive_remote_settings",
    }
)
"""Steps of httpcore's ``trace`` events that come before any byte of the request is sent."""

# Errors that mean the request never left this machine: it certainly did not apply.
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


class HiveVault:
    """A :class:`brh.vault.Vault` speaking Hive Node v2's REST API to ``url``.

    ``url``: the node's base URL (``http://127.0.0.1:8080``, ``https://hive.example.org``); the
    API lives under :data:`API_PREFIX` below it. ``token``: the access token of the user's
    vault for this application (Hive's sign-in yields it), or a function, plain or async, that
    returns a current one; it is called before the first request and after a 401.
    ``timeout``: seconds to wait for each phase of a request (connect, send, answer; Hive's JS
    client waits 30 s), or an ``httpx.Timeout``; it applies to an injected client too.
    ``deadline``: seconds one request may take in all, token renewal included (default 120),
    measured on the event loop's clock; a request still unanswered then is cancelled and
    raises :class:`~brh.vault.NetworkError` (definite only if none of it was sent yet).
    ``client``: an ``httpx.AsyncClient`` to use (the caller keeps ownership of it);
    ``transport``: an ``httpx.AsyncBaseTransport`` for a client of our own (tests use
    ``httpx.MockTransport``). Close with :meth:`aclose` or ``async with``.
    """

    def __init__(
        self,
        url: str,
        token: TokenProvider,
        *,
        timeout: float | httpx.Timeout = 30.0,
        deadline: float = 120.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise InvalidArgumentError("url", f"must be an http:// or https:// URL, got {url!r}")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise InvalidArgumentError("url", f"{exc}: {url!r}") from None
        if not parts.hostname or parts.query or parts.fragment:
            raise InvalidArgumentError(
                "url", f"must name a host and have no query or fragment, got {url!r}"
            )
        if isinstance(token, str):
            if not token:
                raise InvalidArgumentError("token", "must not be empty")
        elif not callable(token):
            raise InvalidArgumentError(
                "token", f"must be a string or a function returning one, got {token!r}"
            )
        if isinstance(timeout, bool) or not (
            isinstance(timeout, httpx.Timeout)
            or (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0)
        ):
            raise InvalidArgumentError(
                "timeout", f"must be > 0 seconds or an httpx.Timeout, got {timeout!r}"
            )
        if isinstance(deadline, bool) or not (
            isinstance(deadline, int | float) and math.isfinite(deadline) and deadline > 0
        ):
            raise InvalidArgumentError("deadline", f"must be > 0 seconds, got {deadline!r}")
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise InvalidArgumentError("client", f"must be an httpx.AsyncClient, got {client!r}")
        if client is not None and transport is not None:
            raise InvalidArgumentError("transport", "give either client or transport, not both")
        self.url = url.rstrip("/")
        self._api = self.url + API_PREFIX
        self._provider = token
        self._token: str | None = token if isinstance(token, str) else None
        self._renewing = asyncio.Lock()
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._vault_time: float | None = None
        self.deadline = float(deadline)
        self._owns_client = client is None
        # Redirects are not followed, so a plain-http vault never makes a TLS connection: skip
        # loading the certificate store then (about 0.2 s for each client).
        self._client = client or httpx.AsyncClient(
            transport=transport, verify=parts.scheme == "https"
        )

    def __repr__(self) -> str:
        return f"HiveVault({self.url!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this vault created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HiveVault:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the Vault protocol ---------------------------------------------------------------------

    async def create_collection(self, name: str) -> None:
        """``PUT /collections/{name}``; :class:`~brh.vault.AlreadyExistsError` if it exists."""
        await self._request("create_collection", "PUT", f"/collections/{_name(name)}")

    async def delete_collection(self, name: str) -> None:
        """``DELETE /{name}``; :class:`~brh.vault.CollectionNotFoundError` if missing."""
        await self._request("delete_collection", "DELETE", f"/{_name(name)}")

    async def list_collections(self) -> list[str]:
        """``GET /collections``: the names of the vault's collections (not in the protocol)."""
        try:
            answer = await self._request("list_collections", "GET", "/collections")
        except CollectionNotFoundError:  # Hive's answer when there are none
            return []
        names: list[str] = []
        for item in answer.field("collections", list):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                raise answer.malformed(f"a collection without a name: {item!r}")
            names.append(name)
        return names

    async def insert_one(
        self, collection: str, document: Mapping[str, Any], *, timestamp: bool = True
    ) -> InsertResult:
        """``POST /collection/{name}`` with one document."""
        return await self._insert("insert_one", collection, [document], True, timestamp)

    async def insert_many(
        self,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        *,
        ordered: bool = True,
        timestamp: bool = True,
    ) -> InsertResult:
        """``POST /collection/{name}`` with several documents."""
        return await self._insert("insert_many", collection, documents, ordered, timestamp)

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        """``PATCH /collection/{name}?updateone=true``."""
        return await self._update("update_one", collection, filter, update, upsert, timestamp)

    async def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        """``PATCH /collection/{name}?updateone=false``."""
        return await self._update("update_many", collection, filter, update, upsert, timestamp)

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> None:
        """``DELETE /collection/{name}?deleteone=true`` (Hive answers 204, no count)."""
        await self._delete("delete_one", collection, filter, "true")

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> None:
        """``DELETE /collection/{name}?deleteone=false`` (Hive answers 204, no count)."""
        await self._delete("delete_many", collection, filter, "false")

    async def find_one(self, collection: str, filter: Mapping[str, Any]) -> Document | None:
        """The first match in natural order: a ``find`` with ``limit=1``."""
        found = await self._find("find_one", collection, filter, 0, 1)
        return found[0] if found else None

    async def find_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        """``GET /{name}?filter=...`` (an unsorted ``query`` when the URL would be too long)."""
        return await self._find("find_many", collection, filter, skip, limit)

    async def query(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        """``POST /query`` with ``sort`` as ``[[field, 1 | -1], ...]``."""
        name = _name(collection, quoted=False)
        body = query_body(name, filter, sort=sort, skip=skip, limit=limit, projection=projection)
        answer = await self._request("query", "POST", "/query", body=body)
        return answer.items()

    async def count_documents(
        self,
        collection: str,
        filter: Mapping[str, Any],
        *,
        skip: int = 0,
        limit: int | None = None,
    ) -> int:
        """``POST /collection/{name}?op=count``."""
        options: dict[str, Any] = {"skip": skip}
        if limit is not None:
            options["limit"] = limit
        answer = await self._request(
            "count_documents",
            "POST",
            f"/collection/{_name(collection)}",
            params={"op": "count"},
            body={"filter": filter, "options": options},
        )
        count: int = answer.field("count", int)
        return count

    # -- operations sharing a request shape -----------------------------------------------------

    async def _insert(
        self,
        op: str,
        collection: str,
        documents: Sequence[Mapping[str, Any]],
        ordered: bool,
        timestamp: bool,
    ) -> InsertResult:
        if isinstance(documents, str | bytes | Mapping) or not isinstance(documents, Sequence):
            raise InvalidParameterError("documents must be a list of documents")
        body = {
            "document": list(documents),
            "options": {
                "ordered": ordered,
                "bypass_document_validation": False,
                "timestamp": timestamp,
            },
        }
        answer = await self._request(op, "POST", f"/collection/{_name(collection)}", body=body)
        ids = answer.field("inserted_ids", list)
        return InsertResult(
            acknowledged=bool(answer.body.get("acknowledged", True)),
            inserted_ids=[answer.object_id(value) for value in ids],
        )

    async def _update(
        self,
        op: str,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        upsert: bool,
        timestamp: bool,
    ) -> UpdateResult:
        body = update_body(filter, update, upsert=upsert, timestamp=timestamp)
        answer = await self._request(
            op,
            "PATCH",
            f"/collection/{_name(collection)}",
            params={"updateone": "true" if op == "update_one" else "false"},
            body=body,
        )
        upserted = answer.body.get("upserted_id")
        return UpdateResult(
            acknowledged=bool(answer.body.get("acknowledged", True)),
            matched_count=answer.field("matched_count", int),
            modified_count=answer.field("modified_count", int),
            upserted_id=None if upserted is None else answer.object_id(upserted),
        )

    async def _delete(self, op: str, collection: str, filter: Mapping[str, Any], one: str) -> None:
        await self._request(
            op,
            "DELETE",
            f"/collection/{_name(collection)}",
            params={"deleteone": one},
            body={"filter": filter},
        )

    async def _find(
        self, op: str, collection: str, filter: Mapping[str, Any], skip: int, limit: int | None
    ) -> list[Document]:
        params = {"filter": dumps(filter, "filter"), "skip": _param(skip)}
        if limit is not None:
            params["limit"] = _param(limit)
        path = f"/{_name(collection)}"
        url = httpx.URL(self._api + path, params=params)
        if len(str(url)) > MAX_FIND_URL:
            return await self.query(collection, filter, skip=skip, limit=limit)
        return (await self._request(op, "GET", path, params=params)).items()

    # -- transport ------------------------------------------------------------------------------

    async def _request(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> _Answer:
        """Send one request (again once after a 401) and return its answer, or raise the typed
        error of what happened; all of it within :attr:`deadline`."""
        content = None if body is None else dumps(body, op).encode()
        progress = _Progress()
        timeout = asyncio.timeout(self.deadline)
        try:
            async with timeout:
                token = await self._current_token()
                response = await self._send(op, method, path, params, content, token, progress)
                if response.status_code == 401 and not isinstance(self._provider, str):
                    progress.reset()
                    token = await self._renew_token(token)
                    response = await self._send(op, method, path, params, content, token, progress)
        except TimeoutError as exc:
            if not timeout.expired():
                raise
            if progress.may_have_left:
                raise NetworkError(
                    f"{op}: no answer from the vault within the deadline of "
                    f"{self.deadline:g} s; the request may have applied",
                    definite=False,
                ) from exc
            raise NetworkError(
                f"{op}: the vault could not be reached within the deadline of "
                f"{self.deadline:g} s (nothing was sent)",
                definite=True,
            ) from exc
        self._note_date(response)
        if response.is_success:
            return _Answer(op, response)
        raise _error(response, op)

    def vault_time(self) -> float | None:
        """The node's clock as the ``Date`` header of its latest answer gave it (whole
        seconds), or None before any answer carried one (:class:`brh.vault.VaultClock`)."""
        return self._vault_time

    def _note_date(self, response: httpx.Response) -> None:
        date = response.headers.get("Date")
        if date is None:
            return
        try:
            when = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return  # a malformed Date says nothing about the vault's clock
        if when.tzinfo is not None:
            self._vault_time = when.timestamp()

    async def _send(
        self,
        op: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        token: str,
        progress: _Progress,
    ) -> httpx.Response:
        headers = {"Authorization": f"token {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        progress.handed = True
        try:
            return await self._client.request(
                method,
                self._api + path,
                params=params,
                content=content,
                headers=headers,
                timeout=self._timeout,
                extensions={"trace": progress.trace},
            )
        except _NEVER_SENT as exc:
            raise NetworkError(
                f"{op}: the vault could not be reached ({type(exc).__name__}: {exc})",
                definite=True,
            ) from exc
        except httpx.TransportError as exc:
            raise NetworkError(
                f"{op}: no answer from the vault ({type(exc).__name__}: {exc}); the request "
                "may have applied",
                definite=False,
            ) from exc

    async def _current_token(self) -> str:
        if self._token is None:
            async with self._renewing:  # concurrent first requests ask the provider once
                if self._token is None:
                    self._token = await self._ask_provider()
        return self._token

    async def _renew_token(self, refused: str) -> str:
        """A new token after ``refused`` got a 401 (unless another request renewed it already)."""
        async with self._renewing:
            if self._token == refused:
                self._token = await self._ask_provider()
            return self._token or refused

    async def _ask_provider(self) -> str:
        provider = self._provider
        assert not isinstance(provider, str)
        try:
            token = provider()
            if inspect.isawaitable(token):
                token = await token
        except Exception as exc:
            raise UnauthorizedError(
                f"the token provider failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(token, str) or not token:
            raise InvalidArgumentError(
                "token", f"the token provider must return a non-empty string, got {token!r}"
            )
        return token


def _name(name: Any, *, quoted: bool = True) -> str:
    """A collection name for a URL path (percent-encoded) or a body."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"invalid collection name: {name!r}")
    return quote(name, safe="") if quoted else name


def _param(value: Any) -> str:
    """An integer query parameter (the server checks its range)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(f"skip and limit must be integers, got {value!r}")
    return str(value)


def _error(response: httpx.Response, op: str) -> Exception:
    """The typed error of an error answer (any body: Hive's JSON, or a proxy's text)."""
    message, code = None, None
    try:
        error = loads(response.content).get("error")
        message, code = error.get("message"), error.get("internal_code")
    except (ValueError, AttributeError, InvalidParameterError):
        pass
    if not isinstance(message, str):
        text = response.text.strip()[:200]
        message = text or response.reason_phrase or "no message"
    if isinstance(code, bool) or not isinstance(code, int):
        code = None
    return error_for(response.status_code, f"{op}: {message}", code)


class _Progress:
    """How far the current send of a request got, for a deadline that cuts it: could any of it
    have reached the vault?

    Before the request is handed to httpx, certainly not. After, httpcore's ``trace`` events
    tell (connecting, then sending); a transport that reports none (a mock, a custom one) gives
    no such proof, so the request may have left.
    """

    __slots__ = ("handed", "sending", "traced")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.handed = False
        self.traced = False
        self.sending = False

    @property
    def may_have_left(self) -> bool:
        return self.handed and (self.sending or not self.traced)

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's ``trace`` extension: ``event`` is ``"<layer>.<step>.<started|...>"``."""
        self.traced = True
        parts = event.split(".")
        if len(parts) != 3 or parts[1] not in _CONNECTING:
            self.sending = True


class _Answer:
    """A success answer's JSON object (``{}`` for 204), read on behalf of operation ``op``.

    Anything in it that is not what Hive sends is a :class:`ServerError` with the answer's
    status, naming the operation: the request may have applied, but its answer is unusable.
    """

    def __init__(self, op: str, response: httpx.Response) -> None:
        self.op = op
        self.status = response.status_code
        self.body: dict[str, Any] = {}
        if response.status_code == 204 or not response.content:
            return
        try:
            body = loads(response.content)
        except (ValueError, InvalidParameterError) as exc:
            raise self.malformed(str(exc)) from None
        if not isinstance(body, dict):
            raise self.malformed(f"expected a JSON object, got {body!r}")
        self.body = body

    def malformed(self, detail: str) -> ServerError:
        return ServerError(
            f"{self.op}: malformed answer from the vault: {detail}", status=self.status
        )

    def field(self, name: str, kind: type) -> Any:
        value = self.body.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.malformed(f"{name!r} should be a {kind.__name__}, got {value!r}")
        return value

    def items(self) -> list[Document]:
        items: list[Document] = []
        for item in self.field("items", list):
            if not isinstance(item, dict):
                raise self.malformed(f"items must be documents, got {item!r}")
            items.append(item)
        return items

    def object_id(self, value: Any) -> ObjectId:
        """An id in the answer: Hive sends hex strings (``{"$oid"}`` is accepted too)."""
        if isinstance(value, ObjectId):
            return value
        if isinstance(value, str) and len(value) == 24:
            try:
                return ObjectId(value.lower())
            except ValueError:
                pass
        raise self.malformed(f"not an ObjectId: {value!r}")
