"""Which sync helper a simulated device runs: the reference, or any other implementation.

The simulator drives a helper only through the original design's API (``add_sync_context``,
``upsert_database_entry``, ``delete_database_entry``, ``sync``, ``wipe_local_context_data``),
plus two things a harness needs: ``local_entries`` (the live local copy, to check convergence)
and ``close`` (a crash). That is :class:`Helper`. One more method is optional: ``holds(context,
key) -> bool``, whether the live local copy has ``key``; the callback-contract checks ask it on
every callback, and without it the harness reads the whole local copy each time
(:func:`local_holds`), which makes a large restore quadratic. Two more belong to the design's
API and are asked only by the tests of what they do (an implementation without them fails
those tests, with an error saying what is missing): ``delete_database_entry(context, key,
locally_only=True)`` (SPEC API-3: forget the local copy, the vault is not told; see
:func:`delete_locally`) and ``get_database_entry(context, key)`` (API-2: the local live entry or
None; see :func:`read_entry`).

An implementation is given to the simulator as a **factory**: a callable that receives an
:class:`Installation` (the harness's vault, a store directory that survives crashes and
restarts but not a reinstall, the device's clock, its id, a seeded random generator and the
helper options the world was asked for, which it may honour or ignore) and returns a
:class:`Helper`. It runs on the simulator's virtual-time event loop, so it must read
time only from ``installation.clock`` and the running loop, and draw randomness only from
``installation.rng``.

Factories are named ``package.module:attribute`` (:func:`load_factory`); the reference is
``conformance.implementations.reference:factory``. An implementation in any language runs as a
process speaking ``PROTOCOL.md``: :func:`load_command` makes the factory that starts it from a
command line (one process per installation, as ``pytest --pyargs conformance --brh-cmd`` does).
"""

from __future__ import annotations

import importlib
import inspect
import os
import random
import shlex
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from brh import BackupRestoreHelper, Entry
from brh.vault import Vault

__all__ = [
    "Callback",
    "Factory",
    "FactoryError",
    "Helper",
    "Installation",
    "MissingOperationError",
    "ReferenceHelper",
    "as_entry",
    "check_factory",
    "delete_locally",
    "load_command",
    "load_factory",
    "local_holds",
    "read_entry",
    "reference_factory",
]

Callback = Callable[[Any], bool | Awaitable[bool]]
"""An app callback: receives the remote entry, returns (or resolves to) True or False."""


@dataclass(frozen=True)
class Installation:
    """What the harness gives an implementation when a device installs or restarts it."""

    vault: Vault
    """The user's vault (behind this device's simulated network link)."""
    store: Path
    """A directory for the local store, made by the harness before the factory is called: kept
    across crashes and restarts, new on reinstall."""
    clock: Callable[[], float]
    """The device's wall clock, seconds since the epoch (skewed, drifting, jumping)."""
    device_id: str
    """A stable id for this installation's device."""
    rng: random.Random
    """The only source of randomness the implementation may use (seeded by the harness)."""
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """The helper options the world was asked for, by the reference's keyword names
    (:class:`brh.BackupRestoreHelper`'s: ``retry`` a :class:`brh.RetryPolicy`,
    ``full_sync_interval``, ``page_size``, ...): ``World(retry=..., helper_options=...)`` and
    ``add_device(..., **options)`` merged, the simulator's default retry policy included, as the
    in-process reference gets them (``rng`` is :attr:`rng`). The reference's factory honours
    them all; any other implementation may honour those it has an equivalent for and ignore
    the rest (the legacy baseline and a process speaking the protocol ignore them all)."""


