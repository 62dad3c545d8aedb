"""The lsst_spawner pytest plugin: fixtures for sites testing their configuration.

Registered through the ``pytest11`` entry point, so installing lsst_spawner
with its ``test`` extra makes these fixtures available to any test suite. The
in-process hub (``lsst_hub``) builds on pytest-jupyterhub's ``hub_app``, which
that package's own plugin registers.
"""

from .golden import golden, pytest_addoption
from .hub.fixtures import lsst_hub
from .kube.fixtures import kube_api, kube_role, kube_tls, kubelet, oci_kubelet
from .oauth.fixtures import fake_cilogon, fake_github
from .postgres import postgres_server, postgres_url
from .registry.fixtures import local_registry, registry, token_registry

__all__ = [
    "fake_cilogon",
    "fake_github",
    "golden",
    "kube_api",
    "kube_role",
    "kube_tls",
    "kubelet",
    "local_registry",
    "lsst_hub",
    "oci_kubelet",
    "postgres_server",
    "postgres_url",
    "pytest_addoption",
    "registry",
    "token_registry",
]
