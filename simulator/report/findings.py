"""The findings of a trace, grouped by root cause and tied to the events that caused them.

A ``check`` line may name its causes (``causes``: each a trace ``kind`` and the fields to find
the event by, as :meth:`simulator.world.checkers.Checker.fail` writes them): the cause is the
latest kept event of that kind, at or before the check, whose fields all match (a device name
also matches its instances, ``phone`` matches ``phone#1``). A check that names none but is about
a key is tied to the events most likely behind it, marked as *related* rather than as causes:
the last write of the key, and the last callback for it on the check's device.

Findings are grouped by what they are about: the same context and key (the same lost update
seen on three devices is one problem), or, without a key, the same clause and checker.

A check whose causes are vault requests (a cost or liveness check naming the round trips
behind it) gets its group's :attr:`Group.operations`: how many of those requests each
operation made, ``query ×10, update_one ×2``, counted from the named causes (also those in
the elided part of a long trace, by the ``op`` the cause names).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.report.layout import Digest, Event

__all__ = ["Group", "causes_of", "group_findings", "operations_text"]


@dataclass
class Group:
    """Findings with one root cause: numbered together, drawn with one badge number."""

    number: int
    about: str
    """What the findings share: ``notes/x`` (context/key) or ``[COST-1] cost``."""
    checks: list[Event] = field(default_factory=list)
    causes: list[Event] = field(default_factory=list)
    """The kept events that caused the findings (or are related to them), in trace order."""
    related: bool = False
    """True when no check named its causes and ``causes`` holds the events around its key."""
    missing: int = 0
    """Causes named by a check but not among the kept events (elided, or never traced)."""
    operations: Counter[str] = field(default_factory=Counter)
    """The vault requests the checks name as causes, counted by operation (``op``; a named
    request whose operation is unknown counts as ``request``): empty when they name none."""


def _same_device(event_device: Any, wanted: Any) -> bool:
    if event_device == wanted:
        return True
    return isinstance(event_device, str) and event_device.split("#", 1)[0] == wanted


def _matches(event: Event, spec: dict[str, Any]) -> bool:
    if event.kind != spec.get("kind"):
        return False
    for name, wanted in spec.items():
        if name == "kind":
            continue
        value = event.get(name)
        if name == "device":
            if not _same_device(value, wanted):
                return False
        elif json.dumps(value, sort_keys=True) != json.dumps(wanted, sort_keys=True):
            return False
    return True


def _latest(events: list[Event], check: Event, spec: dict[str, Any]) -> Event | None:
    found = None
    for event in events:
        if event.t > check.t:
            break
        if _matches(event, spec):
            found = event
    return found


def causes_of(digest: Digest, check: Event) -> tuple[list[Event], bool, int]:
    """The kept events behind ``check``: (events, related only?, named causes not found)."""
    named = check.get("causes")
    if isinstance(named, list) and named:
        found: list[Event] = []
        missing = 0
        for spec in named:
            event = _latest(digest.events, check, spec) if isinstance(spec, dict) else None
            if event is None:
                missing += 1
            elif event not in found:
                found.append(event)
        return found, False, missing
    if check.get("key") is None:
        return [], True, 0
    where = {"context": check.get("context"), "key": check.get("key")}
    related = [_latest(digest.events, check, {"kind": "write", **where})]
    if check.get("device") is not None:
        spec = {"kind": "callback", "device": check.get("device"), **where}
        related.append(_latest(digest.events, check, spec))
    return [e for e in related if e is not None], True, 0


def _requests_named(digest: Digest, check: Event) -> list[tuple[Event | None, str]]:
    """The vault requests ``check`` names as causes: (the kept event or None, its operation)."""
    named = check.get("causes")
    if not isinstance(named, list):
        return []
    found: list[tuple[Event | None, str]] = []
    for spec in named:
        if not isinstance(spec, dict) or spec.get("kind") != "request":
            continue
        event = _latest(digest.events, check, spec)
        op = event.get("op") if event is not None else spec.get("op")
        found.append((event, op if isinstance(op, str) and op else "request"))
    return found


def operations_text(operations: Counter[str]) -> str:
    """``query ×10, update_one ×2`` (most first, then by name): what the requests did."""
    ordered = sorted(operations.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{op} ×{count}" for op, count in ordered)


def _about(check: Event) -> str:
    if check.get("key") is not None:
        return f"{check.get('context')}/{check.get('key')}"
    return f"[{check.get('clause')}] {check.get('checker')}"


def group_findings(digest: Digest) -> list[Group]:
    """The trace's checks grouped (see the module docstring), in order of first finding."""
    groups: dict[str, Group] = {}
    counted: dict[str, set[int]] = {}  # per group, the kept requests already counted
    for check in digest.checks:
        about = _about(check)
        group = groups.get(about)
        if group is None:
            group = groups[about] = Group(len(groups) + 1, about, related=True)
        group.checks.append(check)
        events, related, missing = causes_of(digest, check)
        group.related = group.related and related
        group.missing += missing
        group.causes.extend(e for e in events if e not in group.causes)
        seen = counted.setdefault(about, set())
        for event, op in _requests_named(digest, check):
            if event is not None and event.seq in seen:
                continue  # one request named by two findings of the group counts once
            if event is not None:
                seen.add(event.seq)
            group.operations[op] += 1
    for group in groups.values():
        group.causes.sort(key=lambda e: (e.t, e.seq))
    return list(groups.values())