@runtime_checkable
class Helper(Protocol):
    """The helper API a simulated device drives (the original design's, in Python names).

    An implementation may also define ``holds(context: str, key: str) -> bool``: whether its
    live local copy of ``context`` has ``key`` (tombstones do not count), the same answer as
    ``key in local_entries(context)`` without reading the whole context. It is optional (not a
    member of this protocol, so implementations without it still are Helpers); see
    :func:`local_holds`.
    """

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        """Register a context. Callbacks receive a :class:`brh.Entry` or a mapping with the
        original document fields (``key``, ``data``, ``creationDate``, ``modificationDate``,
        ``deletionDate``)."""
        ...

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None: ...

    async def delete_database_entry(self, context: str, key: str) -> None: ...

    async def sync(self, *, full: bool = False) -> bool:
        """One sync pass; True when it completed (no refusal, no error). ``full`` re-reads
        everything on the vault instead of what changed since the last pass."""
        ...

    async def wipe_local_context_data(self, context: str) -> None: ...

    def local_entries(self, context: str) -> dict[str, Any]:
        """The live local copy of a context: key -> data (tombstones left out)."""
        ...

    async def close(self) -> None:
        """Stop at once: the process dies (what was durably stored stays stored)."""
        ...


Factory = Callable[[Installation], Helper]


def local_holds(helper: Helper, context: str, key: str) -> bool:
    """Whether ``helper``'s live local copy of ``context`` has ``key``.

    One keyed lookup through the helper's optional ``holds(context, key)`` when it has one;
    otherwise ``key in helper.local_entries(context)``, which reads the whole context (the
    fallback that keeps implementations without ``holds`` working)."""
    keyed: Callable[[str, str], bool] | None = getattr(helper, "holds", None)
    if keyed is None:
        return key in helper.local_entries(context)
    return bool(keyed(context, key))


class MissingOperationError(TypeError):
    """The implementation lacks an operation of the design's API that a test needs."""


async def delete_locally(helper: Helper, context: str, key: str) -> None:
    """``helper.delete_database_entry(context, key, locally_only=True)`` (SPEC API-3): forget
    the local copy without telling the vault. :class:`MissingOperationError` if the
    implementation's delete takes no ``locally_only``."""
    delete: Callable[..., Awaitable[None]] = helper.delete_database_entry
    try:
        parameters = inspect.signature(delete).parameters
    except (TypeError, ValueError):  # no signature to read: try the call
        parameters = None
    if (
        parameters is not None
        and "locally_only" not in parameters
        and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    ):
        raise MissingOperationError(
            f"{type(helper).__name__}.delete_database_entry takes no locally_only argument "
            "(SPEC API-3: delete_database_entry(context, key, locally_only=True) forgets the "
            "local copy without telling the vault)"
        )
    await delete(context, key, locally_only=True)


async def read_entry(helper: Helper, context: str, key: str) -> Entry | None:
    """``helper.get_database_entry(context, key)`` (SPEC API-2) as a :class:`brh.Entry`, or
    None for a key absent or deleted locally. :class:`MissingOperationError` if the
    implementation has no ``get_database_entry``."""
    get: Callable[[str, str], Awaitable[Any]] | None = getattr(helper, "get_database_entry", None)
    if get is None:
        raise MissingOperationError(
            f"{type(helper).__name__} has no get_database_entry(context, key) (SPEC API-2: the "
            "local live entry, or nothing for a key absent or deleted locally)"
        )
    value = await get(context, key)
    return None if value is None else as_entry(value)


class FactoryError(ValueError):
    """A factory name that does not name a usable factory."""


