"""Parse and validate user options: one allow-list for the HTML form and the REST API.

User options reach the spawner two ways: the options form (``options_from_form``
receives a dict of lists of strings) and the REST API (``POST
/hub/api/users/{name}/server`` with a JSON ``user_options`` object, stored as
is). Both end up in :func:`parse_user_options`, which accepts only what the
menu and the site configuration offer and returns a :class:`LabOptions`, or
raises :class:`OptionsError` with a message for the user.

The canonical JSON shape (what REST clients send and what the form is turned
into before JupyterHub saves it)::

    {"image": "w_2024_10", "size": "medium", "enable_debug": false, "reset_user_env": false}

Every key is optional: an empty object means the recommended image, the
default size and both checkboxes off. Instead of ``image`` a client (a bot,
say) may give ``image_class``: ``recommended``, ``latest-release``,
``latest-weekly`` or ``latest-daily``, resolved at each spawn to the newest
offered image of that kind (Nublado's image classes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..grammar import MAX_REFERENCE_LENGTH, ReferenceSyntaxError, parse_image_reference
from ..images.model import ImageMenu, MenuImage, TagKind
from ..lab.sizes import SIZE_NAME_PATTERN, LabProfile
from .catalog import OptionsCatalog, RetiredImage, SizeChoice

__all__ = [
    "DROPDOWN_CHOICE",
    "FORM_FIELDS",
    "IMAGE_CLASSES",
    "MAX_VALUE_LENGTH",
    "OPTION_KEYS",
    "LabOptions",
    "OptionsCatalog",
    "OptionsError",
    "OptionsOrigin",
    "RetiredImage",
    "SizeChoice",
    "form_data_to_user_options",
    "parse_user_options",
]

#: Keys of the canonical JSON ``user_options``.
OPTION_KEYS = ("image", "image_class", "size", "enable_debug", "reset_user_env")
#: The image classes of ``image_class`` and the kind each picks the newest of
#: (``None``: the recommended image).
IMAGE_CLASSES: dict[str, TagKind | None] = {
    "recommended": None,
    "latest-release": TagKind.RELEASE,
    "latest-weekly": TagKind.WEEKLY,
    "latest-daily": TagKind.DAILY,
}
#: Field names of the HTML form (``image_list`` is the radio, ``image_dropdown`` the select).
FORM_FIELDS = ("image_list", "image_dropdown", "size", "enable_debug", "reset_user_env")
#: Fields JupyterHub itself may add to a form submission; ignored, never passed on.
_HUB_FORM_FIELDS = frozenset({"_xsrf"})
#: Radio value meaning "use the image chosen in the dropdown". It contains ``:``,
#: which no Docker tag can, so it never collides with a real tag.
DROPDOWN_CHOICE = "::dropdown"
#: No option value may be longer than this (a full reference with a sha512 digest fits).
MAX_VALUE_LENGTH = MAX_REFERENCE_LENGTH

_SIZE_NAME = SIZE_NAME_PATTERN  # the grammar check-config applies to LSSTSpawner.lab_sizes
_CHECKBOXES = ("enable_debug", "reset_user_env")


class OptionsOrigin(StrEnum):
    """Where a set of user options came from; decides the accepted shapes."""

    #: Form data: a dict of lists of strings (``options_from_form``).
    FORM = "form"
    #: JSON ``user_options`` from the REST API, or saved options from the hub database.
    API = "api"


class OptionsError(ValueError):
    """User options the spawner will not accept.

    ``message`` is meant for the user (it is shown in the form or returned by
    the REST API) and names the field; ``status`` is the HTTP status the
    spawner answers with.
    """

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass(frozen=True)
class LabOptions:
    """Validated user options: what the lab is started with."""

    image: MenuImage
    size: str
    enable_debug: bool = False
    reset_user_env: bool = False
    #: The image class asked for, if any: saved as such, so the next spawn picks
    #: the newest image of the class again.
    image_class: str | None = None
    #: The lab menu profile of :attr:`size` (``None``: a configured size).
    profile: LabProfile | None = None

    def to_user_options(self) -> dict[str, Any]:
        """The canonical JSON form, as JupyterHub saves it for the next spawn."""
        chosen = (
            {"image_class": self.image_class} if self.image_class else {"image": self.image.tag}
        )
        return {
            **chosen,
            "size": self.size,
            "enable_debug": self.enable_debug,
            "reset_user_env": self.reset_user_env,
        }


def _shown(value: object, limit: int = 60) -> str:
    """A short, quoted rendition of a user-supplied value for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the HTML form -------------------------------------------------------------


