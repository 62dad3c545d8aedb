"""``LabSpawn``: one attempt to start a lab, from the user's options to the created objects.

An attempt is made by the first hook JupyterHub calls for a spawn (the form's
``options_from_form``, ``run_auth_state_hook``, ``apply_user_options`` or
``start``) and collects, in order:

options (validated once, strictly when the request supplied them) →
identity (from the auth_state JupyterHub decrypted for the spawn) →
spec (:func:`~lsst_spawner.lab.spec.build_lab_spec`) →
objects (Secret and Pod from KubeSpawner's pod) →
created (the Secret, then the pod through KubeSpawner's ``_start``).

The spawner keeps one reference to its current attempt and drops it when the
start ends, so nothing of one attempt (the Secret's values, the auth_state)
outlives it and nothing needs resetting. Refusals are :mod:`lsst_spawner.errors`,
each with its own status.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from .errors import (
    IdentityRejected,
    ImagePullFailed,
    LabBuildFailed,
    LabStartFailed,
    NoImageAvailable,
    OptionsRejected,
    SpawnRefused,
)
from .form.image import lab_image, lab_request
from .form.options import LabOptions, OptionsCatalog, OptionsError, OptionsOrigin
from .form.options import parse_user_options as parse_options
from .identity import Identity, IdentityError
from .images.prepull import with_preferred_nodes
from .kube.claims import ensure_home_claim, ensure_namespace
from .kube.objects import create_lab_config, delete_lab_config, has_legacy_env_secret
from .kube.pull import watch_image_pull
from .kube.retries import KubernetesError, RetryPolicy
from .kube.startfail import StartFailure, until_failure, watch_start
from .kube.sweep import SPAWNS
from .lab.claims import HomeClaimSettings, build_home_claim, build_user_namespace
from .lab.models import dict_to_model
from .lab.names import server_name_problem
from .lab.spec import LabObjects, LabSettings, LabSpec, apply_lab_spec, build_lab_spec
from .progress import SpawnProgress

__all__ = ["LabSpawn", "SpawnerHost", "follow_progress", "request_supplies_options", "stop_lab"]


class SpawnerHost(Protocol):
    """What an attempt uses of its spawner (LSSTSpawner provides it)."""

    user: Any
    name: str
    user_options: dict[str, Any]
    handler: Any
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    lab_options_fresh: bool | None
    image: str
    pod_name: str
    api_token: str | None
    api: Any
    namespace: str
    enable_user_namespaces: bool
    user_namespace_labels: dict[str, Any]
    user_namespace_annotations: dict[str, Any]
    modify_pod_hook: Any
    events_enabled: bool
    lab_image_pull_grace: float
    lab_start_failure_grace: float
    _start_future: Any
    lab_spawn: LabSpawn | None
    finished_spawn_progress: SpawnProgress | None

    async def stop(self, now: bool = False) -> None: ...

    @property
    def _log_name(self) -> str: ...
    @property
    def events(self) -> list[Any]: ...
    async def _start_watching_events(self, replace: bool = False) -> Any: ...
    async def options_catalog(self) -> OptionsCatalog: ...
    def lab_settings_cached(self) -> LabSettings: ...
    def lab_extra_secret_values(self, environ: Mapping[str, str]) -> dict[str, str]: ...
    async def base_pod_manifest(self) -> dict[str, Any]: ...
    def kube_retry_policy(self) -> RetryPolicy: ...
    def lab_delete_policy(self) -> RetryPolicy: ...
    def home_claim_settings(self) -> HomeClaimSettings: ...
    def _expand_all(self, src: Any) -> Any: ...
    def image_manifest_check(self, image: Any) -> Callable[[], Awaitable[bool]] | None: ...


class LabSpawn:
    """One start attempt of one spawner; see the module's docstring."""

    def __init__(self, spawner: SpawnerHost) -> None:
        self.spawner = spawner
        #: The progress events of this attempt (read by ``progress()``).
        self.progress = SpawnProgress()
        #: True once ``start()`` took this attempt: it is used for one start only.
        self.started = False
        #: Canonical options the form produced for this spawn (a fresh request).
        self.form_options: dict[str, Any] | None = None
        #: The validated options, and the ``user_options`` they were validated from.
        self.options: LabOptions | None = None
        self._options_from: dict[str, Any] | None = None
        #: The auth_state JupyterHub decrypted for this spawn; dropped once read.
        self.auth_state: Any = None
        self.identity: Identity | None = None
        #: The spec and the objects, until the pod is handed to KubeSpawner (they hold
        #: the Secret's values; in a storm of N spawns that is N times ~25 KB of hub memory).
        self.spec: LabSpec | None = None
        self.objects: LabObjects | None = None
        #: The pod waiting for KubeSpawner's ``_start`` to ask for it.
        self.pending_pod: dict[str, Any] | None = None
        #: True while KubeSpawner's ``_start`` may receive the pod as a plain dict.
        self.pod_as_dict = False
        #: The pod whose Secret this attempt created (deleted if it fails).
        self.created_for: str | None = None
        #: The last transient failure of a KubeSpawner request, named in timeout messages.
        self.last_transient: str | None = None

    # --- options ------------------------------------------------------------------

    def options_are_fresh(self) -> bool:
        """Did this spawn's request supply the options, or does the hub re-use saved ones?"""
        spawner = self.spawner
        if spawner.lab_options_fresh is not None:
            return spawner.lab_options_fresh
        if self.form_options is not None and self.form_options == spawner.user_options:
            return True
        return request_supplies_options(spawner.handler)

    async def options_from_form(self, form_data: dict[str, Any]) -> dict[str, Any]:
        """Validate form data; the canonical ``user_options`` JupyterHub saves."""
        catalog = await self.spawner.options_catalog()
        options = self._parse(form_data, catalog, origin=OptionsOrigin.FORM, reused=False)
        user_options = options.to_user_options()
        self.form_options = copy.deepcopy(user_options)
        return user_options

    async def load_options(self) -> LabOptions:
        """The validated options of ``user_options`` (once); sets the pod's image.

        Saved options re-used by the hub fall back to defaults field by field,
        with a warning, when they went stale; fresh ones are validated strictly.
        """
        spawner = self.spawner
        problem = server_name_problem(spawner.name or "")
        if problem:  # JupyterHub 5 takes any name; 6 starts servers made before it
            spawner.log.warning("Refused server name for %s: %s", spawner.user.name, problem)
            raise OptionsRejected(f"server_name: {problem}", field="server_name")
        options = self.options
        if options is None or self._options_from != spawner.user_options:
            catalog = await spawner.options_catalog()
            reused = not self.options_are_fresh()
            options = self._parse(
                spawner.user_options, catalog, origin=OptionsOrigin.API, reused=reused
            )
            self.options = options
            self._options_from = copy.deepcopy(dict(spawner.user_options))
        spawner.image = options.image.pinned_reference
        return options

    def _parse(
        self, raw: object, catalog: OptionsCatalog, *, origin: OptionsOrigin, reused: bool
    ) -> LabOptions:
        spawner = self.spawner
        try:
            return parse_options(raw, catalog, origin=origin, reused=reused, log=spawner.log)
        except OptionsError as error:
            spawner.log.warning(
                "Rejected user options for %s: %s", spawner._log_name, error.message
            )
            refusal = NoImageAvailable if error.status == 503 else OptionsRejected
            raise refusal(error.message, field=error.field) from None

    # --- identity and spec --------------------------------------------------------

    async def load_identity(self) -> Identity:
        """The user's identity from the auth_state of this spawn (read, then dropped)."""
        spawner = self.spawner
        auth_state, self.auth_state = self.auth_state, None
        if auth_state is None:
            auth_state = await spawner.user.get_auth_state()
        try:
            identity = Identity.from_auth_state(auth_state)
        except IdentityError as error:
            raise IdentityRejected(f"Cannot start a lab for {spawner.user.name}: {error}") from None
        self.identity = identity
        return identity

    async def prepare_spec(self) -> LabSpec:
        """Options, identity and the lab's spec; creates nothing."""
        spawner = self.spawner
        options = await self.load_options()
        identity = await self.load_identity()
        settings = spawner.lab_settings_cached()
        size = options.size or settings.default_size
        if options.profile is None and size not in {choice.name for choice in settings.sizes}:
            # Validation offered a size the site's lab_sizes do not have: the request is
            # what cannot be served (a site's own catalog, or sizes changed meanwhile).
            names = ", ".join(choice.name for choice in settings.sizes)
            raise OptionsRejected(f"size {size!r} is not one of {names}", field="size")
        image = lab_image(options.image)
        request = lab_request(options, server_name=spawner.name or "")
        try:
            spec = build_lab_spec(
                settings,
                identity,
                request,
                api_token=spawner.api_token or "",
                secret_values=spawner.lab_extra_secret_values(os.environ),
            )
        except IdentityError as error:  # LabSpecError: the lab rules refuse this identity
            raise IdentityRejected(f"Cannot start a lab for {spawner.user.name}: {error}") from None
        self.spec = spec
        spawner.pod_name = spec.pod_name
        groups = len(identity.groups)
        self.progress.step(
            f"Checked your identity: uid {identity.uid}, gid {identity.gid}, {groups} group(s)", 5
        )
        self.progress.step(f"Image: {options.image.display_name} ({image.reference})", 10)
        return spec

    async def prepare_objects(self) -> LabObjects:
        """The Secret and Pod from the spec and KubeSpawner's pod; creates nothing.

        KubeSpawner's pod is built once, here, before KubeSpawner's ``_start``: the
        Secret (created first) holds its long env values, and the pod manifest
        KubeSpawner asks for is the pod built with it. So a setting KubeSpawner's ``_start``
        changes before it asks for the manifest (only the legacy PVC name of
        ``storage_pvc_ensure`` with ``handle_legacy_names``) is not seen.
        """
        if self.objects is not None:
            return self.objects
        spec = self.spec if self.spec is not None else await self.prepare_spec()
        base = await self.spawner.base_pod_manifest()
        try:
            objects = apply_lab_spec(base, spec)
        except IdentityError as error:  # LabSpecError: configuration and KubeSpawner's pod
            raise LabBuildFailed(f"Cannot build the lab pod: {error}") from None
        options = self.options
        if options is not None and options.image.present_on:  # prepull: on some nodes only
            objects = dataclasses.replace(
                objects, pod=with_preferred_nodes(objects.pod, options.image.present_on)
            )
        self.objects = objects
        return objects

    async def pod_manifest(self) -> Any:
        """The pod KubeSpawner creates: a dict during a start without ``modify_pod_hook``
        (it is sent as JSON), else the ``V1Pod`` KubeSpawner's own hooks expect."""
        pending, self.pending_pod = self.pending_pod, None
        pod = pending if pending is not None else (await self.prepare_objects()).pod
        if self.pod_as_dict:
            return pod
        return dict_to_model(pod, "V1Pod")

    def pod_created(self, pod: Any) -> None:
        """The pod exists: empty the dict this attempt handed KubeSpawner.

        KubeSpawner's ``_start`` keeps its manifest in a local variable until the
        lab is ready (seconds to minutes) but reads it no more once the pod is
        created: the hooks and services that need the pod read the reflector's
        copy. The dict (about 15 KiB of Python objects) is this attempt's own, so
        it is emptied, not kept by every spawn of a storm while they wait. A
        ``V1Pod`` (what a site's ``modify_pod_hook`` returns) is left alone.
        """
        if self.pod_as_dict and isinstance(pod, dict):
            pod.clear()

    async def ensure_user_objects(self) -> None:
        """The user's namespace (``enable_user_namespaces``) and home claim, unless they exist.

        Created before the lab's Secrets, which live in that namespace; never deleted.
        """
        spawner = self.spawner
        policy = spawner.kube_retry_policy()
        if spawner.enable_user_namespaces:
            namespace = build_user_namespace(
                spawner.namespace,
                spawner._expand_all(spawner.user_namespace_labels),
                spawner._expand_all(spawner.user_namespace_annotations),
            )
            await ensure_namespace(spawner.api, namespace, policy)
        claim = spawner.home_claim_settings()
        if claim.enabled:
            body = build_home_claim(claim, spawner.user.name)
            created = await ensure_home_claim(spawner.api, spawner.namespace, body, policy)
            state = "Created" if created else "Found"
            self.progress.step(f"{state} your home volume claim {body['metadata']['name']}", 12)

    # --- the start ------------------------------------------------------------------

    async def run(self, start_pod: Callable[[], Awaitable[Any]]) -> Any:
        """Build everything, create the Secret, then the pod (``start_pod``)."""
        spawner = self.spawner
        registered = ""
        try:
            # Options, identity, KubeSpawner's pod: all of the lab's objects before any write.
            objects = await self.prepare_objects()
            await self.ensure_user_objects()
            self.created_for = objects.pod["metadata"]["name"]
            registered = f"{spawner.namespace}/{self.created_for}"
            SPAWNS.begin(registered)  # the leftover sweep leaves this lab's Secret alone
            await create_lab_config(
                spawner.api, spawner.namespace, objects, spawner.kube_retry_policy()
            )
            self.progress.step("Created your environment, /etc/passwd, /etc/group and secrets", 15)
            self.progress.step(f"Creating your lab pod {self.created_for}", 25)
            self.progress.follows_pod_events = True  # the pod's events are shown from here
            # From here on only the pod is needed: the spec and the Secret's body
            # (with the secret values) are released, not kept while the spawn waits.
            self.pending_pod = objects.pod
            self.spec = self.objects = None
            del objects
            # KubeSpawner's _start passes the manifest only to _make_create_pod_request
            # (ResilientKubeSpawnerMixin's), which sends it as JSON. A dict skips building
            # and serialising ~150 model objects per spawn, and is smaller while the spawn
            # waits. A site's modify_pod_hook gets the V1Pod it expects.
            self.pod_as_dict = not spawner.modify_pod_hook
            return await self._start_pod_failing_fast(start_pod)
        except BaseException as error:
            if self.created_for is not None:  # else nothing was created
                await self._delete_created(self.created_for)
            last = self.last_transient
            if isinstance(error, TimeoutError) and last and str(error).startswith("Could not"):
                # KubeSpawner's "Could not create pod ns/name": say why.
                budget = spawner.kube_retry_policy().budget
                raise TimeoutError(
                    f"{error} within the {budget:g}s retry budget; last error: {last}"
                ) from error
            raise
        finally:
            if registered:
                SPAWNS.end(registered)

    async def _start_pod_failing_fast(self, start_pod: Callable[[], Awaitable[Any]]) -> Any:
        """KubeSpawner's start, stopped with the kubelet's reason if the image cannot be had,
        a Secret or ConfigMap the pod reads is missing or an init container fails."""
        spawner = self.spawner
        name = f"{spawner.namespace}/{self.created_for}"

        def read_pod() -> Any:
            reflector = getattr(spawner, "pod_reflector", None)
            return reflector.pods.get(name) if reflector is not None else None

        image = self.options.image if self.options is not None else None
        result, failure = await until_failure(
            start_pod(),
            watch_image_pull(
                read_pod,
                grace=spawner.lab_image_pull_grace,
                manifest_exists=spawner.image_manifest_check(image) if image else None,
                image=image.pinned_reference if image else "",
            ),
            watch_start(
                read_pod,
                lambda: spawner.events if spawner.events_enabled else (),
                grace=spawner.lab_start_failure_grace,
            ),
        )
        if failure is None:
            return result
        refusal: type[SpawnRefused] = LabStartFailed
        if isinstance(failure, StartFailure):
            what = failure.subject
        else:
            what, refusal = f"image {failure.image} cannot be pulled", ImagePullFailed
        spawner.log.warning(
            "Stopping the spawn of %s: %s (%s: %s)",
            spawner._log_name,
            what,
            failure.reason,
            failure.message,
        )
        await spawner.stop(now=True)  # the pod, then the Secret
        raise refusal(failure.user_message())

    async def _delete_created(self, pod_name: str) -> None:
        spawner = self.spawner
        try:
            await delete_lab_config(
                spawner.api, spawner.namespace, pod_name, spawner.lab_delete_policy()
            )
        except KubernetesError as error:
            spawner.log.error(
                "Could not delete the lab objects of %s: %s", spawner.user.name, error
            )