def load_factory(spec: str) -> Factory:
    """The factory named ``package.module:attribute`` (a callable taking an Installation).

    The module is imported as ``python -m`` would: from the current directory too, so an
    implementation beside you needs no installing."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise FactoryError(
            f"implementation {spec!r}: expected 'package.module:factory', "
            "e.g. 'conformance.implementations.reference:factory'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(
            f"implementation {spec!r}: cannot import {module_name!r}: {exc}"
        ) from exc
    try:
        factory = getattr(module, attribute)
    except AttributeError:
        raise FactoryError(
            f"implementation {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        ) from None
    if not callable(factory):
        raise FactoryError(f"implementation {spec!r}: {attribute!r} is not callable")
    return factory  # type: ignore[no-any-return]


PROCESS_HARNESS = "conformance.protocol.client"
"""Where the harness side of the process protocol lives (``command_factory``). It belongs to
the conformance package, a layer above the simulator, so :func:`load_command` reaches it by name
at run time, as :func:`load_factory` reaches any implementation: nothing here imports it."""


def load_command(command: str) -> Factory:
    """The factory that runs ``command`` (a shell-style command line) as a process speaking
    ``PROTOCOL.md``, one process per device installation and restart, exactly as the
    conformance suite's ``--brh-cmd`` starts it.

    :class:`FactoryError` for a command that is empty, that does not split (an unclosed
    quote), or whose program is not on ``PATH`` or not executable; the process itself is not
    started here (:func:`check_factory` does, to see that it speaks the protocol)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise FactoryError(f"command {command!r} does not split into arguments: {exc}") from None
    if not argv:
        raise FactoryError("the command is empty (expected e.g. 'node helper.js')")
    if shutil.which(argv[0]) is None:
        raise FactoryError(f"cannot run {argv[0]!r}: no such program on PATH, or not executable")
    try:
        harness = importlib.import_module(PROCESS_HARNESS)
    except ImportError as exc:  # a simulator installed without its conformance package
        raise FactoryError(f"the process protocol's harness cannot be imported: {exc}") from exc
    factory: Factory = harness.command_factory(argv)
    return factory


_METHODS: tuple[tuple[str, bool, tuple[str, ...], dict[str, Any]], ...] = (
    # name, a coroutine?, positional arguments a harness passes, keyword arguments it passes
    ("add_sync_context", False, ("name", "on_insert", "on_modify", "on_delete"), {}),
    ("upsert_database_entry", True, ("context", "key", "data"), {}),
    ("delete_database_entry", True, ("context", "key"), {}),
    ("sync", True, (), {"full": True}),
    ("wipe_local_context_data", True, ("context",), {}),
    ("local_entries", False, ("context",), {}),
    ("close", True, (), {}),
)
"""The :class:`Helper` API as the harness calls it."""


def helper_problems(helper: object) -> list[str]:
    """What is wrong with ``helper`` as a :class:`Helper`, one line per method (empty: nothing):
    a method missing, a coroutine where a plain method is called or the reverse, or a signature
    that does not take the arguments the harness passes (``sync(full=True)``, say)."""
    problems: list[str] = []
    for name, coroutine, args, kwargs in _METHODS:
        method = getattr(helper, name, None)
        if method is None:
            problems.append(f"{name}: missing")
            continue
        if not callable(method):
            problems.append(f"{name}: not a method ({type(method).__name__})")
            continue
        if inspect.iscoroutinefunction(method) != coroutine:
            want = "a coroutine (async def)" if coroutine else "a plain method (def, not async)"
            problems.append(f"{name}: must be {want}")
        try:
            inspect.signature(method).bind(*args, **kwargs)
        except TypeError as exc:
            call = ", ".join([*args, *(f"{k}=..." for k in kwargs)])
            problems.append(f"{name}: cannot be called as {name}({call}): {exc}")
        except ValueError:
            pass  # no signature to read (a builtin): the call itself will tell
    holds = getattr(helper, "holds", None)
    if holds is not None:
        if inspect.iscoroutinefunction(holds):
            problems.append("holds (optional): must be a plain method (def, not async)")
        else:
            try:
                inspect.signature(holds).bind("context", "key")
            except TypeError as exc:
                problems.append(f"holds (optional): cannot be called as holds(context, key): {exc}")
            except ValueError:
                pass
    return problems


