"""What a run ends with: its :class:`Outcome` (the checkers' findings and some totals), or the
:class:`ScenarioError` of a step that raised, which stops the run unchecked."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.world.checkers import Finding

__all__ = ["Outcome", "ScenarioError"]


@dataclass
class Outcome:
    """What a run produced: the findings of the checkers and some totals."""

    seed: int
    findings: list[Finding]
    simulated_seconds: float
    requests: int
    events: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


class ScenarioError(Exception):
    """A step of a scenario raised: the run stopped there, and was not checked.

    ``step`` names it: ``"step 3 (put)"`` in a scenario file, ``"scenario w1-late-upload,
    line 12 (await phone.put(...))"`` in a Python scenario, ``"the settle phase"``; ``at`` is
    the simulated time (seconds since the start; None if unknown) and ``seed`` the run's seed.
    The exception the step raised is ``error``, and the ``__cause__``.
    """

    def __init__(self, step: str, error: BaseException, *, at: float | None, seed: int) -> None:
        super().__init__(f"{step} raised {type(error).__name__}: {error}")
        self.step = step
        self.error = error
        self.at = at
        self.seed = seed
