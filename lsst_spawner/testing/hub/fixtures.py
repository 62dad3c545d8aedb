"""The ``lsst_hub`` fixture: a JupyterHub in the test's own process, running LSSTSpawner.

It builds on pytest-jupyterhub: its ``hub_app`` fixture starts (and afterwards
stops) JupyterHub's own ``MockHub`` from the configuration ``lsst_hub`` puts
together: the site's ``jupyterhub_config.py`` or ``jupyterhub_config.d``, then
the test's own settings, then what the kit needs — the ``kube_api`` fixture's
namespace (its kubeconfig is already the process's), loopback addresses, an
in-memory proxy, an authenticator that logs anyone in with a derived identity,
and an admin service token for :meth:`InProcessHub.request`.

Everything runs on the test's event loop, so every call is ``await``-ed. For
what needs a real ``jupyterhub`` process (the proxy, a browser, restarts) use
:class:`~lsst_spawner.testing.hub.HubProcess`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yarl
from jupyterhub.proxy import Proxy
from traitlets.config import Config

from lsst_spawner.site import forget_sites

from ...config import load_config_dir
from ...identity import Identity
from ...kube.sweep import stop_sweeps
from ..kube.fixtures import KubeHandle
from ..kube.kubelet import ProcessKubelet
from ..oauth.identity import StaticIdentityAuthenticator, identity_for
from ..ports import free_port
from ..registry.fixtures import RegistryFixture
from .process import ADMIN_SCOPES, spawn_body

__all__ = ["InMemoryProxy", "InProcessHub", "LSSTHubFactory", "lsst_hub", "site_config"]

#: The image repository of a static menu given as a list of tags.
STATIC_IMAGE_BASE = "registry.example.org/lsst-test/sciplat-lab"
SERVICE = "lsst-test"


class InMemoryProxy(Proxy):
    """A proxy that only keeps the route table: the in-process hub needs no proxy process."""

    should_start = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.routes: dict[str, dict[str, Any]] = {}

    async def add_route(self, routespec: str, target: str, data: dict[str, Any]) -> None:
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec: str) -> None:
        self.routes.pop(routespec, None)

    async def get_all_routes(self) -> dict[str, dict[str, Any]]:
        return dict(self.routes)


def site_config(
    *,
    config_dir: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    over: Config | None = None,
) -> Config:
    """The site's configuration as the hub loads it, with ``over`` applied, then checked.

    Snippets run in order (:func:`~lsst_spawner.config.load_config_dir`); the
    spawner is ``lsst`` unless the configuration names another. A configuration
    the hub would refuse to start with fails the test with the hub's own message.
    """
    from ...checks import validate_config_or_exit
    from ...cli import CommandError, load_hub_config

    config = Config()
    try:
        if config_file is not None:
            config.merge(load_hub_config(Path(config_file)))
        if config_dir is not None:
            load_config_dir(config, Path(config_dir), validate=False)
        if over is not None:
            config.merge(over)
        if "spawner_class" not in config.JupyterHub:
            config.JupyterHub.spawner_class = "lsst"
        validate_config_or_exit(config)
    except SystemExit as stop:
        pytest.fail(f"the hub would not start: {stop.code}", pytrace=False)
    except CommandError as error:
        pytest.fail(f"the hub would not start: {error}", pytrace=False)
    return config


def _menu_config(images: RegistryFixture | Sequence[str] | Mapping[str, str]) -> Config:
    """Spawner settings for a real registry's menu, or a static one of the given tags."""
    c = Config()
    if isinstance(images, RegistryFixture):
        c.LSSTSpawner.image_source = "registry"
        c.LSSTSpawner.registry_host = images.host_port
        c.LSSTSpawner.registry_repository = images.repository
        c.LSSTSpawner.registry_insecure_hosts = list(images.insecure)
        return c
    if isinstance(images, str):
        raise TypeError(f"images must be a list of tags or a registry fixture, not {images!r}")
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = STATIC_IMAGE_BASE
    c.LSSTSpawner.static_image_tags = list(images)
    if isinstance(images, Mapping):
        c.LSSTSpawner.static_image_digests = {k: v for k, v in images.items() if v}
    return c


