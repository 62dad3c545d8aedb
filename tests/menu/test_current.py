"""The hub's view of the current menu: a marker read per use, a reload only on change."""

from __future__ import annotations

from types import SimpleNamespace

from lsst_spawner.menu import CuratedImage, MenuDocument
from lsst_spawner.menu.current import CurrentMenu, menu_profile_list
from lsst_spawner.menu.storage import MenuStore

from .conftest import make_profile

BASE = MenuDocument(
    images=(CuratedImage(tag="recommended", default=True),),
    profiles=(
        make_profile("small", default=True),
        make_profile("gpu", cpu="4", node_group="gpu", groups=("gpu-users",)),
    ),
)


def _user(*groups: str) -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(groups=[SimpleNamespace(name=g) for g in groups]))


def test_the_document_is_read_only_when_the_revision_changes(store: MenuStore) -> None:
    current = CurrentMenu(store)
    assert current.get() is None
    store.save(BASE, base=None, author="alice")
    assert current.get().number == 1  # type: ignore[union-attr]
    assert current.get().number == 1  # type: ignore[union-attr]
    assert current.loads == 1
    store.save(BASE.model_copy(update={"profiles": BASE.profiles[:1]}), base=1, author="bob")
    assert [p.name for p in current.get().document.profiles] == ["small"]  # type: ignore[union-attr]
    assert current.loads == 2


async def test_profile_list_callable_follows_saves_and_groups(store: MenuStore) -> None:
    profile_list = menu_profile_list(store, image_repository="ghcr.io/lsst-sqre/sciplat-lab")
    assert await profile_list(_user()) == []
    store.save(BASE, base=None, author="alice")
    assert [p["slug"] for p in await profile_list(_user("astro"))] == ["small"]
    gpu_users = await profile_list(_user("gpu-users"))
    assert [p["slug"] for p in gpu_users] == ["small", "gpu"]
    assert gpu_users[1]["kubespawner_override"]["node_selector"] == {"pool": "gpu"}
    assert gpu_users[1]["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    store.rollback(1, base=1, author="bob")  # a new revision: the callable sees it at once
    store.save(BASE.model_copy(update={"profiles": BASE.profiles[:1]}), base=2, author="bob")
    assert [p["slug"] for p in await profile_list(_user("gpu-users"))] == ["small"]
