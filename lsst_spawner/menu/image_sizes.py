"""Compressed image sizes for the editor: the sum of a manifest's layer sizes, cached.

A manifest is read through lsst_spawner's own registry client
(:meth:`~lsst_spawner.images.registry.RegistryClient.get_manifest`: its credential and
realm rules, timeouts and bounded reads). For a manifest list or OCI index the size is
that of the image for the site's platform (``LabMenu.image_platform``), and says so.
A registry reply is not trusted: a size that is not a non-negative integer, a missing
layer list, too many layers or an implausible total make the size "unknown" with the
reason, as does any failure to ask; nothing here raises into the editor's page.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ..grammar import is_valid_digest
from ..images.answer_cache import AnswerCache
from ..images.sources import ImageSourceError

__all__ = [
    "DEFAULT_PLATFORM",
    "MAX_IMAGE_BYTES",
    "MAX_LAYERS",
    "ImageSize",
    "ImageSizes",
    "ManifestError",
    "ManifestReader",
    "UnknownImageSizes",
    "check_platform",
    "format_bytes",
    "image_layers_size",
    "platform_manifest",
    "read_image_size",
]

#: The platform whose image of a multi-platform index is measured, unless configured.
DEFAULT_PLATFORM = "linux/amd64"
#: More layers than this is not an image (overlay filesystems stop near 128).
MAX_LAYERS = 1000
#: A compressed lab image claiming more than 1 TiB is not believed.
MAX_IMAGE_BYTES = 1 << 40

_IMAGE_TYPES = frozenset(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_INDEX_TYPES = frozenset(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")

log = logging.getLogger(__name__)


class ManifestError(ValueError):
    """A manifest the size cannot be read from; the message says what is wrong with it."""


class ManifestReader(Protocol):
    """What sizes are read through: a registry image source's ``get_manifest``."""

    async def get_manifest(self, reference: str) -> tuple[str, Any] | None: ...


def check_platform(platform: str) -> str:
    """``os/architecture[/variant]`` such as ``linux/amd64``; ValueError otherwise."""
    if not _PLATFORM.fullmatch(platform):
        raise ValueError(
            f"{platform[:80]!r} is not a platform: os/architecture[/variant], such as linux/amd64"
        )
    return platform


def format_bytes(size: int) -> str:
    """``size`` bytes for people: ``512 B``, ``3.4 MiB``, ``1.20 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ImageSize:
    """The compressed size of one tag, or why it is unknown."""

    tag: str
    #: Bytes, the sum of the layers' sizes; None when unknown.
    size: int | None
    #: For a multi-platform image: the platform measured.
    platform: str | None = None
    #: Why the size is unknown (empty when known).
    reason: str = ""

    def __str__(self) -> str:
        if self.size is None:
            return f"unknown: {self.reason}"
        text = format_bytes(self.size)
        return f"{text} ({self.platform} of a multi-platform image)" if self.platform else text


def _kind(media_type: str, payload: Any) -> str:
    if not isinstance(payload, dict):
        raise ManifestError(f"the manifest is a JSON {type(payload).__name__}, not an object")
    declared = payload.get("mediaType")
    kind = media_type or (declared if isinstance(declared, str) else "")
    if kind in _INDEX_TYPES:
        return "index"
    if kind in _IMAGE_TYPES:
        return "image"
    shown = kind[:100] or "none given"
    raise ManifestError(f"unsupported manifest media type ({shown})")


def image_layers_size(payload: Any) -> int:
    """The sum of an image manifest's layer sizes; ManifestError for anything implausible."""
    layers = payload.get("layers") if isinstance(payload, dict) else None
    if not isinstance(layers, list) or not layers:
        raise ManifestError("the manifest has no list of layers")
    if len(layers) > MAX_LAYERS:
        raise ManifestError(f"the manifest lists {len(layers)} layers (more than {MAX_LAYERS})")
    total = 0
    for index, layer in enumerate(layers):
        size = layer.get("size") if isinstance(layer, dict) else None
        # bool is an int in Python, not in JSON: true is not a size.
        if not isinstance(size, int) or isinstance(size, bool):
            raise ManifestError(f"layer {index} has no integer size ({str(size)[:40]!r})")
        if size < 0:
            raise ManifestError(f"layer {index} has a negative size ({size})")
        total += size
        if total > MAX_IMAGE_BYTES:
            raise ManifestError(
                f"the layers add up to more than {format_bytes(MAX_IMAGE_BYTES)}; not believed"
            )
    return total


