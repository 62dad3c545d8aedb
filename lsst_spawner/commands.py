"""The work behind ``lsst-spawner menu`` and ``render-pod``, kept apart from argument parsing."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from traitlets.config import Config

from .checks import spawner_settings
from .config import ConfigError

__all__ = ["format_menu_text", "print_menu", "render_pod"]


async def _build_menu_once(settings: Any) -> Any:
    from .images.cache import MenuCache

    source = settings.make_image_source()
    try:
        cache = MenuCache(source, settings.image_menu_policy(), settings.image_cache_settings())
        return await cache.refresh()
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


def format_menu_text(records: list[dict[str, Any]]) -> str:
    """A fixed-width table of menu records, one line per image."""
    header = ("CHOICE", "TAG", "KIND", "NAME", "DIGEST")
    rows = [
        (
            str(r["choice"]) + ("*" if r["recommended"] else ""),
            str(r["tag"]),
            str(r["kind"]),
            str(r["display_name"]),
            str(r["digest"] or "-"),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
        for row in [header, *rows]
    ]
    lines.append(f"{len(rows)} image(s); * marks the recommended image")
    return "\n".join(line.rstrip() for line in lines)


def print_menu(config: Config, output_format: str) -> int:
    """Build the menu from the configured source, once, and print it."""
    from .images.cache import redact
    from .images.menu import menu_records

    settings = spawner_settings(config)
    try:
        menu = asyncio.run(_build_menu_once(settings))
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"the image source did not answer: {redact(str(error))}") from None
    records = menu_records(menu)
    if output_format == "json":
        print(json.dumps({"image_base": menu.image_base, "images": records}, indent=2))
    else:
        print(format_menu_text(records))
    return 0


def render_pod(config: Config, args: argparse.Namespace) -> int:
    """Print the objects the spawner would create (comes with the lab-pod builders)."""
    raise ConfigError("render-pod is not part of this build yet")
