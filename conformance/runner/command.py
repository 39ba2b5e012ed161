"""What ``kubemc conform etcd``, ``cri`` and ``cni`` do alike around their
suites: the options every suite takes from the command line alike (the
progress line, the command kept for the reproduction note), a run with its
report on stdout, and the exit code its result earns.

Why one module: the three commands promise the same things (``--junit``
refused before a minutes-long run, the summary still shown when the JUnit
file cannot be written, the same words and codes when a signal stops the
run, 4 only when nothing failed); written once, they cannot drift apart.
"""

from __future__ import annotations

import json
import shlex
import sys

from kubemc.checker.errors import HOLDS, UNDECIDED, VIOLATED, BadInput


def command_line(argv=None) -> str:
    """The command, quoted for a shell: ``argv`` as given, or ``kubemc``
    followed by this process's arguments."""
    return " ".join(shlex.quote(a) for a in (argv if argv is not None else ["kubemc",
                                                                            *sys.argv[1:]]))


def shown(args) -> dict:
    """The options of a suite that follow from how it was called: the live
    progress line on stderr (not when ``--json`` is read by a program, unless
    a person watches stderr) and the command line."""
    return {"progress": not args.json or sys.stderr.isatty(), "command": command_line()}


def verdict(result) -> int:
    """A suite result's exit code: 0 it passed; 4 nothing failed but the run
    could not decide (``result.undecided``: the plan did not finish, the
    replay ran out of room, etcd's linearizability search ran out of time);
    1 otherwise — a failed check outranks an undecided one, as
    everywhere in ``kubemc`` (``checker/errors.py``)."""
    if result.passed:
        return HOLDS
    if getattr(result, "undecided", False) and not result.failed_checks:
        return UNDECIDED
    return VIOLATED


def run_and_report(args, opts, run_suite, summary, write_junit) -> int:
    """Validate ``opts``, run the suite, write ``--junit``, print ``--json``
    or the summary; return :func:`verdict` of the result, or the signal's code when
    SIGINT / SIGTERM / SIGHUP stopped the run."""
    from kubemc.conformance.report.outputs import check_new_file
    from kubemc.conformance.runner.signals import Interrupted

    opts.validate()
    if args.junit:
        check_new_file(args.junit, "--junit")
    try:
        result = run_suite(opts)
    except Interrupted as exc:
        # what the run created is gone (run_suite's finally); say so
        print(f"kubemc: {exc}: stopped; everything the run created was removed", file=sys.stderr)
        return exc.exit_code
    if args.junit:
        try:
            write_junit(result, args.junit)
        except OSError as exc:
            print(summary(result), file=sys.stderr)
            raise BadInput(f"--junit {args.junit}: cannot write: {exc.strerror or exc}") from None
    if args.json:
        print(json.dumps(result.to_json(), indent=1, default=str))
    else:
        print(summary(result))
    return verdict(result)
