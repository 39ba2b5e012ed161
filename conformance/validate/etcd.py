"""The checks of a recorded etcd history, by name, and running them.

Every check is a function ``check(history: EtcdHistory) -> list[Violation]``
registered in :func:`conformance.validate.etcd.checks` under its stable name
(reports, JSON and JUnit use these names). :func:`run_checks` runs them all and times each.

========================  ====================================================
``availability``          the run did work: no workload thread crashed, at
                          least ``min_ok`` KV operations succeeded, one after
                          every fault was healed (:mod:`.availability`)
``linearizability``       KV operations (get, put, delete, optimistic put,
                          and each key of a range) against the etcd-kv
                          sequential model, key by key, plus revisions against
                          real time (:mod:`conformance.linearizability`)
``revision-monotonic``    revisions increase: per client, and across
                          acknowledged writes in real time
``no-lost-update``        an optimistic put (txn: mod_revision unchanged →
                          put) never succeeds over a write it did not see
``compaction``            a read below a completed compaction fails with
                          etcd's "required revision has been compacted",
                          and only then
``watch-ordered`` …       the six watch guarantees of etcd's API guarantees
``watch-bookmarkable``    (:mod:`conformance.validate.watch`)
``watch-matches-kv``      what watches deliver is what the KV API wrote
========================  ====================================================

A :class:`Violation` names its check, says what went wrong in one sentence,
and carries the operations that prove it (``ops``) and the smallest window of
the history around them (``window``): for linearizability the smallest
failing window of the key's history (:mod:`conformance.validate.window`),
often cut from an unknown starting state; for the others the operations
overlapping the proving ones in time, restricted to the keys involved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kubemc.conformance.validate.etcd_history import EtcdHistory
from kubemc.conformance.validate.violation import CheckResult, Violation

Check = Callable[[EtcdHistory], "tuple[list[Violation], int] | list[Violation]"]


def checks():
    """(name, statement, source, check) of every etcd check, in report order."""
    from kubemc.conformance.validate import (availability, compaction, linearizable, lost_update,
                                             revisions, watch)
    table = [
        ("availability", availability.STATEMENT, availability.SOURCE, availability.check),
        ("linearizability", linearizable.STATEMENT, linearizable.SOURCE, linearizable.check),
        ("revision-monotonic", revisions.STATEMENT, revisions.SOURCE, revisions.check),
        ("no-lost-update", lost_update.STATEMENT, lost_update.SOURCE, lost_update.check),
        ("compaction", compaction.STATEMENT, compaction.SOURCE, compaction.check),
    ]
    for name, statement in watch.GUARANTEES.items():
        table.append((name, statement, watch.SOURCE, watch.checker(name)))
    table.append(("watch-matches-kv", watch.MATCHES_KV, watch.SOURCE_MATCHES_KV,
                  watch.check_matches_kv))
    return table


def check_names() -> list[str]:
    return [c[0] for c in checks()]


def run_checks(history: EtcdHistory, only: Iterable[str] | None = None,
               progress: Callable[[str], None] | None = None) -> list[CheckResult]:
    results = []
    only = None if only is None else set(only)
    for name, statement, source, fn in checks():
        if only is not None and name not in only:
            continue
        if progress:
            progress(name)
        t0 = time.perf_counter()
        got = fn(history)
        violations, checked, note = got if isinstance(got, tuple) else (got, 0, "")
        res = CheckResult(name, statement, source, list(violations), time.perf_counter() - t0,
                          checked, note)
        results.append(res)
    return results
