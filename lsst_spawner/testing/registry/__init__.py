"""A real local registry (Debian's ``docker-registry``), its token server, pushes and fixtures.

The names of :mod:`lsst_spawner.testing.registry.local` are importable from here too.
"""

from .local import (
    DOCKER_MANIFEST,
    REGISTRY_BINARY_ENV,
    LocalRegistry,
    RegistryUnavailableError,
    TokenServer,
    _digest,
    _put_blob,
    _put_manifest,
    find_registry_binary,
    push_alias,
    push_tags,
)

__all__ = [
    "DOCKER_MANIFEST",
    "REGISTRY_BINARY_ENV",
    "LocalRegistry",
    "RegistryUnavailableError",
    "TokenServer",
    "_digest",
    "_put_blob",
    "_put_manifest",
    "find_registry_binary",
    "push_alias",
    "push_tags",
]
