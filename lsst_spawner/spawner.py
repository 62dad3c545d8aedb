"""LSSTSpawner: KubeSpawner for the science platform. Traits and hooks only; work is delegated."""

from __future__ import annotations

import copy
import json
from typing import Any

from kubespawner import KubeSpawner
from tornado.web import HTTPError
from traitlets import default

from .config import CheckedConfigurable
from .form.image import lab_options_env
from .form.options import (
    LabOptions,
    OptionsCatalog,
    OptionsError,
    OptionsOrigin,
    SizeChoice,
    parse_user_options,
)
from .form.render import render_options_form
from .form.traits import OptionsFormTraits
from .images.traits import ImageMenuTraits
from .lab.sizes import describe_size
from .lab.traits import LabTraits

__all__ = ["LSSTSpawner"]


class LSSTSpawner(OptionsFormTraits, ImageMenuTraits, LabTraits, CheckedConfigurable, KubeSpawner):
    """Spawns science platform labs on Kubernetes as the user's own POSIX identity.

    Its own traits come from mixins, one per capability, listed before
    ``CheckedConfigurable`` in the bases; each is documented in the trait
    reference and checked by ``lsst-spawner check-config``.
    """

    # --- image menu, options form and user options ---------------------------
    # (lsst_spawner.images, lsst_spawner.form)
    #
    # The menu comes from ``await self.get_menu()`` (the image menu mixin), the
    # sizes from :meth:`form_sizes`. User options are validated as an
    # allow-list by ``lsst_spawner.form.options`` in ``apply_user_options``
    # (JupyterHub 5.3+) and again, for older hubs and sites that replace that
    # hook, in ``load_user_options``, which KubeSpawner calls first thing in
    # ``start()``, before any Kubernetes request.

    #: The validated options of the current spawn; ``None`` before validation.
    lab_options: LabOptions | None = None
    #: Canonical options produced by the form this spawn (a fresh request).
    _form_options: dict[str, Any] | None = None
    #: ``(user_options, result)`` validated by ``apply_user_options`` for ``start()``.
    _validated_options: tuple[dict[str, Any], LabOptions] | None = None

    def form_sizes(self) -> tuple[tuple[SizeChoice, ...], str]:
        """The sizes the form offers (from ``lab_sizes``) and the default one."""
        settings = self.lab_settings_cached()
        sizes = tuple(SizeChoice(size.name, describe_size(size)) for size in settings.sizes)
        return sizes, settings.default_size

    async def options_catalog(self) -> OptionsCatalog:
        """The menu (from the cache, never the registry) and the sizes to validate against."""
        menu = await self.get_menu()
        sizes, default_size = self.form_sizes()
        return OptionsCatalog(menu=menu, sizes=sizes, default_size=default_size)

    @default("options_form")
    def _lsst_options_form_default(self) -> Any:
        return self.render_options_form

    async def render_options_form(self, spawner: Any = None) -> str:
        """The options form's HTML (JupyterHub calls ``options_form(spawner)``)."""
        catalog = await self.options_catalog()
        return render_options_form(
            catalog,
            self.user_options,
            template_path=self.options_template_path,
            template_name=self.options_template_name,
        )

    @default("options_from_form")
    def _lsst_options_from_form_default(self) -> Any:
        return self.lab_options_from_form

    async def lab_options_from_form(self, form_data: dict[str, Any]) -> dict[str, Any]:
        """Validate form data; return the canonical ``user_options`` JupyterHub saves.

        A rejected form is answered with a 400 and the form again, showing the message.
        """
        catalog = await self.options_catalog()
        try:
            options = parse_user_options(
                form_data, catalog, origin=OptionsOrigin.FORM, log=self.log
            )
        except OptionsError as error:
            raise HTTPError(error.status, error.message) from None
        user_options = options.to_user_options()
        self._form_options = copy.deepcopy(user_options)
        return user_options

    def _options_are_fresh(self) -> bool:
        """Did this spawn's request supply the options, or does the hub re-use saved ones?"""
        if self._form_options is not None and self._form_options == self.user_options:
            return True
        return _api_request_supplied_options(getattr(self, "handler", None))

    async def validate_user_options(self) -> LabOptions:
        """Validate ``self.user_options``; set :attr:`lab_options` and the pod's image.

        Raises ``tornado.web.HTTPError`` (400, or 503 with no image available)
        with a message for the user. Saved options re-used by the hub fall back
        to defaults field by field, with a warning, when they went stale.
        """
        catalog = await self.options_catalog()
        try:
            options = parse_user_options(
                self.user_options,
                catalog,
                origin=OptionsOrigin.API,
                reused=not self._options_are_fresh(),
                log=self.log,
            )
        except OptionsError as error:
            self.log.warning("Rejected user options for %s: %s", self._log_name, error.message)
            raise HTTPError(error.status, error.message) from None
        self._form_options = None
        self.lab_options = options
        self.image = options.image.pinned_reference
        return options

    @default("apply_user_options")
    def _lsst_apply_user_options_default(self) -> Any:
        return self._apply_lab_options

    async def _apply_lab_options(self, spawner: Any, user_options: dict[str, Any]) -> None:
        options = await self.validate_user_options()
        self._validated_options = (copy.deepcopy(dict(self.user_options)), options)

    async def load_user_options(self) -> None:
        """Validate user options at the start of ``start()``, before any Kubernetes request.

        Replaces KubeSpawner's ``profile_list`` handling: the menu is the form.
        Re-uses the result of ``apply_user_options`` from this same spawn.
        """
        validated, self._validated_options = self._validated_options, None
        if validated is not None and validated[0] == self.user_options:
            self.lab_options = validated[1]
            self.image = validated[1].image.pinned_reference
            return
        await self.validate_user_options()

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        if self.lab_options is not None:
            env.update(lab_options_env(self.lab_options))
        return env

    # --- lab objects: identity, NSS files, secrets, volumes, sizes -----------
    # (lsst_spawner.lab)

    # --- Kubernetes I/O, progress and cleanup ---------------------------------
    # (lsst_spawner.kube)


def _api_request_supplied_options(handler: Any) -> bool:
    """True when ``handler`` is a REST API spawn request that carried ``user_options``.

    Mirrors JupyterHub's reading of the body: ``{"user_options": {...}}``, or
    (backward compatible) a body without ``user_options`` and ``display_name``
    that is the options itself. No body, ``{}`` or ``"user_options": null``
    means the hub re-uses the saved options.
    """
    if handler is None:
        return False
    try:
        from jupyterhub.apihandlers.base import APIHandler
    except ImportError:  # pragma: no cover - jupyterhub is a dependency
        return False
    request = getattr(handler, "request", None)
    if not isinstance(handler, APIHandler) or request is None or request.method != "POST":
        return False
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return False
    if not body or not isinstance(body, dict):
        return False
    if "user_options" in body:
        return body["user_options"] is not None
    return "display_name" not in body
