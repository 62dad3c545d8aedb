"""On save, the spawn form must render for everyone the menu distinguishes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from lsst_spawner.checks import spawner_settings
from lsst_spawner.cli import main
from lsst_spawner.menu import CuratedImage, ImagePolicy, ImageState, MenuDocument, MenuProblem
from lsst_spawner.menu.form_check import SpawnForms, audiences
from lsst_spawner.menu.image_check import check_save
from lsst_spawner.menu.storage import MenuStore
from lsst_spawner.menu.validate import MenuInvalidError

from .conftest import NODE_GROUPS, make_profile

TAGS = ["recommended", "w_2024_10", "w_2024_09"]

#: A site template that assumes every profile brings an extended resource (a GPU site's).
GPU_ONLY = """{% include "options.html.j2" %}
{% for size in sizes %}<p>{{ size.profile.extended_resources[0][0] }} per lab</p>{% endfor %}
"""
#: A site template whose notice markup reads an attribute notices do not have.
BAD_NOTICE = """{% for notice in notices %}<p>{{ notice.text }}</p>{% endfor %}
{% include "options.html.j2" %}
"""


def config(template_dir: Path | None = None, tags: list[str] = TAGS) -> Config:
    c = Config()
    c.JupyterHub.spawner_class = "lsst"
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
    c.LSSTSpawner.static_image_tags = tags
    if template_dir is not None:
        c.LSSTSpawner.options_template_path = [str(template_dir)]
        c.LSSTSpawner.options_template_name = "site.html.j2"
    return c


@pytest.fixture
def site_template(tmp_path: Path) -> Callable[[str], SpawnForms]:
    def write(text: str) -> SpawnForms:
        directory = tmp_path / f"templates{len(list(tmp_path.iterdir()))}"
        directory.mkdir()
        (directory / "site.html.j2").write_text(text)
        return SpawnForms(spawner_settings(config(directory)), dict(NODE_GROUPS))

    return write


async def problems_of(forms: SpawnForms, document: MenuDocument) -> list[MenuProblem]:
    """The form's problems with ``document``; ``forms`` closed after."""
    try:
        return await forms.problems(document)
    finally:
        forms.close()


GPU = make_profile("gpu", cpu="4", node_group="gpu", groups=("gpu-users",))
DOCUMENT = MenuDocument(
    images=(
        CuratedImage(tag="recommended", default=True),
        CuratedImage(tag="w_2024_09", groups=("staff",)),
    ),
    profiles=(make_profile("small", default=True), GPU),
)


def test_audiences_are_everyone_each_group_and_all_groups() -> None:
    assert audiences(DOCUMENT) == [
        ("users in none of the menu's groups", frozenset()),
        ("members of 'gpu-users'", frozenset({"gpu-users"})),
        ("members of 'staff'", frozenset({"staff"})),
        ("members of every group of the menu", frozenset({"gpu-users", "staff"})),
    ]


async def test_the_built_in_form_renders() -> None:
    forms = SpawnForms(spawner_settings(config()), dict(NODE_GROUPS))
    try:
        assert await forms.problems(DOCUMENT) == []
        html = await forms.render(DOCUMENT, ["gpu-users"])
        assert 'value="gpu"' in html
    finally:
        forms.close()


async def test_a_profile_that_breaks_the_site_template_is_named(
    site_template: Callable[[str], SpawnForms],
) -> None:
    forms = site_template(GPU_ONLY)
    try:
        gpu_only = MenuDocument(
            images=DOCUMENT.images,
            profiles=(make_profile("gpu", cpu="4", node_group="gpu", default=True),),
        )
        assert await forms.problems(gpu_only) == []  # every profile has its GPU: it renders
        problems = await forms.problems(DOCUMENT)
    finally:
        forms.close()
    assert [p.field for p in problems] == ["profiles[0].name"] * 4
    first = problems[0]
    assert first.message.startswith(
        "the spawn form of users in none of the menu's groups does not render with this "
        "profile: UndefinedError: "
    )
    assert "(template site.html.j2, line 2)" in first.message


