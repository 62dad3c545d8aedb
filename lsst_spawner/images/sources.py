"""Where the image menu's tags come from: the contract every image source meets.

A source knows one image repository (``image_base``, such as
``ghcr.io/lsst-sqre/sciplat-lab``) and answers two questions: which tags exist,
and which manifest digest a few chosen tags point at. The menu cache calls it
in the background, never on a request path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["ImageSource", "ImageSourceError"]


class ImageSourceError(Exception):
    """The source could not answer; the message says why (never a credential)."""


@runtime_checkable
class ImageSource(Protocol):
    """A repository of lab images."""

    @property
    def image_base(self) -> str:
        """The image reference without tag or digest, e.g. ``ghcr.io/lsst-sqre/sciplat-lab``."""
        ...

    async def list_tags(self) -> list[str]:
        """Return every tag of the repository, in any order."""
        ...

    async def resolve_digests(self, tags: Iterable[str]) -> dict[str, str]:
        """Return ``{tag: "sha256:..."}`` for those of ``tags`` that exist.

        Called only for the few tags that need a digest (aliases and menu
        choices), never for every tag of the repository.
        """
        ...
