"""The hub in operator mode (``c.LSSTSpawner.lab_backend = "operator"``): declare, follow, delete.

The hub writes two objects per server, the LabServer and the Secret with the API
token (and the git token), owned by the LabServer; the operator builds, polices
and reports the rest. ``poll`` and ``progress`` read the LabServer's status, which
follows the pod. The hub needs no pod rights at all: its Role is
:data:`~lsst_spawner.operator.manifests.HUB_OPERATOR_ROLE_RULES`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from kubernetes_asyncio import client
from traitlets import Enum, Unicode

from .config import CheckedConfigurable
from .crd.declare import (
    SPAWN_ANNOTATION,
    build_hub_secret,
    build_lab_server,
    hub_env_from,
    lab_server_name,
)
from .crd.models import API_VERSION, GROUP, VERSION
from .errors import LabBuildFailed
from .form.image import lab_image
from .kube.labserver_reflector import LABSERVER_REFLECTOR_KIND, LabServerReflector
from .kube.prepull import Prepuller
from .kube.retries import KubernetesError, with_retries
from .operator.kube import json_reply

__all__ = ["OperatorBackend", "OperatorModeTraits"]

_PLURAL = "labservers"
#: How long a wait for a LabServer's next change lasts at most before the status is read
#: again (the hub's watch wakes it at each change; this bounds a change it missed).
_RECHECK_SECONDS = 5.0


class OperatorModeTraits(CheckedConfigurable):
    """Which backend runs labs: the hub itself, or the operator (docs/operator.md).

    Mixed into LSSTSpawner before KubeSpawner: in operator mode ``poll`` and the saved
    state are the LabServer's; LSSTSpawner's ``_start``, ``stop`` and ``progress``
    hand over to :attr:`operator_backend`.
    """

    trait_owner: ClassVar[str] = "LSSTSpawner"

    lab_backend = Enum(
        ["hub", "operator"],
        default_value="hub",
        config=True,
        help='Who creates the lab\'s pod: "hub" (this spawner, the default) or "operator" '
        "(the hub writes a LabServer and a token Secret; lsst-spawner operator does the rest).",
    )
    lab_template_name = Unicode(
        "lab",
        config=True,
        help="The LabTemplate (in the lab namespace) LabServers refer to when lab_backend is "
        '"operator"; make it with lsst-spawner template-from-config.',
    )

    @property
    def operator_backend(self) -> OperatorBackend | None:
        """This spawner's LabServer handling in operator mode; None in hub mode."""
        if self.lab_backend != "operator":
            return None
        backend: OperatorBackend | None = self.__dict__.get("_operator_backend")
        if backend is None:
            backend = self.__dict__["_operator_backend"] = OperatorBackend(self)
        return backend

    async def poll(self) -> int | None:
        backend = self.operator_backend
        if backend is None:
            result: int | None = await super().poll()  # type: ignore[misc]
            return result
        return await backend.poll()

    async def get_url(self) -> str:
        """A restarted hub asks each running server's URL: in operator mode, from the status."""
        backend = self.operator_backend
        if backend is None:
            url: str = await super().get_url()  # type: ignore[misc]
            return url
        return await backend.url()

    def published_prepuller(self) -> Prepuller | None:
        """In operator mode, the prepull state the operator publishes in the LabTemplate's
        status, read every ``image_prepull_interval`` (the hub lists no nodes, creates no
        pods); ``None`` in hub mode, where the hub runs the prepuller itself."""
        if self.lab_backend != "operator":
            return None
        from .operator.prepull import PublishedPrepuller
        from .site import SITES

        spawner: Any = self
        settings = spawner.prepull_settings()
        custom: Any = client.CustomObjectsApi(spawner.api.api_client)
        namespace, template = str(spawner.namespace), self.lab_template_name
        policy = spawner.kube_retry_policy()

        async def read() -> Any:
            found = await with_retries(
                lambda: json_reply(
                    custom.get_namespaced_custom_object(
                        GROUP, VERSION, namespace, "labtemplates", template, _preload_content=False
                    )
                ),
                what=f"reading labtemplate {namespace}/{template}",
                policy=policy,
            )
            return (found.get("status") or {}).get("prepull")

        prepuller = SITES.prepuller(
            # Per API client: an offline spawner (template-from-config) has one of its own.
            ("published", id(spawner.api.api_client), namespace, template, repr(settings)),
            lambda: PublishedPrepuller(settings, read, policy, log=spawner.log),
        )
        prepuller.ensure_running()
        return prepuller

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()  # type: ignore[misc]
        if self.operator_backend is not None:
            state.update(self.operator_backend.get_state())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        if self.operator_backend is not None:
            self.operator_backend.load_state(state)


