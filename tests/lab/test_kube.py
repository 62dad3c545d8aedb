"""The Kubernetes I/O edge: retries of transient failures within a budget, and cleanup."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from lsst_spawner.kube import (
    KubernetesError,
    RetryPolicy,
    api_message,
    create_replacing,
    delete_lab_objects,
    is_transient,
    request_without_reply,
    retry_after_seconds,
    with_retries,
)
from lsst_spawner.kube.objects import delete_lab_config, has_legacy_env_secret
from lsst_spawner.testing.kube.fixtures import KubeHandle


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


async def test_a_timeout_that_fires_late_in_a_stalled_loop_is_retried() -> None:
    """The N=3,000 storm's one 500: the hub's loop stalled 150 s, the first attempt's 30 s
    timeout fired then, and the 120 s budget looked spent after one attempt."""
    clock = Clock()
    attempts = 0

    async def times_out_late_once() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            clock.now += 150  # what the loop's clock reads when the late timeout fires
            raise TimeoutError
        return "ok"

    policy = RetryPolicy(budget=120, request_timeout=30)
    assert await with_retries(
        times_out_late_once, what="x", policy=policy, sleep=clock.sleep, clock=clock
    )
    assert attempts == 2


async def test_a_sleep_that_ends_late_is_not_charged_to_the_budget() -> None:
    clock = Clock()

    async def stalled_sleep(seconds: float) -> None:
        clock.sleeps.append(seconds)
        clock.now += seconds + 100  # the loop wakes the sleeper 100 s late

    errors: list[BaseException] = [aiohttp.ServerDisconnectedError()] * 3
    result = await with_retries(
        failing(errors),
        what="x",
        policy=RetryPolicy(budget=10, request_timeout=5),
        sleep=stalled_sleep,
        clock=clock,
        jitter=lambda: 1.0,
    )
    assert result == "ok"
    assert len(clock.sleeps) == 3


async def test_time_the_api_takes_is_still_charged_to_the_budget() -> None:
    """A request that fails after its whole (on-time) timeout uses the budget up as before."""
    clock = Clock()

    async def slow_timeout() -> str:
        clock.now += 5  # exactly the request timeout: no stall
        raise TimeoutError

    with pytest.raises(KubernetesError, match=r"still failing after 2 attempt\(s\) within the 10s"):
        await with_retries(
            slow_timeout,
            what="x",
            policy=RetryPolicy(budget=10, request_timeout=5),
            sleep=clock.sleep,
            clock=clock,
            jitter=lambda: 1.0,
        )


async def test_an_attempt_waiting_for_an_admission_slot_is_not_timed() -> None:
    """With ``admission``, an attempt queued behind the client's other requests (here one
    slot, held for 0.5 s) waits without its 0.1 s timeout or 0.2 s budget running; without
    it, the same wait inside the attempt times out and the budget runs out."""
    slot = asyncio.Semaphore(1)
    policy = RetryPolicy(budget=0.2, request_timeout=0.1, base_delay=0.01)

    async def hold() -> None:
        async with slot:
            await asyncio.sleep(0.5)

    async def answer() -> str:
        return "ok"

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    assert await with_retries(answer, what="x", policy=policy, admission=slot) == "ok"
    assert holder.done()
    assert not slot.locked(), "the slot is given back"

    async def queued_inside() -> str:
        async with slot:
            return "ok"

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    with pytest.raises(KubernetesError, match="TimeoutError"):
        await with_retries(queued_inside, what="x", policy=policy)
    await holder


async def test_an_admission_slot_is_given_back_whatever_the_attempt_does() -> None:
    slot = asyncio.Semaphore(1)
    policy = RetryPolicy(budget=5, request_timeout=1, base_delay=0.01)
    with pytest.raises(KubernetesError, match="403"):
        await with_retries(failing([api_error(403)]), what="x", policy=policy, admission=slot)
    errors: list[BaseException] = [aiohttp.ServerDisconnectedError()] * 2
    assert await with_retries(failing(errors), what="x", policy=policy, admission=slot) == "ok"
    assert not slot.locked()


# The edge against the emulator: a real CoreV1Api, the z2jh hub Role (RBAC on), injected faults.

POLICY = RetryPolicy(budget=5, request_timeout=5)
NAMES = {"pod": "nb-rra", "config_map": "nb-rra-nss", "secret": "nb-rra-secret"}
POD = {
    "metadata": {"name": "nb-rra"},
    "spec": {"containers": [{"name": "notebook", "image": "registry.example.org/lab:w_2026_46"}]},
}


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "stringData": data}


@asynccontextmanager
async def core_v1(kube_api: KubeHandle, *, admin: bool = False) -> AsyncIterator[Any]:
    """A ``CoreV1Api`` as the hub (z2jh's Role) or as the administrator."""
    async with kube_api.api_client(admin=admin) as api:
        yield client.CoreV1Api(api)


def names(kube_api: KubeHandle, resource: str) -> list[str]:
    return sorted(
        obj["metadata"]["name"]
        for obj in kube_api.emulator.list_objects(resource, kube_api.namespace)
    )  # type: ignore[union-attr]


async def test_delete_lab_objects_ignores_missing_and_retries_transient(
    kube_api: KubeHandle,
) -> None:
    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    emulator.create_object("pods", POD, ns)
    emulator.create_object("configmaps", config_map("nb-rra-nss"), ns)
    reset = kube_api.faults.reset_rate(1.0, verbs="delete", resources="pods", times=1)
    async with core_v1(kube_api, admin=True) as api:
        deleted = await delete_lab_objects(api, ns, **NAMES, policy=POLICY)
    assert deleted == ["pod/nb-rra", "config_map/nb-rra-nss"]  # the Secret was never there
    assert reset.fired == 1
    assert kube_api.counters.get("delete", "pods") == 2  # the reset one, then the retry
    assert names(kube_api, "pods") == names(kube_api, "configmaps") == []


async def test_delete_lab_objects_tries_every_object_before_failing(kube_api: KubeHandle) -> None:
    """z2jh's hub Role may not delete ConfigMaps: that refusal does not keep the rest."""
    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    emulator.create_object("pods", POD, ns)
    emulator.create_object("configmaps", config_map("nb-rra-nss"), ns)
    emulator.create_object("secrets", secret("nb-rra-secret", token="t"), ns)
    async with core_v1(kube_api) as api:
        with pytest.raises(KubernetesError) as caught:
            await delete_lab_objects(api, ns, **NAMES, policy=POLICY)
    assert str(caught.value) == (
        f'deleting config_map {ns}/nb-rra-nss: 403 configmaps "nb-rra-nss" is forbidden: '
        f'User "system:serviceaccount:{ns}:hub" cannot delete resource "configmaps" in API '
        f'group "" in the namespace "{ns}"'
    )
    assert names(kube_api, "configmaps") == ["nb-rra-nss"]
    assert names(kube_api, "pods") == names(kube_api, "secrets") == []


async def test_create_replacing_replaces_a_leftover(kube_api: KubeHandle) -> None:
    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    emulator.create_object("secrets", secret("nb-rra-secret", old="yes"), ns)
    kube_api.faults.error_rate(1.0, 503, verbs="create", resources="secrets", times=1)
    async with core_v1(kube_api) as api:
        await create_replacing(api, "secret", ns, secret("nb-rra-secret", new="yes"), POLICY)
    stored = emulator.get_object("secrets", "nb-rra-secret", ns)
    assert stored["data"] == {"new": "eWVz"}
    # 503, 409 (the leftover), then the create after the delete
    assert kube_api.counters.get("create", "secrets") == 3
    assert kube_api.counters.get("delete", "secrets") == 1


class LandsThenTimesOut:
    """A ``CoreV1Api`` whose first Secret create reaches the server, but whose reply is lost
    (what a hub whose event loop stalled past the request timeout sees)."""

    def __init__(self, api: Any) -> None:
        self.api, self.lost = api, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    async def create_namespaced_secret(self, *args: Any, **kwargs: Any) -> Any:
        response = await self.api.create_namespaced_secret(*args, **kwargs)
        if self.lost:
            return response
        self.lost += 1
        await response.read()
        response.release()
        raise TimeoutError


async def test_a_create_whose_reply_was_lost_keeps_what_it_created(kube_api: KubeHandle) -> None:
    """The N=3,000 storm's 409s: the retried create finds the first attempt's Secret."""
    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    async with core_v1(kube_api) as api:  # the hub's Role: get on secrets is granted
        lossy = LandsThenTimesOut(api)
        await create_replacing(lossy, "secret", ns, secret("nb-rra-secret", token="t"), POLICY)
    assert lossy.lost == 1
    assert emulator.get_object("secrets", "nb-rra-secret", ns)["data"] == {"token": "dA=="}
    assert kube_api.counters.get("create", "secrets") == 2  # the lost one, then the 409
    assert kube_api.counters.get("delete", "secrets") == 0


async def test_a_leftover_with_other_data_is_still_replaced(
    kube_api: KubeHandle,
) -> None:
    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    emulator.create_object("secrets", secret("nb-rra-secret", token="old"), ns)
    async with core_v1(kube_api) as api:
        await create_replacing(api, "secret", ns, secret("nb-rra-secret", token="new"), POLICY)
    assert emulator.get_object("secrets", "nb-rra-secret", ns)["data"] == {"token": "bmV3"}
    assert kube_api.counters.get("delete", "secrets") == 1


async def test_request_without_reply_raises_what_the_client_would_have_raised(
    kube_api: KubeHandle,
) -> None:
    ns = kube_api.namespace
    body = secret("nb-rra-secret", token="t")
    kube_api.faults.error_rate(1.0, 429, verbs="create", retry_after=7, times=1)
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(kube_api.kubeconfig), client_configuration=configuration
    )
    # One connection in the pool: a reply that was not read and released would block the next.
    configuration.connection_pool_maxsize = 1
    async with client.ApiClient(configuration) as api_client:
        api = client.CoreV1Api(api_client)
        with pytest.raises(ApiException) as caught:
            await request_without_reply(api.create_namespaced_secret, ns, body)
        assert caught.value.status == 429
        assert api_message(caught.value) == (
            "the server has received too many requests and has asked us to try again later"
        )
        assert retry_after_seconds(caught.value) == 7
        assert is_transient(caught.value)
        assert names(kube_api, "secrets") == []
        await asyncio.wait_for(request_without_reply(api.create_namespaced_secret, ns, body), 30)
        assert names(kube_api, "secrets") == ["nb-rra-secret"]
        with pytest.raises(ApiException, match="409") as exists:
            await asyncio.wait_for(
                request_without_reply(api.create_namespaced_secret, ns, body), 30
            )
        assert api_message(exists.value) == 'secrets "nb-rra-secret" already exists'
        await asyncio.wait_for(
            request_without_reply(api.delete_namespaced_secret, "nb-rra-secret", ns), 30
        )
    assert kube_api.counters.get("create", "secrets") == 3


