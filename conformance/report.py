"""The conformance report: per SPEC clause, what passed, failed, was expected to fail, skipped.

Written by ``--brh-report FILE.md`` (a Markdown table) or ``FILE.json`` (the same data for
machines). Each failure names its seed and the exact command that replays it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["OUTCOMES", "Outcome", "Report", "TestRecord"]

Outcome = Literal["pass", "fail", "xfail", "xpass", "skip", "not run"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "xfail", "xpass", "skip", "not run")
_TITLES = {
    "pass": "pass",
    "fail": "fail",
    "xfail": "expected failure",
    "xpass": "unexpected pass",
    "skip": "skipped",
    "not run": "not run",
}


@dataclass
class TestRecord:
    """One conformance test and what happened to it."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    name: str
    nodeid: str
    clauses: tuple[str, ...]
    level: str
    weakness: str | None = None
    outcome: Outcome = "not run"
    expected: str | None = None
    """Why this implementation is expected to fail it (from the expectations file)."""
    seed: int | None = None
    replay: str | None = None
    message: str = ""
    findings: list[str] = field(default_factory=list)
    """The simulator's findings that failed it, each ``[CLAUSE] checker at t=...: what``."""
    failed_clauses: tuple[str, ...] = ()
    """The clauses of those findings (empty: the test's own assertion failed)."""
    trace: str | None = None
    """The trace of its failing run (kept in the test's temporary directory)."""


@dataclass
class Report:
    implementation: str
    level: str
    seed: int
    records: list[TestRecord] = field(default_factory=list)

    def add(self, record: TestRecord) -> None:
        self.records.append(record)

    def totals(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for record in self.records:
            counts[record.outcome] += 1
        return counts

    def by_clause(self) -> dict[str, dict[str, int]]:
        """clause -> outcome -> count, clauses in SPEC order (section, then number)."""
        table: dict[str, dict[str, int]] = {}
        for record in self.records:
            for clause in record.clauses:
                row = table.setdefault(clause, {o: 0 for o in OUTCOMES})
                row[record.outcome] += 1
        return dict(sorted(table.items(), key=lambda kv: _clause_order(kv[0])))

    def summary_lines(self) -> list[str]:
        totals = self.totals()
        parts = [f"{n} {_TITLES[o]}" for o, n in totals.items() if n]
        lines = [
            f"{self.implementation} at level {self.level} (seed {self.seed}): {', '.join(parts)}"
        ]
        failing = sorted(
            {
                c
                for r in self.records
                if r.outcome == "fail"
                for c in (r.failed_clauses or r.clauses)
            },
            key=_clause_order,
        )
        if failing:
            lines.append(f"clauses failing: {', '.join(failing)}")
        weak = sorted(
            {r.weakness for r in self.records if r.weakness and r.outcome in ("fail", "xfail")}
        )
        if weak:
            lines.append(f"weaknesses shown: {', '.join(weak)}")
        for record in self.records:
            if record.outcome == "xpass":
                lines.append(f"unexpected pass: {record.name} (expected: {record.expected})")
        for record in self.records:
            if record.outcome == "fail" and record.replay:
                lines.append(f"replay {record.name}: {record.replay}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "level": self.level,
            "seed": self.seed,
            "totals": self.totals(),
            "clauses": self.by_clause(),
            "tests": [asdict(r) for r in self.records],
        }

    def to_markdown(self) -> str:
        totals = self.totals()
        out = [
            f"# Conformance report: {self.implementation}",
            "",
            f"Level `{self.level}`, seed {self.seed}. "
            + ", ".join(f"{n} {_TITLES[o]}" for o, n in totals.items() if n)
            + ".",
            "",
            "| clause | tests | pass | fail | expected failure | unexpected pass | skipped |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for clause, row in self.by_clause().items():
            tests = sum(row.values())
            out.append(
                f"| {clause} | {tests} | {row['pass']} | {row['fail']} | {row['xfail']} "
                f"| {row['xpass']} | {row['skip'] + row['not run']} |"
            )
        sections: list[tuple[str, list[TestRecord]]] = [
            ("Failures", [r for r in self.records if r.outcome == "fail"]),
            ("Expected failures", [r for r in self.records if r.outcome == "xfail"]),
            ("Unexpected passes", [r for r in self.records if r.outcome == "xpass"]),
            ("Skipped", [r for r in self.records if r.outcome == "skip"]),
        ]
        for title, records in sections:
            if not records:
                continue
            out += ["", f"## {title}", ""]
            for r in records:
                weakness = f", shows {r.weakness}" if r.weakness else ""
                out.append(f"- **{r.name}** ({', '.join(r.clauses)}{weakness})")
                if r.expected:
                    out.append(f"  - expected to fail: {r.expected}")
                if r.message:
                    out.append(f"  - {r.message}")
                out += [f"  - finding: {finding}" for finding in r.findings]
                if r.trace:
                    out.append(f"  - trace: `{r.trace}`")
                if r.outcome in ("fail", "xfail") and r.replay:
                    out.append(f"  - seed {r.seed}; replay: `{r.replay}`")
        return "\n".join(out) + "\n"

    def write(self, path: Path) -> None:
        if path.suffix == ".json":
            text = json.dumps(self.to_json(), indent=2) + "\n"
        else:
            text = self.to_markdown()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _clause_order(clause: str) -> tuple[int, str, int]:
    sections = ["API", "DATA", "CB", "SYNC", "RETRY", "OFF", "ORD", "DEL", "RES", "COST", "ERR"]
    prefix, _, number = clause.partition("-")
    rank = sections.index(prefix) if prefix in sections else len(sections)
    return rank, prefix, int(number) if number.isdigit() else 0
