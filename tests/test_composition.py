"""Compositions: mutants carried to the part that declares them, and channels
with declared semantics, fault budgets and crash budgets (model.kernel,
model.channels)."""

import pytest

from kubemc.checker.explore import explore
from kubemc.model.channels import BAG, FIFO, SET, Channel, Sent
from kubemc.model.kernel import (ENVIRONMENT, FAULT, SYSTEM, Composition, Link, Machine, Mutant,
                                 Step,
                          UnknownMutant)
from kubemc.properties.core import COVER, INVARIANT, Property
from tests.test_kernel import Lock


class Counter(Machine):
    """Counts up to ``limit``; its mutant counts past it."""

    name = "counter"
    tags = {"Tick": ENVIRONMENT}
    mutants = {"no_limit": Mutant("Tick ignores the limit", violates="within_limit")}

    def __init__(self, limit=2, mutant=None):
        super().__init__(mutant)
        self.limit = limit

    def config(self):
        return {"limit": self.limit}

    def init_states(self):
        yield 0

    def steps(self, state):
        yield Step("Tick")

    def apply(self, state, step):
        if state >= self.limit and self.mutant != "no_limit":
            return None
        return state + 1 if state <= self.limit else None


def joint_mutex(m, s):
    return len(s[0]) <= 1


def joint_limit(m, s):
    return s[1] <= 2


MUTEX = Property("mutual_exclusion", "test", INVARIANT, "At most one holder.", "fixture",
                 joint_mutex)
LIMIT = Property("within_limit", "test", INVARIANT, "The counter stays within 2.", "fixture",
                 joint_limit)


# ---------------------------------------------------------------------------
# mutants through compositions
# ---------------------------------------------------------------------------


def test_a_mutant_passed_to_a_composition_reaches_its_part():
    comp = Composition([("lock", Lock(2)), ("count", Counter())], mutant="no_holder_check")
    assert comp.mutant == "no_holder_check"
    assert comp.part("lock").mutant == "no_holder_check"
    assert comp.part("count").mutant is None
    out = explore(comp, [MUTEX, LIMIT])
    cex = out.counterexample
    assert cex is not None and cex.prop.name == "mutual_exclusion"
    assert [s.name for s, _ in cex.steps] == ["lock.Acquire", "lock.Acquire"]
    # the other part's mutant reaches the other part, and only it
    comp = Composition([("lock", Lock(2)), ("count", Counter())], mutant="no_limit")
    assert comp.part("count").mutant == "no_limit" and comp.part("lock").mutant is None
    assert explore(comp, [MUTEX, LIMIT]).counterexample.prop.name == "within_limit"


def test_without_a_mutant_the_composition_holds_and_its_space_is_unchanged():
    comp = Composition([("lock", Lock(2)), ("count", Counter())])
    out = explore(comp, [MUTEX, LIMIT])
    assert out.complete and out.counterexample is None
    assert out.stats.states == 3 * 3  # lock: free or one of two holders; count 0..2
    (init,) = comp.init_states()
    assert init == ((), 0)  # no network element without channels or crashes


def test_the_composite_mutants_are_its_own_and_its_parts_union():
    class Handover(Composition):
        mutants = {"lost_handover": Mutant("the handover forgets the holder",
                                           violates="mutual_exclusion")}

        def __init__(self, mutant=None):
            super().__init__([("lock", Lock(1)), ("count", Counter())], mutant=mutant)

    comp = Handover()
    assert set(comp.mutants) == {"lost_handover", "no_holder_check", "no_limit"}
    assert comp.mutants["no_limit"] is Counter.mutants["no_limit"]
    own = Handover(mutant="lost_handover")
    assert own.mutant == "lost_handover"
    assert own.part("lock").mutant is None and own.part("count").mutant is None


def test_an_unknown_mutant_is_refused_by_name():
    with pytest.raises(UnknownMutant, match="no mutant 'nope'.*no_holder_check.*no_limit"):
        Composition([("lock", Lock(2)), ("count", Counter())], mutant="nope")


def test_a_mutant_two_parts_declare_is_refused_when_named_only():
    comp = Composition([("a", Lock(1)), ("b", Lock(1))])  # two copies: fine without it
    assert "no_holder_check" not in comp.mutants
    with pytest.raises(UnknownMutant, match="declared by a and b"):
        Composition([("a", Lock(1)), ("b", Lock(1))], mutant="no_holder_check")


