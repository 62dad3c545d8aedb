"""Where a hub's memory grew during a spawn storm: compare two ``tracemalloc`` snapshots.

``spawn_storm.py --tracemalloc`` writes ``before.trace`` and ``after.trace`` per
round. This prints what was allocated between them and is still alive, per lab
(divided by ``--n``): by file (cumulative over the call stack, so a caller's
line includes its callees), by line, and the largest tracebacks.

    python benchmarks/memory_diff.py <workdir>/00-lsst --n 100 [--top 25]

With ``--against <workdir>/01-kube`` it prints instead where the first round kept more
(or less) than the second, per lab: by file (cumulative) and by line, largest
differences first. That is the question when one spawner keeps more than the other.
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


def load_round(round_dir: Path) -> tuple[tracemalloc.Snapshot, tracemalloc.Snapshot]:
    """A round's snapshots before and after its spawn storm, without tracemalloc's own."""
    return tuple(  # type: ignore[return-value]
        tracemalloc.Snapshot.load(str(round_dir / name)).filter_traces(_IGNORED)
        for name in ("before.trace", "after.trace")
    )


def kept(round_dir: Path, key: str, cumulative: bool) -> dict[str, tuple[int, int]]:
    """Bytes and blocks kept over a round's storm, per file or line (``key``)."""
    before, after = load_round(round_dir)
    growth: dict[str, tuple[int, int]] = {}
    for stat in after.compare_to(before, key, cumulative=cumulative):
        frame = stat.traceback[0]
        where = short(frame.filename) + (f":{frame.lineno}" if key == "lineno" else "")
        size, count = growth.get(where, (0, 0))
        growth[where] = (size + stat.size_diff, count + stat.count_diff)
    return growth


def compare_rounds(first: Path, second: Path, n: int, top: int) -> None:
    """Where ``first`` kept more than ``second`` per lab (negative: less)."""
    for key, cumulative, title in (
        ("filename", True, "by file, cumulative"),
        ("lineno", False, "by line, where allocated"),
    ):
        ours, theirs = kept(first, key, cumulative), kept(second, key, cumulative)
        rows = []
        for where in ours.keys() | theirs.keys():
            size_a, count_a = ours.get(where, (0, 0))
            size_b, count_b = theirs.get(where, (0, 0))
            rows.append((size_a - size_b, count_a - count_b, size_a, size_b, where))
        rows.sort(key=lambda row: -abs(row[0]))
        if key == "filename":
            total_a = sum(size for size, _ in kept(first, "filename", False).values())
            total_b = sum(size for size, _ in kept(second, "filename", False).values())
            print(
                f"traced growth per lab: {total_a / n / 1024:.1f} KiB ({first.name}) against "
                f"{total_b / n / 1024:.1f} KiB ({second.name})\n"
            )
        print(f"{title}: difference, {first.name}, {second.name} (KiB per lab; blocks)")
        for diff, count_diff, size_a, size_b, where in rows[:top]:
            print(
                f"  {diff / n / 1024:+8.2f} {count_diff / n:+7.1f}  "
                f"{size_a / n / 1024:7.2f} {size_b / n / 1024:7.2f}  {where}"
            )
        print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("round_dir", type=Path, help="a round's directory (<workdir>/00-lsst)")
    parser.add_argument("--n", type=int, required=True, help="labs started in the storm")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument(
        "--against",
        type=Path,
        help="another round's directory: print the per-lab differences of the two rounds",
    )
    args = parser.parse_args(argv)
    if args.against is not None:
        compare_rounds(args.round_dir, args.against, args.n, args.top)
        return
    before, after = load_round(args.round_dir)
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
