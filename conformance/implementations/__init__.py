"""Implementations the conformance suite runs on the simulator, each exposing a ``factory``
(see :mod:`simulator.impl`): ``legacy`` is the original helper's algorithm, bugs included.
"""