def form_data_to_user_options(form_data: Mapping[str, object]) -> dict[str, Any]:
    """Turn HTML form data (a dict of lists of strings) into canonical JSON options.

    Strict: each field must arrive at most once, as a list holding one string;
    checkboxes are ``"on"`` or absent; unknown fields are rejected. Values are
    not checked against the menu here, :func:`parse_user_options` does that.
    """
    values: dict[str, str] = {}
    for key, raw in form_data.items():
        if key in _HUB_FORM_FIELDS:
            continue
        if key not in FORM_FIELDS:
            raise OptionsError(f"unknown form field {_shown(key)}", field=str(key))
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise OptionsError(f"form field {key} must be a list of strings", field=key)
        if len(raw) != 1:
            raise OptionsError(
                f"form field {key} must have exactly one value, not {len(raw)}", field=key
            )
        values[key] = raw[0]

    options: dict[str, Any] = {}
    choice = values.get("image_list")
    if choice == DROPDOWN_CHOICE:
        dropdown = values.get("image_dropdown", "")
        if not dropdown:
            raise OptionsError("choose an image from the list of other images", field="image")
        options["image"] = dropdown
    elif choice is not None:
        options["image"] = choice
    if "size" in values:
        options["size"] = values["size"]
    for box in _CHECKBOXES:
        if box in values:
            if values[box] != "on":
                raise OptionsError(
                    f"checkbox {box} must be 'on' or absent, not {_shown(values[box])}", field=box
                )
            options[box] = True
        else:
            options[box] = False
    return options


# --- validation ----------------------------------------------------------------


def _check_string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise OptionsError(f"{key} must be a string, not {type(value).__name__}", field=key)
    if not value:
        raise OptionsError(f"{key} must not be empty", field=key)
    if len(value) > MAX_VALUE_LENGTH:
        raise OptionsError(
            f"{key} is {len(value)} characters long; at most {MAX_VALUE_LENGTH} are allowed",
            field=key,
        )
    return value


def _find_by_digest(menu: ImageMenu, digest: str) -> MenuImage | None:
    candidates: list[MenuImage] = list(menu.offered)
    if menu.recommended is not None:
        candidates.append(menu.recommended)
    for image in candidates:
        if image.digest == digest:
            return image
    return None


def resolve_image(menu: ImageMenu, value: object) -> MenuImage:
    """Return the offered image ``value`` names, or raise :class:`OptionsError`.

    ``value`` may be a tag (``w_2024_10``), a reference to the menu's
    repository (``{image_base}:w_2024_10``), or either of these or the bare
    repository followed by ``@sha256:<digest>`` or ``@sha512:<digest>``
    (:func:`lsst_spawner.grammar.parse_image_reference`); the digest must be
    the known digest of an offered tag.
    """
    text = _check_string("image", value)
    try:
        reference = parse_image_reference(text)
    except ReferenceSyntaxError as error:
        raise OptionsError(
            f"image {_shown(text)} is not a valid tag or image reference: {error}",
            field="image",
        ) from None
    if reference.name and reference.name != menu.image_base:
        raise OptionsError(
            f"image {_shown(text)} is not from this hub's image repository {menu.image_base}",
            field="image",
        )
    tag, digest = reference.tag, reference.digest
    if tag is None:
        if digest is None:
            raise OptionsError(f"image {_shown(text)} names no tag and no digest", field="image")
        found = _find_by_digest(menu, digest)
        if found is None:
            raise OptionsError(
                f"digest {digest} is not the digest of any image offered", field="image"
            )
        return found

    image = menu.find(tag)
    if image is None:
        cycle = f" (this hub offers only images of SAL cycle {menu.cycle})" if menu.cycle else ""
        raise OptionsError(f"image tag {tag} is not offered{cycle}", field="image")
    if digest is not None and image.digest != digest:
        if image.digest is None:
            raise OptionsError(
                f"the digest of image tag {tag} is not known, so {digest} cannot be checked; "
                "choose the image by tag",
                field="image",
            )
        raise OptionsError(f"digest {digest} is not the digest of image tag {tag}", field="image")
    return image


