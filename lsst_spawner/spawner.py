"""LSSTSpawner: KubeSpawner for the science platform. Traits and hooks only; work is delegated."""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any

from kubespawner import KubeSpawner
from tornado.web import HTTPError
from traitlets import default

from .config import CheckedConfigurable
from .form.image import lab_image
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
from .identity import Identity, IdentityError
from .images.registry_config import RegistrySourceTraits
from .images.traits import ImageMenuTraits
from .kube import (
    KubernetesError,
    create_replacing,
    delete_lab_objects,
    skip_unused_environment_lookups,
)
from .kube_resilience import ResilientKubeSpawnerMixin
from .lab.models import dict_to_model, model_to_dict
from .lab.names import build_object_names, names_for_pod
from .lab.sizes import describe_size
from .lab.spec import LabObjects, LabRequest, LabSpec, apply_lab_spec, build_lab_spec
from .lab.traits import LabTraits
from .progress import SpawnProgress

__all__ = ["LSSTSpawner"]


class LSSTSpawner(
    OptionsFormTraits,
    ImageMenuTraits,
    RegistrySourceTraits,
    LabTraits,
    CheckedConfigurable,
    ResilientKubeSpawnerMixin,
    KubeSpawner,
):
    """Spawns science platform labs on Kubernetes as the user's own POSIX identity.

    Select it with ``c.JupyterHub.spawner_class = "lsst"`` and set the traits
    below as ``c.LSSTSpawner.<trait>``; ``lsst-spawner check-config`` checks
    them all. KubeSpawner's own traits keep working.
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
        return await self.apply_size_quota(OptionsCatalog(menu, sizes, default_size))

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

    #: Set to say whether the options are a fresh request (True) or saved ones (False);
    #: ``None`` infers it from the request, as JupyterHub does not say.
    lab_options_fresh: bool | None = None

    def _options_are_fresh(self) -> bool:
        """Did this spawn's request supply the options, or does the hub re-use saved ones?"""
        if self.lab_options_fresh is not None:
            return self.lab_options_fresh
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

    async def validate_or_reuse_user_options(self) -> None:
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

    # --- lab objects: identity, NSS files, secrets, volumes, sizes -----------
    # (lsst_spawner.lab)
    #
    # ``prepare_lab`` is pure apart from reading the menu cache and auth_state:
    # it validates the options and the identity and builds the LabSpec;
    # ``prepare_lab_objects`` applies it to KubeSpawner's pod, giving the
    # ConfigMap, Secret and Pod. The spawn, ``render-pod`` and the tests all go
    # through them.

    #: The LabSpec of the current spawn (its Secret and pod changes).
    lab_spec: LabSpec | None = None
    #: The current spawn's ConfigMap, Secret and Pod, built once from KubeSpawner's pod.
    lab_objects: LabObjects | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every problem at once, with the trait names, before anything is created;
        # once per configuration, not once per user.
        self.raise_for_config_problems_once()
        # Once per client (see its docstring); logged when it turns the lookups off.
        if self.kubernetes_skip_environment_lookups and skip_unused_environment_lookups(self.api):
            self.log.info(
                "Kubernetes client: no proxy or netrc entry for %s in the environment; "
                "aiohttp's per-request lookups of them are turned off",
                self.api.api_client.configuration.host,
            )
        names = self.lab_object_names()
        self.pod_name = names["pod"]
        self.dns_name = self.dns_name_template.format(namespace=self.namespace, name=self.pod_name)

    @default("start_timeout")
    def _lsst_start_timeout_default(self) -> int:
        return math.ceil(self.lab_spawn_timeout)

    @default("k8s_api_request_timeout")
    def _lsst_request_timeout_default(self) -> int:
        return math.ceil(self.kubernetes_request_timeout)

    @default("k8s_api_request_retry_timeout")
    def _lsst_retry_timeout_default(self) -> int:
        return math.ceil(self.kubernetes_retry_budget)

    def lab_object_names(self) -> dict[str, str]:
        """Names of this user's pod, ConfigMap and Secret (from ``lab_pod_name_template``)."""
        return build_object_names(self.lab_settings_cached().pod_name_template, self.user.name)

    #: The auth_state JupyterHub decrypted for this spawn (see run_auth_state_hook).
    _lsst_auth_state: Any = None

    async def run_auth_state_hook(self, auth_state: Any) -> None:
        """Keep the auth_state JupyterHub just decrypted for this spawn, then run the hook.

        JupyterHub decrypts auth_state at every spawn to call this; :meth:`lab_identity`
        takes it from here instead of decrypting it a second time. It is dropped
        once read, and when the start ends (it may hold a git token).
        """
        self._lsst_auth_state = auth_state
        await super().run_auth_state_hook(auth_state)

    async def lab_identity(self) -> Identity:
        """The user's identity from auth_state; 403 with the reason when it is missing or bad."""
        auth_state, self._lsst_auth_state = self._lsst_auth_state, None
        if auth_state is None:
            auth_state = await self.user.get_auth_state()
        try:
            return Identity.from_auth_state(auth_state)
        except IdentityError as error:
            raise HTTPError(403, f"Cannot start a lab for {self.user.name}: {error}") from None

    async def prepare_lab(self) -> LabSpec:
        """Validate options and identity and build the lab's spec; creates nothing."""
        await self.load_user_options()
        options = self.lab_options
        assert options is not None
        identity = await self.lab_identity()
        image = lab_image(options.image)
        request = LabRequest(
            image=image.reference,
            size=options.size,
            debug=options.enable_debug,
            reset_user_env=options.reset_user_env,
            image_env=tuple(sorted(image.env.items())),
        )
        try:
            spec = build_lab_spec(
                self.lab_settings_cached(),
                identity,
                request,
                api_token=self.api_token or "",
                secret_values=self.lab_extra_secret_values(os.environ),
            )
        except IdentityError as error:  # LabSpecError included
            raise HTTPError(403, f"Cannot start a lab for {self.user.name}: {error}") from None
        self.lab_spec = spec
        self.pod_name = spec.pod_name
        progress = self._lsst_progress
        if progress is not None:
            groups = len(identity.groups)
            progress.step(
                f"Checked your identity: uid {identity.uid}, gid {identity.gid}, {groups} group(s)",
                5,
            )
            progress.step(f"Image: {options.image.display_name} ({image.reference})", 10)
        return spec

    #: True while KubeSpawner's ``_start`` may receive the pod as a plain dict.
    _lsst_pod_as_dict = False

    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod with the lab spec applied (identity, env, secrets, volumes, size).

        A ``V1Pod``, as KubeSpawner's own; during a spawn without a
        ``modify_pod_hook``, the same pod as a plain dict (see :meth:`_start`).
        """
        pod = await self.lab_pod_manifest()
        if self._lsst_pod_as_dict:
            return pod
        return dict_to_model(pod, "V1Pod")

    #: During a spawn, the pod waiting for KubeSpawner's ``_start`` to ask for it.
    _lsst_pending_pod: dict[str, Any] | None = None

    async def lab_pod_manifest(self) -> dict[str, Any]:
        """The lab pod in wire format (a dict): this spawn's (see :meth:`prepare_lab_objects`)."""
        pending, self._lsst_pending_pod = self._lsst_pending_pod, None
        if pending is not None:
            return pending
        objects = self.lab_objects or await self.prepare_lab_objects()
        return objects.pod

    async def prepare_lab_objects(self) -> LabObjects:
        """The lab's ConfigMap, Secret and Pod from its spec and KubeSpawner's pod; creates nothing.

        KubeSpawner's pod is built once, here, before KubeSpawner's ``_start``: the
        ConfigMap (created first) holds its env, and :meth:`get_pod_manifest`
        returns the pod built with it. So a setting KubeSpawner's ``_start`` changes
        before it asks for the manifest (only the legacy PVC name of
        ``storage_pvc_ensure`` with ``handle_legacy_names``) is not seen.
        """
        spec = self.lab_spec if self.lab_spec is not None else await self.prepare_lab()
        base = model_to_dict(await super().get_pod_manifest())
        try:
            objects = apply_lab_spec(base, spec)
        except IdentityError as error:
            raise HTTPError(500, f"Cannot build the lab pod: {error}") from None
        self.lab_objects = objects
        return objects

    async def render_lab_objects(self) -> list[dict[str, Any]]:
        """The ConfigMap, Secret and Pod a spawn would create now, without creating them."""
        await self.prepare_lab()
        objects = (await self.prepare_lab_objects()).as_list()
        for obj in objects:
            obj["metadata"]["namespace"] = self.namespace
        return objects

    # --- Kubernetes I/O, progress and cleanup ---------------------------------
    # (lsst_spawner.kube, lsst_spawner.progress)

    _lsst_progress: SpawnProgress | None = None
    _lsst_options_loaded = False
    #: True once this spawn got as far as requesting the pod (its events are then shown).
    _lsst_pod_requested = False

    def start(self) -> Any:
        # Created before the start task, so progress() never misses a step.
        self._lsst_progress = SpawnProgress()
        return super().start()

    async def load_user_options(self) -> None:
        if self._lsst_options_loaded:  # KubeSpawner's _start() calls it again
            return
        await self.validate_or_reuse_user_options()

    async def _start(self) -> Any:
        self.lab_spec = None
        self.lab_objects = None
        self._lsst_options_loaded = False
        self._lsst_pod_requested = False
        self._lsst_last_transient = None
        created: tuple[str, str] | None = None  # the ConfigMap and Secret to delete on failure
        try:
            # Options, identity, KubeSpawner's pod: all of the lab's objects before any write.
            objects = await self.prepare_lab_objects()
            spec = self.lab_spec
            assert spec is not None
            created = (spec.config_map_name, spec.secret_name)
            self._lsst_options_loaded = True
            await self._create_lab_config(objects)
            if self._lsst_progress is not None:
                self._lsst_progress.step(
                    "Created your environment, /etc/passwd, /etc/group and secrets", 15
                )
                self._lsst_progress.step(f"Creating your lab pod {spec.pod_name}", 25)
            self._lsst_pod_requested = True
            # From here on only the pod is needed. The spec and the ConfigMap and Secret
            # bodies (with the secret values) are released, not kept while the spawn waits
            # for its pod: in a storm of N spawns that is N times ~25 KB of hub memory.
            self._lsst_pending_pod = objects.pod
            self.lab_spec = self.lab_objects = None
            del objects, spec
            # KubeSpawner's _start passes the manifest only to _make_create_pod_request
            # (ResilientKubeSpawnerMixin's), which sends it as JSON. A dict skips building
            # and serialising ~150 model objects per spawn, and is smaller while the spawn
            # waits. A site's modify_pod_hook gets the V1Pod it expects.
            self._lsst_pod_as_dict = not self.modify_pod_hook
            return await super()._start()
        except BaseException as error:
            if created is not None:  # else nothing was created
                await self._delete_lab_config(*created, quiet=True)
            last, self._lsst_last_transient = self._lsst_last_transient, None
            if isinstance(error, TimeoutError) and last and str(error).startswith("Could not"):
                # KubeSpawner's "Could not create pod ns/name": say why.
                raise TimeoutError(
                    f"{error} within the {self.kubernetes_retry_budget:g}s retry budget; "
                    f"last error: {last}"
                ) from error
            raise
        finally:
            self._lsst_options_loaded = False
            self._lsst_pod_as_dict = False
            self._lsst_auth_state = None
            # The spec and the objects hold the Secret's values; the running lab needs neither.
            self.lab_spec = None
            self.lab_objects = None
            self._lsst_pending_pod = None

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        """Create the pod; once created, empty the dict this spawn handed KubeSpawner.

        KubeSpawner's ``_start`` keeps its manifest in a local variable until the
        lab is ready (seconds to minutes) but reads it no more once the pod is
        created: the hooks and services that need the pod read the reflector's
        copy. The dict (about 15 KiB of Python objects) is this spawn's own, so it
        is emptied, not kept by every spawn of a storm while they wait. A
        ``V1Pod`` (what a site's ``modify_pod_hook`` returns) is left alone.
        """
        created = await super()._make_create_pod_request(pod, request_timeout)
        if created and self._lsst_pod_as_dict and isinstance(pod, dict):
            pod.clear()
        return created

    async def _create_lab_config(self, objects: LabObjects) -> None:
        for kind, body in (("config_map", objects.config_map), ("secret", objects.secret)):
            await create_replacing(
                self.api,
                kind,
                self.namespace,
                body,
                budget=self.kubernetes_retry_budget,
                request_timeout=self.kubernetes_request_timeout,
                log=self.log,
            )

    async def _delete_lab_config(
        self, config_map: str | None, secret: str | None, *, quiet: bool = False
    ) -> None:
        try:
            await delete_lab_objects(
                self.api,
                self.namespace,
                pod=None,
                config_map=config_map,
                secret=secret,
                budget=self.lab_delete_timeout,
                request_timeout=self.kubernetes_request_timeout,
                log=self.log,
            )
        except KubernetesError as error:
            if not quiet:
                raise
            self.log.error("Could not delete the lab objects of %s: %s", self.user.name, error)

    async def stop(self, now: bool = False) -> None:
        """Delete the pod (KubeSpawner), then the lab's ConfigMap and Secret."""
        names = names_for_pod(self.pod_name)  # from saved state: survives a template change
        try:
            await super().stop(now=now)
        finally:
            await self._delete_lab_config(names["config_map"], names["secret"])

    async def progress(self) -> Any:
        """Our steps and the pod's events, with rising percentages, ending at 100 when ready."""
        tracker = self._lsst_progress or SpawnProgress()
        if self.events_enabled:
            await self._start_watching_events()
        sent = 0
        seen = 0
        while True:
            future = self._start_future
            done = future is not None and future.done()
            while sent < len(tracker.events):
                yield tracker.events[sent]
                sent += 1
            if self.events_enabled and self._lsst_pod_requested:
                events = self.events
                for event in events[seen:]:
                    yield tracker.kube_event(event)
                seen = len(events)
            if done:
                break
            await tracker.wait_for_step(1.0)
        if future is not None and not future.cancelled() and future.exception() is None:
            yield tracker.ready(f"Your lab pod {self.pod_name} is running")


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
