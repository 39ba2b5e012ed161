"""The simulate engine's options on ``kubemc check`` and its summary line.

Kept apart from ``checker.cli`` so the CLI stays a list of subcommands: the
options are defined once here (``kubemc swarm`` reads ``--time`` and
``--seed`` the same way), and ``checker.check_options.APPLIES`` refuses them
with any engine but simulate.
"""

from __future__ import annotations

from kubemc.checker.check_options import positive, seconds
from kubemc.checker.simulate import DEFAULT_DEPTH, DEFAULT_WALKS, Budget


def add_budget_arguments(parser) -> None:
    parser.add_argument("--walks", type=positive, metavar="N",
                        help=f"simulate: random walks to take (default {DEFAULT_WALKS}, "
                        "or unlimited under --time)")
    parser.add_argument("--depth", type=positive, metavar="N",
                        help=f"simulate: steps per walk at most (default {DEFAULT_DEPTH})")
    parser.add_argument("--time", type=seconds, metavar="S",
                        help="simulate: stop walking after S seconds per model (with "
                        "--walks: whichever comes first)")


def budget_of(args) -> Budget:
    return Budget(depth=args.depth or DEFAULT_DEPTH, walks=args.walks, seconds=args.time)


def figures_line(result) -> str:
    f = result.figures
    line = (f"{f['walks']:,} walks, {f['steps']:,} steps, {f['distinct_states']:,} distinct "
            f"states, {result.seconds:.1f} s, {f['states_per_second']:,} states/s, "
            f"seed {f['seed']}")
    never = f.get("actions_never_taken")
    if never and result.verdict != "violated":
        line += f"; actions never taken: {', '.join(never)}"
    return line
