"""Validation of user options: the allow-list, for the form and the REST API alike."""

from __future__ import annotations

import logging

import pytest
from menu_fixture import (
    D0203,
    DIGEST512_W09,
    DIGEST_R23,
    DIGEST_W10,
    HOSTILE_TAG,
    IMAGE_BASE,
    R23,
    RECOMMENDED,
    UNLISTED_DIGEST,
    W01,
    W09,
    W10,
    make_catalog,
)

from lsst_spawner.form.image import lab_image, lab_options_env
from lsst_spawner.form.options import (
    DROPDOWN_CHOICE,
    LabOptions,
    OptionsError,
    OptionsOrigin,
    parse_user_options,
    size_choices,
)

CATALOG = make_catalog()


def api(raw: object, **kwargs) -> LabOptions:
    return parse_user_options(raw, CATALOG, origin=OptionsOrigin.API, **kwargs)


def form(raw: object, **kwargs) -> LabOptions:
    return parse_user_options(raw, CATALOG, origin=OptionsOrigin.FORM, **kwargs)


# --- accepted --------------------------------------------------------------------


def test_empty_options_mean_defaults() -> None:
    assert api({}) == LabOptions(RECOMMENDED, "medium", False, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("w_2024_10", W10),
        ("recommended", RECOMMENDED),
        ("d_2024_02_03", D0203),
        (f"{IMAGE_BASE}:r23_0_1", R23),
        (f"{IMAGE_BASE}:r23_0_1@{DIGEST_R23}", R23),
        (f"r23_0_1@{DIGEST_R23}", R23),
        (f"{IMAGE_BASE}@{DIGEST_R23}", R23),
        # sha512 digests follow the same grammar as the menu's (lsst_spawner.grammar).
        (f"{IMAGE_BASE}:w_2024_09@{DIGEST512_W09}", W09),
        (f"w_2024_09@{DIGEST512_W09}", W09),
        (f"{IMAGE_BASE}@{DIGEST512_W09}", W09),
    ],
)
def test_api_image_by_tag_reference_or_digest(value: str, expected: object) -> None:
    assert api({"image": value}).image == expected


def test_api_full_options() -> None:
    options = api(
        {"image": "w_2024_10", "size": "small", "enable_debug": True, "reset_user_env": True}
    )
    assert options == LabOptions(W10, "small", True, True)
    assert options.to_user_options() == {
        "image": "w_2024_10",
        "size": "small",
        "enable_debug": True,
        "reset_user_env": True,
    }


def test_form_radio_dropdown_and_checkboxes() -> None:
    assert form({"image_list": ["r23_0_1"], "image_dropdown": ["w_2024_01"]}) == LabOptions(
        R23, "medium", False, False
    )
    options = form(
        {
            "image_list": [DROPDOWN_CHOICE],
            "image_dropdown": ["w_2024_01"],
            "size": ["small"],
            "enable_debug": ["on"],
            "reset_user_env": ["on"],
            "_xsrf": ["token-added-by-jupyterhub"],
        }
    )
    assert options == LabOptions(W01, "small", True, True)


# --- rejected: every rule, with the hostile input itself -------------------------