def test_a_part_built_with_a_mutant_lends_it_to_the_composite_and_a_second_is_refused():
    lock = Lock(2, mutant="no_holder_check")
    comp = Composition([("lock", lock), ("count", Counter())], mutant="no_holder_check")
    assert comp.part("lock") is lock
    carried = Composition([("lock", lock), ("count", Counter())])
    assert carried.mutant == "no_holder_check"  # the composite says which bug it runs
    with pytest.raises(ValueError, match="one mutant at a time"):
        Composition([("lock", lock), ("count", Counter())], mutant="no_limit")


# ---------------------------------------------------------------------------
# channels
# ---------------------------------------------------------------------------


class Sender(Machine):
    """Sends 1 then 2 on channel ``out``."""

    name = "sender"
    tags = {"Send": SYSTEM}

    def init_states(self):
        yield 0

    def steps(self, state):
        yield Step("Send")

    def apply(self, state, step):
        if state >= 2:
            return None
        return Sent(state + 1, (("out", state + 1),))


class Receiver(Machine):
    """Records what it receives; on a crash it keeps only what it wrote to
    disk (the first message) and loses the rest."""

    name = "receiver"
    tags = {}

    def init_states(self):
        yield ()

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def within_bounds(self, state):
        return len(state) <= 3  # a set channel redelivers forever

    def receive(self, state, channel, msg):
        return state + (msg,)

    def after_crash(self, state):
        return state[:1]


def pipe(semantics, **budgets):
    return Composition([("s", Sender()), ("r", Receiver())],
                       channels=[Channel("out", "s", "r", semantics, **budgets)])


def received(comp) -> set:
    """Every record the receiver can reach (the whole space is explored)."""
    seen = set()
    record = Property("record", "test", INVARIANT, "fixture", "fixture",
                      lambda m, s: seen.add(s[1]) or True)
    out = explore(comp, [record])
    assert out.complete
    return seen


def test_fifo_delivers_in_order_and_each_fault_spends_its_budget():
    assert received(pipe(FIFO)) == {(), (1,), (1, 2)}
    assert received(pipe(FIFO, reordering=1)) == {(), (1,), (1, 2), (2,), (2, 1)}
    assert received(pipe(FIFO, loss=1)) == {(), (1,), (1, 2), (2,)}
    assert received(pipe(FIFO, duplication=1)) == {
        (), (1,), (1, 1), (1, 1, 2), (1, 2), (1, 2, 2)}


def test_a_bag_reorders_and_a_set_redelivers():
    assert received(pipe(BAG)) == {(), (1,), (2,), (1, 2), (2, 1)}
    assert received(pipe(BAG, duplication=1, capacity=3)) >= {(2, 2, 1), (1, 1, 2), (2, 1, 2)}
    seen = received(pipe(SET))
    # a set never forgets: 1 may arrive again and again, with no budget spent
    assert (1, 1) in seen and (2, 1, 2) in seen
    comp = pipe(SET)
    (init,) = comp.init_states()
    sent = comp.apply(comp.apply(init, Step("s.Send")), Step("s.Send"))
    once = comp.apply(sent, Step("r.Deliver", ("out", 1)))
    assert once[1] == (1,) and once[2] == sent[2] == (((1, 2),), ((0, 0, 0),), ())
    assert comp.apply(once, Step("out.Lose", (1,))) is None  # no loss budget


def test_network_steps_are_named_and_tagged_as_documented():
    comp = pipe(FIFO, loss=1, reordering=1)
    assert comp.tags["r.Deliver"] == SYSTEM
    assert comp.tags["out.Lose"] == FAULT and comp.tags["out.Reorder"] == FAULT
    assert "out.Duplicate" not in comp.tags  # no budget: no step
    assert {"out.Lose", "out.Reorder"} <= comp.rare
    assert comp.talks_to() == {("s", "r")}
    (init,) = comp.init_states()
    s1 = comp.apply(init, Step("s.Send"))
    s2 = comp.apply(s1, Step("s.Send"))
    assert s2[2][0] == ((1, 2),)  # the FIFO's content
    names = [str(st) for st in comp.steps(s2)]
    assert "r.Deliver(out, 1)" in names and "r.Deliver(out, 2)" not in names
    assert "out.Reorder(0)" in names and "out.Lose(1, 2)" in names
    swapped = comp.apply(s2, Step("out.Reorder", (0,)))
    assert swapped[2] == (((2, 1),), ((1, 0, 0),), ())
    assert comp.apply(swapped, Step("out.Reorder", (0,))) is None  # budget spent
    assert comp.view(s2)["net.out"] == [1, 2]
    assert comp.view(s2)["net.faults_left"] == {"out": {"loss": 1, "duplication": 0,
                                                        "reordering": 1}}


