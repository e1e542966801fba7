"""What the fake vault holds for each key, read as any helper's documents would be read."""

from __future__ import annotations

import math
from typing import Any

from hivevault.vault import FakeVault
from simulator.world.checkers import ABSENT

__all__ = ["vault_outcomes"]


def vault_outcomes(vault: FakeVault, context: str) -> dict[str, list[Any]]:
    """key -> what ``vault`` holds for it, read in the original helper's fields only
    (DATA-2: ``key``, ``data``, ``modificationDate``, ``deletionDate``; never an
    implementation's own fields such as ``brhVersion``): the data of the key's document
    with the newest ``modificationDate``, or :data:`ABSENT` if that document is a tombstone.
    When several documents share the newest date and disagree, each of their outcomes is
    listed (the vault alone cannot say which one a reader picks). Keys whose documents are
    all tombstones are listed too (``[ABSENT]``)."""

    name = "backup_" + context
    newest: dict[str, tuple[float, list[Any]]] = {}
    if name not in vault.collection_names():
        return {}
    for doc in vault.documents(name):
        key = doc.get("key")
        if not isinstance(key, str):
            continue
        date = doc.get("modificationDate")
        stamp = float(date) if isinstance(date, int | float) else -math.inf
        outcome = doc.get("data") if doc.get("deletionDate") is None else ABSENT
        best = newest.get(key)
        if best is None or stamp > best[0]:
            newest[key] = (stamp, [outcome])
        elif stamp == best[0] and outcome not in best[1]:
            best[1].append(outcome)
    return {key: options for key, (_, options) in sorted(newest.items())}
