"""What travels over Hive's HTTP database API: JSON with ``$oid`` values, and error bodies.

Both ends of the wire use this module: the client :class:`brh.hive.HiveVault` and the
development server ``vaultd`` (``brh-vault serve``), so the two cannot drift apart.

* An :class:`~brh.vault.ObjectId` travels as ``{"$oid": "<24 hex digits>"}`` (MongoDB's extended
  JSON, as Hive's ``json_util`` writes and reads it), wherever it stands: in documents, filters
  and update documents. Other values travel as plain JSON; NaN and infinities are not JSON and
  are refused.
* An error answer is ``{"error": {"message": str, "internal_code": int}}``; :func:`error_for`
  turns status and code into the typed errors of :mod:`brh.vault`, and :func:`error_body` is
  the inverse the server uses.
* The bodies of a query and an update (:func:`query_body`, :func:`update_body`) and the
  answers to a read and an update (:func:`items_answer`, :func:`update_answer`), as Hive
  shapes them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from brh.vault import (
    AlreadyExistsError,
    CollectionNotFoundError,
    InvalidParameterError,
    ObjectId,
    ServerError,
    UnauthorizedError,
    UpdateResult,
    VaultError,
    VaultFrozenError,
    VaultNotFoundError,
)

__all__ = [
    "API_PREFIX",
    "MAX_NESTING",
    "NO_INTERNAL_CODE",
    "decode",
    "dumps",
    "encode",
    "error_body",
    "error_for",
    "items_answer",
    "loads",
    "query_body",
    "update_answer",
    "update_body",
]

API_PREFIX = "/api/v2/vault/db"
"""Where Hive Node v2 serves the database API, below the node's URL."""

NO_INTERNAL_CODE = -1
"""The ``internal_code`` sent when an error has no specific one."""

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_SCALARS = (str, int, float, bool, type(None))


def encode(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data: ObjectIds become ``{"$oid": hex}``, tuples become lists.

    Raises :class:`InvalidParameterError` (naming ``where``) for what JSON cannot carry: keys
    that are not strings, NaN or infinite numbers, values of other types.
    """
    if isinstance(value, ObjectId):
        return {"$oid": value.hex}
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameterError(f"{where}: {value!r} cannot be sent as JSON")
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidParameterError(f"{where}: field names must be strings, got {key!r}")
            out[key] = encode(item, where)
        return out
    if isinstance(value, list | tuple):
        return [encode(item, where) for item in value]
    raise InvalidParameterError(
        f"{where}: a value of type {type(value).__name__} cannot be sent as JSON: {value!r}"
    )


MAX_NESTING = 200
"""Levels of objects and arrays a message may have: MongoDB accepts no deeper BSON
(maxBSONDepth), so neither end of the wire reads any."""


def decode(value: Any, room: int = MAX_NESTING) -> Any:
    """Parsed JSON with every ``{"$oid": hex}`` (exactly that one field) turned into an ObjectId.

    Raises :class:`InvalidParameterError` for an ``$oid`` that is not 24 hex digits, and
    ``ValueError`` for JSON nested deeper than ``room`` levels.
    """
    if isinstance(value, dict):
        if len(value) == 1 and "$oid" in value:
            hex_ = value["$oid"]
            if not isinstance(hex_, str) or not _HEX24.fullmatch(hex_):
                raise InvalidParameterError(f"$oid must be 24 hex digits, got {hex_!r}")
            return ObjectId(hex_.lower())
        if room <= 0:
            raise ValueError(_too_deep())
        return {key: decode(item, room - 1) for key, item in value.items()}
    if isinstance(value, list):
        if room <= 0:
            raise ValueError(_too_deep())
        return [decode(item, room - 1) for item in value]
    return value


def _too_deep() -> str:
    return f"it nests deeper than {MAX_NESTING} levels, which MongoDB does not accept"


def dumps(value: Any, where: str = "value") -> str:
    """Compact JSON text of ``value`` after :func:`encode`."""
    return json.dumps(encode(value, where), ensure_ascii=False, separators=(",", ":"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > 19:  # not even converted: Python refuses ints of over 4,300 digits slowly
        raise ValueError(
            f"the integer {text[:22]}... has {digits} digits; BSON stores signed 64-bit integers"
        )
    return int(text)  # the vault checks the range of 19-digit ones, naming where they are


def _read_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:30]} is too large for a double (it reads as infinity)")
    return value


def loads(text: str | bytes) -> Any:
    """Parse strict JSON (no NaN or Infinity, no number that reads as infinity, no integer of
    more than 19 digits, at most :data:`MAX_NESTING` levels) and :func:`decode` it.

    Raises ``ValueError`` for text that is not such JSON, :class:`InvalidParameterError` for a
    bad ``$oid``.
    """
    try:
        parsed = json.loads(
            text, parse_constant=_refuse_constant, parse_int=_read_int, parse_float=_read_float
        )
    except RecursionError:
        raise ValueError(_too_deep()) from None
    return decode(parsed)


def error_for(status: int, message: str, internal_code: int | None) -> VaultError:
    """The typed error of an HTTP error answer (Hive's status codes and internal codes)."""
    if internal_code == NO_INTERNAL_CODE:
        internal_code = None
    if status == 400:
        return InvalidParameterError(message, internal_code=internal_code)
    if status == 401:
        return UnauthorizedError(message, internal_code=internal_code)
    if status == 403 and internal_code == VaultFrozenError.internal_code:
        return VaultFrozenError(message)
    if status == 404 and internal_code == CollectionNotFoundError.internal_code:
        return CollectionNotFoundError(message)
    if status == 404 and internal_code == VaultNotFoundError.internal_code:
        return VaultNotFoundError(message)
    if status == 455:
        return AlreadyExistsError(message, internal_code=internal_code)
    return ServerError(message, status=status, internal_code=internal_code)


def error_body(error: VaultError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body that say ``error`` (the inverse of :func:`error_for`)."""
    code = error.internal_code if error.internal_code is not None else NO_INTERNAL_CODE
    status = error.status if error.status is not None else ServerError.status
    return status, {"error": {"message": error.message, "internal_code": code}}


def query_body(
    collection: str,
    filter: Mapping[str, Any],
    *,
    sort: Sequence[tuple[str, int]] | None = None,
    skip: int = 0,
    limit: int | None = None,
    projection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /query``: ``sort`` as ``[[field, 1 | -1], ...]``."""
    options: dict[str, Any] = {"skip": skip}
    if limit is not None:
        options["limit"] = limit
    if projection is not None:
        options["projection"] = projection
    if sort:
        options["sort"] = [list(item) for item in sort]
    return {"collection": collection, "filter": filter, "options": options}


def update_body(
    filter: Mapping[str, Any], update: Mapping[str, Any], *, upsert: bool, timestamp: bool
) -> dict[str, Any]:
    """The body of ``PATCH /collection/{name}`` (update one or many)."""
    options = {"upsert": upsert, "bypass_document_validation": False, "timestamp": timestamp}
    return {"filter": filter, "update": update, "options": options}


def items_answer(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The answer to a find or a query."""
    return {"items": list(documents), "is_encrypt": False, "encrypt_method": ""}


def update_answer(result: UpdateResult) -> dict[str, Any]:
    """The answer to an update (an upserted id as its 24 hex digits)."""
    upserted = None if result.upserted_id is None else result.upserted_id.hex
    return {
        "acknowledged": result.acknowledged,
        "matched_count": result.matched_count,
        "modified_count": result.modified_count,
        "upserted_id": upserted,
    }
