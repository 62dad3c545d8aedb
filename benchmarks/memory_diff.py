"""Where a hub's memory grew during a spawn storm: compare two ``tracemalloc`` snapshots.

``spawn_storm.py --tracemalloc`` writes ``before.trace`` and ``after.trace`` per
round. This prints what was allocated between them and is still alive, per lab
(divided by ``--n``): by file (cumulative over the call stack, so a caller's
line includes its callees), by line, and the largest tracebacks.

    python benchmarks/memory_diff.py <workdir>/00-lsst --n 100 [--top 25]
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path

_IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
)


def short(filename: str) -> str:
    for marker in ("site-packages/", "lsst_spawner/", "lib/python3"):
        if marker in filename:
            return (
                filename.split(marker, 1)[1]
                if marker != "lsst_spawner/"
                else ("lsst_spawner/" + filename.split(marker, 1)[1])
            )
    return filename


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("round_dir", type=Path, help="a round's directory (<workdir>/00-lsst)")
    parser.add_argument("--n", type=int, required=True, help="labs started in the storm")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    args = parser.parse_args(argv)
    before = tracemalloc.Snapshot.load(str(args.round_dir / "before.trace")).filter_traces(_IGNORED)
    after = tracemalloc.Snapshot.load(str(args.round_dir / "after.trace")).filter_traces(_IGNORED)
    total = sum(s.size for s in after.statistics("filename")) - sum(
        s.size for s in before.statistics("filename")
    )
    print(f"traced growth: {total / args.n / 1024:.1f} KiB per lab\n")
    print("by file, cumulative (KiB per lab):")
    for stat in after.compare_to(before, "filename", cumulative=True)[: args.top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / args.n / 1024:8.2f}  {short(frame.filename)}")
    print("\nby line, where allocated (KiB per lab, blocks per lab):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / args.n / 1024:8.2f} {stat.count_diff / args.n:7.1f}  "
            f"{short(frame.filename)}:{frame.lineno}"
        )
    print("\nlargest tracebacks (KiB per lab):")
    for stat in after.compare_to(before, "traceback")[: max(1, args.top // 3)]:
        print(f"  {stat.size_diff / args.n / 1024:8.2f} KiB, {stat.count_diff / args.n:.1f} blocks")
        for frame in list(stat.traceback)[-12:]:
            print(f"        {short(frame.filename)}:{frame.lineno}")


if __name__ == "__main__":
    main()
