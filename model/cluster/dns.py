"""The cluster DNS addon kept in step with Services by a watch (issue 15, item 3).

The seeds: "DNS service has a static IP address that is hardcoded into every
pod cluster. Every new service is registered automatically with the
cluster's DNS (CoreDNS is used)"; "Cluster DNS is a DNS server ... which
serves DNS records for Kubernetes services". What it must serve is fixed by
the "Kubernetes DNS-Based Service Discovery" specification (kubernetes/dns,
docs/specification.md, §2.3 "Records for a Service with ClusterIP") and the
Kubernetes documentation page "DNS for Services and Pods"
(kubernetes.io/docs/concepts/services-networking/dns-pod-service):

* ``<service>.<ns>.svc.<zone>.`` has an ``A`` record for an IPv4 ClusterIP
  and an ``AAAA`` record for an IPv6 one ("assigned a DNS A or AAAA record,
  depending on the IP family of the service"; a dual-stack Service has both);
* ``_<port>._<proto>.<service>.<ns>.svc.<zone>.`` has an ``SRV`` record
  naming the port number and ``<service>.<ns>.svc.<zone>.`` for every named
  port; "Unnamed ports do not have an SRV record";
* a name no Service gives records to does not exist: NXDOMAIN (RFC 1035
  §4.1.1, RCODE 3 "Name Error"; RFC 8020: nothing exists below it either).

How CoreDNS's ``kubernetes`` plugin (coredns.io/plugins/kubernetes: "This
plugin implements the Kubernetes DNS-Based Service Discovery
Specification") learns about Services is the list/watch contract of the
Kubernetes API concepts page (kubernetes.io/docs/reference/using-api/
api-concepts, "Efficient detection of changes"): it lists the Services,
then watches from the list's resourceVersion and applies the ADDED /
MODIFIED / DELETED events in order; when the watch cannot be resumed (410
Gone: the events it missed were compacted) it clears what it knows and
lists again. Queries are answered from what it learned, never from the
apiserver.

Three parts, composed with the kernel's ``Composition``; every link has the
apiserver at one end, so "the addon learns about Services only from the
apiserver" is checkable by inspecting the composition (``talks_to``):

* ``apiserver`` (:class:`ServiceApiserver`): Services as ``((kind, name),
  rv, value)`` sorted by key, the watch's undelivered events ``(rv, key,
  value or None)`` in revision order, and the resourceVersion counter — the
  convention of ``model.controllers.loop``. It also keeps, as a ghost read by
  the properties only, every (Service, ClusterIP) pair it ever allocated;
* ``user`` (:class:`ServiceUser`): creates, updates and deletes Services
  within budgets (environment steps: ``Create``, ``UpdatePorts``,
  ``SetDualStack``, ``Delete``);
* ``dns`` (:class:`DnsAddon`): the addon — whether its watch is open, its
  cache of Services, and how many watches were dropped (``WatchDropped``, a
  fault with a budget); ``List`` and ``Deliver`` are its system steps.

The seeded bugs are the addon's (``MUTANTS``: the composition hands the one
named to the addon), except ``delivers_newest_first``, a bug of the watch
stream itself, which the composition declares and its ``Deliver`` link does.

The addon's state and its two transitions (:meth:`DnsAddon.apply_event`,
:meth:`DnsAddon.relist`) and its answers (:meth:`DnsAddon.answer`,
:meth:`DnsAddon.zone`) take plain tuples and need none of the other parts,
so the addon plugs into another apiserver (the end-to-end cluster's) as is.

What is abstracted and why it is sound for the properties: one namespace
(``default``) and one zone (``cluster.local``) — records are per Service and
name it fully, so more namespaces only repeat the same records; ClusterIPs
come from a pool of two per family, allocated lowest-free (which address a
Service gets does not matter to DNS, only that it is the Service's); a
ClusterIP's primary address never changes and the secondary is only added
or removed (ServiceSpec.clusterIPs: "conditionally mutable: it allows for
adding or removing a secondary IP address, but it does not allow changing
the primary IP address"). Headless Services (no ClusterIP: records of ready
endpoints), ExternalName (CNAME), PTR records and TTLs are not modelled. A
query is a read of the addon's state, not a step: it changes nothing, so
making it a step would only multiply states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemc.model.kernel import (
    ENVIRONMENT,
    FAULT,
    SYSTEM,
    Composition,
    Link,
    Machine,
    Mutant,
    action,
)

KIND = "Service"
NAMESPACE = "default"
ZONE = "cluster.local"

A, AAAA, SRV = "A", "AAAA", "SRV"
NOERROR, NXDOMAIN = "NOERROR", "NXDOMAIN"
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

IPV4, IPV6 = "IPv4", "IPv6"
#: The address pools of the Service CIDRs, lowest first.
POOLS = {IPV4: ("10.96.0.10", "10.96.0.11"), IPV6: ("fd00::10", "fd00::11")}
#: spec.ipFamilies a user may ask for, comma-separated: single-stack either
#: way, or dual-stack with IPv4 primary (the first family is the primary's,
#: spec.clusterIP).
FAMILIES = (IPV4, IPV6, f"{IPV4},{IPV6}")

#: A Service port is (name, protocol, number); "" is an unnamed port.
HTTP = ("http", "TCP", 80)
#: a second named port, so that an SRV record carrying another named port's
#: number (the first one's, or a hard-coded 80) differs from the right one
METRICS = ("metrics", "TCP", 9090)
UNNAMED_DNS = ("", "UDP", 53)
PORT_SETS = {"named": (HTTP, METRICS), "unnamed": (UNNAMED_DNS,),
             "both": (UNNAMED_DNS, HTTP)}

#: SRV priority and weight: "numbers as described in RFC2782 and whose
#: values are not prescribed by this specification"
SRV_PRIORITY, SRV_WEIGHT = 0, 100

#: The Services at the start: "a", dual-stack, with a named and an unnamed port.
INITIAL = (("a", (POOLS[IPV4][0], POOLS[IPV6][0]), PORT_SETS["both"]),)
NAMES = ("a", "b")


def family(address: str) -> str:
    """IPv6 addresses are written with colons, IPv4 ones never are."""
    return IPV6 if ":" in address else IPV4


def key_of(name: str) -> tuple:
    """The apiserver's key of a Service: (kind, "<namespace>/<name>"), the
    cache key client-go uses (MetaNamespaceKeyFunc)."""
    return (KIND, f"{NAMESPACE}/{name}")


def name_of(key: tuple) -> str:
    return key[1].split("/", 1)[1]


def service_domain(name: str) -> str:
    """``<service>.<ns>.svc.<zone>.``"""
    return f"{name}.{NAMESPACE}.svc.{ZONE}."


# ---------------------------------------------------------------------------
# The apiserver: Services, resourceVersions, the watch's event log
# ---------------------------------------------------------------------------

OBJECTS, EVENTS, RV, ALLOCATED = range(4)


def _put(objects: tuple, key, rv, value) -> tuple:
    rest = tuple(o for o in objects if o[0] != key)
    if value is None:
        return rest
    return tuple(sorted(rest + ((key, rv, value),)))


class ServiceApiserver(Machine):
    """Services with resourceVersions and one ordered watch (the addon's).

    State ``(objects, events, rv, allocated)``: ``objects`` as
    ``model.controllers.loop`` keeps them; ``events`` the watch events the
    addon has not yet received (a List starts the watch at the list's
    revision, so it drops them); ``rv`` the last resourceVersion written;
    ``allocated`` every ``(service name, ClusterIP)`` ever allocated — a
    ghost for the properties, which no step reads. It has no steps of its
    own: users and the addon reach it through links.
    """

    name = "apiserver"
    tags: ClassVar[Mapping[str, str]] = {}

    def init_states(self):
        objects, allocated = (), ()
        for rv, (name, ips, ports) in enumerate(INITIAL, start=1):
            objects = _put(objects, key_of(name), rv, (ips, ports))
            allocated += tuple((name, ip) for ip in ips)
        yield (objects, (), len(INITIAL), tuple(sorted(allocated)))

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        objects, events, rv, allocated = state
        shown = tuple((rv_, key, DELETED if value is None else value)
                      for rv_, key, value in events)
        return {"services": objects, "watch_events": shown, "resource_version": rv,
                "allocated": allocated}

    # -- requests -------------------------------------------------------------
    @staticmethod
    def services(state) -> dict[str, tuple]:
        """name -> (clusterIPs, ports) of every live Service."""
        return {name_of(k): v for k, _, v in state[OBJECTS]}

    @staticmethod
    def _free(state, fam: str) -> str | None:
        taken = {ip for _, _, (ips, _) in state[OBJECTS] for ip in ips}
        return next((ip for ip in POOLS[fam] if ip not in taken), None)

    def _write(self, state, name: str, value):
        objects, events, rv, allocated = state
        rv += 1
        key = key_of(name)
        if value is not None:
            allocated = tuple(sorted(set(allocated) | {(name, ip) for ip in value[0]}))
        return (_put(objects, key, rv, value), events + ((rv, key, value),), rv, allocated)

    def create(self, state, name: str, families: tuple, ports: tuple):
        """Create a Service, allocating one ClusterIP per family; None when
        the name is taken (409 AlreadyExists) or a pool is exhausted."""
        if name in self.services(state):
            return None
        ips = []
        for fam in families:
            ip = self._free(state, fam)
            if ip is None:
                return None
            ips.append(ip)
        return self._write(state, name, (tuple(ips), ports))

    def update_ports(self, state, name: str, ports: tuple):
        current = self.services(state).get(name)
        if current is None or current[1] == ports:
            return None
        return self._write(state, name, (current[0], ports))

    def set_dual_stack(self, state, name: str, dual: bool):
        """Add a secondary ClusterIP of the other family (single- to
        dual-stack) or remove it (dual- to single-stack); the primary stays."""
        current = self.services(state).get(name)
        if current is None or (len(current[0]) == 2) == dual:
            return None
        ips = current[0]
        if dual:
            other = IPV6 if family(ips[0]) == IPV4 else IPV4
            ip = self._free(state, other)
            if ip is None:
                return None
            ips = (ips[0], ip)
        else:
            ips = ips[:1]
        return self._write(state, name, (ips, current[1]))

    def delete(self, state, name: str):
        if name not in self.services(state):
            return None
        return self._write(state, name, None)

    # -- list and watch -----------------------------------------------------------
    @staticmethod
    def listed(state) -> tuple[tuple, tuple]:
        """A List: every Service, and the state with the watch started at
        the list's revision (the events before it are in the list)."""
        return state[OBJECTS], (state[OBJECTS], (), state[RV], state[ALLOCATED])

    @staticmethod
    def next_event(state, newest: bool = False):
        """The oldest event not yet sent (the newest, for the mutant that
        breaks the watch's order), or None."""
        events = state[EVENTS]
        return (events[-1] if newest else events[0]) if events else None

    @staticmethod
    def sent(state, event):
        """The state once ``event`` has been sent on the watch."""
        objects, events, rv, allocated = state
        return (objects, tuple(e for e in events if e != event), rv, allocated)


# ---------------------------------------------------------------------------
# The user
# ---------------------------------------------------------------------------

BUDGETS = ("creates", "updates", "deletes")


class ServiceUser(Machine):
    """Creates, updates and deletes Services; state: how much of each budget
    is spent, so that "the desired state stops changing" is a bound."""

    name = "user"
    tags: ClassVar[Mapping[str, str]] = {}

    def __init__(self, creates: int, updates: int, deletes: int):
        super().__init__(None)
        self.limits = (creates, updates, deletes)

    def config(self):
        return dict(zip(BUDGETS, self.limits, strict=True))

    def init_states(self):
        yield (0, 0, 0)

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        return {f"{b}_spent": n for b, n in zip(BUDGETS, state, strict=True)}

    def spend(self, state, budget: str):
        i = BUDGETS.index(budget)
        if state[i] >= self.limits[i]:
            return None
        return state[:i] + (state[i] + 1,) + state[i + 1:]


# ---------------------------------------------------------------------------
# The DNS addon
# ---------------------------------------------------------------------------

WATCHING, CACHE, DROPS, OBSERVED = range(4)

#: The addon's seeded bugs, each meant to violate the named property.
MUTANTS = {
    "ignores_delete_events": Mutant(
        "the addon ignores DELETED watch events: a deleted Service is still served",
        violates="dns_deleted_service_nxdomain"),
    "relist_keeps_stale": Mutant(
        "a relist merges the listed Services into the cache instead of replacing it: "
        "a Service deleted while the watch was down is still served",
        violates="dns_deleted_service_nxdomain"),
    "aaaa_from_ipv4": Mutant(
        "an IPv4 ClusterIP is served as an AAAA record of its IPv4-mapped 16-byte form "
        "(::ffff:a.b.c.d, what Go's net.IP.To16 returns) instead of an A record",
        violates="dns_answers_only_addresses_the_service_had"),
    "srv_for_unnamed_ports": Mutant(
        "an unnamed port gets an SRV record, labelled with its number",
        violates="dns_srv_exactly_for_named_ports"),
    "srv_number_of_first_named_port": Mutant(
        "every SRV record of a Service carries the number of its first named port",
        violates="dns_srv_exactly_for_named_ports"),
    "drops_secondary_family": Mutant(
        "only the primary ClusterIP (spec.clusterIP) is served: a dual-stack Service "
        "has no record for its secondary family",
        violates="dns_live_service_resolves"),
}


class DnsAddon(Machine):
    """CoreDNS's ``kubernetes`` plugin: list, then watch; answer from the cache.

    State ``(watching, cache, drops, observed)``: whether its watch is open;
    its cache of Services, ``((kind, name), rv, value)`` sorted by key; how
    many watches were dropped (the fault's budget); and, a ghost for the
    covers only, which event types (ADDED, MODIFIED, DELETED) it has applied.
    It starts with no watch and an empty cache: the first step is a List.
    """

    name = "dns"
    mutants: ClassVar[Mapping[str, Mutant]] = MUTANTS

    def __init__(self, watch_drops: int = 1, mutant: str | None = None):
        super().__init__(mutant)
        self.watch_drops = watch_drops

    def config(self):
        return {"watch_drops": self.watch_drops}

    def init_states(self):
        yield (False, (), 0, ())

    def always(self, state):
        return [()]

    @action("WatchDropped", tag=FAULT, params=always)
    def watch_dropped(self, state):
        """Its own step: the watch drops (a fault). Everything else the
        addon does happens on the composition's links."""
        return self.dropped(state)

    def view(self, state):
        watching, cache, drops, observed = state
        return {"watching": watching, "cache": cache, "watch_drops": drops,
                "observed": observed, "zone": self.zone(state)}

    # -- the addon's transitions, usable with any apiserver ----------------------
    def dropped(self, state):
        """The watch ends and cannot be resumed (410 Gone): the addon keeps
        serving what it has until it lists again."""
        watching, cache, drops, observed = state
        if not watching or drops >= self.watch_drops:
            return None
        return (False, cache, drops + 1, observed)

    def relist(self, state, objects: tuple):
        """A List's Services replace the cache; the watch starts from there."""
        _, cache, drops, observed = state
        if self.mutant == "relist_keeps_stale":
            listed = {k for k, _, _ in objects}
            objects = tuple(sorted(objects + tuple(o for o in cache if o[0] not in listed)))
        return (True, objects, drops, observed)

    def apply_event(self, state, event: tuple):
        """One watch event ``(rv, key, value or None)``, applied in order."""
        watching, cache, drops, observed = state
        rv, key, value = event
        present = any(k == key for k, _, _ in cache)
        kind = DELETED if value is None else (MODIFIED if present else ADDED)
        if kind == DELETED and self.mutant == "ignores_delete_events":
            return state
        observed = tuple(sorted(set(observed) | {kind}))
        return (watching, _put(cache, key, rv, value), drops, observed)

    # -- the zone it serves --------------------------------------------------------
    def service_records(self, name: str, value) -> tuple:
        """The resource records of one Service: (owner, type, rdata)."""
        ips, ports = value
        owner = service_domain(name)
        out = []
        if self.mutant == "drops_secondary_family":
            ips = ips[:1]
        for ip in ips:
            if family(ip) == IPV6:
                out.append((owner, AAAA, ip))
            elif self.mutant == "aaaa_from_ipv4":
                out.append((owner, AAAA, "::ffff:" + ip))
            else:
                out.append((owner, A, ip))
        first_named = next((n for p, _, n in ports if p), None)
        for port_name, proto, number in ports:
            if port_name and self.mutant == "srv_number_of_first_named_port":
                number = first_named
            if not port_name:
                if self.mutant != "srv_for_unnamed_ports":
                    continue
                port_name = str(number)
            out.append((f"_{port_name}._{proto.lower()}.{owner}", SRV,
                        (SRV_PRIORITY, SRV_WEIGHT, number, owner)))
        return tuple(out)

    def zone(self, state) -> tuple:
        """Every record the addon serves, sorted (what a zone transfer
        returns: RFC 5936 AXFR)."""
        return tuple(sorted(rr for k, _, v in state[CACHE]
                            for rr in self.service_records(name_of(k), v)))

    def answer(self, state, qname: str, qtype: str) -> tuple[str, tuple]:
        """(rcode, rdata of the answer section). Names compare
        case-insensitively (the specification, §2.1); a name that owns no
        record and has none below it is NXDOMAIN, one that exists without
        records of ``qtype`` is NOERROR with an empty answer (NODATA)."""
        q = qname.lower()
        if not q.endswith("."):
            q += "."
        zone = self.zone(state)
        if not any(owner == q or owner.endswith("." + q) for owner, _, _ in zone):
            return NXDOMAIN, ()
        return NOERROR, tuple(sorted(rdata for owner, t, rdata in zone
                                     if owner == q and t == qtype))


# ---------------------------------------------------------------------------
# The composition
# ---------------------------------------------------------------------------

API, USER, DNS = range(3)

class ClusterDns(Composition):
    """The apiserver, a user and the DNS addon; see the module docstring.

    Bounds: ``creates``, ``updates``, ``deletes`` (the user's budgets) and
    ``watch_drops`` (the fault's budget).
    """

    #: the addon's mutants (handed to it) and the composition's own: a bug of
    #: the watch stream between the apiserver and the addon (the Deliver link)
    mutants = {**MUTANTS, "delivers_newest_first": Mutant(
        "the watch hands the addon its pending events newest first instead of in "
        "resourceVersion order: a Service updated then deleted is re-added by the update",
        violates="dns_deleted_service_nxdomain")}

    def __init__(self, *, creates: int = 1, updates: int = 1, deletes: int = 1,
                 watch_drops: int = 1, mutant: str | None = None):
        self.api = ServiceApiserver()
        self.user = ServiceUser(creates, updates, deletes)
        self.dns = DnsAddon(watch_drops)
        self.names = NAMES
        # the composition hands a mutant to the part that declares it (the
        # addon: every mutant is the addon's); the links read the parts it keeps
        super().__init__((("apiserver", self.api), ("user", self.user), ("dns", self.dns)),
                         self._links(), mutant)
        dns = self.part("dns")
        assert isinstance(dns, DnsAddon)
        self.dns = dns

    def config(self) -> dict[str, Any]:
        return {**self.user.config(), **self.dns.config()}

    # -- links: everything goes through the apiserver ---------------------------
    def _links(self) -> tuple[Link, ...]:
        api = self.api

        def request(name, budget, params, send):
            """A user's request: spends ``budget``, then the apiserver judges it."""
            def fire(user_state, api_state, p):
                spent = self.user.spend(user_state, budget)
                nxt = None if spent is None else send(api_state, *p)
                return None if nxt is None else (spent, nxt)
            return Link(name, "user", "apiserver", params, fire, ENVIRONMENT)

        def absent(joint):
            live = api.services(joint["apiserver"])
            return [(n, fams, ps) for n in self.names if n not in live
                    for fams in FAMILIES for ps in PORT_SETS]

        def live(*choices):
            return lambda joint: [(n, *c) for n in api.services(joint["apiserver"])
                                  for c in (choices or [()])]

        def list_(dns_state, api_state, p):
            if dns_state[WATCHING]:
                return None
            objects, api_state = api.listed(api_state)
            return self.dns.relist(dns_state, objects), api_state

        def deliver(dns_state, api_state, p):
            event = api.next_event(api_state, newest=self.mutant == "delivers_newest_first")
            if not dns_state[WATCHING] or event is None:
                return None
            return self.dns.apply_event(dns_state, event), api.sent(api_state, event)

        return (
            request("Create", "creates", absent,
                    lambda s, n, fams, ps: api.create(s, n, tuple(fams.split(",")), PORT_SETS[ps])),
            request("UpdatePorts", "updates", live(*((ps,) for ps in PORT_SETS)),
                    lambda s, n, ps: api.update_ports(s, n, PORT_SETS[ps])),
            request("SetDualStack", "updates", live((True,), (False,)), api.set_dual_stack),
            request("Delete", "deletes", live(), api.delete),
            Link("List", "dns", "apiserver", lambda joint: [()], list_, SYSTEM),
            Link("Deliver", "dns", "apiserver", lambda joint: [()], deliver, SYSTEM),
        )

    # -- what the properties read ---------------------------------------------------
    def services(self, state) -> dict[str, tuple]:
        """name -> (clusterIPs, ports) of every Service the apiserver holds."""
        return self.api.services(state[API])

    def allocated(self, state) -> frozenset:
        """Every (Service name, ClusterIP) the apiserver ever allocated."""
        return frozenset(state[API][ALLOCATED])

    def answer(self, state, qname: str, qtype: str) -> tuple[str, tuple]:
        """The addon's answer to a query: (rcode, rdata)."""
        return self.dns.answer(state[DNS], qname, qtype)

    def zone(self, state) -> tuple:
        """Every record the addon serves (a zone transfer)."""
        return self.dns.zone(state[DNS])

    def watch_dropped(self, state) -> int:
        return state[DNS][DROPS]

    def watching(self, state) -> bool:
        return state[DNS][WATCHING]

    def observed(self, state) -> tuple:
        return state[DNS][OBSERVED]

    def settled(self, state) -> bool:
        """The addon's watch is open and has delivered every event."""
        return state[DNS][WATCHING] and not state[API][EVENTS]
