"""Shared test helpers.

Under ``CI=true`` nothing may be skipped silently: a test that needs a real
component (etcd, CNI plugins, root) fails when it is missing, with the fix.
"""

import os
import shutil
import signal
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


# -- the longest items start first, one per worker (issue 9) -------------------

#: The suite's longest items, by node id, with the seconds each holds its
#: worker: for the explorations and random runs the CPU seconds each took
#: when run alone (one at a time, nothing else of the suite running); for the
#: runs against real etcd, containerd and Maelstrom nodes the time limit they
#: run for whatever the load (they are skipped outside CI when the component
#: is missing). Only the ratios matter. Under ``pytest -n`` (xdist's ``load``
#: scheduling, what CI runs) these are moved to the head of the workers'
#: first chunks, the heaviest first, each to the worker with the least weight
#: so far: the run no longer waits on figure 8's exploration, the longest item
#: by far, started two thirds of the way through the collection. Nothing is
#: added, skipped or deselected: an id listed here and not collected (left
#: out with ``-k``) is simply not moved; tests/test_suite_order.py checks that
#: each names a test of the suite.
LONGEST = {
    "tests/test_raft.py::test_every_raft_mutant_is_caught_by_explore[figure8_commit]": 105,
    "tests/test_catalog_pinned.py::test_model_holds_with_its_pinned_counts[raft]": 58,
    "tests/test_conform_etcd.py::test_real_etcd_passes_60s_with_kill_pause_partition": 60,
    "tests/test_conform_cri.py::test_real_containerd_passes_60s_with_faults": 60,
    "tests/test_conform_maelstrom.py::test_acceptance_thirty_seconds_correct_and_faulty": 30,
    "tests/test_catalog_pinned.py::test_model_holds_with_its_pinned_counts[cluster]": 29,
    "tests/test_raft.py::test_every_raft_mutant_is_caught_by_explore[no_consistency_check]": 23,
    "tests/test_stateful.py::test_deep_bugs_are_caught_by_the_deep_profile"
    "[no_consistency_check-1]": 17,
    "tests/test_informer_check.py::test_every_mutant_is_caught_by_explore_at_the_default_bounds"
    "[informer-done_requeues_always]": 15,
    "tests/test_scheduler_oracle.py::test_single_pod_agrees_with_the_plugins": 15,
    "tests/test_lint.py::test_no_count_grows_above_its_baseline[mypy]": 13,  # a fresh clone
    "tests/test_stateful.py::test_correct_models_pass_the_ci_profile[mvcc]": 12,
    "tests/test_catalog_pinned.py::test_model_holds_with_its_pinned_counts[kubelet]": 11,
    "tests/test_scheduler_oracle.py::test_batch_agrees_with_brute_force_through_the_plugins": 11,
    "tests/test_stateful.py::test_deep_bugs_are_caught_by_the_deep_profile[figure8_commit-4]": 10,
    "tests/test_stateful.py::test_correct_models_pass_the_ci_profile[raft]": 9,
    "tests/test_scheduler_z3.py::test_the_oracle_catches_exactly_the_listed_mutants"
    "[lease_update_without_precondition]": 9,
    "tests/test_example_lock.py::test_the_examples_own_tests_pass": 9,
    "tests/test_stateful.py::test_a_miss_is_incomplete_not_holds": 9,
    "tests/test_stateful.py::test_a_seeded_run_is_reproducible": 9,
    "tests/test_informer_check.py::test_every_mutant_is_caught_by_explore_at_the_default_bounds"
    "[informer-watch_not_reopened]": 8,
    "tests/test_cri.py::test_every_mutant_is_caught_by_hypothesis"
    "[stop_sandbox_leaves_containers]": 8,
    "tests/test_informer_check.py::"
    "test_hypothesis_runs_three_writers_a_watch_and_an_informer_and_finds_nothing": 7,
    "tests/test_cri.py::test_every_mutant_is_caught_by_hypothesis[remove_refuses_running]": 6,
    "tests/test_pytest_plugin.py::test_the_api_examples_of_the_docs_pass_as_written": 6,
}


def first_chunks(ids: list, workers: int, chunk: int, weights: dict) -> list:
    """``ids`` reordered so that the weighted ones head the first ``chunk``
    ids of each of the ``workers`` (xdist's ``load`` scheduling hands worker
    k the ids ``k*chunk .. (k+1)*chunk - 1`` first), heaviest first, each to
    the worker with the least weight so far; every other id keeps its order."""
    heavy = sorted((i for i in ids if i in weights), key=lambda i: -weights[i])
    rest = [i for i in ids if i not in weights]
    heads: list[list] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in heavy:
        k = min(range(workers), key=lambda w: (load[w], len(heads[w])))
        heads[k].append(i)
        load[k] += weights[i]
    out: list = []
    for head in heads:
        take = max(chunk - len(head), 0)
        out += head + rest[:take]
        rest = rest[take:]
    return out + rest


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist's controller tells each worker how it schedules: a worker's own
    ``dist`` option is always "no"."""
    node.workerinput["kubemc_dist"] = node.config.getoption("dist")
    node.workerinput["kubemc_maxschedchunk"] = node.config.getoption("maxschedchunk")


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: the collection xdist schedules
def pytest_collection_modifyitems(config, items):
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or workerinput.get("kubemc_dist") != "load":
        return
    workers = int(workerinput["workercount"])
    # LoadScheduling.schedule: a quarter of each worker's share, at least 2
    chunk = len(items) // workers // 4
    if workerinput.get("kubemc_maxschedchunk"):
        chunk = min(chunk, workerinput["kubemc_maxschedchunk"])
    chunk = max(chunk, 2)
    by_id = {item.nodeid: item for item in items}
    items[:] = [by_id[i] for i in first_chunks(list(by_id), workers, chunk, LONGEST)]


def pytest_runtest_setup(item):
    """Give SIGINT back its default action before each test if it is ignored.

    Why: the tests that interrupt a run (``…interrupted…``, ``…signal…``)
    send SIGINT to a child and expect it to stop with 130. A child inherits an
    *ignored* SIGINT (a handler becomes the default across ``exec``, an
    ignored signal stays ignored), and Python then installs no
    KeyboardInterrupt at all: the child never sees the signal. The test
    process has SIGINT ignored when it is a background job of a shell without
    job control, or when a library an earlier test used set it so. With a
    handler here, every child starts with SIGINT's default action, however
    the suite was launched.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