API_REJECTIONS = [
    ({"image": "w_2024_10", "shell": "/bin/sh"}, "unknown option 'shell'"),
    ({"profile": "gpu"}, "unknown option 'profile'"),
    ({"image": "../"}, "not from this hub's image repository"),
    ({"image": "../../etc/passwd"}, "not from this hub's image repository"),
    ({"image": "a" * 200}, "200 characters long; a tag has at most 128"),
    ({"image": "w" * 600}, "at most 512 are allowed"),
    ({"image": "other.registry/x:tag"}, "not from this hub's image repository"),
    (
        {"image": "other.registry/lsst/sciplat-lab:w_2024_10"},
        "not from this hub's image repository",
    ),
    ({"image": f"{IMAGE_BASE}-evil:w_2024_10"}, "not from this hub's image repository"),
    ({"image": f"{IMAGE_BASE}@{UNLISTED_DIGEST}"}, "is not the digest of any image offered"),
    ({"image": f"w_2024_10@{DIGEST_R23}"}, "is not the digest of image tag w_2024_10"),
    ({"image": f"w_2024_01@{DIGEST_W10}"}, "digest of image tag w_2024_01 is not known"),
    ({"image": f"{IMAGE_BASE}@sha256:abc"}, "64 lowercase hex digits"),
    ({"image": f"{IMAGE_BASE}@md5:{'0' * 32}"}, "64 lowercase hex digits"),
    ({"image": f"{IMAGE_BASE}@sha512:{'9' * 127}"}, "or sha512: and 128"),
    ({"image": f"{IMAGE_BASE}@sha512:{'9' * 64}"}, "or sha512: and 128"),
    ({"image": f"w_2024_09@sha256:{'9' * 64}"}, "is not the digest of image tag w_2024_09"),
    ({"image_class": "latest-nightly"}, "image_class 'latest-nightly' is not one of"),
    ({"image_class": ["latest-weekly"]}, "image_class ['latest-weekly'] is not one of"),
    ({"image": "w_2024_10", "image_class": "latest-weekly"}, "either image or image_class"),
    ({"image": "w_2024_99"}, "image tag w_2024_99 is not offered"),
    ({"image": HOSTILE_TAG}, "is not a valid tag or image reference"),
    ({"image": "w_2024_10 "}, "is not a valid tag or image reference"),
    ({"image": "-w_2024_10"}, "is not a valid tag or image reference"),
    ({"image": ""}, "image must not be empty"),
    ({"image": ["w_2024_10"]}, "image must be a string, not list"),
    ({"image": {"tag": "w_2024_10"}}, "image must be a string, not dict"),
    ({"image": 7}, "image must be a string, not int"),
    ({"size": "huge"}, "size 'huge' is not one of small, medium"),
    ({"size": ["small"]}, "size must be a string, not list"),
    ({"size": "small; rm -rf /"}, "is not one of small, medium"),
    ({"enable_debug": "true"}, "enable_debug must be true or false, not 'true'"),
    ({"enable_debug": "on"}, "enable_debug must be true or false"),
    ({"enable_debug": 1}, "enable_debug must be true or false, not 1"),
    ({"reset_user_env": None}, "reset_user_env must be true or false, not None"),
    ({"reset_user_env": [True]}, "reset_user_env must be true or false"),
]


