#!/usr/bin/env python3
"""Nodes that break the Maelstrom protocol on purpose: fixtures for the runner's robustness.

The conformance runner must report each of these plainly and still end on
time, with every process it started gone. Usage::

    python3 misbehave.py MODE [--marker=TOKEN]

MODE is one of:

``crash``
    runs ``leader_kv.py`` (correct), except that the last node of
    ``node_ids`` dies with status 3 after it has received five client
    requests: a crash in the middle of the run, the rest staying correct.
``hang``
    answers ``init``, starts a child process (a sleeping Python) in its
    process group, then on its first request ignores SIGTERM and stops reading stdin
    forever: the runner must kill the whole group with SIGKILL.
``garbage``
    answers ``init``, then answers every request with lines that are not
    Maelstrom messages: text, invalid UTF-8, JSON that is not an object, an
    object without ``body``, a message with another node's ``src``.
``noinit``
    reads stdin forever and never answers ``init``.
``exit``
    exits with status 0 at once, before reading anything.
``escape``
    answers ``init``, then starts two sleepers that leave its process group:
    a child that calls ``setsid`` and a grandchild whose parent exits at once
    (a double fork); the runner must still kill both.
``deep``
    answers ``init``, then answers each request with one line of JSON nested
    100,000 levels deep (more than a JSON reader's recursion allows).
``flood``
    correct (``leader_kv.py``), while a thread writes 64 MiB to stderr: the
    runner must keep only its cap of it, and still judge the run.

``--marker=TOKEN`` is ignored by the program: tests put a unique token on the
command line so they can find, through ``/proc``, any process left behind.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time


MODES = ("crash", "hang", "garbage", "noinit", "exit", "escape", "deep", "flood")


def send(node_id, dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def crash_after(stdin, requests: int):
    """stdin for leader_kv.main, ending the process once the last node got ``requests``."""
    doomed = False
    seen = 0
    for line in stdin:
        body = json.loads(line)["body"]
        if body.get("type") == "init":
            doomed = body["node_id"] == body["node_ids"][-1]
        elif doomed and body.get("type") in ("read", "write", "cas"):
            seen += 1
            if seen > requests:
                sys.stderr.write(f"{body.get('type')} #{seen}: simulated crash\n")
                sys.stderr.flush()
                os._exit(3)
        yield line


def flood_stderr(total: int) -> None:
    chunk = b"x" * 65535 + b"\n"
    for _ in range(total // len(chunk)):
        sys.stderr.buffer.write(chunk)
    sys.stderr.flush()


SLEEPER = "import sys, time; time.sleep(600)"


def escape(marker_args) -> None:
    """A setsid child, and a double-forked grandchild in a session of its own."""
    subprocess.Popen([sys.executable, "-c", SLEEPER, *marker_args], start_new_session=True)
    subprocess.run([sys.executable, "-c",
                    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
                    f"{SLEEPER!r}, *sys.argv[1:]], start_new_session=True)", *marker_args])


def main(mode: str) -> None:
    if mode == "exit":
        return
    if mode in ("crash", "flood"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import leader_kv

        if mode == "flood":
            threading.Thread(target=flood_stderr, args=(64 << 20,), daemon=True).start()
            leader_kv.main()
        else:
            leader_kv.main(crash_after(sys.stdin, 5))
        return
    node_id = None
    child = None
    for line in sys.stdin:
        msg = json.loads(line)
        src, body = msg["src"], msg["body"]
        kind = body.get("type")
        if kind == "init":
            if mode == "noinit":
                continue
            node_id = body["node_id"]
            send(node_id, src, {"type": "init_ok", "in_reply_to": body["msg_id"]})
            if mode == "hang":
                # inherits our process group: the runner's killpg must reach it
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]
                                         + sys.argv[2:])
            if mode == "escape":
                escape(sys.argv[2:])
            continue
        if mode == "noinit" or kind not in ("read", "write", "cas"):
            continue
        if mode == "hang":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:                        # never read stdin again
                time.sleep(3600)
        if mode == "deep":
            sys.stdout.write("[" * 100_000 + "]" * 100_000 + "\n")
            sys.stdout.flush()
            continue
        if mode == "garbage":
            out = sys.stdout.buffer
            out.write(b"this is not json\n")
            out.write(b"\xff\xfe invalid utf-8 \x80\n")
            out.write(b"[1, 2, 3]\n")
            out.write(b'{"src": "%s", "dest": "%s"}\n' % (node_id.encode(), src.encode()))
            out.write(json.dumps({"src": "n999", "dest": src, "body": {
                "type": "write_ok", "in_reply_to": body["msg_id"]}}).encode() + b"\n")
            out.flush()
            continue
    if child is not None:
        child.wait()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--marker")]
    if len(args) != 1 or args[0] not in MODES:
        sys.exit(f"usage: misbehave.py {'|'.join(MODES)} [--marker=TOKEN]")
    try:
        main(args[0])
    except (BrokenPipeError, KeyboardInterrupt):
        pass
