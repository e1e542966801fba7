"""Every testable SPEC clause is judged: a suite test names it and a mutant breaks it.

SPEC.md tags each clause ``testable`` or ``not testable`` (with the reason). These tests fail
when a testable clause has no conformance test naming it, or no mutant breaking it (that each
mutant is caught by a test naming one of its clauses is ``test_mutants.py``'s check), and when
the README's clause table is not what ``python -m conformance.clauses`` prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.clauses import (
    SPEC,
    SpecClause,
    clause_table,
    mutants_of,
    read_spec,
    suite_tests_of,
)
from conformance.implementations.mutants import MUTANTS

README = Path(__file__).resolve().parents[2] / "README.md"
_TABLE = re.compile(r"<!-- clause-table -->\n(.*?)\n<!-- /clause-table -->", re.S)


@pytest.fixture(scope="module")
def spec() -> list[SpecClause]:
    return read_spec(SPEC)


def test_every_clause_says_whether_it_is_testable_and_why_not(spec: list[SpecClause]) -> None:
    """Item 1 of the detection-power issue: each clause is tagged, untestable ones say why."""
    text = SPEC.read_text(encoding="utf-8")
    assert len(spec) == len(re.findall(r"^- \*\*[A-Z]+-\d+\*\*", text, re.M)) >= 70
    assert len({c.id for c in spec}) == len(spec)
    assert all(c.reason for c in spec if not c.testable)
    assert sum(c.testable for c in spec) >= 50


def test_every_testable_clause_has_a_suite_test(spec: list[SpecClause]) -> None:
    """A testable clause no conformance test names is a clause nobody judges."""
    tests = suite_tests_of()
    missing = [c.id for c in spec if c.testable and not tests.get(c.id)]
    assert missing == [], f"testable clauses without a suite test: {missing}"


def test_every_testable_clause_has_a_mutant(spec: list[SpecClause]) -> None:
    """A testable clause no mutant breaks has a test nobody has seen fail."""
    mutants = mutants_of()
    missing = [c.id for c in spec if c.testable and not mutants.get(c.id)]
    assert missing == [], f"testable clauses without a mutant: {missing}"


def test_tests_and_mutants_name_only_testable_clauses(spec: list[SpecClause]) -> None:
    """A test or mutant naming a clause the SPEC does not have, or one it calls untestable,
    is a typo or a SPEC out of date."""
    testable = {c.id for c in spec if c.testable}
    for clause_id, tests in suite_tests_of().items():
        assert clause_id in testable, (clause_id, tests)
    for mutant in MUTANTS.values():
        assert mutant.clauses and set(mutant.clauses) <= testable, (mutant.name, mutant.clauses)


def test_the_readme_clause_table_is_the_generated_one(spec: list[SpecClause]) -> None:
    """README.md's clause table is ``python -m conformance.clauses``' output, unedited."""
    found = _TABLE.search(README.read_text(encoding="utf-8"))
    assert found is not None, "README.md lacks the <!-- clause-table --> block"
    assert found.group(1) == clause_table(spec), (
        "README's clause table is stale: run `python -m conformance.clauses` and paste it"
    )


def test_a_clause_without_its_tags_is_an_error(tmp_path: Path) -> None:
    """The parser refuses a clause that does not say whether it is testable, naming it."""
    bad = tmp_path / "SPEC.md"
    bad.write_text("- **API-1** [design] A helper.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="API-1"):
        read_spec(bad)
    bad.write_text("- **API-1** [design, not testable] A helper.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="API-1 is not testable but says no reason"):
        read_spec(bad)
