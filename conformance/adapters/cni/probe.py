"""A tiny prober: real TCP and UDP packets between pod and node namespaces,
and the source address each receiver sees.

Why in-process and not ``ping`` / ``nc``: a socket belongs to the namespace
it was created in (``socket(7)``, ``network_namespaces(7)``), whichever
thread later uses it; so the runner makes listening sockets in every pod's
namespace and sending sockets in the sender's, and nothing but iproute2 is
needed on the machine. The packets are real: they leave through the pod's
veth, cross the node's bridge, the node's routes, the underlay, and the
other node's bridge, as any pod's packets would.

Every probe carries a token; one receiver thread accepts on all listeners
at once (a selector) and records ``token -> (receiver, source address the
receiver sees)``. For TCP the source is ``getpeername()`` of the accepted
connection, for UDP the ``recvfrom`` address: after any NAT on the way, so
"no NAT" is plainly "the receiver saw the sender's own address".
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time

import attrs

from kubemc.conformance.adapters.cni.netns import entered

PORT = 17171
TCP, UDP = "TCP", "UDP"


@attrs.frozen(slots=True)
class Probe:
    """One packet: ``sender`` (a pod or node name) in namespace ``src_netns``
    to ``dst`` (the receiver pod ``receiver``'s address)."""

    token: str
    proto: str
    sender: str
    src_netns: str
    src_ip: str           # the address the sender has (reported by ADD, or the node's)
    bind: bool            # bind to src_ip (a node has several addresses)
    src_node: int
    receiver: str
    dst: str


@attrs.frozen(slots=True)
class Observation:
    probe: Probe
    delivered_to: str | None      # the receiver whose listener got the token
    seen_src: str | None          # the source address that receiver saw
    error: str = ""

    def to_json(self) -> dict:
        p = self.probe
        return {"token": p.token, "proto": p.proto, "sender": p.sender, "src": p.src_ip,
                "src_node": p.src_node, "receiver": p.receiver, "dst": p.dst,
                "delivered_to": self.delivered_to, "seen_src": self.seen_src, "error": self.error}


class Prober:
    def __init__(self, port: int = PORT, timeout: float = 0.5):
        self.port, self.timeout = port, timeout
        self.sel = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.seen: dict[str, tuple[str, str]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- receivers -----------------------------------------------------------------
    def listen(self, name: str, netns: str) -> None:
        with entered(netns):
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (tcp, udp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", self.port))
            s.setblocking(False)
            self.sockets.append(s)
        tcp.listen(128)
        with self._lock:
            self.sel.register(tcp, selectors.EVENT_READ, ("accept", name))
            self.sel.register(udp, selectors.EVENT_READ, ("udp", name))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cni-prober", daemon=True)
        self._thread.start()

    def _record(self, data: bytes, name: str, src: str) -> None:
        token = data.split(b"\n", 1)[0].decode(errors="replace")
        with self._cond:
            self.seen.setdefault(token, (name, src))
            self._cond.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                events = self.sel.select(timeout=0.05) if self.sel.get_map() else []
            for key, _ in events:
                kind, name = key.data[0], key.data[1]
                sock = key.fileobj
                try:
                    if kind == "accept":
                        conn, peer = sock.accept()
                        conn.setblocking(False)
                        with self._lock:
                            self.sel.register(conn, selectors.EVENT_READ, ("conn", name, peer[0], []))
                    elif kind == "udp":
                        data, peer = sock.recvfrom(256)
                        self._record(data, name, peer[0])
                    else:
                        chunk = sock.recv(256)
                        buf = key.data[3]
                        buf.append(chunk)
                        joined = b"".join(buf)
                        if not chunk or b"\n" in joined:
                            with self._lock:
                                self.sel.unregister(sock)
                            sock.close()
                            if joined:
                                self._record(joined, name, key.data[2])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    with contextlib.suppress(Exception), self._lock:
                        self.sel.unregister(sock)
                    if kind == "conn":
                        sock.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for key in list(self.sel.get_map().values()):
                with contextlib.suppress(Exception):
                    key.fileobj.close()
            self.sel.close()
        for s in self.sockets:
            with contextlib.suppress(Exception):
                s.close()

    # -- senders -------------------------------------------------------------------
    def send(self, probe: Probe) -> Observation:
        """One probe; a TCP probe that timed out (a busy machine, not a
        refusal or an unreachable network) is tried once more with the same
        token before it counts as lost."""
        obs = self._send_once(probe)
        if obs.delivered_to is None and probe.proto == TCP and obs.error in ("", "timed out"):
            obs = self._send_once(probe)
        return obs

    def _send_once(self, probe: Probe) -> Observation:
        payload = (probe.token + "\n").encode()
        error = ""
        try:
            with entered(probe.src_netns):
                s = socket.socket(socket.AF_INET,
                                  socket.SOCK_STREAM if probe.proto == TCP else socket.SOCK_DGRAM)
            with s:
                s.settimeout(self.timeout)
                if probe.bind:
                    s.bind((probe.src_ip, 0))
                if probe.proto == TCP:
                    s.connect((probe.dst, self.port))
                    s.sendall(payload)
                else:
                    for _ in range(2):          # UDP: one retry, the token makes it idempotent
                        s.sendto(payload, (probe.dst, self.port))
                        if self._wait(probe.token, self.timeout / 2):
                            break
        except OSError as exc:
            error = exc.strerror or str(exc)
        # TCP: the token follows the handshake; UDP: the loop above has waited
        got = self._wait(probe.token, 0.05 if error or probe.proto == UDP else self.timeout)
        return Observation(probe, got[0] if got else None, got[1] if got else None, error)

    def _wait(self, token: str, timeout: float):
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self.seen[token]
