"""What the CNI specification says a plugin's output must look like, as
functions returning the problems they find (an empty list: conforming).

Stated from SPEC.md (containernetworking/cni, tag spec-v1.0.0, "Section 5:
Result Types"; 1.1.0 additions marked), never from a plugin's code:

Success (ADD)
    ``cniVersion``: "The same version supplied on input"; ``interfaces``:
    each with ``name``, optional ``mac``, optional ``sandbox`` ("For
    interfaces created inside the container, this should be the value passed
    via CNI_NETNS"), 1.1: ``mtu``, ``socketPath``, ``pciID``; ``ips``: each
    ``address`` "an IP address in CIDR notation", optional ``gateway``,
    optional ``interface`` "the index into the interfaces list"; ``routes``:
    ``dst`` in CIDR notation, optional ``gw`` (1.1: ``mtu``, ``advmss``,
    ``priority``, ``table``, ``scope``); ``dns``: ``nameservers``,
    ``domain``, ``search``, ``options``.
CHECK
    "The plugin must return either nothing or an error" (Section 2, CHECK).
Error
    ``code``, ``msg``, optional ``details``, and ``cniVersion`` "the same
    value as provided by the configuration" (a "should": its absence is not
    judged, a wrong value is). "Error codes 1-99 must not be used other than
    as specified here": 1-7 and 11, and in 1.1.0 50 and 51 (STATUS: "plugin
    not available"); 100 and above are free for plugins. Exit status: "Plugins
    must indicate success with a return code of zero".
VERSION
    ``cniVersion`` and ``supportedVersions``, a list of versions.
"""

from __future__ import annotations

import ipaddress

WELL_KNOWN = {1: "Incompatible CNI version", 2: "Unsupported field in network configuration",
              3: "Container unknown or does not exist", 4: "Invalid necessary environment variables",
              5: "I/O failure", 6: "Failed to decode content", 7: "Invalid network config",
              11: "Try again later"}
