"""``brh-sim``: list, run, explore and replay simulated worlds.

    brh-sim list
    brh-sim run NAME_OR_FILE --seed N [--impl MODULE:FACTORY | --cmd COMMAND] [--trace FILE]
                [--report FILE.html]
    brh-sim explore --seeds N [--devices D] [--duration T] [--out DIR] [--first-seed S]
                    [--faults NAME,...] [--impl MODULE:FACTORY | --cmd COMMAND]
                    [-j N | --cluster ADDRESS]
    brh-sim replay FILE [--impl MODULE:FACTORY | --cmd COMMAND] [--trace FILE] [--report FILE.html]

``--impl package.module:factory`` runs every device on that implementation instead of the
in-process reference (see :mod:`simulator.impl`; its stores go to a temporary directory), so a
failure the conformance suite found on another implementation replays here too. ``--cmd
"COMMAND"`` runs every device on a process speaking PROTOCOL.md, started as the conformance
suite's ``--brh-cmd`` starts it (one per device installation; its stderr logs go to the same
temporary directory). Either is loaded, and one helper built, before anything runs: one that
does not load (a module that does not import, a program not on ``PATH``, a process that does
not answer the protocol's hello), or both given, is bad usage. A replay file records which
implementation ``explore`` ran, and ``replay`` reruns that one unless ``--impl`` or ``--cmd``
names another.

A step that raises (an implementation's exception, say) fails the run too: a ``FAIL`` line
names the step, the exception, the simulated time and the seed, then the command that reruns it
(``brh-sim -v ...`` prints the traceback as well); the trace (``--trace``) is written up to that
step, ending with a note, and the report (``--report``) shows the failure.

``explore -j N`` runs the seeds in N worker processes (default: one per core), ``--cluster``
on a Dask scheduler (:mod:`simulator.cli.fleet`); the summary, in seed order, and the files are
the same as with ``-j 1``. Ctrl-C stops the workers and prints what finished.

Exit status: 0 when every checker passed, 1 when one failed or a step raised, 2 on bad usage,
130 when ``explore`` was stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from simulator.cli.explore import (
    SWITCHES,
    ExploreSummary,
    Implementation,
    check_switches,
    explore,
    read_replay_file,
    run_config,
)
from simulator.cli.fleet import STUCK_POOLS, ClusterError, default_jobs
from simulator.impl import FactoryError, check_factory
from simulator.world import Outcome, ScenarioError

__all__ = ["main", "run"]


def _print_outcome(outcome: Outcome, label: str) -> None:
    status = "PASS" if outcome.ok else "FAIL"
    print(
        f"{status} {label} (seed {outcome.seed}): {outcome.simulated_seconds:,.0f} s simulated, "
        f"{outcome.requests:,} vault requests"
    )
    for finding in outcome.findings:
        print(f"  {finding}")


def _print_error(error: ScenarioError, label: str, rerun: list[str], verbose: bool) -> None:
    """A step that raised: a FAIL line like a checker's, and how to run it again."""
    when = "" if error.at is None else f" at t={error.at:.3f}s"
    print(f"FAIL {label} (seed {error.seed}): {error}{when}")
    print(f"  rerun: {shlex.join(['brh-sim', *rerun])}")
    if verbose:
        traceback.print_exception(error.error, file=sys.stderr)
    else:
        print(f"  with its traceback: {shlex.join(['brh-sim', '-v', *rerun])}")


def _report(
    trace: Path | None, report: Path | None, outcome: Outcome | ScenarioError, title: str
) -> None:
    if report is None or trace is None:
        return
    from simulator.report import render_timeline

    if isinstance(outcome, ScenarioError):
        findings = [f"{outcome} (the run stopped there, unchecked)"]
    else:
        findings = [str(f) for f in outcome.findings]
    render_timeline(trace, report, title=title, findings=findings)


def _print_files(trace: Path | None, report: str | None) -> None:
    """One line saying where the run's trace and report are."""
    parts = [f"trace {trace}"] if trace is not None else []
    parts += [f"timeline report {report}"] if report else []
    if parts:
        print("files: " + ", ".join(parts))


