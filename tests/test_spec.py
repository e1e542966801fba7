"""The SPEC and the tests stay in step."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLAUSE = re.compile(r"\*\*([A-Z]+-\d+)\*\* \[(design|beyond)[,\]]")


def spec_clauses() -> list[tuple[str, str]]:
    return CLAUSE.findall((ROOT / "SPEC.md").read_text())


def named_in_test_docstrings() -> str:
    """Every docstring of every test function under tests/, joined."""
    texts = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                texts.append(ast.get_docstring(node) or "")
    return "\n".join(texts)


def test_every_clause_is_tagged_and_covered_by_a_named_test() -> None:
    """Each SPEC clause says whether the design document promises it, and a test names it."""
    clauses = spec_clauses()
    ids = [clause for clause, _tag in clauses]
    assert len(ids) > 50 and len(ids) == len(set(ids)), "clause ids must be unique"
    docs = named_in_test_docstrings()
    missing = [c for c in ids if not re.search(rf"\b{re.escape(c)}\b", docs)]
    assert missing == [], f"clauses no test names: {missing}"


def test_tests_name_only_existing_clauses() -> None:
    """A test that names a clause names one the SPEC has."""
    ids = {clause for clause, _tag in spec_clauses()}
    named = set(re.findall(r"\b([A-Z]{2,6}-\d+)\b", named_in_test_docstrings()))
    assert named - ids == set()
