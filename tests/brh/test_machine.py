"""The pass machine on its own: no event loop, no vault, no store (brh/machine.py).

Each test drives :func:`brh.machine.sync_pass` by hand: it answers every effect the machine
yields from a few dicts and lists, and throws in the vault errors it wants, then checks the
effects the machine asked for. This is how a change to a decision is tested in isolation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from brh import effects as fx
from brh.core import RULES, Action
from brh.hlc import Version
from brh.machine import sync_pass
from brh.options import SyncOptions
from brh.plan import PASS, ContextReset, Memory, Outcome, Plan
from brh.store import ContextState, EntryState, Record, Rejection
from brh.vault import InvalidParameterError, NetworkError, ObjectId, UpdateResult, VaultError

E = TypeVar("E", bound=fx.Effect)
NOW_MS = 1_750_000_000_000
STAMP = NOW_MS // 1000


def doc(key: str, data: Any, version: Version, stamp: int = STAMP, n: int = 0) -> dict[str, Any]:
    """A vault document as the vault returns it."""
    return {
        "_id": ObjectId(f"{n:024x}"),
        "key": key,
        "data": data,
        "creationDate": version.wall_ms,
        "modificationDate": version.wall_ms,
        "deletionDate": None,
        "brhVersion": version.encode(),
        "brhFormat": 1,
        "created": stamp,
        "modified": stamp,
    }


def v(ms: int, writer: str = "b~00000001") -> Version:
    return Version(NOW_MS + ms, 0, writer)


@dataclass
class Device:
    """Everything the machine asks about, as plain data; each answer is looked up here."""

    records: dict[str, Record] = field(default_factory=dict)
    state: ContextState = field(default_factory=lambda: ContextState("notes"))
    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    """What the successive pull queries return."""
    callbacks: Callable[[fx.Deliver], object] = lambda effect: True
    vault: Callable[[fx.Effect], Any] | None = None
    """Answers (or raises) for vault requests other than the pull queries."""
    rejections: list[Rejection] = field(default_factory=list)
    effects: list[fx.Effect] = field(default_factory=list)
    vault_time: float | None = None
    """The vault's clock as the helper knows it (None: it never said)."""

    def answer(self, effect: fx.Effect) -> Any:
        self.effects.append(effect)
        if isinstance(effect, fx.LoadState):
            return self.state
        if isinstance(effect, fx.SaveState):
            self.state = effect.state
            return None
        if isinstance(effect, fx.LocalState):
            r = self.records.get(effect.key)
            if r is None:
                return None
            return EntryState(r.version, r.base, r.pending, r.stale, r.creation_date, None)
        if isinstance(effect, fx.Local):
            return self.records.get(effect.key)
        if isinstance(effect, fx.Pending):
            return [r for _, r in sorted(self.records.items()) if r.pending]
        if isinstance(effect, fx.Rejections):
            return self.rejections
        if isinstance(effect, fx.ApplyRemote):
            self.records[effect.record.key] = effect.record
            return True
        if isinstance(effect, fx.NoteRefusal | fx.NoteRejection):
            return 1
        if isinstance(effect, fx.StaleKeys | fx.LiveSyncedKeys | fx.Stuck):
            return []
        if isinstance(effect, fx.HasRefusals | fx.Refusals):
            return False
        if isinstance(effect, fx.Now):
            return NOW_MS
        if isinstance(effect, fx.LoopTime):
            return 100.0
        if isinstance(effect, fx.VaultTime):
            return self.vault_time
        if isinstance(effect, fx.Deliver):
            return self.callbacks(effect)
        if isinstance(effect, fx.Query) and effect.projection is None:
            return self.pages.pop(0) if self.pages else []
        if isinstance(effect, fx.CreateCollection | fx.Query | fx.FindMany | fx.UpdateOne):
            if self.vault is not None:
                return self.vault(effect)
            return UpdateResult(True, 1, 1) if isinstance(effect, fx.UpdateOne) else []
        return None  # writes and notices the tests look at afterwards

    def run(self, **plan: Any) -> Outcome:
        """One pass over the context ``notes``, answered from this device."""
        options = plan.pop("options", SyncOptions())
        machine = sync_pass(
            Plan(contexts=[("notes", "backup_notes")], options=options, **{"full": False, **plan})
        )
        answer: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = machine.send(answer) if error is None else machine.throw(error)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                return outcome
            answer, error = None, None
            try:
                answer = self.answer(effect)
            except (VaultError, ContextReset) as exc:
                error = exc

    def kinds(self, kind: type[E]) -> list[E]:
        return [e for e in self.effects if isinstance(e, kind)]


