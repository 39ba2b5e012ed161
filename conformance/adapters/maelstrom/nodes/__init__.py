"""Example Maelstrom lin-kv nodes, run as programs (``python3 FILE``), never imported by kubemc.

``leader_kv.py`` is linearizable, ``replica_kv.py`` is not (stale reads), and
``misbehave.py`` breaks the protocol in the ways the runner must survive. This
file only makes them part of the installed distribution.
"""