async def test_a_template_that_breaks_on_a_notice_is_refused(
    site_template: Callable[[str], SpawnForms],
) -> None:
    forms = site_template(BAD_NOTICE)
    hidden = MenuDocument(
        images=(*DOCUMENT.images, CuratedImage(tag="w_2024_10", state=ImageState.HIDDEN)),
        profiles=DOCUMENT.profiles,
    )
    try:
        everyone = MenuDocument(images=DOCUMENT.images[:1], profiles=DOCUMENT.profiles)
        assert await forms.problems(everyone) == []  # nothing retired: no notice to show
        problems = await forms.problems(hidden)
    finally:
        forms.close()
    assert problems[0] == MenuProblem(
        "",
        "the spawn form of users in none of the menu's groups with a saved choice of a "
        "retired image does not render: UndefinedError: 'str object' has no attribute 'text' "
        "(template site.html.j2, line 1)",
    )


async def test_a_form_without_any_image_is_refused() -> None:
    forms = SpawnForms(spawner_settings(config(tags=["recommended"])), dict(NODE_GROUPS))
    nothing = MenuDocument(
        image_policy=ImagePolicy(releases=0, weeklies=0, dailies=0),
        images=(
            CuratedImage(tag="w_2099_01", default=True),  # not in the static list
            CuratedImage(tag="recommended", state=ImageState.HIDDEN),  # the only one there
        ),
        profiles=(make_profile("small", default=True),),
    )
    problems = await problems_of(forms, nothing)
    assert problems == [
        MenuProblem(
            "images", "the spawn form offers users in none of the menu's groups no image to choose"
        )
    ]


async def test_a_profile_on_a_node_group_the_forms_lack_is_no_profile() -> None:
    forms = SpawnForms(spawner_settings(config()), {})  # the infra admins removed "gpu"
    document = MenuDocument(
        images=DOCUMENT.images,
        profiles=(make_profile("gpu", cpu="4", node_group="gpu", default=True),),
    )
    problems = await problems_of(forms, document)
    assert problems == [
        MenuProblem(
            "profiles", "the spawn form offers users in none of the menu's groups no profile"
        ),
        MenuProblem("profiles", "the spawn form offers members of 'staff' no profile"),
    ]


async def test_check_save_refuses_what_does_not_render(
    site_template: Callable[[str], SpawnForms],
) -> None:
    forms = site_template(GPU_ONLY)
    try:
        with pytest.raises(MenuInvalidError) as raised:
            await check_save(DOCUMENT.to_json_data(), NODE_GROUPS, None, "x", forms=forms)
    finally:
        forms.close()
    assert raised.value.problems[0].field == "profiles[0].name"


def test_menu_import_stores_nothing_when_the_form_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "site.html.j2").write_text(GPU_ONLY)
    db_url = f"sqlite:///{tmp_path / 'menu.sqlite'}"
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = {TAGS!r}
c.LSSTSpawner.options_template_path = [{str(templates)!r}]
c.LSSTSpawner.options_template_name = "site.html.j2"
c.LabMenu.db_url = {db_url!r}
c.LabMenu.node_groups = [{{"name": "gpu", "extended_resources": {{"nvidia.com/gpu": 1}}}}]
"""
    )
    menu = tmp_path / "menu.yaml"
    menu.write_text(yaml.safe_dump(DOCUMENT.to_json_data()))
    code = main(["-f", str(path), "menu", "import", str(menu)])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"{menu}: profiles[0].name: the spawn form of users in none" in err
    assert "nothing saved" in err
    store = MenuStore(db_url)
    assert store.current_number() is None
    store.close()

    gpu_only = dict(
        DOCUMENT.to_json_data(),
        profiles=[GPU.model_dump(mode="json") | {"default": True, "groups": []}],
    )
    menu.write_text(yaml.safe_dump(gpu_only))
    code = main(["-f", str(path), "menu", "import", str(menu)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "saved revision 1" in out