def test_a_fresh_device_restores_every_live_entry_through_on_insert() -> None:
    """RES-1, CB-1, SYNC-4: a first pass creates the collection, reads from the start, calls
    on_insert for each live entry, stores it, and saves the cursor at the newest stamp."""
    device = Device(pages=[[doc("a", 1, v(1), n=1), doc("b", 2, v(2), STAMP + 1, n=2)]])
    outcome = device.run(rules=RULES)
    assert outcome.result.completed and outcome.result.delivered == 2
    assert [type(e) for e in device.effects[:2]] == [fx.Emit, fx.LoadState]
    assert [e.collection for e in device.kinds(fx.CreateCollection)] == ["backup_notes"]
    (pull,) = device.kinds(fx.Query)  # one page, and no purge at a first pull (COST-2)
    assert pull.filter == {} and pull.sort == (("modified", 1), ("_id", 1))
    assert pull.limit == 501  # a page and one more: no empty page to ask for at the end
    assert device.state.last_purge_stamp == STAMP + 1  # the purge interval starts (DEL-2)
    assert [(e.action, e.remote.key) for e in device.kinds(fx.Deliver)] == [
        (Action.INSERT, "a"),
        (Action.INSERT, "b"),
    ]
    assert sorted(device.records) == ["a", "b"]
    assert device.state.cursor == STAMP + 1 and device.state.collection_ready
    assert "notes" in outcome.memory.ready
    events = [e.kind for e in device.kinds(fx.Emit)]
    assert events[0] == "pass_started" and events[-1] == "pass_finished"


def test_a_refusal_ends_the_deliveries_but_not_the_uploads() -> None:
    """CB-6, SYNC-6, SYNC-8: the app refuses the first change: no further callback, the cursor
    stays below the refused change, and the pending local change is still uploaded."""
    local = Record("notes", "mine", "x", NOW_MS, NOW_MS, None, v(5, "a~1"), pending=True)
    device = Device(
        records={"mine": local},
        pages=[[doc("a", 1, v(1), STAMP + 7, n=1), doc("b", 2, v(2), STAMP + 9, n=2)]],
        callbacks=lambda effect: False,
        state=ContextState("notes", cursor=STAMP, collection_ready=True),
    )
    outcome = device.run(rules=RULES)
    assert outcome.result.reason == "refused" and outcome.result.refused == ("notes", "a")
    assert len(device.kinds(fx.Deliver)) == 1
    assert [e.key for e in device.kinds(fx.NoteRefusal)] == ["a"]
    assert device.state.cursor == STAMP + 7  # at the refused change, not past it
    assert [e.filter for e in device.kinds(fx.UpdateOne)] == [
        {"key": "mine", "brhVersion": v(5, "a~1").encode()}
    ]


def test_a_decision_is_swapped_through_the_rules() -> None:
    """The Rules seam: a pass run with another decide() asks for what that one decides."""
    device = Device(pages=[[doc("a", 1, v(1), n=1)]])
    deaf = replace(
        RULES,
        decide=lambda local, remote: RULES.decide(local, remote).__class__(Action.SKIP, remote),
    )
    device.run(rules=deaf)
    assert device.kinds(fx.Deliver) == [] and device.records == {}


def test_a_compare_and_set_that_loses_marks_the_entry_stale_and_delivers_the_winner() -> None:
    """SYNC-7, ORD-2: the update naming the base matches nothing; the key's documents show a
    newer version: the local change is marked stale, "superseded" is told, and the winner is
    fetched by key and delivered."""
    base, mine, theirs = v(1), v(2, "a~1"), v(3)
    local = Record("notes", "k", "mine", NOW_MS, NOW_MS, None, mine, base=base, pending=True)

    def vault(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.UpdateOne):
            return UpdateResult(True, 0, 0)
        return [doc("k", "theirs", theirs, n=1)]  # FindMany, by key

    device = Device(
        records={"k": local},
        vault=vault,
        state=ContextState("notes", cursor=STAMP, collection_ready=True),
    )
    stale: list[str] = []
    original = device.answer

    def answer(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.MarkStale):
            stale.append(effect.key)
        if isinstance(effect, fx.StaleKeys):
            return list(stale)
        return original(effect)

    device.answer = answer  # type: ignore[method-assign]
    device.run(rules=RULES)
    (marked,) = device.kinds(fx.MarkStale)
    assert marked.key == "k" and marked.lost == mine
    superseded = [e for e in device.kinds(fx.Emit) if e.kind == "superseded"]
    assert superseded[0].fields["version"] == theirs.encode()
    assert [(e.action, e.remote.version) for e in device.kinds(fx.Deliver)] == [
        (Action.MODIFY, theirs)
    ]


