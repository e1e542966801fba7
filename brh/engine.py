"""The asyncio driver of a sync pass: it performs what :mod:`brh.machine` decides.

:class:`SyncEngine` runs :func:`brh.machine.sync_pass` and answers each effect it yields: reads
and transactions of the :class:`~brh.store.LocalStore`, requests to the vault, calls of the
app's callbacks, readings of the clocks, events for the listener and records for the ``brh``
logger. It makes no decision of its own but one: a context wiped (or a helper closed) while the
pass waited on the vault or the app gets no more writes from this pass (the machine is told
with :class:`~brh.machine.ContextReset`). When to run a pass is :mod:`brh.scheduler`'s business.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from brh import effects as fx
from brh.core import RULES, Action, Rules
from brh.entry import Entry, StuckEntry, SyncResult
from brh.events import Listener, SyncEvent
from brh.hlc import HybridClock
from brh.machine import sync_pass
from brh.options import SyncOptions
from brh.plan import ContextReset, Memory, Outcome, Plan
from brh.store import LocalStore
from brh.vault import Vault, VaultClock, VaultError

__all__ = ["IN_CALLBACK", "Callback", "Context", "SyncEngine"]

Callback = Callable[[Entry], bool | Awaitable[bool]]
"""An app callback: receives the remote entry, returns True (handled) or False (retry later)."""

IN_CALLBACK: contextvars.ContextVar[tuple[object, str] | None] = contextvars.ContextVar(
    "brh_in_callback", default=None
)
"""Set while a callback runs (and inherited by tasks it spawns): which helper, which context."""


@dataclass
class Context:
    name: str
    collection: str
    on_insert: Callback
    on_modify: Callback
    on_delete: Callback
    epoch: int = 0
    """Bumped by a wipe: a pass that began before it leaves the context alone."""


class SyncEngine:
    """Runs sync passes for one helper. ``owner`` identifies the helper in :data:`IN_CALLBACK`."""

    def __init__(
        self,
        *,
        owner: object,
        device_id: str,
        vault: Vault,
        store: LocalStore,
        contexts: dict[str, Context],
        clock: HybridClock,
        options: SyncOptions,
        closed: Callable[[], bool],
        listener: Listener | None = None,
        upload_delay: Callable[[int], float] = lambda refusals: 0.0,
        rules: Rules = RULES,
    ) -> None:
        self.owner = owner
        self.device_id = device_id
        self.vault = vault
        self.store = store
        self.contexts = contexts
        self.clock = clock
        self.options = options
        self.closed = closed
        self.listener = listener
        self.upload_delay = upload_delay
        self.rules = rules
        self._clocked = vault if isinstance(vault, VaultClock) else None
        """The vault, if it tells its time (checked once: a protocol check is slow)."""
        self.retrying = False
        """True while a retry series runs: repeated vault errors then log quietly."""
        self.memory = Memory()
        """What the passes remember between them (see :class:`brh.machine.Memory`)."""
        self._log = logging.getLogger("brh")
        self._epochs: dict[str, int] = {}
        """Each context's epoch when this pass began working on it."""
        self._handlers: dict[type[fx.Effect], Callable[[Any], Any]] = {
            fx.LoadState: self._load_state,
            fx.Local: lambda e: self.store.get(e.context, e.key),
            fx.LocalState: lambda e: self.store.state(e.context, e.key),
            fx.Pending: lambda e: self.store.pending(e.context),
            fx.StaleKeys: lambda e: self.store.stale_keys(e.context),
            fx.LiveSyncedKeys: lambda e: self.store.live_synced_keys(e.context),
            fx.Rejections: lambda e: self.store.rejections(e.context),
            fx.HasRefusals: lambda e: self.store.has_refusals(e.context),
            fx.Refusals: lambda e: self.store.refusals(e.context, e.key),
            fx.Stuck: lambda e: [] if self.closed() else self.stuck_in(e.context),
            fx.Now: lambda e: self.clock.now_ms(),
            fx.VaultTime: lambda e: self._vault_time(),
            fx.LoopTime: lambda e: asyncio.get_running_loop().time(),
            fx.Observe: self._observe,
            fx.SaveState: lambda e: self.store.save_context_state(e.state),
            fx.ApplyRemote: lambda e: self.store.apply_remote(
                e.record, e.expected, self.clock.last
            ),
            fx.SetBase: lambda e: self.store.set_base(
                e.context, e.key, e.base, pending=e.pending, clear_if_version=e.clear_if_version
            ),
            fx.MarkStale: lambda e: self.store.mark_stale(e.context, e.key, lost=e.lost),
            fx.ClearStale: lambda e: self.store.clear_stale(e.context, e.keys),
            fx.NoteRefusal: lambda e: self.store.note_refusal(e.context, e.key),
            fx.ClearRefusals: lambda e: self.store.clear_refusals(e.context, e.key),
            fx.NoteRejection: lambda e: self.store.note_rejection(
                e.context, e.key, e.version, e.reason, definite=e.definite
            ),
            fx.ClearRejection: lambda e: self.store.clear_rejection(e.context, e.key),
            fx.Requeue: lambda e: self.store.requeue(e.context, e.key),
            fx.RequeueAll: lambda e: self.store.requeue_all(e.context),
            fx.ForgetRemoteDeleted: lambda e: self.store.forget_remote_deleted(
                e.context, e.key, e.expected
            ),
            fx.PurgeTombstones: lambda e: self.store.purge_tombstones(e.context, e.older_than_ms),
            fx.Emit: self._emit,
            fx.Log: self._record,
        }

    def stuck(self) -> list[StuckEntry]:
        """Every context's stuck entries (see :meth:`stuck_in`)."""
        return [entry for name in self.contexts for entry in self.stuck_in(name)]

    def stuck_in(self, context: str) -> list[StuckEntry]:
        """Remote changes refused ``stuck_threshold`` times or more in a row (RETRY-3), then
        local changes the vault refused (RETRY-6: at once when it refused the document itself,
        else after ``stuck_threshold`` failures in a row)."""
        threshold = self.options.stuck_threshold
        found = [StuckEntry(context, key, n) for key, n in self.store.stuck(context, threshold)]
        found += [
            StuckEntry(context, r.key, r.refusals, "upload", r.reason)
            for r in self.store.rejections(context)
            if r.definite or r.refusals >= threshold
        ]
        return found

    async def run_pass(self, full: bool) -> SyncResult:
        """Run one pass over every context and report its outcome."""
        plan = Plan(
            contexts=[
                (name, self.contexts[name].collection)
                for name in self.rules.pass_order(list(self.contexts))
            ],
            full=full,
            options=self.options,
            rules=self.rules,
            memory=self.memory,
            quiet=self.retrying,
            upload_delay=self.upload_delay,
        )
        self._epochs = {}
        machine = sync_pass(plan)
        answer: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                effect = machine.send(answer) if thrown is None else machine.throw(thrown)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                self.memory = outcome.memory
                return outcome.result
            # (no reference to the thrown error is kept: its traceback holds this frame)
            answer, thrown = None, None
            kind = _KINDS[type(effect)]
            try:
                if kind is _Kind.READ:
                    answer = self._handlers[type(effect)](effect)
                elif kind is _Kind.WRITE:
                    self._check(effect.context)
                    answer = self._handlers[type(effect)](effect)
                else:  # the vault or the app: awaited, and a wipe may happen meanwhile
                    answer = await self._waited(effect, kind)
                    self._check(effect.context)
            except (VaultError, ContextReset) as exc:
                thrown = exc

    async def _waited(self, effect: fx.Effect, kind: _Kind) -> Any:
        if kind is _Kind.VAULT:
            return await self._request(effect)
        assert isinstance(effect, fx.Deliver)
        return await self._deliver(effect)

    def _check(self, context: str) -> None:
        """A wiped context (or a closed helper) gets nothing more from this pass (RES-2)."""
        ctx = self.contexts.get(context)
        if self.closed() or ctx is None or ctx.epoch != self._epochs.get(context, ctx.epoch):
            raise ContextReset()

    # -- answers ----------------------------------------------------------------------------

    def _load_state(self, effect: fx.LoadState) -> Any:
        self._epochs[effect.context] = self.contexts[effect.context].epoch
        return self.store.context_state(effect.context)

    def _vault_time(self) -> float | None:
        return None if self._clocked is None else self._clocked.vault_time()

    def _observe(self, effect: fx.Observe) -> None:
        self.clock.last = self.rules.observe(self.clock.last, effect.version)

    async def _request(self, effect: fx.Effect) -> Any:
        vault = self.vault
        if isinstance(effect, fx.Query):
            return await vault.query(
                effect.collection,
                effect.filter,
                sort=effect.sort,
                skip=effect.skip,
                limit=effect.limit,
                projection=effect.projection,
            )
        if isinstance(effect, fx.FindMany):
            return await vault.find_many(effect.collection, effect.filter)
        if isinstance(effect, fx.UpdateOne):
            return await vault.update_one(
                effect.collection, effect.filter, effect.update, upsert=effect.upsert
            )
        if isinstance(effect, fx.DeleteOne):
            return await vault.delete_one(effect.collection, effect.filter)
        if isinstance(effect, fx.DeleteMany):
            return await vault.delete_many(effect.collection, effect.filter)
        if isinstance(effect, fx.CreateCollection):
            return await vault.create_collection(effect.collection)
        raise TypeError(f"not a vault request: {effect!r}")

    async def _deliver(self, effect: fx.Deliver) -> object:
        """Call the app's callback; its answer, or the exception it raised (logged here)."""
        ctx = self.contexts[effect.context]
        callback = {
            Action.INSERT: ctx.on_insert,
            Action.MODIFY: ctx.on_modify,
            Action.DELETE: ctx.on_delete,
        }[effect.action]
        entry = self.rules.entry_for_app(effect.remote)  # with its own copy of the data (CB-9)
        token = IN_CALLBACK.set((self.owner, ctx.name))
        try:
            answer: Any = callback(entry)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            self._log.exception(
                "[%s] context %r: %s callback raised for key %r; treated as a refusal",
                self.device_id,
                ctx.name,
                effect.action.value,
                entry.key,
            )
            answer = exc.with_traceback(None)  # logged; its frames need not outlive the call
        finally:
            IN_CALLBACK.reset(token)
        return answer

    def _emit(self, effect: fx.Emit) -> None:
        if self.listener is None:
            return
        try:
            self.listener(SyncEvent(effect.kind, self.device_id, **effect.fields))
        except Exception:
            self._log.exception("[%s] the event listener raised; ignored", self.device_id)

    def _record(self, effect: fx.Log) -> None:
        if effect.level == logging.DEBUG and not self.options.debug:
            return
        self._log.log(effect.level, "[%s] " + effect.message, self.device_id, *effect.args)


class _Kind(enum.Enum):
    READ = "read"
    """Answered at once, changing nothing (store reads, clocks, events, log records)."""
    WRITE = "write"
    """A store transaction: not for a context wiped during the pass."""
    VAULT = "vault"
    APP = "app"


_KINDS: dict[type[fx.Effect], _Kind] = {
    **{kind: _Kind.WRITE for kind in fx.WRITES},
    **{kind: _Kind.VAULT for kind in fx.VAULT},
    fx.Deliver: _Kind.APP,
    **{
        kind: _Kind.READ
        for kind in (
            *fx.READS,
            fx.Stuck,
            fx.Now,
            fx.VaultTime,
            fx.LoopTime,
            fx.Observe,
            fx.Emit,
            fx.Log,
        )
    },
}
"""How the driver performs each kind of effect."""
