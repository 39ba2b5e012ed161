"""``availability``: the run did work. A conformance run must not pass by doing nothing.

Why: every other check judges the operations that succeeded, and holds
vacuously when there are none. A target that answers garbage, refuses every
request, or dies halfway would pass them all — the store that loses nothing
because it stores nothing. Maelstrom has the same kind of check
(``availability-checker``, ``src/maelstrom/checker.clj``: a lower bound on
the fraction of operations that succeed); this one asks for three things:

1. no client, watcher or compactor thread crashed (a ``crash`` operation in
   the history): a crashed client stops issuing requests, and its absence
   shows nothing;
2. at least ``min_ok`` KV operations succeeded over the whole run (the
   ``#meta`` says how many; ``kubemc conform etcd --min-ok``);
3. the target recovered: in the recovery phase — after the nemesis has
   healed every fault, before the clients stop (the ``recover`` operation of
   process -2 spans it) — at least one KV request succeeded. A cluster that
   was killed and never came back fails here, however many requests
   succeeded before.
"""

from __future__ import annotations

from kubemc.conformance.validate.etcd_history import CRASH_F, RECOVER_F, WINDOW_LIMIT, EtcdHistory
from kubemc.conformance.validate.violation import Violation

STATEMENT = ("the target served the workload: no client thread crashed, at least min_ok KV "
             "operations succeeded, and at least one succeeded after every fault was healed")
SOURCE = ("kubemc: a run cannot pass by doing nothing (cf. Maelstrom's availability checker, "
          "src/maelstrom/checker.clj)")
DEFAULT_MIN_OK = 1


def check(h: EtcdHistory):
    violations = []
    kv = [op for op in h.kv if op.f != "compact"]
    ok = [op for op in kv if op.status == "ok"]
    for op in h.ops:
        if op.f == CRASH_F:
            error = op.output.get("error") if isinstance(op.output, dict) else op.output
            violations.append(Violation("availability", f"a workload thread crashed: {error}",
                                        (op,), (op,)))
    min_ok = h.meta.get("min_ok", DEFAULT_MIN_OK)
    if not isinstance(min_ok, int) or isinstance(min_ok, bool):
        min_ok = DEFAULT_MIN_OK
    if len(ok) < min_ok:
        tail = tuple(kv[-WINDOW_LIMIT:])
        violations.append(Violation(
            "availability", f"{len(ok)} of {len(kv)} KV operations succeeded; the run asks for at "
            f"least {min_ok} (is the endpoint an etcd? see the errors in the window)",
            tail[-5:], tail, {"ok": len(ok), "operations": len(kv), "min_ok": min_ok}))
    recovery = next((op for op in h.ops if op.f == RECOVER_F), None)
    if recovery is not None:
        end = recovery.ret if recovery.ret is not None else float("inf")
        inside = [op for op in kv if recovery.call <= op.call <= end]
        if not any(op.status == "ok" for op in inside):
            seconds = (end - recovery.call) / 1e9 if recovery.ret is not None else 0.0
            window = tuple(inside[-WINDOW_LIMIT:])
            violations.append(Violation(
                "availability", f"the target did not recover: none of the {len(inside)} KV requests "
                f"of the {seconds:.1f} s after every fault was healed succeeded",
                (recovery, *window[-4:]), (recovery, *window),
                {"recovery_requests": len(inside)}))
    return violations, len(kv), ""
