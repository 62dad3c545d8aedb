"""The image menu cache: one menu per hub process and source, refreshed in the background.

Form requests read the last good menu, an attribute read. They wait on the
image source only on a cold start (no menu built yet), and then at most
``cold_start_timeout`` after the first request; after that they get a
placeholder menu (``complete=False``) that still offers the recommended image.

A background task refreshes the menu every ``refresh_interval``. A failed
refresh keeps the last good menu and logs one warning line with the error
(credentials scrubbed); until the first success it retries sooner.

Caches are shared per configuration: :class:`lsst_spawner.site.SiteRegistry` keys
them by the source's configuration and the policy, so two spawner configurations
never share a menu, and asking again with equal configuration never builds a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from .menu import MenuPolicy, build_menu, placeholder_menu, tags_needing_digests
from .model import ImageMenu
from .sources import ImageSource

__all__ = [
    "CacheSettings",
    "MenuCache",
    "redact",
    "source_cache_key",
]

#: Retry delay after a failed refresh while there is no good menu yet.
COLD_RETRY_INTERVAL = 30.0


@dataclass(frozen=True)
class CacheSettings:
    """Timing of a :class:`MenuCache`, in seconds."""

    refresh_interval: float = 300.0
    cold_start_timeout: float = 5.0
    refresh_timeout: float = 120.0


_SECRET_PATTERNS = (
    # user:password@ in URLs
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1[redacted]@"),
    # Authorization header values
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    # password=..., "token": "...", secret: ...
    (
        re.compile(
            r"(?i)((?:password|passwd|token|secret|auth|authorization|credentials?)"
            r"[\"']?\s*[=:]\s*[\"']?)[^\s,;&\"']+"
        ),
        r"\1[redacted]",
    ),
)


def redact(text: str, limit: int = 500) -> str:
    """``text`` with URL credentials, authorization values and ``key=secret`` pairs removed."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= limit else text[:limit] + "..."


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MenuCache:
    """The menu of one image source under one policy, refreshed in the background."""

    def __init__(
        self,
        source: ImageSource,
        policy: MenuPolicy,
        settings: CacheSettings | None = None,
        *,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.source = source
        self.policy = policy
        self.settings = settings or CacheSettings()
        self._log = log or logging.getLogger(__name__)
        self._clock = clock
        self._menu: ImageMenu | None = None
        self._placeholder = placeholder_menu(source.image_base, policy)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt_done = asyncio.Event()
        self._cold_deadline: float | None = None
        #: Refreshes attempted and failed, for tests and diagnostics.
        self.refresh_count = 0
        self.failure_count = 0

    @property
    def menu(self) -> ImageMenu | None:
        """The last good menu, or ``None`` before the first successful refresh."""
        return self._menu

    async def get_menu(self) -> ImageMenu:
        """The menu for a form request: never waits, except on a bounded cold start."""
        menu = self._menu
        self._ensure_running()
        if menu is not None:
            return menu
        loop = asyncio.get_running_loop()
        if self._cold_deadline is None:
            self._cold_deadline = loop.time() + self.settings.cold_start_timeout
        remaining = self._cold_deadline - loop.time()
        if remaining > 0 and not self._first_attempt_done.is_set():
            try:
                async with asyncio.timeout(remaining):
                    await self._first_attempt_done.wait()
            except TimeoutError:
                self._log.warning(
                    "Image menu for %s not ready after %gs; offering the recommended image only",
                    self.source.image_base,
                    self.settings.cold_start_timeout,
                )
        return self._menu or self._placeholder

    async def refresh(self) -> ImageMenu:
        """Ask the source once and rebuild the menu; raises what the source raised."""
        self.refresh_count += 1
        source, policy = self.source, self.policy
        async with asyncio.timeout(self.settings.refresh_timeout):
            tags = await source.list_tags()
            if not isinstance(tags, list | tuple):
                raise TypeError(f"list_tags() returned {type(tags).__name__}, not a list")
            # Parsing thousands of tags is CPU work: keep it off the event loop.
            needed = await asyncio.to_thread(tags_needing_digests, tags, policy)
            digests = await source.resolve_digests(needed) if needed else {}
            if not isinstance(digests, dict):
                raise TypeError(f"resolve_digests() returned {type(digests).__name__}, not a dict")
        menu = await asyncio.to_thread(
            build_menu, source.image_base, tags, digests, policy, self._clock()
        )
        if menu.invalid_tag_count:
            self._log.warning(
                "Image source for %s listed %d invalid tag(s), left out of the menu: %s",
                source.image_base,
                menu.invalid_tag_count,
                ", ".join(repr(tag[:80]) for tag in menu.invalid_tags[:5]),
            )
        self._menu = menu
        return menu

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First use, or a new event loop (tests): loop-bound state starts afresh.
            self._loop = loop
            self._task = None
            self._first_attempt_done = asyncio.Event()
            self._cold_deadline = None
        if self._task is None or self._task.done():
            self._task = loop.create_task(
                self._run(), name=f"image menu refresh {self.source.image_base}"
            )

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
                delay = self.settings.refresh_interval
            except Exception as error:
                self.failure_count += 1
                kept = "keeping the last menu" if self._menu else "no menu yet"
                self._log.warning(
                    "Image menu refresh for %s failed (%s): %s: %s",
                    self.source.image_base,
                    kept,
                    type(error).__name__,
                    redact(str(error)),
                )
                delay = self.settings.refresh_interval
                if self._menu is None:
                    delay = min(delay, COLD_RETRY_INTERVAL)
            finally:
                self._first_attempt_done.set()
            await asyncio.sleep(delay)

    def cancel_refresh(self) -> None:
        """Cancel the background refresh without waiting for it (the last menu stays readable)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def close(self) -> None:
        """Stop the background refresh (the last menu stays readable)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def __repr__(self) -> str:
        return f"MenuCache({self.source!r}, ready={self._menu is not None})"


def source_cache_key(source: ImageSource) -> Hashable:
    """What identifies a source's configuration: its ``cache_key``, else type and base."""
    key = getattr(source, "cache_key", None)
    if key is None:
        key = (type(source).__qualname__, source.image_base)
    return key
