"""The six watch guarantees of etcd's API guarantees, on recorded streams.

etcd's API guarantees (https://etcd.io/docs/v3.5/learning/api_guarantees/,
section "Watch APIs") list what a watch promises; paraphrased, with the
check each becomes here (one recorded ``watch`` operation = one stream; the
reference for "what happened" is every acknowledged write plus every event
any stream delivered, keyed by revision — see :class:`EtcdHistory`):

Ordered
    events are ordered by revision; an event never follows one of a later
    revision. *Check:* event revisions never decrease along a stream.
Unique
    an event never appears twice on a watch. *Check:* no (revision, key)
    is delivered twice on a stream.
Atomic
    a list of events covers whole revisions: the events of one revision are
    never split over several responses. *Check:* a revision appears in one
    response only, and that response holds every known event of that
    revision on the watched keys.
Reliable
    a watch never drops a subsequence of events within the available history:
    if it delivers events a < c, it delivers every b between them. *Check:*
    every known write between the first and the last revision a stream
    delivered, on its keys, was delivered.
Resumable
    a broken watch can be resumed from the last received revision. *Check:*
    a stream started at revision s delivers nothing below s, and nothing
    that happened from s up to its first event is missing — so the chain of
    streams the workload resumes (each from the last revision received + 1)
    loses and repeats nothing at its seams.
Bookmarkable
    a progress notification at revision P guarantees that all events up to P
    have been delivered. *Check:* after a progress notification P, no event
    of revision <= P arrives, and every known write from the stream's start
    up to P on its keys was delivered before it.

One more, not among the six but what makes them mean anything:
``watch-matches-kv`` — an event says what the KV API wrote: at a revision
where a write was acknowledged, the event has that write's key, type and
value, and a put event carries a value some client actually wrote to that key.
"""

from __future__ import annotations

import attrs

from kubemc.conformance.validate.etcd_history import EtcdHistory, Stream
from kubemc.conformance.validate.violation import Violation

SOURCE = "etcd API guarantees, 'Watch APIs' (https://etcd.io/docs/v3.5/learning/api_guarantees/)"
GUARANTEES = {
    "watch-ordered": "events are ordered by revision; an event never follows one of a later revision",
    "watch-unique": "an event never appears twice on a watch",
    "watch-atomic": "a list of events holds whole revisions: one revision's events are never split "
                    "over several responses",
    "watch-reliable": "a watch never drops a subsequence of events: if it delivers a < c it delivers "
                      "every b between them",
    "watch-resumable": "a watch started (or resumed) at revision s delivers every event from s on, and "
                       "none below s",
    "watch-bookmarkable": "a progress notification at revision P comes after every event up to P, "
                          "and before none of them",
}
MATCHES_KV = ("a watch event carries the key, type and value that the KV API wrote at its revision, "
              "and only values some client wrote")
SOURCE_MATCHES_KV = ("etcd API guarantees, 'Watch APIs' and 'KV APIs' "
                     "(https://etcd.io/docs/v3.5/learning/api_guarantees/)")
PER_CHECK_LIMIT = 10


def _ev(e) -> str:
    _, rev, typ, key, value = e
    return f"{typ} {key}={value}@{rev}" if typ == "put" else f"{typ} {key}@{rev}"


def _trimmed(s: Stream, responses: set[int]):
    """The stream's operation with only the responses around the violation."""
    keep = sorted({j for i in responses for j in (i - 1, i, i + 1) if 0 <= j < len(s.responses)})
    out = dict(s.op.output)
    out["responses"] = [dict(s.responses[j], index=j) for j in keep]
    out["responses_total"] = len(s.responses)
    return attrs.evolve(s.op, output=out)


def _v(h: EtcdHistory, name: str, s: Stream, message: str, revs=(), responses=(), **detail) -> Violation:
    """A watch violation; its window: the stream (only the responses that
    matter) and the writes that made the revisions involved."""
    where = f"watch stream (chain {s.chain}, from revision {s.start or 'now'}, {s.endpoint}): "
    responses = set(responses) | {e[0] for e in s.events if e[1] in set(revs)}
    stream_op = _trimmed(s, responses)
    writers = []
    for rev in sorted(set(revs)):
        for w in h.writes.get(rev, ()):
            if not isinstance(w[3], str) and w[3] not in writers:
                writers.append(w[3])
    window = tuple(sorted([stream_op, *writers], key=lambda o: o.call))
    detail = {**detail, "revisions": sorted(set(revs))[:50]}
    return Violation(name, where + message, (stream_op,), window, detail)


