"""The Kubernetes I/O edge: bounded retries of transient failures, as a :class:`RetryPolicy`.

Everything that talks to the Kubernetes API for a lab goes through
:func:`with_retries` with a :class:`RetryPolicy`: each request is bounded by its
request timeout, transient
failures (connection resets, server disconnects, timeouts, HTTP 429, 500,
502, 503, 504) are retried with exponential backoff and jitter until a
budget runs out, and any other error is raised at once as
:class:`KubernetesError` carrying the API's own message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = [
    "TRANSIENT_ERRORS",
    "TRANSIENT_STATUSES",
    "KubernetesError",
    "RetryPolicy",
    "api_message",
    "is_transient",
    "request_json",
    "request_raw",
    "request_without_reply",
    "retry_after_seconds",
    "skip_unused_environment_lookups",
    "with_retries",
]

T = TypeVar("T")

#: Where retries are logged when the caller passes no logger (the spawner passes its own).
_LOG = logging.getLogger(__name__)
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]

#: HTTP statuses worth retrying: rate limiting and server-side trouble.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Exceptions worth retrying: connection resets, server disconnects, timeouts.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientOSError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientConnectionResetError,
    ConnectionResetError,
    TimeoutError,  # asyncio.TimeoutError and aiohttp.ServerTimeoutError too
)


@dataclass(frozen=True)
class RetryPolicy:
    """How Kubernetes requests are bounded and retried: one value, passed to every call.

    ``budget`` is the total time transient failures are retried for and
    ``request_timeout`` bounds each attempt; delays grow as ``base_delay * 2**n``
    up to ``max_delay``. ``log`` receives the retry warnings (the module's
    logger when ``None``); it is not part of the value's equality.
    """

    budget: float
    request_timeout: float
    base_delay: float = 0.5
    max_delay: float = 15.0
    log: Log | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("budget", "request_timeout", "base_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"RetryPolicy.{name} must be a positive number, not {value!r}")

    def with_budget(self, budget: float) -> RetryPolicy:
        """This policy with another total budget (deletions have their own)."""
        return replace(self, budget=budget)

    def with_log(self, log: Log | None) -> RetryPolicy:
        """This policy logging to ``log``."""
        return replace(self, log=log)

    @property
    def logger(self) -> Log:
        return self.log or _LOG


class KubernetesError(Exception):
    """A Kubernetes request failed for good; ``status`` is the HTTP status when there is one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_message(error: ApiException) -> str:
    """Return the API server's message from an ``ApiException`` (its Status ``message``)."""
    body: Any = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            status = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return str(error.reason or "no message")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying."""
    if isinstance(error, ApiException):
        return error.status in TRANSIENT_STATUSES
    return isinstance(error, TRANSIENT_ERRORS)


def retry_after_seconds(error: BaseException, now: float | None = None) -> float | None:
    """Return the ``Retry-After`` delay of a 429 or 503 reply in seconds, or None."""
    if not isinstance(error, ApiException) or error.status not in (429, 503):
        return None
    headers: Any = error.headers or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Slots(Protocol):
    """What ``with_retries`` waits on before each attempt (an ``Admission``, a semaphore)."""

    async def acquire(self) -> object: ...

    def release(self) -> None: ...


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
    admission: Slots | None = None,
) -> T:
    """Run ``call`` until it succeeds, retrying transient failures within ``policy.budget``.

    Each attempt is bounded by ``policy.request_timeout`` (and by what is left of
    the budget). With ``admission``, an attempt first waits for one of its slots, and
    that wait is charged to neither: a request queued behind its own client's other
    requests has not been sent, so the API server has not been slow. Delays grow as
    ``base_delay * 2**n`` up to ``max_delay``, scaled by a random factor in [0.5, 1) so
    many spawners do not retry in step; a ``Retry-After`` header sets the minimum delay.
    When the next attempt would start after the budget, :class:`KubernetesError` is
    raised naming ``what`` and the last error. Non-transient errors raise at once. Time
    a stalled event loop adds to a wait beyond its planned end is not charged to the
    budget.
    """
    budget, request_timeout = policy.budget, policy.request_timeout
    deadline = clock() + budget
    attempt = 0
    while True:
        attempt += 1
        if admission is not None:
            queued = clock()
            await admission.acquire()
            deadline += clock() - queued
        timeout = max(0.001, min(request_timeout, deadline - clock()))
        started = clock()
        try:
            return await asyncio.wait_for(call(), timeout)
        except ApiException as error:
            if not is_transient(error):
                raise KubernetesError(
                    f"{what}: {error.status} {api_message(error)}", error.status
                ) from error
            last: BaseException = error
            detail = f"{error.status} {api_message(error)}"
        except TRANSIENT_ERRORS as error:
            last = error
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        finally:
            if admission is not None:
                admission.release()
        deadline += _late_wake_up(clock, started, timeout)
        delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)) * (0.5 + jitter() / 2)
        hinted = retry_after_seconds(last)
        if hinted is not None:
            delay = max(delay, hinted)
        if clock() + delay >= deadline:
            status = last.status if isinstance(last, ApiException) else None
            raise KubernetesError(
                f"{what}: still failing after {attempt} attempt(s) within the {budget:g}s retry "
                f"budget; last error: {detail}",
                status,
            ) from last
        policy.logger.warning(
            "Retrying %s in %.1fs after a transient failure (attempt %d): %s",
            what,
            delay,
            attempt,
            detail,
        )
        slept_from = clock()
        await sleep(delay)
        deadline += _late_wake_up(clock, slept_from, delay)


def _late_wake_up(clock: Callable[[], float], since: float, planned: float) -> float:
    """How much later than ``planned`` seconds after ``since`` a wait ended: time the hub's
    event loop was stalled (a timeout cannot fire, nor a sleep end, while it is blocked).

    That time is the hub's, not the API server's, so it is not charged to the retry
    budget: a loop stalled past the budget would otherwise fail a request after one
    attempt whose timeout fired late (seen at N=3,000: a 150 s stall, "still failing
    after 1 attempt(s) within the 120s retry budget; last error: TimeoutError").
    """
    return max(0.0, clock() - since - planned)


async def request_without_reply(
    method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> None:
    """Call a ``CoreV1Api`` method and discard the reply without decoding it.

    The hub never reads what a create or a delete returns, and decoding it into
    a model (``V1Pod``, ``V1Status``, ...) is most of the client's CPU for such
    a request. With ``_preload_content=False`` ``kubernetes_asyncio`` returns
    the raw response and raises nothing, so an error status is raised here as
    the same :class:`ApiException` it would have raised (status, reason,
    headers and the API's Status body).
    """
    await request_raw(method, *args, **kwargs)


async def request_json(method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """Call a ``CoreV1Api`` method and return its reply as plain JSON (no model objects).

    Errors are raised as :func:`request_without_reply` raises them.
    """
    return json.loads(await request_raw(method, *args, **kwargs))


async def request_raw(method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> bytes:
    """:func:`request_without_reply`, returning the reply's body undecoded (a list's JSON)."""
    response = await method(*args, _preload_content=False, **kwargs)
    try:
        data = await response.read()  # also returns the connection to the pool
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        error = ApiException(status=response.status, reason=response.reason)
        error.body = data.decode("utf-8", "replace")
        error.headers = response.headers
        raise error
    return bytes(data)


#: The aiohttp sessions already looked at by skip_unused_environment_lookups. Weak, not
#: ``id()``s: a closed session's id can be reused by the next one, which would be skipped.
_LOOKED_AT: weakref.WeakSet[aiohttp.ClientSession] = weakref.WeakSet()


def skip_unused_environment_lookups(api: Any) -> bool | None:
    """Stop per-request proxy and netrc lookups that can only find nothing.

    ``kubernetes_asyncio`` makes its aiohttp session with ``trust_env=True``, so
    before *every* request aiohttp reads the netrc file and the proxy variables,
    each in a worker thread: measured at about 0.4 ms of hub CPU per request
    (0.5 against 0.15 ms). Every request of a client goes to the same API
    server, so the answer is known once: when no proxy variable applies to the
    API server's URL (``HTTP(S)_PROXY``, ``NO_PROXY``) and no netrc entry names
    its host, the lookups are turned off for the session. Otherwise nothing
    changes. ``api`` is a ``kubernetes_asyncio`` API object (KubeSpawner's
    shared ``CoreV1Api``). Returns True when turned off, False when kept, None
    when already looked at or not an aiohttp-backed client.
    """
    session = getattr(
        getattr(getattr(api, "api_client", None), "rest_client", None), "pool_manager", None
    )
    if not isinstance(session, aiohttp.ClientSession) or session in _LOOKED_AT:
        return None
    _LOOKED_AT.add(session)
    if not session.trust_env:
        return None
    try:  # aiohttp's own lookups (3.9+; kept as they are if these ever move)
        from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
        from yarl import URL  # aiohttp's URL type
    except ImportError:
        return False
    url = URL(str(api.api_client.configuration.host))
    try:
        get_env_proxy_for_url(url)
    except LookupError:
        pass  # no proxy for the API server
    else:
        return False
    try:
        basicauth_from_netrc(netrc_from_env(), url.host or "")
    except LookupError:
        pass  # no netrc credentials for it
    else:
        return False
    session._trust_env = False  # what aiohttp reads before each request
    return True
