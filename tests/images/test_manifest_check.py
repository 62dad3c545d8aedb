"""The registry's answer about a pinned manifest is kept briefly and shared by a spawn storm."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kubespawner import clients
from traitlets.config import Config

from lsst_spawner.images.manifest_check import ManifestAnswers
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.site import forget_sites, site_context
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

DIGEST = "sha256:" + "d" * 64


class Registry:
    """A stand-in for the registry's HEAD: counts requests, answers ``present``."""

    def __init__(self) -> None:
        self.present = True
        self.heads = 0
        self.release = asyncio.Event()
        self.release.set()
        self.fail = False

    async def check(self, digest: str) -> bool:
        self.heads += 1
        await self.release.wait()
        if self.fail:
            raise OSError("registry down")
        return self.present


async def test_a_storm_of_spawns_makes_one_head_per_image_and_period() -> None:
    registry, now = Registry(), [0.0]
    answers = ManifestAnswers(registry.check, 30, clock=lambda: now[0])
    registry.release.clear()  # every spawn asks while the first request is in flight
    storm = [asyncio.ensure_future(answers.exists(DIGEST)) for _ in range(50)]
    await asyncio.sleep(0)
    registry.release.set()
    assert await asyncio.gather(*storm) == [True] * 50
    assert registry.heads == 1
    # Within the age: the kept answer, even though the manifest was deleted meanwhile.
    registry.present = False
    now[0] = 29.9
    assert await answers.exists(DIGEST) is True
    assert registry.heads == 1
    # Past it: asked again, and the new answer is kept.
    now[0] = 30.0
    assert await answers.exists(DIGEST) is False
    assert await answers.exists(DIGEST) is False
    assert registry.heads == 2
    # Another digest is its own question.
    assert await answers.exists("sha256:" + "e" * 64) is False
    assert registry.heads == 3


async def test_a_failed_request_is_not_an_answer() -> None:
    registry = Registry()
    answers = ManifestAnswers(registry.check, 30)
    registry.fail = True
    with pytest.raises(OSError, match="registry down"):
        await answers.exists(DIGEST)
    registry.fail = False
    assert await answers.exists(DIGEST) is True
    assert registry.heads == 2


async def test_a_spawn_that_stops_asking_does_not_cancel_the_others() -> None:
    registry = Registry()
    answers = ManifestAnswers(registry.check, 30)
    registry.release.clear()
    first = asyncio.ensure_future(answers.exists(DIGEST))
    second = asyncio.ensure_future(answers.exists(DIGEST))
    await asyncio.sleep(0)
    first.cancel()  # its pod started: watch_image_pull cancels its check
    registry.release.set()
    assert await second is True
    assert first.cancelled()
    assert registry.heads == 1


async def test_max_age_zero_asks_at_every_spawn() -> None:
    registry = Registry()
    answers = ManifestAnswers(registry.check, 0)
    for _ in range(3):
        assert await answers.exists(DIGEST) is True
    assert registry.heads == 3


async def test_spawners_of_one_configuration_share_the_answers_of_the_real_registry(
    kube_api: KubeHandle, local_registry: Any
) -> None:
    """Twenty spawners asking about one image: one HEAD to the real registry; after the
    manifest is deleted, the kept answer until image_manifest_check_max_age, then False."""
    from lsst_spawner.testing.kube.images import publish_image

    from ..spawner.test_lifecycle import spawner_config

    repository = f"kept/lab-{uuid.uuid4().hex[:8]}"
    url, host = local_registry.registry.url, local_registry.host_port
    digests = {}
    for tag in ("recommended", "w_2026_46"):
        reference = await publish_image(url, repository, tag, env={"TAG": tag})
        digests[tag] = reference.rsplit("@", 1)[1]
    clients.load_config.cache_clear()
    config = spawner_config(kube_api.namespace)
    registry_menu = {
        "image_source": "registry",
        "registry_host": host,
        "registry_repository": repository,
        "registry_insecure_hosts": [host],
        "image_alias_tags": [],
        "image_manifest_check_max_age": "1s",
    }
    config.merge(Config({"LSSTSpawner": registry_menu}))
    spawners = []
    for index in range(20):
        name = f"storm{index}"
        user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
        spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
        spawner.server = OfflineServer(user)
        spawners.append(spawner)
    try:
        image = (await spawners[0].get_menu()).find("w_2026_46")
        assert image is not None
        assert image.digest == digests["w_2026_46"]
        source = site_context(spawners[0]).menu_cache(spawners[0]).source
        client: Any = getattr(source, "client")  # noqa: B009 - the registry source's client
        heads: list[str] = []
        real_head = client.manifest_exists

        async def counted(repo: str, digest: str) -> bool:
            heads.append(digest)
            return bool(await real_head(repo, digest))

        client.manifest_exists = counted
        checks = [spawner.image_manifest_check(image) for spawner in spawners]
        assert all(check is not None for check in checks)
        assert await asyncio.gather(*(check() for check in checks if check)) == [True] * 20
        assert heads == [digests["w_2026_46"]]

        assert await local_registry.client().delete_manifest(repository, digests["w_2026_46"])
        again = spawners[1].image_manifest_check(image)
        assert again is not None
        assert await again() is True, "the answer kept for image_manifest_check_max_age"
        assert len(heads) == 1
        await asyncio.sleep(1.1)
        assert await again() is False
        assert len(heads) == 2
    finally:
        forget_sites()
        clients.load_config.cache_clear()
