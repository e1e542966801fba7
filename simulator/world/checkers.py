"""Checkers: what must hold on every run, each naming the SPEC clause it guards.

Safety checks run as the run goes (the callback contract, retry liveness); the end-of-run checks
(convergence, no lost update, cost) run after the world's settle phase. A failure is a
:class:`Finding` that names the clause, the device, the context, the key and the simulated time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brh import Entry, RetryPolicy, SyncEvent
from brh.hlc import Version
from brh.vault import VaultError
from simulator.world.passes import PASS_FAILURES, READS, Lane, LinkWatch

if TYPE_CHECKING:
    from simulator.world import World

__all__ = ["ABSENT", "BlindWrite", "Checker", "Finding", "Write"]


@dataclass(frozen=True)
class Finding:
    checker: str
    clause: str
    time: float
    message: str
    device: str | None = None
    context: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = "/".join(p for p in (self.device, self.context, self.key) if p)
        return f"[{self.clause}] {self.checker} at t={self.time:.3f}s {where}: {self.message}"


@dataclass
class Write:
    """An acknowledged write: the app's call returned, so it must never be lost."""

    device: str
    context: str
    key: str
    version: Version
    deleted: bool
    data: Any
    abandoned: bool = False
    """Lost on purpose: the device was reinstalled before uploading it."""


@dataclass(frozen=True, slots=True)
class BlindWrite:
    """An acknowledged write of an implementation whose versions the checker cannot read.

    Its ancestors are the writes of the same key its device had seen when it wrote (its own
    earlier ones, and those whose value a callback it accepted carried): this write supersedes
    them, whatever clocks say. Writes neither side had seen are concurrent. ``parents`` holds
    the latest of them, from which :meth:`Checker.ancestors` finds the others (keeping them
    all in each write would make the checker's memory grow with the square of the writes).
    """

    seq: int
    device: str
    context: str
    key: str
    deleted: bool
    data: Any
    parents: tuple[int, ...]


@dataclass
class _DeviceWatch:
    written: dict[str, dict[str, str]] = field(default_factory=dict)
    """The newest version this installation wrote of each key, per context (a reinstall or a
    wipe forgets them: the restore that follows legitimately delivers them back)."""


