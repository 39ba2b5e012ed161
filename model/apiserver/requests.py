"""Clients, apiserver replicas and the store: the request path as a
composition of three parts that own their behaviour and talk over the
kernel's channels (``model.channels``, ``model.kernel.Composition``).

Why a composition: the seeds say "the api server is the only master plane
component to talk to the etcd data store"; with the parts, their channels
and their links explicit, that claim is a property checked on every step
(which channels and links reach the store, and who changed it) rather than
an assumption.

Parts:

* ``clients`` (:class:`Clients`) — ``clients`` writers doing list → modify →
  update with the resourceVersion they were last told, create and delete,
  plus (with ``watcher``) one watcher of object 0 (a watch on one name, as a
  field selector gives). A writer remembers, per object, the last
  resourceVersion it was told (0: unknown; a 409 makes it forget, so it
  reads again), and has at most one request in flight: it sends the next
  only once the answer to the last has arrived (one HTTP/1.1 connection).
* ``apiserver`` (:class:`Apiserver`) — ``replicas`` apiserver replicas over
  one store (the seeds' multi-master topology). Each has a watch cache fed by
  the store's watch: its revision, the revision its event window starts
  after, the events in that window and the object versions at its revision.
  A cache that has not caught up yet is what a lagging replica serves. The
  part also holds the server's end of the one watch: which replica serves it
  and the revision up to which it has sent.
* ``store`` (:class:`Store`) — the etcd MVCC state (``model.store.mvcc``),
  unchanged.

Channels (every one FIFO, no loss, duplication or reordering budget):

* ``requests<c>`` (clients → apiserver) — writer ``c``'s requests, each
  naming the replica it goes to (writes go to replica 0 only: every replica
  writes through the same store txn, so the other choices would only repeat
  the same behaviours); ``answers<c>`` (apiserver → clients) — the answers.
  One request in flight per writer, so each holds at most one message.
* ``watches`` (clients → apiserver) — the watcher's watch requests: resume
  from a resourceVersion, or list and watch after a 410.
* ``watch<r>`` (apiserver → clients) — the response stream of a watch served
  by replica ``r``: the events of one revision at a time, bookmarks, and the
  end of the stream (410 Gone, or closed).

Links (apiserver → store), the store as a linearizable callee:

* ``Serve`` takes a request from a ``requests<c>`` channel, serves it and
  sends the answer, in one step: writes through ``registry`` (a store txn
  comparing mod_revision); reads with resourceVersion unset from the store
  (a quorum read), with "0" from the watch cache (any version), with "N" from
  the cache once it is at least at N (until then the request stays in
  flight, as the watch cache makes it wait). Why the store is a callee and
  not a part at the end of two more channels: etcd's operations are
  linearizable (etcd API guarantees), so each txn takes effect at one
  instant between the apiserver's call and etcd's answer, and the replica
  handling the request does nothing else for it meanwhile; its receipt of
  the request commutes with every later step of the other parts (a right
  mover) and its sending of the answer with every earlier one (a left
  mover), so by Lipton's reduction taking the request, calling the store
  and sending the answer as one step loses no behaviour another part could
  observe (``Link.receives`` in the kernel). A store with its own channels
  would only add states where a txn is on the wire.
* ``CatchUp(r)`` — replica ``r``'s cache takes the next revision's events
  from the store; if that revision is compacted away (the etcd watch answers
  "compacted") the cache re-lists at the current revision and its window
  restarts there;
* ``Compact`` — the apiserver's periodic compaction of the store up to its
  current revision (at most ``compactions`` times).

The apiserver's own steps, on the watch: ``Stream(r)`` — the serving
replica sends the events of the next revision after the stream's position
(all events of a revision at once), or ends the stream with 410 Gone when
the position is older than the cache's window ("too old resource
version"); ``Bookmark(r)`` — with nothing left to send up to the cache's
revision, it sends that revision as a bookmark; ``CloseWatch`` (a fault) —
the server ends the stream (a timeout, a dropped connection), and the
watcher resumes. The clients' own steps: ``Send`` (a request), ``Watch(r)``
(resume a closed watch from the last revision received, at replica ``r``)
and ``Relist(r)`` (after a 410, list again at replica ``r`` with
resourceVersion = the watcher's position, "not older than" it — a replica
whose cache is behind waits — and watch from that list's revision).
Deliveries are ``clients.Deliver(channel, message)`` and
``apiserver.Deliver(watches, message)``.

Ghost (observational) state, kept only so properties can judge histories —
nothing the modelled components decide depends on it: the apiserver part's
``journal`` (every write the store acknowledged through the apiserver, as
(revision, key, event type), built from the request and its answer — create
ADDED, update MODIFIED, delete DELETED, at the acknowledged revision — and
not from the store's history, which is what the watch caches' event stream
is derived from); the clients part's ``acked`` (the newest revision of a
write whose success some client has received) and, in each list request,
the least revision the read must observe (``min_rev``: ``acked`` when the
list was sent, or N); the watcher's ``delivered`` events since its stream
started.

Sources: Kubernetes API conventions, "Concurrency Control and Consistency";
kubernetes.io/docs/reference/using-api/api-concepts ("Resource versions",
"Semantics for get and list": unset = most recent, a quorum read; "0" = any;
"N" = not older than N; "Efficient detection of changes": a watch from a
resourceVersion no longer in the history gets 410 Gone; "Watch bookmarks");
etcd API guarantees, "Watch APIs" and "KV APIs" (linearizable).
"""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.channels import FIFO, Channel, Sent
from kubemc.model.kernel import (ENVIRONMENT, FAULT, SYSTEM, Composition, Link, Machine, Mutant,
                                 UnknownMutant, action)
