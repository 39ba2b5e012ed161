"""Workloads: concurrent clients that drive a system under test and record
what happened into one :class:`conformance.history.Recorder`.

:mod:`.etcd` KV clients, watchers and a compactor; :mod:`.maelstrom` the
lin-kv clients of a Maelstrom run; :mod:`.cri` the kubelet-like client of a
CRI runtime; :mod:`.cni` the plan of a CNI run, taken from the CNI model.
"""
