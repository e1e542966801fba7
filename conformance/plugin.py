"""The pytest plugin of the conformance suite (registered through the ``pytest11`` entry point).

Options (all under "brh conformance" in ``pytest --help``):

* ``--brh-impl NAME``: ``reference`` (default, in process) or ``package.module:factory``, any
  Python implementation (see :mod:`simulator.impl` for the factory contract);
* ``--brh-cmd COMMAND``: any language, run as a process speaking PROTOCOL.md;
* ``--brh-level core|robust|all``: which tests run (default ``all``);
* ``--brh-expectations FILE``: expected failures of this implementation (TOML, see
  :mod:`conformance.expectations`; ``legacy`` names the legacy baseline's shipped file); they
  run and are reported, an unexpected pass included;
* ``--brh-report FILE.md|FILE.json``: a per-clause table, with each failure's seed and the
  command that replays it;
* ``--brh-seed N``: the seed of every simulated world (default 1), and of Hypothesis in the
  property-based tests (the state machine of :mod:`conformance.machine`);
* ``--brh-profile fast|ci|deep``: how hard the property-based tests search (Hypothesis profiles
  ``brh-fast``, the default, a few seconds; ``brh-ci``, about half a minute; ``brh-deep``,
  hours, for nightly runs; times for the reference in process);
* ``--brh-examples N`` / ``--brh-steps N``: search harder (or less) than the profile says: at
  most N examples, of at most N steps each;
* ``--brh-example-db DIR|redis://HOST:PORT/N|none``: where failing examples of the
  property-based tests are saved, to be replayed first on the next run (default: the
  directory ``.brh-examples`` under the rootdir; a Redis URL shares them with every machine
  using it; see :mod:`conformance.exampledb`). Hypothesis's own ``--hypothesis-seed`` and
  ``--hypothesis-profile`` are refused when conformance tests are selected: ``--brh-seed``
  and ``--brh-profile`` say the same, and the replay commands carry them;
* ``--brh-vault-url URL`` with ``--brh-vault-token TOKEN`` (or ``BRH_VAULT_TOKEN`` in the
  environment), or ``--brh-vault-config FILE`` (TOML with ``url`` and ``token``): run against
  a live Hive vault instead of the fake one; tests that need a fault only the fake vault can
  take are skipped, with the reason.

* ``--brh-clause ID``: run only the tests that name this SPEC clause (repeatable, or
  comma-separated: ``--brh-clause SYNC-4,CB-6``); each test also carries a marker per clause
  (``clause_sync_4``) and per level (``brh_core``, ``brh_robust``), so ``-m`` selects too.

Every option can live in the pytest configuration file instead, under its name with
underscores (``brh_impl = "mypkg.helper:factory"`` in ``[tool.pytest.ini_options]``); the
command line wins. The plugin stays silent and adds nothing (no header, no fixture, no summary)
unless a ``--brh-*`` option or a ``brh_*`` setting is given or the conformance tests themselves
are selected (``pytest --pyargs conformance``). Its fixture is ``brh_sim``.

Under pytest-xdist (``-n auto``) every test keeps its own seed (``--brh-seed``, whichever
worker runs it), and the controller merges the workers' results into one report (see
:mod:`conformance.parallel`).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import tomllib
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.expectations import Expectations, find_expectations, load_expectations
from conformance.harness import REFERENCE, Endpoint, Sim, Target
from conformance.marks import LEVELS, MARK, PROFILES
from conformance.parallel import ReportMerger, record_on
from conformance.protocol.client import command_factory
from conformance.report import Outcome, Report, TestRecord
from simulator.impl import FactoryError, check_factory, load_factory

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

__all__ = ["make_sim"]

_SIM = pytest.StashKey[Sim]()
_RECORD = pytest.StashKey[TestRecord]()
_STATE = pytest.StashKey["_State"]()
_CLAUSES = pytest.StashKey[frozenset[str]]()


class _State:
    def __init__(
        self,
        target: Target,
        level: str,
        seed: int,
        expectations: Expectations,
        profile: str = "fast",
        endpoint: Endpoint | None = None,
        examples: int | None = None,
        steps: int | None = None,
        example_db: ExampleDatabase | None = None,
    ) -> None:
        self.target = target
        self.example_db = example_db
        self.examples = examples
        self.steps = steps
        self.endpoint = endpoint
        self.level = level
        self.seed = seed
        self.profile = profile
        self.expectations = expectations
        self.report = Report(implementation=target.name, level=level, seed=seed)


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def _count(text: str) -> int:
    value = _number(text)
    if value < 1:
        raise ValueError(f"expected an integer >= 1, got {text!r}")
    return value


SETTINGS: dict[str, Callable[[str], object]] = {
    "brh_impl": str,
    "brh_cmd": str,
    "brh_level": _choice((*LEVELS, "all")),
    "brh_expectations": str,
    "brh_report": str,
    "brh_seed": _number,
    "brh_profile": _choice(PROFILES),
    "brh_examples": _count,
    "brh_steps": _count,
    "brh_example_db": str,
    "brh_vault_url": str,
    "brh_vault_config": str,
    "brh_clause": str,
}
"""The options that may also be set in the pytest configuration file, and their types (the
token is left out: a secret has no place in a checked-in file)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    for name in SETTINGS:
        option = "--" + name.replace("_", "-")
        parser.addini(name, f"the default of {option} (the command line wins)", default=None)
    group = parser.getgroup("brh conformance", "backup/sync helper conformance suite")
    group.addoption(
        "--brh-clause",
        action="append",
        default=None,
        metavar="ID",
        help="run only the tests naming this SPEC clause (repeatable; 'SYNC-4,CB-6' works too)",
    )
    group.addoption(
        "--brh-impl",
        default=REFERENCE,
        metavar="NAME",
        help="implementation under test: 'reference' (default) or 'package.module:factory'",
    )
    group.addoption(
        "--brh-cmd",
        default=None,
        metavar="COMMAND",
        help="implementation under test as a process speaking PROTOCOL.md, e.g. 'node h.js'",
    )
    group.addoption(
        "--brh-level",
        default="all",
        choices=[*LEVELS, "all"],
        help="core: what the design document promises; robust: what the original lacks",
    )
    group.addoption(
        "--brh-expectations",
        default=None,
        metavar="FILE",
        help="TOML of expected failures (test name, clause or weakness id -> reason), or the "
        "name of one shipped with the suite ('legacy')",
    )
    group.addoption(
        "--brh-report",
        default=None,
        metavar="FILE",
        help="write a per-clause report (.md or .json)",
    )
    group.addoption(
        "--brh-seed",
        default=1,
        type=int,
        metavar="N",
        help="seed of every simulated world and of Hypothesis (default 1)",
    )
    group.addoption(
        "--brh-profile",
        default="fast",
        choices=PROFILES,
        help="how hard property-based tests search: fast (default, seconds), ci (half a minute), "
        "deep (hours, for nightly runs)",
    )
    group.addoption(
        "--brh-examples",
        default=None,
        type=_positive("--brh-examples"),
        metavar="N",
        help="examples of each property-based test (default: the profile's)",
    )
    group.addoption(
        "--brh-steps",
        default=None,
        type=_positive("--brh-steps"),
        metavar="N",
        help="at most N steps in each state machine example (default: the profile's)",
    )
    group.addoption(
        "--brh-example-db",
        default=None,
        metavar="DIR|URL|none",
        help="where failing Hypothesis examples are saved and replayed first next run: a "
        "directory (default: .brh-examples under the rootdir), redis://HOST:PORT/N to share "
        "them with every machine using it (the local directory too), or 'none'",
    )
    group.addoption(
        "--brh-vault-url",
        default=None,
        metavar="URL",
        help="run against a live Hive vault at URL instead of the fake one",
    )
    group.addoption(
        "--brh-vault-token",
        default=None,
        metavar="TOKEN",
        help="access token for --brh-vault-url (default: $BRH_VAULT_TOKEN)",
    )
    group.addoption(
        "--brh-vault-config",
        default=None,
        metavar="FILE",
        help="TOML file with the live vault's url and token",
    )