@pytest.mark.parametrize(("raw", "message"), API_REJECTIONS)
def test_api_rejections(raw: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        api(raw)
    assert message in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize("raw", [None, [], "image=w_2024_10", [("image", "w_2024_10")]])
def test_api_rejects_non_objects(raw: object) -> None:
    with pytest.raises(OptionsError, match="must be an object"):
        api(raw)


FORM_REJECTIONS = [
    ({"image": ["w_2024_10"]}, "unknown form field 'image'"),
    ({"image_list": ["w_2024_10", "r23_0_1"]}, "must have exactly one value, not 2"),
    ({"image_list": []}, "must have exactly one value, not 0"),
    ({"image_list": "w_2024_10"}, "must be a list of strings"),
    ({"image_list": ["../"]}, "not from this hub's image repository"),
    ({"image_list": ["other.registry/x:tag"]}, "not from this hub's image repository"),
    ({"image_list": [DROPDOWN_CHOICE], "image_dropdown": [HOSTILE_TAG]}, "not a valid tag"),
    ({"image_list": [DROPDOWN_CHOICE]}, "choose an image from the list of other images"),
    ({"size": ["huge"]}, "is not one of small, medium"),
    ({"enable_debug": ["true"]}, "checkbox enable_debug must be 'on' or absent"),
    ({"reset_user_env": ["off"]}, "checkbox reset_user_env must be 'on' or absent"),
]


@pytest.mark.parametrize(("raw", "message"), FORM_REJECTIONS)
def test_form_rejections(raw: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        form(raw)
    assert message in caught.value.message


def test_no_image_available_is_a_503() -> None:
    from lsst_spawner.form.options import OptionsCatalog
    from lsst_spawner.images.model import ImageMenu

    empty = OptionsCatalog(ImageMenu(IMAGE_BASE, complete=False), CATALOG.sizes, "medium")
    with pytest.raises(OptionsError) as caught:
        parse_user_options({}, empty)
    assert caught.value.status == 503


# --- saved options re-used by the hub --------------------------------------------


def test_stale_saved_image_falls_back_to_recommended(caplog: pytest.LogCaptureFixture) -> None:
    saved = {"image": "w_2023_01", "size": "small", "enable_debug": True}
    with pytest.raises(OptionsError, match="not offered"):
        api(saved)  # a fresh request with the same options is refused
    with caplog.at_level(logging.WARNING):
        options = api(saved, reused=True)
    assert options == LabOptions(RECOMMENDED, "small", True, False)
    assert "Saved user option image is no longer valid" in caplog.text
    assert "recommended" in caplog.text


def test_stale_saved_size_and_unknown_keys_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = api({"image": "r23_0_1", "size": "gone", "profile": "x"}, reused=True)
    assert options == LabOptions(R23, "medium", False, False)
    assert "Ignoring unknown saved user options 'profile'" in caplog.text
    assert "Saved user option size is no longer valid" in caplog.text


def test_saved_hostile_options_fall_back_not_through() -> None:
    # The REST API saves user_options before the spawner sees them; a rejected request
    # must not come back through the "re-used" path.
    saved = {"image": "other.registry/x:tag", "enable_debug": "yes", "size": ["small"]}
    assert api(saved, reused=True) == LabOptions(RECOMMENDED, "medium", False, False)


def test_reused_options_never_reset_the_environment_again() -> None:
    assert api({"reset_user_env": True}, reused=True).reset_user_env is False
    assert api({"reset_user_env": True}).reset_user_env is True


# --- the image the lab gets ------------------------------------------------------


def test_lab_image_pinned_by_digest() -> None:
    lab = lab_image(W10)
    assert lab.reference == f"{IMAGE_BASE}:w_2024_10@{DIGEST_W10}"
    assert lab.env == {
        "JUPYTER_IMAGE_SPEC": f"{IMAGE_BASE}:w_2024_10@{DIGEST_W10}",
        "JUPYTER_IMAGE": f"{IMAGE_BASE}:w_2024_10",
        "IMAGE_DESCRIPTION": "Weekly 2024_10",
        "IMAGE_DIGEST": DIGEST_W10,
    }


def test_lab_image_without_known_digest() -> None:
    lab = lab_image(W01)
    assert lab.reference == f"{IMAGE_BASE}:w_2024_01"
    assert lab.env["JUPYTER_IMAGE_SPEC"] == f"{IMAGE_BASE}:w_2024_01"
    assert lab.env["IMAGE_DIGEST"] == ""


def test_lab_options_env_checkboxes() -> None:
    env = lab_options_env(LabOptions(R23, "small", True, True))
    assert env["DEBUG"] == "TRUE"
    assert env["RESET_USER_ENV"] == "TRUE"
    assert "DEBUG" not in lab_options_env(LabOptions(R23, "small"))


def test_size_choices_adapts_other_models() -> None:
    class Size:
        name = "large"
        description = "Large (4 CPU)"

    choices = size_choices(["small", {"name": "medium", "display_name": "Medium"}, Size()])
    assert [(c.name, c.label) for c in choices] == [
        ("small", "small"),
        ("medium", "Medium"),
        ("large", "Large (4 CPU)"),
    ]
    with pytest.raises(ValueError, match="string name"):
        size_choices([{"cpu": 2}])


# --- image classes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_class", "expected"),
    [
        ("recommended", RECOMMENDED),
        ("latest-release", R23),
        ("latest-weekly", W10),
        ("latest-daily", D0203),
    ],
)
def test_image_class_resolves_to_the_newest_offered_image(
    image_class: str, expected: object
) -> None:
    options = api({"image_class": image_class})
    assert options.image == expected
    # Saved as the class, so the next spawn takes the newest image again.
    assert options.to_user_options()["image_class"] == image_class
    assert "image" not in options.to_user_options()


def test_image_class_without_an_offered_image_is_refused_then_falls_back_when_saved() -> None:
    from dataclasses import replace

    from lsst_spawner.form.options import OptionsCatalog

    menu = replace(CATALOG.menu, latest={})
    catalog = OptionsCatalog(menu=menu, sizes=CATALOG.sizes, default_size="medium")
    with pytest.raises(OptionsError, match="no latest-daily image is offered"):
        parse_user_options({"image_class": "latest-daily"}, catalog)
    reused = parse_user_options({"image_class": "latest-daily"}, catalog, reused=True)
    assert reused.image == RECOMMENDED


def test_wrong_cycle_message_names_the_cycle() -> None:
    from dataclasses import replace

    from lsst_spawner.form.options import OptionsCatalog

    menu = replace(CATALOG.menu, cycle=27)
    catalog = OptionsCatalog(menu=menu, sizes=CATALOG.sizes, default_size="medium")
    with pytest.raises(OptionsError, match="only images of SAL cycle 27"):
        parse_user_options({"image": "w_2024_10_c0026.001"}, catalog)