class InProcessHub:
    """A started in-process hub, with what a test does with it, all over the REST API."""

    def __init__(
        self, app: Any, kube_api: KubeHandle, token: str, kubelet: ProcessKubelet | None
    ) -> None:
        self.app = app
        self.kube_api = kube_api
        self.kubelet = kubelet
        self._token = token
        #: The hub's own HTTP server (there is no proxy in front of it).
        self.url = app.hub.url.rstrip("/")
        self.identities: dict[str, Identity] = {}

    async def request(
        self, method: str, path: str, body: Any = None, *, encoded: bool = False
    ) -> tuple[int, Any]:
        """Call the REST API (``/hub/api`` + ``path``) with the admin service token.

        ``body`` is sent as JSON, or as it is when it is ``bytes`` (a malformed body).
        ``encoded``: ``path`` is sent exactly as given (already quoted; ``..`` kept).
        """
        headers = {"Authorization": f"token {self._token}"}
        sent: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        url = yarl.URL(f"{self.url}/api{path}", encoded=encoded)
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, headers=headers, **sent) as reply,
        ):
            text = await reply.text()
            try:
                return reply.status, (await reply.json(content_type=None)) if text else None
            except ValueError:
                return reply.status, text

    def spawn_body(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The body of ``POST /users/{name}/server`` for ``options``, for this JupyterHub."""
        import jupyterhub

        return spawn_body(jupyterhub.__version__, options)

    async def add_user(self, name: str, identity: Identity | None = None) -> Identity:
        """Create ``name`` with ``identity`` (default: :func:`identity_for`) in its auth_state."""
        identity = identity or identity_for(name)
        status, reply = await self.request("POST", f"/users/{name}")
        if status not in (201, 409):
            raise AssertionError(f"creating user {name!r}: {status} {reply}")
        auth_state = {"auth_state": {"identity": identity.to_dict()}}
        status, reply = await self.request("PATCH", f"/users/{name}", auth_state)
        if status != 200:
            raise AssertionError(f"setting the identity of {name!r}: {status} {reply}")
        self.identities[name] = identity
        return identity

    def spawner(self, name: str) -> Any:
        """The user's default-server spawner, as the hub holds it."""
        return self.app.users[name].spawner

    async def start(self, name: str, options: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """Ask for ``name``'s server (options as the REST API takes them); the hub's reply.

        The user must exist (:meth:`add_user`, or the REST API for a raw auth_state).
        """
        body = None if options is None else self.spawn_body(options)
        return await self.request("POST", f"/users/{name}/server", body)

    async def wait_ready(self, name: str, within: float = 60) -> dict[str, Any]:
        """Wait until ``name``'s server is ready; its model. Fails with the hub's reason."""
        try:
            async with asyncio.timeout(within):
                while True:
                    status, model = await self.request("GET", f"/users/{name}")
                    assert status == 200, model
                    server = model["servers"].get("")
                    if server and server["ready"]:
                        return dict(server)
                    if not server:
                        self._raise_if_failed(name)
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"the server of {name!r} is not ready after {within:g}s") from None

    def _raise_if_failed(self, name: str) -> None:
        spawner = self.spawner(name)
        future = getattr(spawner, "_spawn_future", None)
        if future is not None and future.done() and future.exception():
            raise AssertionError(f"the spawn of {name!r} failed: {future.exception()}")
        if not spawner.pending:
            raise AssertionError(f"{name!r} has no server and none is starting")

    async def spawn(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        identity: Identity | None = None,
        within: float = 60,
    ) -> dict[str, Any]:
        """Start ``name``'s lab through the REST API, wait until it is ready; its pod."""
        if identity is not None or name not in self.identities:
            await self.add_user(name, identity)
        status, reply = await self.start(name, options)
        if status not in (201, 202):
            raise AssertionError(f"the hub refused to spawn {name!r}: {status} {reply}")
        await self.wait_ready(name, within)
        pod = await self.kube_api.get("pods", self.spawner(name).pod_name)
        assert pod is not None, f"the server of {name!r} is ready but it has no pod"
        return dict(pod)

    async def stop(self, name: str, within: float = 60) -> None:
        """Stop ``name``'s server through the REST API and wait until it is gone."""
        status, reply = await self.request("DELETE", f"/users/{name}/server")
        if status not in (202, 204):
            raise AssertionError(f"the hub refused to stop {name!r}: {status} {reply}")
        try:
            async with asyncio.timeout(within):
                while True:
                    _, model = await self.request("GET", f"/users/{name}")
                    if not model["servers"]:
                        return
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"the server of {name!r} still exists after {within:g}s") from None

    async def login(self, name: str) -> aiohttp.ClientSession:
        """A browser-like session logged in as ``name`` (the kit's authenticator's form).

        The caller closes it (``async with await hub.login(name) as browser:``).
        """
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            async with session.get(f"{self.url}/login") as reply:
                assert reply.status == 200, await reply.text()
            xsrf = next(c.value for c in session.cookie_jar if c.key == "_xsrf")
            form = {"username": name, "password": name, "_xsrf": xsrf}
            async with session.post(f"{self.url}/login", data=form) as reply:
                assert reply.status == 200, await reply.text()
        except BaseException:
            await session.close()
            raise
        return session