from kubemc.model.store import mvcc

NAMESPACE = "default"
OBJECT_NAMES = ("p0", "p1", "p2")
#: list modes: resourceVersion unset (most recent), "0" (any), "N" (not older than N)
UNSET, ANY, NOT_OLDER = "unset", "0", "N"

#: watcher status (LISTING: a list-and-watch request sent after a 410)
IDLE, WATCHING, GONE, LISTING = 0, 1, 2, 3
#: the server's end of the watch when no replica serves it
NO_STREAM = (-1, 0)
#: messages on a watch stream: a revision's events, a bookmark, the end of
#: the stream (410 Gone, or closed by the server), the answer to a re-list
EVENTS, BOOKMARK, GONE_MSG, CLOSED, LISTED = "events", "bookmark", "gone", "closed", "listed"
#: watch requests
RESUME, RELIST = "watch", "list"
#: the operation of the placeholder request that stands, in the canonical
#: form, for any write that waits forever past max_revision
WAITS = "waits"

WATCHES = "watches"
SERVE = "apiserver->store.Serve"
DELIVER = "clients.Deliver"


def requests_channel(c: int) -> str:
    return f"requests{c}"


def answers_channel(c: int) -> str:
    return f"answers{c}"


def watch_channel(r: int) -> str:
    """The channel carrying the response stream of a watch served by replica ``r``."""
    return f"watch{r}"


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


def _replace(items: tuple, i: int, value) -> tuple:
    return items[:i] + (value,) + items[i + 1:]


