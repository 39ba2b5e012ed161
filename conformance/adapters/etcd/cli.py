"""``kubemc conform etcd``: arguments and exit code; the work is in
:func:`conformance.adapters.etcd.suite.run_suite`.

    kubemc conform etcd [--endpoints URL,...] [--time-limit S] [--clients N]
                        [--rate R] [--nemesis kill,pause,partition|none]
                        [--seed N] [--min-ok N] [--out DIR] [--junit FILE] [--json]

Without ``--endpoints`` it starts a local 3-member cluster (root and the
``etcd`` binary needed) and injects the faults named by ``--nemesis``
(default: all three); with ``--endpoints`` it drives that cluster and injects
none. Keys live under ``/kmc/<run id>/``, but the compactor compacts the
whole cluster's history: point ``--endpoints`` at a test cluster.

Exit status: 0 every check holds, 1 a check was violated — ``availability``
among them: a run in which fewer than ``--min-ok`` requests succeeded, a
workload thread crashed, or nothing succeeded after the faults were healed
(the report and the history are in the output directory); 2 bad arguments,
an ``--out`` that already holds files, a ``--junit`` that is a directory or
exists (refused before the run); 3 something missing from the machine (etcd,
root, an endpoint that does not answer, or answers but not as etcd); 130,
143, 129 on SIGINT, SIGTERM, SIGHUP (:mod:`conformance.runner.signals`),
after everything the run created is removed.
"""

from __future__ import annotations

import argparse
import sys

from kubemc.conformance.runner.args import (
    add_output_arguments,
    add_seed_argument,
    chosen_faults,
    finite_float,
    int_range,
    positive_float,
)


def _rate(text):
    v = finite_float("--rate")(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"--rate must be >= 0 (0: unlimited), not {text!r}")
    return v


#: ``kubemc conform --help``'s line for this target
HELP = "a real etcd cluster (local 3 members, or --endpoints)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoints", metavar="URL,...",
                        help="client URLs of a running cluster (default: start a local 3-member cluster)")
    parser.add_argument("--time-limit", type=positive_float("--time-limit"), default=60.0, metavar="S",
                        help="seconds of traffic (default 60)")
    parser.add_argument("--clients", type=int_range("--clients", 1, 256), default=8, metavar="N",
                        help="concurrent KV clients, one request outstanding each (default 8)")
    parser.add_argument("--rate", type=_rate, default=0.0, metavar="R",
                        help="total KV requests per second (default 0: as fast as the clients go)")
    parser.add_argument("--nemesis", default=None, metavar="FAULTS",
                        help="kill,pause,partition (default, local cluster) or none (default with --endpoints)")
    add_seed_argument(parser)
    parser.add_argument("--min-ok", type=int_range("--min-ok", 0, 10**9), default=1, metavar="N",
                        help="KV requests that must succeed for the availability check (default 1)")
    add_output_arguments(parser)


def options_from_args(args):
    from kubemc.conformance.failpoint.etcd import parse_faults
    from kubemc.conformance.adapters.etcd.cluster import parse_endpoints
    from kubemc.conformance.adapters.etcd.suite import SuiteOptions
    from kubemc.conformance.runner.command import shown

    endpoints = parse_endpoints(args.endpoints) if args.endpoints is not None else None
    nemesis = chosen_faults(args.nemesis, parse_faults, bool(endpoints),
                            ("kill", "pause", "partition"))
    return SuiteOptions(endpoints=endpoints, time_limit=args.time_limit, clients=args.clients,
                        rate=args.rate, nemesis=nemesis, seed=args.seed, out=args.out,
                        min_ok=args.min_ok, **shown(args))


def run(args) -> int:
    from kubemc.conformance.report.etcd import summary, write_junit
    from kubemc.conformance.adapters.etcd.suite import run_suite
    from kubemc.conformance.runner.command import run_and_report

    return run_and_report(args, options_from_args(args), run_suite, summary, write_junit)


def main(argv: list[str] | None = None) -> int:
    """``python -m`` this module: :func:`conformance.cli.main_of`."""
    from kubemc.conformance.cli import main_of

    return main_of("etcd", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
