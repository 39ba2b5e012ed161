"""Install the four top-level folders as one namespace, ``kubemc``.

The folders keep their names in the repository (``model/``, ``properties/``,
``checker/``, ``conformance/``: the design fixes them), but nothing generic
may land in site-packages, where ``import model`` would collide with a
user's own code. setuptools' package-dir mapping installs ``model/`` as
``kubemc.model`` and so on; the package list is derived here rather than kept
by hand in pyproject.toml, so a new subpackage needs no edit. Everything else
about the distribution is in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = ("model", "properties", "checker", "conformance")

setup(
    package_dir={f"kubemc.{folder}": folder for folder in FOLDERS},
    packages=[f"kubemc.{name}" for name in find_packages(include=[f"{f}*" for f in FOLDERS])],
)
