"""A small, pure evaluator of MongoDB query, update, sort and projection semantics.

The fake vault (:mod:`hivevault.vault`) stores JSON-like documents (``dict``, ``list``, ``str``,
``int``, ``float``, ``bool``, ``None`` and :class:`~brh.vault.ObjectId`) and uses this module to
answer filters, updates, sorts and projections the way MongoDB does. Everything here is
deterministic, does no I/O, and never mutates its inputs: functions that build documents return
fresh deep copies (:func:`sort_documents` is the exception: it reorders the given objects).

Why not ``mongomock``: on this 2-core machine mongomock 4.3 took 83-105 ms for a
``find({"modified": {"$gte": X}})`` + sort over 10,000 documents and 1.1-1.4 ms over 100 (under
1,000 requests/s, far below the simulator's 20,000 requests/s); this evaluator, which compiles a
filter once into closures, takes 2-2.7 ms and 0.1-0.16 ms for the same queries.


Rules implemented (MongoDB 5.0+):

* Paths are dotted; a path through an array visits the embedded documents in it (``"a.b"``
  matches ``{"a": [{"b": 1}]}``), a numeric component indexes an array.
* Equality on an array field matches the whole array or any element; embedded documents compare
  field by field *in order*; ``{f: None}`` matches a missing ``f``; ``$ne: None`` excludes it.
* Comparisons bracket by type: ``$gt``/``$lt``/... only match values of the operand's BSON class
  (``int`` and ``float`` are one class, ``bool`` is not a number).
* Cross-type order (sort, ``$min``/``$max``): null/missing < numbers < strings < objects <
  arrays < ObjectId < bool; a sort on an array field uses its smallest element ascending and its
  largest descending; an empty array sorts before null.
* Invalid input (unknown ``$operator``, malformed argument) raises :class:`~brh.vault.ServerError`
  because Hive surfaces MongoDB's rejections as HTTP 500; values of unsupported Python types, and
  values no client could send or a vault could not store (integers beyond 64 bits, NaN, lone
  surrogates, NUL in field names, nesting past the limits, see :mod:`hivevault.mongo.values`),
  raise :class:`~brh.vault.InvalidParameterError` (400).
* ``$regex`` is evaluated by RE2 in linear time (:mod:`hivevault.mongo.filters` lists what of
  PCRE is and is not supported).
"""

from hivevault.mongo.filters import MAX_FILTER_DEPTH, compile_filter, matches
from hivevault.mongo.paths import MAX_PATH_PARTS
from hivevault.mongo.projection import compile_projection, project
from hivevault.mongo.sort import (
    ascending_key,
    ascending_token,
    sort_documents,
    sort_key,
    sort_paths,
)
from hivevault.mongo.updates import apply_update, upsert_seed
from hivevault.mongo.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_NESTING,
    MAX_REQUEST_NESTING,
    MISSING,
    check_wire,
    clone,
    compare,
    copy_value,
    has_lone_surrogate,
    identical,
    is_document,
    nesting,
)

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_FILTER_DEPTH",
    "MAX_NESTING",
    "MAX_PATH_PARTS",
    "MAX_REQUEST_NESTING",
    "MISSING",
    "apply_update",
    "ascending_key",
    "ascending_token",
    "check_wire",
    "clone",
    "compare",
    "compile_filter",
    "compile_projection",
    "copy_value",
    "has_lone_surrogate",
    "identical",
    "is_document",
    "matches",
    "nesting",
    "project",
    "sort_documents",
    "sort_key",
    "sort_paths",
    "upsert_seed",
]
