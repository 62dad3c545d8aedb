"""Why a spawn was refused, with the HTTP status and the message the user sees.

The spawn attempt raises these; :func:`to_http_error` is the one place they
become tornado's :class:`~tornado.web.HTTPError`, which JupyterHub shows in the
form or returns from the REST API. The status belongs to the error, not to
whoever catches it:

- :class:`OptionsRejected` (400): the user's options are not acceptable; the
  message names the field. :class:`NoImageAvailable` (503) when there is no
  image to offer at all.
- :class:`IdentityRejected` (403): the user's identity cannot run a lab (no
  identity in auth_state, a uid the lab rules refuse, too many groups).
- :class:`ImagePullFailed` (503): the kubelet cannot pull the lab's image; the spawn
  stops after ``lab_image_pull_grace`` instead of waiting out ``start_timeout``.
- :class:`LabStartFailed` (503): the lab's pod cannot start (a Secret or ConfigMap it
  reads is missing, an init container fails); the spawn stops after
  ``lab_start_failure_grace``.
- :class:`LabBuildFailed` (500): the site's configuration and KubeSpawner's pod
  cannot make a safe lab (a secret value copied into the environment, a pod
  without containers); the user cannot fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ClassVar, ParamSpec, TypeVar

from tornado.web import HTTPError

__all__ = [
    "IdentityRejected",
    "ImagePullFailed",
    "LabBuildFailed",
    "LabStartFailed",
    "NoImageAvailable",
    "OptionsRejected",
    "RefusalHTTPError",
    "SpawnRefused",
    "answers_http",
    "log_refusals_as_warnings",
    "to_http_error",
]


class SpawnRefused(Exception):
    """A spawn (or a form submission) refused for a reason the user is told."""

    #: The HTTP status JupyterHub answers with.
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: Shown to the user, in the form or the REST API's reply.
        self.message = message


class OptionsRejected(SpawnRefused):
    """The user's options were refused; ``field`` names the option when there is one."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NoImageAvailable(OptionsRejected):
    """No image can be offered (an empty menu): the service is unavailable, not the request bad."""

    status = 503


class IdentityRejected(SpawnRefused):
    """The user's identity cannot run a lab."""

    status = 403


class ImagePullFailed(SpawnRefused):
    """The kubelet cannot pull the lab's image: the spawn stops instead of timing out."""

    status = 503


class LabStartFailed(SpawnRefused):
    """The lab's pod cannot start for a reason the kubelet would retry until start_timeout."""

    status = 503


class LabBuildFailed(SpawnRefused):
    """The configuration and KubeSpawner's pod cannot make a safe lab."""

    status = 500


def to_http_error(error: SpawnRefused) -> HTTPError:
    """The ``HTTPError`` JupyterHub answers ``error`` with: its status and its message.

    ``jupyterhub_message`` is what JupyterHub's pages show (the form, the spawn-failed
    page): the plain message, not ``HTTP 400: Bad Request (...)``.
    """
    return RefusalHTTPError(error)


class RefusalHTTPError(HTTPError):
    """An ``HTTPError`` that reads as the user's message.

    JupyterHub 6 shows ``jupyterhub_message``; JupyterHub 5.0 shows ``str(error)``, which
    tornado makes ``HTTP 400: Bad Request (...)``: both get the plain message.
    """

    def __init__(self, refusal: SpawnRefused) -> None:
        super().__init__(refusal.status, refusal.message)
        self.jupyterhub_message = refusal.message
        self.lsst_refusal = refusal

    def __str__(self) -> str:
        return self.jupyterhub_message


_P = ParamSpec("_P")
_T = TypeVar("_T")


def answers_http(
    function: Callable[_P, Awaitable[_T]],
) -> Callable[_P, Awaitable[_T]]:
    """Decorate a spawner hook so that a :class:`SpawnRefused` leaves it as an ``HTTPError``."""

    @wraps(function)
    async def hook(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await function(*args, **kwargs)
        except SpawnRefused as error:
            raise to_http_error(error) from None

    return hook


class _RefusalsAsWarnings(logging.Filter):
    """JupyterHub logs a refused form as an error with a traceback; a user's bad input is
    a warning, one line, with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        refusal = getattr(error, "lsst_refusal", None)
        if isinstance(refusal, SpawnRefused) and refusal.status < 500:
            text = record.getMessage()
            record.msg, record.args = "%s: %s", (text, refusal.message)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


_FILTER = _RefusalsAsWarnings()


def log_refusals_as_warnings(log: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
    """Log users' refused input (4xx refusals) on ``log`` at warning level, without traceback."""
    logger = log.logger if isinstance(log, logging.LoggerAdapter) else log
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
