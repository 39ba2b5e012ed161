"""The CRI runtime service (``model.cri``): every sequence of calls a client
may send, with stale and unknown ids, under container deaths and runtime
restarts, judged against api.proto's promises (``properties.cri``). The same
transition function is the oracle of ``kubemc conform cri``."""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.model.cri.machine import CriRuntime
from kubemc.properties import cri as cri_properties

RUNTIME = Model(
    name="cri",
    build=CriRuntime,
    # one pod uid, one container name, attempts 0 and 1, at most 2 sandboxes
    # and 2 containers at once: 3,945 distinct states (the last read call's
    # answer is left out of the fingerprint: docs/kubelet.md), a few seconds.
    bounds={"uids": 1, "names": 1, "attempts": 2, "max_sandboxes": 2, "max_containers": 2},
    properties=cri_properties.PROPERTIES,
    hypothesis_bounds={"uids": 2, "names": 2, "max_sandboxes": 3, "max_containers": 3},
)

COMPONENT = Component(
    "cri",
    "the container runtime's CRI v1 runtime service: pod sandboxes holding a network "
    "namespace, containers created / running / exited / unknown, idempotent stops and "
    "removes, container deaths and runtime restarts",
    (RUNTIME,),
)
