"""The sequential specifications by name: what a history's ``#meta`` ``model``
field, ``kubemc check-history --model`` and the runners name.

Why a module of its own: the specifications import :class:`Spec` from
:mod:`conformance.model.spec`, and the table imports every specification; kept
apart, neither waits for the other to load.
"""

from __future__ import annotations

from kubemc.checker.errors import BadInput
from kubemc.conformance.model.etcd import EtcdKV
from kubemc.conformance.model.kv import KV
from kubemc.conformance.model.register import Register
from kubemc.conformance.model.spec import Spec

SPECS: dict[str, type[Spec]] = {"register": Register, "kv": KV, "etcd-kv": EtcdKV}


def spec(name: str) -> Spec:
    """The specification registered under ``name`` (BadInput if unknown)."""
    try:
        factory = SPECS[name]
    except KeyError:
        raise BadInput(f"no sequential specification {name!r} "
                       f"(known: {', '.join(sorted(SPECS))})") from None
    return factory()
