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
- :class:`LabBuildFailed` (500): the site's configuration and KubeSpawner's pod
  cannot make a safe lab (a secret value copied into the environment, a pod
  without containers); the user cannot fix it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ClassVar, ParamSpec, TypeVar

from tornado.web import HTTPError

__all__ = [
    "IdentityRejected",
    "LabBuildFailed",
    "NoImageAvailable",
    "OptionsRejected",
    "SpawnRefused",
    "answers_http",
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


class LabBuildFailed(SpawnRefused):
    """The configuration and KubeSpawner's pod cannot make a safe lab."""

    status = 500


def to_http_error(error: SpawnRefused) -> HTTPError:
    """The ``HTTPError`` JupyterHub answers ``error`` with: its status and its message."""
    return HTTPError(error.status, error.message)


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
