"""Tests of hivevault.mongo's updates: every update operator, invalid updates, and the seed an
upsert inserts from its filter.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from brh.vault import InvalidParameterError, ObjectId, ServerError
from hivevault.mongo import (
    apply_update,
    upsert_seed,
)

OID_A = ObjectId("000000010000000000000001")
OID_B = ObjectId("000000020000000000000000")


# -- updates ------------------------------------------------------------------------------------


def up(doc: dict[str, Any], update: dict[str, Any], *, insert: bool = False) -> dict[str, Any]:
    return apply_update(doc, update, is_insert=insert)


def test_set_creates_embedded_documents_and_array_slots() -> None:
    """``$set`` on a dotted path creates embedded documents; a numeric part indexes arrays."""
    assert up({"_id": 1}, {"$set": {"a.b.c": 1}}) == {"_id": 1, "a": {"b": {"c": 1}}}
    assert up({"a": [1, 2]}, {"$set": {"a.1": 9}}) == {"a": [1, 9]}
    assert up({"a": [1]}, {"$set": {"a.3": 9}}) == {"a": [1, None, None, 9]}
    assert up({"a": [{"x": 1}]}, {"$set": {"a.0.y": 2}}) == {"a": [{"x": 1, "y": 2}]}
    with pytest.raises(ServerError, match="Cannot create field 'b'"):
        up({"a": 5}, {"$set": {"a.b": 1}})
    with pytest.raises(ServerError, match="Cannot create field"):
        up({"a": [1]}, {"$set": {"a.x": 1}})


def test_new_fields_are_added_in_lexicographic_order() -> None:
    """MongoDB 5.0+ applies update fields in lexicographic order, whatever the operators."""
    result = up({"_id": 1, "m": 0}, {"$set": {"z": 1, "b": 1}, "$inc": {"a": 1}})
    assert list(result) == ["_id", "m", "a", "b", "z"]


def test_unset() -> None:
    """``$unset`` removes fields (missing ones are fine); in an array it writes null."""
    doc = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    assert up(doc, {"$unset": {"a": "", "b.c": 1, "x.y": 1}}) == {"b": {"d": 3}, "l": [1, 2]}
    assert up(doc, {"$unset": {"l.0": ""}})["l"] == [None, 2]


def test_inc_and_mul() -> None:
    """``$inc``/``$mul`` need numbers; a missing field becomes the increment (or 0)."""
    assert up({"n": 1}, {"$inc": {"n": 2, "m": 5}}) == {"n": 3, "m": 5}
    assert up({"n": 1}, {"$inc": {"n": 0.5}}) == {"n": 1.5}
    assert up({"n": 3}, {"$mul": {"n": 2, "m": 4, "f": 1.5}}) == {"n": 6, "f": 0.0, "m": 0}
    with pytest.raises(ServerError, match=r"\$inc.*non-numeric"):
        up({"n": "1"}, {"$inc": {"n": 1}})
    with pytest.raises(ServerError, match=r"\$inc.*non-numeric"):
        up({"n": True}, {"$inc": {"n": 1}})
    with pytest.raises(ServerError, match=r"\$inc.*non-numeric argument"):
        up({"n": 1}, {"$inc": {"n": "1"}})


def test_min_and_max_use_the_cross_type_order() -> None:
    """``$min``/``$max`` replace the value when the argument is lower/higher, across types."""
    assert up({"n": 5}, {"$min": {"n": 3}}) == {"n": 3}
    assert up({"n": 5}, {"$min": {"n": 7}}) == {"n": 5}
    assert up({"n": 5}, {"$max": {"n": 7, "m": 1}}) == {"n": 7, "m": 1}
    assert up({"n": 5}, {"$max": {"n": "a"}}) == {"n": "a"}  # strings sort after numbers
    assert up({"n": 5}, {"$min": {"n": None}}) == {"n": None}


def test_rename() -> None:
    """``$rename`` moves a value to a new path; a missing source is a no-op."""
    assert up({"a": 1, "b": 2}, {"$rename": {"a": "c.d"}}) == {"b": 2, "c": {"d": 1}}
    assert up({"b": 2}, {"$rename": {"a": "c"}}) == {"b": 2}
    with pytest.raises(ServerError, match="conflict"):
        up({"a": 1}, {"$rename": {"a": "a"}})
    with pytest.raises(ServerError, match="string"):
        up({"a": 1}, {"$rename": {"a": 5}})


def test_set_on_insert_applies_only_on_insert() -> None:
    """``$setOnInsert`` is ignored unless the update is an upsert's insert."""
    update = {"$set": {"a": 1}, "$setOnInsert": {"created": 7}}
    assert up({}, update) == {"a": 1}
    assert up({}, update, insert=True) == {"a": 1, "created": 7}


