"""The live run's packet tools, run inside the network namespaces the run
created (``ip netns exec NS python3 prober.py …``). A standalone script:
nothing of kubemc is imported, so it runs wherever the namespace is.

``serve IP PROTO:PORT…``  an endpoint: answers every TCP connection and UDP
    datagram with ``IP:PORT SEEN`` — its own address and the source address
    it sees (so the runner learns where a packet landed and whether it was
    masqueraded on the way).
``probe``  a client: reads ``[{"id", "proto", "dst", "port", "count"}]`` as
    JSON on stdin, opens ``count`` connections (a new source port each, so
    conntrack makes a new choice each time) and prints, per id, how many
    answers came from each ``IP:PORT SEEN``, how many were refused (a
    REJECT's ICMP port unreachable, a TCP reset, or — for the node's own
    packets — EPERM from a filter OUTPUT rule) and how many timed out.
    After three time-outs in a row a probe stops: the rest count as
    time-outs (a dropped Service would otherwise cost ``count`` seconds).
"""

from __future__ import annotations

import json
import socket
import sys
import threading

TIMEOUT = 1.0


def serve(address: str, specs: list) -> None:
    threads = []
    for spec in specs:
        proto, port = spec.split(":")
        port = int(port)
        t = threading.Thread(target=_tcp if proto == "tcp" else _udp, args=(address, port),
                             daemon=True)
        t.start()
        threads.append(t)
    print("ready", flush=True)
    for t in threads:
        t.join()


def _tcp(address: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(512)
    while True:
        conn, peer = s.accept()
        try:
            conn.sendall(f"{address}:{port} {peer[0]}\n".encode())
        except OSError:
            pass
        finally:
            conn.close()


def _udp(address: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(f"{address}:{port} {peer[0]}\n".encode(), peer)


def _once(proto: str, dst: str, port: int) -> str:
    kind = socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(TIMEOUT)
    try:
        s.connect((dst, port))
        if kind == socket.SOCK_DGRAM:
            s.send(b"probe")
        data = s.recv(256).decode().strip()
        return data or "refused"
    except (ConnectionRefusedError, ConnectionResetError):
        return "refused"
    except PermissionError:
        # the node's own packet: a filter OUTPUT rule's REJECT (or DROP)
        # fails the send with EPERM instead of an ICMP answer
        return "refused"
    except (TimeoutError, socket.timeout):
        return "timeout"
    except OSError as exc:
        return f"error {exc.errno}"
    finally:
        s.close()


def probe(probes: list) -> dict:
    out = {}
    for p in probes:
        counts: dict = {}
        row = 0
        for k in range(p["count"]):
            if row >= 3:
                counts["timeout"] = counts.get("timeout", 0) + p["count"] - k
                break
            got = _once(p["proto"], p["dst"], p["port"])
            row = row + 1 if got == "timeout" else 0
            counts[got] = counts.get(got, 0) + 1
        out[p["id"]] = counts
    return out


def main(argv) -> int:
    if argv[:1] == ["serve"]:
        serve(argv[1], argv[2:])
        return 0
    if argv[:1] == ["probe"]:
        json.dump(probe(json.load(sys.stdin)), sys.stdout)
        return 0
    print("usage: prober.py serve IP PROTO:PORT... | probe < probes.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
