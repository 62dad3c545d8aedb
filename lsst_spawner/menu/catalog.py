"""The lab menu as the spawner offers it to one user: images, profiles and retired images (pure).

A revision of the menu becomes the :class:`~lsst_spawner.form.options.OptionsCatalog`
that both the options form and the validation of user options read:

- the image menu is built by the image cache under :func:`image_cache_policy` (the
  revision's counts, pins and aliases, its default image as the recommended tag, its
  shown curated images pinned so they are listed; the site's SAL cycle and dropdown
  filters kept), then :func:`build_menu_catalog` takes out what this user may not
  have: hidden and deprecated images, and curated images of groups they are not in;
- the profiles this user's groups see replace ``lab_sizes``, each carrying its limits,
  guarantees and node group (:class:`~lsst_spawner.lab.sizes.LabProfile`);
- images saved options may still name are :class:`~lsst_spawner.form.options.RetiredImage`:
  a deprecated one goes to its redirect target, a hidden one to the default image.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace

from ..form.options import OptionsCatalog, RetiredImage, SizeChoice
from ..images.menu import MenuPolicy
from ..images.model import ImageMenu, MenuImage, TagKind
from ..images.tags import parse_tag
from ..lab.sizes import LabProfile, format_memory
from .model import CuratedImage, ImageState, MenuDocument, NodeGroup, Profile
from .visibility import visible_profiles

__all__ = [
    "MenuUnusable",
    "build_menu_catalog",
    "describe_profile",
    "image_cache_policy",
    "lab_profile",
    "menu_groups",
    "size_choice",
]


class MenuUnusable(ValueError):
    """A revision that offers a user nothing (every visible profile on a missing node group)."""


def image_cache_policy(document: MenuDocument, site: MenuPolicy) -> MenuPolicy:
    """The image menu's policy under ``document``, from the site's traitlets policy.

    The site keeps what menu admins do not decide: the SAL cycle and the dropdown
    filters. Shown curated images are pinned, so each is listed as a choice.
    """
    own = document.menu_policy()
    pinned = list(own.pinned_tags)
    for image in document.images:
        shown = image.state is ImageState.SHOWN
        if shown and image.tag != own.recommended_tag and image.tag not in pinned:
            pinned.append(image.tag)
    return replace(
        site,
        recommended_tag=own.recommended_tag,
        alias_tags=own.alias_tags,
        releases=own.releases,
        weeklies=own.weeklies,
        dailies=own.dailies,
        candidates=own.candidates,
        experimentals=own.experimentals,
        pinned_tags=tuple(pinned),
        dropdown_max_count=own.dropdown_max_count,
        dropdown_max_age=own.dropdown_max_age,
    )


def menu_groups(document: MenuDocument) -> frozenset[str]:
    """Every group the document restricts an image or a profile to."""
    return frozenset(
        [group for image in document.images for group in image.groups]
        + [group for profile in document.profiles for group in profile.groups]
    )


def lab_profile(profile: Profile, group: NodeGroup | None) -> LabProfile:
    """What the lab builders need of a profile: its resources and its node group's scheduling."""
    if group is None:
        scheduling: dict[str, object] = {}
    else:
        scheduling = {
            "node_selector": tuple(sorted(group.node_selector.items())),
            "tolerations_json": tuple(json.dumps(t, sort_keys=True) for t in group.tolerations),
            "affinity_json": json.dumps(group.affinity, sort_keys=True) if group.affinity else "",
            "extended_resources": tuple(sorted(group.extended_resources.items())),
        }
    return LabProfile(
        name=profile.name,
        cpu_limit=profile.cpu_limit_cores,
        cpu_guarantee=profile.cpu_guarantee_cores,
        memory_limit=profile.memory_limit_bytes,
        memory_guarantee=profile.memory_guarantee_bytes,
        **scheduling,  # type: ignore[arg-type]
    )


def describe_profile(profile: Profile, group: NodeGroup | None) -> str:
    """A profile as users read it in the form: ``GPU (8 CPU, 32Gi RAM, 1 nvidia.com/gpu)``."""
    cpu = f"{profile.cpu_limit_cores:g}"
    parts = [f"{cpu} CPU", f"{format_memory(profile.memory_limit_bytes)} RAM"]
    if group is not None:
        parts += [f"{count} {name}" for name, count in sorted(group.extended_resources.items())]
    text = f"{profile.display_name or profile.name} ({', '.join(parts)})"
    return f"{text}: {profile.description}" if profile.description else text