class Clients(Machine):
    """The client side: writers and the watcher. State ``(memos, watcher,
    busy, acked)``: per writer the resourceVersions it was last told and
    whether a request of its is in flight; the watcher ``(replica asked,
    status, stream start, position, delivered)``; the ghost ``acked``.

    A writer sends only what it knows (an update carries the version it last
    read); every answer and every stream message is taken as it comes: the
    watcher records events and bookmarks from whichever stream delivers them
    (``watch_stream_from_serving_replica`` judges where they came from)."""

    name = "clients"

    #: seeded bugs of the client half (the composition passes them as flags:
    #: this part's ``mutant`` stays None, the kernel carries the apiserver's)
    client_mutants = {
        "send_while_busy": Mutant(
            "a writer sends its next request without waiting for the answer to the last "
            "(the busy flag is ignored): two requests of one writer in flight at once, which "
            "the channel's capacity of one would silently cut (the audit's A11)",
            violates="one_request_in_flight_per_writer"),
    }

    def __init__(self, writers: int, objects: int, replicas: int, watcher: bool,
                 list_modes: tuple, adopts_list_replica: bool = False,
                 ignores_busy: bool = False):
        super().__init__(None)
        self.ignores_busy = ignores_busy
        #: the seeded bug relist_answered_by_other_replica's client half: it
        #: takes the stream a list came on as the replica it asked
        self.adopts_list_replica = adopts_list_replica
        self.writers, self.objects, self.replicas = writers, objects, replicas
        self.watcher, self.list_modes = bool(watcher), tuple(list_modes)
        self.keys = tuple(object_key(o) for o in range(objects))
        self.streams = {watch_channel(r): r for r in range(replicas)}

    def config(self):
        return {"writers": self.writers, "objects": self.objects, "replicas": self.replicas,
                "watcher": self.watcher, "list_modes": self.list_modes, "closes": self.closes}

    def init_states(self):
        memos = tuple((0,) * self.objects for _ in range(self.writers))
        # the watcher starts watching object 0 at replica 0 from revision 1:
        # what listing the empty store gives (without a watcher: idle forever)
        status = WATCHING if self.watcher else IDLE
        yield (memos, (0, status, 1, 1, ()), (False,) * self.writers, 0)

    # -- writers --------------------------------------------------------------
    def _sends(self, state):
        memos, _, busy, _ = state
        for c in range(self.writers):
            if busy[c] and not self.ignores_busy:
                continue
            memo = memos[c]
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
                    yield (c, r, op)

    @action("Send", tag=ENVIRONMENT, params=_sends)
    def send(self, state, c, r, op):
        memos, watcher, busy, acked = state
        if not 0 <= c < self.writers or not 0 <= r < self.replicas \
                or (busy[c] and not self.ignores_busy):
            return None
        if op[0] == "update" and (len(op) != 3 or op[2] != memos[c][op[1]] or not op[2]):
            return None  # a writer sends the version it last read
        if op[0] == "list":
            if op[1] not in self.list_modes:
                return None
            min_rev = acked if op[1] == UNSET else op[2]
        else:
            min_rev = 0
        return Sent((memos, watcher, _replace(busy, c, True), acked),
                    ((requests_channel(c), (c, r, op, min_rev)),))

    def _absorb(self, memo: tuple, op: tuple, answer: tuple) -> tuple:
        """What a writer knows after reading the answer to ``op``."""
        code, rv, _, items = answer
        kind = op[0]
        if kind == "list":
            seen = dict(items)
            return tuple(seen.get(k, 0) for k in self.keys)
        memo = list(memo)
        o = op[1]
        if kind in ("create", "update"):
            if code < 300:
                memo[o] = rv
            elif code == registry.CONFLICT and kind == "update":
                memo[o] = 0  # the version is stale: read again before retrying
        elif kind == "delete" and code < 300:
            memo[o] = 0
        return tuple(memo)

    # -- the watcher ------------------------------------------------------------
    def _when_idle(self, state):
        if not self.watcher or state[1][1] != IDLE:
            return []  # without a watcher, idle forever
        return [(r,) for r in range(self.replicas)]

    def _when_gone(self, state):
        return [(r,) for r in range(self.replicas)] if state[1][1] == GONE else []

    @action("Watch", tag=ENVIRONMENT, params=_when_idle)
    def watch(self, state, r):
        """Resume a closed watch from the last revision received."""
        memos, (_, status, start, pos, delivered), busy, acked = state
        if not self.watcher or status != IDLE or not 0 <= r < self.replicas:
            return None
        return Sent((memos, (r, WATCHING, start, pos, delivered), busy, acked),
                    ((WATCHES, (RESUME, r, pos)),))

    @action("Relist", tag=ENVIRONMENT, params=_when_gone)
    def relist(self, state, r):
        """After a 410, list again and watch from the list's revision."""
        memos, (_, status, start, pos, delivered), busy, acked = state
        if status != GONE or not 0 <= r < self.replicas:
            return None
        # a list at resourceVersion = the position, "not older than" it (the
        # reflector's relist never goes back before what it has seen)
        return Sent((memos, (r, LISTING, start, pos, delivered), busy, acked),
                    ((WATCHES, (RELIST, r, pos)),))

    def receive(self, state, channel, message):
        memos, watcher, busy, acked = state
        r = self.streams.get(channel)
        if r is None:  # an answer to writer c
            op, answer = message
            c = int(channel[len("answers"):])
            if answer[0] < 300 and op[0] != "list":
                acked = max(acked, answer[1])  # a write this client now knows done
            memos = _replace(memos, c, self._absorb(memos[c], op, answer))
            return (memos, watcher, _replace(busy, c, False), acked)
        replica, status, start, pos, delivered = watcher
        kind = message[0]
        if status == LISTING:
            if kind != LISTED:
                return None
            if self.adopts_list_replica:
                replica = r
            return (memos, (replica, WATCHING, message[1], message[1], ()), busy, acked)
        if status != WATCHING:
            return None
        if kind == EVENTS:
            batch = message[1]
            watcher = (replica, status, start, batch[-1][0], delivered + batch)
        elif kind == BOOKMARK:
            watcher = (replica, status, start, message[1],
                       delivered + ((message[1], "", registry.BOOKMARK),))
        elif kind == GONE_MSG:
            watcher = (replica, GONE, start, pos, delivered)  # 410 Gone
        elif kind == CLOSED:
            watcher = (replica, IDLE, start, pos, delivered)
        else:
            return None
        return (memos, watcher, busy, acked)

    def view(self, state):
        memos, (replica, status, start, pos, delivered), busy, acked = state
        return {"known_rv": [list(m) for m in memos],
                "busy": list(busy),
                "acked_revision": acked,
                "watcher": {"replica": replica,
                            "status": ("idle", "watching", "gone", "listing")[status],
                            "stream_start": start, "position": pos,
                            "delivered": [list(e) for e in delivered]}}


