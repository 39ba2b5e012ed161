"""What every cloud-controller-manager property reads: the apiserver's
objects and the cloud's resources, and whether a quiet behaviour has come
to its end.

Judged on the cloud as it *is* — visible resources and the operations it has
accepted — never on what the controller believes; and on the apiserver's
objects (``ControllerLoop.objects``), never on the informer cache.
"""

from __future__ import annotations

from kubemc.model.kernel import SYSTEM


def resources(m, state, kind: str) -> dict:
    """The cloud's visible resources of ``kind``: name -> value."""
    shown, _ = m.cloud(state)
    return {r[1]: v for r, v in shown if r[0] == kind}


def accepted(m, state, kind: str) -> dict:
    """Operations on ``kind`` the cloud accepted and has not done: name -> value."""
    _, ops = m.cloud(state)
    return {r[1]: v for r, v in ops if r[0] == kind}


def quiet_end(m, state) -> bool:
    """No system step is enabled: a quiet behaviour stutters here forever
    (``properties.core``), so whatever holds here holds for good."""
    return not any(m.tag(step) == SYSTEM for step, _ in m.successors(state))
