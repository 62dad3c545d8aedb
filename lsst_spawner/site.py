"""``SiteContext``: what every spawner of one configuration shares, built once per configuration.

JupyterHub makes one spawner per user, all from the same configuration. What
follows from the configuration alone is computed once per configuration
fingerprint (:meth:`~lsst_spawner.config.CheckedConfigurable.config_fingerprint`)
and kept here, not once per user and not in module-level caches:

- whether the configuration was found clean (the checks run until it is);
- the frozen :class:`~lsst_spawner.lab.spec.LabSettings`;
- the image menu cache (shared by every configuration with the same source,
  policy and timing, so one background refresh per registry repository);
- the options catalog (menu plus sizes) validation reads;
- with ``LabMenu.enabled``, the live lab menu (:mod:`lsst_spawner.menu.live`): the
  catalog comes from the menu database's current revision instead;
- the registry's answers about pinned manifests, kept briefly
  (:class:`~lsst_spawner.images.manifest_check.ManifestAnswers`);
- the :class:`~lsst_spawner.kube.retries.RetryPolicy` of Kubernetes requests.

:func:`site_context` gives an object its site; the first call fixes it, so
defaults read later do not change which site it belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from .config import CheckedConfigurable, ConfigError
from .errors import NoImageAvailable
from .form.options import OptionsCatalog, SizeChoice
from .images.cache import CacheSettings, MenuCache, source_cache_key
from .images.manifest_check import ManifestAnswers
from .images.menu import MenuPolicy
from .images.model import ImageMenu
from .images.registry_config import RegistrySourceTraits
from .images.sources import ImageSource
from .images.static import StaticImageSource
from .kube.prepull import Prepuller
from .kube.retries import RetryPolicy
from .lab.sizes import describe_size
from .lab.spec import LabSettings
from .menu.hub import LiveMenus

__all__ = [
    "SITE_LIMIT",
    "MenuTraits",
    "SiteContext",
    "SiteRegistry",
    "build_image_source",
    "forget_sites",
    "image_source_key",
    "registry_source_available",
    "site_context",
]

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


class MenuTraits(Protocol):
    """What the site reads of an object with the image menu traits (``ImageMenuTraits``)."""

    image_source: str
    static_image_base: str
    static_image_tags: list[str]
    static_image_digests: dict[str, str]
    log: Log

    def image_menu_policy(self) -> MenuPolicy: ...
    def image_cache_settings(self) -> CacheSettings: ...


#: At most this many configurations are remembered (tests make many; a hub has one or two).
SITE_LIMIT = 64
#: Where an object keeps its site (one reference per object, set at the first call).
_SITE_ATTRIBUTE = "_lsst_site"


def registry_source_available(obj: object) -> bool:
    """Whether ``obj`` has the registry traits an ``image_source = "registry"`` menu needs."""
    return isinstance(obj, RegistrySourceTraits)


def build_image_source(obj: MenuTraits) -> ImageSource:
    """The image source ``obj.image_source`` names, from ``obj``'s traits."""
    if obj.image_source == "static":
        return StaticImageSource(
            obj.static_image_base, obj.static_image_tags, obj.static_image_digests
        )
    if not isinstance(obj, RegistrySourceTraits):
        raise ConfigError(
            f'LSSTSpawner.image_source is "registry" but {type(obj).__name__} has no '
            "make_registry_source(): mix in RegistrySourceTraits, or set "
            'LSSTSpawner.image_source = "static"'
        )
    return obj.make_registry_source()


def image_source_key(obj: MenuTraits) -> Hashable:
    """What identifies ``obj``'s configured source, so equal configurations share one menu."""
    if obj.image_source == "static":
        return (
            "static",
            obj.static_image_base,
            tuple(obj.static_image_tags),
            tuple(sorted(obj.static_image_digests.items())),
        )
    return ("registry", source_cache_key(build_image_source(obj)))


