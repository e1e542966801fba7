"""An upload the vault refuses for good never stalls the others (SPEC RETRY-6, issue 11).

The vault may refuse one document for ever: too large for its limits, or invalid to it. Before
RETRY-6 that stopped every later key of the context (in key order) from uploading, silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from brh import SyncEvent
from brh.vault import InvalidParameterError, ServerError, UpdateResult
from hivevault.vault import FakeVault
from tests.support import Device, vault_live

HOUR = 3600.0


class PickyVault(FakeVault):
    """A fake vault that refuses every write of the keys in :attr:`refuse`, with ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(clock=lambda: asyncio.get_running_loop().time())
        self.refuse: set[str] = set()
        self.error = error
        self.attempts = 0

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        timestamp: bool = True,
    ) -> UpdateResult:
        if filter.get("key") in self.refuse:
            self.attempts += 1
            raise self.error
        return await super().update_one(
            collection, filter, update, upsert=upsert, timestamp=timestamp
        )


async def test_a_document_the_vault_refuses_does_not_stop_the_keys_after_it() -> None:
    """RETRY-6: with "big" refused (400), "a" and "c" (before and after it in key order) still
    upload in the same pass; the pass reports the refusal (reason "rejected", SyncResult,
    stuck_entries(), a "rejected" event, each with the vault's answer); the refused one is
    retried with backoff, not on every pass, and lands once the vault takes it."""
    vault = PickyVault(InvalidParameterError("the document exceeds the vault's size limit"))
    vault.refuse = {"big"}
    events: list[SyncEvent] = []
    a = Device("a", vault, listener=events.append, auto_sync=False)
    for key in ("a", "big", "c"):
        await a.put(key, f"value of {key}")
    result = await a.helper.sync()
    assert not result and result.reason == "rejected"
    assert vault_live(vault) == {"a": "value of a", "c": "value of c"}
    assert [(r.key, r.direction, r.refusals) for r in result.rejected] == [("big", "upload", 1)]
    assert "size limit" in (result.rejected[0].reason or "")
    stuck = a.helper.stuck_entries()
    assert [(s.context, s.key, s.direction) for s in stuck] == [("notes", "big", "upload")]
    assert "InvalidParameterError (400)" in (stuck[0].reason or "")
    assert result.stuck == tuple(stuck)
    rejected = [e for e in events if e.kind == "rejected"]
    assert [(e.key, "size limit" in (e.error or "")) for e in rejected] == [("big", True)]
    assert a.helper.pending_count("notes") == 1
    # held back: syncing again at once does not send it again
    assert (await a.helper.sync()).reason == "rejected"
    assert vault.attempts == 1
    # the helper retries by itself, with growing delays (this device's policy: 1 s
    # doubling up to 60 s, jitter 0.5), not at every pass
    await asyncio.sleep(60)
    assert 3 <= vault.attempts <= 8, vault.attempts
    await asyncio.sleep(HOUR)
    assert vault.attempts <= 8 + HOUR / 30, vault.attempts
    vault.refuse.clear()  # the vault's limit was raised
    await asyncio.sleep(HOUR)
    assert vault_live(vault)["big"] == "value of big"
    assert a.helper.stuck_entries() == [] and a.helper.pending_count("notes") == 0
    assert a.helper.last_result is not None and a.helper.last_result.completed
    await a.helper.close()


async def test_a_server_error_on_one_document_holds_it_back_too() -> None:
    """RETRY-6: a vault that fails (500) on every write of one key ends that pass's uploads
    (it may be in trouble), but the key is then held back, so later passes upload the others;
    it is reported stuck after stuck_threshold failures in a row."""
    vault = PickyVault(ServerError("internal error"))
    vault.refuse = {"a-first"}
    b = Device("b", vault, stuck_threshold=3, auto_sync=False)
    for key in ("a-first", "b", "c"):
        await b.put(key, key)
    assert (await b.helper.sync()).reason == "vault_error"
    assert vault_live(vault) == {}
    assert b.helper.stuck_entries() == []  # one 5xx is not yet the entry's fault
    await asyncio.sleep(HOUR)  # retries by itself
    assert vault_live(vault) == {"b": "b", "c": "c"}
    stuck = b.helper.stuck_entries()
    assert [(s.key, s.direction) for s in stuck] == [("a-first", "upload")]
    assert stuck[0].refusals >= 3 and "ServerError (500)" in (stuck[0].reason or "")
    await b.helper.close()


async def test_a_new_local_version_is_tried_at_once_and_a_wipe_forgets_the_refusal() -> None:
    """RETRY-6: a refusal holds back the version the vault refused, not the key: the app's next
    write of the key is uploaded at the next pass; wiping the context forgets refusals."""
    vault = PickyVault(InvalidParameterError("invalid document"))
    vault.refuse = {"k"}
    a = Device("a", vault, auto_sync=False)
    await a.put("k", "refused")
    assert (await a.helper.sync()).reason == "rejected"
    vault.refuse.clear()
    await a.put("k", "fixed by the app")
    assert await a.helper.sync()
    assert vault_live(vault) == {"k": "fixed by the app"}
    vault.refuse = {"j"}
    await a.put("j", "refused")
    assert (await a.helper.sync()).reason == "rejected"
    await a.helper.wipe_local_context_data("notes")
    assert a.helper.stuck_entries() == []
    await a.helper.close()


def test_whose_fault_a_failed_upload_is() -> None:
    """RETRY-6: only answers that refuse the document itself (400, 413, 422) are the entry's
    alone; a 5xx is counted against it too but stops the context; anything that says nothing
    about the document (no answer, 401, a frozen vault, 403, 429) is nobody's."""
    from brh.core import UploadFailure, upload_failure
    from brh.vault import (
        CollectionNotFoundError,
        NetworkError,
        UnauthorizedError,
        VaultFrozenError,
    )

    cases = [
        (InvalidParameterError("bad"), UploadFailure.ENTRY),
        (ServerError("too large", status=413), UploadFailure.ENTRY),
        (ServerError("unprocessable", status=422), UploadFailure.ENTRY),
        (ServerError("internal error"), UploadFailure.VAULT),
        (ServerError("unavailable", status=503), UploadFailure.VAULT),
        (ServerError("forbidden", status=403), UploadFailure.TRANSPORT),
        (ServerError("slow down", status=429), UploadFailure.TRANSPORT),
        (NetworkError("timeout", definite=False), UploadFailure.TRANSPORT),
        (UnauthorizedError("expired"), UploadFailure.TRANSPORT),
        (VaultFrozenError("frozen"), UploadFailure.TRANSPORT),
        (CollectionNotFoundError("gone"), UploadFailure.TRANSPORT),
    ]
    assert [(type(e).__name__, upload_failure(e)) for e, _ in cases] == [
        (type(e).__name__, want) for e, want in cases
    ]
