"""Clients, apiserver replicas and the store: the request path as a
composition of three machines whose only interactions are declared links.

Why a composition: the seeds say "the api server is the only master plane
component to talk to the etcd data store"; with the parts and their links
explicit, that claim is a property checked on every step (which links reach
the store, and who changed it) rather than an assumption.

Parts (``model.kernel.Composition``):

* ``clients`` — ``clients`` writers doing list → modify → update with the
  resourceVersion they were last told, create and delete, plus (with
  ``watcher``) one watcher of object 0 (a watch on one name, as a field
  selector gives). A writer remembers, per object, the last resourceVersion
  it was told (0: unknown; a 409 makes it forget, so it reads again).
* ``apiserver`` — ``replicas`` apiserver replicas over one store (the seeds'
  multi-master topology). Each has a watch cache fed by the store's watch: its
  revision, the revision its event window starts after, the events in that
  window and the object versions at its revision. A cache that has not caught
  up yet is what a lagging replica serves. Per writer, a request slot (the
  connection): the request in flight or the answer not yet read.
* ``store`` — the etcd MVCC state (``model.store.mvcc``), unchanged.

Links (caller -> callee):

* ``clients->apiserver.Call(c, replica, op)`` — writer ``c`` reads the answer
  to its previous request, if any, and sends ``op`` to ``replica`` (writes are
  sent to replica 0 only: every replica writes through the same store txn, so
  the other choices would only repeat the same behaviours);
* ``apiserver->store.Serve(c)`` — the replica handles ``c``'s request:
  writes through ``registry`` (a store txn comparing mod_revision); reads
  with resourceVersion unset from the store (a quorum read), with "0" from the
  watch cache (any version), with "N" from the cache once it is at least at
  N (until then the request waits, as the watch cache does);
* ``apiserver->store.CatchUp(replica)`` — the cache takes the next revision's
  events from the store; if that revision is compacted away (the etcd watch
  answers "compacted") the cache re-lists at the current revision and its
  window restarts there;
* ``apiserver->store.Compact`` — the apiserver's periodic compaction of the
  store up to its current revision (at most ``compactions`` times);
* ``apiserver->clients.Deliver(replica)`` — the replica sends the watcher the
  events of the next revision after its position (all events of a revision
  at once); a position older than the cache's window ends the watch with
  410 Gone ("too old resource version");
* ``apiserver->clients.Bookmark(replica)`` — with nothing left to send up to
  the cache's revision, the replica tells the watcher that revision;
* ``clients->apiserver.Watch(replica)`` — resume a dropped watch from the
  last revision received; ``clients->apiserver.Relist(replica)`` — after a
  410, list again (from the replica's cache) and watch from that list.

``clients.DropWatch`` (a fault) drops the watch connection.

Ghost (observational) state, kept only so properties can judge histories —
nothing the modelled components decide depends on it: the apiserver part's
``journal`` (every write the store acknowledged through the apiserver, as
(revision, key, event type), built from the request and its answer — create
ADDED, update MODIFIED, delete DELETED, at the acknowledged revision — and not
from the store's history, which is what the watch caches' event stream is
derived from) and ``acked`` (the revision of the last
acknowledged write); in each request slot the least revision the read must
observe (``min_rev``, fixed when the request began); the watcher's
``delivered`` events since its stream started.

Sources: Kubernetes API conventions, "Concurrency Control and Consistency";
kubernetes.io/docs/reference/using-api/api-concepts ("Resource versions",
"Semantics for get and list": unset = most recent, a quorum read; "0" = any;
"N" = not older than N; "Efficient detection of changes": a watch from a
resourceVersion no longer in the history gets 410 Gone; "Watch bookmarks");
etcd API guarantees, "Watch APIs".
"""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.kernel import (ENVIRONMENT, FAULT, SYSTEM, Composition, Link, Machine, Mutant,
                                 UnknownMutant, action)
from kubemc.model.store import mvcc

NAMESPACE = "default"
OBJECT_NAMES = ("p0", "p1", "p2")
#: list modes: resourceVersion unset (most recent), "0" (any), "N" (not older than N)
UNSET, ANY, NOT_OLDER = "unset", "0", "N"

