"""Leftovers of local etcd runs that were killed: found by their run prefix, removed.

A run that is SIGKILLed (or loses its machine's power mid-way) cannot run
its ``finally`` blocks: its network namespaces, bridge and veths, its host
FORWARD rule, its etcd processes (each in a session of its own, perhaps
stopped by the pause fault) and its temporary directory stay. Everything a
run creates carries its prefix ``kmc<run id>`` (:mod:`conformance.adapters.etcd.cluster`),
so the next run can find them.

Telling a dead run from a live one (pytest-xdist runs clusters side by side):
every live run holds a *run lock*, a Unix socket bound to the abstract name
``kmc-etcd-run-<id>`` (:class:`conformance.runner.run_lock.RunLocks`), from
before it creates anything until after it has removed everything. The kernel
releases the name when its process dies, however it dies. A prefix whose
lock can be taken belongs to a dead run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile

from kubemc.conformance.runner.run_lock import RunLocks

PREFIX = re.compile(r"kmc([0-9a-f]{6})")

#: a local cluster's run lock, held by :class:`conformance.adapters.etcd.cluster.LocalCluster`
LOCKS = RunLocks("kmc-etcd-run-")


def _out(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _etcd_processes() -> dict[str, list[int]]:
    """run id -> pids of etcd processes started with that run's cluster token."""
    found: dict[str, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if b"--initial-cluster-token" in argv:
            i = argv.index(b"--initial-cluster-token")
            m = PREFIX.fullmatch(argv[i + 1].decode(errors="replace")) if i + 1 < len(argv) else None
            if m:
                found.setdefault(m.group(1), []).append(int(entry))
    return found


def find() -> dict[str, dict[str, list]]:
    """Everything on the machine named after a run, by run id and kind."""
    runs: dict[str, dict[str, list]] = {}

    def add(run_id, kind, item):
        runs.setdefault(run_id, {}).setdefault(kind, []).append(item)

    for line in _out("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if (m := re.fullmatch(r"kmc([0-9a-f]{6})n\d+", name)):
            add(m.group(1), "netns", name)
    for name in re.findall(r"^\d+: ([^:@\s]+)", _out("ip", "-o", "link", "show"), re.M):
        if (m := re.fullmatch(r"kmc([0-9a-f]{6})(br|h\d+)", name)):
            add(m.group(1), "link", name)
    for line in _out("iptables", "-w", "-S", "FORWARD").splitlines():
        if line.startswith("-A ") and (m := re.search(r"--comment \"?kmc([0-9a-f]{6})\"?", line)):
            add(m.group(1), "rule", line)
    for run_id, pids in _etcd_processes().items():
        for pid in pids:
            add(run_id, "process", pid)
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "kmc*-etcd-*")):
        if (m := re.match(r"kmc([0-9a-f]{6})-etcd-", os.path.basename(path))):
            add(m.group(1), "dir", path)
    return runs


def remove_leftovers() -> list[str]:
    """Remove what dead runs left; one line per dead run saying what was removed
    (and what could not be, with the command to finish by hand)."""
    report = []
    for run_id, kinds in sorted(find().items()):
        if not LOCKS.is_dead(run_id):
            continue
        done, failed = [], []
        for pid in kinds.get("process", ()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            done.append(f"etcd pid {pid}")
        for ns in kinds.get("netns", ()):
            _out("ip", "netns", "exec", ns, "ss", "-K", "-a", "-t")
            r = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            (done if r.returncode == 0 else failed).append(f"netns {ns}")
        for link in kinds.get("link", ()):
            r = subprocess.run(["ip", "link", "del", link], capture_output=True, text=True)
            if r.returncode == 0 or "Cannot find device" in r.stderr:   # a veth goes with its peer
                done.append(f"link {link}")
            else:
                failed.append(f"link {link}")
        for rule in kinds.get("rule", ()):
            argv = ["iptables", "-w", "-D", *rule.split()[1:]]
            r = subprocess.run([a.strip('"') for a in argv], capture_output=True, text=True)
            (done if r.returncode == 0 else failed).append(f"rule {rule}")
        for path in kinds.get("dir", ()):
            shutil.rmtree(path, ignore_errors=True)
            (failed if os.path.exists(path) else done).append(f"dir {path}")
        line = f"removed leftovers of killed run {run_id}: {', '.join(done) or 'nothing'}"
        if failed:
            line += f"; could not remove {', '.join(failed)} (remove them by hand as root)"
        report.append(line)
    return report
