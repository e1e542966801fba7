"""The simulator's faults: one table, one name for each fault, and its pair of verbs.

A fault's name is the verb that turns it on. The same word is the :class:`simulator.world.World`
method, the scenario file verb (``do = "partition"``), the ``fault`` field of the trace's fault
lines, the switch of the swarm explorer (``brh-sim explore --faults partition``) and the label
in the timeline report and its legend. Every fault has an opposite verb that turns it off
(``partition`` / ``heal``), and the settle phase turns every fault off with it. Faults that take
a strength (a probability, seconds) refuse a strength of zero: the off verb says off.

Other things the simulator does to a world are not faults, and have no off verb: clock jumps
(``jump_clock``) and drifts (``set_drift``), crashes, restarts, reinstalls and wipes (device
events), and the app's behaviour (``behave``, whose mode ``apply`` is the normal one). Their
trace lines name them by their World method too. A link's ``lose_answers`` (lose the answers of
the next n writes) is a knob for tests, not a fault.

``python -m simulator.faults`` prints the table as the README shows it (a test keeps the two
equal).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FAULTS",
    "FORMER_NAMES",
    "Fault",
    "UnknownFaultError",
    "did_you_mean",
    "fault",
    "markdown_table",
]


@dataclass(frozen=True)
class Fault:
    """One fault: its name (the verb that turns it on) and the verb that turns it off."""

    name: str
    off: str
    layer: str
    """``"network"``: the device's link to the vault; ``"vault"``: the vault's host."""
    per_device: bool
    """Whether the verbs name a device (the fault affects that device's requests only)."""
    arguments: str
    """What the on verb takes besides the device, for the docs (``""``: nothing)."""
    does: str
    """What the fault does, as a client sees it (one line: the legend shows it)."""
    colour: str
    """Its colour in the timeline report."""
    formerly: tuple[str, ...] = ()
    """Names it had in traces and explore switches before the vocabulary was unified."""


_FAULTS = (
    Fault(
        "partition",
        "heal",
        "network",
        True,
        "",
        "requests vanish; clients time out (indefinite)",
        "#d62728",
    ),
    Fault(
        "cut_answers",
        "restore_answers",
        "network",
        True,
        "",
        "requests apply, answers vanish (indefinite)",
        "#e67e00",
        ("answers_lost", "one_way"),
    ),
    Fault(
        "disconnect",
        "reconnect",
        "network",
        True,
        "",
        "no route: requests fail at once (definite)",
        "#555",
        ("offline",),
    ),
    Fault(
        "lossy",
        "lossless",
        "network",
        True,
        "`requests`, `answers`: probabilities, one above 0",
        "requests and answers are lost at random",
        "#b0a000",
        ("loss",),
    ),
    Fault(
        "slow_link",
        "fast_link",
        "network",
        True,
        "`latency`: (low, high) seconds per leg (in a file: `low`, `high`)",
        "each leg of a request takes low..high seconds",
        "#888",
        ("latency",),
    ),
    Fault(
        "expire_token",
        "renew_token",
        "vault",
        True,
        "",
        "the device's requests get 401 (token expired)",
        "#8c564b",
        ("token_expired", "token"),
    ),
    Fault(
        "freeze",
        "unfreeze",
        "vault",
        False,
        "",
        "the vault refuses writes with 403 (frozen)",
        "#138d9c",
        ("frozen",),
    ),
    Fault(
        "take_down",
        "bring_up",
        "vault",
        False,
        "",
        "the vault answers 503 to every request",
        "#555",
        ("unavailable", "vault_down"),
    ),
    Fault(
        "server_errors",
        "stop_server_errors",
        "vault",
        False,
        "`before`, `after`: probabilities, one above 0",
        "500s at random, before or after applying",
        "#d62728",
        ("errors",),
    ),
    Fault(
        "upsert_race",
        "stop_upsert_race",
        "vault",
        False,
        "`seconds` above 0 (the fake vault only)",
        "upserts check, then insert late: duplicates",
        "#c2389b",
    ),
    Fault(
        "slow_vault",
        "fast_vault",
        "vault",
        False,
        "`seconds` above 0",
        "every request takes seconds longer",
        "#888",
    ),
    Fault(
        "commit_lag",
        "commit_at_once",
        "vault",
        False,
        "`seconds` above 0, below the overlap (5 s); `exact` (the fake vault only)",
        "writes are stamped on arrival, visible up to seconds later",
        "#17becf",
    ),
)

FAULTS: dict[str, Fault] = {f.name: f for f in _FAULTS}
"""Every fault by name, network faults first: the order the settle phase turns them off in
(a device's network faults device by device, then the vault's)."""

FORMER_NAMES: dict[str, str] = {
    **{old: f.name for f in _FAULTS for old in f.formerly},
    # the trace's other fault lines and the explorer's clock switches
    "clock_jump": "jump_clock",
    "device_clock": "jump_clock",
    "vault_clock": "jump_vault_clock",
    "drift": "set_drift",
    "app": "behave",
}
"""Earlier names (in older traces and replay files) and what they are called now."""


class UnknownFaultError(ValueError):
    """A fault name that is not in :data:`FAULTS`; the message suggests the right one."""


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``"did you mean 'tablet'? "`` when ``name`` is close to one of ``known``, else ``""``
    (an earlier name gets its new one)."""
    if not isinstance(name, str):
        return ""
    choices = list(known)
    renamed = FORMER_NAMES.get(name)
    if renamed in choices:
        return f"{name!r} is now called {renamed!r}; "
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == name.lower()]
    return f"did you mean {close[0]!r}? " if close else ""


def fault(name: str) -> Fault:
    """The fault called ``name``; :class:`UnknownFaultError` naming the fix if none is."""
    try:
        return FAULTS[name]
    except (KeyError, TypeError):
        raise UnknownFaultError(
            f"no fault {name!r}; {did_you_mean(name, FAULTS)}faults: {', '.join(FAULTS)}"
        ) from None


def markdown_table() -> str:
    """The table of faults, as the README shows it."""
    rows = [
        "| fault = on verb | off verb | where | the on verb's arguments | what it does |",
        "|---|---|---|---|---|",
    ]
    for f in _FAULTS:
        if f.layer == "network":
            where = "a device's network"
        else:
            where = "the vault, to one device" if f.per_device else "the vault"
        rows.append(f"| `{f.name}` | `{f.off}` | {where} | {f.arguments or '-'} | {f.does} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
