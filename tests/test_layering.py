"""Which of the project's packages may import which (issue 14, item 3: one home for Hive
semantics).

``hivevault`` holds the Hive vault's semantics that the simulator and the development vault
share; both import it and neither imports the other. Each module's source is read and every
``import`` in it (module level or inside a function) is checked, so a lazy import is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = frozenset({"brh", "hivevault", "simulator", "vaultd", "conformance"})

ALLOWED: dict[str, frozenset[str]] = {
    "brh": frozenset({"brh"}),
    "hivevault": frozenset({"hivevault", "brh"}),
    "vaultd": frozenset({"vaultd", "hivevault", "brh"}),
}
"""For each package: the first-party packages its modules may import."""


def imported_packages(path: Path, package: str) -> dict[str, int]:
    """The first-party top-level packages ``path`` imports, each with its first line."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package if node.level else (node.module or "")]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                found.setdefault(top, node.lineno)
    return found


def modules(package: str) -> list[Path]:
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths, f"no modules found in {package}/"
    return paths


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_they_are_allowed(package: str) -> None:
    """Issue 14, item 3: vaultd imports only brh and hivevault (never the simulator);
    hivevault imports only brh (never vaultd nor the simulator); brh imports none of the
    others."""
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for path in modules(package)
        for imported, line in imported_packages(path, package).items()
        if imported not in ALLOWED[package]
    ]
    assert wrong == []


def test_the_simulator_and_the_development_vault_share_hivevault() -> None:
    """Issue 14, item 3: the fake vault lives in hivevault, and both the simulator and vaultd
    import it from there."""
    for package in ("simulator", "vaultd"):
        users = [
            path for path in modules(package) if "hivevault" in imported_packages(path, package)
        ]
        assert users, f"{package} does not import hivevault"


def test_the_import_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself: plain, from, relative and function-level imports are all seen."""
    module = tmp_path / "sample.py"
    module.write_text(
        "import os\n"
        "import simulator.world as w\n"
        "from . import sibling\n"
        "def f():\n"
        "    from vaultd.app import create_app\n"
    )
    assert imported_packages(module, "hivevault") == {
        "simulator": 2,
        "hivevault": 3,
        "vaultd": 5,
    }


def test_the_old_import_path_of_the_fake_vault_still_works() -> None:
    """Issue 14, item 3: code written as the earlier README showed (``from simulator.vault
    import FakeVault``) gets the one fake vault of hivevault, not a copy."""
    import hivevault
    import simulator.vault

    for name in simulator.vault.__all__:
        assert getattr(simulator.vault, name) is getattr(hivevault, name)
    assert set(simulator.vault.__all__) == set(hivevault.__all__)


def test_hivevault_modules_stay_small() -> None:
    """Issue 14, item 4: the fake vault is split into modules named for what they hold, each
    under 700 lines (it was one module of 1,216)."""
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules("hivevault")
        if (lines := len(path.read_text().splitlines())) >= 700
    }
    assert long == {}
