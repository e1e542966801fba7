"""A deliberately naive sync helper: the ten-minute example of the README ("Writing an
implementation"). It keeps its entries in a JSON file and on every sync uploads what changed
and reads the whole vault back, last writer wins by the device's clock. The conformance suite
shows what that costs: it passes the sunny-day tests and fails where clocks disagree, writes
race or the process dies mid-write.

Run it: ``pytest --pyargs conformance --brh-impl naive_helper:factory --brh-level core``
(from this folder).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from brh.vault import AlreadyExistsError


class NaiveHelper:
    def __init__(self, installation: Any) -> None:
        self.vault = installation.vault
        self.clock = installation.clock  # the device's clock: never time.time()
        self.device = installation.device_id
        self.file = installation.store / "entries.json"  # the harness made the folder
        self.entries: dict[str, dict[str, Any]] = (
            json.loads(self.file.read_text()) if self.file.exists() else {}
        )
        self.callbacks: dict[str, tuple[Any, Any, Any]] = {}

    def _save(self) -> None:
        self.file.write_text(json.dumps(self.entries))

    def _write(self, context: str, key: str, data: Any, deleted: bool) -> None:
        stamp = f"{int(self.clock() * 1000):015d}.{self.device}"
        self.entries.setdefault(context, {})[key] = {
            "data": data,
            "stamp": stamp,
            "deleted": deleted,
            "dirty": True,
        }
        self._save()

    # -- the helper API the harness drives (simulator.impl.Helper) --------------------------

    def add_sync_context(self, name: str, on_insert: Any, on_modify: Any, on_delete: Any) -> None:
        self.callbacks[name] = (on_insert, on_modify, on_delete)
        self.entries.setdefault(name, {})

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        self._write(context, key, data, deleted=False)

    async def delete_database_entry(
        self, context: str, key: str, locally_only: bool = False
    ) -> None:
        if locally_only:  # forget the local copy; the vault keeps the entry
            self.entries[context].pop(key, None)
            self._save()
        elif key in self.live(context):
            self._write(context, key, None, deleted=True)

    async def get_database_entry(self, context: str, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(context, {}).get(key)
        if entry is None or entry["deleted"]:
            return None
        return {"key": key, "data": entry["data"]}

    async def sync(self, *, full: bool = False) -> bool:
        for context, (on_insert, on_modify, on_delete) in self.callbacks.items():
            collection = f"backup_{context}"
            with contextlib.suppress(AlreadyExistsError):  # Hive answers 455 to a second create
                await self.vault.create_collection(collection)
            mine = self.entries[context]
            for key, entry in list(mine.items()):  # upload what changed here
                if entry["dirty"]:
                    document = {"key": key, "data": entry["data"], "stamp": entry["stamp"]}
                    document["deleted"] = entry["deleted"]
                    # the original helper's fields (SPEC DATA-2), so that it can read them too
                    millis = int(entry["stamp"][:15])
                    document["modificationDate"] = millis
                    document["deletionDate"] = millis if entry["deleted"] else None
                    await self.vault.update_one(
                        collection, {"key": key}, {"$set": document}, upsert=True
                    )
                    entry["dirty"] = False
                    self._save()
            for doc in await self.vault.find_many(collection, {}):  # read everything back
                key = doc["key"]
                local = mine.get(key)
                if local is not None and local["stamp"] >= doc["stamp"]:
                    continue  # ours is as new (last writer wins, by device clocks)
                entry = {"key": key, "data": doc["data"]}
                if doc["deleted"]:
                    callback = on_delete if local is not None and not local["deleted"] else None
                elif local is None or local["deleted"]:
                    callback = on_insert
                else:
                    callback = on_modify
                if callback is not None:
                    answer = callback(entry)
                    if not isinstance(answer, bool):
                        answer = await answer
                    if not answer:
                        return False  # refused: stop, a later sync retries
                mine[key] = {
                    "data": doc["data"],
                    "stamp": doc["stamp"],
                    "deleted": doc["deleted"],
                    "dirty": False,
                }
                self._save()
        return True

    async def wipe_local_context_data(self, context: str) -> None:
        self.entries[context] = {}
        self._save()

    def live(self, context: str) -> dict[str, Any]:
        return {k: e["data"] for k, e in self.entries.get(context, {}).items() if not e["deleted"]}

    def local_entries(self, context: str) -> dict[str, Any]:
        return self.live(context)

    async def close(self) -> None:
        pass  # everything is on disk already


def factory(installation: Any) -> NaiveHelper:
    return NaiveHelper(installation)