LSSTHubFactory = Callable[..., Awaitable[InProcessHub]]


def _kit_config(kube_api: KubeHandle, base_url: str, token: str, site: Config) -> Config:
    """What the kit sets over every site configuration."""
    c = Config()
    c.JupyterHub.bind_url = f"http://127.0.0.1:{free_port()}{base_url}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{free_port()}"
    c.JupyterHub.proxy_class = InMemoryProxy
    c.LSSTSpawner.namespace = kube_api.namespace
    hub = site.JupyterHub if site._has_section("JupyterHub") else Config()
    services = list(hub.get("services", []))
    roles = list(hub.get("load_roles", []))
    c.JupyterHub.services = [*services, {"name": SERVICE, "api_token": token}]
    role = {"name": SERVICE, "scopes": ADMIN_SCOPES, "services": [SERVICE]}
    c.JupyterHub.load_roles = [*roles, role]
    return c


def _allow_all_sections(config: Config) -> set[str]:
    """The sections of ``config`` that set ``allow_all`` (the site's own choice)."""
    return {
        name for name in config if isinstance(config[name], Config) and "allow_all" in config[name]
    }


def _undo_mockhub_allow_all(authenticator: Any, site_sections: set[str]) -> None:
    """Give ``allow_all`` back its own default when the site did not set it.

    MockHub sets ``Authenticator.allow_all = True`` unless the configuration has
    it, which would let anyone past a site's allow rules (``allowed_users``, an
    authenticator's organizations or groups) that a real hub would apply.
    """
    if not any(cls.__name__ in site_sections for cls in type(authenticator).__mro__):
        authenticator.allow_all = authenticator.trait_defaults("allow_all")


def _keep_the_loop_at_shutdown(app: Any) -> None:
    """Keep JupyterHub 5.0's shutdown from stopping the test's event loop.

    pytest-jupyterhub's ``hub_app`` ends with the hub's ``shutdown_cancel_tasks``.
    JupyterHub releases without ``_stop_event_loop`` (which MockHub overrides; 5.0.0
    has none, 6.1 has it) call ``loop.stop()`` there themselves, and pytest-asyncio
    then fails to close the test's loop ("Event loop stopped before Future completed").
    """
    from jupyterhub.app import JupyterHub

    if hasattr(JupyterHub, "_stop_event_loop"):
        return
    shutdown = app.shutdown_cancel_tasks

    async def shutdown_keeping_the_loop(sig: Any = None) -> None:
        loop = asyncio.get_running_loop()
        loop.stop = lambda: None  # type: ignore[method-assign]
        try:
            await shutdown(sig)
        finally:
            del loop.stop

    app.shutdown_cancel_tasks = shutdown_keeping_the_loop