#: watcher status
IDLE, WATCHING, GONE = 0, 1, 2
#: slot phase
EMPTY, PENDING, ANSWERED = 0, 1, 2
EMPTY_SLOT = (EMPTY, 0, (), 0, ())

SERVE = "apiserver->store.Serve"


def _event_of(kind: str, status) -> str:
    """The watch event type an acknowledged write is, from the request and its
    answer alone: a create ADDED, a delete that removed the object DELETED
    (202, a deferred delete, only marked it: MODIFIED), an update MODIFIED (or
    DELETED when it emptied the finalizers of a deleting object and so removed
    it)."""
    if kind == "create":
        return registry.ADDED
    if kind == "delete":
        return registry.DELETED if status.code != registry.ACCEPTED else registry.MODIFIED
    return registry.DELETED if status.detail is None else registry.MODIFIED


def object_key(o: int) -> str:
    return res.key("Pod", NAMESPACE, OBJECT_NAMES[o])


class Clients(Machine):
    """The client side: writers' memory and the watcher. Its only own step is
    the fault of a dropped watch connection; everything else is a link.
    Without a watcher the part has no action at all: its ``tags`` say so, as
    the composition's tags and fairness are built from them."""

    name = "clients"

    def __init__(self, writers: int, objects: int, watcher: bool):
        super().__init__(None)
        self.writers, self.objects, self.watcher = writers, objects, bool(watcher)
        if not watcher:
            self.tags = {}

    def init_states(self):
        memos = tuple((0,) * self.objects for _ in range(self.writers))
        # the watcher starts watching object 0 at replica 0 from revision 1:
        # what listing the empty store gives (without a watcher: idle forever)
        status = WATCHING if self.watcher else IDLE
        yield (memos, (0, status, 1, 1, ()))

    def watching(self, state):
        return [()] if state[1][1] == WATCHING else []

    @action("DropWatch", tag=FAULT, params=watching)
    def drop_watch(self, state):
        w = state[1]
        if w[1] != WATCHING:
            return None
        return (state[0], (w[0], IDLE) + w[2:])

    def view(self, state):
        replica, status, start, pos, delivered = state[1]
        return {"known_rv": [list(m) for m in state[0]],
                "watcher": {"replica": replica, "status": ("idle", "watching", "gone")[status],
                            "stream_start": start, "position": pos,
                            "delivered": [list(e) for e in delivered]}}


class Apiserver(Machine):
    """The replicas' caches, the request slots and the ghost journal. Every
    change happens on a link; the part takes no step of its own."""

    name = "apiserver"
    tags = {}

    def __init__(self, replicas: int, writers: int):
        super().__init__(None)
        self.replicas, self.writers = replicas, writers

    def init_states(self):
        cache = (1, 1, (), ())  # (revision, window start, events, object versions)
        yield ((cache,) * self.replicas, (EMPTY_SLOT,) * self.writers, (), 1, 0)

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        caches, slots, journal, acked, compactions = state
        return {
            "caches": [{"revision": c[0], "window_start": c[1],
                        "events": [list(e) for e in c[2]],
                        "objects": [list(o) for o in c[3]]} for c in caches],
            "slots": [{"phase": ("empty", "pending", "answered")[s[0]], "replica": s[1],
                       "request": list(s[2]), "min_rev": s[3],
                       "answer": {"code": s[4][0], "resourceVersion": s[4][1],
                                  "read_revision": s[4][2],
                                  "items": [list(i) for i in s[4][3]]} if s[4] else "none"}
                      for s in slots],
            "journal": [list(e) for e in journal],
            "acked_revision": acked,
            "compactions": compactions,
        }


class Store(Machine):
    """The MVCC store as a part: it takes no step of its own; it is read and
    written only over links."""

    name = "store"
    tags = {}

    def __init__(self):
        super().__init__(None)

    def init_states(self):
        yield mvcc.INITIAL

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        """The store's records, each object shown by its fields."""
        return {"revision": state[0], "compact_revision": state[1],
                "keys": {k: [{"mod_revision": r[0], "create_revision": r[1], "version": r[2],
                              "object": res.describe(res.decode(r[3])) if r[2] else "tombstone"}
                             for r in hist] for k, hist in state[2]}}