def _positive(option: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{option}: expected an integer >= 1, got {text!r}")
        return value

    return parse


def _endpoint(config: pytest.Config) -> Endpoint | None:
    url: str | None = config.getoption("brh_vault_url")
    token: str | None = config.getoption("brh_vault_token")
    path: str | None = config.getoption("brh_vault_config")
    if path is not None:
        if url is not None or token is not None:
            raise pytest.UsageError(
                "--brh-vault-config: give the file or --brh-vault-url/--brh-vault-token, not both"
            )
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise pytest.UsageError(f"--brh-vault-config: {path}: {exc}") from None
        url, token = data.get("url"), data.get("token")
        if not isinstance(url, str) or not isinstance(token, str):
            raise pytest.UsageError(
                f"--brh-vault-config: {path}: needs string keys 'url' and 'token'"
            )
    if url is None:
        if token is not None:
            raise pytest.UsageError("--brh-vault-token: given without --brh-vault-url")
        return None
    if not url.startswith(("http://", "https://")):
        raise pytest.UsageError(f"--brh-vault-url: expected an http(s):// URL, got {url!r}")
    token = token if token is not None else os.environ.get("BRH_VAULT_TOKEN")
    if not token:
        raise pytest.UsageError(
            "--brh-vault-url: no token; give --brh-vault-token or set BRH_VAULT_TOKEN"
        )
    return Endpoint(url, token)


def _target(config: pytest.Config) -> Target:
    impl: str = config.getoption("brh_impl")
    cmd: str | None = config.getoption("brh_cmd")
    if cmd is not None:
        if impl != REFERENCE:
            raise pytest.UsageError("--brh-impl and --brh-cmd: give one implementation, not both")
        if not cmd.strip():
            raise pytest.UsageError("--brh-cmd: the command is empty")
        argv = shlex.split(cmd)
        if shutil.which(argv[0]) is None:
            raise pytest.UsageError(
                f"--brh-cmd: cannot run {argv[0]!r}: no such program on PATH, or not executable"
            )
        process = command_factory(argv)
        try:  # started once now: one clear error if it does not speak the protocol
            check_factory(process, cmd)
        except FactoryError as exc:
            raise pytest.UsageError(f"--brh-cmd: {exc}") from None
        return Target(cmd, process, f"--brh-cmd={shlex.quote(cmd)}")
    if impl == REFERENCE:
        return Target(REFERENCE, None)
    try:
        factory = load_factory(impl)
        check_factory(factory, impl)  # one clear error now, not one failure per test
    except FactoryError as exc:
        raise pytest.UsageError(f"--brh-impl: {exc}") from None
    return Target(impl, factory, f"--brh-impl={impl}")


def _example_db(config: pytest.Config) -> ExampleDatabase | None:
    spec: str | None = config.getoption("brh_example_db")
    try:
        from conformance.exampledb import ExampleDbError, open_example_db
    except ImportError:  # no Hypothesis: no property-based tests either
        if spec is None:
            return None
        raise pytest.UsageError(
            "--brh-example-db: needs Hypothesis (pip install hypothesis)"
        ) from None
    try:
        return open_example_db(spec, config.rootpath)
    except ExampleDbError as exc:
        raise pytest.UsageError(f"--brh-example-db: {exc}") from None


_HYPOTHESIS_OPTIONS = {
    "hypothesis_seed": ("--hypothesis-seed", "--brh-seed N"),
    "hypothesis_profile": ("--hypothesis-profile", "--brh-profile fast|ci|deep"),
}


def _refuse_hypothesis_options(config: pytest.Config) -> None:
    """Hypothesis's own seed and profile options would fight ``--brh-seed`` and
    ``--brh-profile`` (and the seed option would turn the example database off, unseen):
    refused while conformance tests run, said once, before any test."""
    for dest, (option, ours) in _HYPOTHESIS_OPTIONS.items():
        if config.getoption(dest, None) is not None:
            raise pytest.UsageError(
                f"{option}: the conformance suite seeds Hypothesis and picks its profile "
                f"itself (so replay commands stay exact); give {ours} instead"
            )


def _selects_the_suite(config: pytest.Config) -> bool:
    """Whether the command names the conformance tests (``--pyargs conformance`` or a path in
    the package)."""
    import conformance

    package = Path(conformance.__file__).resolve().parent
    for arg in config.invocation_params.args:
        text = str(arg).split("::")[0]
        if text == "conformance" or text.startswith("conformance."):
            return True
        if text.startswith("-"):
            continue  # an option, or its value glued to it
        try:  # any argument may be an option's value (a long -k expression, say): not a path
            path = Path(text).resolve()
            if path.exists() and (path == package or package in path.parents):
                return True
        except (OSError, ValueError):
            continue
    return False


def _active(config: pytest.Config) -> bool:
    """The plugin works only when asked: a ``--brh-*`` option, a ``brh_*`` setting, or the
    suite itself selected. Otherwise it adds nothing to other projects' runs."""
    if any(str(arg).startswith("--brh-") for arg in config.invocation_params.args):
        return True
    if any(config.getini(name) for name in SETTINGS):
        return True
    return _selects_the_suite(config)


def _apply_settings(config: pytest.Config) -> None:
    """Options not given on the command line take their value from the configuration file."""
    for name, kind in SETTINGS.items():
        text = config.getini(name)
        if not text or any(
            str(arg).startswith("--" + name.replace("_", "-"))
            for arg in config.invocation_params.args
        ):
            continue
        try:
            value = kind(str(text).strip())
        except ValueError as exc:  # checked as the command line checks its option
            raise pytest.UsageError(f"{name} (configuration file): {exc}") from None
        setattr(config.option, name, [value] if name == "brh_clause" else value)


def _clauses(config: pytest.Config) -> frozenset[str]:
    """``--brh-clause`` values, checked: clause ids such as ``SYNC-4``."""
    given: list[str] = config.getoption("brh_clause") or []
    clauses = {part.strip().upper() for item in given for part in item.split(",") if part.strip()}
    for clause in clauses:
        if not re.fullmatch(r"[A-Z]+-[0-9]+", clause):
            raise pytest.UsageError(
                f"--brh-clause: {clause!r} is not a SPEC clause id (expected e.g. SYNC-4)"
            )
    return frozenset(clauses)


def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    _apply_settings(config)
    config.addinivalue_line(
        "markers",
        f"{MARK}(*clauses, level, weakness): a conformance test, the SPEC clauses it guards",
    )
    for level in LEVELS:
        config.addinivalue_line("markers", f"brh_{level}: a {level} conformance test")
    config.pluginmanager.import_plugin("conformance.fixtures")
    path = config.getoption("brh_expectations")
    try:
        expectations = load_expectations(find_expectations(path)) if path else Expectations()
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"--brh-expectations: {exc}") from None
    report = config.getoption("brh_report")
    if report and Path(report).suffix not in (".md", ".json"):
        raise pytest.UsageError(f"--brh-report: {report!r} must end in .md or .json")
    config.stash[_STATE] = _State(
        _target(config),
        config.getoption("brh_level"),
        config.getoption("brh_seed"),
        expectations,
        config.getoption("brh_profile"),
        _endpoint(config),
        config.getoption("brh_examples"),
        config.getoption("brh_steps"),
        _example_db(config),
    )
    config.stash[_CLAUSES] = _clauses(config)
    config.pluginmanager.register(ReportMerger(config, config.stash[_STATE].report), "brh-merger")


