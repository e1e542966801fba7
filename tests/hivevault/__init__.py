"""Tests of hivevault: the fake vault and its MongoDB semantics."""
