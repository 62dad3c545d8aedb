"""Pytest fixtures with a real registry (Debian's ``docker-registry``) on loopback.

``local_registry`` is anonymous; ``token_registry`` requires Bearer tokens from a
local :class:`~lsst_spawner.testing.registry.TokenServer` that knows one user.
Both hold the same small repository (see :data:`SAMPLE_TAGS`). When the binary
is missing the fixtures fail with install advice: a registry test that silently
skips would hide that nothing was tested.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ...images.registry import RegistryClient
from ...images.registry_auth import RegistryCredentials
from .local import LocalRegistry, RegistryUnavailableError, TokenServer, find_registry_binary

__all__ = ["SAMPLE_ALIASES", "SAMPLE_TAGS", "RegistryFixture", "local_registry", "token_registry"]

#: Tags pushed into the fixtures' repository, each with its own digest.
SAMPLE_TAGS = ("r23_0_1", "w_2024_05", "w_2024_04", "d_2024_02_03", "exp_w_2024_05")
#: Alias → target pushed as the same manifest.
SAMPLE_ALIASES = {"recommended": "w_2024_05", "latest_weekly": "w_2024_05"}
SAMPLE_REPOSITORY = "lsst-sqre/sciplat-lab"
TOKEN_USER = RegistryCredentials("alice", "alice-registry-password")


@dataclass
class RegistryFixture:
    """A running registry and what was pushed into it."""

    registry: LocalRegistry
    repository: str
    digests: dict[str, str]
    token_server: TokenServer | None = None
    credentials: RegistryCredentials | None = None
    insecure: list[str] = field(default_factory=list)

    @property
    def host_port(self) -> str:
        return self.registry.host_port

    def client(self, **kwargs: object) -> RegistryClient:
        """A client allowed to use http to this registry (and its token server)."""
        options: dict[str, object] = {
            "insecure_registries": self.insecure,
            "credentials": self.credentials,
        }
        if self.token_server is not None:
            options["realm_allowlist"] = [self.token_server.server.host_port]
        options.update(kwargs)
        return RegistryClient(self.host_port, **options)  # type: ignore[arg-type]


def _start(token_server: TokenServer | None) -> LocalRegistry:
    try:
        find_registry_binary()
        return LocalRegistry(token_server=token_server).start()
    except RegistryUnavailableError as error:
        pytest.fail(f"real registry unavailable: {error}", pytrace=False)


def _populate(registry: LocalRegistry) -> dict[str, str]:
    digests = registry.push(SAMPLE_REPOSITORY, SAMPLE_TAGS)
    for alias, target in SAMPLE_ALIASES.items():
        digests[alias] = registry.alias(SAMPLE_REPOSITORY, alias, target)
    return digests


@pytest.fixture(scope="session")
def local_registry() -> Iterator[RegistryFixture]:
    """An anonymous real registry holding :data:`SAMPLE_TAGS` and :data:`SAMPLE_ALIASES`."""
    registry = _start(None)
    try:
        yield RegistryFixture(
            registry, SAMPLE_REPOSITORY, _populate(registry), insecure=[registry.host_port]
        )
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def token_registry() -> Iterator[RegistryFixture]:
    """A real registry with Bearer token auth; ``credentials`` are accepted by its token server."""
    token_server = TokenServer(users={TOKEN_USER.username: TOKEN_USER.password})
    try:
        registry = _start(token_server)
        try:
            yield RegistryFixture(
                registry,
                SAMPLE_REPOSITORY,
                _populate(registry),
                token_server=token_server,
                credentials=TOKEN_USER,
                insecure=[registry.host_port, token_server.server.host_port],
            )
        finally:
            registry.stop()
    finally:
        token_server.close()


@pytest.fixture(scope="session")
def registry(local_registry: RegistryFixture) -> RegistryFixture:
    """The real local registry (Debian's ``docker-registry``): the same as ``local_registry``."""
    return local_registry