def check_factory(factory: Factory, name: str) -> None:
    """Build one helper with ``factory`` on a throwaway vault and store, check its API
    (:func:`helper_problems`) and close it; :class:`FactoryError` naming every problem (and
    ``name``, the factory's name) if there is one. Harnesses call this before their first test,
    so a wrong method is one clear error instead of a failure per test."""
    from hivevault import FakeVault
    from simulator.timeloop import run

    async def probe(folder: str) -> list[str]:
        installation = Installation(
            vault=FakeVault(clock=lambda: 1_750_000_000.0),
            store=Path(folder) / "probe",
            clock=lambda: 1_750_000_000.0,
            device_id="probe",
            rng=random.Random(0),
        )
        installation.store.mkdir()
        try:
            helper = factory(installation)
        except Exception as exc:
            return [f"the factory raised {type(exc).__name__}: {exc}"]
        problems = helper_problems(helper)
        close = getattr(helper, "close", None)
        if close is not None and inspect.iscoroutinefunction(close):
            try:
                await close()
            except Exception as exc:
                problems.append(f"close: raised {type(exc).__name__}: {exc}")
        return problems

    folder = tempfile.mkdtemp(prefix="brh-probe-")
    problems = run(probe(folder), start=1_750_000_000.0)
    if not problems:
        shutil.rmtree(folder, ignore_errors=True)
        return
    # kept: the error may name a log in it (a process's stderr)
    if problems[0].startswith("the factory raised"):
        head = f"implementation {name!r} could not be started"
    else:
        head = (
            f"implementation {name!r} does not offer the helper API the harness drives "
            "(simulator.impl.Helper)"
        )
    raise FactoryError(f"{head}:\n  " + "\n  ".join(problems) + f"\n  (its files: {folder})")


def as_entry(value: Any) -> Entry:
    """A callback's argument as a :class:`brh.Entry` (an Entry, or an original-style document)."""
    if isinstance(value, Entry):
        return value
    if isinstance(value, Mapping):
        return Entry(
            key=str(value["key"]),
            data=value.get("data"),
            creation_date=int(value.get("creationDate") or 0),
            modification_date=int(value.get("modificationDate") or 0),
            deletion_date=value.get("deletionDate"),
        )
    raise TypeError(f"a callback received {value!r}: expected a brh.Entry or a document mapping")


class ReferenceHelper:
    """:class:`brh.BackupRestoreHelper` seen through :class:`Helper`."""

    def __init__(self, helper: BackupRestoreHelper) -> None:
        self.brh = helper

    def add_sync_context(
        self, name: str, on_insert: Callback, on_modify: Callback, on_delete: Callback
    ) -> None:
        self.brh.add_sync_context(name, on_insert, on_modify, on_delete)

    async def upsert_database_entry(self, context: str, key: str, data: Any) -> None:
        await self.brh.upsert_database_entry(context, key, data)

    async def delete_database_entry(
        self, context: str, key: str, *, locally_only: bool = False
    ) -> None:
        await self.brh.delete_database_entry(context, key, locally_only=locally_only)

    async def get_database_entry(self, context: str, key: str) -> Entry | None:
        return await self.brh.get_database_entry(context, key)

    async def sync(self, *, full: bool = False) -> bool:
        return (await self.brh.sync(full=full)).completed

    async def wipe_local_context_data(self, context: str) -> None:
        await self.brh.wipe_local_context_data(context)

    def local_entries(self, context: str) -> dict[str, Any]:
        return {r.key: r.data for r in self.brh.store.entries(context)}

    def holds(self, context: str, key: str) -> bool:
        """Whether the local store has a live entry ``key`` (one indexed lookup)."""
        state = self.brh.store.state(context, key)
        return state is not None and not state.deleted

    async def close(self) -> None:
        await self.brh.close()


def reference_factory(installation: Installation, **options: Any) -> ReferenceHelper:
    """The reference helper, its SQLite store in ``installation.store``, with the installation's
    helper options (``installation.options``; ``options`` given here take precedence)."""
    installation.store.mkdir(parents=True, exist_ok=True)
    helper = BackupRestoreHelper(
        installation.vault,
        installation.store / "brh.sqlite3",
        device_id=installation.device_id,
        clock=installation.clock,
        rng=installation.rng,
        **{**installation.options, **options},
    )
    return ReferenceHelper(helper)