def test_capacity_is_a_bound_not_a_refusal():
    comp = pipe(FIFO, capacity=1)
    (init,) = comp.init_states()
    two = comp.apply(comp.apply(init, Step("s.Send")), Step("s.Send"))
    assert two is not None and not comp.within_bounds(two)


def test_crash_keeps_what_the_part_declares_and_spends_its_budget():
    comp = Composition([("s", Sender()), ("r", Receiver())],
                       channels=[Channel("out", "s", "r", FIFO)], crashes={"r": 1})
    assert comp.tags["r.Crash"] == FAULT and comp.tags["r.Recover"] == SYSTEM
    (init,) = comp.init_states()
    s = init
    for step in ("s.Send", "s.Send", "r.Deliver"):
        params = ("out", 1) if step == "r.Deliver" else ()
        s = comp.apply(s, Step(step, params))
    s = comp.apply(s, Step("r.Deliver", ("out", 2)))
    assert s[1] == (1, 2)
    crashed = comp.apply(s, Step("r.Crash"))
    assert crashed[1] == (1,)                       # what it kept
    assert crashed[2][2] == ((0, True),)            # budget spent, down
    assert [str(x) for x, _ in comp.successors(crashed)] == ["r.Recover()"]
    assert comp.apply(crashed, Step("r.Crash")) is None
    up = comp.apply(crashed, Step("r.Recover"))
    assert up[2][2] == ((0, False),) and comp.apply(up, Step("r.Crash")) is None
    # a down receiver gets nothing: the message waits in flight
    down = comp.apply(comp.apply(init, Step("r.Crash")), Step("s.Send"))
    assert comp.apply(down, Step("r.Deliver", ("out", 1))) is None
    assert "r.Deliver(out, 1)" not in [str(x) for x in comp.steps(down)]


def test_fused_successors_and_steps_agree_on_a_network():
    comp = Composition([("s", Sender()), ("r", Receiver())],
                       channels=[Channel("out", "s", "r", FIFO, loss=1, duplication=1,
                                         reordering=1)], crashes={"r": 1})
    frontier, seen = list(comp.init_states()), set()
    while frontier:
        s = frontier.pop()
        if s in seen or not comp.within_bounds(s):
            continue
        seen.add(s)
        fused = set(comp.successors(s))
        generic = {(st, t) for st in comp.steps(s) if (t := comp.apply(s, st)) is not None}
        assert fused == generic
        frontier.extend(t for _, t in fused)
    assert len(seen) > 50


@pytest.mark.parametrize("build, message", [
    (lambda: Channel("out", "s", "r", SET, duplication=1), "duplicates by nature"),
    (lambda: Channel("out", "s", "r", BAG, reordering=1), "only a FIFO"),
    (lambda: Channel("out", "s", "r", "lifo"), "semantics"),
    (lambda: Channel("a.b", "s", "r"), "without '.'"),
    (lambda: Channel("out", "s", "r", loss=-1), "whole number"),
    (lambda: Composition([("s", Sender()), ("r", Receiver())],
                         channels=[Channel("out", "s", "zz")]), "unknown component zz"),
    (lambda: Composition([("s", Sender()), ("r", Receiver())],
                         channels=[Channel("out", "r", "s")]), "defines no receive"),
    (lambda: Composition([("s", Sender()), ("r", Receiver())],
                         channels=[Channel("r", "s", "r")]), "name of a component"),
    (lambda: Composition([("s", Sender()), ("r", Receiver())], crashes={"s": 1}),
     "defines no after_crash"),
])
def test_a_badly_declared_network_is_refused_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_sending_on_a_channel_the_part_does_not_own_is_a_bug_that_surfaces():
    comp = Composition([("s", Sender()), ("r", Receiver())],
                       channels=[Channel("other", "s", "r")])
    (init,) = comp.init_states()
    with pytest.raises(ValueError, match="sent on 'out'"):
        comp.apply(init, Step("s.Send"))


