"""The errors a user can cause or fix, mapped to the exit codes DESIGN.md fixes.

Library code raises these with a message that says what is wrong and what to
do next; the CLI prints the message as one line and exits with the code.

One exit-code table for every command (README, "Exit codes"):

====  =================  ====================================================
code  name               meaning
====  =================  ====================================================
0     HOLDS              everything checked holds
1     VIOLATED           a property was violated and a trace was written
2     BAD_INPUT          bad usage or bad input: one line says what is wrong
3     MISSING_ENV        the machine lacks something (a binary, root)
4     UNDECIDED          a budget ran out (``--max-states``, ``--budget``),
                         random runs missed the asked-for mutant, the solver
                         answered *unknown* or could not prove a claim
                         (a counterexample to induction is *unproved*)
5     VACUOUS            the check said nothing: no initial state, or a cover
                         property was never reached at the bounds
70    INTERNAL_ERROR     a bug in kubemc: one line names the file that holds
                         the traceback (sysexits' EX_SOFTWARE)
====  =================  ====================================================

Why 1 is kept for "violated" alone: CI scripts read exit 1 as "a bug was
found, here is its trace"; a crash or a budget that ran out must never look
like that.
"""

HOLDS, VIOLATED, BAD_INPUT, MISSING_ENVIRONMENT = 0, 1, 2, 3
UNDECIDED = 4
VACUOUS = 5
INTERNAL_ERROR = 70


class KubemcError(Exception):
    exit_code = BAD_INPUT


class BadInput(KubemcError):
    """Bad usage or bad input: a name, a file, a value the user gave."""

    exit_code = BAD_INPUT


class MissingEnvironment(KubemcError):
    """Something the machine lacks: a binary, root, a kernel feature."""

    exit_code = MISSING_ENVIRONMENT
