"""What the fake vault's tests share: a clock moved by hand, a vault made with collections, a
way to run its coroutines and to read its whole state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from hivevault.collection import Collection
from hivevault.vault import FakeVault

T = TypeVar("T")


class StepClock:
    """A test clock: returns ``now`` and can be moved by hand (forwards or backwards)."""

    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def make(clock: StepClock | None = None, *collections: str) -> FakeVault:
    vault = FakeVault(clock=clock or StepClock())
    for name in collections:
        run(vault.create_collection(name))
    return vault


def state(vault: FakeVault) -> dict[str, list[dict[str, Any]]]:
    return {name: vault.documents(name) for name in vault.collection_names()}


def check_indexes(vault: FakeVault) -> None:
    """The indexes equal ones rebuilt from the documents, and ``_seq`` follows natural order."""
    for name in vault.collection_names():
        coll = vault._collections[name]
        fresh = Collection()
        for oid, doc in coll.docs.items():
            fresh.put(oid, doc)
        assert coll._by_key == fresh._by_key
        assert coll._odd_keys == fresh._odd_keys
        assert coll._by_modified == fresh._by_modified
        assert coll._modified_arrays == fresh._modified_arrays
        assert coll._entries == fresh._entries
        assert sorted(coll.docs, key=coll._seq.__getitem__) == list(coll.docs)
        assert coll._by_modified == sorted(coll._by_modified)
        assert coll._by_id == fresh._by_id == sorted(coll.docs)
