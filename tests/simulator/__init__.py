"""Tests of the simulator: the world, its link and checkers, scenarios, reports, CLI and loop."""
