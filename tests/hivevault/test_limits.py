"""What a fake vault cannot store (ERR-1 on the vault's side) and its limits: the 16 MiB check,
nesting, paths, arithmetic, and ``$regex`` on RE2.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brh.vault import (
    InvalidParameterError,
    ObjectId,
    ServerError,
    VaultError,
)
from hivevault import limits
from hivevault.vault import MAX_DOCUMENT_BYTES
from tests.hivevault.support import StepClock, make, run, state
from tests.unstorable import ACCEPTED, UNSTORABLE, Case, nest

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # control characters, quotes, backslashes, non-ASCII, surrogates excluded
    # the values JSON writes longest for a byte of marshal, many in a row
    | st.lists(st.sampled_from([None, True, False, "\x00", '"', "\\", 0]), max_size=300)
    | st.text(alphabet='\x00\x01\x1f"\\', max_size=300),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(st.text(max_size=8), _json_values, max_size=6),
    with_id=st.booleans(),
    shared=st.text(min_size=1, max_size=50),
)
def test_the_cheap_size_bound_never_underestimates_the_encoding(
    fields: dict[str, Any], with_id: bool, shared: str
) -> None:
    """The 16 MiB check's shortcut: when it passes a document without encoding it, the
    document's JSON encoding (what the limit is measured on) is within the bound, whatever
    the values (escapes, booleans, big numbers, nesting, one string object repeated)."""
    doc: dict[str, Any] = {}
    if with_id:
        doc["_id"] = ObjectId("0123456789abcdef01234567")
    doc.update(fields)
    doc["repeated"] = [shared] * 20  # the same object: JSON writes it out each time
    bound = limits._json_bound(doc)
    assert bound is not None
    assert len(limits._encode(doc)) <= bound


@pytest.mark.parametrize(
    "value",
    [
        "\x00" * 1000,  # six JSON characters each
        '\x1f"\\' * 300,
        [None] * 1000,  # "null," for one byte
        [False] * 1000,  # "false," for one byte
        [0] * 1000,
        [[]] * 300,
        [{}] * 300,
        ["x" * 40] * 200,  # one string object, repeated: marshal 2 writes it out each time
        {"": {"": {"": {"": {}}}}},
    ],
    ids=["nul", "escapes", "nulls", "falses", "zeros", "lists", "documents", "shared", "deep"],
)
def test_the_cheap_size_bound_holds_for_the_worst_values(value: Any) -> None:
    """The 16 MiB check's shortcut, on the values JSON writes longest for each byte of
    marshal: the encoding never exceeds the bound."""
    doc = {"_id": ObjectId("0123456789abcdef01234567"), "value": value}
    bound = limits._json_bound(doc)
    assert bound is not None
    assert len(limits._encode(doc)) <= bound


def test_the_size_check_still_measures_documents_the_cheap_bound_cannot() -> None:
    """A document whose ObjectId is not its top-level ``_id`` has no cheap bound: it is
    encoded, and refused when too large."""
    clock = StepClock(1.0)
    vault = make(clock, "c")
    nested = {"ref": ObjectId("0123456789abcdef01234567")}
    assert limits._json_bound({"n": nested}) is None
    run(vault.insert_one("c", {"n": nested, "small": "x"}))
    with pytest.raises(InvalidParameterError, match="too large"):
        run(vault.insert_one("c", {"n": nested, "blob": "x" * MAX_DOCUMENT_BYTES}))


# -- what a vault cannot store (ERR-1 on the vault's side), and its limits -------------------------


def _entry_update(case: Case) -> dict[str, Any]:
    """The helper's kind of write of ``case``: its value as the key or as the data."""
    if case.argument == "key":
        return {"$set": {"key": case.value, "data": 1}}
    return {"$set": {"key": "k", "data": case.value}}


