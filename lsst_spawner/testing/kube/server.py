"""KubeEmulator: the API server, started in the caller's loop or in its own thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from ..loopback import LoopbackServer, LoopThread
from .api import build_app
from .apis import ApiGroups
from .authn import ADMIN_TOKEN
from .counters import RequestCounters
from .crds import CustomResources
from .faults import FaultInjector
from .kubeconfig import server_ssl_context, write_kubeconfig
from .openapi import newest_kubernetes_version
from .rbac_api import AccessControl
from .store import ObjectStore
from .validation import Validator

__all__ = ["KubeEmulator"]

T = TypeVar("T")


class KubeEmulator(LoopbackServer):
    """A Kubernetes core v1 API server on 127.0.0.1, backed by :class:`ObjectStore`.

    Use ``await start()``/``await stop()`` to run it in the current event loop,
    or ``start_in_thread()``/``stop_thread()`` to give it its own loop in a
    daemon thread (what the pytest fixture does, so synchronous tests and
    tests on any loop can use it; ``with KubeEmulator() as emulator:`` does the
    same). :meth:`call` runs a function on the emulator's loop from any thread;
    the inspection helpers use it. Its address, URL and thread are the test kit's
    :class:`~lsst_spawner.testing.loopback.LoopbackServer` ones.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        namespaces: Iterable[str] = ("default",),
        kubernetes_version: str | None = None,
        validate: bool = True,
        seed: int = 0,
        history_limit: int = 100_000,
        watch_timeout: int = 1800,
        gc_delay: float = 0.0,
        rbac: bool = True,
        tls: bool = False,
    ) -> None:
        super().__init__(host, port)
        # /version reports it; validation and /openapi use its schemas.
        self.kubernetes_version = kubernetes_version or newest_kubernetes_version()
        self.store = ObjectStore(
            Validator(self.kubernetes_version, schema=validate),
            history_limit=history_limit,
            gc_delay=gc_delay,
            seed=seed,
        )
        # CRDs (and the kinds they define) and Leases, served under /apis (apis.py).
        self.custom_resources = CustomResources(self.store)
        self.groups = ApiGroups(self.store)
        #: Seconds between BOOKMARK events on watches that allow them (and one at the end).
        self.bookmark_interval = 60.0
        # Bearer tokens and RBAC (off: every request is the administrator's).
        self.access = AccessControl(self, enabled=rbac)
        self.faults = FaultInjector(seed)
        self.counters = RequestCounters()
        self.watch_timeout = watch_timeout
        self.unavailable = False  # "down" in 503 mode
        self.log_providers: list[Callable[[str, str], str | None]] = []
        #: Pod subresources (``log``, ``exec``, ``attach``) a kubelet serves: handler(request,
        #: namespace, name) -> response.
        self.pod_subresources: dict[str, Callable[..., Awaitable[web.StreamResponse]]] = {}
        self._namespaces = list(namespaces)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = LoopThread("kube-emulator")
        self._restore: asyncio.TimerHandle | None = None
        #: The server's certificate (PEM) with ``tls=True``; kubeconfigs trust it as their CA.
        self.certificate_pem: bytes | None = None
        self._ssl: Any = None
        if tls:
            self._ssl, self.certificate_pem = server_ssl_context(host)
            self.scheme = "https"

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the emulator is not started")
        return self._loop

    # start()/stop() run the emulator in the caller's loop, so they are coroutines; the
    # base's blocking start()/stop() are start_in_thread()/stop_thread() here.
    async def start(self) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        for name in self._namespaces:
            if ("", name) not in self.store.objects["namespaces"]:
                self.store.create("namespaces", None, {"metadata": {"name": name}})
        self._runner = web.AppRunner(
            build_app(self), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await self._open()

    async def _open(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=self._ssl
        )
        await self._site.start()
        server: Any = self._site._server
        if server is not None and server.sockets:  # the port chosen for port=0
            self.port = server.sockets[0].getsockname()[1]

    async def _close_connections(self) -> None:
        self.store.close_watches()
        if self._runner is not None and self._runner.server is not None:
            for conn in self._runner.server.connections:
                if conn.transport is not None:
                    conn.transport.abort()

    async def stop(self) -> None:  # type: ignore[override]
        if self._restore is not None:
            self._restore.cancel()
        await self._close_connections()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    def start_in_thread(self) -> KubeEmulator:
        """Start in a daemon thread with its own loop; return once serving."""
        self._loop_thread.start(self.start, self.stop)
        self._running = True
        return self

    def stop_thread(self, timeout: float = 10) -> None:
        self._running = False
        self._loop_thread.stop(timeout)

    def __enter__(self) -> KubeEmulator:
        return self if self.running else self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the emulator's loop and return its result, from any thread."""
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop or self._loop_thread.loop is None:
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the emulator's loop from another thread (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    # -- faults that need the server ----------------------------------------------------

    async def down(self, seconds: float | None = None, mode: str = "refuse") -> None:
        """Take the API down: ``refuse`` closes the port, ``503`` answers every request 503.

        Existing connections, watches included, are dropped either way. With
        ``seconds`` the API comes back by itself; otherwise call :meth:`up`.
        """
        if mode not in ("refuse", "503"):
            raise ValueError("mode must be 'refuse' or '503'")
        await self._close_connections()
        if mode == "503":
            self.unavailable = True
        elif self._site is not None:
            await self._site.stop()
            self._site = None
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self._restore = loop.call_later(seconds, lambda: loop.create_task(self.up()))

    async def up(self) -> None:
        if self._restore is not None:
            self._restore.cancel()
            self._restore = None
        self.unavailable = False
        if self._site is None and self._runner is not None:
            await self._open()

    async def drop_watches(self) -> None:
        """End every open watch stream (clients see the stream close and re-watch)."""
        self.store.close_watches()

    # -- kubeconfig and inspection ------------------------------------------------------

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        namespace: str = "default",
        token: str = ADMIN_TOKEN,
    ) -> Path:
        """A kubeconfig for ``token``'s user (default: the administrator)."""
        return write_kubeconfig(path, self.url, namespace, token=token, ca_pem=self.certificate_pem)

    def pod_log(self, namespace: str, name: str) -> str:
        for provider in self.log_providers:
            text = provider(namespace, name)
            if text is not None:
                return text
        return ""

    def get_object(self, resource: str, name: str, namespace: str | None = "default") -> Any:
        """A copy of one object, or None when it does not exist."""

        def read() -> Any:
            rtype = self.store.resource_type(resource)
            key = ((namespace or "") if rtype.namespaced else "", name)
            obj = self.store.objects[resource].get(key)
            return copy.deepcopy(obj)

        return self.call(read)

    def list_objects(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the matching objects (all namespaces when ``namespace`` is None)."""
        return self.call(
            lambda: copy.deepcopy(
                self.store.list(resource, namespace, label_selector, field_selector)[0]
            )
        )

    def create_object(
        self, resource: str, body: dict[str, Any], namespace: str | None = "default"
    ) -> dict[str, Any]:
        """Create an object directly in the store (validated, no faults, not counted)."""
        return self.call(lambda: copy.deepcopy(self.store.create(resource, namespace, body)[0]))
