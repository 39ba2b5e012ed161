"""``kubemc conform proxy``: a node's kube-proxy rules (``iptables-save``)
against the Services and EndpointSlices they were built from.

    kubemc conform proxy --iptables-save FILE --objects FILE
                         [--cluster-cidr CIDR] [--masquerade-bit N]
                         [--live [--samples N] [--confidence C]]
                         [--out DIR] [--junit FILE] [--json]

The checks are :mod:`conformance.proxy.checks` (Z3, a symbolic packet);
``--live`` adds :mod:`conformance.adapters.proxy.live` (the dump applied inside
network namespaces the run creates, real packets).

Exit status: 0 every check holds; 1 a check was violated — the report
(``report.json``) and one ITF trace per finding (the packet, then each rule
it passed) are written under ``--out`` (default ``kubemc-out/proxy/TIME``);
2 a malformed dump (``FILE:LINE: what``) or objects file, bad arguments, an
``--out`` that holds files or a ``--junit`` that exists; 3 ``--live``
without root, ``ip`` or ``iptables-restore``; 4 the solver answered
unknown; 130/143/129 on SIGINT/SIGTERM/SIGHUP, after the live run removed
everything it created.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubemc.checker.errors import HOLDS, UNDECIDED, VIOLATED, BadInput
from kubemc.conformance.runner.args import int_range


def _cidr(text: str):
    from kubemc.model.network.addr import cidr
    try:
        return cidr(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--cluster-cidr: {exc}") from None


def _confidence(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--confidence must be a number, not {text!r}") from None
    if not 0.5 <= v < 1:
        raise argparse.ArgumentTypeError(f"--confidence must be in [0.5, 1), not {text!r}")
    return v


#: ``kubemc conform --help``'s line for this target
HELP = "kube-proxy's iptables rules (iptables-save) against Services and EndpointSlices"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Prove a node's kube-proxy iptables rules (an iptables-save dump) "
                          "correct for the Services and EndpointSlices they were built from, "
                          "for a symbolic packet (Z3); --live also applies them in network "
                          "namespaces and sends real packets.")
    parser.add_argument("--iptables-save", required=True, metavar="FILE", dest="iptables_save",
                        help="the node's `iptables-save` output")
    parser.add_argument("--objects", required=True, metavar="FILE",
                        help="`kubectl get svc,endpointslices -A -o json` output")
    parser.add_argument("--cluster-cidr", type=_cidr, default=None, metavar="CIDR",
                        help="kube-proxy's --cluster-cidr, the pods' range (default: the "
                             "smallest block holding every Pod endpoint's address; then "
                             "traffic from outside the cluster is not judged)")
    parser.add_argument("--masquerade-bit", type=int_range("--masquerade-bit", 0, 31),
                        default=14, metavar="N",
                        help="kube-proxy's --iptables-masquerade-bit (default 14: mark 0x4000)")
    parser.add_argument("--live", action="store_true",
                        help="also apply the dump in network namespaces and probe with real "
                             "packets (root, iproute2, iptables)")
    parser.add_argument("--samples", type=int_range("--samples", 1, 10_000), default=40,
                        metavar="N", help="--live: connections per endpoint to each Service "
                                          "address (default 40)")
    parser.add_argument("--confidence", type=_confidence, default=0.999, metavar="C",
                        help="--live: confidence of the chi-square test of the endpoint "
                             "distribution (default 0.999)")
    parser.add_argument("--out", metavar="DIR",
                        help="a new or empty directory for report and traces (default: "
                             "kubemc-out/proxy/TIME, on a violation only)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (a new file)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    from kubemc.conformance.proxy import dump as dump_mod
    from kubemc.conformance.proxy import objects
    from kubemc.conformance.proxy.checks import Checker
    from kubemc.conformance.report.outputs import check_new_file, check_out_dir
    from kubemc.conformance.runner.signals import Interrupted, signals_raise

    if args.junit:
        check_new_file(args.junit, "--junit")
    if args.out:
        check_out_dir(args.out)
    if args.live:
        from kubemc.conformance.adapters.proxy.live import require_environment
        require_environment()
    dump = dump_mod.read(args.iptables_save)
    ports = objects.read(args.objects)
    cidr = args.cluster_cidr
    notes = []
    if cidr is None:
        cidr = objects.cover(e.ip for sp in ports for e in sp.endpoints if e.pod)
        if cidr is None:
            raise BadInput(f"{args.objects}: no Pod endpoint addresses to infer the cluster "
                           "CIDR from; give --cluster-cidr")
        from kubemc.model.network.addr import show_cidr
        notes.append(f"cluster CIDR assumed {show_cidr(cidr)} (the smallest block holding every "
                     "Pod endpoint's address); give --cluster-cidr to state kube-proxy's")
    if "nat" not in dump.tables:
        notes.append("the dump has no nat table: no Service is forwarded")
    if "mangle" in dump.tables or "raw" in dump.tables:
        notes.append("the mangle and raw tables are not judged")
    for sp in ports:
        if sp.external_local and sp.node_port:
            notes.append(f"{sp.key}: externalTrafficPolicy Local — its NodePort is not judged")
    checker = Checker(dump, ports, cidr, masq_mark=1 << args.masquerade_bit,
                      cidr_known=args.cluster_cidr is not None)
    verdict = checker.run()
    live = None
    if args.live:
        from kubemc.conformance.adapters.proxy.live import LiveOptions, run_live
        try:
            with signals_raise():
                live = run_live(dump, ports, cidr, verdict, LiveOptions(
                    samples=args.samples, confidence=args.confidence,
                    masq_mark=1 << args.masquerade_bit))
        except Interrupted as exc:
            print(f"kubemc: {exc}: stopped; everything the run created was removed",
                  file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("kubemc: SIGINT: stopped; everything the run created was removed",
                  file=sys.stderr)
            return 130
    doc = report_doc(verdict, live, notes, args)
    passed = verdict.passed and (live is None or live.passed)
    undecided = any(c.note.startswith("UNDECIDED") for c in verdict.checks)
    files = []
    if not passed or args.out:
        files = write_outputs(args, doc, verdict, live)
    doc["files"] = [str(f) for f in files]
    if args.junit:
        write_junit(doc, args.junit)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(summary(doc))
    if not passed and any(not c["ok"] and c["findings"] for c in doc["checks"]):
        return VIOLATED
    if undecided:
        return UNDECIDED
    return HOLDS if passed else VIOLATED


def report_doc(verdict, live, notes, args) -> dict:
    doc = {"target": "proxy", "iptables_save": str(args.iptables_save),
           "objects": str(args.objects), **verdict.to_json()}
    doc["notes"] = list(notes)
    if live is not None:
        lj = live.to_json()
        doc["checks"].append(lj["check"])
        doc["live"] = lj
        doc["passed"] = verdict.passed and live.passed
    return doc


def write_outputs(args, doc, verdict, live) -> list:
    from kubemc.checker import itf
    from kubemc.conformance.report.files import json_writer
    from kubemc.conformance.report.outputs import create_exclusive, dated_out_dir, make_out_dir
    from kubemc.conformance.runner.command import command_line

    out = Path(args.out) if args.out else dated_out_dir("proxy")
    make_out_dir(out)
    files = [create_exclusive(out / "report.json", json_writer(doc))]
    for check in doc["checks"]:
        for k, f in enumerate(check["findings"]):
            if not f.get("packet"):
                continue
            trace = _trace(check["name"], f, command_line())
            files.append(itf.write(itf.fresh_path(out, f"proxy-{check['name']}-{k}"), trace))
    return files


def _trace(check: str, finding: dict, command: str) -> dict:
    """The packet, then one state per rule it passed (chain and line)."""
    from kubemc.checker import itf

    views = [{"at": "packet", "packet": finding["packet"], "rule": ""}]
    actions = [("Init", ())]
    for ref in finding["path"]:
        views.append({"at": ref, "packet": finding["packet"], "rule": ref})
        actions.append(("Rule", (ref,)))
    views.append({"at": "verdict", "packet": finding["packet"], "rule": finding["rule"]})
    actions.append(("Violation", (check, finding["message"][:500])))
    return itf.build({"property": check, "engine": "z3", "target": "conform proxy",
                      "command": command, "service": finding.get("service", "")},
                     views, actions)


def summary(doc) -> str:
    lines = [f"kubemc conform proxy: {'PASS' if doc['passed'] else 'FAIL'}  "
             f"({doc['service_ports']} Service ports, {doc['rules']} rules, cluster CIDR "
             f"{doc['cluster_cidr']}; encoding {doc['encode_seconds']:.2f}s)"]
    for c in doc["checks"]:
        mark = "ok  " if c["ok"] else "FAIL"
        und = " (UNDECIDED)" if c["note"].startswith("UNDECIDED") else \
            " (partly: see note)" if c["note"].startswith("PARTLY") else ""
        lines.append(f"    {mark} {c['name']:<28} {c['seconds']:7.3f}s  {c['checked']:>6} "
                     f"checked{und}")
    for c in doc["checks"]:
        for f in c["findings"]:
            lines += ["", f"  violation of {c['name']}: {f['message']}",
                      f"    property: {c['statement']}", f"    source:   {c['source']}"]
            if f["rule"]:
                lines.append(f"    rule:     {f['rule']}")
            if f["path"]:
                lines.append(f"    path:     {' -> '.join(f['path'][:14])}"
                             + (" …" if len(f["path"]) > 14 else ""))
        if c["note"]:
            lines.append(f"  note ({c['name']}): {c['note']}")
    for n in doc["notes"]:
        lines.append(f"  note: {n}")
    for f in doc.get("files", []):
        lines.append(f"  wrote: {f}")
    return "\n".join(lines)


def write_junit(doc, path) -> None:
    from junitparser import Failure, JUnitXml, TestCase, TestSuite

    from kubemc.conformance.report.junit import write_junit_xml

    suite = TestSuite("kubemc conform proxy")
    for c in doc["checks"]:
        case = TestCase(c["name"], classname="conform.proxy", time=c["seconds"])
        if not c["ok"]:
            first = c["findings"][0]["message"] if c["findings"] else c["note"]
            fail = Failure(first[:500], type_=c["name"])
            fail.text = "\n".join([f"property: {c['statement']}", f"source: {c['source']}"]
                                  + [f"- {f['message']}\n  rule: {f['rule']}"
                                     for f in c["findings"]])
            case.result = [fail]
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    write_junit_xml(xml, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m conformance.adapters.proxy.cli ARGS`` is ``kubemc conform proxy
    ARGS``: the same usage errors, exit codes and crash reports."""
    from kubemc.conformance.cli import main_of

    return main_of("proxy", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
