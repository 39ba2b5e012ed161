"""What the cluster DNS addon must answer, judged on its answers to queries
and its zone, against the Services the apiserver holds.

The sources, each property citing the sentence it formalizes:

* the seeds: "Every new service is registered automatically with the
  cluster's DNS (CoreDNS is used)" and "Cluster DNS is a DNS server ...
  which serves DNS records for Kubernetes services" (seeds/002);
* "Kubernetes DNS-Based Service Discovery" (kubernetes/dns,
  docs/specification.md, schema 1.1.0, which added AAAA), §2.3 "Records
  for a Service with ClusterIP":
  "If the <cluster-ip> is an IPv4 address, an A record of the following form
  must exist: <service>.<ns>.svc.<zone>. <ttl> IN A <cluster-ip>"; "If the
  <cluster-ip> is an IPv6 address, an AAAA record ... IN AAAA <cluster-ip>";
  "For each port in the Service with name <port> and number <port-number>
  using protocol <proto>, an SRV record of the following form must exist:
  _<port>._<proto>.<service>.<ns>.svc.<zone>. <ttl> IN SRV <weight>
  <priority> <port-number> <service>.<ns>.svc.<zone>."; "Unnamed ports do
  not have an SRV record"; §2.1: comparisons are case-insensitive;
* "DNS for Services and Pods" (kubernetes.io/docs/concepts/
  services-networking/dns-pod-service): "'Normal' (not headless) Services
  are assigned a DNS A or AAAA record, depending on the IP family of the
  service ... This resolves to the cluster IP of the Service"; "SRV Records
  are created for named ports";
* DNS itself: an A record's RDATA is "A 32 bit Internet address" (RFC 1035
  §3.4.1), an AAAA record's "a 128 bit IPv6 address" (RFC 3596 §2.2); a name
  that does not exist is answered with RCODE 3, Name Error (RFC 1035
  §4.1.1), NXDOMAIN.

Why most are "once converged" (``eventually_always``): the addon learns about
Services by a watch (kubernetes.io/docs/reference/using-api/api-concepts,
"Efficient detection of changes"), so its records lag the apiserver; the
specification's "must exist" can only be asked of it once users and faults
have stopped and the watch has caught up. What must hold at every instant
is the safety property: whatever it serves is an address the Service really
had, of the family the record type says.

Every property is computed here from the Service objects and the wire forms
of addresses (Python's ``ipaddress``), and compared with the addon's answers
(``ClusterDns.answer``) and zone (``ClusterDns.zone``, an AXFR): never with
the addon's own record building, which is what they judge.
"""

from __future__ import annotations

import ipaddress

from kubemc.model.cluster.dns import ADDED, DELETED, MODIFIED, NAMESPACE, ZONE
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, Property

_SEEDS = ("seeds/002: 'Every new service is registered automatically with the cluster's DNS "
          "(CoreDNS is used)'; 'Cluster DNS is a DNS server ... which serves DNS records for "
          "Kubernetes services'")
_SPEC_A = ("Kubernetes DNS-Based Service Discovery (kubernetes/dns docs/specification.md, "
           "schema 1.1.0) §2.3.1: 'If the <cluster-ip> is an IPv4 address, an A record ... "
           "<service>.<ns>.svc.<zone>. <ttl> IN A <cluster-ip>'; 'If the <cluster-ip> is an "
           "IPv6 address, an AAAA record ... IN AAAA <cluster-ip>'; kubernetes.io/docs/concepts/"
           "services-networking/dns-pod-service: 'assigned a DNS A or AAAA record, depending "
           "on the IP family of the service ... This resolves to the cluster IP of the "
           "Service'")
_SPEC_SRV = ("Kubernetes DNS-Based Service Discovery §2.3.2: 'For each port in the Service "
             "with name <port> and number <port-number> using protocol <proto>, an SRV record "
             "... _<port>._<proto>.<service>.<ns>.svc.<zone>. <ttl> IN SRV <weight> <priority> "
             "<port-number> <service>.<ns>.svc.<zone>. must exist'; 'Unnamed ports do not have "
             "an SRV record'; dns-pod-service: 'SRV Records are created for named ports'")
_NXDOMAIN = ("RFC 1035 §4.1.1: RCODE 3 'Name Error ... the domain name referenced in the query "
             "does not exist'; RFC 8020 (nothing exists below an NXDOMAIN); Kubernetes "
             "DNS-Based Service Discovery §2.3: the records exist 'Given a Service named "
             "<service>' — without the Service there is nothing to resolve")
