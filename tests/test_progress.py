"""Spawn progress: rising percentages, ISO timestamps, severities, a final 100."""

from datetime import UTC, datetime

import pytest

from lsst_spawner.progress import SpawnProgress, severity_of

FIXED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def kube(reason: str, kind: str = "Normal", message: str = "ok") -> dict[str, object]:
    return {"reason": reason, "type": kind, "message": message, "lastTimestamp": None}


def test_steps_and_kube_events_rise_and_end_at_100() -> None:
    progress = SpawnProgress(clock=lambda: FIXED)
    events = [
        progress.step("Checked your identity", 5),
        progress.step("Image: Weekly 2024_10", 10),
        progress.step("Created your files", 15),
        progress.step("Creating your lab pod", 25),
        progress.kube_event(kube("Scheduled", message="Successfully assigned labs/nb-a to node-1")),
        progress.kube_event(kube("Pulling")),
        progress.kube_event(kube("SomethingElse")),
        progress.kube_event(kube("Pulled")),
        progress.kube_event(kube("Created")),
        progress.kube_event(kube("Started")),
        progress.ready(),
    ]
    percentages = [event["progress"] for event in events]
    assert percentages == sorted(percentages)
    assert len(set(percentages)) == len(percentages), "strictly increasing"
    assert percentages[0] == 5
    assert percentages[-1] == 100
    assert all(event["timestamp"] == FIXED.isoformat() for event in events[:4])
    assert events[4]["message"] == "Scheduled: Successfully assigned labs/nb-a to node-1"
    assert {event["severity"] for event in events} == {"info"}


def test_out_of_order_and_repeated_events_never_go_back() -> None:
    progress = SpawnProgress()
    first = progress.kube_event(kube("Started"))
    again = progress.kube_event(kube("Scheduled"))
    assert again["progress"] > first["progress"]
    for _ in range(50):
        last = progress.kube_event(kube("Pulling"))
    assert last["progress"] == 99  # never 100 before the lab is ready
    assert progress.ready()["progress"] == 100


@pytest.mark.parametrize(
    ("event", "severity", "prefix"),
    [
        (kube("Pulled"), "info", "Pulled: "),
        (kube("BackOff", "Warning", "Back-off pulling image"), "warning", "Warning: BackOff: "),
        (kube("Failed", "Warning", "ErrImagePull"), "error", "Error: Failed: "),
        (kube("FailedScheduling", "Warning", "0/3 nodes"), "error", "Error: FailedScheduling: "),
    ],
)
def test_severity_from_the_kubernetes_event_type(
    event: dict[str, object], severity: str, prefix: str
) -> None:
    assert severity_of(event) == severity
    produced = SpawnProgress().kube_event(event)
    assert produced["severity"] == severity
    assert str(produced["message"]).startswith(prefix)


def test_kube_event_timestamp_is_kept() -> None:
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = {"reason": "Pulled", "type": "Normal", "message": "x", "lastTimestamp": stamp}
    assert SpawnProgress().kube_event(event)["timestamp"] == stamp.isoformat()
    event["lastTimestamp"] = "2026-01-02T03:04:05Z"
    assert SpawnProgress().kube_event(event)["timestamp"] == "2026-01-02T03:04:05Z"


async def test_wait_for_step_wakes_on_a_new_step() -> None:
    import asyncio

    progress = SpawnProgress()
    waiter = asyncio.create_task(progress.wait_for_step(30))
    await asyncio.sleep(0)
    progress.step("Checked your identity", 5)
    await asyncio.wait_for(waiter, 5)
