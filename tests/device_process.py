"""A device in its own OS process: an app and a brh helper syncing through a real HTTP vault.

Run by the tests as ``python -m tests.device_process --url URL --token TOKEN --store PATH
--model PATH --device NAME [--freeze-at-write N] [--freeze-in-callback N]``. It speaks one JSON
object per line: commands on stdin, answers and events on stdout (``{"event": "ready"}`` first).

Commands and their answers (every answer has ``"ok": true``, or ``false`` and ``"error"``):

* ``{"do": "put", "key": K, "value": V}``, ``{"do": "put_many", "prefix": P, "count": N}``
  (keys ``P000``, ``P001``, ... with values ``"P000 from NAME"``), ``{"do": "delete", "key": K}``:
  the app changes its model, then tells the helper;
* ``{"do": "sync"}``: one pass; the answer has ``completed``, ``reason``, ``pushed``,
  ``delivered``;
* ``{"do": "state"}``: ``model`` (the app's model) and ``pending`` (changes not yet uploaded);
* ``{"do": "quit"}``.

The app's model is a JSON file, rewritten atomically on every change, so it survives ``kill -9``
as an app's own database would. The helper's local store is a SQLite file beside it.

Freezes put the process in a known state for a test to ``kill -9`` it (no timing guesswork): it
prints ``{"event": "frozen", ...}`` and stops (its event loop blocked) until killed:

* ``--freeze-at-write N``: when the answer to the N-th write request arrives: the vault has
  applied and committed the write, the helper has not recorded it (an indefinite outcome);
* ``--freeze-in-callback N``: inside the N-th callback, after the app updated its model and
  before the helper recorded the delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from brh import BackupRestoreHelper, Entry
from brh.hive import HiveVault

CONTEXT = "notes"
FROZEN_FOR = 120.0
"""Seconds a frozen process waits to be killed before it exits by itself (a safety net)."""


def emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def freeze(reason: str) -> None:
    """Block the whole process (event loop included) until the test kills it."""
    emit({"event": "frozen", "at": reason})
    threading.Event().wait(FROZEN_FOR)
    os._exit(3)


class App:
    """The app's own model: key -> value, saved to a JSON file after every change."""

    def __init__(self, path: Path, freeze_in_callback: int | None) -> None:
        self.path = path
        self.model: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.callbacks = 0
        self.freeze_in_callback = freeze_in_callback

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.model, sort_keys=True))
        os.replace(temporary, self.path)

    def _delivered(self, what: str, key: str) -> bool:
        self.save()
        self.callbacks += 1
        if self.callbacks == self.freeze_in_callback:
            freeze(f"callback {self.callbacks} ({what} {key})")
        return True

    def on_insert(self, entry: Entry) -> bool:
        self.model[entry.key] = entry.data
        return self._delivered("insert", entry.key)

    def on_modify(self, entry: Entry) -> bool:
        self.model[entry.key] = entry.data
        return self._delivered("modify", entry.key)

    def on_delete(self, entry: Entry) -> bool:
        self.model.pop(entry.key, None)
        return self._delivered("delete", entry.key)


def write_freezer(at: int | None) -> list[Any]:
    """httpx response hooks that freeze at the answer of the ``at``-th write request."""
    if at is None:
        return []
    writes = 0

    async def on_response(response: httpx.Response) -> None:
        nonlocal writes
        request = response.request
        is_write = request.method in ("PATCH", "DELETE", "PUT") or (
            request.method == "POST" and "/collection/" in request.url.path
        )
        if is_write and request.url.params.get("op") != "count":
            writes += 1
            if writes == at:
                freeze(f"answer {response.status_code} to write {writes}")

    return [on_response]


async def serve(args: argparse.Namespace) -> None:
    app = App(Path(args.model), args.freeze_in_callback)
    hooks = {"response": write_freezer(args.freeze_at_write)}
    async with (
        httpx.AsyncClient(event_hooks=hooks, verify=False) as client,  # plain http
        HiveVault(args.url, args.token, timeout=10.0, client=client) as vault,
        BackupRestoreHelper(
            vault, Path(args.store), device_id=args.device, auto_sync=False
        ) as helper,
    ):
        helper.add_sync_context(CONTEXT, app.on_insert, app.on_modify, app.on_delete)
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        emit({"event": "ready"})
        while line := await reader.readline():
            command = json.loads(line)
            try:
                answer = await run(command, app, helper, args.device)
            except Exception as exc:  # reported to the test, which fails with it
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            emit(answer)
            if command["do"] == "quit":
                break


async def run(
    command: dict[str, Any], app: App, helper: BackupRestoreHelper, device: str
) -> dict[str, Any]:
    do = command["do"]
    if do == "put":
        app.model[command["key"]] = command["value"]
        app.save()
        await helper.upsert_database_entry(CONTEXT, command["key"], command["value"])
    elif do == "put_many":
        for index in range(command["count"]):
            key = f"{command['prefix']}{index:03d}"
            app.model[key] = f"{key} from {device}"
            app.save()
            await helper.upsert_database_entry(CONTEXT, key, app.model[key])
    elif do == "delete":
        app.model.pop(command["key"], None)
        app.save()
        await helper.delete_database_entry(CONTEXT, command["key"])
    elif do == "sync":
        result = await helper.sync()
        return {
            "ok": True,
            "completed": result.completed,
            "reason": result.reason,
            "error": result.error,
            "pushed": result.pushed,
            "delivered": result.delivered,
        }
    elif do == "state":
        return {"ok": True, "model": app.model, "pending": helper.pending_count(CONTEXT)}
    elif do != "quit":
        raise ValueError(f"unknown command {do!r}")
    return {"ok": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--freeze-at-write", type=int)
    parser.add_argument("--freeze-in-callback", type=int)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
