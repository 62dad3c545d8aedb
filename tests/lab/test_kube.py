"""The Kubernetes I/O edge: retries of transient failures within a budget, and cleanup."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from lsst_spawner.kube import (
    KubernetesError,
    RetryPolicy,
    api_message,
    create_replacing,
    delete_lab_config,
    delete_lab_objects,
    is_transient,
    request_without_reply,
    retry_after_seconds,
    with_retries,
)
from lsst_spawner.kube.objects import has_legacy_env_secret


def api_error(
    status: int, message: str = "boom", headers: dict[str, str] | None = None
) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message}).encode()
    error.headers = headers
    return error


class Clock:
    """A fake monotonic clock advanced by the fake sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(errors: list[BaseException], result: Any = "ok") -> Callable[[], Any]:
    calls = iter(errors)

    async def call() -> Any:
        error = next(calls, None)
        if error is not None:
            raise error
        return result

    return call


async def retry(call: Callable[[], Any], clock: Clock, budget: float = 60) -> Any:
    return await with_retries(
        call,
        what="creating pod labs/nb-rra",
        policy=RetryPolicy(budget=budget, request_timeout=5),
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 1.0,
    )


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ServerDisconnectedError(),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        aiohttp.ServerTimeoutError("read timeout"),
        api_error(429),
        api_error(500),
        api_error(502),
        api_error(503),
        api_error(504),
    ],
)
async def test_transient_failures_are_retried(error: BaseException) -> None:
    clock = Clock()
    assert is_transient(error)
    assert await retry(failing([error, error]), clock) == "ok"
    assert len(clock.sleeps) == 2


async def test_backoff_grows_exponentially_with_jitter() -> None:
    clock = Clock()
    errors: list[BaseException] = [api_error(503)] * 4
    await with_retries(
        failing(errors),
        what="x",
        policy=RetryPolicy(budget=60, request_timeout=5),
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 0.0,
    )
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "bad pod"), (403, "forbidden: quota"), (409, "exists"), (422, 'Pod "nb" is invalid')],
)
async def test_other_api_errors_fail_at_once_with_the_api_message(
    status: int, message: str
) -> None:
    clock = Clock()
    with pytest.raises(KubernetesError) as excinfo:
        await retry(failing([api_error(status, message)]), clock)
    assert str(excinfo.value) == f"creating pod labs/nb-rra: {status} {message}"
    assert excinfo.value.status == status
    assert clock.sleeps == []


async def test_other_exceptions_are_not_swallowed() -> None:
    with pytest.raises(ValueError, match="programming error"):
        await retry(failing([ValueError("programming error")]), Clock())


async def test_budget_bounds_the_retries() -> None:
    clock = Clock()
    errors: list[BaseException] = [aiohttp.ServerDisconnectedError()] * 100
    with pytest.raises(
        KubernetesError,
        match=r"still failing after \d+ attempt\(s\) within the 10s retry budget; "
        r"last error: ServerDisconnectedError",
    ):
        await retry(failing(errors), clock, budget=10)
    assert clock.now <= 10


async def test_retry_after_is_honoured() -> None:
    clock = Clock()
    await retry(failing([api_error(429, headers={"Retry-After": "7"})]), clock)
    assert clock.sleeps == [7.0]


async def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    clock = Clock()
    with pytest.raises(KubernetesError, match="429 slow down"):
        await retry(
            failing([api_error(429, "slow down", {"Retry-After": "120"})]), clock, budget=30
        )
    assert clock.sleeps == []


