"""Benchmark: the image menu of a 10,000-tag repository, as the hub's cache holds it.

- **menu refresh**: what the background task does every ``menu_refresh_interval``:
  :meth:`MenuCache.refresh` on a :class:`RegistryImageSource` against the real
  local registry (Debian's ``docker-registry``, the storage of
  ``registry_refresh.py``): list every tag, resolve the digests the menu needs
  (aliases and radio choices), build the menu. Requests counted by the client.
- **form render**: :func:`render_options_form` from that warm menu, p50 and p99
  over many renders (the first render, which renders the dropdown once per menu,
  is reported on its own), with no saved options and with a saved dropdown tag.
- **cache size**: bytes of the cached :class:`ImageMenu` and everything it
  reaches, each object counted once (``sys.getsizeof``, as the menu size test).

    python benchmarks/image_menu.py [--renders 500] [--refreshes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_refresh import ALIASES, REPOSITORY, TAG_COUNT, ensure_storage

from lsst_spawner.form.options import OptionsCatalog, SizeChoice
from lsst_spawner.form.render import render_options_form
from lsst_spawner.images.cache import CacheSettings, MenuCache
from lsst_spawner.images.menu import MenuPolicy
from lsst_spawner.images.model import ImageMenu
from lsst_spawner.images.registry import RegistryClient, RegistryImageSource
from lsst_spawner.testing.measure import deep_size
from lsst_spawner.testing.registry import LocalRegistry

SIZES = (
    SizeChoice("small", "Small (1 CPU, 4 GiB)"),
    SizeChoice("medium", "Medium (2 CPU, 8 GiB)"),
    SizeChoice("large", "Large (4 CPU, 16 GiB)"),
)
POLICY = MenuPolicy(alias_tags=tuple(a for a in ALIASES if a != "recommended"))


async def refresh_once(registry: LocalRegistry, page_size: int) -> tuple[ImageMenu, float, Any]:
    client = RegistryClient(
        registry.host_port, insecure_registries=[registry.host_port], page_size=page_size
    )
    cache = MenuCache(RegistryImageSource(client, REPOSITORY), POLICY, CacheSettings())
    start = time.perf_counter()
    menu = await cache.refresh()
    return menu, time.perf_counter() - start, client.stats


def time_renders(catalog: OptionsCatalog, saved: object, count: int) -> dict[str, float]:
    first_start = time.perf_counter()
    html = render_options_form(catalog, saved)
    first = time.perf_counter() - first_start
    times = []
    for _ in range(count):
        start = time.perf_counter()
        render_options_form(catalog, saved)
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "first_ms": first * 1000,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[max(0, int(len(times) * 0.99) - 1)] * 1000,
        "html_bytes": len(html.encode()),
    }


def run(renders: int = 500, refreshes: int = 5, page_size: int = 1000) -> dict[str, Any]:
    storage = ensure_storage()
    menus, times, stats = [], [], None
    with LocalRegistry(storage) as registry:
        for _ in range(refreshes):
            menu, elapsed, stats = asyncio.run(refresh_once(registry, page_size))
            menus.append(menu)
            times.append(elapsed)
    menu = menus[-1]
    assert stats is not None
    catalog = OptionsCatalog(menu=menu, sizes=SIZES, default_size="medium")
    dropdown_tag = menu.dropdown[len(menu.dropdown) // 2].tag
    # A fresh menu object per case, so each case's first render is a cold dropdown render.
    cases = {
        "no saved options": time_renders(catalog, None, renders),
        "saved dropdown tag": time_renders(
            OptionsCatalog(menu=menus[0], sizes=SIZES, default_size="medium"),
            {"image": dropdown_tag, "size": "large"},
            renders,
        ),
    }
    return {
        "tags": len(menu.images),
        "radio": len(menu.radio),
        "dropdown": len(menu.dropdown),
        "refreshes": refreshes,
        "refresh_requests": stats.requests,
        "refresh_pages": stats.tag_pages,
        "refresh_digests": stats.digest_requests,
        "refresh_auth": stats.token_requests + stats.challenges,
        "refresh_p50_ms": statistics.median(times) * 1000,
        "refresh_max_ms": max(times) * 1000,
        "renders": renders,
        "render": cases,
        "menu_bytes": deep_size(menu),
    }


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=500)
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    result = run(args.renders, args.refreshes, args.page_size)
    print(
        f"{TAG_COUNT} tags in the real registry; menu: {result['radio']} radio, "
        f"{result['dropdown']} dropdown"
    )
    print(
        f"menu refresh: {result['refresh_requests']} requests ({result['refresh_pages']} tag "
        f"pages, {result['refresh_digests']} digests, {result['refresh_auth']} auth), "
        f"p50 {result['refresh_p50_ms']:.1f} ms, max {result['refresh_max_ms']:.1f} ms "
        f"over {result['refreshes']} cold refreshes"
    )
    for name, case in result["render"].items():
        print(
            f"form render ({name}): p50 {case['p50_ms']:.3f} ms, p99 {case['p99_ms']:.3f} ms, "
            f"first {case['first_ms']:.1f} ms, {case['html_bytes']} bytes of HTML"
        )
    print(f"cached menu: {result['menu_bytes'] / 1024 / 1024:.2f} MiB")
    return result


if __name__ == "__main__":
    main()