class Apiserver(Machine):
    """The replicas: their watch caches, the server's end of the watch, and
    the ghost journal. State ``(caches, stream, journal, spent)``.

    Its own steps are the watch's (``Stream``, ``Bookmark``, ``CloseWatch``)
    and the receipt of watch requests; serving a request, catching a cache
    up and compacting need the store, so the composition runs them as links
    whose effect is this part's (``serve``, ``catch_up``, ``compact``)."""

    name = "apiserver"
    mutants = {
        "update_without_rv_compare": Mutant(
            "an update is written with a compare against the version the apiserver "
            "just read instead of the resourceVersion the client sent (read-then-"
            "blind-write): the lost update", violates="no_lost_update"),
        "update_echoes_resource_version": Mutant(
            "a successful update answers the resourceVersion the client sent instead "
            "of the write's store revision", violates="resource_version_increases"),
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
            "silently continues from the window's start (its next message is the window's "
            "next events, or a bookmark at the window's start) instead of ending with 410 "
            "Gone", violates="watch_guarantees"),
        "bookmark_ahead_of_events": Mutant(
            "a bookmark is sent at the cache's revision while events up to it are still "
            "unsent", violates="watch_guarantees"),
        "bookmark_from_any_replica": Mutant(
            "every replica sends the watcher bookmarks on its own stream, not only the one "
            "serving its watch: a bookmark arrives on a stream the watcher never opened "
            "(honest, since the replicas share one store history, so only the stream's "
            "origin is wrong)", violates="watch_stream_from_serving_replica"),
        "silent_watch_failover": Mutant(
            "when the replica serving the watch ends it, another replica carries the "
            "stream on from the same position on its own connection, without the watcher "
            "having sent it a watch request: events arrive from a replica the watcher never "
            "asked", violates="watch_stream_from_serving_replica"),
        "silent_close": Mutant(
            "the server ends the watch (CloseWatch) without saying so on the stream: no "
            "CLOSED follows the last message, so the watcher still believes it watches and "
            "never re-watches (the audit's A05)",
            violates="watcher_learns_its_watch_ended"),
        "relist_answered_by_other_replica": Mutant(
            "a relist is answered, and the watch then served, by the replica after the one "
            "the watcher asked, and the watcher adopts the replica of the stream the list "
            "came on as the one it asked (the audit's A16: the record the property trusted is "
            "the client's to rewrite)", violates="watch_stream_from_serving_replica"),
        "relist_at_first_revision": Mutant(
            "a relist after 410 is answered at the store's first revision, whatever the "
            "watcher's position: the list is older than what the watcher has seen (the "
            "audit's A06b)", violates="relist_not_older_than_position"),
        "deliver_newest_first": Mutant(
            "a replica with several revisions pending sends their events newest first, so "
            "the revisions the watcher receives go back", violates="watch_guarantees"),
        "resume_redelivers_last": Mutant(
            "a resumed watch starts just before the revision the watcher asked to resume "
            "from, so that revision's events are delivered a second time",
            violates="watch_guarantees"),
        "resume_from_cache_revision": Mutant(
            "a resumed watch starts from the replica cache's revision instead of the "
            "watcher's position, skipping the events in between",
            violates="watch_guarantees"),
        "gone_at_window_start": Mutant(
            "a watch whose position is the cache window's start (every later event is still "
            "in the window) is ended with 410 Gone: the comparison is off by one",
            violates="watch_gone_only_when_history_unavailable"),
        "update_checked_against_cache": Mutant(
            "a replica pre-checks an update against its (possibly lagging) watch cache and "
            "answers 409 Conflict when the cached version differs from the one sent, "
            "without asking the store (the audit's A09: it also showed that deciding which "
            "writes wait forever on an initial apiserver part merged its answers away)",
            violates="answer_codes_follow_conventions"),
        "answer_to_other_client": Mutant(
            "a replica sends the answer to a write on the other writer's answer channel "
            "(writer c's answer goes to writer (c + 1) mod 2: the model with two writers "
            "carries it): the caller waits forever and the other takes it as its own",
            violates="each_request_answered_once_to_its_caller"),
        "create_answers_ok": Mutant(
            "a successful create answers 200 OK instead of 201 Created",
            violates="answer_codes_follow_conventions"),
    }
    def __init__(self, replicas: int, objects: int, max_revision: int, compactions: int,
                 watcher: bool, closes: int = 1, mutant: str | None = None):
        super().__init__(mutant)
        self.replicas, self.objects = replicas, objects
        self.max_revision, self.compactions, self.watcher = max_revision, compactions, watcher
        self.closes = closes
        self.keys = tuple(object_key(o) for o in range(objects))
        self.watched = self.keys[0]

    def config(self):
        return {"replicas": self.replicas, "objects": self.objects,
                "max_revision": self.max_revision, "compactions": self.compactions,
                "watcher": self.watcher, "closes": self.closes}

    def init_states(self):
        cache = (1, 1, (), ())  # (revision, window start, events, object versions)
        stream = (0, 1) if self.watcher else NO_STREAM
        yield ((cache,) * self.replicas, stream, (), (0, 0))

    # -- serving a request (the Serve link) -------------------------------------
    def serve(self, api, store, params):
        _, (c, r, op, _) = params
        caches, stream, journal, spent = api
        if not 0 <= r < self.replicas or op[0] == WAITS:
            return None  # (WAITS: canonical's stand-in for a write that waits forever)
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
            return Sent(api, ((answers_channel(c), (op, answer)),)), store
        o = op[1]
        key = self.keys[o]
        if kind == "create":
            obj = res.make("Pod", NAMESPACE, OBJECT_NAMES[o],
                           spec=(("containers", ("app",)), ("image", "v0")))
            new, status = registry.create(store, obj)
        elif kind == "update" and self.mutant == "update_checked_against_cache" \
                and dict(cache[3]).get(key, op[2]) != op[2]:
            # (a cache that has not seen the object lets the update through)
            return Sent(api, ((answers_channel(c), (op, (registry.CONFLICT, 0, 0, ()))),)), store
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
        code = status.code
        if kind == "create" and code == registry.CREATED and self.mutant == "create_answers_ok":
            code = registry.OK
        answer = (code, rv, 0, ())
        to = (c + 1) % 2 if self.mutant == "answer_to_other_client" else c
        return Sent((caches, stream, journal, spent),
                    ((answers_channel(to), (op, answer)),)), new

    # -- the watch cache (the CatchUp and Compact links) --------------------------
    def catch_up(self, api, store, params):
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
        return (_replace(caches, r, cache),) + api[1:], store

    def compact(self, api, store, params):
        done, closes = api[3]
        if done >= self.compactions:
            return None
        new, resp = mvcc.apply_request(store, mvcc.Compact(mvcc.revision(store)))
        if isinstance(resp, mvcc.Error):
            return None
        return api[:3] + ((done + 1, closes),), new

    # -- the watch ------------------------------------------------------------------
    def _serving(self, state):
        r = state[1][0]
        return [(r,)] if r >= 0 else []

    @action("Stream", tag=SYSTEM, params=_serving)
    def stream(self, state, r):
        """The serving replica sends the next revision's events of the watched
        object, or ends the stream with 410 Gone."""
        caches, (serving, pos), journal, spent = state
        if serving != r or r < 0:
            return None
        rev, window_start, events, _ = caches[r]
        out = watch_channel(r)
        if pos < window_start or (pos == window_start
                                  and self.mutant == "gone_at_window_start"):
            if self.mutant != "watch_skips_compacted":
                return Sent((caches, NO_STREAM, journal, spent), ((out, (GONE_MSG,)),))
            pos = window_start  # the bug: skip what the window no longer holds
        pending = [e for e in events if e[0] > pos and e[1] == self.watched]
        if not pending:
            if pos == state[1][1]:
                return None
            # the bug carries on from the window's start and says it is there
            return Sent((caches, (r, pos), journal, spent), ((out, (BOOKMARK, pos)),))
        first = pending[0][0]
        if self.mutant == "deliver_newest_first" and pending[-1][0] != first:
            newest_first = tuple(sorted(pending, key=lambda e: -e[0]))
            return Sent((caches, (r, pending[-1][0]), journal, spent),
                        ((out, (EVENTS, newest_first)),))
        batch = tuple(e for e in pending if e[0] == first)
        return Sent((caches, (r, first), journal, spent), ((out, (EVENTS, batch)),))

    def _bookmarkers(self, state):
        r = state[1][0]
        if r < 0:
            return []
        if self.mutant == "bookmark_from_any_replica":
            return [(x,) for x in range(self.replicas)]
        return [(r,)]

    @action("Bookmark", tag=SYSTEM, params=_bookmarkers)
    def bookmark(self, state, r):
        """With every event up to its cache's revision sent, the serving
        replica tells the watcher that revision."""
        caches, (serving, pos), journal, spent = state
        if serving < 0 or not 0 <= r < self.replicas \
                or (r != serving and self.mutant != "bookmark_from_any_replica"):
            return None
        rev, window_start, events, _ = caches[r]
        if rev <= pos or pos < window_start:
            return None
        if self.mutant != "bookmark_ahead_of_events" and any(
                pos < e[0] <= rev and e[1] == self.watched for e in events):
            return None  # events up to rev are still to be sent
        return Sent((caches, (serving, rev), journal, spent),
                    ((watch_channel(r), (BOOKMARK, rev)),))

    def _closable(self, state):
        return [()] if state[1][0] >= 0 and state[3][1] < self.closes else []

    @action("CloseWatch", tag=FAULT, rare=True, params=_closable)
    def close_watch(self, state):
        """The server ends the watch (a timeout, a dropped connection): the
        stream's last message says so, and the watcher resumes."""
        caches, (serving, pos), journal, spent = state
        if serving < 0 or spent[1] >= self.closes:
            return None
        spent = (spent[0], spent[1] + 1)
        if self.mutant == "silent_watch_failover":
            other = (serving + 1) % self.replicas
            if other == serving:
                return None
            return (caches, (other, pos), journal, spent)
        if self.mutant == "silent_close":
            return (caches, NO_STREAM, journal, spent)
        return Sent((caches, NO_STREAM, journal, spent),
                    ((watch_channel(serving), (CLOSED,)),))

    def receive(self, state, channel, message):
        """A watch request opens the stream at the replica it names: a resume
        from the watcher's revision, or a list at the cache's revision (sent
        back first) and a watch from there. The list asks for resourceVersion
        = the watcher's position, not older than it: a cache still behind it
        takes the request only once it has caught up."""
        caches, stream, journal, spent = state
        if channel != WATCHES or stream[0] >= 0 or not 0 <= message[1] < self.replicas:
            return None
        r = message[1]
        if message[0] == RESUME:
            pos = message[2]
            if self.mutant == "resume_redelivers_last" and pos > 1:
                pos -= 1
            elif self.mutant == "resume_from_cache_revision":
                pos = max(pos, caches[r][0])
            return (caches, (r, pos), journal, spent)
        if self.mutant == "relist_answered_by_other_replica":
            r = (r + 1) % self.replicas  # the other replica answers and streams on
        listed_at = caches[r][0]
        if self.mutant == "relist_at_first_revision":
            listed_at = 1  # the store's first revision, whatever the watcher has seen
        elif listed_at < message[2]:
            return None  # "not older than": the cache waits until it is there
        return Sent((caches, (r, listed_at), journal, spent),
                    ((watch_channel(r), (LISTED, listed_at)),))

    def view(self, state):
        caches, (serving, pos), journal, spent = state
        return {
            "caches": [{"revision": c[0], "window_start": c[1],
                        "events": [list(e) for e in c[2]],
                        "objects": [list(o) for o in c[3]]} for c in caches],
            "watch": {"replica": serving, "sent_up_to": pos} if serving >= 0 else "none",
            "journal": [list(e) for e in journal],
            "compactions": spent[0],
            "watches_closed": spent[1],
        }


class Store(Machine):
    """The MVCC store as a part: it takes no step of its own; the apiserver
    reads and writes it over links (a linearizable callee, see the module
    docstring)."""

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
    (whether the watcher of object 0 runs), ``list_modes`` (which of
    resourceVersion unset / "0" / "N" the writers' lists use) and
    ``closes`` (how many times in a behaviour the server may close the
    watch: a close and its resume are four steps, each a state of its own,
    so the watch model allows one).
    """

    name = "apiserver-request-path"
    #: the composition's own bugs: wiring that lets a client reach the store
    own_mutants = {
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
    }
    #: every seeded bug of the request path; each model carries its own share
    all_mutants = {**Apiserver.mutants, **Clients.client_mutants, **own_mutants}
    mutants = all_mutants
    rare = frozenset({"apiserver->store.Compact"})
    #: a watch stream's messages in flight. A stream advances its position
    #: with each event batch or bookmark, from revision 1 to at most
    #: ``max_revision`` = 3 at the watch model's bounds, and ends with one
    #: message: at most three in flight, so the capacity (a state past it
    #: is kept, not expanded) cuts no behaviour there
    stream_capacity = 3

    def __init__(self, clients: int = 2, objects: int = 2, replicas: int = 2,
                 max_revision: int = 4, compactions: int = 0, watcher: bool = False,
                 list_modes=(UNSET, ANY, NOT_OLDER), mutant: str | None = None,
                 closes: int = 1):
        if not 1 <= clients <= 3 or not 1 <= objects <= len(OBJECT_NAMES) \
                or not 1 <= replicas <= 3:
            raise ValueError(f"{self.name} bounds: 1 <= clients <= 3, "
                             f"1 <= objects <= {len(OBJECT_NAMES)}, 1 <= replicas <= 3")
        if max_revision < 2 or compactions < 0 or closes < 0:
            raise ValueError(f"{self.name} bounds: max_revision >= 2, compactions >= 0, "
                             "closes >= 0")
        if mutant is not None and mutant not in type(self).mutants:
            known = ", ".join(sorted(type(self).mutants))
            raise UnknownMutant(f"{self.name} has no mutant {mutant!r} (known: {known})")
        self.clients, self.objects, self.replicas = clients, objects, replicas
        self.max_revision, self.compactions, self.closes = max_revision, compactions, closes
        if isinstance(list_modes, str):
            list_modes = (list_modes,)
        self.list_modes = tuple(m for m in (UNSET, ANY, NOT_OLDER) if m in list_modes)
        if len(self.list_modes) != len(set(list_modes)):
            raise ValueError(f"list_modes: choose from {UNSET}, {ANY}, {NOT_OLDER}")
        self.watcher = bool(watcher)
        # the watch caches matter to watches, to lists served from them, and
        # to the seeded bug that serves quorum reads from them
        self.caches = self.watcher or any(m != UNSET for m in self.list_modes) \
            or mutant in ("lagging_quorum_read", "cached_items_store_revision",
                      "update_checked_against_cache")
        self.keys = tuple(object_key(o) for o in range(objects))
        self.watched = self.keys[0]
        # a bug of the apiserver is built into that part; the kernel carries it
        api = Apiserver(replicas, objects, max_revision, compactions, self.watcher, closes,
                        mutant=mutant if mutant in Apiserver.mutants else None)
        channels = [Channel(requests_channel(c), "clients", "apiserver", FIFO, capacity=1)
                    for c in range(clients)]
        channels += [Channel(answers_channel(c), "apiserver", "clients", FIFO, capacity=1)
                     for c in range(clients)]
        links = [Link("Serve", "apiserver", "store", None, api.serve, SYSTEM,
                      receives=tuple(requests_channel(c) for c in range(clients)))]
        if self.caches:
            links.append(Link("CatchUp", "apiserver", "store", self._replica_params,
                              api.catch_up, SYSTEM))
        if compactions:
            links.append(Link("Compact", "apiserver", "store", self._compact_params,
                              api.compact, SYSTEM))
        if self.watcher:
            channels.append(Channel(WATCHES, "clients", "apiserver", FIFO, capacity=1))
            channels += [Channel(watch_channel(r), "apiserver", "clients", FIFO,
                                 capacity=self.stream_capacity) for r in range(replicas)]
        if mutant == "client_writes_store_directly":
            links.append(Link("DirectPut", "clients", "store", self._direct_params,
                              self._direct_put, ENVIRONMENT))
        if mutant == "client_linked_to_store":
            links.append(Link("DirectRead", "clients", "store", self._direct_params,
                              self._direct_read, ENVIRONMENT))
        if mutant == "store_linked_to_client":
            links.append(Link("Leak", "store", "clients", self._direct_params,
                              self._leak, SYSTEM))
        adopts = mutant == "relist_answered_by_other_replica"
        super().__init__([("clients", Clients(clients, objects, replicas, self.watcher,
                                              self.list_modes, adopts,
                                              mutant == "send_while_busy")),
                          ("apiserver", api),
                          ("store", Store())], links, channels=channels)
        self._api = api
        self._blocked_memo: dict = {}
        self._request_channels = tuple(self.channel_index[requests_channel(c)]
                                       for c in range(clients))
        # the model is checked against its own share of the bugs, not every
        # bug its parts could carry
        self.mutants = dict(type(self).mutants)
        self.mutant = mutant
        self.name = type(self).name

    def config(self):
        return {"clients": self.clients, "objects": self.objects, "replicas": self.replicas,
                "max_revision": self.max_revision, "compactions": self.compactions,
                "watcher": self.watcher, "list_modes": self.list_modes, "closes": self.closes}

    def canonical(self, state):
        """Merge the states that differ only in which write waits forever.

        A write that would take the store past ``max_revision`` is never
        served (the bound), and once the store is at the bound no write ever
        changes it again (a compaction moves no revision), so such a request
        stays in flight for good: its writer is busy forever and nothing else
        reads it (every property of a request judges its Serve step). Which
        write it is makes no difference to any later step, so the
        representative holds the busy writer with one placeholder request in
        its channel (``WAITS``, which Serve refuses): still one request in
        flight for one busy writer. Without
        this, every kind of blocked write multiplies the states in which the
        watch protocol runs after the last write.

        Whether the write is refused is asked of the state itself — the store
        *and* the apiserver part as they are — not of an initial apiserver
        part: a replica that judged a write by its watch cache (the audit's
        pre-check against a lagging cache) would otherwise have its answers
        merged away. Once the store is at the bound the apiserver part's
        caches can only catch up to that same revision and a refused write
        reads nothing else that moves; ``tests/test_apiserver_models.py``
        checks, for the correct models and every seeded bug, that exploring
        with and without this merge gives the same verdict."""
        store = state[2]
        if mvcc.revision(store) < self.max_revision:
            return state
        contents, left, crashes = state[-1]
        api = state[1]
        blocked = [k for k in self._request_channels if contents[k]
                   and contents[k][0][2][0] != "list"
                   and self._blocked(api, store, contents[k][0])]
        if not blocked:
            return state
        # the representative keeps one message in flight (the writer is busy
        # with one request), which Serve never takes
        contents = tuple(((content[0][0], 0, (WAITS,), 0),) if k in blocked else content
                         for k, content in enumerate(contents))
        return state[:-1] + ((contents, left, crashes),)

    def _blocked(self, api, store, request) -> bool:
        """Whether serving ``request`` (a write) in the apiserver part's state
        ``api`` on ``store`` is refused by the bound; remembered per triple
        (the whole part is the key: what a write reads of it is the code's
        business, and a key narrower than that would bring back the audit's
        unsoundness for a replica that reads more)."""
        key = (api, store, request)
        known = self._blocked_memo.get(key)
        if known is None:
            known = self._api.serve(api, store, (None, request)) is None
            self._blocked_memo[key] = known
        return known

    def _replica_params(self, joint):
        return [(r,) for r in range(self.replicas)]

    def _compact_params(self, joint):
        if joint["apiserver"][3][0] < self.compactions:
            yield ()

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
                     "store_linked_to_client", "create_answers_ok", "answer_to_other_client",
                     "send_while_busy")

    def __init__(self, clients=2, objects=2, replicas=2, max_revision=4, compactions=0,
                 watcher=False, list_modes=(UNSET,), mutant=None, closes=1):
        super().__init__(clients, objects, replicas, max_revision, compactions, watcher,
                         list_modes, mutant, closes)


class ApiserverReads(RequestPath):
    """A writer whose lists use resourceVersion unset, "0" and "N" against two
    replicas whose watch caches lag behind the store."""

    name = "apiserver-reads"
    mutants = _share("lagging_quorum_read", "list_n_not_waiting",
                     "cached_items_store_revision", "update_checked_against_cache")

    def __init__(self, clients=1, objects=2, replicas=2, max_revision=4, compactions=0,
                 watcher=False, list_modes=(UNSET, ANY, NOT_OLDER), mutant=None, closes=1):
        super().__init__(clients, objects, replicas, max_revision, compactions, watcher,
                         list_modes, mutant, closes)


class ApiserverWatch(RequestPath):
    """A writer, the watcher of object 0, two replicas' watch caches and one
    compaction: watches the server closes and the watcher resumes, 410 Gone
    and re-list, bookmarks."""

    name = "apiserver-watch"
    mutants = _share("watch_skips_compacted", "bookmark_ahead_of_events",
                     "bookmark_from_any_replica", "silent_watch_failover", "silent_close",
                     "relist_at_first_revision", "relist_answered_by_other_replica",
                     "gone_at_window_start", "deliver_newest_first", "resume_redelivers_last",
                     "resume_from_cache_revision")

    def __init__(self, clients=1, objects=2, replicas=2, max_revision=3, compactions=1,
                 watcher=True, list_modes=(), mutant=None, closes=1):
        super().__init__(clients, objects, replicas, max_revision, compactions, watcher,
                         list_modes, mutant, closes)
