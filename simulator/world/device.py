"""A simulated device: one helper, an app model per context, a skewable clock, a local store
that survives crashes, and the verbs of a device's life (crash, restart, reinstall).

By default a device runs the reference helper (``brh``) on an in-memory store it owns; given a
``factory`` (see :mod:`simulator.impl`) it runs that implementation instead, its store in a
directory under ``workdir``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from brh import BackupRestoreHelper, Entry, RetryPolicy, SyncEvent
from brh.hlc import Version
from brh.store import LocalStore
from brh.vault import Vault
from simulator.impl import (
    Callback,
    Factory,
    Helper,
    Installation,
    ReferenceHelper,
    as_entry,
    delete_locally,
    local_holds,
    read_entry,
)
from simulator.wallclock import SystemClock
from simulator.world.app import AppModel, Behaviour
from simulator.world.clocks import SkewedClock
from simulator.world.crashpoints import DEVICE, CallbackTrap, CrashPoint, RequestTrap, StepTrap
from simulator.world.link import Link

__all__ = ["LastSync", "SimDevice"]

_GONE = object()
"""What `dict.pop` gives back for a key the app model does not show."""

WriteHook = Callable[["SimDevice", str, str, Version | None, bool, Any], None]
"""Called after each acknowledged app write (the version is None for a non-reference helper)."""


@dataclass(frozen=True)
class LastSync:
    """What a device's last ``sync()`` call saw: whether the pass completed, and how many
    callbacks its apps received while the call ran (refused ones included)."""

    completed: bool
    callbacks: int


class SimDevice:
    """A device running ``brh``. Build it inside a running (virtual-time) event loop.

    Its clock is a :class:`SkewedClock` (``offset`` sets its initial skew). ``put`` and
    ``remove`` act as the app would: change the app's own model, then tell the helper.
    ``crash()`` drops the helper and the app's in-memory state but keeps the local store exactly
    as committed; ``restart()`` starts a new helper on it; ``reinstall()`` starts over with an
    empty store and an empty app.
    """

    def __init__(
        self,
        name: str,
        vault: Vault,
        *,
        store: str | Path | LocalStore = ":memory:",
        contexts: tuple[str, ...] = ("notes",),
        offset: float = 0.0,
        clock: SkewedClock | None = None,
        on_write: WriteHook | None = None,
        observer: Callable[[SimDevice, str, str, Entry], None] | None = None,
        answered: Callable[[SimDevice, str, str, Entry, bool], None] | None = None,
        listener: Callable[[SyncEvent], None] | None = None,
        synced: Callable[[SimDevice, bool | None], None] | None = None,
        factory: Factory | None = None,
        workdir: Path | None = None,
        instances: int = 1,
        share_contexts: bool = False,
        system_clock: SystemClock | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(instances, int) or instances < 1:
            raise ValueError(f"device {name!r}: instances must be an int >= 1, got {instances!r}")
        if not isinstance(share_contexts, bool):
            raise ValueError(
                f"device {name!r}: share_contexts must be true or false, got {share_contexts!r}"
            )
        if factory is not None and workdir is None:
            raise ValueError(f"device {name!r}: a factory needs a workdir for its store")
        self.name = name
        self.vault = vault
        self.contexts = contexts
        self.clock = clock or SkewedClock(offset=offset)
        self.factory = factory
        """The implementation this device runs (None: the reference, in process)."""
        self.instances = instances
        """Helper instances sharing this device's local store; context number i (in
        registration order) goes to instance i mod ``instances``, unless ``share_contexts``."""
        self.share_contexts = share_contexts
        """Every instance registers every context and syncs it, as two processes of one app
        (say the app and its widget) would, each with its own helper on the one store; writes
        go to instance 0 unless :meth:`put` or :meth:`remove` name another."""
        self.workdir = workdir
        self.system_clock = system_clock
        """The frozen system clock of the world, if any (see :meth:`as_device`)."""
        self.installs = 1
        self.store = store if isinstance(store, LocalStore) else LocalStore(store)
        """The reference's local store: it outlives crashes (the device owns it, not the
        helper). A device running another implementation keeps its store in ``store_dir``."""
        self._on_write = on_write
        self._observer = observer
        self._answered = answered
        self._listener = listener
        self._synced = synced
        options.setdefault("retry", RetryPolicy(initial_delay=1, max_delay=60, jitter=0.5))
        # Simulated runs replay from their seeds: never the helper's OS-seeded default. One
        # generator for the device's life, so each installation draws a new incarnation.
        options.setdefault("rng", random.Random(name))
        self._options = options
        self._factory_options = MappingProxyType(
            {name: value for name, value in options.items() if name != "rng"}
        )
        """What a factory receives as ``Installation.options``: the helper options the
        in-process reference would get (the rng goes in ``Installation.rng``)."""
        self.running = False
        self._step_trap: StepTrap | None = None
        self.last_sync: LastSync | None = None
        """The outcome of this device's last :meth:`sync` call (None before the first)."""
        self.behaviours: dict[str, Behaviour] = {}
        self.apps: dict[str, AppModel] = {}
        self._start(fresh_apps=True)

    # -- life -------------------------------------------------------------------------------

    @property
    def options(self) -> MappingProxyType[str, Any]:
        """The helper options this device's helpers are built with (``rng`` included)."""
        return MappingProxyType(self._options)

    @property
    def reference(self) -> bool:
        """Whether this device runs the reference helper (whose internals checkers may read)."""
        return self.factory is None

    @property
    def helper(self) -> BackupRestoreHelper:
        """The reference helper this device runs (an error for another implementation)."""
        if self._brh is None:
            raise RuntimeError(
                f"device {self.name!r} runs {self.factory!r}, not the reference helper; "
                "use .impl (the simulator.impl.Helper API)"
            )
        return self._brh

    def _instance_listener(self, number: int) -> Callable[[SyncEvent], None] | None:
        """Instance 0 reports as the device; instance n > 0 as ``name#n`` (its own lane)."""
        listener = self._listener
        if listener is None or number == 0:
            return listener
        tag = f"{self.name}#{number}"
        return lambda event: listener(replace(event, device=tag))

    def helper_for(self, context: str) -> BackupRestoreHelper:
        """The reference helper instance that holds ``context``."""
        if not self._brhs:
            return self.helper  # raises: this device does not run the reference
        return self._brhs[self._instance_of(context)]

    def impl_for(self, context: str) -> Helper:
        """The helper instance that holds ``context``."""
        return self.impls[self._instance_of(context)]

    def instance_of(self, context: str) -> int:
        """The number of the helper instance that holds ``context`` (see ``instances``)."""
        return self._instance_of(context)

    def first_contexts(self) -> dict[str, int]:
        """The first context each helper instance registered -> the instance: a pass of that
        instance starts with it (SYNC-1)."""
        first: dict[str, int] = {}
        for context in self.contexts:
            holders = range(self.instances) if self.share_contexts else [self._instance_of(context)]
            for number in holders:
                if number not in first.values():
                    first.setdefault(context, number)
        return first

    def _instance_of(self, context: str) -> int:
        if self.share_contexts:
            return 0
        order = self.contexts.index(context) if context in self.contexts else 0
        return order % self.instances

    @property
    def store_dir(self) -> Path:
        """This installation's store directory (for a device running a factory)."""
        assert self.workdir is not None
        return self.workdir / f"{self.name}.{self.installs}"

    @contextmanager
    def as_device(self) -> Iterator[None]:
        """While the harness calls into this device's helper, the system clock reads this
        device's clock (when the world froze it: :mod:`simulator.wallclock`), and
        :data:`~simulator.world.crashpoints.DEVICE` names it (a step crash counts its tasks)."""
        token = DEVICE.set(self.name)
        try:
            with (
                nullcontext()
                if self.system_clock is None
                else self.system_clock.reading(self.clock)
            ):
                yield
        finally:
            DEVICE.reset(token)

    def _start(self, *, fresh_apps: bool) -> None:
        with self.as_device():
            self._start_helpers(fresh_apps=fresh_apps)

    def _start_helpers(self, *, fresh_apps: bool) -> None:
        self._brhs: list[BackupRestoreHelper] = []
        self.impls: list[Helper] = []
        """One helper per instance (see ``instances``); :attr:`impl` is the first."""
        for number in range(self.instances):
            if self.factory is None:
                brh = BackupRestoreHelper(
                    self.vault,
                    self.store,
                    device_id=self.name,
                    clock=self.clock,
                    listener=self._instance_listener(number),
                    **self._options,
                )
                self._brhs.append(brh)
                self.impls.append(ReferenceHelper(brh))
            else:
                rng = self._options.get("rng")
                seeded = rng if isinstance(rng, random.Random) else random.Random(self.name)
                self.store_dir.mkdir(parents=True, exist_ok=True)  # the harness makes it
                self.impls.append(
                    self.factory(
                        Installation(
                            vault=self.vault,
                            store=self.store_dir,
                            clock=self.clock,
                            device_id=self.name,
                            rng=seeded if number == 0 else random.Random(seeded.random()),
                            options=self._factory_options,
                        )
                    )
                )
        self._brh = self._brhs[0] if self._brhs else None
        self.impl: Helper = self.impls[0]
        self.running = True
        for context in self.contexts:
            app = self.apps.get(context) if not fresh_apps else None
            self.add_context(context, app)

    @property
    def offset(self) -> float:
        return self.clock.offset

    def add_context(self, context: str, app: AppModel | None = None) -> AppModel:
        if app is None:
            app = AppModel(behaviour=self.behaviours.setdefault(context, Behaviour()))
        if self._observer is not None:
            observer = self._observer
            app.observer = lambda kind, entry: observer(self, context, kind, entry)
        self.apps[context] = app
        if context not in self.contexts:
            self.contexts = (*self.contexts, context)
        holders = range(self.instances) if self.share_contexts else [self._instance_of(context)]
        for number in holders:
            if self.reference:
                self._brhs[number].add_sync_context(
                    context,
                    self._adapted(context, "insert", app.on_insert),
                    self._adapted(context, "modify", app.on_modify),
                    self._adapted(context, "delete", app.on_delete),
                )
            else:
                self.impls[number].add_sync_context(
                    context,
                    self._adapted(context, "insert", app.on_insert),
                    self._adapted(context, "modify", app.on_modify),
                    self._adapted(context, "delete", app.on_delete),
                )
        return app

    def kill(self) -> None:
        """The first, synchronous half of a crash an armed point fired (``world.crash_at``): an
        implementation run as a process is killed at once (it runs nothing more), the device
        counts as crashed; :meth:`crash` (which follows) stops an in-process one."""
        self.running = False
        for impl in self.impls:
            kill: Callable[[], None] | None = getattr(impl, "kill", None)
            if kill is not None:
                kill()

    def arm_crash(self, point: CrashPoint, fire: Callable[[], None]) -> None:
        """Arm a crash at ``point`` (see ``world.crash_at``), replacing any armed before;
        ``fire()`` is called when the device gets there."""
        self.disarm_crashes()
        if point.request is not None:
            if not isinstance(self.vault, Link):
                raise ValueError(f"crash_at: device {self.name!r} has no simulated link")
            self.vault.crash_trap = RequestTrap(point.request, point.applied, fire)
        elif point.callback is not None:
            trap = CallbackTrap(point.callback, point.applied, fire)
            for app in self.apps.values():
                app.crash_trap = trap
        elif point.line is not None:
            arm: Callable[[int, Callable[[], None]], None] | None = getattr(
                self.impl, "crash_after_lines", None
            )
            if arm is None or self.instances != 1:
                raise ValueError(
                    f"crash_at: device {self.name!r} runs {type(self.impl).__name__}, not one "
                    "implementation process (--brh-cmd): only a process writes lines; crash it "
                    "at a step, a request or a callback instead"
                )
            arm(point.line, fire)
        else:
            assert point.step is not None
            if any(hasattr(impl, "crash_after_lines") for impl in self.impls):
                raise ValueError(
                    f"crash_at: device {self.name!r} runs a process: its awaits are its own; "
                    "crash it after a line, a request or a callback instead"
                )
            self._step_trap = StepTrap(self.name, point.step, fire)
            self._step_trap.install(asyncio.get_running_loop())

    def disarm_crashes(self) -> None:
        """Forget the crash armed on this device, if it has not fired."""
        if isinstance(self.vault, Link):
            self.vault.crash_trap = None
        for app in self.apps.values():
            app.crash_trap = None
        for impl in self.impls:
            disarm: Callable[[], None] | None = getattr(impl, "disarm_crash", None)
            if disarm is not None:
                disarm()
        if self._step_trap is not None:
            self._step_trap.disarm()
            self._step_trap = None

    async def crash(self) -> None:
        """The process dies: timers and the running pass stop where they are (every store write
        is a transaction, so the store keeps exactly what was committed); the app's in-memory
        model is lost and rebuilt from the store on restart."""
        for impl in self.impls:
            await impl.close()
        self.running = False

    async def restart(self) -> None:
        """Start again on the same local store; the app reloads its model from the helper."""
        if self.running:
            raise RuntimeError(f"restart: device {self.name!r} is running; crash it first")
        self._start(fresh_apps=True)
        for context, app in self.apps.items():
            app.items = dict(self.local(context))

    async def reinstall(self) -> list[tuple[str, str, Version, Version | None]]:
        """Uninstall (store and app gone) and install again.

        Returns what it lost: ``(context, key, local version, vault version it last saw)`` of
        every entry with a change not yet uploaded.
        """
        if self.running:
            await self.crash()
        # only the reference's store can say what was not uploaded; another implementation's is
        # its own business (the black-box checker then treats the device's writes as optional)
        lost = (
            [(c, r.key, r.version, r.base) for c in self.contexts for r in self.store.pending(c)]
            if self.reference
            else []
        )
        self.store.close()
        self.store = LocalStore(":memory:")
        self.installs += 1
        self._start(fresh_apps=True)
        return lost

    # -- what the app does ------------------------------------------------------------------

    @property
    def app(self) -> AppModel:
        """The app model of the first context."""
        return next(iter(self.apps.values()))

    def _context(self, context: str | None) -> str:
        return context if context is not None else next(iter(self.apps))

    async def put(
        self, key: str, data: Any, context: str | None = None, *, instance: int | None = None
    ) -> None:
        """The app writes ``key``, through ``instance`` (see :attr:`share_contexts`)."""
        context = self._context(context)
        writer = self._writer(context, instance)
        app = self.apps[context]
        app.items[key] = data
        app.declined.discard(key)
        app.edits += 1
        app.edited[key] = app.edited.get(key, 0) + 1
        with self.as_device():
            await writer.upsert_database_entry(context, key, data)
        self._written(context, key, deleted=False, data=data)

    async def remove(
        self, key: str, context: str | None = None, *, instance: int | None = None
    ) -> None:
        """The app deletes ``key``, through ``instance`` (see :attr:`share_contexts`)."""
        context = self._context(context)
        writer = self._writer(context, instance)
        app = self.apps[context]
        if app.items.pop(key, _GONE) is not _GONE:  # deleting what it did not show edits nothing
            app.edited[key] = app.edited.get(key, 0) + 1
        app.declined.discard(key)
        app.edits += 1
        held = self.holds(context, key)
        with self.as_device():
            await writer.delete_database_entry(context, key)
        if held:
            self._written(context, key, deleted=True, data=None)

    async def forget(self, key: str, context: str | None = None) -> None:
        """The app drops ``key`` from this device only (``delete_database_entry(...,
        locally_only=True)``, SPEC API-3): the vault and the other devices keep it."""
        context = self._context(context)
        self.apps[context].items.pop(key, None)
        self.apps[context].declined.discard(key)
        await delete_locally(self.impl_for(context), context, key)

    async def get(self, key: str, context: str | None = None) -> Entry | None:
        """The helper's local live entry for ``key`` (``get_database_entry``, SPEC API-2), or
        None for a key absent or deleted locally."""
        context = self._context(context)
        return await read_entry(self.impl_for(context), context, key)

    def _writer(self, context: str, instance: int | None) -> Helper:
        """The helper instance an app write goes through."""
        if instance is None:
            return self.impl_for(context)
        if not 0 <= instance < self.instances:
            raise ValueError(
                f"device {self.name!r}: no instance {instance}; it runs {self.instances} "
                f"(numbered 0 to {self.instances - 1})"
            )
        if not self.share_contexts and instance != self._instance_of(context):
            raise ValueError(
                f"device {self.name!r}: instance {instance} does not hold context {context!r} "
                f"(instance {self._instance_of(context)} does; share_contexts is off)"
            )
        return self.impls[instance]

    def _written(self, context: str, key: str, *, deleted: bool, data: Any) -> None:
        if self._on_write is None:
            return
        if not self.reference:
            self._on_write(self, context, key, None, deleted, data)
            return
        record = self.helper.store.get(context, key)
        if record is not None:
            self._on_write(self, context, key, record.version, deleted, data)

    def local(self, context: str | None = None) -> dict[str, Any]:
        """The helper's live local copy of a context, key -> data."""
        context = self._context(context)
        return self.impl_for(context).local_entries(context)

    def _adapted(
        self, context: str, kind: str, callback: Callable[[Entry], bool | Awaitable[bool]]
    ) -> Callback:
        """An app callback for another implementation: it accepts what that implementation
        passes (see :func:`~simulator.impl.as_entry`) and reports each answer to ``answered``
        (the reference reports its callbacks as events instead)."""

        def adapted(value: Any) -> bool | Awaitable[bool]:
            entry = as_entry(value)
            result = callback(entry)
            if not isinstance(result, bool):
                return self._when_answered(context, kind, entry, result)
            self._report(context, kind, entry, result)
            return result

        return adapted

    async def _when_answered(
        self, context: str, kind: str, entry: Entry, pending: Awaitable[bool]
    ) -> bool:
        accepted = await pending
        self._report(context, kind, entry, accepted)
        return accepted

    def _report(self, context: str, kind: str, entry: Entry, accepted: bool) -> None:
        if self._answered is not None:
            self._answered(self, context, kind, entry, accepted)

    def holds(self, context: str, key: str) -> bool:
        """Whether the helper's local copy has a live entry ``key``.

        Asked before every callback (the CB-1..CB-3 checks), so it must not read the whole
        local copy: another implementation answers through its optional ``holds`` (see
        :func:`simulator.impl.local_holds`; only one without it is read in full)."""
        if self.reference:
            record = self.helper.store.get(context, key)
            return record is not None and not record.deleted
        return local_holds(self.impl_for(context), context, key)

    async def sync(self, *, full: bool = False) -> Any:
        """A pass (``full`` re-reads everything): the reference's :class:`brh.SyncResult`,
        another implementation's bool; both are truthy when the pass completed.

        Records :attr:`last_sync`."""
        apps = list(self.apps.values())
        before = sum(app.calls.total for app in apps)
        if self._synced is not None:
            self._synced(self, None)
        results: list[Any] = []
        for number in range(self.instances):  # each instance passes over its own contexts
            with self.as_device():
                if self._brhs:
                    results.append(await self._brhs[number].sync(full=full))
                else:
                    results.append(await self.impls[number].sync(full=full))
        result = next((r for r in results if not r), results[-1])
        self.last_sync = LastSync(bool(result), sum(app.calls.total for app in apps) - before)
        if self._synced is not None:
            self._synced(self, bool(result))
        return result

    def now(self) -> float:
        return asyncio.get_running_loop().time()
