"""What vaultd's tests share: raw HTTP requests with a token, Hive's error shape, and operations
run on a store directly (with a snapshot of a scope's collections)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from brh.hive import API_PREFIX
from hivevault.vault import FakeVault
from vaultd.store import VaultStore
from vaultd.tokens import Scope

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


def error(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "internal_code"}
    return response.status_code, body["error"]["message"], body["error"]["internal_code"]


async def apply(store: VaultStore, scope: Scope, op: str, *args: Any, **kwargs: Any) -> Any:
    return await store.run(scope, lambda vault: getattr(vault, op)(*args, **kwargs))


def snapshot(store: VaultStore, scope: Scope) -> dict[str, list[dict[str, Any]]]:
    async def read(vault: FakeVault) -> dict[str, list[dict[str, Any]]]:
        return {name: vault.documents(name) for name in vault.collection_names()}

    return asyncio.run(store.run(scope, read))