_RDATA = ("RFC 1035 §3.4.1: A RDATA is 'A 32 bit Internet address'; RFC 3596 §2.2: AAAA "
          "RDATA is 'a 128 bit IPv6 address'; Kubernetes DNS-Based Service Discovery §2.3.1: "
          "the A/AAAA record's address is the Service's <cluster-ip>")
_WATCH = ("kubernetes.io/docs/reference/using-api/api-concepts, 'Efficient detection of "
          "changes': a client lists, then watches from the list's resourceVersion; on 410 "
          "Gone it clears its cache and lists again")
_ASSUMES = ("the addon's List and Deliver are weakly fair (CoreDNS keeps its watch running); "
            "users' writes and dropped watches stop")

_VERSION = {"A": 4, "AAAA": 6}


def domain(name: str) -> str:
    """``<service>.<ns>.svc.<zone>.``, the specification's record name."""
    return f"{name}.{NAMESPACE}.svc.{ZONE}."


def _service_of(owner: str) -> str | None:
    """The Service an A/AAAA owner name names, or None if it names none."""
    suffix = f".{NAMESPACE}.svc.{ZONE}."
    head = owner.lower()[:-len(suffix)] if owner.lower().endswith(suffix) else ""
    return head if head and "." not in head else None


def _addresses(rdata: tuple, version: int):
    """The answer's RDATA as addresses of ``version``, or None if one is not
    an address of that version (an A answer carrying 128 bits, or text)."""
    out = set()
    for r in rdata:
        try:
            address = ipaddress.ip_address(r)
        except ValueError:
            return None
        if address.version != version:
            return None
        out.add(address)
    return out


def _expected_addresses(ips, version: int) -> set:
    return {a for a in map(ipaddress.ip_address, ips) if a.version == version}


# -- the properties -------------------------------------------------------------


def live_services_resolve(m, state) -> bool:
    """Every live Service's name answers A with exactly its IPv4 ClusterIPs
    and AAAA with exactly its IPv6 ones (NOERROR, possibly no data)."""
    for name, (ips, _ports) in m.services(state).items():
        for qtype, version in _VERSION.items():
            rcode, rdata = m.answer(state, domain(name), qtype)
            if rcode != "NOERROR" or _addresses(rdata, version) != _expected_addresses(
                    ips, version):
                return False
    return True


def _under(owner: str, name: str) -> bool:
    d = domain(name)
    return owner.lower() == d or owner.lower().endswith("." + d)


def deleted_services_nxdomain(m, state) -> bool:
    """Every Service name the user may use and no Service holds is NXDOMAIN
    for A, AAAA and SRV, and no record the addon serves is at or under the
    name of a Service that does not exist."""
    live = set(m.services(state))
    for name in set(m.names) - live:
        for qtype in ("A", "AAAA", "SRV"):
            if m.answer(state, domain(name), qtype)[0] != "NXDOMAIN":
                return False
    return all(any(_under(owner, n) for n in live) for owner, _, _ in m.zone(state))


def srv_exactly_for_named_ports(m, state) -> bool:
    """The SRV records served are exactly one per named port of each live
    Service: owner _<port>._<proto>.<service>..., the port's number, and the
    Service's name as target (priority and weight are not prescribed)."""
    expected = set()
    for name, (_ips, ports) in m.services(state).items():
        for port_name, proto, number in ports:
            if port_name:
                expected.add((f"_{port_name}._{proto.lower()}.{domain(name)}", number,
                              domain(name)))
    served = [(owner.lower(), rdata[2], rdata[3].lower())
              for owner, rtype, rdata in m.zone(state) if rtype == "SRV"]
    return len(served) == len(set(served)) and set(served) == expected


def answers_only_addresses_the_service_had(m, state) -> bool:
    """Asked A or AAAA at any name the addon serves, every address in the
    answer is, in the record type's own width (32 bits for A, 128 for
    AAAA), a ClusterIP that a Service of that name has had at some time."""
    had = {(n, ipaddress.ip_address(ip)) for n, ip in m.allocated(state)}
    for owner in {owner for owner, _, _ in m.zone(state)}:
        for qtype, version in _VERSION.items():
            _rcode, rdata = m.answer(state, owner, qtype)
            if not rdata:
                continue
            service, addresses = _service_of(owner), _addresses(rdata, version)
            if service is None or addresses is None:
                return False
            if any((service, a) not in had for a in addresses):
                return False
    return True


