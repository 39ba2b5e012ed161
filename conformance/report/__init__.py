"""Reports of a conformance run: a human summary, JSON, JUnit XML and the
violation files. :mod:`.files` writes the run's files, :mod:`.junit` the
JUnit XML, :mod:`.summary` the parts of a summary every adapter shares; one
module per adapter (:mod:`.etcd`, :mod:`.maelstrom`, :mod:`.cri`,
:mod:`.cni`) says what its run shows. The live progress line is
:class:`checker.progress.ProgressLine`, the same as ``kubemc check``'s.

Files a run writes into its output directory (always when a check fails;
also on success when ``--out`` is given):

``history.jsonl``           every event of the run (:mod:`conformance.history`
                            format; the ``#meta`` line says how it was made)
``kv-history.jsonl``        exactly what the linearizability checker was given
                            (model ``etcd-kv``): ``kubemc check-history`` reads it
``report.json``             the ``--json`` document
``violations/CHECK.jsonl``  per failed check: the smallest failing window, as
                            history events (invoke / completion lines)
``violations/CHECK.itf.json``  the same window as an ITF trace, one state per
                            operation, for ITF viewers and ``kubemc trace show``
``etcd-m*.log``             the local cluster's member logs

Every file is created exclusively (:mod:`conformance.report.outputs`): a run
writes into a new or empty directory, never overwrites a file and never
removes one it did not create.
"""
