"""kubemc-lock: the lock of ``model/kernel.py``'s worked example grown into a
full kubemc component, installed as a distribution of its own.

The package is layered as kubemc is: ``machine`` (the model; imports only
``model.kernel``), ``properties`` (imports the machine), ``catalog`` (the
component kubemc finds through the ``kubemc.components`` entry point).
"""
