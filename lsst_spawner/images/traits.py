"""Traits of the image menu, mixed into ``LSSTSpawner`` (set as ``c.LSSTSpawner.<name>``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta
from typing import Any

from traitlets import Dict, Enum, Int, List, Unicode

from ..config import CheckedConfigurable, ConfigProblem, Duration
from ..grammar import TAG_SYNTAX, is_valid_digest, is_valid_image_name, is_valid_tag
from ..site import build_image_source, image_source_key, registry_source_available, site_context
from .cache import CacheSettings, MenuCache
from .filters import MAX_FILTER_AGE, parse_dropdown_filters
from .menu import MenuPolicy
from .model import ImageMenu, MenuImage
from .sources import ImageSource
from .tags import parse_tag

__all__ = ["ImageMenuTraits"]

_PREFIX = "LSSTSpawner."
_COUNT_TRAITS = (
    ("image_menu_releases", "releases"),
    ("image_menu_weeklies", "weeklies"),
    ("image_menu_dailies", "dailies"),
    ("image_menu_candidates", "candidates"),
    ("image_menu_experimentals", "experimentals"),
)


class ImageMenuTraits(CheckedConfigurable):
    """Where the image menu's tags come from, what it shows, and how it is cached."""

    image_source = Enum(
        ["registry", "static"],
        default_value="registry",
        config=True,
        help=(
            'Where the menu\'s tags come from: "registry" asks the Docker registry configured '
            'by the registry traits; "static" uses static_image_tags (air-gapped sites, demos).'
        ),
    )

    static_image_base = Unicode(
        "",
        config=True,
        help=(
            "The image repository of the static source, without tag, such as "
            '"ghcr.io/lsst-sqre/sciplat-lab". Required when image_source is "static".'
        ),
    )

    static_image_tags = List(
        Unicode(),
        default_value=[],
        config=True,
        help='The tags of the static source, in any order. Required when image_source is "static".',
    )

    static_image_digests = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        default_value={},
        config=True,
        help=(
            "Manifest digests (sha256:...) of some static tags, {tag: digest}. Labs get the "
            "image pinned by digest when it is known, and aliases are resolved through it."
        ),
    )

    image_recommended_tag = Unicode(
        "recommended",
        config=True,
        help=(
            "The tag offered first and preselected. An alias tag (the default) is shown with "
            'the tag it points at, such as "Recommended (Weekly 2024_10)".'
        ),
    )

    image_alias_tags = List(
        Unicode(),
        default_value=["latest", "latest_release", "latest_weekly", "latest_daily"],
        config=True,
        help=(
            "Tags that name another tag (besides the recommended tag): shown as radio choices "
            "after the recommended image, each with the tag whose digest it shares."
        ),
    )

    image_menu_releases = Int(
        1,
        min=0,
        config=True,
        help="How many of the newest releases (r23_0_1) are radio choices.",
    )

    image_menu_weeklies = Int(
        2,
        min=0,
        config=True,
        help="How many of the newest weeklies (w_2024_05) are radio choices.",
    )

    image_menu_dailies = Int(
        3,
        min=0,
        config=True,
        help="How many of the newest dailies (d_2024_02_03) are radio choices.",
    )

    image_menu_candidates = Int(
        0,
        min=0,
        config=True,
        help="How many of the newest release candidates (r23_0_1_rc1) are radio choices.",
    )

    image_menu_experimentals = Int(
        0,
        min=0,
        config=True,
        help="How many of the newest experimental images (``exp_...``) are radio choices.",
    )

    image_pinned_tags = List(
        Unicode(),
        default_value=[],
        config=True,
        help=(
            "Tags always shown as radio choices, after the aliases, when the source lists them "
            "(architecture-specific tags included)."
        ),
    )

    image_cycle = Int(
        None,
        allow_none=True,
        min=0,
        max=999_999_999,
        config=True,
        help=(
            "The SAL XML cycle of a telescope site, such as 27: only images whose tag carries "
            "this cycle (w_2026_09_c0027.003, recommended_c0027) are offered or accepted, and "
            "aliases resolve only among them. None (the default) offers every cycle."
        ),
    )

    image_dropdown_filters = Dict(
        default_value={},
        config=True,
        help=(
            "Filters of the dropdown per kind (release, candidate, weekly, daily, experimental, "
            "unknown), each a dict of number, age ('180d'), cutoff_version ('27.0.0'), "
            "cutoff_date ('2026-01-31') and cutoff_build (the _rsp build); see docs/image-menu."
        ),
    )

    image_dropdown_max_count = Int(
        0,
        min=0,
        config=True,
        help=(
            "The most tags the whole dropdown lists, in menu order (newest of each kind "
            "first), after image_dropdown_filters; 0 for no limit."
        ),
    )

    image_dropdown_max_age = Duration(
        0,
        config=True,
        help=(
            "The dropdown leaves out dated images (weeklies, dailies) older than this, such "
            "as '90d', after image_dropdown_filters (which can set an age per kind). 0 for "
            "no limit."
        ),
    )

    image_menu_cold_start_timeout = Duration(
        "5s",
        config=True,
        help=(
            "How long a form request waits for the first menu after hub start; after that the "
            "form says the list is loading and offers the recommended image."
        ),
    )

    menu_refresh_interval = Duration(
        "5m",
        minimum=1.0,
        config=True,
        help="How often a background task rebuilds the image menu from the image source.",
    )

    image_menu_refresh_timeout = Duration(
        "2m",
        minimum=1.0,
        config=True,
        help=(
            "The longest one background refresh may take (listing tags and resolving digests); "
            "a refresh that takes longer fails and the last menu is kept."
        ),
    )

    image_manifest_check_max_age = Duration(
        "30s",
        minimum=0,
        config=True,
        help=(
            "How long spawns reuse the registry's answer to whether an image's pinned manifest "
            "still exists (asked to fail fast on a deleted image), so a spawn storm makes one "
            "HEAD per image and period; 0 keeps no answer (concurrent spawns still share one)."
        ),
    )

    # --- building blocks -------------------------------------------------------

    def image_menu_policy(self) -> MenuPolicy:
        """The menu policy these traits describe."""
        counts = {field: getattr(self, trait) for trait, field in _COUNT_TRAITS}
        filters, _ = parse_dropdown_filters(self.image_dropdown_filters)
        # An age beyond MAX_FILTER_AGE is a check-config problem; never an overflow here.
        max_age = min(self.image_dropdown_max_age, MAX_FILTER_AGE.total_seconds())
        return MenuPolicy(
            recommended_tag=self.image_recommended_tag,
            alias_tags=tuple(self.image_alias_tags),
            pinned_tags=tuple(self.image_pinned_tags),
            dropdown_max_count=self.image_dropdown_max_count,
            dropdown_max_age=timedelta(seconds=max_age),
            dropdown_filters=tuple(sorted(filters.items())),
            cycle=self.image_cycle,
            **counts,
        )

    def image_cache_settings(self) -> CacheSettings:
        """The menu cache's timing these traits describe."""
        return CacheSettings(
            refresh_interval=self.menu_refresh_interval,
            cold_start_timeout=self.image_menu_cold_start_timeout,
            refresh_timeout=self.image_menu_refresh_timeout,
        )

    def make_image_source(self) -> ImageSource:
        """Build the image source that ``image_source`` names."""
        return build_image_source(self)

    def image_source_key(self) -> Hashable:
        """What identifies the configured source, so equal configurations share one menu."""
        return image_source_key(self)

    def image_menu_cache(self) -> MenuCache:
        """This configuration's menu cache (its :class:`~lsst_spawner.site.SiteContext`'s)."""
        return site_context(self).menu_cache(self)

    def image_manifest_check(self, image: MenuImage) -> Callable[[], Awaitable[bool]] | None:
        """Asks the menu's registry whether ``image``'s pinned manifest still exists (at a
        spawn, to fail fast on a deleted image), or reuses an answer younger than
        ``image_manifest_check_max_age``; ``None`` without a digest or a registry."""
        answers = site_context(self).manifest_answers(self)
        digest = image.digest
        if answers is None or digest is None:
            return None

        async def exists() -> bool:
            return await answers.exists(digest)

        return exists

    async def get_menu(self) -> ImageMenu:
        """The shared menu: the cached one, or on a cold start a bounded wait for it.

        With prepull on, each image carries its presence on the lab nodes and the
        radio rule applies (:meth:`PrepullTraits.menu_with_presence`).
        """
        menu = await self.image_menu_cache().get_menu()
        with_presence = getattr(self, "menu_with_presence", None)
        return with_presence(menu) if with_presence is not None else menu

    # --- checks -----------------------------------------------------------------

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()

        def problem(trait: str, message: str) -> None:
            problems.append(ConfigProblem(_PREFIX + trait, message))

        def check_tags(trait: str, tags: list[Any]) -> None:
            seen: set[str] = set()
            for index, tag in enumerate(tags):
                if not is_valid_tag(tag):
                    problem(f"{trait}[{index}]", f"{tag!r} is not a Docker tag ({TAG_SYNTAX})")
                elif tag in seen:
                    problem(f"{trait}[{index}]", f"{tag!r} is listed twice")
                seen.add(tag)

        if not is_valid_tag(self.image_recommended_tag):
            problem(
                "image_recommended_tag",
                f"{self.image_recommended_tag!r} is not a Docker tag ({TAG_SYNTAX})",
            )
        check_tags("image_alias_tags", self.image_alias_tags)
        check_tags("image_pinned_tags", self.image_pinned_tags)
        self._dropdown_problems(problem)
        self._cycle_problems(problem)

        if self.image_source == "static":
            base = self.static_image_base
            if not base:
                problem("static_image_base", 'is required when image_source is "static"')
            elif not is_valid_image_name(base):
                problem(
                    "static_image_base",
                    f"{base!r} must be a repository without tag or digest, "
                    "such as 'ghcr.io/lsst-sqre/sciplat-lab'",
                )
            if not self.static_image_tags:
                problem(
                    "static_image_tags", 'must list at least one tag when image_source is "static"'
                )
            check_tags("static_image_tags", self.static_image_tags)
            listed = set(self.static_image_tags)
            for tag, digest in self.static_image_digests.items():
                if tag not in listed:
                    problem(
                        f"static_image_digests[{tag!r}]", "names a tag not in static_image_tags"
                    )
                if not is_valid_digest(digest):
                    problem(
                        f"static_image_digests[{tag!r}]",
                        f"{digest!r} is not a manifest digest (sha256: and 64, or sha512: "
                        "and 128, lower-case hex digits)",
                    )
            if self.static_image_tags and self.image_recommended_tag not in listed:
                problem(
                    "image_recommended_tag",
                    f"{self.image_recommended_tag!r} is not in static_image_tags, "
                    "so the recommended image would not exist",
                )
        elif not registry_source_available(self):
            problem(
                "image_source",
                f'"registry" needs make_registry_source() (RegistrySourceTraits), which '
                f'{type(self).__name__} lacks; mix it in or use "static"',
            )
        return problems

    def _dropdown_problems(self, problem: Any) -> None:
        _, found = parse_dropdown_filters(self.image_dropdown_filters)
        for where, message in found:
            problem(f"image_dropdown_filters{where}", message)

    def _cycle_problems(self, problem: Any) -> None:
        """With image_cycle set, configured tags of another cycle would never be offered."""
        cycle = self.image_cycle
        if cycle is None:
            return
        aliases = self.image_menu_policy().aliases
        wanted = f"{cycle:04d}"
        recommended = parse_tag(self.image_recommended_tag, aliases)
        if recommended.cycle != cycle:
            has = "no SAL cycle" if recommended.cycle is None else f"cycle {recommended.cycle}"
            problem(
                "image_recommended_tag",
                f"{self.image_recommended_tag!r} has {has}, so with image_cycle = {cycle} it "
                f"would never be offered; use a tag of the cycle, such as "
                f"'{recommended.base or 'recommended'}_c{wanted}'",
            )
        for trait in ("image_alias_tags", "image_pinned_tags"):
            for index, tag in enumerate(getattr(self, trait)):
                item = parse_tag(tag, aliases)
                if item.cycle is not None and item.cycle != cycle:
                    problem(
                        f"{trait}[{index}]",
                        f"{tag!r} is of SAL cycle {item.cycle}, so with image_cycle = {cycle} "
                        "it would never be offered",
                    )
                elif item.cycle is None and trait == "image_pinned_tags":
                    problem(
                        f"{trait}[{index}]",
                        f"{tag!r} has no SAL cycle, so with image_cycle = {cycle} it would "
                        "never be offered",
                    )
