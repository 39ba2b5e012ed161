"""Known-bad CRI runtimes: a gRPC proxy in front of a real runtime's socket
that breaks one promise, so that the tests can show the checker catches it.

Every call is forwarded as bytes to the real runtime, except where the mode
tampers:

``stale-status``
    ContainerStatus answers from a cache: the first answer that showed a
    container RUNNING is repeated for every later ContainerStatus of that
    container — a runtime whose status lags behind its containers (after a
    stop, an exit or a kill it still says RUNNING).
``drop-sandbox-stop``
    StopPodSandbox answers OK without forwarding: the sandbox and its
    containers go on running, and every later status or list says so.

:attr:`CriProxy.tampered` counts the answers the proxy changed (a test
that saw none has shown nothing). The proxy listens on a Unix socket in a
temporary directory of its own, removed by :meth:`CriProxy.close`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent import futures

from kubemc.conformance.adapters.cri import proto as pb

MODES = ("stale-status", "drop-sandbox-stop")


class CriProxy:
    def __init__(self, upstream_socket: str, mode: str):
        import grpc
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r} (known: {', '.join(MODES)})")
        self._grpc = grpc
        self.mode = mode
        self.upstream = grpc.insecure_channel(f"unix://{upstream_socket}")
        self.dir = tempfile.mkdtemp(prefix="kmc-cri-proxy-")
        self.socket = os.path.join(self.dir, "proxy.sock")
        self.tampered = 0
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers([_Handler(self)])

    def start(self) -> str:
        self.server.add_insecure_port(f"unix://{self.socket}")
        self.server.start()
        return self.socket

    def close(self) -> None:
        self.server.stop(grace=0).wait(5)
        self.upstream.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def forward(self, method: str, request: bytes, context) -> bytes:
        name = method.rsplit("/", 1)[-1]
        if self.mode == "drop-sandbox-stop" and name == "StopPodSandbox":
            with self._lock:
                self.tampered += 1
            return b""                                  # an empty StopPodSandboxResponse: "OK"
        try:
            answer = self.upstream.unary_unary(method)(request, timeout=context.time_remaining())
        except self._grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
        if self.mode == "stale-status" and name == "ContainerStatus":
            cid = pb.decode(name, "request", request).container_id
            with self._lock:
                if cid in self._cache:
                    if self._cache[cid] != answer:
                        self.tampered += 1
                    return self._cache[cid]
                if pb.decode(name, "response", answer).status.state == 1:   # CONTAINER_RUNNING
                    self._cache[cid] = answer
        return answer


class _Handler:
    """A ``grpc.GenericRpcHandler``: every method, bytes in and out."""

    def __init__(self, proxy: CriProxy):
        self.proxy = proxy

    def service(self, details):
        method = details.method
        return self.proxy._grpc.unary_unary_rpc_method_handler(
            lambda request, context: self.proxy.forward(method, request, context))
