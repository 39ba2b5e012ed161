"""The apiserver's pure core: resource kinds and keys, validation (422 naming
the field), defaulting, the generation rule, and the REST operations over
the MVCC store with Kubernetes' status codes — case by case, and against a
plain-dictionary reading of the same semantics on random request sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.apiserver.registry import (
    ACCEPTED, ADDED, CONFLICT, CREATED, DELETED, INVALID, MODIFIED, NOT_FOUND, OK,
)
from kubemc.model.store import mvcc

POD_SPEC = (("containers", ("app",)),)


def pod(name="web", ns="default", **kw):
    kw.setdefault("spec", POD_SPEC)
    return res.make("Pod", ns, name, **kw)


def created(store, obj):
    store, status = registry.create(store, obj)
    assert status.code == CREATED, status
    return store, status


# -- kinds, keys, validation ---------------------------------------------------


def test_every_kind_the_issue_names_is_served_under_registry_keys():
    kinds = {"Namespace", "Node", "Lease", "Pod", "Service", "EndpointSlice", "ReplicaSet",
             "Deployment", "Job", "ServiceAccount", "Secret", "ConfigMap", "ResourceQuota"}
    assert kinds <= set(res.RESOURCES)
    assert res.key("Pod", "default", "web") == "/registry/pods/default/web"
    assert res.key("Namespace", "", "team") == "/registry/namespaces/team"
    assert res.key("Node", "", "n1") == "/registry/nodes/n1"
    assert res.key("EndpointSlice", "a", "s") == "/registry/endpointslices/a/s"


@pytest.mark.parametrize("obj, field", [
    (pod(name="Web"), "metadata.name"),
    (pod(name="-web"), "metadata.name"),
    (pod(name="a" * 254), "metadata.name"),
    (pod(ns=""), "metadata.namespace"),
    (res.make("Node", "default", "n1"), "metadata.namespace"),
    (pod(spec=()), "spec.containers"),
    (pod(spec=POD_SPEC + (("cpu", -1),)), "spec.containers[0].resources.requests.cpu"),
    (res.make("Deployment", "d", "web", spec=(("replicas", -1),)), "spec.replicas"),
    (res.make("Job", "d", "j", spec=(("completions", -2),)), "spec.completions"),
    (res.make("Service", "d", "s", spec=(("ports", (0,)),)), "spec.ports[0].port"),
    (res.make("ResourceQuota", "d", "q", spec=(("pods", -1),)), "spec.hard[pods]"),
    (pod(owners=(("ReplicaSet", "rs", "", 1),)), "metadata.ownerReferences"),
    (pod(finalizers=("x", "x")), "metadata.finalizers"),
])
def test_an_invalid_object_is_422_naming_the_field_and_writes_nothing(obj, field):
    store, status = registry.create(mvcc.INITIAL, obj)
    assert (status.code, status.reason, status.detail) == (INVALID, "Invalid", field)
    assert store == mvcc.INITIAL


def test_a_kind_the_apiserver_does_not_serve_is_404():
    _, status = registry.create(mvcc.INITIAL, res.make("Widget", "d", "w"))
    assert status.code == NOT_FOUND


def test_pods_get_the_default_scheduler_and_the_not_ready_unreachable_tolerations():
    p = res.defaulted(pod())
    assert res.spec_get(p, "schedulerName") == "default-scheduler"
    assert set(res.spec_get(p, "tolerations")) == set(res.DEFAULT_TOLERATIONS)
    assert all(t[2] == "NoExecute" and t[3] == 300 for t in res.spec_get(p, "tolerations"))
    assert res.is_defaulted(p) and not res.is_defaulted(pod())
    # a pod's own choices are kept: its scheduler, and its own not-ready toleration
    own = pod(spec=POD_SPEC + (("schedulerName", "mine"),
                               ("tolerations", ((res.NOT_READY, "Exists", "NoExecute", 5),))))
    d = res.defaulted(own)
    assert res.spec_get(d, "schedulerName") == "mine"
    assert ((res.NOT_READY, "Exists", "NoExecute", 5) in res.spec_get(d, "tolerations"))
    assert len(res.spec_get(d, "tolerations")) == 2
    # other kinds are left alone
    dep = res.make("Deployment", "d", "web")
    assert res.defaulted(dep) == dep


# -- create / get / update: optimistic concurrency -------------------------------


def test_create_sets_uid_generation_and_resource_version_then_already_exists():
    store, status = created(mvcc.INITIAL, pod(labels=(("app", "web"),)))
    obj = status.detail
    assert status.resource_version == 2 and obj[res.UID] == "uid-2"
    assert obj[res.GENERATION] == 1 and obj[res.LABELS] == (("app", "web"),)
    again, status = registry.create(store, pod())
    assert (status.code, status.reason) == (CONFLICT, "AlreadyExists") and again is store
    got = registry.get(store, res.key_of(obj))
    assert (got.code, got.resource_version, got.detail) == (OK, 2, obj)
    assert registry.get(store, res.key("Pod", "default", "nope")).code == NOT_FOUND


def test_a_stale_resource_version_is_409_conflict_and_writes_nothing():
    store, status = created(mvcc.INITIAL, pod())
    rv = status.resource_version
    first = res.with_spec(status.detail, "image", "v1")
    store, ok = registry.update(store, first, rv)
    assert ok.code == OK and ok.resource_version == 3
    stale = res.with_spec(status.detail, "image", "v2")
    after, conflict = registry.update(store, stale, rv)
    assert (conflict.code, conflict.reason) == (CONFLICT, "Conflict")
    assert after is store  # nothing written: the loser must re-read and retry
    assert res.spec_get(registry.get(store, res.key_of(stale)).detail, "image") == "v1"


def test_update_of_a_missing_object_is_404():
    _, status = registry.update(mvcc.INITIAL, pod(), 2)
    assert status.code == NOT_FOUND


def test_an_update_that_changes_nothing_keeps_the_resource_version():
    store, status = created(mvcc.INITIAL, pod())
    same, ok = registry.update(store, status.detail, status.resource_version)
    assert same is store and (ok.code, ok.resource_version) == (OK, 2)
    assert registry.update(store, status.detail, 1)[1].code == CONFLICT


def test_generation_moves_with_the_spec_only():
    store, status = created(mvcc.INITIAL, pod())
    obj, rv = status.detail, status.resource_version
    store, relabelled = registry.update(store, res.replace(obj, res.LABELS, (("a", "b"),)), rv)
    assert relabelled.detail[res.GENERATION] == 1
    store, respec = registry.update(store, res.with_spec(relabelled.detail, "image", "v2"),
                                    relabelled.resource_version)
    assert respec.detail[res.GENERATION] == 2
    assert respec.detail[res.UID] == obj[res.UID]  # identity is the server's


def test_resource_version_is_the_keys_mod_revision():
    store, status = created(mvcc.INITIAL, pod())
    kv = mvcc.kv_at(store, res.key_of(status.detail))
    assert kv.mod_revision == status.resource_version


# -- delete, finalizers, propagation ------------------------------------------------


def test_delete_without_finalizers_removes_and_a_second_delete_is_404():
    store, status = created(mvcc.INITIAL, pod())
    key = res.key_of(status.detail)
    store, gone = registry.delete(store, key)
    assert gone.code == OK and registry.get(store, key).code == NOT_FOUND
    assert registry.delete(store, key)[1].code == NOT_FOUND


def test_delete_with_a_stale_precondition_is_409():
    store, status = created(mvcc.INITIAL, pod())
    store, _ = registry.update(store, res.with_spec(status.detail, "image", "v1"),
                               status.resource_version)
    _, conflict = registry.delete(store, res.key_of(status.detail),
                                  resource_version=status.resource_version)
    assert conflict.code == CONFLICT


def test_finalizers_defer_deletion_until_the_list_is_empty():
    store, status = created(mvcc.INITIAL, pod(finalizers=("example.com/f",)))
    key = res.key_of(status.detail)
    store, accepted = registry.delete(store, key)
    assert accepted.code == ACCEPTED
    marked, rv = registry.current(store, key)
    assert marked[res.DELETING] == 1 and marked[res.FINALIZERS] == ("example.com/f",)
    # deletionTimestamp cannot be unset by an update
    store, upd = registry.update(store, res.replace(marked, res.DELETING, 0), rv)
    marked, rv = registry.current(store, key)
    assert marked[res.DELETING] == 1
    store, removed = registry.update(store, res.replace(marked, res.FINALIZERS, ()), rv)
    assert removed.code == OK and registry.get(store, key).code == NOT_FOUND
    # recorded as emptied, then removed: the last live version has no finalizers
    hist = mvcc.history(store, key)
    assert hist[-1][2] == 0 and res.decode(hist[-2][3])[res.FINALIZERS] == ()


@pytest.mark.parametrize("policy, finalizer", [
    (registry.FOREGROUND, registry.FOREGROUND_FINALIZER),
    (registry.ORPHAN, registry.ORPHAN_FINALIZER),
])
def test_foreground_and_orphan_add_their_finalizer_and_replace_each_other(policy, finalizer):
    store, status = created(mvcc.INITIAL, res.make("ReplicaSet", "d", "rs"))
    key = res.key_of(status.detail)
    store, accepted = registry.delete(store, key, policy)
    assert accepted.code == ACCEPTED and accepted.detail[res.FINALIZERS] == (finalizer,)
    other = registry.ORPHAN if policy == registry.FOREGROUND else registry.FOREGROUND
    store, switched = registry.delete(store, key, other)
    assert finalizer not in switched.detail[res.FINALIZERS]
    store, gone = registry.delete(store, key, registry.BACKGROUND)
    assert gone.code == OK and registry.get(store, key).code == NOT_FOUND


# -- lists and watch events ------------------------------------------------------------


def test_list_at_a_revision_is_one_snapshot_and_events_name_their_type():
    store, a = created(mvcc.INITIAL, pod("a"))
    store, b = created(store, pod("b"))
    store, _ = registry.update(store, res.with_spec(a.detail, "image", "x"), a.resource_version)
    store, _ = registry.delete(store, res.key_of(b.detail))
    ka, kb = res.key_of(a.detail), res.key_of(b.detail)
    now = registry.list_at(store, (ka, kb))
    assert now.resource_version == 5 and now.detail == ((ka, 4),)
    then = registry.list_at(store, (ka, kb), 3)
    assert then.resource_version == 3 and then.detail == ((ka, 2), (kb, 3))
    assert registry.events_at(store, 2) == ((2, ka, ADDED),)
    assert registry.events_at(store, 4) == ((4, ka, MODIFIED),)
    assert registry.events_at(store, 5) == ((5, kb, DELETED),)


# -- differential: the registry over MVCC against a plain dictionary ----------------------

NAMES = ("a", "b")
_ops = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(NAMES), st.sampled_from(("x", "y"))),
    st.tuples(st.just("update"), st.sampled_from(NAMES), st.sampled_from(("x", "y")),
              st.integers(0, 8)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.sampled_from(registry.POLICIES),
              st.booleans()),
    st.tuples(st.just("unfinalize"), st.sampled_from(NAMES)),
)


def _reference(ops):
    """What Kubernetes' semantics say, written directly over a dict:
    name -> [spec image, resourceVersion, finalizers, deleting, generation]."""
    objects, revision, codes = {}, 1, []
    for op in ops:
        kind, name = op[0], op[1]
        cur = objects.get(name)
        if kind == "create":
            if cur is not None:
                codes.append(CONFLICT)
                continue
            revision += 1
            objects[name] = [op[2], revision, ("f",) if op[2] == "y" else (), 0, 1]
            codes.append(CREATED)
        elif cur is None:
            codes.append(NOT_FOUND)
        elif kind == "update":
            if op[3] and op[3] != cur[1]:
                codes.append(CONFLICT)
                continue
            if op[2] != cur[0]:  # an update that changes nothing writes nothing
                revision += 1
                objects[name] = [op[2], revision, cur[2], cur[3], cur[4] + 1]
            codes.append(OK)
        elif kind == "unfinalize":
            if cur[3]:
                revision += 2  # recorded emptied, then removed
                del objects[name]
            elif cur[2]:
                revision += 1
                objects[name] = [cur[0], revision, (), 0, cur[4]]
            codes.append(OK)
        else:
            gc = {registry.FOREGROUND: ("foregroundDeletion",),
                  registry.ORPHAN: ("orphan",)}.get(op[2], ())
            kept = tuple(f for f in cur[2] if f not in ("foregroundDeletion", "orphan"))
            fins = kept + gc
            if not fins:
                revision += 2 if cur[2] else 1
                del objects[name]
                codes.append(OK)
            elif cur[3] and fins == cur[2]:
                codes.append(ACCEPTED)
            else:
                revision += 1
                objects[name] = [cur[0], revision, fins, 1, cur[4]]
                codes.append(ACCEPTED)
    return objects, revision, codes


def _registry(ops):
    store, codes = mvcc.INITIAL, []
    for op in ops:
        kind, name = op[0], op[1]
        key = res.key("Pod", "default", name)
        cur, rv = registry.current(store, key)
        if kind == "create":
            fins = ("f",) if op[2] == "y" else ()
            obj = pod(name, spec=POD_SPEC + (("image", op[2]),), finalizers=fins)
            store, status = registry.create(store, obj)
        elif kind == "update":
            base = cur if cur is not None else pod(name)
            store, status = registry.update(store, res.with_spec(base, "image", op[2]), op[3])
        elif kind == "unfinalize":
            if cur is None:
                store, status = registry.update(store, pod(name), 0)
            else:
                store, status = registry.update(store, res.replace(cur, res.FINALIZERS, ()), rv)
        else:
            store, status = registry.delete(store, key, op[2])
        codes.append(status.code)
    objects = {}
    for name in NAMES:
        obj, rv = registry.current(store, res.key("Pod", "default", name))
        if obj is not None:
            objects[name] = [res.spec_get(obj, "image"), rv, obj[res.FINALIZERS],
                             obj[res.DELETING], obj[res.GENERATION]]
    return objects, mvcc.revision(store), codes


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_ops, max_size=12))
def test_the_registry_agrees_with_a_direct_reading_of_the_semantics(ops):
    assert _registry(ops) == _reference(ops)
