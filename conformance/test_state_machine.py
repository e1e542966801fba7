"""Random workloads and faults, checked after every step (level ``robust``): a Hypothesis
state machine over the simulator (:mod:`conformance.machine`), on the implementation under
test. ``--brh-profile`` says how hard it searches; ``--brh-seed`` seeds it."""

from __future__ import annotations

import pytest

from conformance.harness import Sim
from conformance.marks import clause

pytest.importorskip("hypothesis", reason="the state machine needs Hypothesis")


@clause("SYNC-1", "CB-5", "CB-6", "RETRY-1", "ORD-2", "API-2", level="robust")
def test_random_work_and_faults_keep_every_invariant_and_converge(
    brh_sim: Sim, request: pytest.FixtureRequest
) -> None:
    """SYNC-1, ORD-2: after any mix of edits, syncs, partitions, disconnections, lost answers,
    clock jumps, crashes, restarts, reinstalls, refusing or flaky apps, vault outages and server
    errors, the settled devices all show the same entries as their local copies. After every
    step: API-2 (no device or vault holds data no app wrote) and CB-5 (a completed pass leaves
    the app model equal to the local copy). At the end: CB-6 (a refused callback ends the pass:
    one callback, sync reports it incomplete) and RETRY-1 (with only time passing, the refused
    change arrives). A failure prints a scenario file and its ``brh-sim run`` command."""
    from hypothesis import Phase

    from conformance.machine import run_machine

    if request.node.get_closest_marker("xfail") is not None:
        # an expected failure: its first failing example is enough, shrinking would take minutes
        run_machine(brh_sim, phases=[Phase.explicit, Phase.reuse, Phase.generate])
    else:
        run_machine(brh_sim)
