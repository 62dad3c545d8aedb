"""Every offered image must exist: checked against the real local registry."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from lsst_spawner.checks import spawner_settings
from lsst_spawner.images.registry import RegistryImageSource
from lsst_spawner.menu import CuratedImage, ImagePolicy, ImageState, MenuDocument, MenuProblem
from lsst_spawner.menu.image_check import (
    check_images_exist,
    check_save,
    images_checked_in_registry,
    offered_tags,
    save_checker,
)
from lsst_spawner.menu.validate import MenuInvalidError
from lsst_spawner.testing import LocalHTTPServer, Reply
from lsst_spawner.testing.registry.fixtures import RegistryFixture

from .conftest import make_profile

pytestmark = pytest.mark.integration

DOCUMENT = MenuDocument(
    image_policy=ImagePolicy(pinned_tags=("r23_0_1", "w_2099_01")),
    images=(
        CuratedImage(tag="recommended", default=True),
        CuratedImage(tag="w_2024_05"),
        CuratedImage(tag="w_2098_01"),
        CuratedImage(tag="w_1999_01", state=ImageState.HIDDEN),  # not offered: not checked
    ),
    profiles=(make_profile("small", default=True),),
)


def test_offered_tags() -> None:
    assert offered_tags(DOCUMENT) == {
        "recommended": "images[0].tag",
        "w_2024_05": "images[1].tag",
        "w_2098_01": "images[2].tag",
        "r23_0_1": "image_policy.pinned_tags[0]",
        "w_2099_01": "image_policy.pinned_tags[1]",
    }


@pytest.mark.parametrize("kind", ["anonymous", "token"])
async def test_missing_tags_are_refused_with_the_field(
    kind: str, local_registry: RegistryFixture, token_registry: RegistryFixture
) -> None:
    fixture = local_registry if kind == "anonymous" else token_registry
    source = RegistryImageSource(fixture.client(), fixture.repository)
    where = f"{fixture.host_port}/{fixture.repository}"
    digests, problems = await check_images_exist(DOCUMENT, source, where)
    assert digests == {tag: fixture.digests[tag] for tag in ("recommended", "w_2024_05", "r23_0_1")}
    assert problems == [
        MenuProblem(
            "images[2].tag",
            f"{where}:w_2098_01 does not exist: the registry has no manifest for it",
        ),
        MenuProblem(
            "image_policy.pinned_tags[1]",
            f"{where}:w_2099_01 does not exist: the registry has no manifest for it",
        ),
    ]


async def test_a_registry_that_refuses_is_one_problem(token_registry: RegistryFixture) -> None:
    source = RegistryImageSource(token_registry.client(credentials=None), token_registry.repository)
    digests, problems = await check_images_exist(DOCUMENT, source, "there")
    assert digests == {}
    assert [p.field for p in problems] == ["images"]
    assert problems[0].message.startswith("the registry could not be asked: ")


def _settings(source: str, registry: str) -> Any:
    c = Config()
    c.JupyterHub.spawner_class = "lsst"
    c.LSSTSpawner.image_source = source
    c.LSSTSpawner.registry_host = registry
    c.LSSTSpawner.registry_repository = "lsst-sqre/sciplat-lab"
    c.LSSTSpawner.registry_insecure_hosts = [registry]
    c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
    c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_05"]
    return spawner_settings(c)


def test_the_rule_checks_registry_images_only() -> None:
    assert images_checked_in_registry(_settings("registry", "127.0.0.1:9"))
    assert not images_checked_in_registry(_settings("static", "127.0.0.1:9"))
    assert not images_checked_in_registry(object())  # no image_source at all


async def test_a_static_source_asks_no_registry_and_a_registry_source_does() -> None:
    with LocalHTTPServer(lambda request: Reply(404)) as registry:
        static, where = save_checker(_settings("static", registry.host_port))
        assert (static, where) == (None, "ghcr.io/lsst-sqre/sciplat-lab")
        # w_2098_01 exists nowhere: a static source's save does not ask a registry about it.
        document = await check_save(DOCUMENT.to_json_data(), {}, static, where)
        assert document == DOCUMENT
        assert registry.requests == []

        source, where = save_checker(_settings("registry", registry.host_port))
        assert where == f"{registry.host_port}/lsst-sqre/sciplat-lab"
        with pytest.raises(MenuInvalidError) as raised:
            await check_save(DOCUMENT.to_json_data(), {}, source, where)
        assert [p.field for p in raised.value.problems] == list(offered_tags(DOCUMENT).values())
        assert {r.path for r in registry.requests} == {
            f"/v2/lsst-sqre/sciplat-lab/manifests/{tag}" for tag in offered_tags(DOCUMENT)
        }