class RequestPath(Composition):
    """Clients, replicas and the store (see the module docstring). The three
    models below are this composition at different bounds, each with the
    seeded bugs its bounds can show.

    Bounds: ``clients`` writers, ``objects`` pods, ``replicas`` apiserver
    replicas, ``max_revision`` (a write that would take the store past it
    never happens, so the space is finite), ``compactions``, ``watcher``
    (whether the watcher of object 0 runs) and ``list_modes`` (which of
    resourceVersion unset / "0" / "N" the writers' lists use).
    """

    name = "apiserver-request-path"
    #: every seeded bug of the request path; each model carries its own share
    all_mutants = {
        "update_without_rv_compare": Mutant(
            "an update is written with a compare against the version the apiserver "
            "just read instead of the resourceVersion the client sent (read-then-"
            "blind-write): the lost update", violates="no_lost_update"),
        "update_echoes_resource_version": Mutant(
            "a successful update answers the resourceVersion the client sent instead "
            "of the write's store revision", violates="resource_version_increases"),
        "client_writes_store_directly": Mutant(
            "a client has a link of its own to the store and writes an object there, "
            "bypassing the apiserver", violates="only_apiserver_changes_store"),
        "client_linked_to_store": Mutant(
            "the composition gives a client a read-only link to the store (a step that "
            "never changes it, so only the structural check can see it)",
            violates="store_linked_only_to_apiserver"),
        "store_linked_to_client": Mutant(
            "the composition gives the store a read-only link of its own to the clients "
            "(the store is the caller: a check of callers into the store misses it)",
            violates="store_linked_only_to_apiserver"),
        "lagging_quorum_read": Mutant(
            "a replica serves a list with resourceVersion unset from its (possibly "
            "lagging) watch cache instead of a quorum read of the store",
            violates="quorum_read_observes_acknowledged_writes"),
        "list_n_not_waiting": Mutant(
            "a list at resourceVersion N is served from a watch cache that has not yet "
            "reached N instead of waiting for it",
            violates="quorum_read_observes_acknowledged_writes"),
        "cached_items_store_revision": Mutant(
            "a replica serves a list with resourceVersion unset from its (possibly "
            "lagging) watch cache's items but labels the answer with the store's current "
            "revision", violates="quorum_read_observes_acknowledged_writes"),
        "watch_skips_compacted": Mutant(
            "a watch whose position fell out of the cache's window after a compaction "
            "silently continues from the window's start instead of ending with 410 Gone",
            violates="watch_guarantees"),
        "bookmark_ahead_of_events": Mutant(
            "a bookmark is sent at the cache's revision while events up to it are still "
            "unsent", violates="watch_guarantees"),
        "bookmark_from_any_replica": Mutant(
            "every replica sends the watcher bookmarks, not only the one serving its watch: "
            "a bookmark arrives on a stream its sender does not serve (honest, since the "
            "replicas share one store history, so only the stream's origin is wrong)",
            violates="watch_stream_from_serving_replica"),
        "deliver_newest_first": Mutant(
            "a replica sends the newest pending revision's events before older pending "
            "ones (and the position follows the oldest sent), so revisions go back",
            violates="watch_guarantees"),
        "resume_redelivers_last": Mutant(
            "a resumed watch starts just before the last revision the watcher received, "
            "so that revision's events are delivered a second time",
            violates="watch_guarantees"),
        "resume_from_cache_revision": Mutant(
            "a resumed watch starts from the replica cache's revision instead of the "
            "watcher's position, skipping the events in between",
            violates="watch_guarantees"),
        "gone_at_window_start": Mutant(
            "a watch whose position is the cache window's start (every later event is still "
            "in the window) is ended with 410 Gone: the comparison is off by one",
            violates="watch_gone_only_when_history_unavailable"),
        "create_answers_ok": Mutant(
            "a successful create answers 200 OK instead of 201 Created",
            violates="answer_codes_follow_conventions"),
    }
    mutants = all_mutants
    rare = frozenset({"apiserver->store.Compact", "clients.DropWatch"})

    def __init__(self, clients: int = 2, objects: int = 2, replicas: int = 2,
                 max_revision: int = 4, compactions: int = 0, watcher: bool = False,
                 list_modes=(UNSET, ANY, NOT_OLDER), mutant: str | None = None):
        if not 1 <= clients <= 3 or not 1 <= objects <= len(OBJECT_NAMES) \
                or not 1 <= replicas <= 3:
            raise ValueError(f"{self.name} bounds: 1 <= clients <= 3, "
                             f"1 <= objects <= {len(OBJECT_NAMES)}, 1 <= replicas <= 3")
        if max_revision < 2 or compactions < 0:
            raise ValueError(f"{self.name} bounds: max_revision >= 2, compactions >= 0")
        self.clients, self.objects, self.replicas = clients, objects, replicas
        self.max_revision, self.compactions = max_revision, compactions
        if isinstance(list_modes, str):
            list_modes = (list_modes,)
        self.list_modes = tuple(m for m in (UNSET, ANY, NOT_OLDER) if m in list_modes)
        if len(self.list_modes) != len(set(list_modes)):
            raise ValueError(f"list_modes: choose from {UNSET}, {ANY}, {NOT_OLDER}")
        self.watcher = bool(watcher)
        # the watch caches matter to watches, to lists served from them, and
        # to the seeded bug that serves quorum reads from them
        self.caches = self.watcher or any(m != UNSET for m in self.list_modes) \
            or mutant in ("lagging_quorum_read", "cached_items_store_revision")
        self.keys = tuple(object_key(o) for o in range(objects))
        self.watched = self.keys[0]
        links = [
            Link("Call", "clients", "apiserver", self._call_params, self._call, ENVIRONMENT),
            Link("Serve", "apiserver", "store", self._serve_params, self._serve, SYSTEM),
        ]
        if self.caches:
            links.append(Link("CatchUp", "apiserver", "store", self._replica_params,
                              self._catch_up, SYSTEM))
        if compactions:
            links.append(Link("Compact", "apiserver", "store", self._compact_params,
                              self._compact, SYSTEM))
        if self.watcher:
            links += [
                Link("Watch", "clients", "apiserver", self._watch_params, self._watch,
                     ENVIRONMENT),
                Link("Relist", "clients", "apiserver", self._watch_params, self._relist,
                     ENVIRONMENT),
                Link("Deliver", "apiserver", "clients", self._replica_params, self._deliver,
                     SYSTEM),
                Link("Bookmark", "apiserver", "clients", self._replica_params, self._bookmark,
                     SYSTEM),
            ]
        if mutant == "client_writes_store_directly":
            links.append(Link("DirectPut", "clients", "store", self._direct_params,
                              self._direct_put, ENVIRONMENT))
        if mutant == "client_linked_to_store":
            links.append(Link("DirectRead", "clients", "store", self._direct_params,
                              self._direct_read, ENVIRONMENT))
        if mutant == "store_linked_to_client":
            links.append(Link("Leak", "store", "clients", self._direct_params,
                              self._leak, SYSTEM))
        super().__init__([("clients", Clients(clients, objects, self.watcher)),
                          ("apiserver", Apiserver(replicas, clients)),
                          ("store", Store())], links)
        if mutant is not None and mutant not in self.mutants:
            known = ", ".join(sorted(self.mutants))
            raise UnknownMutant(f"{self.name} has no mutant {mutant!r} (known: {known})")
        self.mutant = mutant
        self.name = type(self).name

    def config(self):
        return {"clients": self.clients, "objects": self.objects, "replicas": self.replicas,
                "max_revision": self.max_revision, "compactions": self.compactions,
                "watcher": self.watcher, "list_modes": self.list_modes}

    # -- writers ---------------------------------------------------------------
    def _absorb(self, memo: tuple, slot: tuple) -> tuple:
        """What a writer knows after reading the answer in its slot."""
        if slot[0] != ANSWERED:
            return memo
        op, (code, rv, _, items) = slot[2], slot[4]
        kind = op[0]
        memo = list(memo)
        if kind == "list":
            seen = dict(items)
            return tuple(seen.get(k, 0) for k in self.keys)
        o = op[1]
        if kind in ("create", "update"):
            if code < 300:
                memo[o] = rv
            elif code == registry.CONFLICT and kind == "update":
                memo[o] = 0  # the version is stale: read again before retrying
        elif kind == "delete" and code < 300:
            memo[o] = 0
        return tuple(memo)

    def _call_params(self, joint):
        memos, slots = joint["clients"][0], joint["apiserver"][1]
        out = []
        for c in range(self.clients):
            if slots[c][0] == PENDING:
                continue
            memo = self._absorb(memos[c], slots[c])
            ops = []
            for o in range(self.objects):
                ops.append(("create", o))
                if memo[o]:
                    ops.append(("update", o, memo[o]))
                ops.append(("delete", o))
            for mode in self.list_modes:
                if mode != NOT_OLDER:
                    ops.append(("list", mode, 0))
                elif max(memo):
                    ops.append(("list", mode, max(memo)))
            # which replica forwards a write makes no difference (each writes
            # through the same store txn): writes go to replica 0, lists anywhere
            for op in ops:
                for r in (range(self.replicas) if op[0] == "list" else (0,)):
                    out.append((c, r, op))
        return out

    def _call(self, clients, api, params):
        c, r, op = params
        caches, slots, journal, acked, compactions = api
        slot = slots[c]
        if slot[0] == PENDING or not 0 <= r < self.replicas:
            return None
        memos = clients[0]
        memo = self._absorb(memos[c], slot)
        if op[0] == "update" and (len(op) != 3 or op[2] != memo[op[1]] or not op[2]):
            return None  # a writer sends the version it last read
        if op[0] == "list":
            if op[1] not in self.list_modes:
                return None
            min_rev = acked if op[1] == UNSET else op[2]
        else:
            min_rev = 0
        new_slots = slots[:c] + ((PENDING, r, op, min_rev, ()),) + slots[c + 1:]
        new_memos = memos[:c] + (memo,) + memos[c + 1:]
        return (new_memos, clients[1]), (caches, new_slots, journal, acked, compactions)

    # -- the apiserver serving a request --------------------------------------
    def _serve_params(self, joint):
        slots = joint["apiserver"][1]
        return [(c,) for c in range(self.clients) if slots[c][0] == PENDING]

    def _serve(self, api, store, params):
        (c,) = params
        caches, slots, journal, acked, compactions = api
        slot = slots[c]
        if slot[0] != PENDING:
            return None
        r, op = slot[1], slot[2]
        cache = caches[r]
        kind = op[0]
        if kind == "list":
            from_cache = op[1] != UNSET or self.mutant == "lagging_quorum_read"
            if op[1] == NOT_OLDER and cache[0] < op[2] \
                    and self.mutant != "list_n_not_waiting":
                return None  # the watch cache waits until it is at N
            if from_cache:
                read_rev, items = cache[0], cache[3]
            elif self.mutant == "cached_items_store_revision":
                read_rev, items = mvcc.revision(store), cache[3]
            else:
                listed = registry.list_at(store, self.keys)
                read_rev, items = listed.resource_version, listed.detail
            answer = (registry.OK, read_rev, read_rev, items)
            new_slots = slots[:c] + ((ANSWERED, 0, op, 0, answer),) + slots[c + 1:]
            return (caches, new_slots, journal, acked, compactions), store
        o = op[1]
        key = self.keys[o]
        if kind == "create":
            obj = res.make("Pod", NAMESPACE, OBJECT_NAMES[o],
                           spec=(("containers", ("app",)), ("image", "v0")))
            new, status = registry.create(store, obj)
        elif kind == "update":
            # the writer's modification of the object it read at op[2]
            desired = res.make("Pod", NAMESPACE, OBJECT_NAMES[o],
                               spec=(("containers", ("app",)), ("image", f"c{c}-v{op[2]}")))
            sent = op[2]
            if self.mutant == "update_without_rv_compare":
                sent = registry.current(store, key)[1]  # what it read, not what was sent
            new, status = registry.update(store, desired, sent)
        else:
            new, status = registry.delete(store, key)
        if mvcc.revision(new) > self.max_revision:
            return None  # beyond the bound: this write never happens
        rv = status.resource_version
        if status.ok:
            if kind == "update" and self.mutant == "update_echoes_resource_version":
                rv = op[2]
            if mvcc.revision(new) != mvcc.revision(store):
                # the journal records the write as its own answer states it (the
                # request's kind and the acknowledged revision), not as the store's
                # history or the event stream derive it
                journal = journal + ((status.resource_version, key, _event_of(kind, status)),)
                acked = mvcc.revision(new)
        code = status.code
        if kind == "create" and code == registry.CREATED and self.mutant == "create_answers_ok":
            code = registry.OK
        answer = (code, rv, 0, ())
        new_slots = slots[:c] + ((ANSWERED, 0, op, 0, answer),) + slots[c + 1:]
        return (caches, new_slots, journal, acked, compactions), new

    # -- the watch cache -------------------------------------------------------
    def _replica_params(self, joint):
        return [(r,) for r in range(self.replicas)]

    def _catch_up(self, api, store, params):
        (r,) = params
        caches = api[0]
        rev, start, events, versions = caches[r]
        current = mvcc.revision(store)
        if rev >= current:
            return None
        nxt = rev + 1
        if nxt < mvcc.compact_revision(store):
            # the etcd watch from nxt answers "compacted": re-list at the
            # current revision; the event window restarts there
            listed = registry.list_at(store, self.keys).detail
            cache = (current, current, (), listed)
        else:
            new_events = registry.events_at(store, nxt)
            seen = dict(versions)
            for _, k, typ in new_events:
                if typ == registry.DELETED:
                    seen.pop(k, None)
                else:
                    seen[k] = nxt
            if not self.watcher:
                new_events = ()  # nobody watches: the cache keeps no event window
            cache = (nxt, start, events + new_events, tuple(sorted(seen.items())))
        return (caches[:r] + (cache,) + caches[r + 1:],) + api[1:], store

    def _compact_params(self, joint):
        if joint["apiserver"][4] < self.compactions:
            yield ()

    def _compact(self, api, store, params):
        if api[4] >= self.compactions:
            return None
        new, resp = mvcc.apply_request(store, mvcc.Compact(mvcc.revision(store)))
        if isinstance(resp, mvcc.Error):
            return None
        return api[:4] + (api[4] + 1,), new

    # -- the watch --------------------------------------------------------------
    def _deliver(self, api, clients, params):
        (r,) = params
        replica, status, start, pos, delivered = clients[1]
        if status != WATCHING or replica != r:
            return None
        rev, window_start, events, _ = api[0][r]
        if pos < window_start or (pos == window_start
                                  and self.mutant == "gone_at_window_start"):
            if self.mutant != "watch_skips_compacted":
                watcher = (replica, GONE, start, pos, delivered)  # 410 Gone
                return api, (clients[0], watcher)
            pos = window_start  # the bug: skip what the window no longer holds
        batch = ()
        for e in events:
            if e[0] > pos and e[1] == self.watched:
                if not batch or e[0] == batch[0][0]:
                    batch += (e,)
                else:
                    break
        if self.mutant == "deliver_newest_first":
            pending = [e for e in events if e[0] > pos and e[1] == self.watched
                       and e not in delivered]
            if pending:
                newest = pending[-1][0]
                batch = tuple(e for e in pending if e[0] == newest)
                oldest = pending[0][0]
                watcher = (replica, status, start, pos if oldest < newest else newest,
                           delivered + batch)
                return api, (clients[0], watcher)
        if not batch:
            if pos == clients[1][3]:
                return None
            return api, (clients[0], (replica, status, start, pos, delivered))
        watcher = (replica, status, start, batch[0][0], delivered + batch)
        return api, (clients[0], watcher)

    def _bookmark(self, api, clients, params):
        (r,) = params
        replica, status, start, pos, delivered = clients[1]
        if status != WATCHING or (replica != r and self.mutant != "bookmark_from_any_replica"):
            return None
        rev, window_start, events, _ = api[0][r]
        if rev <= pos or pos < window_start:
            return None
        if self.mutant != "bookmark_ahead_of_events" and any(
                pos < e[0] <= rev and e[1] == self.watched for e in events):
            return None  # events up to rev are still to be sent
        watcher = (replica, status, start, rev, delivered + ((rev, "", registry.BOOKMARK),))
        return api, (clients[0], watcher)

    def _watch_params(self, joint):
        return [(r,) for r in range(self.replicas)]

    def _watch(self, clients, api, params):
        (r,) = params
        replica, status, start, pos, delivered = clients[1]
        if status != IDLE or not 0 <= r < self.replicas:
            return None
        if self.mutant == "resume_redelivers_last" and pos > start:
            pos -= 1
        elif self.mutant == "resume_from_cache_revision":
            pos = max(pos, api[0][r][0])
        return (clients[0], (r, WATCHING, start, pos, delivered)), api

    def _relist(self, clients, api, params):
        (r,) = params
        if clients[1][1] != GONE or not 0 <= r < self.replicas:
            return None
        listed_at = api[0][r][0]
        return (clients[0], (r, WATCHING, listed_at, listed_at, ())), api

    # -- the seeded bypass --------------------------------------------------------
    def _direct_params(self, joint):
        return [(o,) for o in range(self.objects)]

    def _direct_put(self, clients, store, params):
        (o,) = params
        obj = res.for_create(res.make("Pod", NAMESPACE, OBJECT_NAMES[o],
                                      spec=(("containers", ("app",)),)), "uid-direct")
        new, _ = mvcc.apply_request(store, mvcc.Put(self.keys[o], res.encode(obj)))
        if mvcc.revision(new) > self.max_revision:
            return None
        return clients, new

    def _direct_read(self, clients, store, params):
        (o,) = params
        mvcc.apply_request(store, mvcc.Range(self.keys[o]))
        return clients, store

    def _leak(self, store, clients, params):
        (o,) = params
        mvcc.apply_request(store, mvcc.Range(self.keys[o]))  # the store pushes a read out
        return store, clients


