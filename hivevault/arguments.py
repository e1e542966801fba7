"""How a Hive node checks a request's arguments before MongoDB sees them.

Collection names, documents, counts and flags that Hive refuses are an
:class:`~brh.vault.InvalidParameterError` (400) naming the argument; what passes these checks
and MongoDB still refuses is the query engine's business (:mod:`hivevault.mongo`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brh.vault import InvalidParameterError
from hivevault import mongo

__all__ = ["check_count", "check_flag", "check_mapping", "check_name", "window"]

# Hive keeps these collections for itself and refuses user operations on them.
_INTERNAL_COLLECTIONS = frozenset(
    {"__collection_metadata__", "__anonymous_files__", "ipfs_files", "scripts", "scripts_temptx"}
)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"invalid collection name: {name!r}")
    if "$" in name or "\0" in name or name.startswith("system.") or mongo.has_lone_surrogate(name):
        raise InvalidParameterError(f"invalid collection name: {name!r}")
    if name in _INTERNAL_COLLECTIONS:
        raise InvalidParameterError(f"No permission to operate the collection {name}")
    return name


def check_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not mongo.is_document(value):
        raise InvalidParameterError(f"{what} must be a document, got {type(value).__name__}")
    return value


def check_count(value: Any, what: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        raise InvalidParameterError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def check_flag(value: Any, what: str) -> bool:
    if type(value) is not bool:  # Hive validates its boolean options
        raise InvalidParameterError(f"{what} must be a boolean, got {value!r}")
    return value


def window(skip: Any, limit: Any) -> tuple[int, int | None]:
    """Validated ``(skip, limit)``; a limit of 0 means no limit, as in MongoDB's find."""
    start = check_count(skip, "skip")
    count = check_count(limit, "limit", optional=True)
    assert start is not None
    return start, (count or None)
