"""Classifying a lab pod that cannot start: missing Secrets/ConfigMaps, failing init containers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lsst_spawner.kube.startfail import (
    init_failure,
    missing_reference,
    start_failure,
    until_failure,
    watch_start,
)

UID = "pod-uid-1"


def lab_pod(waiting: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    state = {"waiting": waiting} if waiting else {"waiting": {"reason": "ContainerCreating"}}
    return {
        "metadata": {"name": "nb-rra", "uid": UID},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "env": [
                        {
                            "name": "BUTLER_TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "site-butler", "key": "token"}},
                        },
                    ],
                    "envFrom": [{"configMapRef": {"name": "site-env"}}],
                }
            ],
            "volumes": [
                {
                    "name": "lab-secrets",
                    "projected": {
                        "sources": [
                            {"secret": {"name": "nb-rra-secret"}},
                            {
                                "secret": {
                                    "name": "site-butler",
                                    "items": [
                                        {"key": "token", "path": "butler-token"},
                                        {"key": "url", "path": "butler-url"},
                                    ],
                                }
                            },
                        ]
                    },
                }
            ],
        },
        "status": {"containerStatuses": [{"name": "notebook", "state": state}], **status},
    }


def config_error(message: str) -> dict[str, Any]:
    return lab_pod({"reason": "CreateContainerConfigError", "message": message})


def mount_event(message: str, uid: str = UID) -> dict[str, Any]:
    return {
        "reason": "FailedMount",
        "type": "Warning",
        "message": message,
        "involvedObject": {"kind": "Pod", "name": "nb-rra", "uid": uid},
    }


def test_a_missing_secret_names_the_secret_and_every_key_the_pod_reads_of_it() -> None:
    failure = missing_reference(config_error('secret "site-butler" not found'))
    assert failure is not None
    assert (failure.reason, failure.subject) == (
        "CreateContainerConfigError",
        "the Secret site-butler (keys token, url)",
    )
    assert failure.message == 'secret "site-butler" not found'
    assert not failure.final
    assert failure.user_message().startswith(
        "Your lab could not start: the Secret site-butler (keys token, url) it reads is missing "
        '[CreateContainerConfigError] (the node said: secret "site-butler" not found).'
    )


def test_a_missing_key_and_a_missing_config_map_are_named() -> None:
    failure = missing_reference(config_error("couldn't find key token in Secret ns/site-butler"))
    assert failure is not None
    assert failure.subject == "the Secret site-butler (key token)"
    failure = missing_reference(config_error('configmap "site-env" not found'))
    assert failure is not None
    assert failure.subject == "the ConfigMap site-env"


def test_failed_mounts_count_only_for_this_pod_before_any_container_started() -> None:
    message = 'MountVolume.SetUp failed for volume "lab-secrets" : secret "site-butler" not found'
    failure = missing_reference(lab_pod(), [mount_event(message)])
    assert failure is not None
    assert (failure.reason, failure.subject) == (
        "FailedMount",
        "the Secret site-butler (keys token, url)",
    )
    # An earlier pod of the same name, or a mount that failed before the containers started.
    assert missing_reference(lab_pod(), [mount_event(message, uid="an-older-pod")]) is None
    started = lab_pod()
    started["status"]["containerStatuses"][0]["state"] = {"running": {}}
    assert missing_reference(started, [mount_event(message)]) is None
    # A mount failing for another reason is not a missing reference.
    other = 'MountVolume.SetUp failed for volume "data" : mount failed: exit status 32'
    assert missing_reference(lab_pod(), [mount_event(other)]) is None


def test_a_volume_key_the_secret_lacks_is_traced_to_its_secret() -> None:
    message = (
        'MountVolume.SetUp failed for volume "lab-secrets" : '
        "references non-existent secret key: url"
    )
    failure = missing_reference(lab_pod(), [mount_event(message)])
    assert failure is not None
    assert failure.subject == "the Secret site-butler (key url)"


@pytest.mark.parametrize(
    "waiting",
    [
        None,
        {"reason": "PodInitializing"},
        {"reason": "CreateContainerConfigError", "message": "something else entirely"},
    ],
)
def test_other_states_are_no_missing_reference(waiting: dict[str, Any] | None) -> None:
    assert missing_reference(lab_pod(waiting)) is None
    assert start_failure(None) is None


def init_status(**fields: Any) -> dict[str, Any]:
    return lab_pod(initContainerStatuses=[{"name": "init-home", "restartCount": 0, **fields}])


def test_a_failed_init_container_is_named_with_its_exit_code() -> None:
    crashed = init_status(
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 7, "reason": "Error"}},
        restartCount=2,
    )
    failure = init_failure(crashed)
    assert failure is not None
    assert failure.subject == "its init container init-home (exit code 7)"
    assert failure.message == "exit code 7 (Error), restarted 2 times"
    assert not failure.final
    # Running again after a failure: still failing until it completes.
    rerun = init_status(
        state={"running": {}},
        lastState={"terminated": {"exitCode": 7, "reason": "Error"}},
        restartCount=3,
    )
    assert init_failure(rerun) is not None
    done = init_status(
        state={"terminated": {"exitCode": 0, "reason": "Completed"}},
        lastState={"terminated": {"exitCode": 7}},
        restartCount=3,
    )
    assert init_failure(done) is None
    assert init_failure(init_status(state={"running": {}})) is None


def test_an_init_container_that_failed_the_pod_is_final() -> None:
    pod = init_status(state={"terminated": {"exitCode": 3, "reason": "Error"}})
    pod["status"]["phase"] = "Failed"
    failure = start_failure(pod)
    assert failure is not None
    assert failure.final
    assert failure.reason == "InitContainerFailed"


async def test_the_grace_restarts_when_the_failure_clears_and_a_final_one_needs_none() -> None:
    now = [0.0]
    pods = iter(
        [
            config_error('secret "site-butler" not found'),
            lab_pod(),
            config_error('secret "site-butler" not found'),
            config_error('secret "site-butler" not found'),
        ]
    )
    reads: list[float] = []

    def read() -> Any:
        reads.append(now[0])
        now[0] += 1
        return next(pods)

    failure = await watch_start(read, grace=1, interval=0, clock=lambda: now[0])
    assert failure.reason == "CreateContainerConfigError"
    assert len(reads) == 4  # the clear at the second read reset the clock

    final = init_status(state={"terminated": {"exitCode": 3, "reason": "Error"}})
    final["status"]["phase"] = "Failed"
    assert (await watch_start(lambda: final, grace=3600, interval=0)).final


async def test_until_failure_returns_the_start_or_the_first_failure() -> None:
    async def start() -> str:
        await asyncio.sleep(0.01)
        return "url"

    async def never() -> None:
        await asyncio.Event().wait()

    async def fails() -> str:
        return "failure"

    assert await until_failure(start(), never()) == ("url", None)
    cancelled: list[bool] = []

    async def long_start() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    assert await until_failure(long_start(), never(), fails()) == (None, "failure")
    assert cancelled == [True]


async def test_events_are_read_only_for_a_pod_stuck_past_the_grace_and_then_sparingly() -> None:
    now = [0.0]
    message = 'MountVolume.SetUp failed for volume "lab-secrets" : secret "site-butler" not found'
    event_reads: list[float] = []

    def read_pod() -> Any:
        now[0] += 1
        return lab_pod()  # ContainerCreating: the volumes are not mounted

    def read_events() -> Any:
        event_reads.append(now[0])
        return [mount_event(message)] if now[0] >= 20 else []

    failure = await watch_start(
        read_pod, read_events, grace=10, interval=0, events_interval=5, clock=lambda: now[0]
    )
    assert failure.reason == "FailedMount"
    assert failure.subject == "the Secret site-butler (keys token, url)"
    # Not before the pod had waited 10 s, then every 5 s; returned at the first that showed it.
    assert event_reads == [11.0, 16.0, 21.0]

    # A pod whose containers start never has its events read.
    started = lab_pod()
    started["status"]["containerStatuses"][0]["state"] = {"running": {}}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            watch_start(lambda: started, read_events, grace=0, interval=0.01), 0.2
        )
    assert event_reads == [11.0, 16.0, 21.0]
