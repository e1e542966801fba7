"""A model of an app for one sync context: what it would show, and every callback it got."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brh import Entry

__all__ = ["AppModel"]


@dataclass
class AppModel:
    """The app's own model of one context, driven by the helper's three callbacks.

    ``refuse(kind, entry)`` returning True makes the callback return False (kind is
    ``"insert"``, ``"modify"`` or ``"delete"``). ``calls`` records every callback as
    ``(kind, key, data)``, refused ones included.
    """

    items: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    refuse: Callable[[str, Entry], bool] | None = None

    def _handle(self, kind: str, entry: Entry) -> bool:
        self.calls.append((kind, entry.key, entry.data))
        if self.refuse is not None and self.refuse(kind, entry):
            return False
        if kind == "delete":
            self.items.pop(entry.key, None)
        else:
            self.items[entry.key] = entry.data
        return True

    def on_insert(self, entry: Entry) -> bool:
        return self._handle("insert", entry)

    async def on_modify(self, entry: Entry) -> bool:  # a coroutine on purpose: both kinds work
        return self._handle("modify", entry)

    def on_delete(self, entry: Entry) -> bool:
        return self._handle("delete", entry)

    def kinds(self) -> list[str]:
        return [kind for kind, _key, _data in self.calls]
