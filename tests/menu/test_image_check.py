"""Every offered image must exist: checked against the real local registry."""

from __future__ import annotations

import pytest

from lsst_spawner.images.registry import RegistryImageSource
from lsst_spawner.menu import CuratedImage, ImagePolicy, ImageState, MenuDocument, MenuProblem
from lsst_spawner.menu.image_check import check_images_exist, offered_tags
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
