"""How a replay's outcome is printed, and its exit code: one function for
``kubemc trace replay`` and ``kubemc check-controller --replay``.

Why a module of its own: ``checker.check_controller`` prints replays too,
and library code may not import the CLI, which sits on top (``docs/layers.md``).
"""

from __future__ import annotations

import json

from kubemc.checker.errors import HOLDS, VIOLATED


def print_replay(result, as_json: bool, what: str) -> int:
    """Print a replay's outcome (``what`` names what may have changed since the
    trace was written) and return its exit code: 1 when it reproduces."""
    if as_json:
        print(json.dumps({"reproduced": result.reproduced, "message": result.message,
                          "steps_replayed": result.steps_replayed,
                          "diverged_at": list(result.divergences)}))
    else:
        print(result.message)
        if result.divergences:
            print(f"note: the states differ from the recorded ones at steps "
                  f"{', '.join(map(str, result.divergences))} ({what} changed since "
                  "the trace was written)")
    return VIOLATED if result.reproduced else HOLDS
