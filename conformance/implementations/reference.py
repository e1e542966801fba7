"""The reference helper as a conformance factory: ``conformance.implementations.reference:factory``.

``pytest --pyargs conformance`` runs the reference in process by default (with the simulator's
own checkers reading its internals as well); naming this factory runs it exactly as any other
Python implementation is run, its store a SQLite file in the harness's store directory, with
the helper options the world was asked for (``Installation.options``: a custom retry policy
behaves as it does in process).
"""

from __future__ import annotations

from simulator.impl import Installation, ReferenceHelper, reference_factory

__all__ = ["factory", "frequent_full_passes"]


def factory(installation: Installation) -> ReferenceHelper:
    """A :class:`brh.BackupRestoreHelper` for ``installation`` (see :mod:`simulator.impl`),
    configured by ``installation.options``."""
    return reference_factory(installation)


FREQUENT_FULL_PASSES = 120.0
"""Seconds of device time between full passes in :func:`frequent_full_passes` (the default is
a day, which a state-machine run of at most a few simulated hours never reaches)."""


def frequent_full_passes(installation: Installation) -> ReferenceHelper:
    """The reference with a full pass every :data:`FREQUENT_FULL_PASSES` seconds (SYNC-10,
    SYNC-11), so that a deep search exercises the full pass of projections and the cursor it
    leaves: ``benchmarks/machine_search.py --impl
    conformance.implementations.reference:frequent_full_passes``."""
    return reference_factory(installation, full_sync_interval=FREQUENT_FULL_PASSES)
