"""An async Docker Registry v2 / OCI distribution client and the image source built on it.

The client lists a repository's tags (following ``Link: <...>; rel="next"``
pagination), resolves a few tags to manifest digests with ``HEAD`` requests and
reads a manifest (the editor's image sizes). It speaks anonymous, Basic and Bearer-token auth; the
rules about where credentials may go are in :mod:`lsst_spawner.images.registry_auth`.

Redirects are never followed: the endpoints used here do not redirect on the
registries we know, and following one would be a way around the host checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from ..grammar import is_valid_digest, is_valid_repository, is_valid_tag
from .registry_auth import (
    DOCKER_HUB_API_HOST,
    BearerToken,
    ChallengeParseError,
    RealmPolicy,
    RegistryAuthError,
    RegistryCredentials,
    TokenCache,
    TokenKey,
    credentials_for_host,
    load_docker_config,
    normalize_registry_host,
    parse_www_authenticate,
)
from .registry_json import DEFAULT_MAX_DEPTH
from .registry_links import safe_url
from .registry_replies import RegistryError, TagPageReader, decode_reply

__all__ = [
    "MANIFEST_ACCEPT",
    "RegistryClient",
    "RegistryError",
    "RegistryImageSource",
    "RegistryStats",
    "valid_repository",
    "valid_tag",
]

#: Manifest media types asked for when resolving digests.
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)

log = logging.getLogger(__name__)


@dataclass
class RegistryStats:
    """Counts of HTTP requests a client sent, by purpose (for logs and benchmarks)."""

    #: Every HTTP request sent, whatever its purpose.
    requests: int = 0
    #: Tag-list pages asked for (a page repeated after a challenge counts once).
    tag_pages: int = 0
    #: Requests to a token realm.
    token_requests: int = 0
    #: Requests repeated after a 401 challenge.
    challenges: int = 0
    #: ``HEAD`` requests for manifest digests (a repeat after a challenge counts once).
    digest_requests: int = 0


def valid_repository(repository: str) -> bool:
    """Whether ``repository`` follows the distribution repository-name grammar."""
    return is_valid_repository(repository)


def valid_tag(tag: str) -> bool:
    """Whether ``tag`` follows the distribution tag grammar."""
    return is_valid_tag(tag)


def registry_api_host(registry: str) -> str:
    """The host the API is served from: ``docker.io`` means ``registry-1.docker.io``."""
    host = normalize_registry_host(registry)
    return DOCKER_HUB_API_HOST if host == "docker.io" else host


class RegistryClient:
    """Read-only client for one registry.

    ``registry`` is ``host[:port]`` (``docker.io`` is understood). Credentials
    are given directly or read from a Docker config JSON file, re-read whenever
    the file changes. Every timeout is in seconds.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: RegistryCredentials | None = None,
        credentials_file: str | Path | None = None,
        insecure_registries: Iterable[str] = (),
        realm_allowlist: Iterable[str] = (),
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        page_size: int = 1000,
        max_pages: int = 100,
        max_response_bytes: int = 8 * 1024 * 1024,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
        digest_concurrency: int = 4,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = "lsst-spawner",
    ) -> None:
        host = registry_api_host(registry)
        insecure = tuple(h.strip().lower() for h in insecure_registries)
        if host.endswith(":443") and host not in insecure:
            host = host[: -len(":443")]
        self.host = host
        if not self.host or "/" in self.host or "@" in self.host:
            raise ValueError(f"registry must be host[:port], not {registry!r}")
        self.policy = RealmPolicy(self.host, tuple(realm_allowlist), insecure)
        self.base_url = f"{self.policy.registry_scheme()}://{self.host}"
        self._credentials = credentials
        self._credentials_file = Path(credentials_file) if credentials_file else None
        self._file_state: tuple[float, int] | None = None
        self.timeout = aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout)
        if page_size < 1 or max_pages < 1:
            raise ValueError("page_size and max_pages must be at least 1")
        self.page_size = page_size
        self.max_pages = max_pages
        self.max_response_bytes = max_response_bytes
        self.max_json_depth = max_json_depth
        self.parse_time_limit = request_timeout
        self._pages = TagPageReader(self.host, self.base_url, max_json_depth, request_timeout)
        self.digest_concurrency = max(1, digest_concurrency)
        self.tokens = TokenCache(clock)
        self.stats = RegistryStats()
        self.user_agent = user_agent
        # (realm, service, scope) of the last Bearer challenge per repository, so
        # later requests carry a cached token without being challenged again.
        self._bearer: dict[str, TokenKey] = {}
        self._basic = False

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    # --- credentials ---------------------------------------------------------

    def credentials(self) -> RegistryCredentials | None:
        """The credentials for this registry, if any are configured."""
        if self._credentials_file is None:
            return self._credentials
        try:
            stat = self._credentials_file.stat()
        except OSError as error:
            raise RegistryAuthError(
                f"cannot read registry credentials file {str(self._credentials_file)!r}: "
                f"{error.strerror}"
            ) from None
        state = (stat.st_mtime, stat.st_size)
        if state != self._file_state:
            table = load_docker_config(self._credentials_file)
            self._credentials = credentials_for_host(table, self.host)
            self._file_state = state
        return self._credentials

    # --- public operations ---------------------------------------------------

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, deduplicated, in the order the registry gave them."""
        self.check_repository(repository)
        url: str | None = f"{self.base_url}/v2/{repository}/tags/list?n={self.page_size}"
        seen_urls: set[str] = set()
        tags: dict[str, None] = {}
        dropped = 0
        async with self._session() as session:
            while url is not None:
                if url in seen_urls:
                    raise RegistryError(
                        f"registry {self.host} pagination for {repository} repeats a page; stopping"
                    )
                if len(seen_urls) >= self.max_pages:
                    raise RegistryError(
                        f"registry {self.host} returned more than {self.max_pages} pages of tags "
                        f"for {repository} (the page cap)"
                    )
                seen_urls.add(url)
                self.stats.tag_pages += 1
                async with await self._request(session, "GET", url, repository) as response:
                    if response.status == 404:
                        raise RegistryError(f"repository {repository} not found on {self.host}")
                    self._raise_for_status(response, f"listing tags of {repository}")
                    body = await self._read_body(response)
                    links = response.headers.getall("Link", [])
                    where = safe_url(str(response.url))
                # Decoding, filtering and the Link scan are CPU work on what the
                # registry sent: done in a worker thread, never on the hub's loop.
                page, page_dropped, next_url = await asyncio.to_thread(
                    self._pages.parse, body, links, url, repository, where
                )
                dropped += page_dropped
                tags.update(dict.fromkeys(page))
                url = next_url
        if dropped:
            log.debug("dropped %d non-image tags of %s/%s", dropped, self.host, repository)
        return list(tags)

    async def resolve_digests(self, repository: str, tags: Iterable[str]) -> dict[str, str]:
        """``{tag: digest}`` for the tags that exist; one ``HEAD`` per distinct tag."""
        self.check_repository(repository)
        wanted = [t for t in dict.fromkeys(tags) if valid_tag(t)]
        if not wanted:
            return {}
        results: dict[str, str] = {}
        limit = asyncio.Semaphore(self.digest_concurrency)
        async with self._session() as session:

            async def one(tag: str) -> None:
                async with limit:
                    digest = await self._head_manifest(session, repository, tag)
                if digest is not None:
                    results[tag] = digest

            # The first request may be challenged; do it alone so the others reuse its token.
            await one(wanted[0])
            await asyncio.gather(*(one(tag) for tag in wanted[1:]))
        return {tag: results[tag] for tag in wanted if tag in results}

    async def get_manifest(self, repository: str, reference: str) -> tuple[str, Any] | None:
        """Manifest ``reference`` (tag or digest), read in bounds: (media type, JSON); None: 404."""
        async with self._manifest("GET", repository, reference) as response:
            if response.status == 404:
                return None
            self._raise_for_status(response, f"reading {repository}:{reference}")
            media_type = response.headers.get("Content-Type", "").partition(";")[0].strip()
            return media_type, await self._read_json(response)

    async def manifest_exists(self, repository: str, digest: str) -> bool:
        """Whether the registry still has the manifest ``digest`` (one ``HEAD``).

        ``False`` only for the registry's 404; any other failure raises
        :class:`RegistryError`.
        """
        self.check_repository(repository)
        if not is_valid_digest(digest):
            raise RegistryError(f"{digest[:80]!r} is not a manifest digest")
        async with self._session() as session:
            return await self._head_manifest(session, repository, digest) is not None

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete the manifest ``digest`` (and every tag pointing at it); ``False`` when the
        registry no longer has it. Needs deletion enabled and credentials allowed to delete."""
        async with self._manifest("DELETE", repository, digest) as response:
            if response.status == 404:
                return False
            if response.status not in (200, 202):
                self._raise_for_status(response, f"deleting {repository}@{digest}")
        return True

    @contextlib.asynccontextmanager
    async def _manifest(
        self, method: str, repository: str, reference: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The reply to ``method`` on the manifest ``reference`` (a digest; a tag for GET)."""
        self.check_repository(repository)
        if not (is_valid_digest(reference) or (method == "GET" and valid_tag(reference))):
            raise RegistryError(f"{reference[:80]!r} is not a manifest digest")
        url = f"{self.base_url}/v2/{repository}/manifests/{reference}"
        async with self._session() as session:
            headers = {"Accept": MANIFEST_ACCEPT}
            async with await self._request(session, method, url, repository, headers) as response:
                yield response

    # --- HTTP ----------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=self.timeout,
            headers={"User-Agent": self.user_agent},
            trust_env=False,
        )

    def check_repository(self, repository: str) -> None:
        """Raise :class:`RegistryError` unless ``repository`` is a valid name."""
        if not valid_repository(repository):
            raise RegistryError(f"{repository!r} is not a valid repository name")

    async def _head_manifest(
        self, session: aiohttp.ClientSession, repository: str, tag: str
    ) -> str | None:
        url = f"{self.base_url}/v2/{repository}/manifests/{tag}"
        self.stats.digest_requests += 1
        headers = {"Accept": MANIFEST_ACCEPT}
        async with await self._request(session, "HEAD", url, repository, headers) as response:
            if response.status == 404:
                return None
            self._raise_for_status(response, f"resolving {repository}:{tag}")
            digest = response.headers.get("Docker-Content-Digest", "")
        if not is_valid_digest(digest):
            raise RegistryError(
                f"registry {self.host} gave no usable Docker-Content-Digest for {repository}:{tag}"
            )
        return digest

    async def _request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        repository: str,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request to the registry, answering at most one auth challenge."""
        base_headers = dict(headers or {})
        auth = await self._current_authorization(session, repository)
        response = await self._send(session, method, url, {**base_headers, **auth})
        if response.status != 401:
            return response
        header = response.headers.get("WWW-Authenticate", "")
        response.release()
        if auth.get("Authorization", "").startswith("Bearer ") and repository in self._bearer:
            self.tokens.discard(self._bearer[repository])
        self.stats.challenges += 1
        auth = await self._answer_challenge(session, header, repository)
        response = await self._send(session, method, url, {**base_headers, **auth})
        if response.status == 401:
            response.release()
            raise RegistryAuthError(
                f"registry {self.host} refused the credentials for {repository} (HTTP 401)"
            )
        return response

    async def _send(
        self, session: aiohttp.ClientSession, method: str, url: str, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        self.stats.requests += 1
        try:
            return await session.request(method, url, headers=headers, allow_redirects=False)
        except TimeoutError:
            raise RegistryError(f"{method} {safe_url(url)} timed out") from None
        except aiohttp.ClientError as error:
            raise RegistryError(
                f"{method} {safe_url(url)} failed: {type(error).__name__}"
            ) from None

    async def _current_authorization(
        self, session: aiohttp.ClientSession, repository: str
    ) -> dict[str, str]:
        """The Authorization header for the next request, from what earlier challenges said."""
        key = self._bearer.get(repository)
        if key is not None:
            token = self.tokens.get(key)
            if token is None:
                # Expired: renew before asking, instead of collecting another 401.
                token = await self._fetch_token(session, *key)
                self.tokens.put(key, token)
            return {"Authorization": f"Bearer {token.token}"}
        if self._basic:
            credentials = self.credentials()
            if credentials is not None:
                return {"Authorization": credentials.basic_header()}
        return {}

    async def _answer_challenge(
        self, session: aiohttp.ClientSession, header: str, repository: str
    ) -> dict[str, str]:
        if not header:
            raise RegistryAuthError(f"registry {self.host} answered 401 without a challenge")
        try:
            challenges = {c.scheme: c for c in parse_www_authenticate(header)}
        except ChallengeParseError as error:
            raise RegistryAuthError(f"registry {self.host}: {error}") from None
        bearer = challenges.get("bearer")
        if bearer is not None:
            realm = bearer.params.get("realm", "")
            self.policy.check_realm(realm)
            service = bearer.params.get("service", "")
            scope = bearer.params.get("scope") or f"repository:{repository}:pull"
            key = (realm, service, scope)
            token = self.tokens.get(key)
            if token is None:
                token = await self._fetch_token(session, realm, service, scope)
                self.tokens.put(key, token)
            self._bearer[repository] = key
            return {"Authorization": f"Bearer {token.token}"}
        if "basic" in challenges:
            credentials = self.credentials()
            if credentials is None:
                raise RegistryAuthError(
                    f"registry {self.host} requires credentials and none are configured for it"
                )
            self._basic = True
            return {"Authorization": credentials.basic_header()}
        schemes = ", ".join(sorted(challenges)) or "none"
        raise RegistryAuthError(f"registry {self.host} asks for unsupported auth ({schemes})")

    async def _fetch_token(
        self, session: aiohttp.ClientSession, realm: str, service: str, scope: str
    ) -> BearerToken:
        query = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        separator = "&" if urlsplit(realm).query else "?"
        url = realm + (separator + urlencode(query) if query else "")
        credentials = self.credentials()
        headers = {"Authorization": credentials.basic_header()} if credentials else {}
        where = safe_url(realm)
        self.stats.token_requests += 1
        async with await self._send(session, "GET", url, headers) as response:
            if response.status != 200:
                raise RegistryAuthError(
                    f"token endpoint {where} answered HTTP {response.status} for {scope}"
                )
            payload = await self._read_json(response)
        return BearerToken.from_response(payload, self.tokens.clock())

    # --- replies -------------------------------------------------------------

    def _raise_for_status(self, response: aiohttp.ClientResponse, what: str) -> None:
        if response.status == 200:
            return
        if 300 <= response.status < 400:
            raise RegistryError(
                f"registry {self.host} redirected while {what} (HTTP {response.status}); "
                "redirects are not followed"
            )
        raise RegistryError(f"registry {self.host} answered HTTP {response.status} while {what}")

    async def _read_json(self, response: aiohttp.ClientResponse) -> Any:
        body = await self._read_body(response)
        where = safe_url(str(response.url))
        return await asyncio.to_thread(
            decode_reply, body, where, self.max_json_depth, self.parse_time_limit
        )

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            # read(n) returns what has arrived so far, so collect chunks to the end.
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise RegistryError(
                        f"reply from {safe_url(str(response.url))} exceeds "
                        f"{self.max_response_bytes} bytes"
                    )
                chunks.append(chunk)
        except TimeoutError:
            raise RegistryError(f"reading {safe_url(str(response.url))} timed out") from None
        except aiohttp.ClientError as error:
            raise RegistryError(
                f"reading {safe_url(str(response.url))} failed: {type(error).__name__}"
            ) from None
        return b"".join(chunks)


class RegistryImageSource:
    """An :class:`~lsst_spawner.images.sources.ImageSource` backed by a registry."""

    def __init__(self, client: RegistryClient, repository: str, image_base: str | None = None):
        client.check_repository(repository)
        self.client = client
        self.repository = repository
        registry = "docker.io" if client.host == DOCKER_HUB_API_HOST else client.host
        self._image_base = image_base or f"{registry}/{repository}"

    def __repr__(self) -> str:
        return f"RegistryImageSource({self._image_base!r})"

    @property
    def image_base(self) -> str:
        """``host[:port]/repository``."""
        return self._image_base

    async def list_tags(self) -> list[str]:
        """Every tag of the repository (see :meth:`RegistryClient.list_tags`)."""
        return await self.client.list_tags(self.repository)

    async def resolve_digests(self, tags: Iterable[str]) -> dict[str, str]:
        """Digests of the given tags (see :meth:`RegistryClient.resolve_digests`)."""
        return await self.client.resolve_digests(self.repository, tags)

    async def manifest_exists(self, digest: str) -> bool:
        """Whether the manifest ``digest`` is still there (see the client's method)."""
        return await self.client.manifest_exists(self.repository, digest)

    async def get_manifest(self, reference: str) -> tuple[str, Any] | None:
        """The manifest of a tag or digest (see :meth:`RegistryClient.get_manifest`)."""
        return await self.client.get_manifest(self.repository, reference)