def pytest_report_header(config: pytest.Config) -> str | None:
    if _STATE not in config.stash:
        return None
    state = config.stash[_STATE]
    vault = state.endpoint.url if state.endpoint else "the fake vault"
    return (
        f"brh conformance: implementation {state.target.name}, level {state.level}, "
        f"seed {state.seed}, profile {state.profile}{_search(state)}, on {vault}"
    )


def _search(state: _State) -> str:
    parts = [f"{n} {what}" for n, what in ((state.examples, "examples"), (state.steps, "steps"))]
    return "".join(f" ({part})" for part in parts if not part.startswith("None"))


def _mark(item: pytest.Item) -> pytest.Mark | None:
    return item.get_closest_marker(MARK)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: it reads the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _STATE not in config.stash:
        return
    state = config.stash[_STATE]
    only = config.stash[_CLAUSES]
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        mark = _mark(item)
        if mark is None:
            kept.append(item)
            continue
        level = mark.kwargs["level"]
        _add_markers(config, item, level, mark.args)
        if state.level != "all" and level != state.level:
            dropped.append(item)
            continue
        if only and not only & set(mark.args):
            dropped.append(item)
            continue
        kept.append(item)
        record = TestRecord(
            name=item.name,
            nodeid=item.nodeid,
            clauses=tuple(mark.args),
            level=level,
            weakness=mark.kwargs.get("weakness"),
        )
        item.stash[_RECORD] = record
        reason = state.expectations.reason_for(record)
        if reason is not None:
            record.expected = reason
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if any(_mark(item) is not None for item in kept):
        _refuse_hypothesis_options(config)


