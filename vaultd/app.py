"""The HTTP face of the development vault: Hive Node v2's database API, as a Starlette app.

Every endpoint of ``shared/reference/hive-vault-api.md`` (prefix
:data:`brh.hive_wire.API_PREFIX`) with the same methods, bodies, status codes and error bodies.
The work is done by the scope's :class:`~hivevault.vault.FakeVault` through
:class:`~vaultd.store.VaultStore`; this module only reads requests and writes answers:

* ``Authorization: token TOKEN`` picks the scope (:mod:`vaultd.tokens`); otherwise 401;
* a request that cannot be read (body not a JSON object, NaN, a number that reads as infinity or
  has more than 19 digits, JSON nested past 200 levels, a missing field, a bad query parameter, a
  bad ``$oid``) is a 400 that says what is wrong; the vault's own checks give 400 too (what a
  vault cannot store, its limits), and invalid MongoDB input 500 "internal error", as on Hive;
* a body larger than :attr:`Limits.max_body` is a 413, one slower than
  :attr:`Limits.body_timeout` a 408 (both close the connection); an insert of more than
  :attr:`Limits.max_documents` documents is a 400. Nothing is written when a request fails;
* ``_id`` values travel as ``{"$oid": hex}`` (:mod:`brh.hive_wire`), ids in write answers as hex
  strings, as Hive sends them.

The order of the routes matters as in Hive: ``GET /collections`` lists collections, so a
collection named ``collections`` cannot be found with ``GET /{name}`` (use ``POST /query``).
No path is redirected (``PUT /collections/`` without a name is a 400).

Bodies are parsed, and long answers encoded, in the store's worker threads when they are large,
so that the event loop keeps serving the other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from brh.hive_wire import (
    API_PREFIX,
    NO_INTERNAL_CODE,
    dumps,
    error_body,
    items_answer,
    loads,
    update_answer,
)
from brh.vault import CollectionNotFoundError, InvalidParameterError, ServerError, VaultError
from hivevault.vault import FakeVault
from vaultd.limits import Limits
from vaultd.store import VaultStore
from vaultd.tokens import Scope, TokenTable

__all__ = ["create_app"]

_IN_THREAD = 256 * 1024
"""Bodies larger than this are parsed in a worker thread, answers with more documents than
:data:`_MANY` encoded there."""
_MANY = 500

_log = logging.getLogger("vaultd")

Handler = Callable[[Request, Scope, VaultStore], Awaitable[Response]]


def _json(value: Any, status: int) -> Response:
    return Response(dumps(value, "answer"), status_code=status, media_type="application/json")


def _error(error: VaultError) -> Response:
    status, body = error_body(error)
    # A message may quote what the client sent, lone surrogates included: keep it encodable.
    message = body["error"]["message"]
    body["error"]["message"] = message.encode("utf-8", "backslashreplace").decode("utf-8")
    response = _json(body, status)
    if isinstance(error, _Unread):
        response.headers["connection"] = "close"  # the rest of the body is not wanted
    return response


class _Unread(VaultError):
    """A request whose body was not read to its end (too large, too slow)."""


class _TooLarge(_Unread):
    status = 413


class _TooSlow(_Unread):
    status = 408


# -- reading requests ---------------------------------------------------------------------------


async def _raw_body(request: Request, limits: Limits) -> bytes:
    """The body, at most ``limits.max_body`` bytes, within ``limits.body_timeout`` seconds."""
    limit = limits.max_body
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"the request body is {declared} bytes; the limit is {limit} (--max-body)")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge(
                        f"the request body is larger than {limit} bytes, the limit (--max-body)"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise _TooSlow(
            f"the request body did not arrive within {limits.body_timeout:g} s (--body-timeout)"
        ) from None
    return b"".join(chunks)


def _parse(raw: bytes) -> Any:
    try:
        return loads(raw)
    except ValueError as exc:
        raise InvalidParameterError(f"the request body is not JSON: {exc}") from None


async def _body(request: Request, store: VaultStore) -> dict[str, Any]:
    raw = await _raw_body(request, request.app.state.limits)
    body = await store.in_thread(_parse, raw) if len(raw) > _IN_THREAD else _parse(raw)
    if not isinstance(body, dict):
        raise InvalidParameterError(
            f"the request body must be a JSON object, got {type(body).__name__}"
        )
    return body


def _required(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise InvalidParameterError(f"the request body needs {name!r}")
    return body[name]


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise InvalidParameterError(f"'options' must be an object, got {options!r}")
    return options


def _switch(request: Request, name: str) -> bool:
    """A ``true``/``false`` query parameter that must be given."""
    value = request.query_params.get(name)
    if value not in ("true", "false"):
        raise InvalidParameterError(
            f"query parameter {name!r} must be true or false, got {value!r}"
        )
    return value == "true"


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidParameterError(
            f"query parameter {name!r} must be an integer, got {value!r}"
        ) from None


def _sort(options: dict[str, Any]) -> list[tuple[Any, Any]] | None:
    sort = options.get("sort")
    if sort is None:
        return None
    if not isinstance(sort, list) or not all(
        isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) for item in sort
    ):
        raise InvalidParameterError(f"'options.sort' must be [[field, 1 or -1], ...], got {sort!r}")
    return [(field, direction) for field, direction in sort]


# -- endpoints ----------------------------------------------------------------------------------


async def _list_collections(request: Request, scope: Scope, store: VaultStore) -> Response:
    async def names(vault: FakeVault) -> list[str]:
        return vault.collection_names()

    found = await store.run(scope, names)
    if not found:
        raise CollectionNotFoundError("Can not find any collection.")
    listed = [{"name": name, "is_encrypt": False, "encrypt_method": ""} for name in found]
    return _json({"collections": listed}, 200)


async def _create_collection(request: Request, scope: Scope, store: VaultStore) -> Response:
    name = request.path_params["name"]
    await store.run(scope, lambda vault: vault.create_collection(name))
    return _json({"name": name}, 200)


async def _delete_collection(request: Request, scope: Scope, store: VaultStore) -> Response:
    name = request.path_params["name"]
    await store.run(scope, lambda vault: vault.delete_collection(name))
    return Response(status_code=204)


async def _insert_or_count(request: Request, scope: Scope, store: VaultStore) -> Response:
    name = request.path_params["name"]
    body = await _body(request, store)
    options = _options(body)
    op = request.query_params.get("op")
    if op == "count":
        filter_ = _required(body, "filter")
        count = await store.run(
            scope,
            lambda vault: vault.count_documents(
                name, filter_, skip=options.get("skip", 0), limit=options.get("limit")
            ),
        )
        return _json({"count": count}, 201)
    if op is not None:
        raise InvalidParameterError(f"query parameter 'op' must be 'count' or absent, got {op!r}")
    documents = _required(body, "document")
    most = request.app.state.limits.max_documents
    if isinstance(documents, list) and len(documents) > most:
        raise InvalidParameterError(
            f"'document' holds {len(documents)} documents; this vault takes at most {most} a "
            "request (--max-documents)"
        )
    result = await store.run(
        scope,
        lambda vault: vault.insert_many(
            name,
            documents,
            ordered=options.get("ordered", True),
            timestamp=options.get("timestamp", True),
        ),
    )
    ids = [oid.hex for oid in result.inserted_ids]
    return _json({"acknowledged": result.acknowledged, "inserted_ids": ids}, 201)


async def _update(request: Request, scope: Scope, store: VaultStore) -> Response:
    name = request.path_params["name"]
    one = _switch(request, "updateone")
    body = await _body(request, store)
    options = _options(body)
    filter_, update = _required(body, "filter"), _required(body, "update")
    upsert, timestamp = options.get("upsert", False), options.get("timestamp", True)
    result = await store.run(
        scope,
        lambda vault: (vault.update_one if one else vault.update_many)(
            name, filter_, update, upsert=upsert, timestamp=timestamp
        ),
    )
    return _json(update_answer(result), 200)


async def _delete_documents(request: Request, scope: Scope, store: VaultStore) -> Response:
    name = request.path_params["name"]
    one = _switch(request, "deleteone")
    filter_ = _required(await _body(request, store), "filter")
    await store.run(
        scope, lambda vault: (vault.delete_one if one else vault.delete_many)(name, filter_)
    )
    return Response(status_code=204)


async def _find(request: Request, scope: Scope, store: VaultStore) -> Response:
    name = request.path_params["name"]
    text = request.query_params.get("filter")
    if text is None:
        raise InvalidParameterError("query parameter 'filter' is required ({} matches all)")
    try:
        filter_ = loads(text)
    except ValueError as exc:
        raise InvalidParameterError(f"query parameter 'filter' is not JSON: {exc}") from None
    skip, limit = _int_param(request, "skip"), _int_param(request, "limit")
    documents = await store.run(
        scope,
        lambda vault: vault.find_many(name, filter_, skip=skip or 0, limit=limit),
    )
    return await _found(store, documents, 200)


async def _query(request: Request, scope: Scope, store: VaultStore) -> Response:
    body = await _body(request, store)
    options = _options(body)
    name, filter_ = _required(body, "collection"), _required(body, "filter")
    sort = _sort(options)
    documents = await store.run(
        scope,
        lambda vault: vault.query(
            name,
            filter_,
            sort=sort,
            skip=options.get("skip", 0),
            limit=options.get("limit"),
            projection=options.get("projection"),
        ),
    )
    return await _found(store, documents, 201)


async def _found(store: VaultStore, documents: list[dict[str, Any]], status: int) -> Response:
    if len(documents) > _MANY:
        return await store.in_thread(_json, items_answer(documents), status)
    return _json(items_answer(documents), status)


async def _missing_name(request: Request, scope: Scope, store: VaultStore) -> Response:
    raise InvalidParameterError("PUT /collections/{name} needs a collection name")


# -- the app ------------------------------------------------------------------------------------


def create_app(store: VaultStore, tokens: TokenTable, limits: Limits | None = None) -> Starlette:
    """The ASGI app serving ``store``'s vaults to the holders of ``tokens``, within ``limits``
    (the body size, the body timeout and the documents per insert; the connection limits are
    the server's, :func:`vaultd.connections.server_config`).

    The caller owns ``store`` (and closes it after the server stopped).
    """

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                scope = tokens.scope_of(request.headers.get("authorization"))
                return await handler(request, scope, store)
            except VaultError as exc:
                return _error(exc)
            except Exception:
                _log.exception("%s %s failed", request.method, request.url.path)
                return _error(ServerError("internal error"))

        return serve

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"{exc.detail}: {request.method} {request.url.path}"
        body = {"error": {"message": message, "internal_code": NO_INTERNAL_CODE}}
        return _json(body, exc.status_code)

    p = API_PREFIX
    routes = [
        Route(f"{p}/collections", endpoint(_list_collections), methods=["GET"]),
        Route(f"{p}/collections/", endpoint(_missing_name), methods=["PUT"]),
        Route(f"{p}/collections/{{name}}", endpoint(_create_collection), methods=["PUT"]),
        Route(f"{p}/collection/{{name}}", endpoint(_insert_or_count), methods=["POST"]),
        Route(f"{p}/collection/{{name}}", endpoint(_update), methods=["PATCH"]),
        Route(f"{p}/collection/{{name}}", endpoint(_delete_documents), methods=["DELETE"]),
        Route(f"{p}/query", endpoint(_query), methods=["POST"]),
        Route(f"{p}/{{name}}", endpoint(_find), methods=["GET"]),
        Route(f"{p}/{{name}}", endpoint(_delete_collection), methods=["DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.router.redirect_slashes = False  # a redirect answers nothing a Hive client can use
    app.state.limits = limits or Limits()
    return app
