"""The apiserver: the only component that reads or writes the store.

It keeps Kubernetes objects as keys ``/registry/<resource>/<namespace>/<name>``
of the etcd MVCC model (``model.store.mvcc``), validates, defaults and admits
requests, and writes every change through a store transaction that compares
the key's ``mod_revision`` — Kubernetes' optimistic concurrency. Modules:

* ``resources`` — resource kinds, keys, the object value, validation (422
  naming the field), defaulting and the generation rule (pure functions);
* ``registry`` — create / get / list / update / delete over a store value,
  answering Kubernetes status codes (pure functions);
* ``requests`` — clients, apiserver replicas with watch caches, and the store
  as a composition whose links make "only the apiserver talks to the store"
  checkable; lists at resourceVersion unset / "0" / "N"; one watcher;
* ``lifecycle`` — finalizers, ownerReferences and the garbage collector's
  background / foreground / orphan propagation;
* ``admission`` — namespace lifecycle, ResourceQuota and defaults, with two
  replicas admitting concurrently.

Identities, authorization and the update rule's symbolic model live in
modules of their own (``access``, ``conflict``), each documented there.
"""