# -- covers: the bounds reach what the properties talk about ------------------------


def delete_observed(m, state) -> bool:
    """The addon has applied a DELETED watch event."""
    return DELETED in m.observed(state)


def update_observed(m, state) -> bool:
    """The addon has applied a MODIFIED watch event."""
    return MODIFIED in m.observed(state)


def create_observed(m, state) -> bool:
    """The addon has applied an ADDED watch event (a Service created after its List)."""
    return ADDED in m.observed(state)


def relisted(m, state) -> bool:
    """A watch was dropped and the addon has listed again."""
    return m.watch_dropped(state) > 0 and m.watching(state)


def dual_stack_resolves(m, state) -> bool:
    """Some Service answers both A and AAAA with addresses."""
    return any(m.answer(state, domain(n), "A")[1] and m.answer(state, domain(n), "AAAA")[1]
               for n in m.services(state))


def ipv6_only_resolves(m, state) -> bool:
    """Some Service with only an IPv6 ClusterIP answers AAAA with it and A with no data."""
    for name, (ips, _) in m.services(state).items():
        if all(":" in ip for ip in ips):
            a, aaaa = m.answer(state, domain(name), "A"), m.answer(state, domain(name), "AAAA")
            if a == ("NOERROR", ()) and aaaa[1]:
                return True
    return False


def srv_answered(m, state) -> bool:
    """Some SRV query for a named port is answered with a record."""
    return any(m.answer(state, owner, "SRV")[1]
               for owner, rtype, _ in m.zone(state) if rtype == "SRV")


PROPERTIES = (
    Property("dns_live_service_resolves", "cluster", EVENTUALLY_ALWAYS,
             "once users and faults stop, every live Service's <service>.<ns>.svc.<zone> "
             "eventually answers A with exactly its IPv4 ClusterIPs and AAAA with exactly "
             "its IPv6 ClusterIPs, and keeps doing so",
             _SPEC_A + "; " + _SEEDS + "; " + _WATCH, live_services_resolve,
             assumption=_ASSUMES),
    Property("dns_deleted_service_nxdomain", "cluster", EVENTUALLY_ALWAYS,
             "once users and faults stop, the name of a Service that does not exist "
             "eventually answers NXDOMAIN and the addon serves no record at or under it, "
             "and keeps doing so",
             _NXDOMAIN + "; " + _WATCH, deleted_services_nxdomain, assumption=_ASSUMES),
    Property("dns_srv_exactly_for_named_ports", "cluster", EVENTUALLY_ALWAYS,
             "once users and faults stop, the SRV records served are eventually exactly "
             "one per named port of each live Service (_<port>._<proto>.<service>.<ns>.svc."
             "<zone> -> port number and <service>.<ns>.svc.<zone>) and none for unnamed "
             "ports, and stay so",
             _SPEC_SRV + "; " + _WATCH, srv_exactly_for_named_ports, assumption=_ASSUMES),
    Property("dns_answers_only_addresses_the_service_had", "cluster", INVARIANT,
             "an A or AAAA answer never names an address that the Service of that name "
             "never had as a ClusterIP, read in the record type's width (A: 32 bits, "
             "AAAA: 128 bits)",
             _RDATA, answers_only_addresses_the_service_had),
    Property("dns_cover_delete_observed", "cluster", COVER,
             "the addon applies a DELETED watch event", _WATCH, delete_observed),
    Property("dns_cover_update_observed", "cluster", COVER,
             "the addon applies a MODIFIED watch event", _WATCH, update_observed),
    Property("dns_cover_create_observed", "cluster", COVER,
             "the addon applies an ADDED watch event", _WATCH + "; " + _SEEDS,
             create_observed),
    Property("dns_cover_relist", "cluster", COVER,
             "a watch is dropped and the addon lists again", _WATCH, relisted),
    Property("dns_cover_dual_stack_resolves", "cluster", COVER,
             "a dual-stack Service answers both A and AAAA", _SPEC_A, dual_stack_resolves),
    Property("dns_cover_ipv6_only_resolves", "cluster", COVER,
             "an IPv6-only Service answers AAAA with its address and A with no data",
             _SPEC_A, ipv6_only_resolves),
    Property("dns_cover_srv_answered", "cluster", COVER,
             "an SRV query for a named port is answered", _SPEC_SRV, srv_answered),
)
