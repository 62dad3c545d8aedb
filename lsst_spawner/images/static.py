"""An image source whose tags come from configuration (air-gapped sites, the demo)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

__all__ = ["StaticImageSource"]


class StaticImageSource:
    """Tags, and optionally their digests, listed in configuration.

    Implements :class:`lsst_spawner.images.sources.ImageSource` without any
    I/O. Validation of the configured values is the job of
    ``ImageMenuTraits.config_problems``; the menu leaves out what is invalid.
    """

    def __init__(
        self,
        image_base: str,
        tags: Iterable[str],
        digests: Mapping[str, str] | None = None,
    ) -> None:
        self._image_base = image_base
        # dict.fromkeys keeps the configured order and drops repeats.
        self._tags = tuple(dict.fromkeys(tags))
        self._digests = dict(digests or {})

    @property
    def image_base(self) -> str:
        return self._image_base

    @property
    def cache_key(self) -> Hashable:
        """Equal for sources with equal configuration (see ``lsst_spawner.images.cache``)."""
        return ("static", self._image_base, self._tags, tuple(sorted(self._digests.items())))

    async def list_tags(self) -> list[str]:
        return list(self._tags)

    async def resolve_digests(self, tags: Iterable[str]) -> dict[str, str]:
        listed = set(self._tags)
        return {tag: self._digests[tag] for tag in tags if tag in listed and tag in self._digests}

    def __repr__(self) -> str:
        return f"StaticImageSource({self._image_base!r}, {len(self._tags)} tags)"
