"""Audits of real clusters against the models (``kubemc audit``)."""
