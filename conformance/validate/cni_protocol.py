"""Protocol checks of a CNI run: what each plugin printed, and DEL's idempotence.

``result-schema``   every ADD call's result (each plugin of the chain, and
                    the final one with the container's interface) validates
                    against Section 5's Success type for the declared
                    cniVersion; CHECK prints nothing on success; VERSION
                    answers with ``supportedVersions`` holding the version
``error-codes``     every failing call printed an Error object with a code
                    the spec allows (:func:`conformance.validate.cni_spec.error_problems`)
``check-after-add`` CHECK right after a successful ADD succeeds: the
                    container's networking is as the ADD left it (Section 2:
                    "The plugin must handle CHECK being called immediately
                    after an ADD"). One failure is told apart, counted
                    and reported as the *documented divergence*
                    ``bridge-mac-changed`` (:data:`DIVERGENCES`), a
                    violation only under ``--strict``: the bridge plugin's
                    own "Bridge interface NAME Mac doesn't match" *and* the
                    bridge's MAC, read by the runner in the node namespace
                    right after that CHECK, differs from the MAC the ADD
                    result reported for it. The same message with an
                    unchanged (or unread) MAC stays a violation.
``status-gc``       (1.1.0) STATUS succeeds where the plugin serves ADD; GC succeeds
``del-idempotent``  every DEL succeeds: the first, a repeated one, one after
                    the sandbox vanished, and one of a container never added
                    (Section 2: "Plugins should generally complete a DEL
                    action without error even if some resources are
                    missing"; Section 3: "delete may be followed by
                    additional deletes"). For a container never added, the
                    spec's error 3 ("Container unknown or does not exist …
                    the runtime does not need to perform any container
                    network cleanup") is accepted too.
"""

from __future__ import annotations

import re

from kubemc.conformance.validate.violation import Violation
from kubemc.conformance.validate.cni import CniHistory, calls, purpose, succeeded
from kubemc.conformance.validate.cni_spec import error_problems, success_problems, version_problems

SPEC = "CNI SPEC.md (containernetworking/cni, spec-v1.0.0)"

DIVERGENCE_BRIDGE_MAC = "bridge-mac-changed"
#: documented divergences of the installed plugins: name -> what and the upstream reference
DIVERGENCES = {
    DIVERGENCE_BRIDGE_MAC: "the bridge plugin's CHECK right after ADD failed with \"Bridge interface "
    "<name> Mac doesn't match\" and the bridge's MAC, read after that CHECK, is no longer the one "
    "the ADD result reported: later ADDs on the node attached ports, and a Linux bridge whose MAC is "
    "not pinned follows its ports' (the plugin's defect, not the runtime's: SPEC.md Section 2 lets "
    "a runtime CHECK right after ADD); upstream: containernetworking/plugins#60 \"bridge: mac "
    "address unstable\", containernetworking/cni#285, the open containernetworking/plugins#1265 "
    "\"bridge: reliably pin the MAC on a bridge that lost its ports\"",
}
_BRIDGE_MAC_RE = re.compile(r"Bridge interface (\S+) Mac doesn't match")


def _parsed(call: dict):
    import json
    try:
        return json.loads(call["stdout"]) if call.get("stdout", "").strip() else None
    except (json.JSONDecodeError, TypeError):
        return None


def check_result_schema(h: CniHistory):
    vs, n = [], 0
    for op in h.plugin_ops("ADD", "CHECK", "VERSION"):
        cs = calls(op)
        if op.f == "VERSION" and not succeeded(op):
            n += 1    # "The operations that CNI plugins must support are: ADD, DEL, CHECK, VERSION"
            vs.append(Violation("result-schema", f"VERSION of {cs[0]['plugin'] if cs else '?'} "
                                f"failed: {(op.output or {}).get('error', '')}", (op,), (op,)))
            continue
        for i, c in enumerate(cs):
            if c.get("exit_code") != 0:
                continue
            n += 1
            doc = _parsed(c)
            if op.f == "ADD":
                final = i == len(cs) - 1 and succeeded(op)
                problems = success_problems(doc, h.version,
                                            op.input.get("netns") if final else None,
                                            op.input.get("ifname") if final else None)
            elif op.f == "CHECK":
                problems = [] if not c.get("stdout", "").strip() else \
                    [f"CHECK succeeded but printed {c['stdout'].strip()[:120]!r}: it must "
                     "return either nothing or an error"]
            else:
                problems = version_problems(doc, h.version)
            if problems:
                vs.append(Violation("result-schema", f"{c['plugin']} {op.f} of {op.key or '-'}: "
                                    + "; ".join(problems), (op,), h.of_container(op.key) or (op,),
                                    {"call": i, "problems": problems}))
    return vs, n, ""


def check_error_codes(h: CniHistory):
    vs, n = [], 0
    for op in h.plugin_ops():
        for i, c in enumerate(calls(op)):
            if c.get("exit_code") == 0:
                continue
            n += 1
            if c.get("exit_code") is None:
                problems = ["the plugin did not finish within its timeout"]
            else:
                problems = error_problems(c.get("stdout", ""), _parsed(c), h.version)
            if problems:
                vs.append(Violation("error-codes", f"{c['plugin']} {op.f} of {op.key or '-'} failed "
                                    f"(exit {c.get('exit_code')}) and " + "; ".join(problems),
                                    (op,), h.of_container(op.key) or (op,), {"call": i}))
    return vs, n, ""


