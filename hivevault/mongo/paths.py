"""Dotted paths: splitting and checking them (also for conflicts), reading every value they
reach, and finding or making the container that holds a path's last field (for updates)."""

from __future__ import annotations

from typing import Any, Final

from brh.vault import InvalidParameterError, ServerError
from hivevault.mongo.values import MAX_NESTING, MISSING, Document, has_lone_surrogate

MAX_PATH_PARTS: Final = MAX_NESTING
"""Components a dotted path may have: a longer one names a field below the 100 levels a stored
document has (MongoDB's nesting limit), so it could never match or be written."""


def _split(path: Any, what: str) -> tuple[str, ...]:
    if type(path) is not str and not isinstance(path, str):
        raise ServerError(f"{what}: field names must be strings, got {path!r}")
    parts = tuple(path.split(".")) if "." in path else (path,)
    if len(parts) > MAX_PATH_PARTS:
        raise InvalidParameterError(
            f"{what}: the path {path[:60]!r}... has {len(parts)} parts; a vault nests documents "
            f"at most {MAX_NESTING} levels deep, so a path has at most {MAX_PATH_PARTS}"
        )
    if not all(parts):
        raise ServerError(f"{what}: empty field name in path {path!r}")
    if not path.isascii() or "\x00" in path:
        check_field_name(path, what)
    return parts


def check_field_name(name: str, what: str) -> None:
    """Refuse a field name or path with NUL or a lone surrogate (no client can send it)."""
    if "\x00" in name:
        raise InvalidParameterError(
            f"{what}: the field name {name!r} holds NUL, which BSON field names cannot hold"
        )
    if has_lone_surrogate(name):
        raise InvalidParameterError(
            f"{what}: the field name {name!r} holds a lone surrogate, which UTF-8 (and so BSON) "
            "cannot encode"
        )


def _update_path(op: str, path: Any) -> tuple[str, ...]:
    parts = _split(path, op)
    if path.startswith("$") or ".$" in path:
        raise ServerError(f"{op}: positional and $-prefixed paths are not supported: {path!r}")
    return parts


def _check_conflicts(paths: list[tuple[str, ...]], message: str) -> None:
    """Raise if a path repeats or is a prefix of another (``message`` gets both paths)."""
    whole: set[tuple[str, ...]] = set()
    below: dict[tuple[str, ...], tuple[str, ...]] = {}  # proper prefix -> a path extending it
    for parts in paths:
        clash = below.get(parts, parts if parts in whole else None)
        for i in range(1, len(parts)):
            if parts[:i] in whole:
                clash = parts[:i]
            below.setdefault(parts[:i], parts)
        if clash is not None:
            shorter, longer = (clash, parts) if len(clash) <= len(parts) else (parts, clash)
            raise ServerError(message.format(".".join(longer), ".".join(shorter)))
        whole.add(parts)


def _lookup(value: Any, parts: tuple[str, ...], i: int, out: list[Any]) -> None:
    """Append to ``out`` every value reached by ``parts[i:]`` (MISSING where nothing is)."""
    if i == len(parts):
        out.append(value)
    elif type(value) is dict:
        item = value.get(parts[i], MISSING)
        if item is MISSING:
            out.append(MISSING)
        else:
            _lookup(item, parts, i + 1, out)
    elif type(value) is list:
        if parts[i].isdigit():
            index = int(parts[i])
            if index < len(value):
                _lookup(value[index], parts, i + 1, out)
            else:
                out.append(MISSING)
            return
        before = len(out)
        for element in value:
            if type(element) is dict:
                _lookup(element, parts, i, out)
        if len(out) == before:
            out.append(MISSING)
    else:
        out.append(MISSING)


def _parent(doc: Document, parts: tuple[str, ...], create: bool) -> Any:
    """The dict or list holding ``parts[-1]``; embedded documents are made if ``create``."""
    current: Any = doc
    for i, part in enumerate(parts[:-1]):
        if type(current) is dict:
            item = current.get(part, MISSING)
            if item is MISSING:
                if not create:
                    return None
                item = current[part] = {}
        elif part.isdigit() and int(part) < len(current):
            item = current[int(part)]
        elif not create:
            return None
        elif part.isdigit():
            _put(current, part, {}, parts)
            item = current[int(part)]
        else:
            raise ServerError(f"Cannot create field {part!r} in array {'.'.join(parts[:i])!r}")
        if type(item) is not dict and type(item) is not list:
            if not create:
                return None
            raise ServerError(
                f"Cannot create field {parts[i + 1]!r} in element {{{part}: {item!r}}}"
            )
        current = item
    return current


def _get(container: Any, key: str) -> Any:
    if type(container) is dict:
        return container.get(key, MISSING)
    if key.isdigit() and int(key) < len(container):
        return container[int(key)]
    return MISSING


def _put(container: Any, key: str, value: Any, parts: tuple[str, ...]) -> None:
    if type(container) is dict:
        container[key] = value
    elif key.isdigit():
        index = int(key)
        container.extend([None] * (index + 1 - len(container)))
        container[index] = value
    else:
        raise ServerError(f"Cannot create field {key!r} in array {'.'.join(parts[:-1])!r}")
