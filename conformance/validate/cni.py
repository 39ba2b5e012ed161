"""Checks on a ``kubemc conform cni`` run: the registry, and the recorded run
they all read.

The run is a history (:mod:`conformance.history`) whose operations are:

=============  =======  ======================================================
``f``          ``key``  ``input`` / ``output``
=============  =======  ======================================================
ADD DEL CHECK  the      input: ``node``, ``pod``, ``netns``, ``ifname``,
VERSION        CNI_     ``purpose`` (add, delete, repeat, unknown,
STATUS GC      CONTAI-  after-crash, teardown, check, version, status, gc);
               NERID    output: ``calls`` (every plugin execution: stdin,
                        exit code, stdout, stderr) and ``result`` (the final
                        ADD result); ``ok`` = every call exited 0
links          the      after a DEL: ``pod_links`` (names in the pod's
               CNI_     namespace, ``null`` when it is gone) and
               CONTAI-  ``node_links`` (``[name, kind]`` on the node)
               NERID
store          —        host-local's store on a node: ``reservations``
                        ``{address: container}``, read from its files
probe          token    input: sender, its address and node, receiver, its
                        address, protocol; output: who got it, the source
                        address the receiver saw
=============  =======  ======================================================

Every check is ``check(h: CniHistory) -> (violations, checked, note)``;
``violations`` are :class:`conformance.validate.violation.Violation`.
"""

from __future__ import annotations

import time

import attrs

from kubemc.conformance.validate.violation import CheckResult, Violation

PLUGIN_FS = frozenset({"ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"})


@attrs.define
class CniHistory:
    ops: list
    meta: dict
    dataplane: object = None         # the CNI model's dataplane for the probed state
    complete: bool = True            # the whole plan ran
    strict: bool = False             # documented divergences are violations too (--strict)

    @property
    def version(self) -> str:
        return self.meta["cniVersion"]

    def plugin_ops(self, *fs):
        want = set(fs) or PLUGIN_FS
        return [op for op in self.ops if op.f in want]

    def of_container(self, container: str) -> tuple:
        return tuple(op for op in self.ops if op.key == container)

    def node_cidr(self, node: int) -> str:
        return self.meta["nodes"][node]["pod_cidr"]


def purpose(op) -> str:
    return op.input.get("purpose", "") if isinstance(op.input, dict) else ""


def calls(op) -> list:
    return (op.output or {}).get("calls", []) if isinstance(op.output, dict) else []


def succeeded(op) -> bool:
    return op.status == "ok"


def check_availability(h: CniHistory):
    """The run did its work: every planned ADD succeeded, packets were sent."""
    vs = []
    adds = h.plugin_ops("ADD")
    for op in adds:
        if not succeeded(op):
            err = (op.output or {}).get("error", "") if isinstance(op.output, dict) else ""
            vs.append(Violation("availability", f"ADD of {op.key} (pod {op.input.get('pod')}, node "
                                f"{op.input.get('node')}) failed: {err}", (op,), h.of_container(op.key)))
    probes = [op for op in h.ops if op.f == "probe"]
    if not adds and h.complete:
        vs.append(Violation("availability", "no ADD was made: the run did nothing"))
    elif h.complete and not probes:
        vs.append(Violation("availability", "no packet was sent: the run cannot judge the dataplane"))
    note = "" if h.complete else "UNDECIDED: the plan did not complete within --time-limit"
    return vs, len(adds) + len(probes), note


def registry():
    from kubemc.conformance.validate import cni_cleanup, cni_ipam, cni_packets, cni_protocol
    return [
        ("availability", "the run did its work: every planned ADD succeeded, and packets were sent",
         "kubemc: a run cannot pass by doing nothing", check_availability),
        *cni_protocol.CHECKS, *cni_ipam.CHECKS, *cni_cleanup.CHECKS, *cni_packets.CHECKS,
    ]


def run_checks(h: CniHistory) -> list[CheckResult]:
    out = []
    for name, statement, source, fn in registry():
        t = time.perf_counter()
        violations, checked, note = fn(h)
        out.append(CheckResult(name, statement, source, list(violations),
                               time.perf_counter() - t, checked, note))
    return out
