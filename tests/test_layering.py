"""The layout: which package (and which of the simulator's folders) may import which, the import
paths the README documents, and modules small enough to read (issue 14, items 3 and 4).

Each module's source is read and every ``import`` in it (module level, inside a function or
under ``TYPE_CHECKING``) is checked, so a lazy import is caught too. The rules are the README's
architecture diagram: the README must show them as :func:`rule_lines` writes them.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = frozenset({"brh", "hivevault", "simulator", "vaultd", "conformance"})

ALLOWED: dict[str, tuple[str, ...]] = {
    "conformance": ("simulator", "hivevault", "brh"),
    "simulator": ("hivevault", "brh"),
    "vaultd": ("hivevault", "brh"),
    "hivevault": ("brh",),
    "brh": (),
}
"""For each package, top layer first: the other first-party packages its modules may import."""

SIMULATOR_PARTS: dict[str, tuple[str, ...]] = {
    "cli": ("report", "scenarios", "world", "base"),
    "report": ("base",),
    "scenarios": ("world", "base"),
    "world": ("base",),
    "base": (),
}
"""The simulator's parts, top first, and the other parts each may import. ``base`` is the
modules at the top of ``simulator/`` (the loop, the fault table, the implementation interface,
the live vault), and ``world`` includes ``stepping.py``, which runs a world a step at a time."""

ALIASES = {
    "simulator/scenario_file.py": "scenarios",
    "simulator/demo.py": "cli",
    "simulator/vault.py": "base",
}
"""Short modules that keep a documented import path working, each part of what it re-exports."""

LIMIT = 700
"""Lines a module may have (it must stay under)."""

CHECKED_FOR_SIZE = ("brh", "hivevault", "simulator", "vaultd", "conformance", "tests", "benchmarks")


def imported_modules(path: Path, package: str) -> dict[str, int]:
    """The first-party modules ``path`` imports (dotted, as written), each with its first line;
    a relative import counts as ``package``."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names = [package]
            elif node.module == "simulator":  # from simulator import faults, scenarios, ...
                names = [f"simulator.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FIRST_PARTY:
                found.setdefault(name, node.lineno)
    return found


def imported_packages(path: Path, package: str) -> dict[str, int]:
    """The first-party top-level packages ``path`` imports, each with its first line."""
    found: dict[str, int] = {}
    for name, line in imported_modules(path, package).items():
        found.setdefault(name.split(".")[0], line)
    return found


def modules(package: str) -> list[Path]:
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths, f"no modules found in {package}/"
    return paths


def simulator_part(module: str) -> str:
    """The part of the simulator a module (``simulator/world/link.py`` or ``simulator.world.link``)
    belongs to."""
    path = module if module.endswith(".py") else module.replace(".", "/") + ".py"
    if path in ALIASES:
        return ALIASES[path]
    parts = path.removesuffix(".py").split("/")
    if len(parts) > 2 and parts[1] in SIMULATOR_PARTS:
        return parts[1]
    name = parts[1] if len(parts) > 1 else ""
    if name in SIMULATOR_PARTS:  # a package: simulator.world, simulator.cli
        return name
    return "world" if name == "stepping" else "base"


def rule_lines() -> list[str]:
    """The rules as the README's architecture section shows them."""
    lines = [f"{package}: {', '.join(below) or '-'}" for package, below in ALLOWED.items()]
    lines += [
        f"simulator/{part}: {', '.join(below) or '-'}"
        for part, below in SIMULATOR_PARTS.items()
        if part != "base"
    ]
    return lines


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_they_are_allowed(package: str) -> None:
    """Issue 14, items 3 and 4 (the architecture diagram): brh imports none of the others;
    hivevault only brh; the simulator and vaultd hivevault and brh, never each other;
    conformance the simulator, hivevault and brh; nothing imports conformance."""
    allowed = {package, *ALLOWED[package]}
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for path in modules(package)
        for imported, line in imported_packages(path, package).items()
        if imported not in allowed
    ]
    assert wrong == []


def test_the_simulators_parts_import_only_the_parts_below_them() -> None:
    """Issue 14 item 4: in the simulator, the world and what it is made of import none of the
    scenarios, the report or the command line; the scenarios import the world, not the report
    or the command line; the report reads traces and imports only the fault table (of the
    modules at the top); the command line sits on all of them."""
    wrong = []
    for path in modules("simulator"):
        mine = simulator_part(str(path.relative_to(ROOT)))
        allowed = {mine, *SIMULATOR_PARTS[mine]}
        for imported, line in imported_modules(path, "simulator").items():
            if imported.startswith("simulator") and simulator_part(imported) not in allowed:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({mine}) imports {imported}")
    assert wrong == []


