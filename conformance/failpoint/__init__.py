"""Faults: what breaks a system under test on purpose, and when.

:mod:`.etcd` is the nemesis of a local etcd cluster (kill, pause, partition
on a seeded schedule), :mod:`.cri` the faults against a CRI runtime,
:mod:`.maelstrom` the network partitions of a Maelstrom run. The known-bad
targets that show each check has teeth break one promise each:
:mod:`.etcd_proxy` (an HTTP proxy in front of etcd), :mod:`.cri_proxy` (a
gRPC proxy in front of a runtime), :mod:`.cni_plugin` (wrappers around a
CNI plugin).
"""