class SiteContext:
    """Everything one configuration's spawners share; see the module's docstring.

    Each value is computed from the first object that asks for it: objects of
    one site have equal configured values, so any of them gives the same result.
    """

    def __init__(self, fingerprint: Hashable | None, registry: SiteRegistry) -> None:
        self.fingerprint = fingerprint
        self._registry = registry
        #: True once the configuration was checked and found clean.
        self.clean = False
        self._lab_settings: LabSettings | None = None
        self._sizes: tuple[tuple[SizeChoice, ...], str] | None = None
        self._menu_cache: MenuCache | None = None
        self._catalog: OptionsCatalog | None = None
        self._retry: RetryPolicy | None = None
        self._delete_retry: RetryPolicy | None = None
        #: The current revision, its image policy and that policy's image menu cache.
        self._revision_cache: tuple[Any, MenuPolicy, MenuCache] | None = None
        self._manifest_answers: ManifestAnswers | None = None

    def __repr__(self) -> str:
        return f"SiteContext(clean={self.clean}, shared={self.fingerprint is not None})"

    # --- the checks -------------------------------------------------------------

    def ensure_clean(self, obj: CheckedConfigurable) -> None:
        """Check the configuration (every problem, with trait names) until it is found clean.

        Runs ``obj``'s own check entry point (:meth:`raise_for_config_problems`),
        once per clean configuration; a configuration with problems is checked
        every time (a missing directory may appear while the hub runs).
        """
        if self.clean:
            return
        obj.raise_for_config_problems()
        self._registry.lab_menus.check(obj)
        self.clean = self.fingerprint is not None

    # --- frozen settings --------------------------------------------------------

    def lab_settings(self, obj: Any) -> LabSettings:
        """The frozen lab settings (``obj.lab_settings()``), built once."""
        if self._lab_settings is None:
            settings: LabSettings = obj.lab_settings()
            self._lab_settings = settings
        return self._lab_settings

    def form_sizes(self, obj: Any) -> tuple[tuple[SizeChoice, ...], str]:
        """The sizes the form offers and the default one, from the lab settings."""
        if self._sizes is None:
            settings = self.lab_settings(obj)
            choices = tuple(SizeChoice(size.name, describe_size(size)) for size in settings.sizes)
            self._sizes = (choices, settings.default_size)
        return self._sizes

    def options_catalog(self, obj: Any, menu: ImageMenu) -> OptionsCatalog:
        """What options are validated against: ``menu`` and ``obj.form_sizes()`` (one per menu)."""
        catalog = self._catalog
        if catalog is None or catalog.menu is not menu:
            sizes, default_size = obj.form_sizes()
            catalog = OptionsCatalog(menu=menu, sizes=sizes, default_size=default_size)
            self._catalog = catalog
        return catalog

    # --- the menu -----------------------------------------------------------------

    def menu_cache(self, obj: MenuTraits) -> MenuCache:
        """The menu cache of this configuration's source, policy and timing."""
        if self._menu_cache is None:
            self._menu_cache = self._registry.menu_cache(
                (image_source_key(obj), obj.image_menu_policy(), obj.image_cache_settings()),
                lambda: build_image_source(obj),
                log=obj.log,
            )
        return self._menu_cache

    async def lab_menu_catalog(self, obj: Any) -> OptionsCatalog | None:
        """The user's catalog from the lab menu's current revision; ``None`` when the
        menu is off or its database is empty (the traitlets menu applies, as seeded)."""
        live = self._registry.lab_menus.live_menu(obj)
        if live is None:
            return None
        try:
            revision = await live.revision()
        except RuntimeError as error:  # MenuUnavailable: no revision read yet
            raise NoImageAvailable(str(error), field="image") from None
        if revision is None:
            return None
        image_menu = await self.revision_menu_cache(obj, revision).get_menu()
        groups = await self._registry.lab_menus.user_groups(obj, live, revision)
        try:
            return live.catalog(revision, image_menu, groups)
        except ValueError as error:  # MenuUnusable: every profile on a removed node group
            obj.log.error("%s", error)
            raise NoImageAvailable(
                "no lab profile is available right now; ask the hub's admins", field="size"
            ) from None

    def revision_menu_cache(self, obj: MenuTraits, revision: Any) -> MenuCache:
        """The image menu cache under a revision's image policy (the site's cycle and filters
        kept); the cache of the previous policy stops refreshing when the policy changes."""
        from .menu.catalog import image_cache_policy

        kept = self._revision_cache
        if kept is not None and kept[0] is revision:  # the live menu's object while current
            return kept[2]
        policy = image_cache_policy(revision.document, obj.image_menu_policy())
        if kept is not None and kept[1] == policy:
            self._revision_cache = (revision, policy, kept[2])
            return kept[2]
        cache = self._registry.menu_cache(
            (image_source_key(obj), policy, obj.image_cache_settings()),
            lambda: build_image_source(obj),
            log=obj.log,
        )
        if kept is not None and kept[2] is not cache and kept[2] is not self._menu_cache:
            kept[2].cancel_refresh()  # restarted by whoever reads it again
        self._revision_cache = (revision, policy, cache)
        return cache

    def manifest_answers(self, obj: Any) -> ManifestAnswers | None:
        """The registry's answers about pinned manifests, shared by this configuration's
        spawns (``image_manifest_check_max_age``); ``None`` for a source that cannot say."""
        if self._manifest_answers is None:
            check = getattr(self.menu_cache(obj).source, "manifest_exists", None)
            if check is None:
                return None
            self._manifest_answers = ManifestAnswers(check, obj.image_manifest_check_max_age)
        return self._manifest_answers

    def prepuller(self, obj: Any) -> Prepuller:
        """The prepuller of this configuration's menu, namespace and node selection."""
        cache = self.menu_cache(obj)
        settings = obj.prepull_settings()
        return self._registry.prepuller(
            (id(cache), repr(settings)),
            lambda: Prepuller(
                obj.api, settings, cache.get_menu, self.retry_policy(obj), log=obj.log
            ),
        )

    # --- Kubernetes -----------------------------------------------------------------

    def retry_policy(self, obj: Any) -> RetryPolicy:
        """How Kubernetes requests are retried (``kubernetes_*`` traits), logging to ``obj.log``."""
        if self._retry is None:
            policy: RetryPolicy = obj.retry_policy()
            self._retry = policy.with_log(obj.log)
        return self._retry

    def delete_policy(self, obj: Any) -> RetryPolicy:
        """:meth:`retry_policy` with ``lab_delete_timeout`` as its budget: deleting a lab."""
        if self._delete_retry is None:
            self._delete_retry = self.retry_policy(obj).with_budget(obj.lab_delete_timeout)
        return self._delete_retry


