"""Shared test helpers.

Under ``CI=true`` nothing may be skipped silently: a test that needs a real
component (etcd, CNI plugins, root) fails when it is missing, with the fix.
"""

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str, fix: str) -> None:
    """Skip locally, fail in CI, when an outside component is missing."""
    if condition:
        return
    message = f"{what} is missing: {fix}"
    # the only skip in the suite, and never under CI=true
    if IN_CI:
        pytest.fail(message)
    else:
        pytest.skip(message)


#: ``shared/data`` beside the repository, where CI checks it out: recorded
#: histories with established verdicts (jepsen-etcd, porcupine-kv)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_shared_data() -> Path:
    """Tests that read ``shared/data`` need it beside the repository."""
    require((SHARED_DATA / "README.md").is_file(), f"the shared data ({SHARED_DATA})",
            "check out shared/ beside the repository, as CI does")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data``, or a skip (a failure under CI) saying how to get it.
    Session-scoped, so that Hypothesis tests may use it."""
    return require_shared_data()


def require_real_etcd() -> None:
    """The etcd target needs the etcd binary, root, ip and iptables."""
    missing = []
    if shutil.which("etcd") is None:
        missing.append("the etcd binary (apt-get install etcd-server)")
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    for tool, pkg in (("ip", "iproute2"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {pkg})")
    require(not missing, "needs " + ", ".join(missing), "run the README's test command as root")
