"""Shared fixtures of the project's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's own ``pytester``, its runs configured as a user's project would be: with
    pytest-asyncio's fixture loop scope set (unset, every inner run warns about it)."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester
