"""Run every benchmark and write one markdown report.

    python benchmarks/run_all.py --quick            # N=100, 1 round each (a few minutes)
    python benchmarks/run_all.py                    # N=100 and N=1000, 2 rounds each
    python benchmarks/run_all.py --n 100 --n 1000 --n 3000 --rounds 2 --output report.md

The spawn storm rounds alternate LSSTSpawner and plain KubeSpawner (see
``spawn_storm.py``). The report holds the machine (nproc, CPU model, memory),
the load average before and after each part, and every figure with its goal.
Nothing is written under ``docs/``: copy the table into ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import image_menu
import lab_menu
import operator_storm
import registry_refresh
import spawn_storm
import spawner_hot_path


def machine() -> dict[str, str]:
    cpu = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    import jupyterhub
    import kubespawner

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "jupyterhub": jupyterhub.__version__,
        "kubespawner": kubespawner.__version__,
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def storm_rows(result: dict[str, Any]) -> list[str]:
    s = result["summary"]
    a, b, r = s.get("lsst"), s.get("kube"), s.get("ratio")
    if not (a and b and r):
        return [f"| N={result['n']} | incomplete run (see the JSON) | | | |"]
    n = result["n"]

    def each(kind: str) -> str:
        return ", ".join(
            f"{x['spawn']['cpu_per_op'] * 1000:.1f}"
            for x in result["rounds"]
            if x["kind"] == kind and x.get("spawn")
        )

    rss_ok = not math.isnan(r["rss_per_lab"]) and r["rss_per_lab"] <= 1.10
    # The only lists are the reflectors re-listing when a watch restarts (a few per
    # minute in both hubs, whatever N): "per-spawn lists" would be about one per spawn.
    requests_ok = r["extra_writes_per_spawn"] <= 2 + 1e-9 and a["lists_per_spawn"] < 0.01
    loads = "; ".join(x["load_before"] for x in result["rounds"])
    rows = [
        f"| N={n}: hub CPU per spawn | {a['cpu_per_spawn'] * 1000:.1f} ms "
        f"| {b['cpu_per_spawn'] * 1000:.1f} ms | {r['cpu_per_spawn']:.2f} "
        f"| ratio ≤ 1.10: {verdict(r['cpu_per_spawn'] <= 1.10)} |",
        f"| N={n}: hub CPU per spawn, each round (order run) | {each('lsst')} | {each('kube')} "
        f"| | |",
        f"| N={n}: hub CPU per stop | {a['cpu_per_stop'] * 1000:.1f} ms "
        f"| {b['cpu_per_stop'] * 1000:.1f} ms | {r['cpu_per_stop']:.2f} | |",
        f"| N={n}: time to ready p50 / p99 | {a['p50']:.2f} / {a['p99']:.2f} s "
        f"| {b['p50']:.2f} / {b['p99']:.2f} s | {r['p50']:.2f} (p50) | |",
        f"| N={n}: storm wall time | {a['wall']:.1f} s | {b['wall']:.1f} s | | |",
        f"| N={n}: failures (spawn / stop / objects left) "
        f"| {a['failures']} / {a['stop_failures']} / {a['leftovers']} "
        f"| {b['failures']} / {b['stop_failures']} / {b['leftovers']} | "
        f"| zero: {verdict(a['failures'] + a['stop_failures'] + a['leftovers'] == 0)} |",
        f"| N={n}: hub RSS growth per running lab | {a['rss_per_lab'] / 1024:.0f} KiB "
        f"| {b['rss_per_lab'] / 1024:.0f} KiB | {r['rss_per_lab']:.2f} "
        f"| within 10 %: {verdict(rss_ok)} |",
        f"| N={n}: K8s API requests per spawn (writes / lists) "
        f"| {a['all_per_spawn']:.2f} ({a['writes_per_spawn']:.2f} / {a['lists_per_spawn']:.3f}) "
        f"| {b['all_per_spawn']:.2f} ({b['writes_per_spawn']:.2f} / {b['lists_per_spawn']:.3f}) "
        f"| +{r['extra_writes_per_spawn']:.2f} writes "
        f"| ≤ plain + 2 writes, no per-spawn lists (< 0.01 per spawn): "
        f"{verdict(requests_ok)} |",
        f"| N={n}: K8s API requests per stop (writes) | {a['all_per_stop']:.2f} "
        f"({a['writes_per_stop']:.2f}) | {b['all_per_stop']:.2f} ({b['writes_per_stop']:.2f}) "
        f"| | |",
        f"| N={n}: rounds; load average before each round, in order run "
        f"| {a['rounds']} | {b['rounds']} | | {loads} |",
    ]
    return rows


#: The lab menu's goals (issue 16), by the start of the figure's name in ``lab_menu.run()``.
LAB_MENU_GOALS = (
    ("form render, lab menu on", "p50 < 5 ms", lambda p50: p50 < 5),
    ("revision check alone", "< 1 ms per render", lambda p50: p50 < 1),
    ("save with 20 image checks", "< 2 s", lambda p50: p50 < 2000),
)


def lab_menu_rows(menu: dict[str, Any] | None) -> list[str]:
    """The rows of ``lab_menu.py``'s figures, each with its goal when it has one."""
    if not menu:
        return []
    lines = [
        "",
        f"| Lab menu, {menu['profiles']} profiles and {menu['tags']:,} tags (`lab_menu.py`) "
        "| p50 / p95 | Goal |",
        "| --- | --- | --- |",
    ]
    for what, figure in menu["figures"].items():
        goal = ""
        for prefix, text, met in LAB_MENU_GOALS:
            if what.startswith(prefix):
                goal = f"{text}: {verdict(met(figure['p50_ms']))}"
        lines.append(f"| {what} | {figure['p50_ms']:.3f} / {figure['p95_ms']:.3f} ms | {goal} |")
    return lines


def operator_rows(result: dict[str, Any]) -> list[str]:
    """operator_storm.py's figures: operator mode against KubeSpawner and in-hub LSSTSpawner."""
    s, n = result["summary"], result["n"]
    op, kube, lsst, r = (s.get(k) for k in ("operator", "kube", "lsst", "ratio_operator"))
    if not (op and kube and lsst and r):
        return [f"| N={n} | incomplete run (see the JSON) | | | | |"]
    fails = {
        k: f"{x['failures']} / {x['stop_failures']} / {x['leftovers']}"
        for k, x in (("operator", op), ("kube", kube), ("lsst", lsst))
    }
    failed = op["failures"] + op["stop_failures"] + op["leftovers"]
    return [
        f"| N={n}: hub CPU per spawn | {op['cpu_per_spawn'] * 1000:.1f} ms "
        f"| {kube['cpu_per_spawn'] * 1000:.1f} ms | {lsst['cpu_per_spawn'] * 1000:.1f} ms "
        f"| {r['hub_cpu_vs_kube']:.2f} x KubeSpawner "
        f"| ≤ 0.5 x: {verdict(r['hub_cpu_vs_kube'] <= 0.5)} |",
        f"| N={n}: operator CPU per spawn | {op['operator_cpu_per_spawn'] * 1000:.1f} ms | | "
        f"| hub + operator {r['hub_and_operator_cpu_vs_kube']:.2f} x KubeSpawner's hub | |",
        f"| N={n}: time to ready p50 / p99 | {op['p50']:.2f} / {op['p99']:.2f} s "
        f"| {kube['p50']:.2f} / {kube['p99']:.2f} s | {lsst['p50']:.2f} / {lsst['p99']:.2f} s "
        f"| {r['p50_vs_lsst']:.2f} / {r['p99_vs_lsst']:.2f} x in-hub | |",
        f"| N={n}: failures (spawn / stop / objects left) | {fails['operator']} "
        f"| {fails['kube']} | {fails['lsst']} | | zero: {verdict(failed == 0)} |",
        f"| N={n}: K8s API requests per spawn (writes) | {op['all_per_spawn']:.2f} "
        f"({op['writes_per_spawn']:.2f}) | {kube['all_per_spawn']:.2f} "
        f"({kube['writes_per_spawn']:.2f}) | {lsst['all_per_spawn']:.2f} "
        f"({lsst['writes_per_spawn']:.2f}) | hub and operator together | |",
        f"| N={n}: load average before each round, in order run | "
        + "; ".join(f"{x['kind']} {x['load_before']}" for x in result["rounds"])
        + " | | | | |",
    ]


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['started']} to {results['finished']} on {m['nproc']} CPUs "
        f"({m['cpu']}), {m['memory']} RAM; Python {m['python']}, JupyterHub {m['jupyterhub']}, "
        f"KubeSpawner {m['kubespawner']}. Load average (1/5/15 min) at start "
        f"{results['load_start']}, at end {results['load_end']}.",
        "",
        "| Figure | LSSTSpawner | KubeSpawner | Ratio / difference | Goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    for storm in results["storms"]:
        lines += storm_rows(storm)
    if results.get("operator_storms"):
        lines += [
            "",
            "| Operator mode (`operator_storm.py`) | Operator mode | KubeSpawner "
            "| LSSTSpawner in-hub | Ratio | Goal |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for storm in results["operator_storms"]:
            lines += operator_rows(storm)
    lines += ["", "Requests per spawn and per stop, by verb and resource (last round):", ""]
    for storm in results["storms"]:
        for kind in spawn_storm.SPAWNERS:
            s = storm["summary"].get(kind)
            if s:
                per_spawn = {k: v for k, v in s["requests_per_spawn"].items() if " " in k}
                per_stop = {k: v for k, v in s["requests_per_stop"].items() if " " in k}
                lines.append(
                    f"- N={storm['n']}, {spawn_storm.LABELS[kind]}: spawn "
                    f"`{json.dumps(per_spawn)}`, stop `{json.dumps(per_stop)}`"
                )
    menu = results.get("image_menu")
    if menu:
        lines += [
            "",
            "| Image menu, 10,000 tags (real local registry) | Figure | Goal |",
            "| --- | --- | --- |",
            f"| Requests per menu refresh | {menu['refresh_requests']} ({menu['refresh_pages']} "
            f"tag page(s), {menu['refresh_digests']} digest HEADs, {menu['refresh_auth']} auth) "
            "| ⌈10000 / page⌉ + auth + digests |",
            f"| Menu refresh time (list + digests + build), p50 / max of "
            f"{menu['refreshes']} | {menu['refresh_p50_ms']:.0f} / {menu['refresh_max_ms']:.0f} ms "
            f"| < 2 s: {verdict(menu['refresh_max_ms'] < 2000)} |",
        ]
        for name, case in menu["render"].items():
            lines.append(
                f"| Form render from the warm cache ({name}), p50 / p99 of {menu['renders']} "
                f"| {case['p50_ms']:.2f} / {case['p99_ms']:.2f} ms (first render "
                f"{case['first_ms']:.0f} ms) | p50 < 5 ms: {verdict(case['p50_ms'] < 5)} |"
            )
        lines.append(
            f"| Cached menu size ({menu['tags']} images) | "
            f"{menu['menu_bytes'] / 1024 / 1024:.2f} MiB "
            f"| < 5 MB: {verdict(menu['menu_bytes'] < 5 * 1024 * 1024)} |"
        )
    lines += lab_menu_rows(results.get("lab_menu"))
    hot = results.get("hot_path")
    if hot:
        lines += [
            "",
            "| Spawner hot path, in-process, unprofiled (`spawner_hot_path.py`) | Figure |",
            "| --- | --- |",
        ]
        for name, value in hot.items():
            shown = f"{value:.0f} bytes" if name.endswith("bytes") else f"{value:.3f} ms"
            lines.append(f"| {name} | {shown} |")
    refresh_rows = results.get("registry_refresh")
    if refresh_rows:
        lines += [
            "",
            "| Raw registry refresh (`registry_refresh.py`) | Requests | Expected | p50 | max |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in refresh_rows:
            lines.append(
                f"| {row['case']} | {row['requests']} | {row['expected']} "
                f"| {row['p50_ms']:.1f} ms | {row['max_ms']:.1f} ms |"
            )
    return "\n".join(lines) + "\n"


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several runs (e.g. N=100 and 1000, then N=3000 on its own)."""
    merged = dict(parts[0])
    merged["storms"] = [storm for part in parts for storm in part.get("storms", [])]
    for part in parts[1:]:
        merged["operator_storms"] = [
            *merged.get("operator_storms", []),
            *part.get("operator_storms", []),
        ]
        for key in ("image_menu", "registry_refresh", "hot_path", "lab_menu"):
            if key in part and key not in merged:
                merged[key] = part[key]
        merged["finished"] = part["finished"]
        merged["load_end"] = part["load_end"]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=100, one round per spawner")
    parser.add_argument("--n", type=int, action="append", help="storm size (repeatable)")
    parser.add_argument("--rounds", type=int, help="rounds per spawner (default 2; quick 1)")
    parser.add_argument("--skip-menu", action="store_true", help="only the spawn storms")
    parser.add_argument(
        "--operator",
        action="store_true",
        help="also operator_storm.py at each N (operator mode, KubeSpawner, in-hub)",
    )
    parser.add_argument("--output", default="benchmarks/.cache/report.md")
    parser.add_argument("--json", default="benchmarks/.cache/report.json")
    parser.add_argument(
        "--from-json", nargs="+", help="only render the report of earlier runs' JSON files"
    )
    args = parser.parse_args()
    if args.from_json:
        merged = merge([json.loads(Path(p).read_text()) for p in args.from_json])
        text = report(merged)
        Path(args.output).write_text(text)
        print(text)
        return
    sizes = args.n or ([100] if args.quick else [100, 1000])
    rounds = args.rounds or (1 if args.quick else 2)
    results: dict[str, Any] = {
        "machine": machine(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": spawn_storm.load_average(),
        "storms": [],
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    if not args.skip_menu:
        results["image_menu"] = image_menu.run(
            renders=100 if args.quick else 1000, refreshes=2 if args.quick else 5
        )
        results["registry_refresh"] = registry_refresh.run(runs=2 if args.quick else 5)
        results["hot_path"] = spawner_hot_path.run(100 if args.quick else 300)
        results["lab_menu"] = lab_menu.run(
            renders=100 if args.quick else 500, saves=3 if args.quick else 10
        )
    for n in sizes:
        start = time.monotonic()
        storm = spawn_storm.main(["--n", str(n), "--rounds", str(rounds)])
        storm["minutes"] = (time.monotonic() - start) / 60
        results["storms"].append(storm)
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        if args.operator:
            run = operator_storm.main(["--n", str(n), "--rounds", str(rounds)])
            results.setdefault("operator_storms", []).append(run)
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    results["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["load_end"] = spawn_storm.load_average()
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    text = report(results)
    Path(args.output).write_text(text)
    print("\n" + text)
    print(f"written to {args.output} and {args.json}")


if __name__ == "__main__":
    main()
