"""Conformance suite for backup/sync helpers.

Reserved package: the suite itself (pytest plugin, clause-grouped tests, out-of-process
protocol) is built on top of ``brh`` and ``simulator`` and is not implemented yet.
"""
