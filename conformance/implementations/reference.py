"""The reference helper as a conformance factory: ``conformance.implementations.reference:factory``.

``pytest --pyargs conformance`` runs the reference in process by default (with the simulator's
own checkers reading its internals as well); naming this factory runs it exactly as any other
Python implementation is run, its store a SQLite file in the harness's store directory, with
the helper options the world was asked for (``Installation.options``: a custom retry policy
behaves as it does in process).
"""

from __future__ import annotations

from simulator.impl import Installation, ReferenceHelper, reference_factory

__all__ = ["factory"]


def factory(installation: Installation) -> ReferenceHelper:
    """A :class:`brh.BackupRestoreHelper` for ``installation`` (see :mod:`simulator.impl`),
    configured by ``installation.options``."""
    return reference_factory(installation)