@dataclass
class Checker:
    world: World
    findings: list[Finding] = field(default_factory=list)
    ledger: dict[tuple[str, str], list[Write]] = field(default_factory=dict)
    """(context, key) -> the acknowledged writes that may still decide its final value: a write
    older than one the vault took (``pushed``) never can, nor can an abandoned one the vault
    does not hold once no late request can bring it (:meth:`decide_abandoned`); both are
    dropped, so the ledger stays as small as the key space and what is not uploaded yet,
    however long the run."""
    watches: dict[str, _DeviceWatch] = field(default_factory=dict)
    blind: list[BlindWrite] = field(default_factory=list)
    """Every blind write, by ``seq``."""
    blind_by_key: dict[tuple[str, str], list[BlindWrite]] = field(default_factory=dict)
    """(context, key) -> its blind writes, in order."""
    seen: dict[tuple[str, str, str], set[int]] = field(default_factory=dict)
    """(device, context, key) -> the latest blind writes that device has seen: they and their
    ancestors are all it has seen of the key."""
    optional: set[int] = field(default_factory=set)
    """Blind writes that may be lost legitimately (their installation was wiped or replaced
    before anyone else saw them)."""
    lanes: dict[str, Lane] = field(default_factory=dict)
    """device -> its passes and retries as the harness sees them (any implementation)."""
    undecided: list[tuple[str, list[Write]]] = field(default_factory=list)
    """(device, writes) a reinstall abandoned, while a request of the device's old
    installation may still reach the vault (see :meth:`decide_abandoned`)."""

    def fail(
        self,
        checker: str,
        clause: str,
        message: str,
        causes: list[dict[str, Any]] | None = None,
        /,
        **where: str | None,
    ) -> None:
        """Record a finding and trace it. ``causes`` names the trace events that caused it (the
        write whose update was lost, the callback that delivered the wrong thing), each as the
        ``kind`` and the fields a trace line of that kind carries: the timeline report marks the
        latest such event at or before the finding."""
        finding = Finding(checker, clause, self.world.now(), message, **where)
        self.findings.append(finding)
        extra: dict[str, Any] = {"causes": causes} if causes else {}
        self.world.trace.emit(
            "check",
            checker=checker,
            clause=clause,
            message=message,
            **{k: v for k, v in where.items() if v is not None},
            **extra,
        )

    # -- during the run ---------------------------------------------------------------------

    @property
    def writes(self) -> list[Write]:
        """Every write in the ledger."""
        return [w for writes in self.ledger.values() for w in writes]

    def record_write(self, write: Write) -> None:
        self.ledger.setdefault((write.context, write.key), []).append(write)
        watch = self.watches.setdefault(write.device, _DeviceWatch())
        watch.written.setdefault(write.context, {})[write.key] = write.version.encode()

    def _uploaded(self, context: str, key: str, version: str) -> None:
        """The vault took ``version`` of a key: no reinstall can abandon it any more, so no
        older write of the key can be the final value; forget them."""
        writes = self.ledger.get((context, key))
        if writes:
            writes[:] = [w for w in writes if w.version.encode() >= version]

    # -- implementations other than the reference: causality from what the apps saw ----------

    def ancestors(self, seqs: Iterable[int]) -> set[int]:
        """The blind writes ``seqs`` and all their ancestors."""
        found: set[int] = set()
        stack = list(seqs)
        while stack:
            seq = stack.pop()
            if seq not in found:
                found.add(seq)
                stack.extend(self.blind[seq].parents)
        return found

    def record_blind_write(
        self, device: str, context: str, key: str, *, deleted: bool, data: Any
    ) -> None:
        key = sys.intern(key)  # one string per key, however many writes keep it
        seen = self.seen.get((device, context, key), set())
        write = BlindWrite(
            len(self.blind), device, context, key, deleted, data, tuple(sorted(seen))
        )
        self.blind.append(write)
        self.blind_by_key.setdefault((context, key), []).append(write)
        self.seen[(device, context, key)] = {write.seq}  # it supersedes all the device had seen

    def record_delivery(
        self, device: str, context: str, kind: str, entry: Entry, accepted: bool
    ) -> None:
        """A callback the app accepted: the device has now seen the write it carried. Only an
        unambiguous match counts (several writes of the same value: none is assumed seen),
        which keeps the check sound: it may miss a lost update, never invent one."""
        if not accepted:
            return
        deleted = kind == "delete"
        matches = [
            w
            for w in self.blind_by_key.get((context, entry.key), ())
            if w.deleted == deleted and (deleted or w.data == entry.data)
        ]
        if len(matches) == 1:
            seq = matches[0].seq
            seen = self.seen.setdefault((device, context, entry.key), set())
            if not self._reaches(seen, {seq}):  # not seen yet, even through a later write
                seen -= self._reaches([seq], seen)  # those are seen through this one now
                seen.add(seq)

    def _reaches(self, starts: Iterable[int], targets: set[int]) -> set[int]:
        """Those of ``targets`` that are among ``starts`` or their ancestors. A write's
        ancestors came before it (smaller ``seq``), so the search stops below the lowest
        target, and once all are found."""
        if not targets:
            return set()
        lowest = min(targets)
        found: set[int] = set()
        visited: set[int] = set()
        stack = list(starts)
        while stack and len(found) < len(targets):
            seq = stack.pop()
            if seq in visited or seq < lowest:
                continue
            visited.add(seq)
            if seq in targets:
                found.add(seq)
            stack.extend(self.blind[seq].parents)
        return found

    def forget_installation(
        self, device: str, context: str | None = None, key: str | None = None
    ) -> None:
        """A reinstall (or a wipe of ``context``, or a local-only delete of ``key`` in it):
        what the device had seen is forgotten, and its writes nobody else had seen may be
        lost."""
        for name, ctx, seen_key in list(self.seen):
            if name == device and context in (None, ctx) and key in (None, seen_key):
                del self.seen[(name, ctx, seen_key)]
        for (ctx, written_key), writes in self.blind_by_key.items():
            if key is not None and written_key != key:
                continue
            mine = [w for w in writes if w.device == device and context in (None, ctx)]
            if not mine:
                continue
            elsewhere = self.ancestors(
                seq
                for (name, seen_ctx, seen_key), seen in self.seen.items()
                if name != device and seen_ctx == ctx and seen_key == written_key
                for seq in seen
            )
            self.optional.update(w.seq for w in mine if w.seq not in elsewhere)

    def _check_causal(self, context: str) -> None:
        """ORD-2, ORD-3 without versions: the final value of each key is one of the writes that
        no kept write superseded. A device that saw a write and then wrote the key again meant
        to replace it, so the replaced write must not win; concurrent writes may."""
        truth = self._truth(context)
        keys = sorted(key for ctx, key in self.blind_by_key if ctx == context)
        for key in keys:
            writes = self.blind_by_key[(context, key)]
            kept = [w for w in writes if w.seq not in self.optional]
            if not kept:
                continue
            superseded = self.ancestors(parent for w in kept for parent in w.parents)
            allowed = [w for w in writes if w.seq not in superseded]
            outcomes = [_ABSENT if w.deleted else w.data for w in allowed]
            final = truth.get(key, _ABSENT)
            if final not in outcomes:
                newest = [w for w in allowed if w.seq not in self.optional]
                described = ", ".join(
                    f"{'delete' if w.deleted else repr(w.data)} by {w.device}" for w in newest
                )
                self.fail(
                    "no lost update",
                    "ORD-2",
                    f"final state {final!r} is a write a later one superseded, or none at all; "
                    f"expected one of: {described}",
                    [_write_cause(w, context) for w in newest],
                    context=context,
                    key=key,
                )

    def abandon_pending(
        self, device: str, pending: list[tuple[str, str, Version, Version | None]]
    ) -> None:
        """A reinstall drops the device's writes that never reached the vault: for each entry
        with a pending change, every write of it after the version last seen on the vault."""
        abandoned = []
        for context, key, version, base in pending:
            for write in self.ledger.get((context, key), ()):
                if (
                    write.device == device
                    and write.version <= version
                    and (base is None or write.version > base)
                ):
                    write.abandoned = True
                    abandoned.append(write)
        if abandoned and self._reads_the_fake_vault():
            self.undecided.append((device, abandoned))

    def _reads_the_fake_vault(self) -> bool:
        """Whether the vault's documents can be read in the reference's format."""
        return self.world.factory is None and not self.world.server.live

    def decide_abandoned(self) -> None:
        """Forget the abandoned writes that can no longer become the final value.

        An abandoned write can only be the final value if it reached the vault: its request's
        answer was lost, or the request is still on its way. A crash stops every request of the
        old installation but those already late (the client gave up, the request still
        travels: :attr:`~simulator.world.link.Link.late`). Once none is left, a write the vault does
        not hold never reached it, or a newer version of its key replaced it there (the vault
        only ever takes newer versions of a key, as :meth:`_uploaded` relies on too): either
        way it cannot be the final value, and is dropped. What stays is at most what the vault
        holds, so the ledger stays bounded by the key space even when a reinstall abandons
        writes newer than anything uploaded later (a device clock far ahead).
        """
        if not self.undecided:
            return
        waiting: list[tuple[str, list[Write]]] = []
        for device, writes in self.undecided:
            link = self.world.links.get(device)
            if link is not None and link.late:
                waiting.append((device, writes))
                continue
            held = self._vault_versions({w.context for w in writes})
            for write in writes:
                if write.version.encode() not in held.get((write.context, write.key), ()):
                    kept = self.ledger.get((write.context, write.key))
                    if kept is not None:
                        kept[:] = [w for w in kept if w is not write]
        self.undecided = waiting

    def _vault_versions(self, contexts: set[str]) -> dict[tuple[str, str], set[str]]:
        """(context, key) -> the versions of the key the fake vault holds."""
        vault = self.world.server.vault
        names = set(vault.collection_names())
        held: dict[tuple[str, str], set[str]] = {}
        for context in sorted(contexts):
            if "backup_" + context not in names:
                continue
            for doc in vault.documents("backup_" + context):
                key, version = doc.get("key"), doc.get("brhVersion")
                if isinstance(key, str) and isinstance(version, str):
                    held.setdefault((context, key), set()).add(version)
        return held

    def before_callback(self, device: str, context: str, kind: str, entry: Entry) -> None:
        """CB-1..CB-3: the callback fits what the device holds (checked before it applies)."""
        self._check_refusal(device, context, kind, entry.key)
        self._check_blind_echo(device, context, kind, entry)
        holds = self.world.devices[device].holds(context, entry.key)
        where = {"device": device, "context": context, "key": entry.key}
        causes = [{"kind": "callback", **where, "action": kind}]
        if kind == "insert" and holds:
            self.fail(
                "callback contract",
                "CB-1",
                "insertion for a key the device holds",
                causes,
                **where,
            )
        if kind in ("modify", "delete") and not holds:
            clause = "CB-2" if kind == "modify" else "CB-3"
            self.fail(
                "callback contract",
                clause,
                f"{kind} for a key the device does not hold",
                causes,
                **where,
            )

    def on_event(self, event: SyncEvent) -> None:
        watch = self.watches.setdefault(event.device, _DeviceWatch())
        where = {"device": event.device, "context": event.context, "key": event.key}
        if event.kind == "pushed" and event.context and event.key and event.version:
            self._uploaded(event.context, event.key, event.version)
        elif event.kind == "callback":
            owner = self.watches.get(_device(event.device), watch)  # instances share writes
            own = owner.written.get(event.context or "", {})
            if event.version is not None and own.get(event.key or "") == event.version:
                self.fail(
                    "callback contract",
                    "CB-4",
                    f"the device was told about its own write {event.version} (echo)",
                    [{"kind": "callback", **where, "version": event.version}],
                    **where,
                )

    # -- passes and retries, as the harness sees them (any implementation) ------------------

    def _lane(self, device: str) -> Lane:
        lane = self.lanes.get(device)
        if lane is None:
            lane = self.lanes[device] = Lane()
        return lane

    def _instance(self, device: str, context: str) -> int | None:
        """The helper instance of ``device`` that passes over ``context`` (None: several
        instances share every context, so a callback cannot be told to one of them)."""
        sim = self.world.devices.get(device)
        if sim is None:
            return None
        if sim.share_contexts and sim.instances > 1:
            return None
        return sim.instance_of(context)

    def link_watcher(self, device: str) -> LinkWatch:
        return LinkWatch(self, device)  # told of each request ``device`` sends, each failure

    def request_sent(
        self, device: str, op: str, collection: str | None, filter: Mapping[str, Any] | None
    ) -> None:
        """A pass starts with its first context (SYNC-1): with a pull of that context's
        collection (a read whose filter names no key) or, before the collection exists, its
        creation (DATA-1). Such a request is the observable start of a pass of the helper
        instance that holds that context: it ends the refusal of the instance's previous pass
        (CB-6) and answers a pending retry (RETRY-1)."""
        if collection is None or not collection.startswith("backup_"):
            return
        if op == "create_collection":
            pass
        elif op not in READS or (filter is not None and isinstance(filter.get("key"), str)):
            return
        sim = self.world.devices.get(device)
        if sim is None:
            return
        context = collection.removeprefix("backup_")
        first = sim.first_contexts()
        if context not in first:
            return
        lane = self._lane(device)
        lane.refused.discard(first[context])
        lane.retry_since = None
        lane.pass_started_at = self.world.now()
        lane.passes_since_call += 1

    def request_failed(self, device: str, op: str, error: VaultError) -> None:
        """RETRY-1: a request of a pass failed because of a fault (the network lost it, the
        vault failed, refused the token or is frozen): that pass does not complete, and the
        helper must try again by itself. (Failures a helper may tolerate without failing its
        pass, such as an "already exists" or a failed tombstone purge, arm nothing.)"""
        if op in ("delete_one", "delete_many") or not isinstance(error, PASS_FAILURES):
            return
        self._arm_retry(device, f"{op} failed ({type(error).__name__})")

    def callback_answered(self, device: str, context: str, kind: str, key: str, ok: bool) -> None:
        """CB-6, RETRY-1: a refusal ends the pass (no further callback in it) and arms the
        retry."""
        if ok:
            return
        instance = self._instance(device, context)
        if instance is not None:
            self._lane(device).refused.add(instance)
        self._arm_retry(device, f"the app refused the {kind} of {key!r} in {context!r}")

    def sync_called(self, device: str) -> None:
        """The harness calls ``sync()``: an outside trigger, no retry is owed any more."""
        lane = self._lane(device)
        lane.retry_since = None
        lane.syncs_waiting += 1
        lane.sync_called_at, lane.passes_since_call = self.world.now(), 0

    def sync_returned(self, device: str, completed: bool) -> None:
        """RETRY-1: a ``sync()`` reporting an incomplete pass arms the retry, unless another one
        still waits (an outside trigger) or the next pass started (at once, or more passes than
        the device has helpers since the call); a completed one owes none."""
        lane = self._lane(device)
        lane.syncs_waiting = max(0, lane.syncs_waiting - 1)
        started, called = lane.pass_started_at, lane.sync_called_at or 0.0
        next_one = started == self.world.now() and started > called  # (queued meanwhile)
        sim = self.world.devices.get(device)
        if completed or sim is None or not sim.running:  # (a crash ends what a pass owed)
            lane.retry_since = None
        elif not (lane.syncs_waiting or next_one or lane.passes_since_call > sim.instances):
            self._arm_retry(device, "sync() reported an incomplete pass")

    def _arm_retry(self, device: str, why: str) -> None:
        lane = self._lane(device)
        if lane.retry_since is None:
            lane.retry_since = self.world.now()
            lane.retry_why = why

    def _check_blind_echo(self, device: str, context: str, kind: str, entry: Entry) -> None:
        """CB-4 without versions: a modification handing the app what its model holds, the
        device's own latest write of the key that no other write carried, is an echo."""
        sim = self.world.devices.get(device)
        if kind != "modify" or sim is None or sim.reference or sim.instances > 1:
            return
        app = sim.apps.get(context)
        if app is None or entry.key not in app.items or app.items[entry.key] != entry.data:
            return
        writes = self.blind_by_key.get((context, entry.key), ())
        mine = [w for w in writes if w.device == device]
        same = [w for w in writes if not w.deleted and w.data == entry.data]
        if len(same) == 1 and mine and same[0] is mine[-1] and same[0].seq not in self.optional:
            where = {"device": device, "context": context, "key": entry.key}
            self.fail(
                "callback contract",
                "CB-4",
                f"the device was told about its own write of {entry.data!r} (echo)",
                [{"kind": "callback", **where, "action": kind}],
                **where,
            )

    def _check_refusal(self, device: str, context: str, kind: str, key: str) -> None:
        """CB-6: no callback after a refusal before the instance's next pass starts."""
        instance = self._instance(device, context)
        if instance is None or instance not in self._lane(device).refused:
            return
        where = {"device": device, "context": context, "key": key}
        self.fail(
            "callback contract",
            "CB-6",
            f"{kind} of {key!r} delivered after a refusal, before any new pass started (no "
            "pull of the instance's first context since the refusal)",
            [{"kind": "callback", **where, "action": kind}],
            **where,
        )

    def check_retries(self) -> None:
        """RETRY-1: after a failed pass (a refusal, a fault failing a request, ``sync()``
        reporting it incomplete) the helper starts a new pass by itself, with no ``sync()`` from
        the harness: within the retry policy's ``max_delay`` (the larger of the device's and
        the SPEC's default, 300 s, for an implementation that keeps its own) after its last
        request could have ended (sent + the link's timeout), plus one second."""
        now = self.world.now()
        for name, lane in self.lanes.items():
            device = self.world.devices.get(name)
            if lane.retry_since is None:
                continue
            if device is None or not device.running:
                lane.retry_since = None
                continue
            link = self.world.links[name]
            last_end = (
                link.sent_at - self.world.start + link.timeout if link.sent_at is not None else 0.0
            )
            policy = device.options.get("retry")
            bound = max(
                policy.max_delay if isinstance(policy, RetryPolicy) else 0.0,
                RetryPolicy().max_delay,
            )
            deadline = max(lane.retry_since, last_end) + bound + 1.0
            if now > deadline:
                self.fail(
                    "retry liveness",
                    "RETRY-1",
                    f"no new pass within {bound:.0f} s after a failed one ({lane.retry_why} at "
                    f"t={lane.retry_since:.3f}s): the device sent no request of a new pass by "
                    "itself",
                    device=name,
                )
                lane.retry_since = None

    def forget_device(self, name: str, *, reinstalled: bool = False) -> None:
        """A crash ends the device's passes; a reinstall also ends its installation."""
        self.lanes.pop(name, None)
        for key in [k for k in self.watches if _device(k) == name]:
            written = {} if reinstalled else self.watches[key].written
            self.watches[key] = _DeviceWatch(written=written)

    def forget_key(self, name: str, context: str, key: str) -> None:
        """The device forgot ``key`` locally (API-3): a pass that restores it delivers the
        device's own write back as an insertion, which is no echo; and a write of it the device
        had not uploaded may be lost (see :meth:`forget_installation`)."""
        watch = self.watches.get(name)
        if watch is not None:
            watch.written.get(context, {}).pop(key, None)
        self.forget_installation(name, context, key)

    def forget_context(self, name: str, context: str) -> None:
        """The device wiped a context: its restore will deliver the device's own old writes."""
        watch = self.watches.get(name)
        if watch is not None:
            watch.written.pop(context, None)

    # -- after the settle phase -------------------------------------------------------------

    def check_end(self) -> None:
        self.check_retries()
        for context in self.world.contexts:
            self._check_convergence(context)
            self._check_no_lost_update(context)
            self._check_causal(context)

    def _check_convergence(self, context: str) -> None:
        """SYNC-1, CB-5: every device's local copy and app model equal the vault's live set
        (see :meth:`_outcomes`)."""
        for name, key, what, held, live in self._differences(context):
            write = {"kind": "write", "context": context, "key": key}  # the latest, anywhere
            seen = {**write, "kind": "callback", "device": name}  # its latest on this device
            self.fail(
                "convergence",
                "SYNC-1" if what == "local copy" else "CB-5",
                f"{what} {held!r} != vault {live!r}",
                [write, seen],
                device=name,
                context=context,
                key=key,
            )

    def divergence(self) -> set[tuple[str, str, str]]:
        """(device, context, key) of each entry a device's local copy or app model holds unlike
        the vault (:meth:`_check_convergence`'s; the settle asks after its incremental passes)."""
        return {
            (name, context, key)
            for context in self.world.contexts
            for name, key, _what, _held, _live in self._differences(context)
        }

    def _differences(self, context: str) -> list[tuple[str, str, str, Any, Any]]:
        """(device, key, "local copy" or "app model", what it holds, the vault's) of each
        difference in ``context``."""
        running = [d for d in self.world.devices.values() if d.running]
        outcomes = self._outcomes(context)
        found: list[tuple[str, str, str, Any, Any]] = []
        for device in running:
            name = device.name
            local = device.local(context)
            for key in sorted(set(local) | set(outcomes)):
                options = outcomes.get(key, [_ABSENT])
                if local.get(key, _ABSENT) not in options:
                    found.append((name, key, "local copy", local.get(key, _ABSENT), options[0]))
            app = device.apps[context]
            for key in sorted(set(app.items) | set(outcomes)):
                if key in app.declined:
                    continue
                options = outcomes.get(key, [_ABSENT])
                if app.items.get(key, _ABSENT) not in options:
                    found.append((name, key, "app model", app.items.get(key, _ABSENT), options[0]))
        return found

    def _truth(self, context: str) -> dict[str, Any]:
        """The live entries of a context (see :meth:`_outcomes`; of a key whose newest vault
        documents disagree, the first)."""
        return {
            key: options[0]
            for key, options in self._outcomes(context).items()
            if options[0] is not _ABSENT
        }

    def _outcomes(self, context: str) -> dict[str, list[Any]]:
        """key -> what the vault holds for it, for any implementation: read from the fake
        vault's documents in the original helper's fields (:meth:`World.vault_outcomes`). On a
        real vault, which the checker cannot read directly, the first running device's local
        copy stands for it."""
        if not self.world.server.live:
            return self.world.vault_outcomes(context)
        running = [d for d in self.world.devices.values() if d.running]
        local = running[0].local(context) if running else {}
        return {key: [value] for key, value in local.items()}

    def _check_no_lost_update(self, context: str) -> None:
        """ORD-2, OFF-4: the final value of each key is the newest acknowledged write to it."""
        newest: dict[str, Write] = {}
        for write in self.writes:
            if write.context != context or write.abandoned:
                continue
            if write.key not in newest or write.version > newest[write.key].version:
                newest[write.key] = write
        live = self._truth(context)
        for key, write in sorted(newest.items()):
            # A write abandoned by a reinstall may still have landed (its answer was lost), and
            # then it legitimately wins if it is newer.
            allowed = [write] + [
                w for w in self.ledger[(context, key)] if w.abandoned and w.version > write.version
            ]
            outcomes = [_ABSENT if w.deleted else w.data for w in allowed]
            if live.get(key, _ABSENT) not in outcomes:
                self.fail(
                    "no lost update",
                    "ORD-2",
                    f"acknowledged {'delete' if write.deleted else repr(write.data)} by "
                    f"{write.device} ({write.version}) is not the final state "
                    f"{live.get(key, _ABSENT)!r}",
                    [
                        {
                            "kind": "write",
                            "device": write.device,
                            "context": context,
                            "key": key,
                            "version": write.version.encode(),
                        }
                    ],
                    context=context,
                    key=key,
                )


def _write_cause(write: BlindWrite, context: str) -> dict[str, Any]:
    """The trace fields of a blind write's ``write`` line (its value tells it from the others)."""
    op = "delete" if write.deleted else "upsert"
    cause = {"kind": "write", "device": write.device, "context": context, "key": write.key}
    return {**cause, "op": op, "value": None if write.deleted else write.data}


def _device(name: str) -> str:
    """The device of a helper instance's name (``phone#1`` is the phone's second helper)."""
    return name.split("#", 1)[0]


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()
ABSENT: Any = _ABSENT
"""What a key that is absent (or a tombstone) holds, in the checkers' comparisons."""
