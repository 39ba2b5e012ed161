"""``kubemc check``'s ``--workers N`` and ``--ray ADDRESS``: their
definitions, what the parsed arguments mean (a ``checker.parallel.Parallel``
or none), and the note a row gets when its liveness was judged in one
process. Kept here so ``checker.cli`` gains three lines, not thirty.
"""

from __future__ import annotations

import sys

from kubemc.checker.check_options import positive


def add_arguments(parser) -> None:
    parser.add_argument(
        "--workers", type=positive, metavar="N",
        help="explore on N worker processes here, the state space partitioned by "
        "fingerprint (the same counts and counterexamples as one process; "
        "docs/parallel.md), or with --ray on N Ray actors")
    parser.add_argument(
        "--ray", metavar="HOST:PORT",
        help="explore across the Ray cluster whose head is at HOST:PORT, on --workers "
        "actors (default: one per CPU of the cluster); needs pip install 'kubemc[ray]'")


def given(args) -> dict:
    """The options as ``check_options.refuse_inapplicable`` wants them."""
    return {"--workers": args.workers is not None, "--ray": args.ray is not None}


def parallel_of(args):
    """A ``Parallel`` when ``--workers`` or ``--ray`` was given, else None."""
    if args.workers is None and args.ray is None:
        return None
    from kubemc.checker.parallel import Parallel

    return Parallel(args.workers, args.ray)


def note_liveness(results) -> None:
    """Say, on stderr, which rows' liveness properties the one-process graph
    search judged: a parallel run must not look as if it partitioned them."""
    from kubemc.checker.parallel import LIVENESS_IN_ONE_PROCESS

    rows = [r for r in results
            if r.figures.get("liveness_search") == LIVENESS_IN_ONE_PROCESS]
    if rows:
        print(f"kubemc: the liveness properties of {', '.join(r.model for r in rows)} were "
              "judged by one process after the parallel safety search (the graph search "
              "is not partitioned)", file=sys.stderr)
