"""Proof that the conformance suite bites: every mutant of the reference fails a test.

Each mutant (:mod:`conformance.implementations.mutants`) is the reference with one realistic
bug. The suite runs in process against each one with ``-x`` (the first failure is enough) and
without the hypothesis plugin (which would be imported again for every run). That the reference
itself fails nothing is checked in ``test_conformance_plugin.py``.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from brh.core import RULES, Rules
from brh.options import SyncOptions
from brh.store import LocalStore
from conformance.implementations import mutants
from conformance.implementations.mutants import MUTANTS
from simulator.impl import Helper, Installation, ReferenceHelper, load_factory, reference_factory
from simulator.timeloop import run
from simulator.world import START
from simulator.world.link import Link
from simulator.world.server import VaultServer


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path | None]:
    """Where the inner runs keep their files: in memory (tmpfs) when the system has one, since
    the stores are SQLite files the reference writes with fsync, and a simulated crash needs no
    real durability; None: pytester's own directory."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="brh-mutants-", dir=shm) as path:
        yield Path(path)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_fails_a_conformance_test(
    pytester: pytest.Pytester, scratch: Path | None, name: str
) -> None:
    """The conformance suite, run on a mutant, fails at least one of the tests that name a
    clause the mutant breaks (SPEC: every testable clause has a test and a caught mutant), by a
    wrong behaviour (no test errors, no exception inside a sync pass)."""
    mutant = MUTANTS[name]
    options = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-x"]
    if scratch is not None:
        options.append(f"--basetemp={scratch / name}")
    result = pytester.runpytest_inprocess(
        *options,
        "--pyargs",
        "conformance",
        "--brh-impl",
        mutant.spec,
        "--brh-clause",
        ",".join(mutant.clauses),
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, (
        f"mutant {name} ({mutant.bug}) passed every conformance test:\n{result.stdout.str()}"
    )
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    # Caught for its bug, not because the mutant's own code broke (the reference logs any
    # exception inside a pass, and the failing test's report shows the captured log).
    assert "sync pass failed unexpectedly" not in result.stdout.str(), result.stdout.str()


def test_the_registry_names_at_least_twelve_loadable_mutants() -> None:
    """Each registered mutant has a bug description and loads by its ``--brh-impl`` name."""
    assert len(MUTANTS) >= 12
    for name, mutant in MUTANTS.items():
        assert mutant.name == name and mutant.bug.strip()
        assert mutant.spec == f"conformance.implementations.mutants:{name}"
        assert load_factory(mutant.spec) is mutant.factory is getattr(mutants, name)


def test_a_mutant_changes_one_seam_of_its_own_helper(tmp_path: Path) -> None:
    """Mutants go through the helper's documented seams, not patches: each one runs the
    reference's own classes everywhere but in one place, either one entry of its Rules, the
    class of its store or one constructor option; a reference helper built after them all runs
    the reference's rules."""

    def seams(helper: ReferenceHelper) -> tuple[Rules, type, SyncOptions]:
        return helper.brh.rules, type(helper.brh.store), helper.brh.options

    def classes(helper: ReferenceHelper) -> tuple[type, ...]:
        brh = helper.brh
        return tuple(type(p) for p in (brh, brh._engine, brh._scheduler, brh._clock))

    async def main() -> None:
        vault = Link(VaultServer(random.Random(0)))
        built: list[ReferenceHelper] = []
        for name, mutant in MUTANTS.items():
            helper = mutant.factory(
                Installation(vault, tmp_path / name, lambda: START, name, random.Random(name))
            )
            assert isinstance(helper, Helper) and isinstance(helper, ReferenceHelper)
            built.append(helper)
        reference = reference_factory(
            Installation(vault, tmp_path / "ref", lambda: START, "ref", random.Random(0))
        )
        defaults = reference.brh.options
        assert seams(reference) == (RULES, LocalStore, defaults)
        for name, helper in zip(MUTANTS, built, strict=True):
            assert classes(helper) == classes(reference), name
            rules, store, options = seams(helper)
            changed = [
                f.name for f in fields(Rules) if getattr(rules, f.name) != getattr(RULES, f.name)
            ]
            changed += [
                f.name
                for f in fields(SyncOptions)
                if getattr(options, f.name) != getattr(defaults, f.name)
            ]
            assert len(changed) + (store is not LocalStore) == 1, (name, changed, store)
            await helper.close()
        await reference.close()

    run(main(), start=START)
