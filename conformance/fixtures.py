"""The conformance suite's fixture, registered by :mod:`conformance.plugin` only while the suite
runs (the plugin adds nothing to other projects' test runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness import Sim
from conformance.plugin import make_sim

__all__ = ["brh_sim"]


@pytest.fixture
def brh_sim(request: pytest.FixtureRequest, tmp_path: Path) -> Sim:
    """A :class:`conformance.harness.Sim` on the implementation under test: its seed, target,
    vault and search effort come from the ``--brh-*`` options."""
    return make_sim(request, tmp_path)
