"""Reports of a conformance run: a human summary, JSON, JUnit XML and the
violation files. :mod:`.files` writes the run's files, :mod:`.junit` the
JUnit XML, :mod:`.summary` the parts of a summary every adapter shares; one
module per adapter (:mod:`.etcd`, :mod:`.maelstrom`, :mod:`.cri`,
:mod:`.cni`) says what its run shows. The live progress line is
:class:`checker.progress.ProgressLine`, the same as ``kubemc check``'s.

The files a run writes into its output directory, and when, are listed once,
in :mod:`.files` (whose job it is to write them).
"""
