"""Tests of the conformance suite: its plugin, the process protocol, the baselines and mutants."""
