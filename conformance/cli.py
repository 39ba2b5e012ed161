"""``kubemc conform TARGET``: the targets and where each one's CLI lives.

Each target module defines ``add_arguments(parser)`` and ``run(args) -> int``
(an exit code as DESIGN.md fixes them); the top-level CLI only dispatches.
"""

from __future__ import annotations

import importlib

TARGETS = {
    "etcd": ("conformance.target.etcd_cli", "a real etcd cluster (local 3 members, or --endpoints)"),
    "maelstrom": ("conformance.target.maelstrom_cli", "any program speaking the Maelstrom protocol"),
    "cri": ("conformance.target.cri_cli",
            "a CRI runtime: a private containerd (or --endpoint), checked against the CRI model"),
    "cni": ("conformance.target.cni_cli", "any CNI plugin in network namespaces (default: bridge + host-local)"),
    "proxy": ("conformance.target.proxy_cli",
              "kube-proxy's iptables rules (iptables-save) against Services and EndpointSlices"),
}


def target_module(name: str):
    return importlib.import_module(TARGETS[name][0])
