"""The server side an informer talks to: the apiserver's list/watch contract
(``model.listwatch``) over the etcd MVCC store of ``model.store.mvcc``.

Why the informer's server *is* the contract: an informer only ever sees what
list and watch answer, so the smallest honest server is the store plus the
rules by which those two answers are derived from it — and those rules are
stated once, in ``model.listwatch``, with their sources (the Kubernetes API
concepts page, the etcd watch API). The apiserver's request path
(``model.apiserver.requests``) implements list/watch on its own, through
replicas' watch caches; ``tests/test_listwatch_refinement.py`` checks both
machines against that one contract.

Mapping onto the store: an object is a key under a resource prefix
(``pods/a``); its resourceVersion is the key's ``mod_revision``; a list is a
read of every key of the resource at the current revision, and its
resourceVersion is that store revision. The store keeps every record at or
after its compact revision, so a watch from ``rv`` is gone exactly when
``rv + 1 < compact_revision``.
"""

from __future__ import annotations

from kubemc.model.listwatch import (ADDED, DELETED, MODIFIED, bookmark_revision, gone,
                                    next_event, objects)

__all__ = ["ADDED", "MODIFIED", "DELETED", "objects", "gone", "next_event",
           "bookmark_revision"]