@pytest.mark.parametrize("case", UNSTORABLE, ids=lambda case: case.name)
def test_values_a_vault_cannot_store_are_400_and_change_nothing(case: Case) -> None:
    """ERR-1 (tests/unstorable.py), vault side: what the helper refuses up front, the fake vault
    refuses too, as an upsert, an update of an existing document and (but for a '$' field
    name, which MongoDB inserts) an insert: InvalidParameterError (400) whose message names
    the path and the reason, and nothing changes."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"n": 1}))
    before = state(vault)
    field = "key" if case.argument == "key" else "data"
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: vault.update_one("c", {"n": 2}, _entry_update(case), upsert=True),
        lambda: vault.update_many("c", {"n": 1}, _entry_update(case)),
    ]
    if case.name != "dollar-name":
        calls.append(lambda: vault.insert_one("c", {field: case.value}))
    for call in calls:
        with pytest.raises(InvalidParameterError) as info:
            run(call())
        assert case.message in str(info.value).lower()
        assert field in str(info.value) or case.name == "too-large"
    assert state(vault) == before
    assert vault.id_counter == 1


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_values_that_look_unstorable_but_are_not_are_stored_as_they_are(case: Case) -> None:
    """ERR-1 (tests/unstorable.py), vault side: the look-alikes are stored and read back
    exactly (types, field order), by upsert and by insert."""
    vault = make(StepClock(), "c")
    run(vault.update_one("c", {"n": 1}, _entry_update(case), upsert=True))
    field = "key" if case.argument == "key" else "data"
    run(vault.insert_one("c", {field: case.value}))
    found = run(vault.find_many("c", {}))
    assert [repr(doc[field]) for doc in found] == [repr(case.value)] * 2


def test_no_client_can_send_such_values_in_filters_either() -> None:
    """Filters, $pull conditions and paths with integers beyond 64 bits, NaN, lone surrogates
    or NUL are refused with a 400 naming the argument (no JSON client could send them)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"a": [1]}))
    filters: list[tuple[dict[str, Any], str]] = [
        ({"n": 2**64}, "filter.n"),
        ({"$or": [{"n": {"$in": [1, float("nan")]}}]}, "filter.$or.0.n.$in.1"),
        ({"s": "\ud800"}, "filter.s"),
        ({"a\x00b": 1}, "filter"),
        ({"a.\udc00": 1}, "filter"),
    ]
    for filter, where in filters:
        with pytest.raises(InvalidParameterError, match="^" + re.escape(where)):
            run(vault.find_many("c", filter))
    with pytest.raises(InvalidParameterError, match=r"\$pull a"):
        run(vault.update_one("c", {}, {"$pull": {"a": 2**70}}))
    with pytest.raises(InvalidParameterError, match="surrogate"):
        run(vault.query("c", {}, sort=[("\udc00", 1)]))
    with pytest.raises(InvalidParameterError, match="collection name"):
        run(vault.create_collection("c\udc00"))


def test_documents_nest_at_most_100_levels_the_document_itself_counted() -> None:
    """MongoDB's nesting limit: a document of 100 levels is stored, one of 101 is refused
    (400), whether inserted, written by $set, $push or $setOnInsert, or made by $rename."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"d": nest(99)}))
    run(vault.update_one("c", {}, {"$set": {"e": nest(99)}}))
    run(vault.update_one("c", {}, {"$set": {"a." * 98 + "b": [1]}}))  # 99 parts, an array
    before = state(vault)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: vault.insert_one("c", {"d": nest(100)}),
        lambda: vault.update_one("c", {}, {"$set": {"e": nest(100)}}),
        lambda: vault.update_one("c", {}, {"$set": {"a." * 99 + "b": []}}),
        lambda: vault.update_one("c", {}, {"$push": {"a." * 98 + "p": []}}),
        lambda: vault.update_one("c", {"z": 1}, {"$setOnInsert": {"s": nest(100)}}, upsert=True),
        lambda: vault.update_one("c", {}, {"$rename": {"d": "x.y"}}),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError, match=r"deeper than .*100 levels"):
            run(call())
    assert state(vault) == before


def test_a_600_part_path_is_refused_and_the_vault_goes_on_answering() -> None:
    """Limits, issue A.1: a $set with a 600-part path used to be stored, after which every
    read of the collection failed (copying the document blew Python's recursion limit). Paths
    have at most 100 parts, in updates, filters, sorts and projections: 400, nothing stored."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"k": 1}))
    long = ".".join(["a"] * 600)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: vault.update_one("c", {"k": 1}, {"$set": {long: 1}}),
        lambda: vault.update_one("c", {"k": 2}, {"$set": {long: 1}}, upsert=True),
        lambda: vault.find_many("c", {long: 1}),
        lambda: vault.query("c", {}, sort=[(long, 1)]),
        lambda: vault.query("c", {}, projection={long: 1}),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError, match="600 parts"):
            run(call())
    assert [doc["k"] for doc in run(vault.find_many("c", {}))] == [1]
    run(vault.find_many("c", {".".join(["a"] * 100): 1}))  # 100 parts: fine


