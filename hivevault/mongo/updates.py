"""Updates: applying MongoDB update operators (or a replacement) to a copy of a document, and
the document an upsert starts from."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from brh.vault import InvalidParameterError, ServerError
from hivevault.mongo.filters import (
    Test,
    _integer,
    _is_operator_doc,
    _operators_predicate,
    _regex_test,
    compile_filter,
)
from hivevault.mongo.paths import _check_conflicts, _get, _parent, _put, _split, _update_path
from hivevault.mongo.values import (
    _SCALARS,
    MAX_NESTING,
    MISSING,
    Document,
    check_wire,
    clone,
    compare,
    copy_value,
    identical,
    is_document,
    nesting,
    scalar_problem,
)

# Values an update writes are cloned with the room left below their path, and without field
# names starting with "$" (see hivevault.mongo.values: MongoDB 4.4 refuses them in updated
# documents), so a document an update produces is one a vault can store.


def _written(op: str, parts: tuple[str, ...], value: Any, below: int = 0) -> Any:
    """``value`` cloned for writing at ``parts`` (``below`` more levels down: array elements)."""
    return clone(
        value,
        MAX_NESTING - len(parts) - below,
        f"{op} {'.'.join(parts)}",
        dollar_names=False,
    )


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _arithmetic(op: str, doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    path = ".".join(parts)
    if not _is_number(arg):
        raise ServerError(f"{op}: cannot apply with a non-numeric argument: {{{path}: {arg!r}}}")
    parent = _parent(doc, parts, create=True)
    current = _get(parent, parts[-1])
    if current is MISSING:
        value = arg if op == "$inc" else type(arg)(0)
    elif not _is_number(current):
        kind = type(current).__name__
        raise ServerError(f"{op}: cannot apply to a value of non-numeric type {kind} at {path!r}")
    else:
        value = current + arg if op == "$inc" else current * arg
        problem = scalar_problem(value)
        if problem is not None:
            raise InvalidParameterError(f"{op}: the result at {path!r} {problem}")
    _put(parent, parts[-1], value, parts)


def _array_at(op: str, doc: Document, parts: tuple[str, ...], create: bool) -> list[Any] | None:
    """The array at ``parts`` (made empty if missing and ``create``); None if missing."""
    parent = _parent(doc, parts, create)
    current = MISSING if parent is None else _get(parent, parts[-1])
    if current is MISSING:
        if not create:
            return None
        current = []
        _put(parent, parts[-1], current, parts)
    if type(current) is not list:
        kind = type(current).__name__
        raise ServerError(f"{op}: the field {'.'.join(parts)!r} must be an array, not {kind}")
    return current


def _each(
    op: str, parts: tuple[str, ...], arg: Any, allowed: tuple[str, ...]
) -> tuple[list[Any], Mapping[str, Any]]:
    if is_document(arg) and "$each" in arg:
        unknown = [k for k in arg if k not in allowed]
        if unknown:
            raise ServerError(f"{op}: unsupported modifier {unknown[0]}")
        if not isinstance(arg["$each"], (list, tuple)):
            raise ServerError(f"{op}: the argument to $each must be an array")
        return [_written(op, parts, v, below=1) for v in arg["$each"]], arg
    return [_written(op, parts, arg, below=1)], {}


def _push(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    values, modifiers = _each("$push", parts, arg, ("$each", "$position", "$slice"))
    array = _array_at("$push", doc, parts, create=True)
    assert array is not None
    position = _integer(modifiers.get("$position", len(array)), "$position")
    array[position:position] = values
    if "$slice" in modifiers:
        keep = _integer(modifiers["$slice"], "$slice")
        array[:] = array[:keep] if keep >= 0 else array[len(array) + keep :]


def _add_to_set(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    values, _ = _each("$addToSet", parts, arg, ("$each",))
    array = _array_at("$addToSet", doc, parts, create=True)
    assert array is not None
    for value in values:
        if not any(compare(value, e) == 0 for e in array):
            array.append(value)


def _pull(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    check_wire(arg, f"$pull {'.'.join(parts)}")
    test: Test
    if _is_operator_doc(arg):
        inner = _operators_predicate(arg)
        test = lambda e: inner([e])  # noqa: E731
    elif is_document(arg):
        query = compile_filter(arg)
        test = lambda e: type(e) is dict and query(e)  # noqa: E731
    elif isinstance(arg, re.Pattern):
        test = _regex_test(arg)
    else:
        test = lambda e: compare(e, arg) == 0  # noqa: E731
    array = _array_at("$pull", doc, parts, create=False)
    if array is not None:
        array[:] = [e for e in array if not test(e)]


def _pop(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    if not _is_number(arg) or arg not in (1, -1):
        raise ServerError(f"$pop expects 1 or -1, found: {arg!r}")
    array = _array_at("$pop", doc, parts, create=False)
    if array:
        array.pop(-1 if arg == 1 else 0)


def _set(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    value = _written("$set", parts, arg)
    if len(parts) == 1:
        doc[parts[0]] = value
        return
    _put(_parent(doc, parts, create=True), parts[-1], value, parts)


def _unset(doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    parent = _parent(doc, parts, create=False)
    if type(parent) is dict:
        parent.pop(parts[-1], None)
    elif parent is not None and _get(parent, parts[-1]) is not MISSING:
        parent[int(parts[-1])] = None  # MongoDB nulls array elements rather than removing them


def _min_max(op: str, doc: Document, parts: tuple[str, ...], arg: Any) -> None:
    parent = _parent(doc, parts, create=True)
    current = _get(parent, parts[-1])
    if current is MISSING or compare(arg, current) == (-1 if op == "$min" else 1):
        _put(parent, parts[-1], _written(op, parts, arg), parts)


def _rename(doc: Document, parts: tuple[str, ...], target: tuple[str, ...]) -> None:
    parent = _parent(doc, parts, create=False)
    if parent is None or _get(parent, parts[-1]) is MISSING:
        return
    if type(parent) is not dict:
        raise ServerError(f"$rename: the source field {'.'.join(parts)!r} is an array element")
    value = parent.pop(parts[-1])
    if len(target) > len(parts) and len(target) + nesting(value) > MAX_NESTING:
        raise InvalidParameterError(
            f"$rename: moving {'.'.join(parts)!r} to {'.'.join(target)!r} would nest the "
            f"document deeper than the {MAX_NESTING} levels a vault stores"
        )
    destination = _parent(doc, target, create=True)
    if type(destination) is not dict:
        raise ServerError(f"$rename: the destination {'.'.join(target)!r} is an array element")
    destination[target[-1]] = value


_UPDATERS: Final[dict[str, Callable[[Document, tuple[str, ...], Any], None]]] = {
    "$set": _set,
    "$setOnInsert": _set,
    "$unset": _unset,
    "$inc": lambda d, p, a: _arithmetic("$inc", d, p, a),
    "$mul": lambda d, p, a: _arithmetic("$mul", d, p, a),
    "$min": lambda d, p, a: _min_max("$min", d, p, a),
    "$max": lambda d, p, a: _min_max("$max", d, p, a),
    "$push": _push,
    "$addToSet": _add_to_set,
    "$pull": _pull,
    "$pop": _pop,
    "$rename": _rename,
}


def _order(parts: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


@functools.lru_cache(maxsize=1024)
def _update_plan(
    shape: tuple[tuple[str, tuple[Any, ...]], ...], is_insert: bool
) -> tuple[tuple[str, Any, tuple[str, ...], tuple[str, ...]], ...]:
    """The checked, ordered steps ``(op, field, path parts, $rename target)`` of an update.

    ``shape`` lists the update's operators with their field names (field/target pairs for
    ``$rename``): the plan depends on nothing else, so it is cached.
    """
    steps = []
    touched: list[tuple[str, ...]] = []
    for op, fields in shape:
        if op not in _UPDATERS:
            raise ServerError(f"unknown update operator: {op}")
        for item in fields:
            field, target = item if op == "$rename" else (item, "")
            parts = _update_path(op, field)
            touched.append(parts)
            target_parts = _update_path(op, target) if op == "$rename" else ()
            if target_parts:
                touched.append(target_parts)
            if op != "$setOnInsert" or is_insert:
                steps.append((op, field, parts, target_parts))
    _check_conflicts(touched, "Updating the path '{}' would create a conflict at '{}'")
    steps.sort(key=lambda step: _order(step[2]))
    return tuple(steps)


def _replace(document: Mapping[str, Any], replacement: Mapping[str, Any]) -> Document:
    out: Document = {}
    if "_id" in document:
        out["_id"] = copy_value(document["_id"])
        if "_id" in replacement and not identical(clone(replacement["_id"]), out["_id"]):
            raise ServerError("the (immutable) field '_id' was found to have been altered")
    for key, value in replacement.items():
        out[key] = _written("replacement", (key,), value)
    return out


def apply_update(
    document: Mapping[str, Any], update: Mapping[str, Any], *, is_insert: bool
) -> Document:
    """Return a copy of ``document`` with the MongoDB ``update`` applied (input untouched).

    An update without ``$`` keys replaces the document (keeping its ``_id``). ``$setOnInsert``
    applies only when ``is_insert``. Fields are processed in lexicographic path order, as in
    MongoDB 5.0+, so new fields are appended in that order.
    """
    if not is_document(update):
        raise ServerError(f"an update must be a document, got {type(update).__name__}")
    operators = [k for k in update if isinstance(k, str) and k.startswith("$")]
    if not operators:
        return _replace(document, update)
    if len(operators) != len(update):
        plain = next(k for k in update if k not in operators)
        raise ServerError(f"an update cannot mix $ operators with plain fields (found {plain!r})")
    shape: list[tuple[str, tuple[Any, ...]]] = []
    for op in operators:
        fields = update[op]
        if not is_document(fields):
            raise ServerError(f"{op} needs a document of fields, got {fields!r}")
        if op == "$rename":
            for target in fields.values():
                if not isinstance(target, str):
                    raise ServerError(f"$rename: the new name must be a string, got {target!r}")
            shape.append((op, tuple(fields.items())))
        else:
            shape.append((op, tuple(fields)))
    out: Document = copy_value(document)
    for op, field, parts, target in _update_plan(tuple(shape), is_insert):
        if len(parts) == 1 and (op == "$set" or op == "$setOnInsert"):  # _set, inlined
            value = update[op][field]
            kind = type(value)
            if (kind is str and value.isascii()) or kind is bool or value is None:
                out[field] = value
            elif kind in _SCALARS and kind is not str:  # numbers, ObjectIds
                problem = scalar_problem(value)
                if problem is not None:
                    raise InvalidParameterError(f"{op} {field} {problem}")
                out[field] = value
            else:
                out[field] = _written(op, parts, value)
        else:
            _UPDATERS[op](out, parts, target if op == "$rename" else update[op][field])
    if "_id" in document and ("_id" not in out or not identical(out["_id"], document["_id"])):
        raise ServerError("Performing an update on the path '_id' would modify the immutable field")
    return out


def upsert_seed(filter: Mapping[str, Any]) -> Document:
    """The document an upsert starts from: the filter's equality conditions, as fields.

    Top-level ``field: value`` and ``field: {"$eq": value}`` conditions count, also inside a
    top-level ``$and`` (or a one-clause ``$or``); dotted paths become embedded documents.
    """
    pairs: list[tuple[tuple[str, ...], Any]] = []

    def collect(query: Mapping[str, Any]) -> None:
        for key, condition in query.items():
            if key in ("$and", "$or") and isinstance(condition, (list, tuple)):
                if key == "$and" or len(condition) == 1:
                    for clause in condition:
                        if is_document(clause):
                            collect(clause)
            elif not isinstance(key, str) or key.startswith("$"):
                continue  # other operators ($or of several clauses, $nor, ...) seed nothing
            elif isinstance(condition, re.Pattern):
                pass  # a regex is not an equality
            elif not _is_operator_doc(condition):
                pairs.append((_split(key, "upsert"), condition))
            elif "$eq" in condition:
                pairs.append((_split(key, "upsert"), condition["$eq"]))

    collect(filter)
    _check_conflicts(
        [parts for parts, _ in pairs], "cannot infer the upsert document: '{}' and '{}' overlap"
    )
    seed: Document = {}
    for parts, value in pairs:
        target = seed
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = _written("upsert", parts, value)
    return seed
