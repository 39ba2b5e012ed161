"""``kubemc conform maelstrom --bin CMD``: arguments, the run, the verdict, the reports.

The run is :func:`conformance.adapters.maelstrom.run.run`; its checks and
verdict :func:`conformance.validate.maelstrom.judge`; its reports
:mod:`conformance.report.maelstrom` (a human summary on stdout or ``--json``,
JUnit XML with ``--junit FILE``, files under ``--out``).

Exit codes (DESIGN.md): 0 every check passed; 1 a check failed (a
linearizability violation writes the window and the trace); 4 no check
failed but linearizability was undecided within ``--check-budget``; 2 bad usage,
or a command that cannot be executed, or an ``--out`` that already holds
files, or a ``--junit`` that is a directory or exists (both refused before
the run); 3 an environment problem; 130 on Ctrl-C, 143 on SIGTERM, 129 on
SIGHUP (:mod:`conformance.runner.signals`; after every node process and
every process a node started is gone).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
from pathlib import Path

from kubemc.checker.errors import BadInput, KubemcError
from kubemc.checker.progress import ProgressLine
from kubemc.conformance.adapters.maelstrom import run as maelstrom
from kubemc.conformance.adapters.maelstrom.config import Config, parse_command
from kubemc.conformance.report.files import write_json_atomic
from kubemc.conformance.report.maelstrom import (summary_lines, to_json, write_junit,
                                                 write_violation)
from kubemc.conformance.report.outputs import (check_new_file, check_out_dir, dated_out_dir,
                                               make_out_dir)
from kubemc.conformance.runner.args import finite_float
from kubemc.conformance.runner.signals import Interrupted, exit_code
from kubemc.conformance.validate.maelstrom import judge

#: ``kubemc conform --help``'s line for this target
HELP = "any program speaking the Maelstrom protocol"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Run N copies of a program speaking the Maelstrom protocol on a "
                          "simulated network with partitions, drive the lin-kv workload, and "
                          "check the history is linearizable.")
    parser.add_argument("--bin", required=True, metavar="CMD",
                        help="the command that starts one node, split like a shell command "
                             "line, e.g. --bin 'python3 my_node.py --flag'")
    parser.add_argument("--nodes", type=int, default=3, metavar="N",
                        help="number of nodes, n0..n(N-1) (default 3)")
    parser.add_argument("--time-limit", type=finite_float("--time-limit"), default=30.0, metavar="S",
                        help="seconds from start to the end of the workload (default 30)")
    parser.add_argument("--rate", type=finite_float("--rate"), default=50.0, metavar="R",
                        help="requests per second, all clients together (default 50)")
    parser.add_argument("--concurrency", type=int, default=0, metavar="C",
                        help="clients c1..cC, one request outstanding each (default 2 per node)")
    parser.add_argument("--nemesis", choices=("partition", "none"), default="partition",
                        help="partition: random halves, cut and healed in turn (default)")
    parser.add_argument("--nemesis-interval", type=finite_float("--nemesis-interval"), default=0.0, metavar="S",
                        help="seconds healed, then seconds partitioned (default: time limit / 6, "
                             "within 0.5..10)")
    parser.add_argument("--latency", type=finite_float("--latency"), default=5.0, metavar="MS",
                        help="mean network delay in milliseconds, exponential (default 5)")
    parser.add_argument("--timeout", type=finite_float("--timeout"), default=1.0, metavar="S",
                        help="seconds a client waits for a reply; then the outcome is unknown "
                             "(default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the schedule: delays, partitions, operations (default random)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="a new or empty directory for the history, node logs and results "
                             "(default kubemc-out/maelstrom/TIMESTAMP)")
    parser.add_argument("--check-budget", type=finite_float("--check-budget"), default=60.0, metavar="S",
                        help="seconds the linearizability check may take (default 60)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write the result as JUnit XML (a new file)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The run's configuration; every path checked before anything starts."""
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    out = args.out
    if out is None:
        out = dated_out_dir("maelstrom")
    cfg = Config(command=tuple(parse_command(args.bin)), out=out, nodes=args.nodes,
                 time_limit=args.time_limit, rate=args.rate, concurrency=args.concurrency,
                 nemesis=args.nemesis, nemesis_interval=args.nemesis_interval,
                 latency_ms=args.latency, timeout=args.timeout, seed=seed)
    if args.check_budget <= 0:
        raise BadInput(f"--check-budget must be positive, not {args.check_budget}")
    check_out_dir(out)
    if args.junit is not None:
        check_new_file(args.junit, "--junit")
    make_out_dir(out)
    return cfg




def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    # on a terminal the line stays; in a log, one line every 5 s, the first after 5 s
    progress = ProgressLine(every=5.0, transient=False, quiet_start=True).open()
    try:
        observed = maelstrom.run(cfg, progress=progress.update)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        progress.clear()
        progress.close()
        print(f"kubemc conform maelstrom: interrupted by {signal.Signals(signum).name}; every "
              f"node process was stopped (partial history: {cfg.out / maelstrom.HISTORY})",
              file=sys.stderr)
        return exit_code(signum)
    except KubemcError:
        progress.clear()
        progress.close()
        raise
    progress.close()
    if not progress.interactive and progress.last:
        progress.message(progress.last)        # the last figures, also in a log
    result = judge(observed, budget=args.check_budget)
    if result.window is not None:
        result.files.update(write_violation(observed, result.window))
    doc = to_json(result)
    write_json_atomic(cfg.out / "report.json", doc)
    if args.junit is not None:
        write_junit(result, args.junit)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        for line in summary_lines(result):
            style = None
            if line.startswith("  FAIL") or line.startswith("verdict: FAIL"):
                style = "bold red"
            elif line.startswith("verdict: PASS"):
                style = "bold green"
            console.print(line, style=style, markup=False, soft_wrap=True)
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    """``python -m kubemc.conformance.adapters.maelstrom.cli ARGS`` is ``kubemc conform
    maelstrom ARGS``: the same usage errors, exit codes and crash reports."""
    from kubemc.conformance.cli import main_of

    return main_of("maelstrom", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
