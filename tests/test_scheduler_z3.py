"""The z3 engine on the scheduler: every bind each model reaches is one the
feasibility oracle accepts, and the oracle refuses the wrong binds of exactly
the mutants the catalog says it catches (the filter mutants), each with a
trace the machine replays against the filter table."""

import pytest

from kubemc.checker import traces
from kubemc.checker.catalog.scheduler import COMPONENT, MODELS
from kubemc.checker.z3engine import PROVED, VIOLATED

CHECKS = {c.model: c for c in COMPONENT.symbolic}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_every_bind_of_the_correct_scheduler_is_accepted_by_the_oracle(model):
    result = CHECKS[model.name].run()
    assert result.verdict == PROVED and result.bound > 0, result.summary()


CASES = [(model, mutant) for model in MODELS for mutant in sorted(model.mutants)]


@pytest.mark.parametrize("model, mutant", CASES, ids=[m for _, m in CASES])
def test_the_oracle_catches_exactly_the_listed_mutants(model, mutant, tmp_path):
    check = CHECKS[model.name]
    result = check.run(mutant)
    if mutant not in check.mutants:
        # not a filter bug (liveness, preemption, binding, lease): every bind
        # it makes is one some node's filters allow
        assert result.verdict == PROVED, result.summary()
        return
    assert result.verdict == VIOLATED, result.summary()
    path = traces.save(result.counterexample, tmp_path, model=model.name,
                       machine=result.machine, engine="z3")
    assert traces.replay(traces.load(path)).reproduced
