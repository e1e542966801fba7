"""What every test of this repository shares: a Hypothesis search that depends on its seed and
the code under test, not on the literals of whichever project modules happen to be loaded; and
inner pytest runs configured as a user's project would be."""

from __future__ import annotations

from typing import Any

import pytest


def _ignore_project_literals() -> None:
    """Hypothesis (since 6.131) mixes the string and number literals of the project's own
    loaded modules into the data it generates. A seeded search then finds a different first
    failure whenever any loaded module gains or loses a literal, an unrelated help text
    included (the conformance state machine's tests found ORD-2 instead of CB-5, or nothing,
    after ``brh-sim explore`` gained options). For this repository's own test run the pool of
    project literals is kept empty; Hypothesis's built-in constants still apply. Where this
    Hypothesis has no such pool, nothing is changed."""
    try:
        from hypothesis.internal.conjecture import providers as module
    except ImportError:  # pragma: no cover - a Hypothesis laid out otherwise
        return
    providers: Any = module  # internals, not typed for use from outside
    needed = ("Constants", "SortedSet", "float_to_int", "_get_local_constants")
    if not all(hasattr(providers, name) for name in needed):
        return
    empty = providers.Constants(
        integers=providers.SortedSet(),
        floats=providers.SortedSet(key=providers.float_to_int),
        bytes=providers.SortedSet(),
        strings=providers.SortedSet(),
    )
    setattr(providers, "_get_local_constants", lambda: empty)  # noqa: B010


_ignore_project_literals()


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's own ``pytester``, its runs configured as a user's project would be: with
    pytest-asyncio's fixture loop scope set (unset, every inner run warns about it)."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester
