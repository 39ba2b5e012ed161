"""Properties of the apiserver's request path (``model.apiserver.requests``):
optimistic concurrency, resourceVersion, read consistency, who talks to the
store, and etcd's watch guarantees as the apiserver passes them on.

The checks read the store through ``model.store.mvcc``'s read functions, the
request a Serve step takes and the answer it sends (the messages on the
kernel's channels), the watcher's record and the ghost journal; none asks
the machine what it meant to do, so a seeded bug cannot bend the yardstick.
"""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver.requests import (ANY, DELIVER, GONE, LISTED, RELIST, SERVE, WATCHES,
                                             WATCHING, answers_channel, requests_channel,
                                             watch_channel)
from kubemc.model.store import mvcc
from kubemc.properties.core import COVER, INVARIANT, TRANSITION, Property

_SEED_API = ("seeds/000: 'the api server is the ony master plane component to talk to the "
             "etcd data store, both to read from and to save kubernetes cluster state "
             "information'; 'out of all the control plane components, only the api server "
             "is able to communicate with the etcd data store.'")
_SEED_RW = ("seeds/000: 'during processing the api server reads the kubernetes cluster's "
            "current state from the etcd data store, and after a call's execution, the "
            "resulting state of the kubernetes cluster is saved'")
_SEED_409 = ("seeds/004: 'Simultaneous requests to update a value all travel via the "
             "kube-apiserver, which then passes along the request to etcd in a series. The first "
             "request would update the database. The second request would no longer have the "
             "same version number, in which case the kube-apiserver would reply with an error "
             "409 to the requester.'")
_CONCURRENCY = ("Kubernetes API conventions, 'Concurrency Control and Consistency': "
                "resourceVersion is used for optimistic concurrency; an update whose "
                "resourceVersion does not match the stored one fails with 409 Conflict "
                "and the client must re-read and retry")
_RV = ("kubernetes.io/docs/reference/using-api/api-concepts 'Resource versions': the "
       "resourceVersion identifies the version of an object; the etcd3 storage sets it to "
       "the key's mod_revision, which the etcd data model makes strictly increasing")
_READS = ("kubernetes.io/docs/reference/using-api/api-concepts 'Semantics for get and "
          "list': resourceVersion unset = 'Most Recent', served by a quorum read from etcd; "
          "'0' = Any; 'N' = not older than N")
_CODES = ("Kubernetes API conventions (github.com/kubernetes/community, contributors/devel/"
          "sig-architecture/api-conventions.md), 'HTTP Status codes': 200 StatusOK (the request "
          "completed successfully), 201 StatusCreated (the request to create kind completed "
          "successfully), 202 StatusAccepted (the request to create or delete kind has been "
          "accepted for processing), 404 StatusNotFound (the requested resource does not "
          "exist), 409 StatusConflict (the resource the client attempted to create already "
          "exists, or the requested update operation cannot be completed due to a conflict)")
_WATCH = ("etcd API guarantees, 'Watch APIs' (etcd.io/docs/v3.5/learning/api_guarantees): "
          "ordered, unique, reliable, atomic, resumable, bookmarkable; kubernetes.io api-"
          "concepts 'Efficient detection of changes' (a watch from a resourceVersion that "
          "is no longer available ends with 410 Gone) and 'Watch bookmarks'")


def _served(m, before, step, after):
    """``(request, answer)`` of a Serve step: the request ``(writer, replica,
    op, min_rev)`` the step took from the writer's channel, and the answer
    ``(code, resourceVersion, read revision, items)`` it put on the writer's
    answer channel; None for any other step (or a Serve that sent nothing)."""
    if step.name != SERVE:
        return None
    request = step.params[1]
    k = m.channel_index[answers_channel(request[0])]
    was, now = before[-1][0][k], after[-1][0][k]
    if len(now) != len(was) + 1:
        return None
    return request, now[-1][1]


def _answered_write(m, before, step, after, kinds):
    got = _served(m, before, step, after)
    if got is None or got[0][2][0] not in kinds:
        return None
    return got


def no_lost_update(m, before, step, after) -> bool:
    """Every acknowledged update was based on the version it replaced: when
    the apiserver answers an update with success, the object's mod_revision in
    the store just before the write was the resourceVersion the client sent."""
    got = _answered_write(m, before, step, after, ("update",))
    if got is None:
        return True
    request, answer = got
    if answer[0] != registry.OK:
        return True
    op = request[2]
    kv = mvcc.kv_at(before[2], m.keys[op[1]])
    replaced = kv.mod_revision if kv is not None else 0
    return replaced == op[2]


def resource_version_increases(m, before, step, after) -> bool:
    """The resourceVersion acknowledged for a write of an object is the
    store revision of that write, and greater than every earlier version of
    the object (an update that changed nothing, and so wrote nothing, answers
    the version it left in place)."""
    got = _answered_write(m, before, step, after, ("create", "update", "delete"))
    if got is None:
        return True
    request, answer = got
    code, rv = answer[0], answer[1]
    if code >= 300:
        return True
    key = m.keys[request[2][1]]
    old, new = mvcc.history(before[2], key), mvcc.history(after[2], key)
    previous = old[-1][0] if old else 0
    written = new[-1][0] if new else 0
    if old == new:
        return rv == previous  # a write that changed nothing keeps its version
    return rv > previous and rv == written


def _snapshot(store, keys, rev: int) -> dict:
    """The objects a read of ``store`` at revision ``rev`` returns, restated
    from etcd's data model (each key's records are its versions, oldest first;
    the newest record at or below ``rev`` is the key's value then, and a
    tombstone — version 0 — means absent): {key: mod_revision}."""
    items = {}
    for key in keys:
        newest = None
        for rec in mvcc.history(store, key):
            if rec[mvcc.R_MOD] <= rev:
                newest = rec
        if newest is not None and newest[mvcc.R_VERSION]:
            items[key] = newest[mvcc.R_MOD]
    return items


def quorum_read_observes_acknowledged_writes(m, before, step, after) -> bool:
    """A list answers one snapshot of the store: its items are exactly what the
    store held at the revision the answer reports (read independently from the
    store's history), and that revision is one the store has reached. A list
    with resourceVersion unset reads at or after every write acknowledged
    before the request began (``min_rev``, fixed when it was sent) and never
    from a compacted revision (a quorum read is at the current one); a list at
    "N" reads at N or later; at "0" any revision will do."""
    got = _answered_write(m, before, step, after, ("list",))
    if got is None:
        return True
    request, answer = got
    op = request[2]
    store = before[2]
    read_rev, items = answer[2], answer[3]
    if read_rev > mvcc.revision(store):
        return False  # a revision the store has not reached
    if read_rev < mvcc.compact_revision(store):
        # the history no longer shows that snapshot; only "0" may be that old
        return op[1] == ANY
    if dict(items) != _snapshot(store, m.keys, read_rev) or len(items) != len(dict(items)):
        return False  # not the store's snapshot at the reported revision
    if op[1] == ANY:
        return True  # resourceVersion "0": any version will do
    return read_rev >= request[3]  # every write acknowledged before it began is in it


def store_linked_only_to_apiserver(m, state) -> bool:
    """The composition's structure, checked rather than assumed: every link
    with the store at either end joins the store and the apiserver — no other
    component calls the store, and the store calls no one but the apiserver (a
    link that only reads counts too: the seeds forbid reading as well as
    writing)."""
    return all({caller, callee} == {"apiserver", "store"}
               for caller, callee in m.talks_to() if "store" in (caller, callee))


def only_apiserver_changes_store(m, before, step, after) -> bool:
    """Per step: a step that changes the store is a link step from the
    apiserver to the store."""
    if before[2] == after[2]:
        return True
    return step.name.startswith("apiserver->store.")


def watch_violation(m, state):
    """The first of the watch guarantees the watcher's stream breaks, by name,
    or None. The stream is everything delivered since the watcher (re)started
    with a list at revision ``start``, judged against the journal of
    acknowledged writes:

    * ordered — revisions never go back;
    * unique — no event is delivered twice;
    * reliable — every delivered event is an acknowledged write of the watched
      object after ``start``, and none of those up to the watcher's position is
      missing; resumable — the same across a dropped and resumed watch (the
      watcher's ``resumed`` stream is one stream);
    * bookmarkable — when a bookmark at revision b arrives, every event up to b
      has been delivered before it.

    etcd's "atomic" (a multi-key revision's events arrive together) is not
    claimed: the watcher follows one key and every write of these models
    writes one key per revision, so no behaviour could tell it apart.
    """
    replica, status, start, pos, delivered = state[0][1]
    journal = state[1][2]
    key = m.watched
    mine = [e for e in journal if e[1] == key and start < e[0]]
    events = []
    last = start
    for e in delivered:
        if e[0] < last:
            return "ordered"
        last = e[0]
        if e[2] == registry.BOOKMARK:
            if events != [x for x in mine if x[0] <= e[0]]:
                return "bookmarkable"
            continue
        if e in events:
            return "unique"
        if e not in mine:
            return "reliable"  # an event that is no acknowledged write
        events.append(e)
    if any(e not in events for e in mine if e[0] <= pos):
        return "reliable"  # a gap (across a resume: resumable)
    return None


def watch_guarantees(m, state) -> bool:
    """The watch stream keeps every guarantee of ``watch_violation``."""
    return watch_violation(m, state) is None


def watch_stream_from_serving_replica(m, before, step, after) -> bool:
    """Per step: every message the watcher takes from a watch response stream
    — events, a bookmark, the end of the stream, the answer to a relist —
    comes on the channel ``watch<r>`` of the replica ``r`` its own last watch
    request went to, and so does whatever a step adds to its stream.

    Which replica it asked is fixed where the question is asked: a step that
    puts a watch or relist request on ``watches`` must leave in the
    watcher's record the replica that request names, and no other step may
    change the record (a delivery least of all). So the record is the
    request, not something the client rewrites as it reads answers: the
    audit found a server answering a relist from another replica, with a
    client adopting the channel's replica, held while the check skipped the
    list's delivery and trusted the record.

    Why it is a property of its own: a watch is one long-running response
    from the server that received the request, and a bookmark is that
    server's statement that 'all changes up to a given resourceVersion ...
    have already been sent' on the stream. ``watch_guarantees`` judges only
    what arrived, which another replica's honest bookmark, or the same
    events carried on by another replica, does not break (the replicas share
    one store history), so it cannot see this. Which replica the apiserver
    believes serves the watch is not consulted, so a stream the apiserver
    moves to another replica without a request (a silent failover) is a
    violation."""
    was, now = before[0][1], after[0][1]
    if not m.watcher:
        return True
    k = m.channel_index[WATCHES]
    sent = _added(before[-1][0][k], after[-1][0][k])
    if sent:
        return len(sent) == 1 and now[0] == sent[0][1]  # the record is the replica asked
    if now[0] != was[0]:
        return False  # the record moved without a watch request
    if step.name == DELIVER and step.params[0] in {watch_channel(r) for r in range(m.replicas)}:
        return step.params[0] == watch_channel(was[0])
    if len(now[4]) <= len(was[4]) or now[4][:len(was[4])] != was[4]:
        return True  # nothing added to the stream
    return False  # the stream grew by a step that delivered nothing from a watch stream


def watch_gone_only_when_history_unavailable(m, state) -> bool:
    """A watch is ended with 410 Gone only when the history it asks for is no
    longer available: whenever the watcher's status is gone, its position
    (the last revision it received) is older than the start of the event
    window of the replica that served the watch (the window holds the events
    after its start; a position at or after it can still be served).

    Source: kubernetes.io/docs/reference/using-api/api-concepts, 'Efficient
    detection of changes': 'When the requested watch operations fail because
    the historical version of that resource is not available, clients must
    handle the case by recognizing the status code 410 Gone' — 410 is the
    answer for an unavailable history, not for one the server still holds.
    It also tells a watch that ended with 410 apart from an open one: with the
    two states one value (the mutation run's weak gap), a freshly opened watch
    reads as gone though its history is available."""
    replica, status, start, pos, delivered = state[0][1]
    if status != GONE:
        return True
    return pos < state[1][0][replica][1]


#: how a watch response stream says it ended, restated from api-concepts (410 Gone, or the
#: response closed); the model's messages name them "gone" and "closed"
_STREAM_ENDS = ("gone", "closed")


def watcher_learns_its_watch_ended(m, state) -> bool:
    """A watcher that believes its watch is open is right, or about to be
    told otherwise: whenever the watcher's status is watching and the server
    holds no watch stream for it, either its watch request is still on its
    way to the server (``watches`` is not empty) or the response stream of the
    replica it asked (``watch<r>``) ends with the end of the stream — 410 Gone
    or closed — which the watcher will read in order.

    Source: kubernetes.io/docs/reference/using-api/api-concepts, 'Efficient
    detection of changes': a watch is one long-running response that
    streams the changes; when it fails because the history is gone the client
    sees 410 Gone and must re-list, and 'if a client watch is disconnected
    then that client can start a new watch from the last returned
    resourceVersion'. Both need the end of the response to reach the client:
    a watch the server ended without a word leaves a client waiting on a
    stream nobody serves, never resuming (the audit's A05 held with the
    watch guarantees, which judge only what arrived)."""
    replica, status, _, _, _ = state[0][1]
    if status != WATCHING or state[1][1][0] >= 0:
        return True
    contents = state[-1][0]
    if contents[m.channel_index[WATCHES]]:
        return True
    stream = contents[m.channel_index[watch_channel(replica)]]
    return bool(stream) and stream[-1][0] in _STREAM_ENDS


def relist_not_older_than_position(m, before, step, after) -> bool:
    """Per step: when a replica takes the watcher's relist request — a list
    with resourceVersion N, the watcher's position, under "not older than"
    semantics — the list it answers on the replica's stream reports a
    revision r with N <= r <= the store's revision: never older than what the
    watcher asked for, never a revision the store has not reached. N is read
    from the request the step takes off ``watches``, the list's revision from
    the message the step puts on the stream.

    Source: kubernetes.io/docs/reference/using-api/api-concepts, 'Semantics
    for get and list' / 'Resource versions': resourceVersion unset is the
    most recent (a quorum read), "0" any, and a non-zero N 'not older than'
    N ('the returned data is at least as new as N'). The model's relist is
    such a list at the watcher's position (client-go's reflector relists
    after a 410 at unset, a quorum read, which is at least as new); a relist
    older than the position takes the watcher back in time (the audit's A06
    and A06b held at the window's start and at revision 1)."""
    if step.name != "apiserver.Deliver" or step.params[0] != WATCHES:
        return True
    request = step.params[1]
    if request[0] != RELIST:
        return True
    asked, contents_was, contents_now = request[2], before[-1][0], after[-1][0]
    lists = [msg for r in range(m.replicas)
             for msg in _added(contents_was[m.channel_index[watch_channel(r)]],
                               contents_now[m.channel_index[watch_channel(r)]])
             if msg[0] == LISTED]
    return len(lists) == 1 and asked <= lists[0][1] <= mvcc.revision(after[2])


#: HTTP status codes, restated from the API conventions (not read from the model)
_HTTP_OK, _HTTP_CREATED, _HTTP_ACCEPTED, _HTTP_NOT_FOUND, _HTTP_CONFLICT = 200, 201, 202, 404, 409


def _live(store, key) -> bool:
    """Whether ``key`` holds a live object in ``store`` (etcd's data model:
    the key's newest record is not a tombstone, version 0)."""
    hist = mvcc.history(store, key)
    return bool(hist) and bool(hist[-1][mvcc.R_VERSION])


def _mod_revision(store, key) -> int:
    hist = mvcc.history(store, key)
    return hist[-1][mvcc.R_MOD] if hist and hist[-1][mvcc.R_VERSION] else 0


def answer_codes_follow_conventions(m, before, step, after) -> bool:
    """Every answer carries the HTTP status code the API conventions give for
    its outcome, judged from the store before and after the request (read
    through etcd's history, not through the apiserver's registry):

    * a list answers 200 OK;
    * a create of a name the store does not hold answers 201 Created (and the
      object is then in the store); of a name it holds, 409 (AlreadyExists);
    * an update of an object the store does not hold answers 404 NotFound;
      one whose resourceVersion is not the object's current one answers 409
      Conflict; one whose resourceVersion is current answers 200 OK;
    * a delete of an object the store does not hold answers 404 NotFound; one
      that removes the object answers 200 OK; one that leaves it in the store
      (only marked for deletion) answers 202 Accepted.

    Source: Kubernetes API conventions, 'HTTP Status codes' (200 StatusOK:
    the request completed successfully; 201 StatusCreated: the request to
    create kind completed successfully; 202 StatusAccepted: the request to
    create or delete kind has been accepted for processing; 404
    StatusNotFound: the requested resource does not exist; 409
    StatusConflict: the resource the client attempted to create already
    exists, or the requested update cannot be completed due to a conflict)
    and 'Concurrency Control and Consistency' (an update with a stale
    resourceVersion fails with 409 Conflict)."""
    got = _served(m, before, step, after)
    if got is None:
        return True
    op, code = got[0][2], got[1][0]
    if op[0] == "list":
        return code == _HTTP_OK
    key = m.keys[op[1]]
    was, now = _live(before[2], key), _live(after[2], key)
    if op[0] == "create":
        return code == (_HTTP_CONFLICT if was else _HTTP_CREATED) and now
    if not was:
        return code == _HTTP_NOT_FOUND
    if op[0] == "update":
        stale = _mod_revision(before[2], key) != op[2]
        return code == (_HTTP_CONFLICT if stale else _HTTP_OK)
    if op[0] == "delete":
        return code == (_HTTP_ACCEPTED if now else _HTTP_OK)
    return True


def _added(was: tuple, now: tuple) -> tuple:
    """The messages a step put on a FIFO channel whose content went from
    ``was`` to ``now``: what follows the old content, after at most one
    message taken from its head; anything else counts as all new."""
    if now[:len(was)] == was:
        return now[len(was):]
    if was and now[:len(was) - 1] == was[1:]:
        return now[len(was) - 1:]
    return now


def each_request_answered_once_to_its_caller(m, before, step, after) -> bool:
    """Per step: a step that serves a request — it takes writer c's request
    off the channel c sent it on — puts exactly one answer on the answer
    channels, on c's, answering that very request (it names the same
    operation); a step that serves no request puts no answer anywhere. The
    requester is read from the channel the step took the message from (a
    fact of the step), not from anything the request or the server says.

    Source: the Kubernetes API is served over HTTP (kubernetes.io/docs/
    reference/using-api/api-concepts: 'a resource-based (RESTful)
    programmatic interface provided via HTTP'), and in HTTP a response
    answers the request it follows on the client's own connection, one
    final response per request (RFC 9110 'Messages', RFC 9112 'Persistence':
    responses on a connection are sent in the order the requests were
    received). An answer on another client's connection is a response to a
    request that client never sent, and the caller waits forever."""
    contents_was, contents_now = before[-1][0], after[-1][0]
    answers = {c: m.channel_index[answers_channel(c)] for c in range(m.clients)}
    added = {c: _added(contents_was[k], contents_now[k]) for c, k in answers.items()}
    if step.name != SERVE:
        return not any(added.values())
    caller = next((c for c in range(m.clients) if step.params[0] == requests_channel(c)), None)
    if caller is None:
        return False  # a serve of something no writer sent
    if any(added[c] for c in added if c != caller):
        return False  # an answer on another writer's connection
    mine = added[caller]
    return len(mine) == 1 and mine[0][0] == step.params[1][2]


def one_request_in_flight_per_writer(m, state) -> bool:
    """Each writer is waiting for an answer exactly while one message of its
    exchange is in flight: writer c is busy if and only if its request
    channel and its answer channel together hold exactly one message (the
    request, or the answer to it) — never two requests at once, never an
    answer nobody waits for, never a wait with nothing on the way.

    Source: the writers are HTTP/1.1 clients on one connection without
    pipelining (RFC 9112 'Persistence' / 'Pipelining': a client that does
    not pipeline sends its next request only after the response to the last
    has arrived), as client-go's requests are: a request, then its one
    response. The model's channels hold one message each; a second request
    on a full channel is a state kept but never expanded, so without this
    invariant a writer that ignored its busy flag lost its behaviours
    silently (the audit's A11 held)."""
    clients, contents = state[0], state[-1][0]
    busy = clients[2]
    for c in range(m.clients):
        in_flight = len(contents[m.channel_index[requests_channel(c)]]) \
            + len(contents[m.channel_index[answers_channel(c)]])
        if bool(busy[c]) != (in_flight == 1) or in_flight > 1:
            return False
    return True


def some_list_answered(m, state) -> bool:
    """Some writer's list request has been answered (the answer to a list is
    on its way to the writer)."""
    contents = state[-1][0]
    return any(answer[0][0] == "list" for c in range(m.clients)
               for answer in contents[m.channel_index[answers_channel(c)]])


_C = "apiserver"

PROPERTIES = (
    Property("no_lost_update", _C, TRANSITION,
             "Every acknowledged update was based on the version it replaced: the store "
             "held the object at exactly the resourceVersion the client sent.",
             f"{_SEED_409}; {_CONCURRENCY}; {_SEED_RW}", no_lost_update),
    Property("resource_version_increases", _C, TRANSITION,
             "The resourceVersion acknowledged for a write is that write's store revision "
             "and greater than every earlier version of the object.",
             f"{_RV}; {_CONCURRENCY}; {_SEED_409}", resource_version_increases),
    Property("quorum_read_observes_acknowledged_writes", _C, TRANSITION,
             "A list's items are the store's snapshot at the revision it reports; at "
             "resourceVersion unset that snapshot contains every write acknowledged before "
             "the list began; at N it is not older than N.",
             f"{_READS}; {_SEED_RW}", quorum_read_observes_acknowledged_writes),
    Property("store_linked_only_to_apiserver", _C, INVARIANT,
             "In the composition, every link with the store at either end joins it to the "
             "apiserver: no other component can read or write the store, nor hear from it.",
             _SEED_API, store_linked_only_to_apiserver),
    Property("only_apiserver_changes_store", _C, TRANSITION,
             "Every step that changes the store is a link step from the apiserver to the "
             "store.", _SEED_API, only_apiserver_changes_store),
    Property("watch_guarantees", _C, INVARIANT,
             "The watch stream is ordered, unique, reliable, resumable and bookmarkable "
             "with respect to the acknowledged writes of the watched object (etcd's "
             "'atomic' is not claimed: one key is watched and every write is one key).",
             _WATCH, watch_guarantees),
    Property("watch_stream_from_serving_replica", _C, TRANSITION,
             "Every message the watcher takes from a watch stream (events, bookmarks, the "
             "stream's end, a relist's answer) arrives on the stream of the replica its own "
             "last watch or relist request named, recorded when the request is sent and "
             "changed by nothing else (a stream moved to another replica without a request is "
             "a violation).",
             "kubernetes.io/docs/reference/using-api/api-concepts 'Efficient detection of "
             "changes' (a watch is a long-running request whose response streams the changes) "
             "and 'Watch bookmarks' (a BOOKMARK marks 'that all changes up to a given "
             "resourceVersion the client is requesting have already been sent')",
             watch_stream_from_serving_replica),
    Property("watch_gone_only_when_history_unavailable", _C, INVARIANT,
             "A watch is ended with 410 Gone only when the history it asks for is no longer "
             "available: a gone watcher's position is older than the start of the serving "
             "replica's event window.",
             "kubernetes.io/docs/reference/using-api/api-concepts 'Efficient detection of "
             "changes': 'When the requested watch operations fail because the historical "
             "version of that resource is not available, clients must handle the case by "
             "recognizing the status code 410 Gone'", watch_gone_only_when_history_unavailable),
    Property("watcher_learns_its_watch_ended", _C, INVARIANT,
             "A watcher that believes it watches while the server holds no stream for it has "
             "its watch request on the way, or the stream of the replica it asked ends with "
             "410 Gone or closed: a watch the server ends is seen to end.",
             "kubernetes.io/docs/reference/using-api/api-concepts 'Efficient detection of "
             "changes' (a watch is a long-running response; on 410 Gone the client re-lists; "
             "'if a client watch is disconnected then that client can start a new watch from "
             "the last returned resourceVersion')", watcher_learns_its_watch_ended),
    Property("relist_not_older_than_position", _C, TRANSITION,
             "The watcher's relist is a list at resourceVersion = its position, not older than "
             "it: the replica that takes it answers one list at a revision at least that "
             "position and no later than the store's.",
             "kubernetes.io/docs/reference/using-api/api-concepts 'Semantics for get and list' "
             "(resourceVersion unset: most recent, a quorum read; '0': any; non-zero N: not "
             "older than N)", relist_not_older_than_position),
    Property("one_request_in_flight_per_writer", _C, INVARIANT,
             "Each writer is busy exactly while one message of its exchange (its request or "
             "the answer to it) is in flight: never two requests at once, never an answer "
             "nobody waits for.",
             "RFC 9112 'Persistence' (a client that does not pipeline sends its next request "
             "on a connection only after the response to the last); the Kubernetes API is "
             "served over HTTP (kubernetes.io/docs/reference/using-api/api-concepts)",
             one_request_in_flight_per_writer),
    Property("answer_codes_follow_conventions", _C, TRANSITION,
             "Every answer carries the HTTP status code the API conventions give for its "
             "outcome: a list 200; a create 201, or 409 if the name exists; an update 404 if "
             "the object is absent, 409 if its resourceVersion is stale, else 200; a delete "
             "404 if absent, 200 if it removes the object, 202 if it only marks it.",
             f"{_CODES}; {_CONCURRENCY}", answer_codes_follow_conventions),
    Property("each_request_answered_once_to_its_caller", _C, TRANSITION,
             "Every Serve step puts exactly one answer on the answer channel of the writer "
             "whose request channel it took the request from, answering that request; no "
             "other step answers anything.",
             "kubernetes.io/docs/reference/using-api/api-concepts (the API is 'a resource-based "
             "(RESTful) programmatic interface provided via HTTP'); RFC 9110 'Messages' and "
             "RFC 9112 'Persistence' (each request on a connection gets its one final response "
             "on that connection, in the order the requests were received)",
             each_request_answered_once_to_its_caller),
)

COVER_LIST_ANSWERED = Property(
    "apiserver_cover_list_answered", _C, COVER,
    "some list request is answered (the models whose writers list: without a list no read "
    "property is exercised)", _READS, some_list_answered)
