"""kube-scheduler as a state machine (issue 11, items 1, 2 and 6).

* ``objects``   — the small representation of nodes and pods the plugins and
  the properties read (requests as ints, labels, taints, ...);
* ``plugins``   — the Filter and Score plugins and the preemption's victim
  selection, pure functions over ``objects``;
* ``scenarios`` — the clusters the catalog checks, each built to reach what
  one group of properties talks about;
* ``machine``   — the scheduling queue, the scheduling and binding cycles,
  the assume cache and the informers, for several schedulers at once.
"""