async def follow_progress(spawner: SpawnerHost) -> AsyncIterator[Any]:
    """Our steps and the pod's events, with rising percentages, ending at 100 when ready.

    The steps are the current attempt's, or the last finished one's: JupyterHub keeps a
    spawn pending (adding the route) after ``start`` returns, and a progress page that
    connects then is shown the whole spawn, not only its end. The pod's events are
    recorded in the attempt's progress as they arrive, so every page that follows the
    spawn, early or late, is shown the same events at the same percentages.
    """
    attempt = spawner.lab_spawn
    tracker = attempt.progress if attempt is not None else spawner.finished_spawn_progress
    tracker = tracker if tracker is not None else SpawnProgress()
    if spawner.events_enabled:
        await spawner._start_watching_events()
    sent = 0
    while True:
        future = spawner._start_future
        done = future is not None and future.done()
        if spawner.events_enabled and tracker.follows_pod_events:
            tracker.record_kube_events(spawner.events)
        while sent < len(tracker.events):
            yield tracker.events[sent]
            sent += 1
        if done:
            break
        await tracker.wait_for_step(1.0)
    if future is not None and not future.cancelled() and future.exception() is None:
        yield tracker.finish(f"Your lab pod {spawner.pod_name} is running")


async def stop_lab(spawner: SpawnerHost, stop_pod: Callable[[], Awaitable[None]]) -> None:
    """Delete the pod (``stop_pod``: KubeSpawner's stop), then the lab's Secret.

    A lab started before 0.1.0 also had an ``-env`` Secret: it is deleted too when the
    pod (from the reflector) reads it, or when the pod is already gone.
    """
    pod_name = spawner.pod_name  # from saved state: survives a template change
    reflector = getattr(spawner, "pod_reflector", None)
    pod = reflector.pods.get(f"{spawner.namespace}/{pod_name}") if reflector else None
    legacy = has_legacy_env_secret(pod, pod_name)
    try:
        await stop_pod()
    finally:
        await delete_lab_config(
            spawner.api,
            spawner.namespace,
            pod_name,
            spawner.lab_delete_policy(),
            legacy_env_secret=legacy,
        )


