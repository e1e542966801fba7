"""Deterministic multi-device simulator for brh."""
