"""Sequential specifications that histories are checked against: the base
class :class:`conformance.model.spec.Spec`, one module per specification
(``register``, ``kv``, ``etcd``), and the table of them by name,
:mod:`conformance.model.specs`.
"""
