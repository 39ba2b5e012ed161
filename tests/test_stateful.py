"""The hypothesis engine: derived state machines pass on correct models and
shrink a mutant's failure to a short, replayable trace."""

import pytest

from checker import stateful, traces
from checker.components import COMPONENTS
from checker.catalog.store import RAFT
from checker.run import targeted

STORE = COMPONENTS["store"]
MVCC = next(m for m in STORE.models if m.name == "mvcc")

#: Mutants whose bug the ci profile reaches. figure8_commit needs a 38-step
#: behaviour with four elections in a precise order, and no_consistency_check
#: a 24-step one; random runs have not been shown to reach them yet (see the
#: README): explore and z3 catch them.
CAUGHT_BY_RANDOM_RUNS = [("raft", "double_vote"), ("raft", "leader_overwrites"),
                         ("raft", "quorum_off_by_one")] + [
                            ("mvcc", m) for m in sorted(MVCC.mutants)]


@pytest.mark.parametrize("model", [RAFT, MVCC], ids=lambda m: m.name)
def test_correct_models_pass_the_ci_profile(model):
    outcome = stateful.check(model.hypothesis_machine(), model.properties, profile="ci")
    assert outcome.counterexample is None
    assert outcome.examples >= 100


@pytest.mark.parametrize("model_name, mutant", CAUGHT_BY_RANDOM_RUNS)
def test_mutants_are_caught_and_shrunk(model_name, mutant, tmp_path):
    model = RAFT if model_name == "raft" else MVCC
    machine = model.hypothesis_machine(mutant)
    outcome = stateful.check(machine, targeted(model, mutant), profile="ci")
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped {outcome.examples} runs"
    assert cex.prop.name == model.mutants[mutant].violates
    path = traces.save(cex, tmp_path, model=model.name, machine=machine, engine="hypothesis")
    assert traces.replay(traces.load(path)).reproduced


def test_a_seeded_run_is_reproducible():
    model = RAFT
    machine = model.hypothesis_machine("double_vote")
    first = stateful.check(machine, targeted(model, "double_vote"), profile="deep",
                           seed=11, max_examples=400)
    second = stateful.check(machine, targeted(model, "double_vote"), profile="deep",
                            seed=11, max_examples=400)
    assert first.counterexample is not None
    assert first.counterexample.steps == second.counterexample.steps