class OperatorBackend:
    """One spawner's LabServer: created by ``start``, read by ``poll``, deleted by ``stop``."""

    def __init__(self, spawner: Any) -> None:
        self.spawner = spawner
        self.custom: Any = client.CustomObjectsApi(spawner.api.api_client)
        #: The LabServer's name (saved in the hub's state).
        self.name: str | None = None
        #: The last status seen, for progress.
        self.status: dict[str, Any] = {}

    @property
    def namespace(self) -> str:
        return str(self.spawner.namespace)

    async def _call(self, what: str, make: Any) -> Any:
        policy = self.spawner.kube_retry_policy()
        return await with_retries(lambda: json_reply(make()), what=what, policy=policy)

    async def read(self) -> dict[str, Any] | None:
        """The LabServer, or None when it does not exist."""
        if self.name is None:
            return None
        try:
            found: dict[str, Any] = await self._call(
                f"reading labserver {self.namespace}/{self.name}",
                lambda: self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, _PLURAL, self.name, _preload_content=False
                ),
            )
        except KubernetesError as error:
            if error.status == 404:
                return None
            raise
        self.status = found.get("status") or {}
        return found

    async def cached(self) -> dict[str, Any] | None:
        """The LabServer from the hub's shared watch (``LabServerReflector``); read from the
        API only when the watch has not seen it (just created, or gone)."""
        if self.name is None:
            return None
        reflector = await self._labservers()
        found: dict[str, Any] | None = reflector.resources.get(f"{self.namespace}/{self.name}")
        if found is None:
            return await self.read()
        self.status = found.get("status") or {}
        return found

    async def _labservers(self) -> LabServerReflector:
        reflector: LabServerReflector = await self.spawner._start_reflector(
            LABSERVER_REFLECTOR_KIND, LabServerReflector
        )
        return reflector

    async def change_waiter(self) -> asyncio.Event:
        """Set at the LabServer's next change in the hub's watch: taken before a look at
        it, then given to :meth:`next_change`, so no change after the look is missed."""
        reflector = await self._labservers()
        return reflector.waiter(f"{self.namespace}/{self.name}")

    @staticmethod
    async def next_change(
        waiter: asyncio.Event, seconds: float = _RECHECK_SECONDS, also: Any = None
    ) -> None:
        """Until ``waiter`` is set, ``also`` (a future) is done, or ``seconds`` have passed
        (at most ``_RECHECK_SECONDS``)."""
        changed = asyncio.ensure_future(waiter.wait())
        waits = {changed} if also is None else {changed, also}
        try:
            timeout = max(0.0, min(seconds, _RECHECK_SECONDS))
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()

    async def _delete(self, name: str) -> None:
        try:
            await self._call(
                f"deleting labserver {self.namespace}/{name}",
                lambda: self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, _PLURAL, name, _preload_content=False
                ),
            )
        except KubernetesError as error:
            if error.status != 404:
                raise

    async def _wait_gone(self, budget: float) -> None:
        deadline = time.monotonic() + budget
        while True:
            waiter = await self.change_waiter()
            if await self.cached() is None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"labserver {self.namespace}/{self.name} was not deleted within {budget:g}s"
                )
            await self.next_change(waiter, deadline - time.monotonic())

    async def start(self) -> str:
        """Declare the server, then wait until the operator reports its pod running."""
        spawner = self.spawner
        attempt = spawner._attempt()
        options = await attempt.load_options()
        identity = await attempt.load_identity()
        name = lab_server_name(spawner.user.name, spawner.name)
        self.name = name
        body = build_lab_server(
            username=spawner.user.name,
            servername=spawner.name,
            namespace=self.namespace,
            template=spawner.lab_template_name,
            identity=identity,
            image=lab_image(options.image).reference,
            size=options.size,
            enable_debug=options.enable_debug,
            reset_user_env=options.reset_user_env,
            hub_env=hub_env_from(spawner.get_env()),
            spawn_id=secrets.token_hex(8),
        )
        attempt.progress.step(f"Checked your identity: uid {identity.uid}, gid {identity.gid}", 5)
        created = await self._create(body)
        secret = build_hub_secret(
            body["spec"]["secretRef"]["name"],
            self.namespace,
            spawner.user.name,
            spawner.api_token or "",
            identity.git_token,
        )
        secret["metadata"]["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "LabServer",
                "name": name,
                "uid": created["metadata"]["uid"],
            }
        ]
        await self._create_secret(secret)
        attempt.progress.step(f"Declared your lab server {name}; the operator builds it", 10)
        try:
            return await asyncio.wait_for(self._wait_running(), spawner.start_timeout)
        except BaseException:
            await self._delete(name)
            raise

    async def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        what = f"creating labserver {self.namespace}/{name}"

        def create() -> Any:
            return self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, _PLURAL, body, _preload_content=False
            )

        try:
            created: dict[str, Any] = await self._call(what, create)
        except KubernetesError as error:
            if error.status != 409:
                raise
            found = await self.read()
            ours = body["metadata"].get("annotations", {}).get(SPAWN_ANNOTATION)
            if (
                ours is not None
                and found is not None
                and not found["metadata"].get("deletionTimestamp")
                and (found["metadata"].get("annotations") or {}).get(SPAWN_ANNOTATION) == ours
            ):
                return found  # this start's own create, whose reply was lost: retried
            # A leftover of a server that ended badly: its operator cleans it up first.
            await self._delete(name)
            await self._wait_gone(self.spawner.lab_delete_timeout)
            created = await self._call(what, create)
        return created

    async def _create_secret(self, secret: dict[str, Any]) -> None:
        """Create the hub's Secret; one already there (this start's own create whose reply
        was lost, or a leftover the garbage collector has not removed yet) is replaced:
        the hub may not read Secrets, and this one is the LabServer's just made."""
        name = secret["metadata"]["name"]
        what = f"creating secret {self.namespace}/{name}"
        api = self.spawner.api

        def create() -> Any:
            return api.create_namespaced_secret(self.namespace, secret, _preload_content=False)

        try:
            await self._call(what, create)
        except KubernetesError as error:
            if error.status != 409:
                raise
            try:
                await self._call(
                    f"deleting secret {self.namespace}/{name}",
                    lambda: api.delete_namespaced_secret(
                        name, self.namespace, _preload_content=False
                    ),
                )
            except KubernetesError as gone:
                if gone.status != 404:
                    raise
            await self._call(what, create)

    async def _wait_running(self) -> str:
        while True:
            waiter = await self.change_waiter()
            found = await self.cached()
            phase = self.status.get("phase")
            if found is None:
                raise LabBuildFailed(f"Your lab server {self.name} was deleted while it started")
            if phase == "Running" and self.status.get("podAddress"):
                return f"http://{self.status['podAddress']}:{self.spawner.port}"
            if phase in ("Rejected", "Failed"):
                raise LabBuildFailed(
                    f"Your lab could not start: {self.status.get('message') or phase}"
                )
            await self.next_change(waiter)

    async def url(self) -> str:
        """The lab's URL from the status, waiting while it starts; else the recorded one."""
        deadline = time.monotonic() + float(self.spawner.start_timeout)
        while time.monotonic() < deadline:
            waiter = await self.change_waiter()
            if await self.cached() is None:
                break
            if self.status.get("phase") == "Running" and self.status.get("podAddress"):
                return f"http://{self.status['podAddress']}:{self.spawner.port}"
            if self.status.get("phase") in ("Rejected", "Failed"):
                break
            await self.next_change(waiter, deadline - time.monotonic())
        server = self.spawner.server
        return str(server.url) if server is not None else ""

    async def poll(self) -> int | None:
        """None while the lab runs or starts; 0 when its LabServer is gone, 1 when it failed."""
        found = await self.cached()
        if found is None:
            return 0
        phase = self.status.get("phase")
        return 1 if phase in ("Rejected", "Failed") else None

    async def stop(self) -> None:
        """Delete the LabServer (the operator's finalizer removes its pod) and its Secret."""
        if self.name is None:
            return
        await self._delete(self.name)
        try:
            await self._wait_gone(self.spawner.lab_delete_timeout)
        except TimeoutError as error:
            # JupyterHub marks the server stopped whatever stop() raises, and logs nothing:
            # say it here, or the lab left behind is silent.
            self.spawner.log.error(
                "Stopping %s: %s; the operator has not finished its cleanup (its finalizer "
                "holds the LabServer); it goes on, and a new start waits for it",
                self.spawner._log_name,
                error,
            )
            raise

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The status' events as they appear, until the start ends."""
        spawner = self.spawner
        sent = 0
        attempt = spawner.lab_spawn
        steps = attempt.progress.events if attempt is not None else []
        for event in list(steps):
            yield event
        while True:
            future = spawner._start_future
            done = future is not None and future.done()
            waiter = await self.change_waiter()
            if self.name is not None:
                await self.cached()
            events = self.status.get("events") or []
            for event in events[sent:]:
                yield {
                    "progress": event.get("progress", 0),
                    "message": event.get("message", ""),
                    "severity": event.get("severity", "info"),
                    "timestamp": event.get("timestamp"),
                }
            sent = len(events)
            if done:
                break
            await self.next_change(waiter, also=future)

    def get_state(self) -> dict[str, Any]:
        return {"lab_server": self.name} if self.name else {}

    def load_state(self, state: dict[str, Any]) -> None:
        name = state.get("lab_server")
        if isinstance(name, str) and name:
            self.name = name