def _analyze(h: EtcdHistory) -> dict[str, list[Violation]]:
    cached = h.__dict__.get("_watch_violations")
    if cached is not None:
        return cached
    out: dict[str, list[Violation]] = {n: [] for n in (*GUARANTEES, "watch-matches-kv")}

    def add(name, s, msg, **detail):
        if len(out[name]) < PER_CHECK_LIMIT:
            out[name].append(_v(h, name, s, msg, **detail))

    for s in h.streams:
        evs = s.events
        # Ordered
        for a, b in zip(evs, evs[1:]):
            if b[1] < a[1]:
                add("watch-ordered", s, f"event {_ev(b)} arrived after event {_ev(a)}",
                    revs=(a[1], b[1]), responses=(a[0], b[0]), earlier=a[1], later=b[1])
                break
        # Unique
        seen: dict[tuple, tuple] = {}
        for e in evs:
            k = (e[1], e[3])
            if k in seen:
                add("watch-unique", s, f"event {_ev(e)} delivered twice (responses {seen[k][0]} and {e[0]})",
                    revs=(e[1],), responses=(seen[k][0], e[0]), key=e[3])
                break
            seen[k] = e
        # Atomic
        resp_of: dict[int, int] = {}
        for e in evs:
            if e[1] in resp_of and resp_of[e[1]] != e[0]:
                add("watch-atomic", s, f"revision {e[1]} split over responses {resp_of[e[1]]} and {e[0]}",
                    revs=(e[1],), responses=(resp_of[e[1]], e[0]))
                break
            resp_of.setdefault(e[1], e[0])
        else:
            for rev, i in resp_of.items():
                delivered = {e[3] for e in evs if e[1] == rev}
                missing = [k for typ, k, _, _ in h.writes.get(rev, ()) if s.covers(k) and k not in delivered]
                if missing:
                    add("watch-atomic", s, f"response {i} holds revision {rev} without its event(s) on "
                                           f"{missing}", revs=(rev,), responses=(i,))
                    break
        delivered = {(e[1], e[3]) for e in evs}
        if evs:
            lo_rev, hi_rev = min(e[1] for e in evs), max(e[1] for e in evs)
            # Reliable: nothing missing between the first and last delivered revision
            missing = [w for w in h.events_in(lo_rev, hi_rev, s) if (w[0], w[2]) not in delivered]
            if missing:
                rev, typ, key, value = missing[0]
                before = max((e for e in evs if e[1] < rev), key=lambda e: e[1], default=evs[0])
                after = min((e for e in evs if e[1] > rev), key=lambda e: e[1], default=evs[-1])
                add("watch-reliable", s, f"{len(missing)} event(s) missing between revisions {lo_rev} and "
                                         f"{hi_rev}, first {typ} {key}@{rev} (delivered {_ev(before)} and "
                                         f"{_ev(after)} around it)",
                    revs=(before[1], rev, after[1]), missing=[m[0] for m in missing[:20]])
            # Resumable: nothing below the start, nothing missing from the start on
            if s.start:
                below = [e for e in evs if e[1] < s.start]
                if below:
                    add("watch-resumable", s, f"started at revision {s.start} but delivered {_ev(below[0])}",
                        revs=(below[0][1],), start=s.start)
                else:
                    first = evs[0][1]
                    gap = [w for w in h.events_in(s.start, first - 1, s)]
                    if gap:
                        rev, typ, key, value = gap[0]
                        add("watch-resumable", s, f"started at revision {s.start} but its first event is at "
                                                  f"{first}: {len(gap)} event(s) from {rev} on are missing "
                                                  f"(first {typ} {key}@{rev})",
                            revs=(rev, first), start=s.start, missing=[g[0] for g in gap[:20]])
        # Bookmarkable
        lower = s.first_rev
        pos_of_event = {}
        for e in evs:
            pos_of_event.setdefault((e[1], e[3]), e[0])
        for i, r in enumerate(s.responses):
            if not r.get("progress") or not r.get("rev"):
                continue
            p = int(r["rev"])
            late = [e for e in evs if e[0] > i and e[1] <= p]
            if late:
                add("watch-bookmarkable", s, f"progress notification at revision {p} (response {i}) came "
                                             f"before event {_ev(late[0])}", revs=(late[0][1],),
                    responses=(i,), progress=p)
                break
            if lower and lower <= p:
                missing = [w for w in h.events_in(lower, p, s)
                           if pos_of_event.get((w[0], w[2]), i + 1) > i]
                if missing:
                    rev, typ, key, value = missing[0]
                    add("watch-bookmarkable", s, f"progress notification at revision {p} (response {i}) "
                                                 f"but {len(missing)} event(s) up to it were never delivered "
                                                 f"before it (first {typ} {key}@{rev})",
                        revs=(rev,), responses=(i,), progress=p, missing=[m[0] for m in missing[:20]])
                    break
                lower = p + 1       # everything up to p is accounted for
        # matches KV
        for e in evs:
            _, rev, typ, key, value = e
            acked = [w for w in h.writes.get(rev, ()) if not isinstance(w[3], str)]
            if acked:
                if not any(w[0] == typ and w[1] == key and (typ == "delete" or w[2] == value) for w in acked):
                    w = acked[0]
                    add("watch-matches-kv", s, f"event {_ev(e)} but the write acknowledged at revision {rev} "
                                               f"was {w[0]} {w[1]}={w[2]}", revs=(rev,))
                    break
            elif typ == "put" and (key, value) not in h.write_ops_by_value:
                add("watch-matches-kv", s, f"event {_ev(e)} carries a value no client wrote to {key}",
                    revs=(rev,))
                break
    h.__dict__["_watch_violations"] = out
    return out


def checker(name: str):
    def check(h: EtcdHistory):
        events = sum(len(s.events) for s in h.streams)
        first = "_watch_violations" not in h.__dict__
        note = f"{len(h.streams)} streams, {events} events"
        if first:
            note += " (one pass over the streams serves all watch checks; its time is counted here)"
        return _analyze(h)[name], events, note
    check.__name__ = f"check_{name.replace('-', '_')}"
    return check


check_matches_kv = checker("watch-matches-kv")