def _add_markers(
    config: pytest.Config, item: pytest.Item, level: str, clauses: tuple[str, ...]
) -> None:
    """``brh_<level>`` and ``clause_<id>`` markers, so ``-m`` selects as ``--brh-clause``."""
    names = [f"brh_{level}", *(f"clause_{c.lower().replace('-', '_')}" for c in clauses)]
    for name in names:
        if name.startswith("clause_"):
            config.addinivalue_line("markers", f"{name}: a conformance test of that SPEC clause")
        item.add_marker(name)


def make_sim(request: pytest.FixtureRequest, tmp_path: Path) -> Sim:
    """A :class:`conformance.harness.Sim` on the implementation under test (the ``brh_sim``
    fixture, :mod:`conformance.fixtures`)."""
    state = request.config.stash[_STATE]
    node = request.node
    mark = node.get_closest_marker(MARK)
    runner = Sim(
        target=state.target,
        seed=state.seed,
        workdir=tmp_path,
        nodeid=f"{node.path}::{node.name}",
        endpoint=state.endpoint,
        profile=state.profile,
        examples=state.examples,
        steps=state.steps,
        example_db=state.example_db,
        example_key=_example_key(node, state.target.name) if state.example_db else b"",
        level=str(mark.kwargs.get("level", "")) if mark is not None else "",
        clauses=tuple(str(c) for c in mark.args) if mark is not None else (),
    )
    node.stash[_SIM] = runner
    return runner


