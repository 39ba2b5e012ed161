"""The partitioned search on a Ray cluster (``kubemc check --ray ADDRESS``).

Ray is an existing distributed engine: it places the workers (actors) on the
cluster's machines, moves the batches between them through its object store
and cleans up actors when their driver goes. The search is
``checker.parallel``'s, unchanged: each actor is a ``checker.shard``
worker, built from the model's names in the catalog on its own machine —
so every node needs the same kubemc installed — and started with a fixed
``PYTHONHASHSEED``, so that fingerprints agree across machines (the
coordinator checks they do). A batch an actor returns stays in the object
store and goes straight to the actor that owns its states: the driver
passes references, never the bytes.

What a user can get wrong is said in one line: a malformed address (exit 2),
Ray not installed, or no cluster answering at the address, or one too
small for the workers asked (exit 3).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket

from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.checker.parallel import terminated_on_sigterm
from kubemc.checker.shard import ModelSpec, ShardWorker

INSTALL = "pip install 'kubemc[ray]'"
#: the string-hash seed of every actor: any fixed value makes fingerprints agree
HASH_SEED = "0"
#: how long to wait for the actors to start before saying the cluster cannot
#: place them
PLACEMENT_SECONDS = 120


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of a Ray head (the GCS port ``ray start --head`` prints),
    or a BadInput naming the expected form."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 \
            or any(c.isspace() for c in host) or "/" in host:
        raise BadInput(f"--ray {text!r}: expected HOST:PORT of a Ray head, e.g. --ray "
                       "127.0.0.1:6379 (the address `ray start --head` prints)")
    return host, int(port)


def require_ray(address: str | None = None):
    """Ray, imported; for a head on loopback, told that this machine is a
    one-node cluster first. Why: Ray turns a loopback address into the
    host's routable one (``ray._private.services.resolve_ip_for_localhost``)
    unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which it reads when
    imported — so it is set before, and the constant after, the import."""
    local = address is not None and _is_loopback(parse_address(address)[0])
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
        if local:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
    except ImportError:
        raise MissingEnvironment(f"--ray needs Ray, which is not installed: {INSTALL}") \
            from None
    return ray


def check_reachable(text: str, timeout: float = 3.0) -> None:
    """Refuse an address no process listens on, in seconds rather than after
    Ray's own minute of retries."""
    host, port = parse_address(text)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise MissingEnvironment(
            f"no Ray cluster answers at {host}:{port} ({exc.strerror or exc}): start one "
            f"with `ray start --head --port={port}` or give the address it prints") from None


def validate(text: str) -> None:
    """Everything about ``--ray ADDRESS`` that can be refused before any work."""
    parse_address(text)
    require_ray(text)
    check_reachable(text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


@contextlib.contextmanager
def connected(address: str):
    """A Ray driver connected to the cluster at ``address`` for the block."""
    ray = require_ray(address)
    host, port = parse_address(address)
    check_reachable(address)
    if ray.is_initialized():  # a caller's own connection: use it, leave it open
        yield ray
        return
    try:
        ray.init(address=f"{host}:{port}", namespace="kubemc",
                 runtime_env={"env_vars": {"PYTHONHASHSEED": HASH_SEED}},
                 logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise MissingEnvironment(f"could not join the Ray cluster at {address}: "
                                 f"{' '.join(str(exc).split())[:200]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


class RayShard(ShardWorker):
    """A shard worker shaped for Ray: a level's batches are separate return
    values (each its own object, fetched only by the actor that owns its
    states) and arrive as separate arguments (Ray resolves only those)."""

    def expand_split(self):
        batches, report = self.expand()
        return (*batches, report)

    def absorb_from(self, budget, *batches):
        return self.absorb(batches, budget)


class ActorPool:
    """``count`` actors of :class:`ShardWorker` and the calls of a level."""

    def __init__(self, ray, spec: ModelSpec, count: int):
        cpus = ray.cluster_resources().get("CPU", 0)
        count = count or int(cpus)  # 0: as many workers as the cluster has CPUs
        self.ray, self.count, self.kind = ray, count, "ray"
        if cpus < count or count < 1:
            raise MissingEnvironment(
                f"the Ray cluster has {cpus:g} CPUs and --workers {count} needs one per "
                f"worker: add nodes (`ray start --address ...`) or ask for fewer workers")
        remote = ray.remote(num_cpus=1)(RayShard)
        self.actors = [remote.remote(spec, i, count) for i in range(count)]
        self._batches = None

    def _get(self, refs, timeout=None):
        from ray.exceptions import GetTimeoutError

        try:
            return self.ray.get(refs, timeout=timeout)
        except GetTimeoutError:
            raise MissingEnvironment(
                f"the Ray cluster did not start {self.count} workers within "
                f"{PLACEMENT_SECONDS} s: check `ray status` on the head") from None

    def start(self):
        return self._get([a.start.remote() for a in self.actors], timeout=PLACEMENT_SECONDS)

    def expand(self):
        refs = [a.expand_split.options(num_returns=self.count + 1).remote()
                for a in self.actors]
        # refs[i][j]: actor i's batch for actor j; refs[i][-1]: its report
        self._batches = refs
        return self._get([r[-1] for r in refs])

    def absorb(self, budget):
        refs, self._batches = self._batches, None
        calls = [a.absorb_from.remote(budget, *[refs[i][j] for i in range(self.count) if i != j])
                 for j, a in enumerate(self.actors)]
        return self._get(calls)

    def usage(self) -> list[tuple[float, float]]:
        """Each actor's peak resident memory (MiB) and CPU seconds."""
        return self._get([a.usage.remote() for a in self.actors])

    def graph_parts(self) -> list:
        return self._get([a.graph_part.remote() for a in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)


def actor_pool(address: str):
    """A pool factory for ``checker.parallel.explore``: ``(spec, count)`` to
    a context that holds ``count`` actors on the cluster at ``address``."""

    @contextlib.contextmanager
    def pool(spec: ModelSpec, count: int):
        # the handler after ray.init, which installs its own (a stack dump, exit 15)
        with connected(address) as ray, terminated_on_sigterm():
            actors = None
            try:
                actors = ActorPool(ray, spec, count)
                yield actors
            finally:
                if actors is not None:
                    actors.close()

    return pool
