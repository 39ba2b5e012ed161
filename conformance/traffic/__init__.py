"""Workloads: concurrent clients that drive a target and record what happened.

:mod:`conformance.traffic.etcd` is the etcd workload: KV clients, watchers
and a compactor, all recording into one :class:`conformance.history.Recorder`.
"""
