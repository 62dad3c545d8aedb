"""What a registry answers, read within bounds: tag-list pages, JSON replies, the error.

These run in a worker thread (the client calls them through
``asyncio.to_thread``): a page is decoded by the bounded decoder of
:mod:`~lsst_spawner.images.registry_json`, its tags filtered by the grammar and
its ``Link`` headers scanned by :mod:`~lsst_spawner.images.registry_links`, all
off the hub's event loop. Every problem is a :class:`RegistryError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..grammar import is_digest_tag, is_valid_tag
from .registry_json import ReplyError, decode_json
from .registry_links import UnsafeURLError, checked_url, next_link, same_origin
from .sources import ImageSourceError

__all__ = ["RegistryError", "TagPageReader", "decode_reply"]


class RegistryError(ImageSourceError):
    """The registry could not be asked or gave an unusable answer."""


def decode_reply(body: bytes, where: str, max_depth: int, time_limit: float) -> Any:
    """Decode a JSON reply from ``where`` within the bounds, or raise :class:`RegistryError`."""
    try:
        return decode_json(body, max_depth=max_depth, time_limit=time_limit)
    except ReplyError as error:
        raise RegistryError(f"reply from {where}: {error}") from None


@dataclass(frozen=True)
class TagPageReader:
    """Reads the tag-list pages of one registry (``host``, served at ``base_url``)."""

    host: str
    base_url: str
    max_depth: int
    time_limit: float

    def parse(
        self, body: bytes, links: list[str], url: str, repository: str, where: str
    ) -> tuple[list[str], int, str | None]:
        """One page: its image tags, how many were dropped, the next page's URL or None."""
        payload = decode_reply(body, where, self.max_depth, self.time_limit)
        page: list[str] = []
        dropped = 0
        for tag in self._page_tags(payload, repository):
            if not is_valid_tag(tag) or is_digest_tag(tag):
                dropped += 1
            else:
                page.append(tag)
        return page, dropped, self._next_link(links, url)

    def _page_tags(self, payload: Any, repository: str) -> list[str]:
        if not isinstance(payload, dict):
            raise RegistryError(f"tag list of {repository} from {self.host} is not a JSON object")
        tags = payload.get("tags")
        if tags is None:  # distribution answers "tags": null for a repository with none
            return []
        if not isinstance(tags, list):
            raise RegistryError(f"'tags' of {repository} from {self.host} is not a list")
        return [t for t in tags if isinstance(t, str)]

    def _next_link(self, links: list[str], current: str) -> str | None:
        try:
            url = next_link(links, current)
        except UnsafeURLError as error:
            raise RegistryError(f"registry {self.host}: {error}; refusing to follow it") from None
        return None if url is None else self._check_next_url(url)

    def _check_next_url(self, url: str) -> str:
        parts = checked_url(url)
        if not same_origin(url, self.base_url):
            raise RegistryError(
                f"registry {self.host} sent a pagination link to another scheme or host "
                f"({parts.scheme}://{parts.hostname}); refusing to follow it"
            )
        if not parts.path.startswith("/v2/"):
            raise RegistryError(f"registry {self.host} sent a pagination link outside /v2/")
        return url
