"""What the hub starts when it starts, before anybody spawns: the spawner class's background tasks.

JupyterHub 5 and 6 have no start-up hook for a spawner class: a spawner object is
made only when a user's server is started, or at hub start for a server recorded
as running. The leftover sweep (:mod:`lsst_spawner.kube.sweep`), started by the
first spawner, would then not run after a restart with nobody spawning.

What both lines do run at start is the configuration: ``JupyterHub.initialize()``
creates the future that ``start()`` resolves once the hub serves, then loads the
configuration file, on the hub's running event loop. :func:`start_with_hub`,
called from the configuration (:func:`lsst_spawner.config.load_config_dir` calls
it, so every configuration made of snippets does), adds a callback to that
future: once the hub has started, one spawner of the hub's ``spawner_class`` is
made for no user (:data:`HUB_START_USER`, never started) and its constructor starts
the background tasks as the first user's spawner would (once per process), with
the spawner's own settings, Kubernetes client and the hub's service account.
Outside a starting hub (``check-config``, tools, tests) it does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .offline import OfflineUser

__all__ = ["HUB_START_USER", "START_WITH_HUB", "start_with_hub"]

_LOG = logging.getLogger(__name__)
#: The user name of the spawner made at hub start (never started; no such user is created).
HUB_START_USER = "lsst-spawner-hub-start"
#: Class attribute a spawner class sets to True to be made once when the hub has started.
START_WITH_HUB = "lab_starts_with_hub"
#: Where the application records the start it arranged the callback for.
_ARRANGED = "_lsst_start_with_hub"


def _starting_hub() -> Any:
    """This process's JupyterHub application while it starts on the running loop, or None."""
    try:
        from jupyterhub.app import JupyterHub
    except ImportError:  # pragma: no cover - jupyterhub is a dependency
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if not JupyterHub.initialized():
        return None
    app = JupyterHub.instance()
    started = getattr(app, "_start_future", None)  # JupyterHub 5.0 to 6.x
    if not isinstance(started, asyncio.Future) or started.done() or started.get_loop() is not loop:
        return None
    return app


def start_with_hub() -> bool:
    """Make one spawner of the hub's class when the starting hub has started; True if arranged.

    Does nothing (False) outside a JupyterHub that is starting on the running loop.
    """
    app = _starting_hub()
    if app is None:
        return False
    started: asyncio.Future[Any] = app._start_future
    if app.__dict__.get(_ARRANGED) is started:
        return True  # arranged already (the configuration called this twice)
    app.__dict__[_ARRANGED] = started

    def hub_started(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            make_hub_start_spawner(app)

    started.add_done_callback(hub_started)
    return True


def make_hub_start_spawner(app: Any) -> Any:
    """The spawner made at hub start, for no user; ``None`` when the class does not ask for it.

    Its constructor starts the class's background tasks. A configuration with
    problems is logged (the first spawn then fails with the same problems).
    """
    spawner_class = app.spawner_class
    if not getattr(spawner_class, START_WITH_HUB, False):
        return None
    log = getattr(app, "log", _LOG)
    try:
        spawner = spawner_class(
            config=app.config, user=OfflineUser(HUB_START_USER, None), hub=app.hub
        )
    except Exception as error:
        log.error("lsst_spawner: the hub's background tasks did not start: %s", error)
        return None
    log.info("lsst_spawner: background tasks started with the hub (no spawn needed)")
    return spawner