def _print_rerun(rerun: list[str], args: argparse.Namespace) -> None:
    """How to run a failing run again (``rerun``: its arguments), with a report if it had
    none."""
    if not args.report:
        rerun += ["--report", "failure.html"]
    print(f"  rerun: {shlex.join(['brh-sim', *rerun])}")


def _trace_for(args: argparse.Namespace) -> Path | None:
    if args.trace is not None:
        return Path(args.trace)
    if args.report is not None:
        return Path(args.report).with_suffix(".trace.jsonl")
    return None


class _UsageError(Exception):
    """A bad option: the command prints it and exits 2."""


def _chosen(args: argparse.Namespace) -> Implementation:
    """The implementation ``--impl`` or ``--cmd`` names (the reference if neither does)."""
    try:
        return Implementation(impl=args.impl, cmd=args.cmd)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


@contextlib.contextmanager
def _implementation(implementation: Implementation, recorded: str = "") -> Iterator[dict[str, Any]]:
    """World options for ``implementation``: its factory, loaded and checked (one helper built
    and closed: a ``--cmd`` process is started and must answer the protocol's hello), and a
    temporary directory for the stores and the processes' logs; none for the reference in
    process. A factory that cannot be loaded is a :class:`_UsageError` naming the option (and
    ``recorded``, where it came from when not from the command line)."""
    if implementation.option is None or implementation.value is None:
        yield {}
        return
    try:
        factory = implementation.factory()  # an --impl from the current directory too
        assert factory is not None
        check_factory(factory, implementation.value)
    except FactoryError as exc:
        raise _UsageError(f"{implementation.option}{recorded}: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="brh-sim-") as folder:
        yield {"factory": factory, "workdir": Path(folder)}


def _label(label: str, implementation: Implementation) -> str:
    return label + implementation.label()


def cmd_list(args: argparse.Namespace) -> int:
    from simulator import scenarios

    for name in scenarios.names():
        print(f"{name}  {scenarios.get(name).description}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from simulator import scenarios

    target = args.scenario
    trace = _trace_for(args)
    is_file = Path(target).suffix == ".toml" or Path(target).is_file()
    if not is_file and target not in scenarios.names():
        print(
            f"brh-sim run: no scenario named {target!r} and no such file; "
            "`brh-sim list` shows the named scenarios",
            file=sys.stderr,
        )
        return 2
    outcome: Outcome | ScenarioError
    implementation = Implementation()
    try:
        implementation = _chosen(args)
        with _implementation(implementation) as world_options:
            if is_file:
                from simulator.scenarios.files import ScenarioFileError, load_file

                try:
                    spec = load_file(Path(target))
                except ScenarioFileError as exc:
                    raise _UsageError(str(exc)) from None
                outcome = spec.run(args.seed, trace, **world_options)
            else:
                outcome = scenarios.run_named(target, args.seed, trace_path=trace, **world_options)
    except _UsageError as exc:
        print(f"brh-sim run: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        outcome = exc
        rerun = _rerun(["run", target], args, implementation)
        _print_error(exc, _label(target, implementation), rerun, args.verbose)
    else:
        _print_outcome(outcome, _label(target, implementation))
        if not outcome.ok:
            _print_rerun(_rerun(["run", target], args, implementation), args)
    _report(
        trace, Path(args.report) if args.report else None, outcome, f"{target} seed {args.seed}"
    )
    _print_files(trace, args.report)
    return 0 if isinstance(outcome, Outcome) and outcome.ok else 1


def _rerun(
    command: list[str], args: argparse.Namespace, implementation: Implementation
) -> list[str]:
    """The ``brh-sim`` arguments that run this again (with its seed and ``implementation``)."""
    rerun = [*command]
    if getattr(args, "seed", None) is not None:
        rerun += ["--seed", str(args.seed)]
    return rerun + implementation.argv()


class _Progress:
    """Seeds done and failing, on stderr. On a terminal, a progress bar drawn by rich (redrawn in
    place, no thread of its own); in a log (or without rich), plain lines: one at each tenth of
    the seeds, at each new failing seed and at the end, with no control characters."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.out = sys.stderr if stream is None else stream
        self.started = time.monotonic()  # wall time for the display only, never for the run
        self.shown = {"failing": 0, "tenth": 0}
        self.bar: Any = None
        self.task: Any = None
        if self.out.isatty():
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:  # rich is in the sim extra; plain lines without it
                return
            self.bar = Progress(
                TextColumn("seeds"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failing]} failing"),
                TimeElapsedColumn(),
                console=Console(file=self.out, force_terminal=True),
                auto_refresh=False,
            )

    def __call__(self, done: int, total: int, summary: ExploreSummary) -> None:
        failing = len(summary.failed_seeds)
        if self.bar is not None:
            if self.task is None:
                self.bar.start()
                self.task = self.bar.add_task("explore", total=total, failing=0)
            self.bar.update(self.task, completed=done, failing=failing, refresh=True)
            if done >= total:
                self.close()
            return
        tenth = 10 * done // total
        if done == total or failing > self.shown["failing"] or tenth > self.shown["tenth"]:
            elapsed = time.monotonic() - self.started
            print(f"{done}/{total} seeds, {failing} failing, {elapsed:.1f} s", file=self.out)
            self.out.flush()
            self.shown.update(failing=failing, tenth=tenth)

    def close(self) -> None:
        """Leave the terminal as it was (also when explore stopped early)."""
        if self.bar is not None and self.task is not None:
            self.bar.stop()
            self.task = None


def _progress_printer(stream: TextIO | None = None) -> _Progress:
    """The progress display of ``explore`` (see :class:`_Progress`)."""
    return _Progress(stream)


def _ranges(seeds: list[int]) -> str:
    """``1-3, 7, 9-12``: consecutive seeds as ranges."""
    parts: list[str] = []
    for seed in seeds:
        if parts and seed == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{seed}"
        else:
            parts.append(str(seed))
    return ", ".join(parts)


def cmd_explore(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        print("brh-sim explore: --seeds must be at least 1", file=sys.stderr)
        return 2
    switches: tuple[str, ...] | None = None
    if args.faults is not None:
        try:
            switches = check_switches(n.strip() for n in args.faults.split(",") if n.strip())
        except ValueError as exc:
            print(f"brh-sim explore: --faults: {exc}", file=sys.stderr)
            return 2
    if args.jobs is not None and args.cluster is not None:
        print("brh-sim explore: -j and --cluster: give one or the other", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print(f"brh-sim explore: -j must be at least 1, not {args.jobs}", file=sys.stderr)
        return 2
    jobs = default_jobs() if args.jobs is None else args.jobs
    try:  # loads (and starts) it here first: a bad one is a usage error, not a failing seed
        implementation = _chosen(args)
        with _implementation(implementation):
            pass
    except _UsageError as exc:
        print(f"brh-sim explore: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else None
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    mix = "each its own mix" if switches is None else f"faults {', '.join(switches) or 'none'}"
    where = (
        f"on the Dask cluster at {args.cluster}"
        if args.cluster is not None
        else f"in {min(jobs, args.seeds)} process{'es' if min(jobs, args.seeds) > 1 else ''}"
    )
    print(
        f"exploring seeds {seeds.start}..{seeds.stop - 1}{implementation.label()} {where}: "
        f"{args.devices} devices, "
        f"{args.duration:,.0f} s simulated each, {mix}",
        file=sys.stderr,
    )
    wall = time.monotonic()
    progress = _progress_printer()
    try:
        summary = explore(
            seeds,
            devices=args.devices,
            duration=args.duration,
            out=out,
            progress=progress,
            report_seed=seeds.start if args.report_first else None,
            switches=switches,
            jobs=jobs,
            cluster=args.cluster,
            impl=args.impl,
            cmd=args.cmd,
        )
    except ClusterError as exc:
        print(f"\nbrh-sim explore: --{exc}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    wall = time.monotonic() - wall
    if summary.unfinished:
        print(
            f"\nstopped (Ctrl-C): {summary.seeds} of {len(seeds)} seeds finished; "
            f"not run: {_ranges(summary.unfinished)}",
            file=sys.stderr,
        )
    print()
    print("| seeds run | failing seeds | simulated time | vault requests | wall time |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {summary.seeds} | {len(summary.failed_seeds)} | "
        f"{summary.simulated_seconds / 3600:,.1f} h | {summary.requests:,} | {wall:.1f} s |"
    )
    if summary.failures_by_clause:
        print()
        print("| clause | failing seeds |")
        print("|---|---:|")
        for clause, count in sorted(summary.failures_by_clause.items()):
            print(f"| {clause} | {count} |")
        print(f"\nfailing seeds: {', '.join(map(str, summary.failed_seeds))}")
    for report in summary.reports:
        print(f"report: {report}")
    if out is not None and summary.failed_seeds:
        first = out / f"seed-{summary.failed_seeds[0]}.replay.json"
        # the replay file records the implementation: no --impl or --cmd needed
        print(f"replay a failure with: {shlex.join(['brh-sim', 'replay', str(first)])}")
    if summary.unfinished:
        return 130  # as a shell reports a command stopped by Ctrl-C
    return 0 if not summary.failed_seeds else 1


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        config, recorded = read_replay_file(Path(args.file))
    except ValueError as exc:
        print(f"brh-sim replay: {exc}", file=sys.stderr)
        return 2
    trace = _trace_for(args)
    outcome: Outcome | ScenarioError
    implementation, given = recorded, Implementation()
    label = f"replay of {args.file}"
    try:
        given = _chosen(args)
        # --impl or --cmd replaces the implementation the file records
        implementation = given if given.option is not None else recorded
        source = "" if given.option is not None else f" (recorded in {args.file})"
        label = _label(f"replay of {args.file}", implementation)
        with _implementation(implementation, source) as world_options:
            outcome = run_config(config, trace_path=trace, **world_options)
    except _UsageError as exc:
        print(f"brh-sim replay: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        outcome = exc
        _print_error(exc, label, _rerun(["replay", args.file], args, given), args.verbose)
    else:
        _print_outcome(outcome, label)
        if not outcome.ok:
            _print_rerun(_rerun(["replay", args.file], args, given), args)
    _report(
        trace, Path(args.report) if args.report else None, outcome, f"replay seed {config.seed}"
    )
    _print_files(trace, args.report)
    return 0 if isinstance(outcome, Outcome) and outcome.ok else 1


_IMPL_HELP = (
    "run every device on this implementation, 'package.module:factory' (default: the reference "
    "helper in process)"
)
_CMD_HELP = (
    "run every device on this command line, a process speaking PROTOCOL.md (one per device "
    "installation, as `pytest --pyargs conformance --brh-cmd` starts it); not with --impl"
)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless its help already says it or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brh")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    # -v works before or after the subcommand: each subparser has it too, and only one that is
    # given sets it (SUPPRESS keeps a subparser's default from undoing the top level's).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the helpers' log and a failing step's traceback",
    )
    formatter = _Help
    top = argparse.ArgumentParser(
        prog="brh-sim",
        description="Deterministic multi-device simulator for brh.",
        parents=[common],
        formatter_class=formatter,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "list", help="the named scenarios", parents=[common], formatter_class=formatter
    ).set_defaults(func=cmd_list)

    run = sub.add_parser(
        "run",
        help="run one named scenario or scenario file",
        parents=[common],
        formatter_class=formatter,
    )
    run.add_argument(
        "scenario", metavar="NAME_OR_FILE", help="a name from `brh-sim list`, or a .toml file"
    )
    run.add_argument("--seed", type=int, default=1, help="the world's seed (printed)")
    run.add_argument("--impl", metavar="MODULE:FACTORY", help=_IMPL_HELP)
    run.add_argument("--cmd", metavar="COMMAND", help=_CMD_HELP)
    run.add_argument("--trace", help="write the trace (JSON lines) here")
    run.add_argument("--report", help="write a timeline report (HTML) here")
    run.set_defaults(func=cmd_run)

    exp = sub.add_parser(
        "explore",
        help="swarm exploration over many seeds",
        parents=[common],
        formatter_class=formatter,
    )
    exp.add_argument("--seeds", type=int, required=True, help="how many seeds to run")
    exp.add_argument("--first-seed", type=int, default=1, help="the first seed")
    exp.add_argument("--devices", type=int, default=3, help="devices per world")
    exp.add_argument("--duration", type=float, default=3600.0, help="simulated seconds per seed")
    exp.add_argument("--out", help="directory for replay files, traces and reports of failures")
    exp.add_argument(
        "--faults",
        metavar="NAME,...",
        help="run every seed with exactly these switches (default: each seed its own mix): "
        + ", ".join(SWITCHES),
    )
    exp.add_argument(
        "--report-first",
        action="store_true",
        help="also write a report for the first seed (even if it passes)",
    )
    exp.add_argument("--impl", metavar="MODULE:FACTORY", help=_IMPL_HELP)
    exp.add_argument("--cmd", metavar="COMMAND", help=_CMD_HELP)
    exp.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help=f"run the seeds in N worker processes (default: the number of cores, here "
        f"{default_jobs()}); 1 runs them in this process",
    )
    exp.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the seeds on the Dask scheduler at ADDRESS (tcp://HOST:8786; needs "
        "brh[cluster] here and on the workers)",
    )
    exp.set_defaults(func=cmd_explore)

    rep = sub.add_parser(
        "replay", help="rerun a recorded run exactly", parents=[common], formatter_class=formatter
    )
    rep.add_argument("file", help="a replay file (.replay.json) that explore wrote")
    rep.add_argument(
        "--impl",
        metavar="MODULE:FACTORY",
        help="run every device on this implementation instead of the one the file records",
    )
    rep.add_argument(
        "--cmd",
        metavar="COMMAND",
        help="run every device on this command line (PROTOCOL.md) instead of the implementation "
        "the file records",
    )
    rep.add_argument("--trace", help="write the trace (JSON lines) here")
    rep.add_argument("--report", help="write a timeline report (HTML) here")
    rep.set_defaults(func=cmd_replay)
    return top


CTRL_C_GRACE = 30.0
"""Seconds a stop after Ctrl-C may take (the summary, the files, the workers) before the
program leaves regardless; a second Ctrl-C leaves at once."""


def run() -> None:
    """The ``brh-sim`` program: :func:`main`, then exit with its code.

    Ctrl-C stops ``explore`` cleanly (the summary and the files of the seeds that finished, exit
    130), and that stop is bounded: the first Ctrl-C arms a watchdog that ends the process
    :data:`CTRL_C_GRACE` seconds later, whatever still runs; a second Ctrl-C ends it at once.
    If the stop left a worker pool that would not end (:data:`~simulator.cli.fleet.STUCK_POOLS`,
    which CPython's executor would join at exit), the program leaves without waiting for it."""
    signal.signal(signal.SIGINT, _on_ctrl_c)
    code = main()
    if STUCK_POOLS:
        _leave(code)
    sys.exit(code)


_ctrl_c_seen = threading.Event()


def _on_ctrl_c(signum: int, frame: object) -> None:
    if _ctrl_c_seen.is_set():
        _leave(130)
    _ctrl_c_seen.set()
    watchdog = threading.Timer(CTRL_C_GRACE, _leave, args=(130,))
    watchdog.daemon = True  # never what keeps the process alive
    watchdog.start()
    raise KeyboardInterrupt


def _leave(code: int) -> None:
    """Flush what was printed and end the process now (no exit handlers, no thread joins)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", False)  # -v given before or after the subcommand
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s %(message)s",
    )
    code: int = args.func(args)
    return code
