"""The lab menu on the hub's side: form renders, the revision check, a save with image checks.

    python benchmarks/lab_menu.py [--renders 500] [--profiles 100] [--tags 10000] [--saves 10]

- **Form render**: ``LSSTSpawner.render_options_form()`` of a spawner built offline (as
  ``lsst-spawner render-pod`` does), a static image source of ``--tags`` tags and a
  menu revision of ``--profiles`` profiles (a tenth of them for one group, the user in
  it) in SQLite: with the lab menu off (the traitlets menu), on with the default
  ``revision_check_interval`` (1 s), and on with 0 (the marker read at every render).
- **Revision check**: ``LiveMenu.revision()`` alone, at interval 0 (one primary-key read
  in a worker thread) and at 1 s (no read).
- **Save with 20 image checks**: ``check_save`` (the editor's and ``menu import``'s
  checks: the document's rules, every offered image resolved against the real local
  registry (Debian's ``docker-registry``), the spawn form rendered for everyone) with 20
  shown curated images, then ``MenuStore.save``.

``run()`` returns the figures for ``benchmarks/run_all.py``.

Prints p50 and p95 in milliseconds. Only ratios from one run mean much on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from traitlets.config import Config

from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.identity import Group
from lsst_spawner.menu import CuratedImage, MenuDocument, Profile
from lsst_spawner.menu.storage import MenuStore
from lsst_spawner.site import forget_sites
from lsst_spawner.testing.hub.site import make_site_spawner
from lsst_spawner.testing.oauth.identity import identity_for

BASE = "registry.example.org/sciplat-lab"


def synthetic_tags(count: int) -> list[str]:
    """``count`` valid Rubin tags: weeklies, then dailies, newest years last."""
    tags = ["recommended"]
    year = 1990
    while len(tags) < count:
        tags += [f"w_{year}_{week:02d}" for week in range(1, 53)]
        tags += [f"d_{year}_{m:02d}_{d:02d}" for m in range(1, 13) for d in range(1, 29)]
        tags.append(f"r{year - 1960}_0_0")
        year += 1
    return tags[:count]


def menu_document(profiles: int, tags: list[str]) -> MenuDocument:
    newest = [t for t in tags if t.startswith("w_")][-8:]
    return MenuDocument(
        images=(
            CuratedImage(tag="recommended", default=True),
            *(CuratedImage(tag=t, display_name=f"Curated {t}") for t in newest[:5]),
            *(CuratedImage(tag=t, state="hidden") for t in newest[5:]),
        ),
        profiles=tuple(
            Profile(
                name=f"p{i:03d}",
                cpu_limit="2",
                cpu_guarantee="500m",
                memory_limit="8Gi",
                memory_guarantee="2Gi",
                groups=("gpu-users",) if i % 10 == 9 else (),
                default=i == 0,
            )
            for i in range(profiles)
        ),
    )


def hub_config(tags: list[str], db_url: str | None, interval: float) -> Config:
    c = Config()
    c.JupyterHub.spawner_class = "lsst"
    c.LSSTSpawner.namespace = "labs"
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = BASE
    c.LSSTSpawner.static_image_tags = tags
    c.LSSTSpawner.static_image_digests = {"recommended": "sha256:" + "a" * 64}
    if db_url is not None:
        c.LabMenu.db_url = db_url
        c.LabMenu.revision_check_interval = interval
    return c


async def timed(calls: int, fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """p50 and p95 milliseconds of ``fn()`` over ``calls`` calls, after 20 warm-up calls."""
    samples = []
    for i in range(calls + 20):
        start = time.perf_counter()
        await fn()
        if i >= 20:
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def renders(args: argparse.Namespace, tmp: Path) -> dict[str, tuple[float, float]]:
    tags = synthetic_tags(args.tags)
    db_url = f"sqlite:///{tmp / 'menu.sqlite'}"
    store = MenuStore(db_url)
    store.upgrade()
    store.save(menu_document(args.profiles, tags), base=None, author="benchmark")
    identity = identity_for("bench")
    identity = identity.__class__(
        **{**identity.__dict__, "groups": (*identity.groups, Group("gpu-users", 7001))}
    )
    out: dict[str, tuple[float, float]] = {}
    saved = {"image": tags[len(tags) // 2], "size": "p001"}  # a dropdown image preselected
    for label, url, interval in (
        ("form render, lab menu off", None, 1.0),
        ("form render, lab menu on (check every 1 s)", db_url, 1.0),
        ("form render, lab menu on (check every render)", db_url, 0.0),
    ):
        forget_sites()
        spawner = make_site_spawner(
            hub_config(tags, url, interval), "bench", identity=identity, options=saved
        )
        html = await spawner.render_options_form()
        group_profiles = [i for i in range(args.profiles) if i % 10 == 9]
        if url is not None and group_profiles:
            name = f"p{group_profiles[-1]:03d}"
            assert f'value="{name}"' in html, "the group's profile is not offered"
        out[label] = await timed(args.renders, spawner.render_options_form)
        if url is not None:
            live = spawner.site._registry.lab_menus.live_menu(spawner)
            out[f"revision check alone (interval {interval:g} s)"] = await timed(
                args.renders, live.revision
            )
    forget_sites()
    store.close()
    return out


async def saves(args: argparse.Namespace, tmp: Path) -> dict[str, tuple[float, float]]:
    from lsst_spawner.checks import spawner_settings
    from lsst_spawner.menu.form_check import SpawnForms
    from lsst_spawner.menu.image_check import check_save, save_checker
    from lsst_spawner.testing.registry import LocalRegistry, push_tags

    tags = [f"w_2030_{week:02d}" for week in range(1, 21)]
    with LocalRegistry(tmp / "registry") as registry:
        await push_tags(registry.url, "bench/sciplat-lab", ["recommended", *tags])
        c = Config()
        c.JupyterHub.spawner_class = "lsst"
        c.LSSTSpawner.image_source = "registry"
        c.LSSTSpawner.registry_host = registry.host_port
        c.LSSTSpawner.registry_repository = "bench/sciplat-lab"
        c.LSSTSpawner.registry_insecure_hosts = [registry.host_port]
        settings = spawner_settings(c)
        source, where = save_checker(settings)
        forms = SpawnForms(settings, {})
        store = MenuStore(f"sqlite:///{tmp / 'save.sqlite'}")
        store.upgrade()
        base: list[int | None] = [None]

        async def one_save() -> None:
            small = Profile(
                name="small",
                cpu_limit="1",
                cpu_guarantee="250m",
                memory_limit="4Gi",
                memory_guarantee="1Gi",
                default=True,
            )
            profiles = (small,)
            images = (CuratedImage(tag="recommended", default=True),)
            images += tuple(CuratedImage(tag=t, description=str(base[0])) for t in tags)
            document = MenuDocument(images=images, profiles=profiles)
            checked = await check_save(
                document.to_json_data(), store.node_groups, source, where, forms=forms
            )
            base[0] = store.save(checked, base=base[0], author="benchmark").number

        try:
            out = {"save with 20 image checks (real registry)": await timed(args.saves, one_save)}
        finally:
            forms.close()
            close = getattr(source, "aclose", None)  # as the editor and menu import do
            if close is not None:
                await close()
            store.close()
    return out


async def measure(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as name, _offline_kubernetes_client(name):
        tmp = Path(name)
        out = await renders(args, tmp)
        out.update(await saves(args, tmp))
    return out


def run(
    renders: int = 500, profiles: int = 100, tags: int = 10_000, saves: int = 10
) -> dict[str, Any]:
    """The figures as ``run_all.py`` reports them: ``{what: {"p50_ms", "p95_ms"}}`` and
    the sizes measured."""
    args = argparse.Namespace(renders=renders, profiles=profiles, tags=tags, saves=saves)
    results = asyncio.run(measure(args))
    return {
        "profiles": profiles,
        "tags": tags,
        "renders": renders,
        "saves": saves,
        "figures": {w: {"p50_ms": p50, "p95_ms": p95} for w, (p50, p95) in results.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=500)
    parser.add_argument("--profiles", type=int, default=100)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=10)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    results = asyncio.run(measure(args))
    print(f"{args.profiles} profiles, {args.tags} tags; load average before: {load:.1f}")
    print(f"{'what':48} {'p50 ms':>8} {'p95 ms':>8}")
    for what, (p50, p95) in results.items():
        print(f"{what:48} {p50:8.3f} {p95:8.3f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