def _recommended(menu: ImageMenu) -> MenuImage:
    if menu.recommended is not None:
        return menu.recommended
    if menu.radio:
        return menu.radio[0]
    raise OptionsError(
        "no image is available yet; try again in a minute", field="image", status=503
    )


def resolve_image_class(menu: ImageMenu, value: object) -> MenuImage:
    """The image an ``image_class`` names now: the recommended or newest offered one."""
    if not isinstance(value, str) or value not in IMAGE_CLASSES:
        raise OptionsError(
            f"image_class {_shown(value)} is not one of {', '.join(IMAGE_CLASSES)}",
            field="image_class",
        )
    kind = IMAGE_CLASSES[value]
    if kind is None:
        return _recommended(menu)
    image = menu.latest.get(kind)
    if image is None:
        raise OptionsError(f"no {value} image is offered", field="image_class")
    return image


def _saved_tag(value: object) -> str | None:
    """The tag an image option names, if it is one (for retired-image lookups only)."""
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        return None
    try:
        return parse_image_reference(value).tag
    except ReferenceSyntaxError:
        return None


def resolve_catalog_image(catalog: OptionsCatalog, value: object) -> MenuImage:
    """:func:`resolve_image`, saying so when the lab menu hid or deprecated the image."""
    try:
        return resolve_image(catalog.menu, value)
    except OptionsError as error:
        tag = _saved_tag(value)
        retired = catalog.retired.get(tag) if tag is not None else None
        if retired is None or error.status != 400:
            raise
        raise OptionsError(
            f"image tag {tag} is {retired.reason}; choose another image, such as {retired.target}",
            field="image",
        ) from None


def redirected_image(catalog: OptionsCatalog, value: object) -> MenuImage:
    """Where saved options naming an image no longer offered go: its redirect target, else the
    recommended image."""
    tag = _saved_tag(value)
    retired = catalog.retired.get(tag) if tag is not None else None
    target = catalog.menu.find(retired.target) if retired is not None else None
    return target if target is not None else _recommended(catalog.menu)


def _resolve_size(catalog: OptionsCatalog, value: object) -> str:
    text = _check_string("size", value)
    if text in catalog.over_quota:
        raise OptionsError(
            f"size {_shown(text)} is beyond your quota; choose one of "
            f"{', '.join(catalog.size_names())}",
            field="size",
        )
    if not _SIZE_NAME.fullmatch(text) or text not in catalog.size_names():
        raise OptionsError(
            f"size {_shown(text)} is not one of {', '.join(catalog.size_names())}", field="size"
        )
    return text


