"""Benchmark: a full registry refresh of a 10,000-tag repository on loopback.

A refresh is what the menu cache does every few minutes: list every tag, then
resolve the digests of the alias tags. This runs it against the real registry
(Debian's docker-registry, anonymous and with Bearer token auth) and against a
mock that honours ``n`` (distribution 2.8 ignores it), and prints the request
counts and times.

The 10,000-tag storage directory takes a minute or more to push, so it is built
once and kept under ``$LSST_SPAWNER_BENCH_CACHE`` (default ``benchmarks/.cache``).

    python benchmarks/registry_refresh.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsst_spawner.images.registry import RegistryClient
from lsst_spawner.testing.recording_server import LocalHTTPServer, RecordedRequest, Reply
from lsst_spawner.testing.registry import LocalRegistry, TokenServer, push_alias, push_tags

REPOSITORY = "lsst-sqre/sciplat-lab"
TAG_COUNT = 10_000
ALIASES = {"recommended": "w_2026_10", "latest_weekly": "w_2026_10", "latest_daily": "d_2026_03_06"}


def tag_names(count: int = TAG_COUNT) -> list[str]:
    """A realistic mix: weeklies, dailies, releases, candidates, experimentals."""
    tags: list[str] = []
    tags += [f"w_{y}_{w:02d}" for y in range(2016, 2027) for w in range(1, 53)]
    tags += [
        f"d_{y}_{m:02d}_{d:02d}"
        for y in range(2016, 2027)
        for m in range(1, 13)
        for d in range(1, 29)
    ]
    tags += [f"r{a}_{b}_{c}" for a in range(18, 30) for b in range(3) for c in range(4)]
    tags += [f"r{a}_{b}_0_rc{n}" for a in range(18, 30) for b in range(3) for n in range(1, 4)]
    i = 0
    while len(tags) < count - len(ALIASES):
        tags.append(f"exp_w_2025_{i % 52 + 1:02d}_build{i:05d}")
        i += 1
    return tags[: count - len(ALIASES)]


def cache_dir() -> Path:
    base = os.environ.get("LSST_SPAWNER_BENCH_CACHE")
    root = Path(base) if base else Path(__file__).resolve().parent / ".cache"
    return root / f"registry-{TAG_COUNT}"


def ensure_storage() -> Path:
    directory = cache_dir()
    marker = directory / "complete.json"
    if marker.exists():
        return directory / "storage"
    print(f"building {TAG_COUNT} tags under {directory} (once)...", flush=True)
    start = time.monotonic()
    with LocalRegistry(directory / "storage") as registry:
        tags = tag_names()
        asyncio.run(push_tags(registry.url, REPOSITORY, tags, distinct=False, concurrency=8))
        for alias, target in ALIASES.items():
            asyncio.run(push_alias(registry.url, REPOSITORY, alias, target))
    elapsed = time.monotonic() - start
    marker.write_text(json.dumps({"tags": TAG_COUNT, "seconds": round(elapsed, 1)}))
    print(f"built in {elapsed:.0f}s", flush=True)
    return directory / "storage"


async def refresh(client: RegistryClient) -> tuple[float, int]:
    start = time.perf_counter()
    tags = await client.list_tags(REPOSITORY)
    digests = await client.resolve_digests(REPOSITORY, ALIASES)
    elapsed = time.perf_counter() - start
    assert len(tags) == TAG_COUNT, len(tags)
    assert set(digests) == set(ALIASES)
    return elapsed, client.stats.requests


def measure(name: str, make_client, runs: int, expected: int) -> dict[str, object]:
    times, counts, stats = [], [], None
    for _ in range(runs):
        client = make_client()  # a cold client: no cached token
        elapsed, count = asyncio.run(refresh(client))
        times.append(elapsed)
        counts.append(count)
        stats = client.stats
    return {
        "case": name,
        "requests": counts[-1],
        "expected": expected,
        "pages": stats.tag_pages,
        "auth": stats.token_requests + stats.challenges,
        "digests": stats.digest_requests,
        "p50_ms": statistics.median(times) * 1000,
        "max_ms": max(times) * 1000,
    }


def paged_mock(page_size: int) -> LocalHTTPServer:
    tags = tag_names() + list(ALIASES)
    digest = "sha256:" + "0" * 64

    def handle(request: RecordedRequest) -> Reply:
        if request.method == "HEAD":
            return Reply(200, {"Docker-Content-Digest": digest})
        n = int(request.query["n"][0])
        last = request.query.get("last", [""])[0]
        start = tags.index(last) + 1 if last else 0
        page = tags[start : start + n]
        headers = {"Content-Type": "application/json"}
        if start + n < len(tags):
            headers["Link"] = f'</v2/{REPOSITORY}/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return Reply(200, headers, json.dumps({"name": REPOSITORY, "tags": page}).encode())

    return LocalHTTPServer(handle)


def run(runs: int = 5, page_size: int = 1000) -> list[dict[str, object]]:
    """The three cases' figures (used by ``run_all.py`` too)."""
    args = argparse.Namespace(runs=runs, page_size=page_size)
    storage = ensure_storage()
    digests = len(ALIASES)
    rows = []
    with LocalRegistry(storage) as registry:
        rows.append(
            measure(
                "real registry, anonymous",
                lambda: RegistryClient(
                    registry.host_port,
                    insecure_registries=[registry.host_port],
                    page_size=args.page_size,
                ),
                args.runs,
                1 + digests,  # distribution 2.8 ignores n: one page
            )
        )
    token_server = TokenServer(users={"bench": "bench-password"})
    try:
        with LocalRegistry(storage, token_server=token_server) as registry:
            from lsst_spawner.images.registry_auth import RegistryCredentials

            realm = token_server.server.host_port
            rows.append(
                measure(
                    "real registry, Bearer token",
                    lambda: RegistryClient(
                        registry.host_port,
                        credentials=RegistryCredentials("bench", "bench-password"),
                        insecure_registries=[registry.host_port, realm],
                        realm_allowlist=[realm],
                        page_size=args.page_size,
                    ),
                    args.runs,
                    1 + 2 + digests,  # one page + (401 retry, token) + digests
                )
            )
    finally:
        token_server.close()
    with paged_mock(args.page_size) as mock:
        rows.append(
            measure(
                f"mock honouring n={args.page_size}",
                lambda: RegistryClient(
                    mock.host_port, insecure_registries=[mock.host_port], page_size=args.page_size
                ),
                args.runs,
                math.ceil(TAG_COUNT / args.page_size) + digests,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    rows = run(args.runs, args.page_size)
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(
        f"\n{TAG_COUNT} tags, {args.runs} cold refreshes each; nproc={os.cpu_count()}, CPU {cpu}, "
        f"Python {platform.python_version()}"
    )
    header = (
        f"{'case':34} {'requests':>8} {'expected':>8} {'pages':>5} {'auth':>4} "
        f"{'digests':>7} {'p50 ms':>8} {'max ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['case']:34} {row['requests']:>8} {row['expected']:>8} {row['pages']:>5} "
            f"{row['auth']:>4} {row['digests']:>7} {row['p50_ms']:>8.1f} {row['max_ms']:>8.1f}"
        )


if __name__ == "__main__":
    main()