WELL_KNOWN_1_1 = {50: "The plugin is not available",
                  51: "The plugin is not available, and existing containers may have limited "
                      "connectivity"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _cidr(text) -> bool:
    if not isinstance(text, str) or "/" not in text:
        return False
    try:
        ipaddress.ip_interface(text)
        return True
    except ValueError:
        return False


def _ip(text) -> bool:
    try:
        ipaddress.ip_address(text)
        return isinstance(text, str)
    except ValueError:
        return False


def success_problems(doc, version: str, netns: str | None = None, ifname: str | None = None) -> list[str]:
    """Problems of an ADD result against the 1.0 / 1.1 schema. With ``netns``
    and ``ifname`` (a chain's final result), the container's interface must
    be listed with its sandbox."""
    if not isinstance(doc, dict):
        return ["the ADD result is not a JSON object"]
    out = []
    if doc.get("cniVersion") != version:
        out.append(f"cniVersion {doc.get('cniVersion')!r}, but the configuration declared {version!r}")
    v11 = version >= "1.1.0"
    ifaces = doc.get("interfaces", [])
    if not isinstance(ifaces, list):
        out.append("'interfaces' is not a list")
        ifaces = []
    for i, it in enumerate(ifaces):
        if not isinstance(it, dict) or not isinstance(it.get("name"), str) or not it["name"]:
            out.append(f"interfaces[{i}] has no name")
            continue
        for key in ("mac", "sandbox") + (("socketPath", "pciID") if v11 else ()):
            if key in it and not isinstance(it[key], str):
                out.append(f"interfaces[{i}].{key} is not a string")
        if v11 and "mtu" in it and not _is_int(it["mtu"]):
            out.append(f"interfaces[{i}].mtu is not an integer")
    ips = doc.get("ips", [])
    if not isinstance(ips, list):
        out.append("'ips' is not a list")
        ips = []
    for i, it in enumerate(ips):
        if not isinstance(it, dict):
            out.append(f"ips[{i}] is not an object")
            continue
        if not _cidr(it.get("address")):
            out.append(f"ips[{i}].address {it.get('address')!r} is not an address in CIDR notation")
        if "gateway" in it and not _ip(it["gateway"]):
            out.append(f"ips[{i}].gateway {it['gateway']!r} is not an IP address")
        if "interface" in it and not (_is_int(it["interface"]) and 0 <= it["interface"] < len(ifaces)):
            out.append(f"ips[{i}].interface {it['interface']!r} is no index into interfaces "
                       f"(it has {len(ifaces)})")
    routes = doc.get("routes", [])
    if not isinstance(routes, list):
        out.append("'routes' is not a list")
        routes = []
    for i, r in enumerate(routes):
        if not isinstance(r, dict) or not _cidr(r.get("dst")):
            out.append(f"routes[{i}].dst is not a CIDR")
            continue
        if "gw" in r and not _ip(r["gw"]):
            out.append(f"routes[{i}].gw {r['gw']!r} is not an IP address")
        for key in (("mtu", "advmss", "priority", "table", "scope") if v11 else ()):
            if key in r and not _is_int(r[key]):
                out.append(f"routes[{i}].{key} is not an integer")
    dns = doc.get("dns", {})
    if not isinstance(dns, dict):
        out.append("'dns' is not an object")
    else:
        for key in ("nameservers", "search", "options"):
            if key in dns and not (isinstance(dns[key], list) and all(isinstance(x, str) for x in dns[key])):
                out.append(f"dns.{key} is not a list of strings")
        if "domain" in dns and not isinstance(dns["domain"], str):
            out.append("dns.domain is not a string")
        if not all(_ip(x) for x in dns.get("nameservers", []) if isinstance(dns.get("nameservers"), list)):
            out.append("dns.nameservers holds something that is not an IP address")
    if netns is not None and ifname is not None and ifaces and not any(
            isinstance(it, dict) and it.get("name") == ifname and it.get("sandbox") == netns
            for it in ifaces):
        out.append(f"no interface {ifname!r} with sandbox {netns!r} (the CNI_IFNAME / CNI_NETNS "
                   "the runtime passed) among the result's interfaces")
    return out


def error_problems(stdout: str, doc, version: str) -> list[str]:
    """Problems of a failed call's output as an Error result."""
    if not isinstance(doc, dict):
        return [f"a failing plugin must print an error object on stdout; it printed "
                f"{stdout.strip()[:200]!r}"]
    out = []
    code = doc.get("code")
    allowed = {**WELL_KNOWN, **(WELL_KNOWN_1_1 if version >= "1.1.0" else {})}
    if not _is_int(code):
        out.append(f"error code {code!r} is not an integer")
    elif code < 100 and code not in allowed:
        out.append(f"error code {code} is reserved: codes 1-99 mean only what the spec says "
                   f"({', '.join(str(c) for c in sorted(allowed))} for cniVersion {version})")
    if not isinstance(doc.get("msg"), str):
        out.append("the error has no 'msg' string")
    if "details" in doc and not isinstance(doc["details"], str):
        out.append("the error's 'details' is not a string")
    if "cniVersion" in doc and doc["cniVersion"] != version:
        out.append(f"the error's cniVersion {doc['cniVersion']!r} is not the configuration's {version!r}")
    return out


def version_problems(doc, version: str) -> list[str]:
    if not isinstance(doc, dict):
        return ["VERSION printed no JSON object"]
    out = []
    sv = doc.get("supportedVersions")
    if not (isinstance(sv, list) and all(isinstance(x, str) for x in sv)):
        out.append("supportedVersions is not a list of strings")
    elif version not in sv:
        out.append(f"supportedVersions {sv} lacks the configuration's cniVersion {version}")
    if not isinstance(doc.get("cniVersion"), str):
        out.append("VERSION result has no cniVersion")
    return out