def _resolve_checkbox(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise OptionsError(f"{key} must be true or false, not {_shown(value)}", field=key)
    return value


def parse_user_options(
    raw: object,
    catalog: OptionsCatalog,
    *,
    origin: OptionsOrigin = OptionsOrigin.API,
    reused: bool = False,
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> LabOptions:
    """Validate user options against the menu and the sizes; return :class:`LabOptions`.

    ``origin`` says the shape: form data (dict of lists of strings) or JSON.
    A fresh request (``reused=False``) is an allow-list: any unknown key or
    value outside the menu and the sizes raises :class:`OptionsError`.

    Saved options that JupyterHub re-uses (``reused=True``, the user asked for
    nothing this time) may have gone stale since they were saved: a tag
    removed from the menu, a size removed from the config. Each field that no
    longer validates falls back to its default (the recommended image, the
    default size) with a warning, instead of failing the spawn. A reused
    ``reset_user_env`` is never honoured: resetting someone's environment
    takes a fresh request each time.
    """
    logger = log or logging.getLogger(__name__)
    if not isinstance(raw, Mapping):
        raise OptionsError("user options must be an object")
    options: Mapping[str, object]
    options = form_data_to_user_options(raw) if origin is OptionsOrigin.FORM else raw

    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown and not reused:
        raise OptionsError(
            f"unknown option {_shown(unknown[0])}; allowed options are {', '.join(OPTION_KEYS)}",
            field=unknown[0],
        )
    if unknown:
        logger.warning("Ignoring unknown saved user options %s", ", ".join(map(_shown, unknown)))

    def field(key: str, resolve: Any, default: Any) -> Any:
        if key not in options:
            return default() if callable(default) else default
        try:
            return resolve(options[key])
        except OptionsError as error:
            if not reused or error.status != 400:
                raise
            fallback = default() if callable(default) else default
            logger.warning(
                "Saved user option %s is no longer valid (%s); using %s instead",
                key,
                error.message,
                getattr(fallback, "tag", fallback),
            )
            return fallback

    if "image" in options and "image_class" in options and not reused:
        raise OptionsError("give either image or image_class, not both", field="image")
    image_class: str | None = None
    image: MenuImage
    if "image_class" in options and "image" not in options:
        image = field(
            "image_class",
            lambda v: resolve_image_class(catalog.menu, v),
            lambda: _recommended(catalog.menu),
        )
        raw_class = options["image_class"]
        if isinstance(raw_class, str) and raw_class in IMAGE_CLASSES:
            image_class = raw_class
    else:
        image = field(
            "image",
            lambda v: resolve_catalog_image(catalog, v),
            lambda: redirected_image(catalog, options.get("image")),
        )
    size: str = field("size", lambda v: _resolve_size(catalog, v), catalog.default_size)
    enable_debug: bool = field(
        "enable_debug", lambda v: _resolve_checkbox("enable_debug", v), False
    )
    reset_user_env: bool = field(
        "reset_user_env", lambda v: _resolve_checkbox("reset_user_env", v), False
    )
    if reused and reset_user_env:
        logger.info("Not resetting the user environment again for re-used saved options")
        reset_user_env = False
    return LabOptions(
        image=image,
        size=size,
        enable_debug=enable_debug,
        reset_user_env=reset_user_env,
        image_class=image_class,
        profile=catalog.profile(size),
    )


def size_choices(sizes: Sequence[object]) -> tuple[SizeChoice, ...]:
    """Adapt configured sizes to :class:`SizeChoice`.

    Accepts :class:`SizeChoice`, strings, mappings with ``name`` (and
    optionally ``display_name``, ``display`` or ``description``), or objects
    with such attributes, so the form does not depend on how sizes are
    modelled elsewhere.
    """
    result: list[SizeChoice] = []
    for size in sizes:
        if isinstance(size, SizeChoice):
            result.append(size)
            continue
        if isinstance(size, str):
            result.append(SizeChoice(size))
            continue
        get = size.get if isinstance(size, Mapping) else lambda k, s=size: getattr(s, k, None)
        name = get("name")
        if not isinstance(name, str):
            raise ValueError(f"a lab size needs a string name, not {size!r}")
        display = ""
        for key in ("display_name", "display", "description"):
            text = get(key)
            if isinstance(text, str) and text:
                display = text
                break
        result.append(SizeChoice(name, display))
    return tuple(result)