def test_push_and_modifiers() -> None:
    """``$push`` appends (``$each``, ``$position``, ``$slice``); the field must be an array."""
    assert up({}, {"$push": {"l": 1}}) == {"l": [1]}
    assert up({"l": [1]}, {"$push": {"l": [2]}}) == {"l": [1, [2]]}
    assert up({"l": [1]}, {"$push": {"l": {"$each": [2, 3]}}}) == {"l": [1, 2, 3]}
    assert up({"l": [1, 2]}, {"$push": {"l": {"$each": [0], "$position": 0}}}) == {"l": [0, 1, 2]}
    assert up({"l": [1, 2]}, {"$push": {"l": {"$each": [3], "$slice": -2}}}) == {"l": [2, 3]}
    assert up({"l": [1, 2]}, {"$push": {"l": {"k": 1}}}) == {"l": [1, 2, {"k": 1}]}
    with pytest.raises(ServerError, match="must be an array"):
        up({"l": 1}, {"$push": {"l": 2}})
    with pytest.raises(ServerError, match=r"\$sort"):
        up({"l": []}, {"$push": {"l": {"$each": [1], "$sort": 1}}})


def test_add_to_set() -> None:
    """``$addToSet`` appends values not already present (by BSON equality)."""
    assert up({"l": [1, "a"]}, {"$addToSet": {"l": 1.0}}) == {"l": [1, "a"]}
    assert up({"l": [1]}, {"$addToSet": {"l": True}}) == {"l": [1, True]}
    assert up({}, {"$addToSet": {"l": {"$each": [1, 2, 1]}}}) == {"l": [1, 2]}


def test_pull() -> None:
    """``$pull`` removes equal elements, elements meeting a condition, or matching documents."""
    assert up({"l": [1, 2, 1, 3]}, {"$pull": {"l": 1}}) == {"l": [2, 3]}
    assert up({"l": [1, 5, 7]}, {"$pull": {"l": {"$gte": 5}}}) == {"l": [1]}
    docs = [{"k": "a", "v": 1}, {"k": "b", "v": 2}]
    assert up({"l": docs}, {"$pull": {"l": {"k": "b"}}}) == {"l": [{"k": "a", "v": 1}]}
    assert up({}, {"$pull": {"l": 1}}) == {}


def test_pop() -> None:
    """``$pop`` removes the last (1) or first (-1) element."""
    assert up({"l": [1, 2, 3]}, {"$pop": {"l": 1}}) == {"l": [1, 2]}
    assert up({"l": [1, 2, 3]}, {"$pop": {"l": -1}}) == {"l": [2, 3]}
    assert up({"l": []}, {"$pop": {"l": 1}}) == {"l": []}
    with pytest.raises(ServerError, match=r"\$pop"):
        up({"l": [1]}, {"$pop": {"l": 2}})


