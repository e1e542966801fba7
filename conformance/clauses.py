"""Which SPEC clauses the suite judges, and by what: the clause table.

Each clause of SPEC.md is tagged ``testable`` or ``not testable`` (with the reason). For a
testable clause the suite must hold at least one test that names it (``@clause("SYNC-4", ...)``)
and the mutants (:mod:`conformance.implementations.mutants`) at least one mutant that breaks it;
``tests/conformance/test_clauses.py`` checks both, and ``tests/conformance/test_mutants.py``
that every mutant fails a test naming one of its clauses.

    python -m conformance.clauses [--spec SPEC.md]

prints the table as Markdown (the README's "Clause table" is this output, and a test keeps the
two equal).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

import conformance
from conformance.marks import MARK

__all__ = ["SpecClause", "clause_table", "mutants_of", "read_spec", "suite_tests_of"]

SPEC = Path(__file__).resolve().parent.parent / "SPEC.md"
"""SPEC.md of a source checkout (it is not installed with the package)."""

_HEAD = re.compile(r"^- \*\*([A-Z]+-\d+)\*\* \[(design|beyond), (testable|not testable)\]")
_ANY_HEAD = re.compile(r"^- \*\*([A-Z]+-\d+)\*\*")
_REASON = re.compile(r"\*Not testable:\* (.*)", re.S)


@dataclass(frozen=True)
class SpecClause:
    """One clause of SPEC.md."""

    id: str
    origin: str
    """``design`` or ``beyond``."""
    testable: bool
    reason: str
    """Why it is not testable ("" when it is)."""
    text: str
    """The clause's text, joined on one line."""


def read_spec(path: Path = SPEC) -> list[SpecClause]:
    """The clauses of the SPEC at ``path``, in order. Raises ``ValueError`` naming the clause
    when one lacks its tags, or is not testable without a reason."""
    clauses: list[SpecClause] = []
    block: list[str] = []

    def close() -> None:
        if not block:
            return
        head = _HEAD.match(block[0])
        clause_id = _ANY_HEAD.match(block[0])
        assert clause_id is not None
        if head is None:
            raise ValueError(
                f"{path}: clause {clause_id.group(1)} lacks its tags "
                "'[design|beyond, testable|not testable]'"
            )
        text = " ".join(line.strip() for line in block)
        reason = _REASON.search(text)
        testable = head.group(3) == "testable"
        if not testable and reason is None:
            raise ValueError(f"{path}: clause {head.group(1)} is not testable but says no reason")
        clauses.append(
            SpecClause(
                head.group(1),
                head.group(2),
                testable,
                "" if reason is None else reason.group(1).strip(),
                text[head.end() :].strip(),
            )
        )
        block.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        if _ANY_HEAD.match(line):
            close()
            block.append(line)
        elif block and line.startswith("  "):
            block.append(line)
        else:
            close()
    close()
    return clauses


def _suite_modules() -> Iterable[object]:
    for info in pkgutil.iter_modules(conformance.__path__):
        if info.name.startswith("test_"):
            with warnings.catch_warnings():
                # outside a run with the plugin, pytest does not know the brh_clause mark yet
                warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
                yield importlib.import_module(f"conformance.{info.name}")


def suite_tests_of() -> dict[str, list[str]]:
    """SPEC clause -> the names of the suite's tests that name it (in module order)."""
    table: dict[str, list[str]] = {}
    for module in _suite_modules():
        for name, test in vars(module).items():
            if not name.startswith("test_") or not callable(test):
                continue
            for mark in getattr(test, "pytestmark", []):
                if mark.name == MARK:
                    for clause_id in mark.args:
                        table.setdefault(clause_id, []).append(name)
    return table


def mutants_of() -> dict[str, list[str]]:
    """SPEC clause -> the names of the mutants that break it."""
    from conformance.implementations.mutants import MUTANTS

    table: dict[str, list[str]] = {}
    for mutant in MUTANTS.values():
        for clause_id in mutant.clauses:
            table.setdefault(clause_id, []).append(mutant.name)
    return table


def clause_table(spec: list[SpecClause]) -> str:
    """The Markdown table: each clause, whether it is testable, its tests and its mutants."""
    tests, mutants = suite_tests_of(), mutants_of()

    def names(values: list[str]) -> str:
        return "<br>".join(f"`{v}`" for v in values) or "—"

    rows = ["| clause | testable | suite tests | mutants |", "|---|---|---|---|"]
    for c in spec:
        if c.testable:
            rows.append(
                f"| {c.id} | yes | {names(tests.get(c.id, []))} | {names(mutants.get(c.id, []))} |"
            )
        else:
            rows.append(f"| {c.id} | no: {c.reason} | — | — |")
    judged = sum(c.testable for c in spec)
    rows.append("")
    rows.append(
        f"{len(spec)} clauses, {judged} testable; {len(_distinct(tests.values()))} suite tests, "
        f"{len(_distinct(mutants.values()))} mutants."
    )
    return "\n".join(rows)


def _distinct(groups: Iterable[list[str]]) -> set[str]:
    return {name for group in groups for name in group}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.clauses", description=__doc__)
    parser.add_argument("--spec", type=Path, default=SPEC, help="SPEC.md (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.spec.is_file():
        parser.error(f"--spec: {args.spec} is not a file")
    try:
        spec = read_spec(args.spec)
    except ValueError as error:
        parser.error(f"--spec: {error}")
    sys.stdout.write(clause_table(spec) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
