"""Size quotas: the pure decision, hostile tables, and the form and the API agreeing."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.web import HTTPError
from traitlets.config import Config

from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.identity import Identity
from lsst_spawner.lab.quota import allowed_sizes
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.offline import OfflineHub, OfflineUser
from lsst_spawner.spawner import LSSTSpawner

from .conftest import make_identity
from .test_group_mounts import INSTRUCTOR, OUTSIDER, STUDENT

SIZES = ("small", "medium", "large")
TABLE = {"students": ["small"], "instructors": ["small", "medium", "large"]}


def test_allowed_sizes_by_group_table() -> None:
    assert allowed_sizes({}, {"anyone"}, SIZES) == SIZES
    assert allowed_sizes(TABLE, {"students"}, SIZES) == ("small",)
    assert allowed_sizes(TABLE, {"students", "instructors"}, SIZES) == SIZES
    assert allowed_sizes(TABLE, {"visitors"}, SIZES) == ()
    everyone = {**TABLE, "*": ["medium"]}
    assert allowed_sizes(everyone, {"visitors"}, SIZES) == ("medium",)
    # Configured order, whatever the table's order.
    assert allowed_sizes({"g": ["large", "small"]}, {"g"}, SIZES) == ("small", "large")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"Students": ["small"]},
            "LSSTSpawner.lab_size_quota['Students']: 'Students' is not a POSIX group name",
        ),
        (
            {"students": ["huge"]},
            "LSSTSpawner.lab_size_quota['students']: 'huge' is not one of the lab_sizes "
            "(small, medium, large)",
        ),
        (
            {"students": []},
            "LSSTSpawner.lab_size_quota['students']: must be a non-empty list of lab size names",
        ),
    ],
)
def test_hostile_quota_tables_name_the_trait(table: dict[str, Any], expected: str) -> None:
    problems = [str(p) for p in LabTraits(lab_size_quota=table).config_problems()]
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def _config(**quota: Any) -> Config:
    config = Config()
    config.LSSTSpawner.namespace = "labs"
    config.LSSTSpawner.image_source = "static"
    config.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
    config.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10"]
    config.LSSTSpawner.lab_default_size = "medium"
    for key, value in quota.items():
        setattr(config.LSSTSpawner, key, value)
    return config


@pytest.fixture
def offline() -> Iterator[None]:
    with tempfile.TemporaryDirectory() as tmp, _offline_kubernetes_client(tmp):
        yield


def _spawner(config: Config, who: dict[str, Any]) -> LSSTSpawner:
    identity = make_identity(**who).to_dict()
    user = OfflineUser(str(who["username"]), {"identity": identity})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.lab_options_fresh = True
    return spawner


def _offered(html: str) -> list[str]:
    """The size radio buttons of the rendered form."""
    return re.findall(r'name="size" id="size-\d+" value="([^"]+)"', html)


async def test_form_hides_what_the_api_refuses(offline: None) -> None:
    config = _config(lab_size_quota=TABLE)
    student = _spawner(config, STUDENT)
    html = await student.render_options_form()
    assert _offered(html) == ["small"]
    assert "Not offered, beyond your quota: medium, large" in html
    # The site default (medium) is not allowed: the first allowed size is the default.
    assert (await student.validate_user_options()).size == "small"
    student.user_options = {"size": "large"}
    with pytest.raises(HTTPError) as caught:
        await student.validate_user_options()
    assert caught.value.status_code == 400
    assert caught.value.log_message == "size 'large' is beyond your quota; choose one of small"
    with pytest.raises(HTTPError):
        await student.lab_options_from_form({"size": ["medium"]})

    instructor = _spawner(config, INSTRUCTOR)
    instructor_html = await instructor.render_options_form()
    assert _offered(instructor_html) == list(SIZES)
    assert "beyond your quota" not in instructor_html
    instructor.user_options = {"size": "large"}
    assert (await instructor.validate_user_options()).size == "large"


async def test_saved_size_over_quota_falls_back_to_an_allowed_one(offline: None) -> None:
    student = _spawner(_config(lab_size_quota=TABLE), STUDENT)
    student.lab_options_fresh = False  # the hub re-uses options saved before the quota
    student.user_options = {"size": "large"}
    assert (await student.validate_user_options()).size == "small"


async def test_user_allowed_no_size_is_refused(offline: None) -> None:
    outsider = _spawner(_config(lab_size_quota=TABLE), OUTSIDER)
    with pytest.raises(HTTPError) as caught:
        await outsider.render_options_form()
    assert caught.value.status_code == 403
    assert "your groups allow none of the lab sizes" in caught.value.log_message


async def test_hook_narrows_the_table(offline: None) -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []

    async def hook(spawner: Any, identity: Identity, sizes: tuple[str, ...]) -> list[str]:
        seen.append((identity.username, sizes))
        return [s for s in sizes if s != "large"]

    instructor = _spawner(_config(lab_size_quota=TABLE, lab_size_quota_hook=hook), INSTRUCTOR)
    assert _offered(await instructor.render_options_form()) == ["small", "medium"]
    assert seen == [("ana", SIZES)]
    instructor.user_options = {"size": "large"}
    with pytest.raises(HTTPError) as caught:
        await instructor.validate_user_options()
    assert "beyond your quota" in caught.value.log_message


async def test_hook_returning_a_string_is_an_error(offline: None) -> None:
    spawner = _spawner(_config(lab_size_quota_hook=lambda s, i, sizes: "small"), STUDENT)
    with pytest.raises(TypeError, match="lab_size_quota_hook must return size names, not str"):
        await spawner.render_options_form()


async def test_no_quota_reads_no_auth_state(offline: None) -> None:
    spawner = _spawner(_config(), STUDENT)
    spawner.user.auth_state = None  # would be refused if it were read
    assert _offered(await spawner.render_options_form()) == list(SIZES)


# --- the lab menu's profiles under the same quota, through an in-process hub ------------

MENU_TAGS = {"recommended": "sha256:" + "a" * 64, "w_2024_10": "sha256:" + "b" * 64}


def _menu_profile(name: str, cpu: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cpu_limit": cpu,
        "cpu_guarantee": "100m",
        "memory_limit": "4Gi",
        "memory_guarantee": "1Gi",
        **extra,
    }


@pytest.fixture
def menu_db(tmp_path: Any) -> Iterator[str]:
    """A lab menu database whose current revision offers profiles none of lab_sizes has."""
    from lsst_spawner.menu.storage import MenuStore
    from lsst_spawner.site import forget_sites

    url = f"sqlite:///{tmp_path / 'menu.sqlite'}"
    store = MenuStore(url, {})
    store.upgrade()
    document = {
        "image_policy": {"releases": 0, "weeklies": 3, "dailies": 0},
        "images": [{"tag": "recommended", "default": True}, {"tag": "w_2024_10"}],
        "profiles": [
            _menu_profile("lite", "1", default=True),
            _menu_profile("heavy", "4"),
        ],
    }
    store.save(document, base=None, author="menu-admin")
    store.close()
    yield url
    forget_sites()


def _identity(who: dict[str, Any]) -> Identity:
    return make_identity(**who)


async def test_menu_profiles_over_quota_are_not_offered_and_refused_by_the_rest_api(
    lsst_hub: Any, menu_db: str
) -> None:
    config = {
        "LabMenu": {"db_url": menu_db, "revision_check_interval": 0},
        "LSSTSpawner": {"lab_size_quota": {"students": ["lite"], "instructors": ["lite", "heavy"]}},
    }
    hub = await lsst_hub(config=config, images=MENU_TAGS)
    await hub.add_user("bob", _identity(STUDENT))
    await hub.add_user("ana", _identity(INSTRUCTOR))

    # The form: the student is offered only "lite", and told why "heavy" is missing.
    student_form = await hub.spawner("bob").get_options_form()
    assert _offered(student_form) == ["lite"]
    assert "Not offered, beyond your quota: heavy" in student_form
    instructor_form = await hub.spawner("ana").get_options_form()
    assert _offered(instructor_form) == ["lite", "heavy"]
    assert "beyond your quota" not in instructor_form

    # The hostile post: the profile over quota, straight to the REST API.
    writes_before = hub.kube_api.counters.get("create")
    status, reply = await hub.start("bob", {"image": "w_2024_10", "size": "heavy"})
    assert status == 400, reply
    assert reply["message"] == "size 'heavy' is beyond your quota; choose one of lite"
    _, model = await hub.request("GET", "/users/bob")
    assert model["servers"] == {}
    assert hub.kube_api.counters.get("create") == writes_before, "a Kubernetes object was made"

    # The positive control: the instructor's quota allows it, and the pod gets its limits.
    pod = await hub.spawn("ana", {"image": "w_2024_10", "size": "heavy"})
    assert pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "4"
    await hub.stop("ana")


async def test_a_user_whose_quota_allows_no_menu_profile_is_refused(
    lsst_hub: Any, menu_db: str
) -> None:
    config = {
        "LabMenu": {"db_url": menu_db, "revision_check_interval": 0},
        "LSSTSpawner": {"lab_size_quota": {"instructors": ["heavy"]}},
    }
    hub = await lsst_hub(config=config, images=MENU_TAGS)
    await hub.add_user("eve", _identity(OUTSIDER))
    status, reply = await hub.start("eve", {"image": "w_2024_10", "size": "lite"})
    assert status == 403, reply
    assert "your groups allow none of the lab sizes" in reply["message"]


def test_with_the_lab_menu_the_quota_names_profiles_not_lab_sizes() -> None:
    from lsst_spawner.checks import check_config_with_warnings

    config = _config(lab_size_quota={"students": ["lite"]})
    config.JupyterHub.spawner_class = "lsst"
    problems, _, _ = check_config_with_warnings(config)
    assert [str(p) for p in problems] == [
        "LSSTSpawner.lab_size_quota['students']: 'lite' is not one of the lab_sizes "
        "(small, medium, large)"
    ]
    config.LabMenu.db_url = "sqlite://"  # the menu on: its profiles change while the hub runs
    problems, warnings, _ = check_config_with_warnings(config)
    assert (problems, warnings) == ([], [])
