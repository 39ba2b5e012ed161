"""``kubemc bench conform-proxy``: how long ``kubemc conform proxy`` takes to
prove a node's dump correct, and how much memory it needs, at 1,000 and
10,000 Services (Kubernetes' documented scale: 10,000 Services in a 5,000
node cluster).

The input is generated: :func:`.kubeproxy.example_services` (three ready
endpoints and a terminating one per Service, every third a NodePort, every
fourth UDP, the last without endpoints) written in kube-proxy's layout by
:func:`.kubeproxy.write_dump` — at 10,000 Services about 100,000 rules. Each
phase is timed apart: reading the dump, building the Z3 terms (one
encoding per packet class: per Service VIP, per NodePort, and one for every
other destination — :class:`.symbolic.Slice`), and the solving of each of
the six checks. Memory is the process's peak resident set (``ru_maxrss``,
Z3's heap included), read after each size; sizes run smallest first, so
the figure of a size is the peak of that size. A proof that fails makes the
benchmark fail: timing a broken proof means nothing.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

SIZES = (1_000, 10_000)
CIDR = (0x0AF40000, 16)      # 10.244.0.0/16


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def prove(services: int, progress=lambda line: None) -> dict:
    from kubemc.conformance.proxy.checks import Checker
    from kubemc.conformance.proxy.dump import read
    from kubemc.conformance.proxy.kubeproxy import example_services, objects_doc, write_dump
    from kubemc.conformance.proxy.objects import from_json

    ports = from_json(objects_doc(example_services(services, 3)))
    with tempfile.TemporaryDirectory(prefix="kubemc-bench-proxy-") as tmp:
        path = Path(tmp) / "iptables-save"
        path.write_text(write_dump(ports, CIDR))
        start = time.perf_counter()
        dump = read(path)
        parsed = time.perf_counter() - start
    rules = sum(1 for _ in dump.rules())
    progress(f"  {services:,} Services: {rules:,} rules read in {parsed:.2f}s")
    start = time.perf_counter()
    checker = Checker(dump, ports, CIDR)
    verdict = checker.run()
    total = parsed + time.perf_counter() - start
    for c in verdict.checks:
        if not c.ok:
            raise AssertionError(f"bench conform-proxy: {c.name} failed on the generated dump: "
                                 f"{c.findings[:1] or c.note}")
    out = {f"services_{services}_rules": rules, f"services_{services}_read_s": round(parsed, 2),
           f"services_{services}_encode_s": round(checker.build_seconds, 2),
           f"services_{services}_packet_classes": checker.classes}
    for c in verdict.checks:
        out[f"services_{services}_{c.name}_s"] = round(c.seconds, 2)
        progress(f"  {services:,} Services: {c.name}: {c.checked:,} questions, "
                 f"{c.seconds:.2f}s solving")
    out[f"services_{services}_total_s"] = round(total, 2)
    out[f"services_{services}_peak_rss_mb"] = _peak_mb()
    return out


def conform_proxy(progress) -> dict:
    figures = {"note": "one process; peak RSS includes Z3; sizes run smallest first"}
    for n in SIZES:
        figures.update(prove(n, progress))
    return figures