def _share(*names):
    return {n: RequestPath.all_mutants[n] for n in names}


class ApiserverWrites(RequestPath):
    """Two writers racing get → modify → update on two objects through two
    replicas: optimistic concurrency, resourceVersion, and who may touch the
    store. Lists are quorum reads only (the caches play no part here)."""

    name = "apiserver-writes"
    mutants = _share("update_without_rv_compare", "update_echoes_resource_version",
                     "client_writes_store_directly", "client_linked_to_store",
                     "store_linked_to_client", "create_answers_ok")

    def __init__(self, clients=2, objects=2, replicas=2, max_revision=4, compactions=0,
                 watcher=False, list_modes=(UNSET,), mutant=None):
        super().__init__(clients, objects, replicas, max_revision, compactions, watcher,
                         list_modes, mutant)


class ApiserverReads(RequestPath):
    """A writer whose lists use resourceVersion unset, "0" and "N" against two
    replicas whose watch caches lag behind the store."""

    name = "apiserver-reads"
    mutants = _share("lagging_quorum_read", "list_n_not_waiting",
                     "cached_items_store_revision")

    def __init__(self, clients=1, objects=2, replicas=2, max_revision=4, compactions=0,
                 watcher=False, list_modes=(UNSET, ANY, NOT_OLDER), mutant=None):
        super().__init__(clients, objects, replicas, max_revision, compactions, watcher,
                         list_modes, mutant)


class ApiserverWatch(RequestPath):
    """A writer, the watcher of object 0, two replicas' watch caches and one
    compaction: dropped and resumed watches, 410 Gone and re-list, bookmarks."""

    name = "apiserver-watch"
    mutants = _share("watch_skips_compacted", "bookmark_ahead_of_events",
                     "bookmark_from_any_replica", "gone_at_window_start",
                     "deliver_newest_first", "resume_redelivers_last",
                     "resume_from_cache_revision")

    def __init__(self, clients=1, objects=2, replicas=2, max_revision=3, compactions=1,
                 watcher=True, list_modes=(), mutant=None):
        super().__init__(clients, objects, replicas, max_revision, compactions, watcher,
                         list_modes, mutant)
