"""LSSTSpawner: KubeSpawner for the science platform. Traits and hooks only; work is delegated.

Each start is one :class:`~lsst_spawner.attempt.LabSpawn` (options → identity →
spec → objects → created); what a configuration's spawners share is its
:class:`~lsst_spawner.site.SiteContext`; refusals are :mod:`lsst_spawner.errors`,
turned into ``HTTPError`` by :func:`~lsst_spawner.errors.answers_http`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator
from typing import Any

from traitlets import default

from .attempt import LabSpawn, follow_progress, stop_lab
from .errors import answers_http, log_refusals_as_warnings
from .form.options import LabOptions, OptionsCatalog, SizeChoice
from .form.render import render_options_form
from .form.traits import OptionsFormTraits
from .images.prepull_traits import PrepullTraits
from .images.registry_config import RegistrySourceTraits
from .images.traits import ImageMenuTraits
from .kube.resilience import ResilientKubeSpawnerMixin
from .kube.retries import RetryPolicy, skip_unused_environment_lookups
from .kube.sweep import SweepTraits, start_hub_sweep
from .kube.traits import KubeTraits
from .lab.models import model_to_dict
from .lab.names import build_object_names
from .lab.spec import LabObjects, LabSettings, LabSpec
from .lab.traits import LabTraits
from .operator_mode import OperatorModeTraits
from .progress import SpawnProgress
from .site import SiteContext, site_context

__all__ = ["LSSTSpawner"]


class LSSTSpawner(
    OptionsFormTraits,
    ImageMenuTraits,
    PrepullTraits,
    RegistrySourceTraits,
    LabTraits,
    KubeTraits,
    SweepTraits,
    OperatorModeTraits,
    ResilientKubeSpawnerMixin,
):
    """Spawns science platform labs on Kubernetes as the user's own POSIX identity.

    Select it with ``c.JupyterHub.spawner_class = "lsst"`` and set the traits
    below as ``c.LSSTSpawner.<trait>``; ``lsst-spawner check-config`` checks
    them all. KubeSpawner's own traits keep working.
    """

    #: Set to say whether the options are a fresh request (True) or saved ones (False);
    #: ``None`` reads it from the request, as JupyterHub does not say.
    lab_options_fresh: bool | None = None
    #: The current start attempt: the only per-spawn state (see lsst_spawner.attempt).
    lab_spawn: LabSpawn | None = None
    #: The last finished attempt's progress (steps and percentages, no secret values), shown
    #: to a progress page that connects after ``start`` returned but before JupyterHub has
    #: finished the spawn.
    finished_spawn_progress: SpawnProgress | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every problem at once, with the trait names, before anything is created;
        # once per configuration (its SiteContext), not once per user.
        self.site.ensure_clean(self)
        log_refusals_as_warnings(self.log)  # JupyterHub's handlers log through the same logger
        # Once per client (see its docstring); logged when it turns the lookups off.
        if self.kubernetes_skip_environment_lookups and skip_unused_environment_lookups(self.api):
            self.log.info(
                "Kubernetes client: no proxy or netrc entry for %s in the environment; "
                "aiohttp's per-request lookups of them are turned off",
                self.api.api_client.configuration.host,
            )
        self.start_prepull_in_background()  # with image_prepull_enabled only
        names = self.lab_object_names()
        self.pod_name = names["pod"]
        self.dns_name = self.dns_name_template.format(namespace=self.namespace, name=self.pod_name)
        start_hub_sweep(self)  # the hub's leftover sweep, once per process and namespace

    @property
    def site(self) -> SiteContext:
        """What this configuration's spawners share (settings, menu, retry policy)."""
        return site_context(self)

    def _attempt(self) -> LabSpawn:
        """The current attempt, begun by whichever hook of a spawn comes first."""
        if self.lab_spawn is None:
            self.lab_spawn = LabSpawn(self)
        return self.lab_spawn

    @default("start_timeout")
    def _lsst_start_timeout_default(self) -> int:
        return math.ceil(self.lab_spawn_timeout)

    @default("k8s_api_request_timeout")
    def _lsst_request_timeout_default(self) -> int:
        return math.ceil(self.kubernetes_request_timeout)

    @default("k8s_api_request_retry_timeout")
    def _lsst_retry_timeout_default(self) -> int:
        return math.ceil(self.kubernetes_retry_budget)

    @default("options_form")
    def _lsst_options_form_default(self) -> Any:
        return self.render_options_form

    @default("options_from_form")
    def _lsst_options_from_form_default(self) -> Any:
        return self.lab_options_from_form

    @default("apply_user_options")
    def _lsst_apply_user_options_default(self) -> Any:
        return self._apply_lab_options

    # --- what the configuration gives (SiteContext) ----------------------------------

    def lab_settings_cached(self) -> LabSettings:
        """The frozen lab settings, built once per configuration."""
        return self.site.lab_settings(self)

    def form_sizes(self) -> tuple[tuple[SizeChoice, ...], str]:
        """The sizes the form offers (from ``lab_sizes``) and the default one."""
        return self.site.form_sizes(self)

    async def options_catalog(self) -> OptionsCatalog:
        """The menu (from the cache, never the registry) and the sizes this user may pick;
        with ``LabMenu.enabled``, the lab menu's current revision as this user's groups see it."""
        catalog = await self.site.lab_menu_catalog(self)
        if catalog is None:
            catalog = self.site.options_catalog(self, await self.get_menu())
        return await self.apply_size_quota(catalog)  # sizes or profiles: one quota rule

    def kube_retry_policy(self) -> RetryPolicy:
        """How this spawner's Kubernetes requests are retried (``kubernetes_*`` traits)."""
        return self.site.retry_policy(self)

    def lab_delete_policy(self) -> RetryPolicy:
        """The retry policy of deleting a lab's objects (``lab_delete_timeout``)."""
        return self.site.delete_policy(self)

    def lab_object_names(self) -> dict[str, str]:
        """Names of this server's pod and Secrets (from ``lab_pod_name_template``)."""
        template = self.lab_settings_cached().pod_name_template
        return build_object_names(template, self.user.name, self.name or "")

    # --- the options form and user options --------------------------------------------

    @answers_http
    async def render_options_form(self, spawner: Any = None) -> str:
        """The options form's HTML (JupyterHub calls ``options_form(spawner)``)."""
        return render_options_form(
            await self.options_catalog(),
            self.user_options,
            template_path=self.options_template_path,
            template_name=self.options_template_name,
        )

    @answers_http
    async def lab_options_from_form(self, form_data: dict[str, Any]) -> dict[str, Any]:
        """Validate form data; return the canonical ``user_options`` JupyterHub saves.

        A rejected form is answered with a 400 and the form again, showing the message.
        """
        return await self._attempt().options_from_form(form_data)

    @answers_http
    async def _apply_lab_options(self, spawner: Any, user_options: dict[str, Any]) -> None:
        """JupyterHub 5.3+'s ``apply_user_options``: validate before ``start()``."""
        attempt = self._attempt()
        try:
            await attempt.load_options()
        except BaseException:
            self.lab_spawn = None  # this spawn ends here
            raise

    @answers_http
    async def validate_user_options(self) -> LabOptions:
        """Validate ``user_options`` (400, or 503 with no image available); set the image."""
        return await self._attempt().load_options()

    async def load_user_options(self) -> None:
        """Validate user options at the start of ``start()``, before any Kubernetes request.

        Replaces KubeSpawner's ``profile_list`` handling: the menu is the form. The
        result of ``apply_user_options`` for the same options is re-used.
        """
        await self.validate_user_options()

    @property
    def lab_options(self) -> LabOptions | None:
        """The validated options of the current attempt; ``None`` before validation."""
        return self.lab_spawn.options if self.lab_spawn is not None else None

    # --- identity, spec and objects (the attempt) ---------------------------------------

    async def run_auth_state_hook(self, auth_state: Any) -> None:
        """Keep the auth_state JupyterHub just decrypted for this spawn, then run the hook.

        JupyterHub decrypts auth_state at every spawn to call this; the attempt
        takes the identity from here instead of decrypting it a second time.
        """
        self._attempt().auth_state = auth_state
        await super().run_auth_state_hook(auth_state)

    @answers_http
    async def prepare_lab(self) -> LabSpec:
        """Validate options and identity and build the lab's spec; creates nothing."""
        return await self._attempt().prepare_spec()

    @answers_http
    async def prepare_lab_objects(self) -> LabObjects:
        """The lab's Secret and Pod from its spec and KubeSpawner's pod."""
        return await self._attempt().prepare_objects()

    @property
    def lab_spec(self) -> LabSpec | None:
        """The current attempt's spec, until its pod is handed to KubeSpawner."""
        return self.lab_spawn.spec if self.lab_spawn is not None else None

    @property
    def lab_objects(self) -> LabObjects | None:
        """The current attempt's Secret and Pod, until the pod is handed over."""
        return self.lab_spawn.objects if self.lab_spawn is not None else None

    @answers_http
    async def render_lab_objects(self) -> list[dict[str, Any]]:
        """The Secret and Pod a spawn would create now, without creating them."""
        objects = (await LabSpawn(self).prepare_objects()).as_list()
        for obj in objects:
            obj["metadata"]["namespace"] = self.namespace
        return objects

    async def base_pod_manifest(self) -> dict[str, Any]:
        """KubeSpawner's own pod, in wire format (the lab spec is applied to it)."""
        pod: dict[str, Any] = model_to_dict(await super().get_pod_manifest())
        return pod

    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod with the lab spec applied (identity, env, secrets, volumes, size)."""
        return await self._attempt().pod_manifest()

    # --- Kubernetes I/O, progress and cleanup --------------------------------------------

    def start(self) -> Any:
        # The attempt exists before the start task, so progress() never misses a step.
        if self.lab_spawn is None or self.lab_spawn.started:
            self.lab_spawn = LabSpawn(self)
        self.lab_spawn.started = True
        return super().start()

    @answers_http
    async def _start(self) -> Any:
        attempt = self._attempt()
        try:
            if self.operator_backend is not None:  # operator mode: a LabServer, no pod
                return await self.operator_backend.start()
            return await attempt.run(super()._start)
        finally:
            self.finished_spawn_progress = attempt.progress
            if self.lab_spawn is attempt:
                self.lab_spawn = None

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        """Create the pod; once created, empty the dict this attempt handed KubeSpawner."""
        created = await super()._make_create_pod_request(pod, request_timeout)
        if created and self.lab_spawn is not None:
            self.lab_spawn.pod_created(pod)
        return created

    def note_transient_failure(self, detail: str) -> None:
        if self.lab_spawn is not None:
            self.lab_spawn.last_transient = detail

    async def stop(self, now: bool = False) -> None:
        """Delete the pod (KubeSpawner), then the lab's Secret (and a pre-0.1.0 lab's -env)."""
        if self.operator_backend is not None:
            return await self.operator_backend.stop()
        await stop_lab(self, functools.partial(super().stop, now=now))

    async def delete_forever(self) -> None:
        """Keep the home claim when JupyterHub deletes the user or server (KubeSpawner's
        ``delete_pvc`` would delete its claim); without one, KubeSpawner decides."""
        if not self.lab_home_claim_enabled:
            await super().delete_forever()

    def progress(self) -> AsyncIterator[Any]:
        """Our steps and the pod's events, with rising percentages, ending at 100 when ready."""
        if self.operator_backend is not None:
            return self.operator_backend.progress()
        return follow_progress(self)
