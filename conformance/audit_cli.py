"""``kubemc audit TARGET FILE...``: judge a real cluster's recorded state with
the models. Registered with the CLI in ``pyproject.toml`` (entry point group
``kubemc.commands``) because the CLI in ``checker`` may not import
conformance (``docs/layers.md``).
"""

from __future__ import annotations

HELP = "judge a real cluster's state with the models"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="audit_target", required=True, parser_class=type(parser))
    au = sub.add_parser("scheduling", help="placements in `kubectl get nodes,pods -A -o json` "
                        "output (files or directories; add events to judge schedulerName)")
    au.add_argument("files", nargs="+", metavar="FILE")
    au.add_argument("--json", action="store_true")
    au.add_argument("--report", default="kubemc-audit-scheduling.json", metavar="FILE",
                    help="where findings are written (default: kubemc-audit-scheduling.json)")


def run(args) -> int:
    from kubemc.conformance.audit.scheduling import run as audit_scheduling

    return audit_scheduling(args.files, as_json=args.json, report=args.report)