def test_replacement_keeps_id() -> None:
    """An update without ``$`` keys replaces the document but keeps ``_id``."""
    assert up({"_id": OID_A, "a": 1}, {"b": 2}) == {"_id": OID_A, "b": 2}
    assert up({"_id": OID_A, "a": 1}, {"_id": OID_A, "b": 2}) == {"_id": OID_A, "b": 2}
    with pytest.raises(ServerError, match="_id"):
        up({"_id": OID_A}, {"_id": OID_B})


def test_invalid_updates() -> None:
    """Mixed keys, unknown operators, ``_id`` changes and path conflicts are rejected."""
    with pytest.raises(ServerError, match="mix"):
        up({}, {"$set": {"a": 1}, "b": 2})
    with pytest.raises(ServerError, match=r"\$frob"):
        up({}, {"$frob": {"a": 1}})
    with pytest.raises(ServerError, match=r"\$currentDate"):
        up({}, {"$currentDate": {"a": True}})
    with pytest.raises(ServerError, match="immutable"):
        up({"_id": OID_A}, {"$set": {"_id": OID_B}})
    with pytest.raises(ServerError, match="immutable"):
        up({"_id": OID_A}, {"$unset": {"_id": 1}})
    assert up({"_id": OID_A}, {"$set": {"_id": OID_A}}) == {"_id": OID_A}
    with pytest.raises(ServerError, match="conflict"):
        up({}, {"$set": {"a": 1}, "$inc": {"a": 1}})
    with pytest.raises(ServerError, match="conflict"):
        up({}, {"$set": {"a.b": 1, "a": {}}})
    with pytest.raises(ServerError, match="document of fields"):
        up({}, {"$set": 5})
    with pytest.raises(ServerError, match="positional"):
        up({}, {"$set": {"a.$": 1}})
    with pytest.raises(ServerError, match="empty field name"):
        up({}, {"$set": {"a..b": 1}})
    with pytest.raises(InvalidParameterError, match="unsupported value"):
        up({}, {"$set": {"a": {1, 2}}})


def test_update_never_mutates_or_aliases_its_inputs() -> None:
    """The result is a fresh deep copy: input document and update values stay untouched."""
    doc: dict[str, Any] = {"a": {"b": [1, 2]}, "n": 1}
    value = {"deep": [1]}
    update = {"$set": {"v": value}, "$push": {"a.b": 3}, "$inc": {"n": 1}}
    before = copy.deepcopy((doc, update))
    result = up(doc, update)
    assert (doc, update) == before
    result["v"]["deep"].append(2)
    result["a"]["b"].append(4)
    assert value == {"deep": [1]} and doc["a"]["b"] == [1, 2]


# -- upsert seeds -------------------------------------------------------------------------------


def test_upsert_seed_takes_equality_conditions() -> None:
    """An upsert starts from the filter's equalities (plain, ``$eq``, inside ``$and``)."""
    seed = upsert_seed(
        {
            "key": "k",
            "n": {"$eq": 3},
            "a.b": 1,
            "$and": [{"c": True}, {"d": {"$gt": 1}}],
            "e": {"$in": [1]},
            "r": re.compile("x"),
            "$or": [{"f": 1}, {"g": 2}],
        }
    )
    assert seed == {"key": "k", "n": 3, "a": {"b": 1}, "c": True}


def test_upsert_seed_rejects_overlapping_paths() -> None:
    """Two equalities on one path (or a path and its prefix) cannot both seed a document."""
    with pytest.raises(ServerError):
        upsert_seed({"a": 1, "$and": [{"a": 2}]})
    with pytest.raises(ServerError):
        upsert_seed({"a": {"x": 1}, "a.y": 2})


def test_upsert_insert_combines_seed_and_update() -> None:
    """The inserted document is the seed with the update (and ``$setOnInsert``) applied."""
    seed = upsert_seed({"key": "k", "v": {"$lt": 3}})
    update = {"$set": {"v": 1}, "$setOnInsert": {"created": 5}}
    assert apply_update(seed, update, is_insert=True) == {"key": "k", "v": 1, "created": 5}