def test_links_and_channels_live_together_and_a_link_cover_is_reached():
    def params(joint):
        return [()] if joint["s"] == 2 else []

    def reset(s, r, _):
        return 0, r

    comp = Composition([("s", Sender()), ("r", Receiver())],
                       links=[Link("Reset", "s", "r", params, reset, ENVIRONMENT)],
                       channels=[Channel("out", "s", "r", BAG, capacity=3)])
    assert comp.talks_to() == {("s", "r")}
    again = Property("again", "test", COVER, "1 arrives twice", "fixture",
                     lambda m, s: s[1][:2] == (1, 1))
    out = explore(comp, [again], max_states=5000)
    assert out.covers == {"again": True}


class Server(Machine):
    """Counts the requests it served; it has no ``receive``: its one incoming
    channel is consumed by the link to its store."""

    name = "server"
    tags = {}

    def init_states(self):
        yield 0

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None


def served_pipeline():
    """A sender's requests taken by a server that writes each to its store
    and answers, in one link step (``Link.receives``)."""
    def serve(srv, db, params):
        channel, msg = params
        if msg in db:
            return None  # never twice: the step is disabled, the message stays
        return Sent(srv + 1, (("back", msg * 10),)), db + (msg,)

    return Composition([("s", Sender()), ("srv", Server()), ("db", Receiver()),
                        ("r", Receiver())],
                       links=[Link("Serve", "srv", "db", None, serve, SYSTEM,
                                   receives=("out",))],
                       channels=[Channel("out", "s", "srv", FIFO, capacity=2),
                                 Channel("back", "srv", "r", FIFO, capacity=2)])


def test_a_link_may_take_a_message_call_its_callee_and_answer_in_one_step():
    comp = served_pipeline()
    assert comp.talks_to() == {("s", "srv"), ("srv", "db"), ("srv", "r")}
    s = next(iter(comp.init_states()))
    s = comp.apply(comp.apply(s, Step("s.Send")), Step("s.Send"))
    # FIFO: only the oldest request is offered, as (channel, message), and
    # the consumed channel gets no Deliver step of its own
    assert [st for st in comp.steps(s) if st.name != "s.Send"] == \
        [Step("srv->db.Serve", ("out", 1))]
    assert comp.apply(s, Step("srv->db.Serve", ("out", 2))) is None
    assert comp.apply(s, Step("srv.Deliver", ("out", 1))) is None
    t = comp.apply(s, Step("srv->db.Serve", ("out", 1)))
    assert t[1:3] == (1, (1,)) and t[-1][0] == ((2,), (10,))
    assert [st for st in comp.steps(t) if st.name != "s.Send"] == \
        [Step("srv->db.Serve", ("out", 2)), Step("r.Deliver", ("back", 10))]
    assert dict(comp.successors(t)) == {st: comp.apply(t, st) for st in comp.steps(t)
                                        if comp.apply(t, st) is not None}
    out = explore(comp, [Property("answered", "test", COVER, "both answers arrive", "fixture",
                                  lambda m, x: x[3] == (10, 20))])
    assert out.complete and out.covers == {"answered": True}


def test_a_link_refusing_the_message_leaves_it_in_flight():
    comp = served_pipeline()
    s = next(iter(comp.init_states()))
    s = comp.apply(s, Step("s.Send"))
    blocked = (s[0], s[1], (1,), s[3], s[4])  # the store already holds 1
    assert comp.apply(blocked, Step("srv->db.Serve", ("out", 1))) is None
    assert blocked[-1][0][0] == (1,)


def test_a_link_receiving_on_a_channel_into_another_part_is_refused():
    with pytest.raises(ValueError, match="not a channel into its caller"):
        Composition([("s", Sender()), ("srv", Server()), ("db", Receiver())],
                    links=[Link("Serve", "db", "srv", None, lambda a, b, p: (a, b), SYSTEM,
                                receives=("out",))],
                    channels=[Channel("out", "s", "srv", FIFO)])


# ---------------------------------------------------------------------------
# the documented example (docs/composition.md), run as written
# ---------------------------------------------------------------------------


def test_the_documented_example_behaves_as_the_text_says():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "composition.md").read_text()
    start = text.index("## Example")
    code = text[text.index("```python\n", start) + len("```python\n"):text.index("```\n",
                                                                                  start + 20)]
    namespace: dict = {}
    exec(code, namespace)
    pipe = namespace["pipe"]
    records = {r for r in received(pipe)}
    assert records == {(), (1,), (1, 2), (2,)}
    assert pipe.tags["r.Crash"] == FAULT and pipe.tags["out.Lose"] == FAULT