def test_filters_nest_at_most_100_logical_levels_and_200_levels_of_json() -> None:
    """Limits, issue A.1: a filter whose $and/$or/$not/$elemMatch tree is deeper than
    MongoDB's 100 levels, or whose JSON nests past 200, is a 400 before it is compiled (it
    used to exhaust Python's recursion limit: a 500, or worse in a server thread)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"a": 1}))

    def ands(levels: int) -> dict[str, Any]:
        query: dict[str, Any] = {"a": 1}
        for _ in range(levels - 1):
            query = {"$and": [query]}
        return query

    def nots(levels: int) -> dict[str, Any]:
        condition: dict[str, Any] = {"$gt": 5}
        for _ in range(levels - 2):
            condition = {"$not": condition}
        return {"a": {"$not": condition}}

    assert len(run(vault.find_many("c", ands(100)))) == 1
    assert len(run(vault.find_many("c", nots(100)))) == 1
    for filter in (nots(101), {"a": {"$elemMatch": nots(100)}}):
        with pytest.raises(InvalidParameterError, match="more than 100 levels"):
            run(vault.find_many("c", filter))
    for filter in (ands(101), {"a": {"$elemMatch": ands(100)}}):  # also 201 levels of JSON
        with pytest.raises(InvalidParameterError, match=r"more than 100 levels|200 levels"):
            run(vault.find_many("c", filter))
    with pytest.raises(InvalidParameterError, match="200 levels"):
        run(vault.find_many("c", {"a": nest(250)}))
    with pytest.raises(InvalidParameterError, match="200 levels"):
        run(vault.find_many("c", ands(1000)))


def test_arithmetic_that_leaves_what_a_vault_stores_is_refused() -> None:
    """$inc and $mul whose result is beyond signed 64 bits or not finite are a 400 and change
    nothing (MongoDB refuses the integer overflow; JSON cannot carry the infinity)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"i": 2**62, "f": 1e308}))
    before = state(vault)
    updates: list[tuple[dict[str, Any], str]] = [
        ({"$inc": {"i": 2**62}}, "64-bit"),
        ({"$mul": {"i": -4}}, "64-bit"),
        ({"$inc": {"f": 1e308}}, "inf"),
        ({"$mul": {"f": 10}}, "inf"),
    ]
    for update, message in updates:
        with pytest.raises(InvalidParameterError, match=message):
            run(vault.update_one("c", {}, update))
    assert state(vault) == before
    run(vault.update_one("c", {}, {"$inc": {"i": 2**62 - 1}}))
    assert run(vault.find_one("c", {}))["i"] == 2**63 - 1  # type: ignore[index]


# -- $regex: RE2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "options", "text", "found"),
    [
        ("^(a+)+$", "", "aaaa!", False),  # catastrophic for a backtracking engine (test_vaultd)
        ("^(a|aa)+$", "", "a" * 5000, True),
        ("ab$", "", "xab\n", True),  # PCRE's $: the end, or before a final newline
        ("ab$", "", "ab\nx", False),
        ("^b$", "m", "a\nb\nc", True),
        ("ab\\Z", "", "ab\n", True),
        ("A B # a comment\n C", "xi", "abc", True),
        ("a\\ b", "x", "a b", True),
        ("[#] x", "x", "#x", True),
        ("[[:digit:]]$", "", "a1", True),
        ("\\d", "", "\u0663", False),  # ASCII classes, as PCRE without UCP
        ("é", "i", "É", True),
    ],
)
def test_regex_runs_on_re2_with_pcre_semantics(
    pattern: str, options: str, text: str, found: bool
) -> None:
    """Limits, issue A.1 (regex cost): $regex is evaluated by RE2, linear in the text; the
    options i, m, s, x, PCRE's $ and \\Z and its ASCII \\d keep MongoDB's meaning."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"s": text}))
    filter = {"s": {"$regex": pattern, "$options": options}}
    assert len(run(vault.find_many("c", filter))) == int(found)


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "a(?=b)", "(?<!a)b", "(?>a+)b", "a++b", "(?(1)a|b)", "(?R)?"]
)
def test_regex_features_that_need_backtracking_are_400(pattern: str) -> None:
    """Limits, issue A.1: backreferences, look-around, atomic groups, possessive quantifiers,
    conditionals and recursion are not supported by a linear-time engine: a 400 that says so
    (a pattern PCRE itself rejects stays a 500, as on Hive)."""
    vault = make(StepClock(), "c")
    run(vault.insert_one("c", {"s": "ab"}))
    try:
        re.compile(pattern)
    except re.error:
        expected: type[VaultError] = ServerError  # Python's re knows no such construct either
    else:
        expected = InvalidParameterError
    with pytest.raises(expected, match=r"not supported|invalid regular expression"):
        run(vault.find_many("c", {"s": {"$regex": pattern}}))
    with pytest.raises(ServerError, match="invalid regular expression"):
        run(vault.find_many("c", {"s": {"$regex": "(ab"}}))


_edge_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["\ud800", "a\udfff", "😀", "a\x00b"]),
)
_edge_names = st.one_of(
    st.text(max_size=3), st.sampled_from(["$x", "a.b", "", "a\x00", "\udc00", "a$", "😀"])
)
_edge_values = st.recursive(
    _edge_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_edge_names, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=_edge_values, depth=st.sampled_from([0, 0, 0, 95, 98, 99, 100]))
def test_the_helper_and_the_vault_refuse_exactly_the_same_data(data: Any, depth: int) -> None:
    """ERR-1: on any JSON-like data (edge integers and floats, surrogates, NUL, '$' and dotted
    names, nesting near the limit), brh's up-front check refuses exactly what the fake vault
    refuses when the helper's upsert writes it, and both accept the rest."""
    from brh.errors import InvalidArgumentError
    from brh.validation import encode_data

    data = nest(depth, data) if depth else data
    try:
        encode_data("k", data)
        helper_refuses = False
    except InvalidArgumentError:
        helper_refuses = True
    vault = make(StepClock(), "c")
    update = {"$set": {"key": "k", "data": data}}
    try:
        run(vault.update_one("c", {"key": "k"}, update, upsert=True))
        vault_refuses = False
    except InvalidParameterError:
        vault_refuses = True
    assert helper_refuses == vault_refuses