class SiteRegistry:
    """The sites of this process by configuration fingerprint, and their menu caches."""

    def __init__(self, limit: int = SITE_LIMIT) -> None:
        self.limit = limit
        self._sites: dict[Hashable, SiteContext] = {}
        self._menu_caches: dict[Hashable, MenuCache] = {}
        #: The lab menu databases of this process, one live view each.
        self.lab_menus = LiveMenus()
        self._prepullers: dict[Hashable, Prepuller] = {}

    def site_for(self, obj: CheckedConfigurable) -> SiteContext:
        """``obj``'s site: the one of its configuration, fixed at the first call."""
        site: SiteContext | None = obj.__dict__.get(_SITE_ATTRIBUTE)
        if site is None:
            key = obj.config_fingerprint()
            site = self._sites.get(key) if key is not None else None
            if site is None:
                site = SiteContext(key, self)
                if key is not None:
                    if len(self._sites) >= self.limit:
                        self._sites.clear()
                    self._sites[key] = site
            obj.__dict__[_SITE_ATTRIBUTE] = site
        return site

    def menu_cache(
        self,
        key: tuple[Hashable, MenuPolicy, CacheSettings],
        make_source: Callable[[], ImageSource],
        *,
        log: Log | None = None,
    ) -> MenuCache:
        """The cache for this source configuration, policy and timing; ``make_source`` is
        called only when there is none yet, so a source (and its connection pool) is
        built once per configuration."""
        cache = self._menu_caches.get(key)
        if cache is None:
            _, policy, settings = key
            cache = self._menu_caches[key] = MenuCache(make_source(), policy, settings, log=log)
        return cache

    def prepuller(self, key: Hashable, make: Callable[[], Prepuller]) -> Prepuller:
        """The prepuller for ``key`` (menu cache and settings), made once."""
        prepuller = self._prepullers.get(key)
        if prepuller is None:
            prepuller = self._prepullers[key] = make()
        return prepuller

    async def close(self) -> None:
        """:meth:`forget`, waiting until the menu caches' refreshes have ended (a process that
        stops: kopf waits 5 s for tasks left running before it exits)."""
        for cache in list(self._menu_caches.values()):
            await cache.close()
        self.forget()

    def forget(self) -> None:
        """Cancel the menu caches' and prepullers' tasks; forget every site (tests, shutdown)."""
        caches = list(self._menu_caches.values())
        self._menu_caches.clear()
        self._sites.clear()
        self.lab_menus.forget()
        for cache in caches:
            cache.cancel_refresh()
        prepullers = list(self._prepullers.values())
        self._prepullers.clear()
        for prepuller in prepullers:
            prepuller.cancel()


#: The process's sites.
SITES = SiteRegistry()


def site_context(obj: CheckedConfigurable) -> SiteContext:
    """The :class:`SiteContext` of ``obj``'s configuration (see :class:`SiteRegistry`)."""
    return SITES.site_for(obj)


async def close_sites() -> None:
    """:func:`forget_sites`, and wait until the menu refreshes have ended (process shutdown)."""
    await SITES.close()


def forget_sites() -> None:
    """Forget every site and stop the menu caches' refreshes (tests, hub shutdown)."""
    SITES.forget()
