"""Expected failures of an implementation, kept outside the tests (``--brh-expectations``).

A TOML file with one table, ``expected-failures``: each key names a test (its function name,
or ``module.py::name``), a SPEC clause (``"SYNC-4"``: every test guarding it) or a weakness
(``"W1"``: every test demonstrating it); each value says why::

    implementation = "legacy"          # optional, for the report

    [expected-failures]
    W1 = "the watermark compares edit times, not upload times"
    "test_conflicts.py::test_ties_converge" = "strict comparisons (W8)"

An expected failure still runs: if it fails it is reported as ``xfail``; if it passes it is
reported as an unexpected pass (``xpass``), never hidden. Keys that match no collected test are
listed at the end of the run (a stale expectation).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.report import TestRecord

__all__ = ["Expectations", "load_expectations"]


@dataclass(frozen=True)
class Expectations:
    """Expected failures: key (test, clause or weakness id) -> reason."""

    failures: Mapping[str, str] = field(default_factory=dict)
    implementation: str | None = None

    def keys_of(self, record: TestRecord) -> list[str]:
        """The keys that would name ``record``, most specific first."""
        module = record.nodeid.split("::")[0].rsplit("/", 1)[-1]
        keys = [f"{module}::{record.name}", record.name, *record.clauses]
        if record.weakness:
            keys.append(record.weakness)
        return keys

    def reason_for(self, record: TestRecord) -> str | None:
        for key in self.keys_of(record):
            if key in self.failures:
                return f"{key}: {self.failures[key]}"
        return None

    def unused(self, records: Iterable[TestRecord]) -> set[str]:
        used = {key for record in records for key in self.keys_of(record)}
        return set(self.failures) - used


SHIPPED = Path(__file__).with_name("implementations")
"""Where the expectation files shipped with the suite live (``legacy.toml``)."""


def find_expectations(name: str) -> Path:
    """The expectation file ``name`` names: a path, or the name of a file shipped with the suite
    (``legacy`` is ``conformance/implementations/legacy.toml``), from any directory."""
    path = Path(name)
    if path.exists() or path.suffix or len(path.parts) != 1:
        return path
    shipped = SHIPPED / f"{name}.toml"
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.toml")))
    raise FileNotFoundError(
        f"{name!r}: no such file, and no shipped expectations of that name ({known})"
    )


def load_expectations(path: Path) -> Expectations:
    """Read and check an expectations file; a mistake raises ValueError naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"implementation", "expected-failures"}
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; "
            "expected 'implementation' and a table 'expected-failures'"
        )
    failures = data.get("expected-failures", {})
    if not isinstance(failures, dict):
        raise ValueError(f"{path}: 'expected-failures' must be a table of id = \"reason\"")
    for key, reason in failures.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(
                f"{path}: expected-failures.{key}: the reason must be a non-empty string"
            )
    implementation = data.get("implementation")
    if implementation is not None and not isinstance(implementation, str):
        raise ValueError(f"{path}: 'implementation' must be a string")
    return Expectations(dict(failures), implementation)
