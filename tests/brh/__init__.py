"""Tests of brh, the reference helper: its API, its store, its passes, its Hive client."""
