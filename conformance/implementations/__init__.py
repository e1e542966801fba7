"""Implementations the conformance suite ships: the reference, and the baselines it must catch.

* :mod:`~conformance.implementations.reference`: ``brh`` through a factory (its store a SQLite
  file in the harness's directory);
* :mod:`~conformance.implementations.legacy`: the original helper's algorithm, bugs included.
"""
