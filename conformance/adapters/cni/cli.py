"""``kubemc conform cni``: arguments and exit code; the work is in
:func:`conformance.adapters.cni.suite.run_suite`.

    kubemc conform cni [--plugin NAME|PATH] [--conf FILE] [--nodes N] [--pods N]
                       [--time-limit S] [--strict] [--out DIR] [--junit FILE] [--json]

``--strict``: the documented divergences of the installed plugins
(:data:`conformance.validate.cni_protocol.DIVERGENCES`) fail the run too;
without it they are counted and reported, not failed.

Exit status: 0 every check holds; 1 a check was violated (the report, the
history and each failed check's window and ITF trace are in the output
directory); 2 bad arguments or configuration (one line); 3 root, iproute2 or
a standard plugin missing, with the fix; 4 the plan did not finish within
``--time-limit`` and nothing failed (undecided); 130 / 143 / 129 on SIGINT /
SIGTERM / SIGHUP, after everything the run created was removed.
"""

from __future__ import annotations

import sys

from kubemc.conformance.runner.args import add_output_arguments, int_range, positive_float


#: ``kubemc conform --help``'s line for this target
HELP = "any CNI plugin in network namespaces (default: bridge + host-local)"


def add_arguments(parser) -> None:
    parser.add_argument("--plugin", metavar="NAME|PATH",
                        help="the main plugin: a name in CNI_PATH (default /usr/lib/cni:/opt/cni/bin) "
                             "or a path; replaces the first plugin's type (default: bridge)")
    parser.add_argument("--conf", metavar="FILE",
                        help="a network configuration (.conf) or list (.conflist); host-local's "
                             "ranges and dataDir are set per node (default: bridge cni0 + host-local)")
    parser.add_argument("--nodes", type=int_range("--nodes", 1, 16), default=3, metavar="N",
                        help="simulated nodes, each a network namespace with its podCIDR (default 3)")
    parser.add_argument("--pods", type=int_range("--pods", 1, 16), default=12, metavar="N",
                        help="pods, pod p on node p %% nodes (default 12)")
    parser.add_argument("--time-limit", type=positive_float("--time-limit"), default=300.0,
                        metavar="S", help="the longest the plan may run (default 300 s)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on the plugins' documented divergences too (bridge-mac-changed: "
                             "counted and reported, not failed, by default)")
    add_output_arguments(parser)


def run(args) -> int:
    from kubemc.conformance.report.cni import summary, write_junit
    from kubemc.conformance.adapters.cni.suite import SuiteOptions, run_suite
    from kubemc.conformance.runner.command import run_and_report, shown

    opts = SuiteOptions(plugin=args.plugin, conf=args.conf, nodes=args.nodes, pods=args.pods,
                        time_limit=args.time_limit, out=args.out, strict=args.strict, **shown(args))
    return run_and_report(args, opts, run_suite, summary, write_junit)


def main(argv: list[str] | None = None) -> int:
    """``python -m`` this module: :func:`conformance.cli.main_of`."""
    from kubemc.conformance.cli import main_of

    return main_of("cni", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
