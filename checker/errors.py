"""The errors a user can cause or fix, mapped to the exit codes DESIGN.md fixes.

Library code raises these with a message that says what is wrong and what to
do next; the CLI prints the message as one line and exits with the code. Any
other exception is a bug in kubemc, and is allowed to show its traceback.
"""

HOLDS, VIOLATED, BAD_INPUT, MISSING_ENVIRONMENT = 0, 1, 2, 3


class KubemcError(Exception):
    exit_code = BAD_INPUT


class BadInput(KubemcError):
    """Bad usage or bad input: a name, a file, a value the user gave."""

    exit_code = BAD_INPUT


class MissingEnvironment(KubemcError):
    """Something the machine lacks: a binary, root, a kernel feature."""

    exit_code = MISSING_ENVIRONMENT