def platform_manifest(payload: Any, platform: str) -> str:
    """The digest of ``platform``'s image in a manifest list or index."""
    wanted_os, wanted_arch, *variant = platform.split("/")
    entries = payload.get("manifests") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise ManifestError("the index has no list of manifests")
    offered: list[str] = []
    for entry in entries[:MAX_LAYERS]:
        described = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(described, dict):
            continue
        os_, arch = described.get("os"), described.get("architecture")
        if not isinstance(os_, str) or not isinstance(arch, str):
            continue
        offered.append(f"{os_}/{arch}"[:40])
        if (os_, arch) == (wanted_os, wanted_arch) and (
            not variant or described.get("variant") == variant[0]
        ):
            digest = entry.get("digest")
            if not is_valid_digest(digest):
                raise ManifestError(f"the index's {platform} entry has no valid digest")
            assert isinstance(digest, str)
            return digest
    has = ", ".join(sorted(set(offered))[:10]) or "no platform"
    raise ManifestError(f"the multi-platform image has no {platform} image (it has {has})")


async def read_image_size(source: ManifestReader, tag: str, platform: str) -> ImageSize:
    """The compressed size of ``tag``; unknown with the reason when it cannot be read."""

    def unknown(reason: str) -> ImageSize:
        return ImageSize(tag, None, reason=reason)

    try:
        found = await source.get_manifest(tag)
        if found is None:
            return unknown("the registry has no manifest for this tag")
        if _kind(*found) == "image":
            return ImageSize(tag, image_layers_size(found[1]))
        digest = platform_manifest(found[1], platform)
        child = await source.get_manifest(digest)
        if child is None:
            return unknown(f"the registry lacks the {platform} image the index names")
        if _kind(*child) != "image":
            return unknown(f"the index's {platform} entry is itself an index")
        return ImageSize(tag, image_layers_size(child[1]), platform=platform)
    except (ManifestError, ImageSourceError) as error:
        return unknown(str(error)[:300])
    except Exception as error:  # the page must not break; the log has the details
        log.warning("Reading the size of %s failed", tag, exc_info=True)
        return unknown(f"reading the manifest failed ({type(error).__name__})")


class ImageSizes:
    """Compressed sizes of a registry's tags, read in the background and cached.

    A known size is kept ``ttl`` seconds, an unknown one ``failure_ttl`` (so a registry
    that was down is asked again soon); at most ``limit`` tags are kept. Reading runs
    at most ``concurrency`` manifests at once.
    """

    def __init__(
        self,
        source: ManifestReader,
        platform: str = DEFAULT_PLATFORM,
        *,
        ttl: float = 600.0,
        failure_ttl: float = 30.0,
        limit: int = 1000,
        concurrency: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.platform = check_platform(platform)
        self._concurrency = concurrency
        self._limit: asyncio.Semaphore | None = None
        self._sizes: AnswerCache[str, ImageSize] = AnswerCache(
            self._read,
            ttl,
            failure_ttl=failure_ttl,
            failed=lambda size: size.size is None,
            clock=clock,
            limit=limit,
        )

    @property
    def reads(self) -> int:
        """Manifest reads started (tests and diagnostics)."""
        return self._sizes.fetches

    async def _read(self, tag: str) -> ImageSize:
        if self._limit is None:
            self._limit = asyncio.Semaphore(self._concurrency)
        async with self._limit:
            return await read_image_size(self.source, tag, self.platform)

    async def sizes(self, tags: Iterable[str], wait: float = 3.0) -> dict[str, ImageSize]:
        """``{tag: size}``: cached sizes, and those read within ``wait`` seconds; the rest
        are unknown for now (their reading goes on, for the next page)."""
        asked = {tag: self._sizes.ask(tag) for tag in dict.fromkeys(tags)}
        pending = {answer for answer in asked.values() if not answer.done()}
        if pending:
            await asyncio.wait(pending, timeout=wait)
        result: dict[str, ImageSize] = {}
        for tag, answer in asked.items():
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                result[tag] = answer.result()
                continue
            # read_image_size raises nothing: this is a reading still going on (this page
            # stops waiting for it, the next page gets it) or one close() stopped.
            answer.cancel()
            result[tag] = ImageSize(
                tag, None, reason="still being read from the registry; reload in a moment"
            )
        return result

    async def close(self) -> None:
        """Stop the readings still running."""
        await self._sizes.close()


class UnknownImageSizes:
    """Sizes for an image source they cannot be read from: every one unknown, with ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def sizes(self, tags: Iterable[str], wait: float = 3.0) -> dict[str, ImageSize]:
        return {tag: ImageSize(tag, None, reason=self.reason) for tag in dict.fromkeys(tags)}

    async def close(self) -> None:
        return None
