"""Traits that configure the registry image source (mixed into ``LSSTSpawner``)."""

from __future__ import annotations

from pathlib import Path

from traitlets import Integer, List, Unicode

from ..config import CheckedConfigurable, ConfigProblem, Duration
from ..grammar import is_valid_host, is_valid_host_pattern
from .registry import RegistryClient, RegistryImageSource, registry_api_host, valid_repository
from .registry_auth import CredentialsFileError, load_docker_config

__all__ = ["RegistrySourceTraits"]


class RegistrySourceTraits(CheckedConfigurable):
    """Where the image menu's registry is and how to talk to it safely."""

    registry_host = Unicode(
        "ghcr.io",
        config=True,
        help="Registry serving the lab images, as host[:port] (docker.io means Docker Hub). "
        "It is reached over https unless listed in registry_insecure_hosts.",
    )

    registry_repository = Unicode(
        "lsst-sqre/sciplat-lab",
        config=True,
        help="Repository of the lab images on the registry, such as lsst-sqre/sciplat-lab "
        "(Docker Hub official images need the library/ prefix).",
    )

    registry_credentials_file = Unicode(
        "",
        config=True,
        help="Path of a Docker config JSON file (the .dockerconfigjson key of a pull secret) "
        "holding credentials for the registry; empty for anonymous access.",
    )

    registry_insecure_hosts = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Registry and token-realm hosts (host[:port]) that may be reached over plain "
        "http; meant for loopback tests, never for production registries.",
    )

    registry_realm_allowlist = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Extra token-realm hosts (``host``, ``host:port`` or ``*.domain``) that may "
        "receive the registry credentials, besides the registry itself and known pairs such as "
        "registry-1.docker.io and auth.docker.io.",
    )

    registry_request_timeout = Duration(
        "10s",
        minimum=0.1,
        config=True,
        help="Time allowed for each registry or token request, from connecting to the last "
        "byte of the reply.",
    )

    registry_connect_timeout = Duration(
        "5s",
        minimum=0.1,
        config=True,
        help="Time allowed to open a connection to the registry or token realm.",
    )

    registry_page_size = Integer(
        1000,
        min=1,
        max=100000,
        config=True,
        help="Number of tags asked for per page (the n= parameter); registries may ignore it "
        "and send every tag at once.",
    )

    registry_max_pages = Integer(
        100,
        min=1,
        max=100000,
        config=True,
        help="Most tag-list pages fetched in one refresh; a repository needing more fails the "
        "refresh (the last good menu is kept) instead of looping.",
    )

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        host = self.registry_host.strip().lower()
        if not is_valid_host(host):
            problems.append(
                ConfigProblem(
                    "LSSTSpawner.registry_host",
                    f"{self.registry_host!r} is not host[:port] (no scheme or path)",
                )
            )
        if not valid_repository(self.registry_repository):
            problems.append(
                ConfigProblem(
                    "LSSTSpawner.registry_repository",
                    f"{self.registry_repository!r} is not a repository name "
                    "(lower-case path such as lsst-sqre/sciplat-lab)",
                )
            )
        for index, entry in enumerate(self.registry_insecure_hosts):
            if not is_valid_host(entry.strip().lower()):
                problems.append(
                    ConfigProblem(
                        f"LSSTSpawner.registry_insecure_hosts[{index}]",
                        f"{entry!r} is not host[:port]",
                    )
                )
        for index, entry in enumerate(self.registry_realm_allowlist):
            if not is_valid_host_pattern(entry.strip().lower()):
                problems.append(
                    ConfigProblem(
                        f"LSSTSpawner.registry_realm_allowlist[{index}]",
                        f"{entry!r} is not host, host:port or *.domain",
                    )
                )
        if self.registry_connect_timeout > self.registry_request_timeout:
            problems.append(
                ConfigProblem(
                    "LSSTSpawner.registry_connect_timeout",
                    "is longer than LSSTSpawner.registry_request_timeout, which bounds it",
                )
            )
        if self.registry_credentials_file:
            path = Path(self.registry_credentials_file)
            if not path.is_absolute():
                problems.append(
                    ConfigProblem(
                        "LSSTSpawner.registry_credentials_file",
                        f"{self.registry_credentials_file!r} is not an absolute path",
                    )
                )
            else:
                try:
                    load_docker_config(path)
                except CredentialsFileError as error:
                    problems.append(
                        ConfigProblem("LSSTSpawner.registry_credentials_file", str(error))
                    )
        return problems

    def make_registry_client(self) -> RegistryClient:
        """A client for :attr:`registry_host` configured from these traits."""
        return RegistryClient(
            registry_api_host(self.registry_host),
            credentials_file=self.registry_credentials_file or None,
            insecure_registries=self.registry_insecure_hosts,
            realm_allowlist=self.registry_realm_allowlist,
            request_timeout=self.registry_request_timeout,
            connect_timeout=self.registry_connect_timeout,
            page_size=self.registry_page_size,
            max_pages=self.registry_max_pages,
        )

    def make_registry_source(self) -> RegistryImageSource:
        """The image source for :attr:`registry_repository` on :attr:`registry_host`."""
        return RegistryImageSource(self.make_registry_client(), self.registry_repository)