def request_supplies_options(handler: Any) -> bool:
    """True when ``handler`` is a REST API spawn request whose body supplies ``user_options``.

    Read the way the running JupyterHub reads the body. JupyterHub 6
    (``get_server_json_body``): ``{"user_options": {...}}``, or a body without
    ``user_options`` and ``display_name`` that is the options itself; no body,
    ``{}``, ``"user_options": null`` or a body with only ``display_name`` means
    the saved options are re-used. JupyterHub 5: any body but ``null`` is the
    options.

    A body the hub would refuse or decode differently from a strict reading
    (invalid UTF-8, which JupyterHub 6 replaces with U+FFFD; invalid JSON; a
    non-object) counts as supplying options: those are then validated strictly,
    so a malformed request is refused, never quietly replaced by saved options.
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
    raw = request.body
    if not raw:
        return False  # both hubs: no body, saved options
    try:
        body = json.loads(raw.strip().decode("utf-8"))  # strict, unlike JupyterHub 6
    except ValueError:  # UnicodeDecodeError included
        return True
    if not hasattr(handler, "get_server_json_body"):  # JupyterHub 5: the body is the options
        return body is not None
    if not body:
        return False
    if not isinstance(body, dict):
        return True
    if "user_options" in body:
        return body["user_options"] is not None
    return "display_name" not in body
