"""``interfaces-removed``: after DEL, the interfaces ADD created for the
container are gone — before the runtime removes the sandbox's namespace.

Why before: deleting a namespace destroys every veth end inside it, and the
peer with it, so a plugin that forgets its veth looks clean once the
namespace is gone. A runtime may keep a namespace after DEL (a pod sandbox
re-networked, a netns pinned by another process); SPEC.md Section 2 'DEL':
"A delete operation should release all resources held by the supplied
containerid in the configured network", and the interfaces the ADD result
listed are such resources.

What is judged, from the ``links`` operation the runner records right after
each DEL of a live sandbox:

* the container side: no link named ``CNI_IFNAME`` is left in the sandbox;
* the host side: no *veth* the ADD result listed as a host interface (no
  ``sandbox``) is left on the node. Bridges are shared by every container
  of the node and may outlive them (the spec does not ask a plugin to
  remove a bridge), so only veths are held to this.
"""

from __future__ import annotations

from kubemc.conformance.validate.violation import Violation
from kubemc.conformance.validate.cni import CniHistory, succeeded


def _host_interfaces(result) -> list[str]:
    out = []
    for it in (result or {}).get("interfaces", []) if isinstance(result, dict) else []:
        if isinstance(it, dict) and isinstance(it.get("name"), str) and not it.get("sandbox"):
            out.append(it["name"])
    return out


def check_removed(h: CniHistory):
    vs, n = [], 0
    last_add: dict = {}
    for op in h.ops:
        if op.f == "ADD" and succeeded(op):
            last_add[op.key] = op
        if op.f != "links" or op.key not in last_add:
            continue
        n += 1
        add = last_add[op.key]
        out = op.output if isinstance(op.output, dict) else {}
        ifname = add.input.get("ifname")
        left = []
        if out.get("pod_links") is not None and ifname in out["pod_links"]:
            left.append(f"{ifname} in the sandbox {add.input.get('netns')}")
        veths = {name for name, kind in out.get("node_links", []) if kind == "veth"}
        left += [f"host veth {name} on node {add.input.get('node')}"
                 for name in _host_interfaces(add.output.get("result")) if name in veths]
        if left:
            vs.append(Violation("interfaces-removed", f"after DEL of {op.key}, what its ADD created "
                                f"is still there: {', '.join(left)}", (add, op),
                                h.of_container(op.key)))
    return vs, n, ""


CHECKS = [
    ("interfaces-removed", "after DEL, the container's interface is gone from its sandbox and "
     "the host veths its ADD result listed are gone from the node",
     "CNI SPEC.md Section 2 'DEL': a delete should release all resources held by the container",
     check_removed),
]
