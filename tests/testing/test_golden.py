"""The kit's golden-file helper, and the golden progress events of a spawn on the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubespawner import clients
from traitlets.config import Config

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.golden import golden_checker, normalize
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

Golden = Callable[[str, Any], None]
DIGEST = "sha256:" + "c" * 64
#: The kubelet says how long a pull took ("in 0.01s (0.01s including waiting)").
DURATIONS = {r"\b\d+(?:\.\d+)?m?s\b": "<duration>"}


def test_normalize_replaces_timestamps_and_the_given_strings_everywhere() -> None:
    data = {
        "2026-12-02T01:02:03Z": [
            "at 2026-12-02T01:02:03.123456+00:00 in lsst-test-1234/nb-rra",
            ("2026-12-02 01:02:03", 7, None),
        ],
        "lsst-test-1234": {"ts": "2026-12-02T01:02:03+0000", "n": 1.5},
    }
    assert normalize(data, {"lsst-test-1234": "<ns>", "lsst-test": "<no>"}) == {
        "<timestamp>": ["at <timestamp> in <ns>/nb-rra", ["<timestamp>", 7, None]],
        "<ns>": {"ts": "<timestamp>", "n": 1.5},
    }
    assert normalize("version 2026-12-02 and 12:00:00") == "version 2026-12-02 and 12:00:00"
    assert normalize("pulled in 0.01s (12ms)", patterns={r"\d+(?:\.\d+)?m?s": "<d>"}) == (
        "pulled in <d> (<d>)"
    )


def test_checker_compares_json_and_text_and_shows_the_diff(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    check = golden_checker(request, tmp_path, "tests/x", update=False)
    (tmp_path / "data.json").write_text(json.dumps({"b": [1, 2], "a": "x"}))
    check("data", {"a": "x", "b": [1, 2]})  # the same value, whatever the layout
    with pytest.raises(AssertionError, match=r"data\.json differs; review and run pytest tests/x"):
        check("data", {"a": "y", "b": [1, 2]})
    (tmp_path / "page.html").write_text("<p>one</p>\n<p>two</p>\n")
    check("page.html", "<p>one</p>\n<p>two</p>")
    with pytest.raises(AssertionError) as caught:
        check("page.html", "<p>one</p>\n<p>2</p>\n")
    assert "-<p>two</p>" in str(caught.value)
    assert "+<p>2</p>" in str(caught.value)
    with pytest.raises(AssertionError, match=r"missing\.json is missing; run pytest tests/x"):
        check("missing", [])
    with pytest.raises(ValueError, match="golden text 'page' needs a file suffix"):
        check("page", "<p>text without a suffix</p>")


def test_the_plugin_adds_update_golden_and_the_golden_fixture(pytester: pytest.Pytester) -> None:
    """A site's suite: the kit's plugin alone gives ``golden`` and ``--update-golden``."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_site="""
        OUTPUT = {"value": 1}

        def test_output(golden):
            golden("output", OUTPUT)
            golden("page.html", "<b>%s</b>" % OUTPUT["value"])
        """
    )
    assert pytester.runpytest("-p", "no:cacheprovider").ret != 0  # no golden files yet
    assert pytester.runpytest("--update-golden", "-p", "no:cacheprovider").ret == 0
    assert json.loads((pytester.path / "golden" / "output.json").read_text()) == {"value": 1}
    assert (pytester.path / "golden" / "page.html").read_text() == "<b>1</b>\n"
    assert pytester.runpytest("-p", "no:cacheprovider").ret == 0
    (pytester.path / "golden" / "page.html").write_text("<b>2</b>\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*page.html differs; review and run pytest * --update-golden*"])


@pytest.fixture
def stub_kubelet(kubelet: Any) -> Iterator[Any]:
    kubelet.mode = "stub"
    clients.load_config.cache_clear()
    yield kubelet
    clients.load_config.cache_clear()


def make_spawner(kube_api: KubeHandle, name: str, **options: Any) -> LSSTSpawner:
    c = Config()
    c.LSSTSpawner.namespace = kube_api.namespace
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "registry.example.org/sciplat-lab"
    c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_46", "w_2026_45"]
    c.LSSTSpawner.static_image_digests = {"recommended": DIGEST, "w_2026_46": DIGEST}
    c.LSSTSpawner.lab_spawn_timeout = "60s"
    user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
    spawner = LSSTSpawner(config=c, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = "golden-progress-api-token"
    spawner.user_options = options
    spawner.lab_options_fresh = True
    return spawner


async def test_the_progress_events_of_a_spawn(
    golden: Golden, kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    """Every event the spawn page shows, in order (timestamps and the namespace normalised);
    the live stream and the replay a late page gets are the same."""
    spawner = make_spawner(kube_api, "rra", image="w_2026_46", size="small")
    live: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in spawner.progress():
            live.append(event)

    start = spawner.start()
    follower = asyncio.create_task(follow())
    await asyncio.wait_for(start, 60)
    await asyncio.wait_for(follower, 30)
    late = [event async for event in spawner.progress()]
    try:
        events = normalize(live, {kube_api.namespace: "<namespace>"}, DURATIONS)
        assert all(event["timestamp"] == "<timestamp>" for event in events), events
        golden("progress-spawn", events)
        # A page that connects once start() returned is replayed the same events at the same
        # percentages (the pod's events are recorded once, in the attempt's progress).
        replayed = normalize(late, {kube_api.namespace: "<namespace>"}, DURATIONS)
        assert replayed == events
        golden("progress-late-page", replayed)
    finally:
        await spawner.stop(now=True)