def _example_key(node: pytest.Item, implementation: str) -> bytes:
    if not isinstance(node, pytest.Function):
        return b""
    from conformance.exampledb import example_key

    return example_key(node.module.__name__, node.name, implementation)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    record = item.stash.get(_RECORD, None)
    if record is None:
        return report
    if report.when == "call" or (report.when == "setup" and not report.passed):
        runner = item.stash.get(_SIM, None)
        if runner is not None:
            record.seed = runner.seed
            record.replay = runner.replay_command()
        record.outcome = _outcome(report)
        if report.failed:
            record.message = _first_line(report.longreprtext)
            if runner is not None:
                record.findings = list(runner.findings)
                record.failed_clauses = runner.failed_clauses
                record.trace = str(runner.traces[-1]) if runner.traces else None
                where = f"; trace: {record.trace}" if record.trace else ""
                report.sections.append(
                    ("brh conformance", f"seed {runner.seed}; replay: {record.replay}{where}")
                )
        elif report.skipped and not hasattr(report, "wasxfail"):
            record.message = _skip_reason(report)
        record_on(report, record)
    return report


def _outcome(report: pytest.TestReport) -> Outcome:
    if hasattr(report, "wasxfail"):
        return "xpass" if report.passed else "xfail"
    if report.passed:
        return "pass"
    if report.skipped:
        return "skip"
    return "fail"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("E "):
            return line[1:].strip()
    return text.strip().splitlines()[-1] if text.strip() else ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""


def pytest_collection_finish(session: pytest.Session) -> None:
    if _STATE not in session.config.stash:
        return
    state = session.config.stash[_STATE]
    for item in session.items:
        record = item.stash.get(_RECORD, None)
        if record is not None:
            state.report.add(record)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if _STATE not in config.stash:
        return
    state = config.stash[_STATE]
    report = state.report
    if not report.records:
        return
    write = terminalreporter.write_line
    terminalreporter.section("brh conformance")
    for line in report.summary_lines():
        write(line)
    unknown = state.expectations.unused(report.records)
    if unknown:
        write(f"expectations that matched no test: {', '.join(sorted(unknown))}")
    path = config.getoption("brh_report")
    if path and not hasattr(config, "workerinput"):  # an xdist worker: the controller writes
        report.write(Path(path))
        write(f"report written to {path}")
