"""The ``lock`` component as kubemc's catalog sees it: one model, its default
bounds, its properties. ``pyproject.toml`` registers :data:`COMPONENT` under
the ``kubemc.components`` entry point, which is how ``kubemc check lock``
finds it (``checker.components``)."""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc_lock.machine import Lock
from kubemc_lock.properties import PROPERTIES

LOCK = Model(
    name="lock",
    build=Lock,
    # three clients: two can wait behind a holder, so a waiter can be woken
    # out of order; 28 distinct states, complete in milliseconds.
    bounds={"clients": 3},
    properties=PROPERTIES,
    # random runs at four clients: longer lines, more interleavings
    hypothesis_bounds={"clients": 4},
)

COMPONENT = Component(
    "lock",
    "a lock with a FIFO waiting line and wake-ups (the kernel docstring's example, grown)",
    (LOCK,),
)
