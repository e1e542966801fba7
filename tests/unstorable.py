"""The one table of values a Hive vault cannot store (ERR-1), and of look-alikes it can.

The helper's checks (``brh.validation``: ``check_key``, ``encode_data``), the fake vault
(``hivevault.vault.FakeVault``) and the development server (``vaultd``, over HTTP) are all
tested against these rows, so the three cannot drift apart. Each row says which argument the
helper names, why a vault refuses the value, a fragment every refusal's message contains, and
the JSON text a client would send for it (``wire``; JSON has no NaN or infinity, so those rows
carry the literals a lenient encoder writes, which a vault must refuse as well).

Where the rules come from (MongoDB behind Hive; Hive's deployment runs MongoDB 4.4 with
pymongo 3.11, and the wire between app and node is JSON):

* integers: BSON has int32 and int64 only; pymongo refuses anything else ("MongoDB can only
  handle up to 8-byte ints"); JSON itself has no such limit;
* NaN and infinities are BSON doubles, but JSON (RFC 8259) cannot carry them;
* strings and field names are UTF-8 in BSON; a lone surrogate (U+D800..U+DFFF unpaired) has no
  UTF-8 encoding;
* field names are BSON cstrings, so they cannot contain NUL (string *values* can: they carry a
  length);
* nesting: "MongoDB supports no more than 100 levels of nesting for BSON documents", each object
  or array adding a level and the document itself the first (MongoDB's limits page);
* field names starting with ``$``: MongoDB 4.4 refuses them anywhere in a document an update
  writes ("The dollar ($) prefixed field ... is not valid for storage",
  ``src/mongo/db/update/storage_validation.cpp``); 5.0 lifted this below the top level, but a
  helper must work with the nodes that exist. Dotted field names are stored by both (only
  inserts through pymongo 3's ``check_keys`` refuse them, and the helper never inserts);
* a document is at most 16 MiB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def nest(levels: int, inner: Any = 1) -> Any:
    """``inner`` inside ``levels`` containers, alternately objects and arrays."""
    for level in range(levels):
        inner = [inner] if level % 2 else {"x": inner}
    return inner


@dataclass(frozen=True)
class Case:
    """One value, passed as the helper's ``argument`` ("data" or "key")."""

    name: str
    value: Any
    argument: str
    why: str
    message: str
    """A fragment of every refusal's message (helper and vault alike), lower case."""
    wire: str
    """The JSON text of ``value`` (``json.dumps`` would fail or differ for some)."""


def _case(name: str, value: Any, why: str, message: str, wire: str | None = None) -> Case:
    argument = "key" if name.startswith("key-") else "data"
    return Case(name, value, argument, why, message, json.dumps(value) if wire is None else wire)


UNSTORABLE: list[Case] = [
    _case("int-2**63", {"n": 2**63}, "BSON integers are signed 64-bit", "64-bit"),
    _case("int-below-int64", [-(2**63) - 1], "BSON integers are signed 64-bit", "64-bit"),
    _case("int-2**64", 2**64, "BSON integers are signed 64-bit", "64-bit"),
    # 5,001 digits: Python refuses to turn it into text (its int/str limit is 4,300 digits), so
    # every check must refuse it without printing it, and fast.
    _case("int-10**5000", 10**5000, "BSON integers are signed 64-bit", "64-bit", "1" + "0" * 5000),
    _case("nan", float("nan"), "JSON has no NaN", "nan", "NaN"),
    _case("infinity", {"x": [float("inf")]}, "JSON has no infinity", "inf", '{"x": [1e999]}'),
    _case("-infinity", float("-inf"), "JSON has no infinity", "inf", "-Infinity"),
    _case("lone-surrogate", "a\ud800b", "not encodable as UTF-8", "surrogate"),
    _case("lone-surrogate-name", {"\udfff": 1}, "field names are UTF-8", "surrogate"),
    _case("nul-in-name", {"a\x00b": 1}, "field names are BSON cstrings", "nul"),
    _case("dollar-name", {"x": [{"$set": 1}]}, "MongoDB 4.4 refuses $ names in updates", "'$'"),
    _case("too-deep", nest(99, []), "100 levels with the document", "levels"),
    _case("too-large", "x" * MAX_DOCUMENT_BYTES, "a document is at most 16 MiB", "16 mib"),
    _case("key-lone-surrogate", "k\udc00", "not encodable as UTF-8", "surrogate"),
]
"""Values every vault refuses, and the helper refuses up front."""

ACCEPTED: list[Case] = [
    _case("int64-max", 2**63 - 1, "the largest int64", ""),
    _case("int64-min", {"n": -(2**63)}, "the smallest int64", ""),
    _case("floats", [-0.0, 1.7976931348623157e308, 5e-324], "finite doubles", ""),
    _case("nul-in-string", "a\x00b", "BSON strings carry a length", ""),
    _case("astral", {"😀": "😀"}, "a surrogate pair is one character", ""),
    _case("dotted-name", {"a.b": {"c.d": 1}}, "MongoDB stores dotted names from updates", ""),
    _case("odd-names", {"": 1, "a$": 2, " $": 3}, "only a leading $ is refused", ""),
    _case("deepest", nest(99), "99 levels of data + the document = 100", ""),
    _case("key-dotted", "a.b$c", "a key is a string value, not a field name", ""),
]
"""Values that look suspicious but every vault stores: the helper and the vaults accept them."""