def test_retry_after_http_date() -> None:
    error = api_error(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"})
    assert retry_after_seconds(error, now=1445412480.0) == 10.0
    assert retry_after_seconds(api_error(500, headers={"Retry-After": "5"})) is None


async def test_each_request_is_bounded_by_the_request_timeout() -> None:
    attempts = 0

    async def hangs_once() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(10)
        return "ok"

    policy = RetryPolicy(budget=5, request_timeout=0.05, base_delay=0.01)
    result = await with_retries(hangs_once, what="x", policy=policy)
    assert result == "ok"
    assert attempts == 2


class FakeResponse:
    """What ``kubernetes_asyncio`` returns with ``_preload_content=False``: the raw reply."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.reason = "Reason" if status >= 300 else "OK"
        self.headers = headers or {}
        self.body = body
        self.released = False

    async def read(self) -> bytes:
        return self.body

    def release(self) -> None:
        self.released = True


class FakeCoreV1:
    """CoreV1Api's create/delete methods over a dict, with injectable failures.

    Like the real client, an API error is raised as ``ApiException``, except with
    ``_preload_content=False``, where the raw reply is returned whatever its status.
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures: dict[str, list[BaseException]] = {}
        self.responses: list[FakeResponse] = []

    def _fail(self, method: str) -> None:
        queue = self.failures.get(method)
        if queue:
            raise queue.pop(0)

    def _reply(self, action: Callable[[], None], preload: bool) -> FakeResponse | None:
        try:
            action()
        except ApiException as error:
            if preload:
                raise
            response = FakeResponse(error.status, error.body, error.headers)
        else:
            response = FakeResponse(200, b'{"kind": "Status"}')
        if preload:
            return None
        self.responses.append(response)
        return response

    def __getattr__(self, method: str) -> Any:
        action, _, kind = method.partition("_namespaced_")
        if action == "create":

            async def create(
                namespace: str, body: dict[str, Any], _preload_content: bool = True
            ) -> FakeResponse | None:
                def do() -> None:
                    self._fail(method)
                    key = (kind, body["metadata"]["name"])
                    if key in self.objects:
                        raise api_error(409, f"{kind} {key[1]} already exists")
                    self.objects[key] = body

                return self._reply(do, _preload_content)

            return create
        if action == "delete":

            async def delete(
                name: str, namespace: str, _preload_content: bool = True
            ) -> FakeResponse | None:
                def do() -> None:
                    self._fail(method)
                    if (kind, name) not in self.objects:
                        raise api_error(404, f"{kind} {name} not found")
                    del self.objects[(kind, name)]

                return self._reply(do, _preload_content)

            return delete
        raise AttributeError(method)


POLICY = RetryPolicy(budget=5, request_timeout=1)
NAMES = {"pod": "nb-rra", "config_map": "nb-rra-nss", "secret": "nb-rra-secret"}


async def test_delete_lab_objects_ignores_missing_and_retries_transient() -> None:
    api = FakeCoreV1()
    api.objects[("pod", "nb-rra")] = {}
    api.objects[("config_map", "nb-rra-nss")] = {}
    api.failures["delete_namespaced_pod"] = [aiohttp.ClientOSError(104, "Connection reset by peer")]
    deleted = await delete_lab_objects(api, "labs", **NAMES, policy=POLICY)
    assert deleted == ["pod/nb-rra", "config_map/nb-rra-nss"]
    assert api.objects == {}


async def test_delete_lab_objects_tries_every_object_before_failing() -> None:
    api = FakeCoreV1()
    for kind, name in NAMES.items():
        api.objects[(kind, name)] = {}
    api.failures["delete_namespaced_pod"] = [api_error(403, "pods is forbidden")]
    with pytest.raises(KubernetesError, match="deleting pod labs/nb-rra: 403 pods is forbidden"):
        await delete_lab_objects(api, "labs", **NAMES, policy=POLICY)
    assert list(api.objects) == [("pod", "nb-rra")]


async def test_create_replacing_replaces_a_leftover() -> None:
    api = FakeCoreV1()
    api.objects[("secret", "nb-rra-secret")] = {"old": True}
    body = {"metadata": {"name": "nb-rra-secret"}, "new": True}
    api.failures["create_namespaced_secret"] = [api_error(503)]
    await create_replacing(api, "secret", "labs", body, POLICY)
    assert api.objects[("secret", "nb-rra-secret")] is body


async def test_request_without_reply_raises_what_the_client_would_have_raised() -> None:
    api = FakeCoreV1()
    body = {"metadata": {"name": "nb-rra-secret"}}
    api.failures["create_namespaced_secret"] = [
        api_error(429, "too many requests, slow down", {"Retry-After": "7"})
    ]
    with pytest.raises(ApiException) as caught:
        await request_without_reply(api.create_namespaced_secret, "labs", body)
    assert caught.value.status == 429
    assert api_message(caught.value) == "too many requests, slow down"
    assert retry_after_seconds(caught.value) == 7
    assert is_transient(caught.value)
    assert api.objects == {}
    await request_without_reply(api.create_namespaced_secret, "labs", body)
    assert api.objects == {("secret", "nb-rra-secret"): body}
    with pytest.raises(ApiException, match="409"):
        await request_without_reply(api.create_namespaced_secret, "labs", body)
    assert [r.status for r in api.responses] == [429, 200, 409]
    assert all(r.released for r in api.responses), "every reply is read and released"


async def test_create_replacing_names_a_refusal_by_the_api() -> None:
    api = FakeCoreV1()
    api.failures["create_namespaced_config_map"] = [
        api_error(403, 'configmaps is forbidden: User "hub" cannot create configmaps')
    ]
    with pytest.raises(
        KubernetesError,
        match=r'creating config_map labs/nb-rra-nss: 403 configmaps is forbidden: User "hub"',
    ):
        await create_replacing(
            api,
            "config_map",
            "labs",
            {"metadata": {"name": "nb-rra-nss"}},
            POLICY,
        )
    assert api.objects == {}


async def test_retries_and_replacements_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    log = logging.getLogger("test.lab.kube")
    api = FakeCoreV1()
    api.objects[("secret", "nb-rra-secret")] = {"old": True}
    api.failures["create_namespaced_secret"] = [api_error(503, "etcd is unavailable")]
    body = {"metadata": {"name": "nb-rra-secret"}}
    with caplog.at_level(logging.INFO, logger="test.lab.kube"):
        await create_replacing(api, "secret", "labs", body, POLICY.with_log(log))
    messages = [r.getMessage() for r in caplog.records if r.name == "test.lab.kube"]
    assert messages[0].startswith("Retrying creating secret labs/nb-rra-secret in ")
    assert messages[0].endswith("after a transient failure (attempt 1): 503 etcd is unavailable")
    assert messages[1] == "Replacing secret labs/nb-rra-secret: it already exists"
    assert api.objects[("secret", "nb-rra-secret")] is body


def test_a_lab_whose_pod_reads_the_env_secret_has_the_legacy_layout() -> None:
    legacy = {"spec": {"containers": [{"envFrom": [{"secretRef": {"name": "nb-rra-env"}}]}]}}
    site_only = {"spec": {"containers": [{"envFrom": [{"secretRef": {"name": "site-env"}}]}]}}
    assert has_legacy_env_secret(legacy, "nb-rra")
    assert not has_legacy_env_secret(site_only, "nb-rra")
    assert not has_legacy_env_secret({"spec": {"containers": [{"env": []}]}}, "nb-rra")
    assert has_legacy_env_secret(None, "nb-rra"), "a pod already gone: only a delete can tell"


@pytest.mark.parametrize("legacy", [False, True])
async def test_delete_lab_config_deletes_the_env_secret_only_of_a_legacy_lab(legacy: bool) -> None:
    api = FakeCoreV1()
    api.objects[("secret", "nb-rra-secret")] = {}
    api.objects[("secret", "nb-rra-env")] = {}
    deleted = await delete_lab_config(api, "labs", "nb-rra", POLICY, legacy_env_secret=legacy)
    assert sorted(deleted) == [*(["secret/nb-rra-env"] if legacy else []), "secret/nb-rra-secret"]
    assert (("secret", "nb-rra-env") in api.objects) is not legacy
