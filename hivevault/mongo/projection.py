"""Projections: inclusion or exclusion of fields, applied as a deep copy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from brh.vault import ServerError
from hivevault.mongo.paths import _check_conflicts, _update_path
from hivevault.mongo.values import Document, copy_value, is_document


def _include(doc: Mapping[str, Any], tree: Mapping[str, Any]) -> Document:
    out: Document = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is True:
            out[key] = copy_value(value)
        elif sub is not None and type(value) is dict:
            out[key] = _include(value, sub)
        elif sub is not None and type(value) is list:
            out[key] = [_include(e, sub) for e in value if type(e) is dict]
    return out


def _exclude(doc: Mapping[str, Any], tree: Mapping[str, Any]) -> Document:
    out: Document = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is True:
            continue
        if sub is not None and type(value) is dict:
            out[key] = _exclude(value, sub)
        elif sub is not None and type(value) is list:
            out[key] = [_exclude(e, sub) if type(e) is dict else copy_value(e) for e in value]
        else:
            out[key] = copy_value(value)
    return out


def compile_projection(projection: Mapping[str, Any] | None) -> Callable[[Any], Document]:
    """Validate an inclusion or exclusion projection once; return a function applying it."""
    if not projection:
        return copy_value
    if not is_document(projection):
        raise ServerError(f"a projection must be a document, got {type(projection).__name__}")
    include_id = True
    chosen: dict[bool, list[tuple[str, ...]]] = {True: [], False: []}
    for path, flag in projection.items():
        if type(flag) not in (bool, int, float):
            raise ServerError(f"unsupported projection value for {path!r}: {flag!r}")
        parts = _update_path("projection", path)
        if parts == ("_id",):
            include_id = bool(flag)
        else:
            chosen[bool(flag)].append(parts)
    if chosen[True] and chosen[False]:
        field = ".".join(chosen[False][0])
        raise ServerError(f"Cannot do exclusion on field {field} in inclusion projection")
    inclusion = bool(chosen[True]) or (not chosen[False] and include_id)
    paths = chosen[inclusion] + ([("_id",)] if include_id == inclusion else [])
    _check_conflicts(paths, "projection: path collision at '{}' (and '{}')")
    tree: dict[str, Any] = {}
    for parts in paths:
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = True
    if inclusion:
        return lambda doc: _include(doc, tree)
    return lambda doc: _exclude(doc, tree)


def project(document: Mapping[str, Any], projection: Mapping[str, Any] | None) -> Document:
    """A projected deep copy of ``document`` (``_id`` is kept unless ``"_id": 0``)."""
    return compile_projection(projection)(document)