def test_a_vault_error_ends_the_context_and_the_pass_reports_it() -> None:
    """RETRY-4: an error answering the pull ends that context's work: no upload, no state
    saved past it, and the pass reports vault_error with the error."""

    def vault(effect: fx.Effect) -> Any:
        raise NetworkError("query: timed out", definite=False)

    device = Device(state=ContextState("notes", cursor=STAMP, collection_ready=True))
    device.pages = []
    original = device.answer

    def answer(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.Query):
            device.effects.append(effect)
            return vault(effect)
        return original(effect)

    device.answer = answer  # type: ignore[method-assign]
    outcome = device.run(rules=RULES)
    assert outcome.result.reason == "vault_error" and outcome.result.failed_contexts == ("notes",)
    assert "timed out" in (outcome.result.error or "")
    assert device.kinds(fx.UpdateOne) == [] and device.kinds(fx.SaveState) == []


def test_a_wipe_during_the_pass_leaves_the_context_alone() -> None:
    """RES-2: the driver says the context was wiped when the machine wants to write: nothing
    more is written for it, and the pass reports it."""
    device = Device(pages=[[doc("a", 1, v(1), n=1)]])
    original = device.answer

    def answer(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.ApplyRemote):
            device.effects.append(effect)
            raise ContextReset()
        return original(effect)

    device.answer = answer  # type: ignore[method-assign]
    outcome = device.run(rules=RULES)
    assert outcome.result.failed_contexts == ("notes",)
    assert "wiped" in (outcome.result.error or "")
    after = device.effects[device.effects.index(device.kinds(fx.ApplyRemote)[0]) + 1 :]
    assert not any(isinstance(e, fx.WRITES) for e in after)


def test_an_upload_the_vault_refuses_is_held_back_and_the_others_go_on() -> None:
    """RETRY-6: the vault refuses "b" (400): it is noted and held back with the delay the plan
    gives, "a" and "c" are still uploaded, and the pass reports the refusal."""
    records = {
        key: Record("notes", key, key, NOW_MS, NOW_MS, None, v(i, "a~1"), pending=True)
        for i, key in enumerate(("a", "b", "c"))
    }

    def vault(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.UpdateOne) and effect.filter["key"] == "b":
            raise InvalidParameterError("too large")
        return UpdateResult(True, 1, 1)

    device = Device(
        records=records,
        vault=vault,
        state=ContextState("notes", cursor=STAMP, collection_ready=True),
    )
    outcome = device.run(rules=RULES, upload_delay=lambda refusals: 30.0)
    assert [e.filter["key"] for e in device.kinds(fx.UpdateOne)] == ["a", "b", "c"]
    (noted,) = device.kinds(fx.NoteRejection)
    assert noted.key == "b" and noted.definite and "400" in noted.reason
    assert outcome.result.reason == "rejected"
    assert [(r.key, r.direction) for r in outcome.result.rejected] == [("b", "upload")]
    assert outcome.memory.held[("notes", "b")] == (v(1, "a~1"), 130.0)
    # the next pass, before the delay is over, does not send it again
    device.effects.clear()
    device.rejections = [Rejection("b", v(1, "a~1"), 1, "too large", True)]
    device.run(rules=RULES, memory=outcome.memory)
    assert [e.filter["key"] for e in device.kinds(fx.UpdateOne)] == ["a", "c"]


def test_the_machine_never_touches_a_clock_or_a_loop() -> None:
    """The machine is pure: everything it learns comes from the answers (a pass is the same
    whatever the real time, here with no event loop running at all)."""
    first, second = Device(pages=[[doc("a", 1, v(1))]]), Device(pages=[[doc("a", 1, v(1))]])
    one, two = first.run(rules=RULES), second.run(rules=RULES)
    assert one.result == two.result and first.effects == second.effects
    assert all(e.context in ("notes", PASS) for e in first.effects)
    assert one.memory == Memory(ready=frozenset({"notes"}), stamp_seen=STAMP)


def test_each_delivered_version_is_stored_before_the_pass_awaits_anything_else() -> None:
    """ORD-7, CB-5 (seed 31 of the deep search): the version a callback accepted is stored
    right after it, before the next vault request or callback, so the app can edit or delete
    what it was given while the pass goes on; one the app wrote meanwhile is not stored, and
    the vault's version becomes that key's base, its local write pending."""
    device = Device(pages=[[doc("a", 1, v(1), n=1), doc("b", 2, v(2), n=2)]])
    original = device.answer

    def answer(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.ApplyRemote) and effect.record.key == "b":
            device.effects.append(effect)
            return False  # the app wrote "b" while its callback ran
        return original(effect)

    device.answer = answer  # type: ignore[method-assign]
    device.run(rules=RULES)
    kinds = [type(e) for e in device.effects if isinstance(e, fx.Deliver | fx.ApplyRemote)]
    assert kinds == [fx.Deliver, fx.ApplyRemote, fx.Deliver, fx.ApplyRemote]
    stored = device.kinds(fx.ApplyRemote)
    assert [(e.record.key, e.expected) for e in stored] == [("a", None), ("b", None)]
    assert [(e.key, e.base, e.pending) for e in device.kinds(fx.SetBase)] == [("b", v(2), True)]
