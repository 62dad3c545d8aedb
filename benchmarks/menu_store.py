"""The hub's cost of checking for a new menu revision, and of a save, on SQLite.

    python benchmarks/menu_store.py [--calls 2000] [--profiles 100]

Measures, on a fresh SQLite database in a temporary directory, with a menu of
``--profiles`` profiles: ``MenuStore.current_number()`` (the marker read a form
render would make), ``CurrentMenu.get()`` when nothing changed (marker read plus
the cached document), and ``MenuStore.save()`` (validation, conflict check and
insert). Prints p50 and p95 in milliseconds; only ratios from one run mean much
on shared machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsst_spawner.menu import CuratedImage, MenuDocument, Profile
from lsst_spawner.menu.current import CurrentMenu
from lsst_spawner.menu.storage import MenuStore, default_db_url


def _menu(profiles: int) -> MenuDocument:
    return MenuDocument(
        images=(CuratedImage(tag="recommended", default=True),),
        profiles=tuple(
            Profile(
                name=f"p{i}",
                cpu_limit="2",
                cpu_guarantee="500m",
                memory_limit="8Gi",
                memory_guarantee="2Gi",
                default=i == 0,
            )
            for i in range(profiles)
        ),
    )


def _timed(call: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profiles", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = MenuStore(default_db_url(tmp))
        store.upgrade()
        document = _menu(args.profiles)
        store.save(document, base=None, author="bench")
        current = CurrentMenu(store)
        current.get()
        rows = [
            ("current_number()", _timed(store.current_number, args.calls)),
            ("CurrentMenu.get(), unchanged", _timed(current.get, args.calls)),
        ]
        base = [1]

        def save() -> None:
            base[0] = store.save(document, base=base[0], author="bench").number

        rows.append(
            (f"save() of {args.profiles} profiles", _timed(save, max(20, args.calls // 20)))
        )
        store.close()
    print(f"{'what':34} {'p50 ms':>8} {'p95 ms':>8}")
    for name, (p50, p95) in rows:
        print(f"{name:34} {p50:8.3f} {p95:8.3f}")


if __name__ == "__main__":
    main()
