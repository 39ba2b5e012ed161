"""Checks: what a recorded history must satisfy, each with the statement it
checks and the source it comes from.

:mod:`.violation` holds what every check reports (``Violation``,
``CheckResult``); :mod:`.etcd` runs the etcd checks over an
:class:`.etcd_history.EtcdHistory` (availability, linearizability,
revisions, lost updates, compaction, the watch guarantees, each a module
here); :mod:`.cri`, :mod:`.cni` and the ``cni_*`` modules check the other
adapters' runs; :mod:`.maelstrom` judges a Maelstrom run;
:mod:`.window` cuts a non-linearizable history down to its smallest failing
window.
"""