def _prev_macs(h: CniHistory, check) -> dict:
    """name -> MAC of the interfaces the ADD before ``check`` reported (its
    prevResult): the last successful ADD of the same container."""
    prev = None
    for op in h.of_container(check.key):
        if op is check:
            break
        if op.f == "ADD" and succeeded(op) and isinstance(op.output, dict):
            prev = op.output.get("result")
    ifs = prev.get("interfaces", []) if isinstance(prev, dict) else []
    return {i.get("name"): i.get("mac") for i in ifs or [] if isinstance(i, dict)}


def bridge_mac_changed(h: CniHistory, op) -> str | None:
    """The bridge's name when the failed CHECK ``op`` is the divergence
    ``bridge-mac-changed``: the plugin said "Bridge interface NAME Mac doesn't
    match" and the MAC the runner read on NAME after the CHECK is not the one
    the ADD result reported. ``None`` otherwise (then it is a violation)."""
    if succeeded(op) or not isinstance(op.output, dict):
        return None
    m = _BRIDGE_MAC_RE.search(op.output.get("error", "") or "")
    if not m:
        return None
    name = m.group(1)
    seen = op.output.get("host_macs")
    now = seen.get(name) if isinstance(seen, dict) else None
    before = _prev_macs(h, op).get(name)
    if not (isinstance(now, str) and isinstance(before, str) and now and before) \
            or now.lower() == before.lower():
        return None
    return name


def divergences(h: CniHistory) -> list:
    """(divergence name, operation) for every documented divergence in the run."""
    return [(DIVERGENCE_BRIDGE_MAC, op) for op in h.plugin_ops("CHECK")
            if bridge_mac_changed(h, op) is not None]


def check_after_add(h: CniHistory):
    vs, tolerated = [], 0
    checks = h.plugin_ops("CHECK")
    for op in checks:
        if succeeded(op):
            continue
        err = op.output.get("error", "") if isinstance(op.output, dict) else ""
        bridge = bridge_mac_changed(h, op)
        if bridge is not None and not h.strict:
            tolerated += 1
            continue
        what = f"CHECK of {op.key} right after its ADD failed: {err}"
        if bridge is not None:
            now = op.output["host_macs"][bridge]
            what += (f" ({bridge}'s MAC is now {now}, not the ADD result's "
                     f"{_prev_macs(h, op)[bridge]}: the divergence {DIVERGENCE_BRIDGE_MAC}, "
                     "refused under --strict)")
        vs.append(Violation("check-after-add", what, (op,), h.of_container(op.key)))
    note = (f"{tolerated} failed with the documented divergence {DIVERGENCE_BRIDGE_MAC}: "
            "reported, not failed (--strict fails on it)") if tolerated else ""
    return vs, len(checks), note


def check_del_idempotent(h: CniHistory):
    vs = []
    dels = h.plugin_ops("DEL")
    for op in dels:
        if succeeded(op):
            continue
        if purpose(op) == "unknown":
            last = calls(op)[-1] if calls(op) else {}
            doc = _parsed(last)
            if isinstance(doc, dict) and doc.get("code") == 3:
                continue
        err = op.output.get("error", "") if isinstance(op.output, dict) else ""
        what = {"repeat": "a repeated DEL", "unknown": "DEL of a container never added",
                "after-crash": "DEL after the sandbox vanished"}.get(purpose(op), "DEL")
        vs.append(Violation("del-idempotent", f"{what} of {op.key} on node {op.input.get('node')} "
                            f"failed: {err}", (op,), h.of_container(op.key)))
    return vs, len(dels), ""


def check_status_gc(h: CniHistory):
    ops = h.plugin_ops("STATUS", "GC")
    if not ops:
        return [], 0, f"not judged: cniVersion {h.version} has no STATUS or GC (1.1.0 has)"
    vs = []
    for op in ops:
        if not succeeded(op):
            err = op.output.get("error", "") if isinstance(op.output, dict) else ""
            what = ("STATUS said the plugin cannot serve ADD, yet it served every ADD of the run"
                    if op.f == "STATUS" else "GC with the run's valid attachments failed")
            vs.append(Violation("status-gc", f"{what}: {err}", (op,), (op,)))
    return vs, len(ops), ""


CHECKS = [
    ("result-schema", "every ADD result validates against the spec's Success type for the "
     "declared cniVersion (the container's interface listed with its sandbox); CHECK prints "
     "nothing on success; VERSION lists the declared version",
     f"{SPEC}, Section 5 'Result Types' and Section 2 'CHECK'", check_result_schema),
    ("error-codes", "a failing plugin prints an Error object (code, msg) whose code is one the "
     "spec reserves for that meaning, or 100+", f"{SPEC}, Section 5 'Error'", check_error_codes),
    ("check-after-add", "CHECK called right after a successful ADD succeeds",
     f"{SPEC}, Section 2 'CHECK'", check_after_add),
    ("del-idempotent", "every DEL succeeds: repeated, after the sandbox vanished, and of a "
     "container never added (error 3 accepted there)",
     f"{SPEC}, Section 2 'DEL' and Section 3 'Lifecycle & Ordering'", check_del_idempotent),
    ("status-gc", "when the configuration declares 1.1.0: STATUS succeeds on nodes whose plugin "
     "serves ADD, and GC succeeds",
     "CNI SPEC.md spec-v1.1.0, Section 2 'STATUS' (errors 50/51: the plugin cannot serve ADD) "
     "and 'GC' (complete without error, removing as many resources as possible)", check_status_gc),
]
