"""Channels between the parts of a composition, with declared semantics.

Why the kernel owns them: before, every model that needed a network wrote
its own messages, its own loss and its own duplication (raft's bag, the
apiserver's request slots), each with its own bugs and none comparable. A
channel is declared once — who sends, who receives, how it orders, which
faults it may suffer and how many — and ``model.kernel.Composition`` runs
it. The anchor is Stateright's actor model, whose networks are an unordered
duplicating set, an unordered non-duplicating multiset and an ordered
(per-pair FIFO) channel; faults are counted budgets, as TLA+ specifications
bound them, so the state space stays finite and a trace says how many
faults it spent.

Semantics (``Channel.semantics``):

* ``BAG`` — an unordered multiset: any message in flight may be delivered
  next, each copy once (Stateright ``UnorderedNonDuplicating``; raft.tla's
  ``messages`` bag).
* ``FIFO`` — a sequence: only the oldest message may be delivered (TCP
  between two processes; Stateright ``Ordered``).
* ``SET`` — a set that never forgets: a message once sent may be delivered
  any number of times, and sending it again changes nothing (Stateright
  ``UnorderedDuplicating``; the ``msgs`` set of Lamport's Paxos in TLA+).
  Duplication is its nature, so it has no duplication budget.

Faults, each a ``fault`` step that spends one unit of the channel's budget:

* loss — one message in flight disappears (any semantics);
* duplication — one message in flight gains a copy (BAG: one more copy;
  FIFO: the copy right behind the original);
* reordering — two neighbouring messages of a FIFO swap places (a BAG or a
  SET has no order to break).

A channel's content is a plain tuple (states stay hashable tuples): a BAG is
a sorted tuple of ``(message, copies)``, a FIFO the messages oldest first, a
SET a sorted tuple of messages. Messages must be hashable and comparable
with each other (tuples of ints and strings are).

``capacity`` bounds the messages in flight as a state constraint: a state
past it is kept but not expanded (``Machine.within_bounds``), as raft's
``max_messages`` does, so a send is never silently refused.

This module knows nothing of machines: it is the data and its operations;
the composition (``model.kernel``) decides when they happen.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

BAG, FIFO, SET = "bag", "fifo", "set"
SEMANTICS = (BAG, FIFO, SET)


@attrs.frozen(slots=True)
class Sent:
    """What a part's handler returns when it sends: its next state and the
    messages, each ``(channel name, message)``. A handler that sends nothing
    returns its next state alone."""

    state: object
    messages: tuple = attrs.field(default=(), converter=tuple)


def _natural(instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"channel {attribute.name} must be a whole number >= 0, not {value!r}")


@attrs.frozen(slots=True)
class Channel:
    """A one-way channel from part ``sender`` to part ``receiver``.

    ``loss``, ``duplication`` and ``reordering`` are budgets: how many times
    in one behaviour the fault may happen (0: never).
    """

    name: str
    sender: str
    receiver: str
    semantics: str = attrs.field(default=BAG, validator=attrs.validators.in_(SEMANTICS))
    capacity: int = attrs.field(default=2, validator=_natural)
    loss: int = attrs.field(default=0, validator=_natural)
    duplication: int = attrs.field(default=0, validator=_natural)
    reordering: int = attrs.field(default=0, validator=_natural)

    def __attrs_post_init__(self):
        if not self.name or "." in self.name or "->" in self.name:
            raise ValueError(f"channel name {self.name!r}: a non-empty name without '.' or '->'")
        if self.semantics == SET and self.duplication:
            raise ValueError(f"channel {self.name}: a set channel duplicates by nature; "
                             "it takes no duplication budget")
        if self.semantics != FIFO and self.reordering:
            raise ValueError(f"channel {self.name}: only a FIFO channel has an order to break; "
                             "a reordering budget needs semantics FIFO")

    @property
    def budgets(self) -> tuple[int, int, int]:
        """The initial (loss, duplication, reordering) budgets."""
        return (self.loss, self.duplication, self.reordering)


# ---------------------------------------------------------------------------
# Operations on a channel's content (a plain tuple)
# ---------------------------------------------------------------------------

EMPTY = ()


def size(semantics: str, content: tuple) -> int:
    """Messages in flight (a BAG counts copies)."""
    if semantics == BAG:
        return sum(n for _, n in content)
    return len(content)


def send(semantics: str, content: tuple, msg) -> tuple:
    if semantics == FIFO:
        return content + (msg,)
    if semantics == SET:
        if msg in content:
            return content
        return tuple(sorted(content + (msg,)))
    return _bag_add(content, msg)


def deliverable(semantics: str, content: tuple) -> Iterator:
    """The messages that may be delivered next."""
    if semantics == FIFO:
        if content:
            yield content[0]
    elif semantics == SET:
        yield from content
    else:
        for msg, _ in content:
            yield msg


def deliver(semantics: str, content: tuple, msg) -> tuple | None:
    """The content after ``msg`` is delivered, or None if it cannot be now."""
    if semantics == FIFO:
        return content[1:] if content and content[0] == msg else None
    if semantics == SET:
        return content if msg in content else None
    return _bag_remove(content, msg)


def fault_params(semantics: str, content: tuple, fault: str) -> Iterator[tuple]:
    """The parameters of every ``fault`` step (LOSE, DUPLICATE, REORDER) the
    content allows: ``(message,)`` on a BAG or SET, ``(position, message)``
    on a FIFO (equal messages at two positions are two different faults),
    ``(position,)`` for a reordering (it swaps ``position`` and the next)."""
    if semantics == FIFO:
        if fault == REORDER:
            for k in range(len(content) - 1):
                if content[k] != content[k + 1]:
                    yield (k,)
        else:
            for k, msg in enumerate(content):
                yield (k, msg)
    elif fault == LOSE or (fault == DUPLICATE and semantics == BAG):
        for msg in deliverable(semantics, content):
            yield (msg,)


def fault(semantics: str, content: tuple, kind: str, params: tuple) -> tuple | None:
    """The content after the fault, or None if the parameters name nothing."""
    if semantics == FIFO:
        k = params[0]
        if not isinstance(k, int) or not 0 <= k < len(content):
            return None
        if kind == REORDER:
            if k + 1 >= len(content) or content[k] == content[k + 1]:
                return None
            return content[:k] + (content[k + 1], content[k]) + content[k + 2:]
        if len(params) != 2 or content[k] != params[1]:
            return None
        if kind == LOSE:
            return content[:k] + content[k + 1:]
        return content[:k + 1] + (content[k],) + content[k + 1:]
    (msg,) = params
    if kind == LOSE:
        if semantics == SET:
            return tuple(m for m in content if m != msg) if msg in content else None
        return _bag_remove(content, msg)
    if kind == DUPLICATE and semantics == BAG and any(m == msg for m, _ in content):
        return _bag_add(content, msg)
    return None


#: fault kinds, in the order of a channel's budget tuple
LOSE, DUPLICATE, REORDER = "Lose", "Duplicate", "Reorder"
FAULT_KINDS = (LOSE, DUPLICATE, REORDER)


def _bag_add(bag: tuple, msg) -> tuple:
    for i, (m, n) in enumerate(bag):
        if m == msg:
            return bag[:i] + ((m, n + 1),) + bag[i + 1:]
        if msg < m:
            return bag[:i] + ((msg, 1),) + bag[i:]
    return bag + ((msg, 1),)


def _bag_remove(bag: tuple, msg) -> tuple | None:
    for i, (m, n) in enumerate(bag):
        if m == msg:
            if n > 1:
                return bag[:i] + ((m, n - 1),) + bag[i + 1:]
            return bag[:i] + bag[i + 1:]
    return None


def describe(semantics: str, content: tuple) -> list:
    """The content as plain data for traces: a BAG as [message, copies] pairs."""
    if semantics == BAG:
        return [[m, n] for m, n in content]
    return list(content)
