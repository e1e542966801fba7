"""What a vault stores at most: MongoDB's limits, as a Hive node in front of it applies them.

Each is refused with an :class:`~brh.vault.InvalidParameterError` (400) naming the argument and
what is wrong, and the request changes nothing:

* :data:`MAX_DOCUMENT_BYTES`: a stored document's size (16 MiB), checked here by
  :func:`check_size` on every document an insert or an update would store;
* :data:`MAX_NESTING`: levels of documents and arrays in a stored document (100, the document
  counted), and :data:`MAX_PATH_PARTS` parts in a dotted path;
* :data:`MAX_REQUEST_NESTING`: levels of any argument a client can send (200), and
  :data:`MAX_FILTER_DEPTH` levels of ``$and``/``$or``/``$nor``/``$not`` in a filter (100);
* :data:`INT64_MIN` .. :data:`INT64_MAX`: the integers BSON stores; with NaN, infinities, lone
  surrogates and NUL in field names, see :mod:`hivevault.mongo.values` for the rules and their
  sources.

The size is measured as the document's compact JSON encoding (what Hive's wire carries), in
UTF-8 bytes: close to its BSON size, and the same on every platform.
"""

from __future__ import annotations

import json
import json.encoder
import marshal
from typing import Any

from brh.vault import Document, InvalidParameterError, ObjectId
from hivevault.mongo import (
    INT64_MAX,
    INT64_MIN,
    MAX_FILTER_DEPTH,
    MAX_NESTING,
    MAX_PATH_PARTS,
    MAX_REQUEST_NESTING,
)

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DOCUMENT_BYTES",
    "MAX_FILTER_DEPTH",
    "MAX_NESTING",
    "MAX_PATH_PARTS",
    "MAX_REQUEST_NESTING",
    "check_size",
]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's maximum BSON document size."""


def _json_default(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return {"$oid": value.hex}
    raise TypeError(f"not JSON serialisable: {value!r}")


_ENCODER = json.JSONEncoder(
    default=_json_default, ensure_ascii=False, separators=(",", ":"), check_circular=False
)


# The C encoder behind _ENCODER, made once (JSONEncoder.encode builds one per call).
_C_ENCODE = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def _encode(doc: Document) -> str:
    """``_ENCODER.encode(doc)``."""
    if _C_ENCODE is None:
        return _ENCODER.encode(doc)
    return "".join(_C_ENCODE(doc, 0))


# How many JSON characters one byte of ``marshal.dumps(value, 2)`` can stand for, at most: a
# character of a string is at least one byte there and at most six in JSON (``\u001f``); a
# ``false`` is one byte there; numbers, keys, arrays and documents take less than that.
_JSON_PER_MARSHAL_BYTE = 6
_OBJECT_ID_JSON = len('{"$oid":"000000000000000000000000"},"_id":')


def _json_bound(doc: Document) -> int | None:
    """An upper bound on the length of ``_encode(doc)``, or None if there is no cheap one.

    ``marshal`` (format 2, which writes a repeated object out again rather than referring to
    it, as JSON does) sizes a document several times faster than encoding it; it knows no
    ObjectId, so a top-level ``_id`` is counted apart and any other one gives up."""
    rest = doc
    if type(doc.get("_id")) is ObjectId:
        rest = doc.copy()
        del rest["_id"]
    try:
        packed = len(marshal.dumps(rest, 2))
    except ValueError:  # an ObjectId deeper down, or a type marshal does not know
        return None
    return packed * _JSON_PER_MARSHAL_BYTE + _OBJECT_ID_JSON


def check_size(doc: Document) -> None:
    """Raise :class:`InvalidParameterError` if ``doc`` would exceed MongoDB's 16 MiB limit
    (measured as its compact JSON encoding, see the module docstring)."""
    bound = _json_bound(doc)
    if bound is not None and bound * 4 <= MAX_DOCUMENT_BYTES:  # the common case: far below
        return
    text = _encode(doc)
    if len(text) * 4 <= MAX_DOCUMENT_BYTES:  # UTF-8 takes at most 4 bytes a character
        return
    size = len(text.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidParameterError(
            f"document is too large: {size} bytes, the maximum is {MAX_DOCUMENT_BYTES} (16 MiB)"
        )