# ---------------------------------------------------------------------------
# the engines on a network
# ---------------------------------------------------------------------------

IN_ORDER = Property("in_order", "test", INVARIANT, "2 never arrives before 1", "fixture",
                    lambda m, s: s[1][:1] != (2,))


@pytest.mark.parametrize("semantics, budgets, holds", [
    (FIFO, {}, True), (FIFO, {"duplication": 1}, True), (FIFO, {"reordering": 1}, False),
    (FIFO, {"loss": 1}, False), (BAG, {}, False), (SET, {}, False),
])
def test_explore_and_hypothesis_judge_a_network_alike(semantics, budgets, holds):
    from kubemc.checker import stateful

    comp = pipe(semantics, **budgets)
    out = explore(comp, [IN_ORDER])
    assert (out.counterexample is None) == holds
    assert out.complete or not holds  # a violation ends the search
    random = stateful.check(comp, [IN_ORDER], profile="ci")
    assert (random.counterexample is None) == holds
    if not holds:
        steps = [s.name for s, _ in random.counterexample.steps]
        assert steps[-1] == "r.Deliver" and steps.count("s.Send") == 2


class LossyPipe(Composition):
    """The sender and receiver over a bag that may lose and duplicate one
    message each, the receiver crashing once: every kind of network state
    and step in one catalog-shaped model (``config()`` is its constructor's)."""

    name = "pipe"

    def __init__(self, mutant=None):
        super().__init__([("s", Sender()), ("r", Receiver())], mutant=mutant,
                         channels=[Channel("out", "s", "r", BAG, capacity=3, loss=1,
                                           duplication=1)], crashes={"r": 1})
        self.name = "pipe"

    def config(self):
        return {}


def test_a_network_counterexample_is_written_shown_and_replayed(monkeypatch, capsys, tmp_path):
    """Network states (bag contents, budgets, crash flags) and network steps
    (deliveries of tuples, faults, crashes) survive ITF and replay."""
    import json

    from kubemc.checker import components
    from kubemc.checker.catalog import Component, Model
    from kubemc.checker.cli import main

    twice = Property("one_copy_each", "pipe", INVARIANT, "no message arrives twice",
                     "fixture", lambda m, s: len(set(s[1])) == len(s[1]))
    monkeypatch.setitem(components.COMPONENTS, "pipe", Component(
        "pipe", "a test's network", (Model("pipe", LossyPipe, {}, (twice,)),)))
    assert main(["check", "pipe", "--json", "--trace-dir", str(tmp_path)]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    trace = json.loads(open(row["trace"]).read())
    actions = [s["#meta"]["action"] for s in trace["states"][1:]]
    assert "out.Duplicate" in actions and actions[-1] == "r.Deliver"
    assert "net.out" in trace["vars"] and "net.faults_left" in trace["vars"]
    assert main(["trace", "replay", row["trace"]]) == 1
    assert "is violated" in capsys.readouterr().out
    assert main(["trace", "show", row["trace"]]) == 0


def test_a_raising_receive_or_crash_handler_surfaces_instead_of_disabling_the_step():
    class Broken(Receiver):
        def receive(self, state, channel, msg):
            raise TypeError("a bug in receive")

        def after_crash(self, state):
            raise KeyError("a bug in after_crash")

    comp = Composition([("s", Sender()), ("r", Broken())],
                       channels=[Channel("out", "s", "r", FIFO)], crashes={"r": 1})
    (init,) = comp.init_states()
    sent = comp.apply(init, Step("s.Send"))
    with pytest.raises(TypeError, match="a bug in receive"):
        comp.apply(sent, Step("r.Deliver", ("out", 1)))
    with pytest.raises(KeyError):
        comp.apply(init, Step("r.Crash"))
    with pytest.raises((TypeError, KeyError)):  # whichever the search meets first
        explore(comp, [])


class _LockThatBreaksOnRebuild(Lock):
    """A part whose constructor has a bug that shows only when it is rebuilt
    with a mutant."""

    def __init__(self, clients=2, mutant=None):
        super().__init__(clients, mutant)
        if mutant is not None:
            len(None)  # a TypeError inside __init__: a bug, not a bad config


def test_a_part_constructor_that_raises_surfaces_instead_of_reading_as_bad_config():
    with pytest.raises(TypeError, match="has no len"):
        Composition([("lock", _LockThatBreaksOnRebuild())], mutant="no_holder_check")