async def test_create_replacing_names_a_refusal_by_the_api(kube_api: KubeHandle) -> None:
    ns = kube_api.namespace
    async with core_v1(kube_api) as api:
        with pytest.raises(KubernetesError) as caught:
            await create_replacing(api, "config_map", ns, config_map("nb-rra-nss"), POLICY)
    assert str(caught.value) == (
        f"creating config_map {ns}/nb-rra-nss: 403 configmaps is forbidden: "
        f'User "system:serviceaccount:{ns}:hub" cannot create resource "configmaps" in API '
        f'group "" in the namespace "{ns}"'
    )
    assert caught.value.status == 403
    assert names(kube_api, "configmaps") == []


async def test_retries_and_replacements_are_logged(
    kube_api: KubeHandle, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    log = logging.getLogger("test.lab.kube")
    emulator.create_object("secrets", secret("nb-rra-secret", old="yes"), ns)
    kube_api.faults.error_rate(1.0, 503, verbs="create", resources="secrets", times=1)
    with caplog.at_level(logging.INFO, logger="test.lab.kube"):
        async with core_v1(kube_api) as api:
            await create_replacing(
                api, "secret", ns, secret("nb-rra-secret", new="yes"), POLICY.with_log(log)
            )
    messages = [r.getMessage() for r in caplog.records if r.name == "test.lab.kube"]
    assert messages[0].startswith(f"Retrying creating secret {ns}/nb-rra-secret in ")
    assert messages[0].endswith(
        "after a transient failure (attempt 1): "
        "503 the server is currently unable to handle the request"
    )
    assert messages[1] == f"Replacing secret {ns}/nb-rra-secret: it already exists"
    assert emulator.get_object("secrets", "nb-rra-secret", ns)["data"] == {"new": "eWVz"}


def test_a_lab_whose_pod_reads_the_env_secret_has_the_legacy_layout() -> None:
    legacy = {"spec": {"containers": [{"envFrom": [{"secretRef": {"name": "nb-rra-env"}}]}]}}
    site_only = {"spec": {"containers": [{"envFrom": [{"secretRef": {"name": "site-env"}}]}]}}
    assert has_legacy_env_secret(legacy, "nb-rra")
    assert not has_legacy_env_secret(site_only, "nb-rra")
    assert not has_legacy_env_secret({"spec": {"containers": [{"env": []}]}}, "nb-rra")
    assert has_legacy_env_secret(None, "nb-rra"), "a pod already gone: only a delete can tell"


@pytest.mark.parametrize("legacy", [False, True])
async def test_delete_lab_config_deletes_the_env_secret_only_of_a_legacy_lab(
    kube_api: KubeHandle, legacy: bool
) -> None:
    emulator, ns = kube_api.emulator, kube_api.namespace
    assert emulator is not None
    emulator.create_object("secrets", secret("nb-rra-secret", token="t"), ns)
    emulator.create_object("secrets", secret("nb-rra-env", HOME="/home/rra"), ns)
    async with core_v1(kube_api) as api:
        deleted = await delete_lab_config(api, ns, "nb-rra", POLICY, legacy_env_secret=legacy)
    assert sorted(deleted) == [*(["secret/nb-rra-env"] if legacy else []), "secret/nb-rra-secret"]
    assert names(kube_api, "secrets") == ([] if legacy else ["nb-rra-env"])
