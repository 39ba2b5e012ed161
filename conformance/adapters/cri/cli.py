"""``kubemc conform cri``: arguments and exit code; the work is in
:func:`conformance.adapters.cri.suite.run_suite`.

    kubemc conform cri [--endpoint unix:///PATH] [--time-limit S]
                       [--faults kill,restart,restart-racing|none]
                       [--seed N] [--max-pods N] [--strict] [--min-calls N]
                       [--out DIR] [--junit FILE] [--json]

Without ``--endpoint`` it starts a private containerd (root, and the Debian
packages ``containerd``, ``runc``, ``busybox-static``) and injects the faults
named by ``--faults`` (default both); with ``--endpoint`` it drives that
runtime, injects none, and touches only sandboxes it creates (labelled with
the run id).

Exit status: 0 every check holds; 1 a check was violated (the report, the
history and the failing window are in the output directory); 4 undecided
(more model states fit the history than the replay keeps); 2 bad
arguments, an ``--out`` that holds files, a ``--junit`` that exists; 3
something missing (root, containerd, runc, busybox, an endpoint that does not
answer the CRI); 130 / 143 / 129 on SIGINT / SIGTERM / SIGHUP, after
everything the run created is removed.
"""

from __future__ import annotations

import argparse
import sys

from kubemc.conformance.runner.args import (add_output_arguments, add_seed_argument, chosen_faults,
                                            int_range, positive_float)


#: ``kubemc conform --help``'s line for this target
HELP = "a CRI runtime: a private containerd (or --endpoint), checked against the CRI model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="unix:///PATH",
                        help="the socket of a running CRI runtime (default: start a private containerd)")
    parser.add_argument("--time-limit", type=positive_float("--time-limit"), default=30.0, metavar="S",
                        help="seconds of calls before the drain (default 30)")
    parser.add_argument("--faults", default=None, metavar="FAULTS",
                        help="kill,restart (default, private containerd), restart-racing (finds containerd's "
                             "lost-exit race), or none (default with --endpoint)")
    add_seed_argument(parser)
    parser.add_argument("--max-pods", type=int_range("--max-pods", 1, 20), default=3, metavar="N",
                        help="sandboxes alive at once (default 3)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on containerd's documented divergences from the model too "
                             "(stop-removed-sandbox, start-error-exits, restart-exit-unknown)")
    parser.add_argument("--min-calls", type=int_range("--min-calls", 0, 10**9), default=50, metavar="N",
                        help="calls that must answer OK for the coverage check (default 50)")
    add_output_arguments(parser)


def options_from_args(args):
    from kubemc.conformance.failpoint.cri import parse_faults
    from kubemc.conformance.adapters.cri.runtime import parse_endpoint
    from kubemc.conformance.adapters.cri.suite import CriOptions
    from kubemc.conformance.runner.command import shown

    endpoint = parse_endpoint(args.endpoint) if args.endpoint is not None else None
    faults = chosen_faults(args.faults, parse_faults, bool(endpoint), ("kill", "restart"))
    return CriOptions(endpoint=endpoint, time_limit=args.time_limit, faults=faults, seed=args.seed,
                      max_pods=args.max_pods, strict=args.strict, min_calls=args.min_calls,
                      out=args.out, **shown(args))


def run(args) -> int:
    from kubemc.conformance.report.cri import summary, write_junit
    from kubemc.conformance.adapters.cri.suite import run_suite
    from kubemc.conformance.runner.command import run_and_report

    return run_and_report(args, options_from_args(args), run_suite, summary, write_junit)


def main(argv: list[str] | None = None) -> int:
    """``python -m`` this module: :func:`conformance.cli.main_of`."""
    from kubemc.conformance.cli import main_of

    return main_of("cri", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
