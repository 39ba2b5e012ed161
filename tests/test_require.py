"""A missing real component skips a test on a developer's machine and fails
it under CI=true: CI never skips silently."""

import pytest

import conftest


def test_missing_component_fails_under_ci(monkeypatch):
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="etcd is missing"):
        conftest.require(False, "etcd", "apt-get install etcd-server")


def test_missing_component_skips_outside_ci(monkeypatch):
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="etcd is missing"):
        conftest.require(False, "etcd", "apt-get install etcd-server")


def test_present_component_neither_skips_nor_fails(monkeypatch):
    monkeypatch.setattr(conftest, "IN_CI", True)
    assert conftest.require(True, "etcd", "n/a") is None
