"""What every engine returns when a property fails: one concrete behaviour."""

from __future__ import annotations

import attrs

from model.kernel import State
from properties.core import Property


@attrs.frozen
class Counterexample:
    """A behaviour that violates ``prop``: the initial state and each step."""

    prop: Property
    init: State
    steps: tuple  # of (Step, State)

    @property
    def final(self) -> State:
        return self.steps[-1][1] if self.steps else self.init
