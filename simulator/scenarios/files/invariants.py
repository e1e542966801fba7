"""Black-box properties checked after every step of a scenario, for any implementation.

They read only what any helper exposes (the app models its callbacks fill, its live local copy
through ``local_entries``) and the vault's live documents, so they hold for every correct
implementation, not only the reference. A scenario file with ``check_each_step = true`` checks
them after each of its steps (the conformance state machine records its runs that way); a
violation is a :class:`~simulator.world.checkers.Finding` like any checker's:

* **API-2**, no invented data: a running device's local copy and app model, and the vault's live
  documents, hold for each key only data that some app wrote to that key (every ``put`` step is
  remembered with its value);
* **CB-5**, a completed pass leaves the app as the helper: right after a ``sync`` step whose
  pass completed, on a device whose apps apply every change they accept (behaviour ``apply``,
  no refusal predicate), each context's app model equals the helper's local copy (keys the app
  declined aside).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.scenarios.files.verbs import Step
    from simulator.world import World
    from simulator.world.device import SimDevice

__all__ = ["StepChecks"]

_ABSENT: Any = object()


class StepChecks:
    """Checks a world after each step; findings go to the world's checker."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.written: dict[tuple[str, str], list[Any]] = {}
        """Every value an app wrote, by (context, key), each once (a value written again adds
        nothing: the check only asks whether a value was ever written)."""

    def after(self, step: Step) -> None:
        """Check the world after ``step`` ran (call it inside the world's event loop)."""
        if step.verb == "put":
            device = self.world.device(step.fields["device"])
            context = step.get("context") or next(iter(device.apps))
            values = self.written.setdefault((context, step.fields["key"]), [])
            if step.fields["value"] not in values:
                values.append(step.fields["value"])
        for device in self.world.devices.values():
            if device.running:
                self._no_invented_data(device)
        self._vault_holds_no_invented_data()
        if step.verb == "sync":
            self._completed_pass_matches(self.world.device(step.fields["device"]))

    def _invented(self, context: str, key: str, data: Any) -> bool:
        return data not in self.written.get((context, key), [])

    def _no_invented_data(self, device: SimDevice) -> None:
        for context, app in device.apps.items():
            for where, entries in (("local copy", device.local(context)), ("app model", app.items)):
                for key, data in sorted(entries.items()):
                    if self._invented(context, key, data):
                        self.world.checker.fail(
                            "no invented data",
                            "API-2",
                            f"the {where} holds {data!r}, which no app ever wrote to this key",
                            device=device.name,
                            context=context,
                            key=key,
                        )

    def _vault_holds_no_invented_data(self) -> None:
        vault = self.world.server.vault
        names = set(vault.collection_names())
        for context in self.world.contexts:
            collection = "backup_" + context
            if collection not in names:
                continue
            for doc in vault.documents(collection):
                key = doc.get("key")
                if not isinstance(key, str) or doc.get("deletionDate") is not None:
                    continue
                if "data" in doc and self._invented(context, key, doc["data"]):
                    self.world.checker.fail(
                        "no invented data",
                        "API-2",
                        f"a live vault document holds {doc['data']!r}, which no app ever wrote "
                        "to this key",
                        context=context,
                        key=key,
                    )

    def _completed_pass_matches(self, device: SimDevice) -> None:
        last = device.last_sync
        if last is None or not last.completed or not device.running:
            return
        if any(b.mode != "apply" for b in device.behaviours.values()):
            return
        if any(app.refuse is not None for app in device.apps.values()):
            return
        for context, app in device.apps.items():
            local = device.local(context)
            for key in sorted(set(local) | set(app.items)):
                if key in app.declined:
                    continue
                if app.items.get(key, _ABSENT) != local.get(key, _ABSENT):
                    self.world.checker.fail(
                        "completed pass",
                        "CB-5",
                        f"after a completed pass the app model shows "
                        f"{_show(app.items.get(key, _ABSENT))} but the helper's local copy "
                        f"{_show(local.get(key, _ABSENT))}",
                        device=device.name,
                        context=context,
                        key=key,
                    )


def _show(value: Any) -> str:
    return "nothing" if value is _ABSENT else repr(value)
