"""Shared test helpers.

Under ``CI=true`` nothing may be skipped silently: a test that needs a real
component (etcd, CNI plugins, root) fails when it is missing, with the fix.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str, fix: str) -> None:
    """Skip locally, fail in CI, when an outside component is missing."""
    if condition:
        return
    message = f"{what} is missing: {fix}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
