"""The catalog: one module per component, each building its ``COMPONENT``
(or ``COMPONENTS``, for a module that declares several), found by
``checker.components`` (pkgutil) together with the components installed
distributions register under the entry-point group ``kubemc.components``.

What a catalog entry is — a :class:`Model` and a :class:`Component` — is
:mod:`checker.catalog.entry`; the names are imported here because every
catalog module and ``examples/lock`` import them from the package.
"""

from kubemc.checker.catalog.entry import Component, Model

__all__ = ["Component", "Model"]
