"""Conformance suite for backup/sync helpers: the same tests against any implementation.

Run it with pytest (the plugin is registered through the ``pytest11`` entry point)::

    pytest --pyargs conformance                                  # the reference
    pytest --pyargs conformance --brh-impl package.module:factory  # any Python implementation
    pytest --pyargs conformance --brh-cmd "node my-helper.js"      # any language (PROTOCOL.md)

Each test names the SPEC.md clauses it guards and its level (``core``: what the original
design promises; ``robust``: what the original lacks) and runs on simulated devices sharing a
fake vault on virtual time (:mod:`conformance.harness`). An implementation is a *factory*
receiving an :class:`Installation` and returning a :class:`Helper` (see :mod:`simulator.impl`).
"""

from simulator.impl import Factory, Helper, Installation

__all__ = ["Factory", "Helper", "Installation"]
