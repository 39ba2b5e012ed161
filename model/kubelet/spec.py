"""The pod a kubelet model runs, and the kubelet's constants.

Why a fixed pod per model: the kubelet's decisions for one pod do not
depend on other pods (pod workers are per pod; the node only admits), so one
pod with one container of each kind shows every ordering rule the
pod-lifecycle, init-container and sidecar documents state.

Container kinds (kubernetes.io/docs/concepts/workloads/pods/init-containers,
.../sidecar-containers): ``init`` — a regular init container, run to
completion; ``sidecar`` — an init container with ``restartPolicy: Always``,
started in init order and kept running; ``app`` — a regular container.
"""

from __future__ import annotations

import attrs

INIT, SIDECAR, APP = "init", "sidecar", "app"
ALWAYS, ON_FAILURE, NEVER = "Always", "OnFailure", "Never"
POLICIES = (ALWAYS, ON_FAILURE, NEVER)
#: the sidecar's probe: a startup probe (it counts as started once the probe
#: passed) or a readiness probe alone (no startup probe: "the default state is
#: Success", so it counts as started as soon as it runs — pod-lifecycle docs,
#: "Container probes")
SIDECAR_PROBES = ("startup", "readiness")

#: CrashLoopBackOff (pod-lifecycle docs, "Container restart policy"): "an
#: exponential backoff delay (10s, 20s, 40s, …), that is capped at 300
#: seconds (5 minutes). Once a container has executed for 10 minutes without
#: any problems, the kubelet resets the restart backoff timer"
BACKOFF_INITIAL, BACKOFF_CAP = 10, 300
#: the kubelet's ``minimumGracePeriodInSeconds``: a stop after the grace
#: period has run out still gets this much (the docs' one-off 2 s extension)
MIN_GRACE = 2


@attrs.frozen(slots=True)
class Container:
    name: str
    kind: str = attrs.field(validator=attrs.validators.in_((INIT, SIDECAR, APP)))
    startup: bool = False      # has a startupProbe
    readiness: bool = False    # has a readinessProbe
    liveness: bool = False     # has a livenessProbe
    pre_stop: bool = False     # has a preStop hook


@attrs.frozen(slots=True)
class Pod:
    """Init containers (regular and sidecars) in spec order, then apps."""

    containers: tuple
    restart_policy: str = attrs.field(validator=attrs.validators.in_(POLICIES))
    grace: int = 3             # terminationGracePeriodSeconds, abstract seconds
    fits: bool = True          # the node's admission accepts it

    def index(self, kind: str) -> tuple:
        return tuple(i for i, c in enumerate(self.containers) if c.kind == kind)


def pod(*, sidecar: bool = True, init: bool = True, apps: int = 2,
        restart_policy: str = ON_FAILURE, grace: int = 3, fits: bool = True,
        sidecar_probe: str = "startup") -> Pod:
    """The catalog's pod: a sidecar with a startup probe (or, with
    ``sidecar_probe="readiness"``, a readiness probe alone), then a regular
    init container, then ``apps`` app containers — the first with a readiness
    probe and a preStop hook, the second with a liveness probe."""
    if not 1 <= apps <= 2:
        raise ValueError("apps must be 1 or 2")
    if sidecar_probe not in SIDECAR_PROBES:
        raise ValueError(f"sidecar_probe must be one of {', '.join(SIDECAR_PROBES)}")
    cs = []
    if sidecar:
        cs.append(Container("sidecar", SIDECAR, startup=sidecar_probe == "startup",
                            readiness=sidecar_probe == "readiness"))
    if init:
        cs.append(Container("init", INIT))
    cs.append(Container("app0", APP, readiness=True, pre_stop=True))
    if apps == 2:
        cs.append(Container("app1", APP, liveness=True))
    return Pod(tuple(cs), restart_policy, grace, fits)


def backoff_delay(level: int) -> int:
    """The delay before the restart that follows ``level`` earlier ones in
    the current crash loop: 10 s doubling, capped at 300 s."""
    return min(BACKOFF_INITIAL * 2 ** level, BACKOFF_CAP)
