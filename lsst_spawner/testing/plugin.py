"""The lsst_spawner pytest plugin: fixtures for sites testing their configuration.

Registered through the ``pytest11`` entry point, so installing lsst_spawner
with its ``test`` extra makes these fixtures available to any test suite.
"""

from .auth_fixtures import fake_cilogon, fake_github
from .kube_fixtures import kube_api, kubelet
from .postgres import postgres_server, postgres_url
from .registry_fixtures import local_registry, registry, token_registry

__all__ = [
    "fake_cilogon",
    "fake_github",
    "kube_api",
    "kubelet",
    "local_registry",
    "postgres_server",
    "postgres_url",
    "registry",
    "token_registry",
]