async def _stop_servers(app: Any) -> None:
    """Stop every running server while the emulator and the kubelet are still there."""
    stops = [
        user.stop(name)
        for user in list(app.users.values())
        for name, spawner in list(user.spawners.items())
        if spawner.active
    ]
    if stops:
        await asyncio.wait_for(asyncio.gather(*stops, return_exceptions=True), 120)


@pytest.fixture
async def lsst_hub(
    kube_api: KubeHandle,
    kubelet: ProcessKubelet | None,
    hub_app: Callable[[Config], Awaitable[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[LSSTHubFactory]:
    """A factory: ``hub = await lsst_hub(config_dir=..., images=[...])`` starts an in-process hub.

    Arguments (all optional): ``config_dir`` (a ``jupyterhub_config.d``) and/or
    ``config_file`` (a ``jupyterhub_config.py``), loaded and checked as at hub
    start; ``config``, a :class:`~traitlets.config.Config` or dict applied over
    them; ``images``, a list of tags (or ``{tag: digest}``) for a static menu or
    the ``registry`` fixture for a real one; ``authenticator``, the class that
    logs users in (default :class:`StaticIdentityAuthenticator`; ``None`` keeps
    the site's); ``kubelet_mode``, ``"stub"`` (default: pods answer HTTP, no
    command runs) or ``"process"``. ``JUPYTERHUB_CRYPT_KEY`` is set for the test
    when it is not. Pods go to ``kube_api``'s namespace. Servers still running
    at the end are stopped before the emulator goes away.
    """
    from jupyterhub import crypto
    from kubespawner import KubeSpawner, clients

    if not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
        monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", secrets.token_hex(32))
    # CryptKeeper is a process-wide singleton that read the key once, maybe before this test.
    keeper = crypto.CryptKeeper.instance()
    monkeypatch.setattr(keeper, "keys", keeper._keys_default())
    clients.load_config.cache_clear()  # this test's kubeconfig (kube_api)
    started: list[InProcessHub] = []

    async def start(
        *,
        config_dir: str | os.PathLike[str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        config: Config | Mapping[str, Any] | None = None,
        images: RegistryFixture | Sequence[str] | Mapping[str, str] | None = None,
        authenticator: type | str | None = StaticIdentityAuthenticator,
        kubelet_mode: str = "stub",
    ) -> InProcessHub:
        if started:
            raise RuntimeError("lsst_hub starts one hub per test (JupyterHub is a singleton)")
        if kubelet_mode not in ("stub", "process"):
            raise ValueError(f"kubelet_mode must be 'stub' or 'process', not {kubelet_mode!r}")
        if kubelet is not None:
            kubelet.mode = kubelet_mode  # type: ignore[assignment]
        over = _menu_config(images) if images is not None else Config()
        over.merge(Config(config or {}))
        if authenticator is not None:
            over.JupyterHub.authenticator_class = authenticator
        over.Authenticator.enable_auth_state = True  # the identity lives in auth_state
        merged = site_config(config_dir=config_dir, config_file=config_file, over=over)
        site_bind = merged.JupyterHub.get("bind_url", "")
        base_url = urlsplit(site_bind).path or "/"
        token = secrets.token_hex(24)
        merged.merge(_kit_config(kube_api, base_url, token, merged))
        site_allow_all = _allow_all_sections(merged)
        app = await hub_app(merged)
        _undo_mockhub_allow_all(app.authenticator, site_allow_all)
        _keep_the_loop_at_shutdown(app)
        hub = InProcessHub(app, kube_api, token, kubelet)
        started.append(hub)
        return hub

    yield start
    if started:
        await _stop_servers(started[0].app)
    stop_sweeps()  # the hub's leftover sweep runs on this test's event loop
    forget_sites()  # and so do its menu refreshes and prepuller
    # KubeSpawner's reflectors are shared by the class and watch this test's emulator.
    await KubeSpawner._stop_all_reflectors()
    clients.load_config.cache_clear()