def test_the_readme_shows_the_rules_the_tests_check() -> None:
    """Issue 14 (the architecture diagram matches the imports): the README's architecture
    section lists each package's and each simulator part's allowed imports as checked here."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    missing = [line for line in rule_lines() if line not in section]
    assert missing == []


def test_the_import_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself: plain, from, relative and function-level imports are all seen, and
    ``from simulator import x`` names the module x."""
    module = tmp_path / "sample.py"
    module.write_text(
        "import os\n"
        "import simulator.world as w\n"
        "from . import sibling\n"
        "from simulator import cli, faults\n"
        "def f():\n"
        "    from vaultd.app import create_app\n"
    )
    assert imported_packages(module, "hivevault") == {
        "simulator": 2,
        "hivevault": 3,
        "vaultd": 6,
    }
    assert imported_modules(module, "hivevault") == {
        "simulator.world": 2,
        "hivevault": 3,
        "simulator.cli": 4,
        "simulator.faults": 4,
        "vaultd.app": 6,
    }
    assert [simulator_part(name) for name in ("simulator.cli", "simulator.faults")] == [
        "cli",
        "base",
    ]
    assert simulator_part("simulator/world/link.py") == simulator_part("simulator.stepping")


def test_the_simulator_and_the_development_vault_share_hivevault() -> None:
    """Issue 14, item 3: the fake vault lives in hivevault, and both the simulator and vaultd
    import it from there."""
    for package in ("simulator", "vaultd"):
        users = [
            path for path in modules(package) if "hivevault" in imported_packages(path, package)
        ]
        assert users, f"{package} does not import hivevault"


def test_the_old_import_path_of_the_fake_vault_still_works() -> None:
    """Issue 14, item 3: code written as the earlier README showed (``from simulator.vault
    import FakeVault``) gets the one fake vault of hivevault, not a copy."""
    import hivevault
    import simulator.vault

    for name in simulator.vault.__all__:
        assert getattr(simulator.vault, name) is getattr(hivevault, name)
    assert set(simulator.vault.__all__) == set(hivevault.__all__)


DOCUMENTED = {
    "simulator.world": ("World", "simulate", "START", "ScenarioError", "UnknownDeviceError"),
    "simulator.timeloop": ("run", "VirtualTimeLoop", "VirtualDeadlock"),
    "simulator.impl": ("Installation", "Helper", "load_factory"),
    "simulator.scenarios": ("get", "names", "run_named", "scenario", "incremental_checkpoint"),
    "simulator.scenario_file": ("run_file", "load_file", "loads", "dumps", "ScenarioFileError"),
    "simulator.live": ("LiveVault", "UnsupportedFault"),
    "simulator.report": ("render_timeline", "main"),
    "simulator.cli": ("main",),
}
"""Import paths the README (and earlier code) use, with names they import from them."""


@pytest.mark.parametrize("module", sorted(DOCUMENTED))
def test_the_documented_import_paths_still_work(module: str) -> None:
    """Issue 14 item 4: the paths the README gives work after the simulator's split into
    folders, and give the objects of the modules that hold the code now."""
    imported = importlib.import_module(module)
    for name in DOCUMENTED[module]:
        value = getattr(imported, name)
        home = importlib.import_module(value.__module__) if hasattr(value, "__module__") else None
        assert home is None or getattr(home, name, value) is value, (module, name)
    if module == "simulator.scenario_file":
        import simulator.scenarios.files

        assert imported.__all__ == simulator.scenarios.files.__all__
        for name in imported.__all__:
            assert getattr(imported, name) is getattr(simulator.scenarios.files, name)


def test_the_documented_commands_still_run() -> None:
    """Issue 14 item 4: ``python -m simulator.demo``, ``python -m simulator.report``,
    ``python -m simulator.faults`` and ``python -m simulator.cli`` run, and the ``brh-sim``
    entry point is :func:`simulator.cli.run` (:func:`simulator.cli.main`, then exit with its
    code)."""
    for module in ("simulator.demo", "simulator.report", "simulator.cli"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0 and result.stdout.startswith("usage:"), module
    faults = subprocess.run(
        [sys.executable, "-m", "simulator.faults"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert "| `partition` | `heal` |" in faults.stdout
    import simulator.cli

    [script] = [e for e in entry_points(group="console_scripts") if e.name == "brh-sim"]
    assert script.load() is simulator.cli.run


def test_modules_stay_under_700_lines() -> None:
    """Issue 14 item 4: every module of every package, of the tests and of the benchmarks is
    under 700 lines (scenario_file.py had 1,280, scenarios.py 1,199, the fake vault 1,216,
    the protocol client 725, test_fake_vault.py 1,320)."""
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in CHECKED_FOR_SIZE
        for path in modules(folder)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) >= LIMIT
    }
    assert long == {}
