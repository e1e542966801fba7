"""How a conformance test says what it checks: ``@clause("SYNC-4", level="robust")``.

* ``ids``: the SPEC.md clauses the test guards (at least one);
* ``level``: ``core`` (what the original design document promises: a faithful implementation of
  it should pass) or ``robust`` (what the original lacks: skew, late uploads, concurrent
  creators, lost answers, crashes, poison entries, ...);
* ``weakness``: the original helper's weakness it demonstrates (``W1``..``W14``), if any.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

__all__ = ["LEVELS", "MARK", "PROFILES", "clause"]

LEVELS = ("core", "robust")
PROFILES = ("fast", "ci", "deep")
"""How hard property-based tests search (``--brh-profile``; see :mod:`conformance.machine`)."""
MARK = "brh_clause"

F = TypeVar("F", bound=Callable[..., Any])

_CLAUSE = re.compile(r"^[A-Z]+-[0-9]+$")
_WEAKNESS = re.compile(r"^W[0-9]+$")


def clause(*ids: str, level: str, weakness: str | None = None) -> Callable[[F], F]:
    """Mark a test with the clauses it guards, its level and the weakness it shows."""
    if not ids or not all(_CLAUSE.match(i) for i in ids):
        raise ValueError(f"clause: expected SPEC clause ids like 'SYNC-4', got {ids!r}")
    if level not in LEVELS:
        raise ValueError(f"clause: level must be one of {LEVELS}, got {level!r}")
    if weakness is not None and not _WEAKNESS.match(weakness):
        raise ValueError(f"clause: weakness must look like 'W1', got {weakness!r}")
    mark = getattr(pytest.mark, MARK)(*ids, level=level, weakness=weakness)

    def decorate(test: F) -> F:
        return mark(test)  # type: ignore[no-any-return]

    return decorate
