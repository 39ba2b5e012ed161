"""The Container Runtime Interface's runtime service, modelled.

``model.cri.runtime`` holds the runtime's state and the pure transition
function ``call`` that answers each CRI call (the oracle the conformance
runner judges a real containerd against); ``model.cri.machine`` explores
every sequence of calls and faults against it.
"""
