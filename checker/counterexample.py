"""What every engine returns when a property fails: one concrete behaviour."""

from __future__ import annotations

import attrs

from kubemc.model.kernel import State, Step
from kubemc.properties.core import Property


@attrs.frozen
class Counterexample:
    """A behaviour that violates ``prop``: the initial state and each step.

    For a liveness property the behaviour is infinite and the counterexample
    a *lasso*: ``loop`` is the index of the state (0 = ``init``) the last one
    loops back to (ADR-015's ``loop``), and ``closing`` the step that takes
    the last state back to it — ``None`` when the last state stutters
    forever (no system step is enabled there; then ``loop`` is the last
    index). ``note`` says what a finite liveness trace shows when it is not
    a lasso (e.g. "did not converge within 200 fair steps").
    """

    prop: Property
    init: State
    steps: tuple  # of (Step, State)
    loop: int | None = None
    closing: Step | None = None
    note: str = ""

    @property
    def final(self) -> State:
        return self.steps[-1][1] if self.steps else self.init

    @property
    def is_lasso(self) -> bool:
        return self.loop is not None

    @property
    def states(self) -> list:
        return [self.init] + [s for _, s in self.steps]
