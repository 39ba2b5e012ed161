"""The client side that controllers read through: a reflector listing and
watching the server into a DeltaFIFO, the cache (indexer) it feeds, periodic
resync, and a deduplicating work queue drained by workers.

``Informer`` (``model.informer.machine``) is the machine; ``server``,
``deltafifo`` and ``workqueue`` are its parts as pure functions on tuples.
"""

from kubemc.model.informer.machine import Informer

__all__ = ["Informer"]