def size_choice(profile: Profile, node_groups: Mapping[str, NodeGroup]) -> SizeChoice | None:
    """The form's choice of ``profile``; ``None`` when its node group is not configured."""
    group = node_groups.get(profile.node_group) if profile.node_group else None
    if profile.node_group and group is None:
        return None
    return SizeChoice(profile.name, describe_profile(profile, group), lab_profile(profile, group))


def _offered_to(image: CuratedImage, groups: frozenset[str]) -> bool:
    visible = not image.groups or not groups.isdisjoint(image.groups)
    return image.state is ImageState.SHOWN and visible


def _retired(document: MenuDocument, groups: frozenset[str]) -> dict[str, RetiredImage]:
    default = document.default_image()
    default_tag = default.tag if default is not None else ""
    retired: dict[str, RetiredImage] = {}
    for image in document.images:
        if _offered_to(image, groups):
            continue
        if image.state is ImageState.DEPRECATED and image.redirect_to is not None:
            retired[image.tag] = RetiredImage(image.redirect_to, "deprecated")
        else:
            retired[image.tag] = RetiredImage(default_tag, "no longer offered")
    return retired


def _filter_image_menu(
    menu: ImageMenu, removed: Iterable[str], names: Mapping[str, str]
) -> ImageMenu:
    """``menu`` without the ``removed`` tags and with curated display names; ``menu`` itself
    when neither changes anything (so its rendered dropdown stays cached)."""
    gone = {tag for tag in removed if menu.find(tag) is not None}
    renamed = {
        tag: name
        for tag, name in names.items()
        if (i := menu.find(tag)) is not None and i.display_name != name
    }
    if not gone and not renamed:
        return menu

    def keep(images: tuple[MenuImage, ...]) -> tuple[MenuImage, ...]:
        return tuple(
            replace(image, display_name=renamed[image.tag]) if image.tag in renamed else image
            for image in images
            if image.tag not in gone
        )

    radio, dropdown, aliased = keep(menu.radio), keep(menu.dropdown), keep(menu.aliased)
    offered = (*radio, *dropdown, *aliased)
    latest: dict[TagKind, MenuImage] = {}
    for kind in menu.latest:
        candidates = [image for image in offered if image.kind is kind]
        if candidates:
            latest[kind] = min(candidates, key=lambda image: parse_tag(image.tag).sort_key)
    recommended = None
    if menu.recommended is not None and menu.recommended.tag not in gone:
        recommended = next(
            (image for image in radio if image.tag == menu.recommended.tag), menu.recommended
        )
    return replace(
        menu,
        radio=radio,
        dropdown=dropdown,
        aliased=aliased,
        recommended=recommended,
        latest=latest,
        _by_tag={},
    )


def build_menu_catalog(
    document: MenuDocument,
    node_groups: Mapping[str, NodeGroup],
    image_menu: ImageMenu,
    user_groups: Iterable[str],
    *,
    revision: int | None = None,
) -> OptionsCatalog:
    """The catalog of one user: ``image_menu`` (built under :func:`image_cache_policy`)
    and the profiles, both as the user's groups see them.

    A profile whose node group is no longer configured is not offered (the infra
    admins removed it); :class:`MenuUnusable` when that leaves the user nothing.
    """
    groups = frozenset(user_groups)
    retired = _retired(document, groups)
    names = {
        image.tag: image.display_name
        for image in document.images
        if image.display_name and _offered_to(image, groups)
    }
    menu = _filter_image_menu(image_menu, retired, names)
    sizes = [
        size
        for profile in visible_profiles(document, groups)
        if (size := size_choice(profile, node_groups)) is not None
    ]
    if not sizes:
        raise MenuUnusable(
            f"lab menu revision {revision}: no profile can be offered (their node groups are "
            "not among LabMenu.node_groups)"
        )
    default = document.default_profile()
    names_offered = [size.name for size in sizes]
    default_size = default.name if default and default.name in names_offered else names_offered[0]
    return OptionsCatalog(
        menu=menu,
        sizes=tuple(sizes),
        default_size=default_size,
        retired=retired,
        revision=revision,
    )
