"""The apiserver's access models: identities, ServiceAccount and token
controllers, role-based authorization, and the z3 obligations of the
optimistic update rule and of the rule set. ``checker.catalog.apiserver``
adds ``MODELS`` and ``OBLIGATIONS`` to the apiserver component."""

MODELS: tuple = ()
OBLIGATIONS: tuple = ()
