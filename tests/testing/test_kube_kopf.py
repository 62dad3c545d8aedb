"""A real kopf operator process against the emulator (issue 15 point 7).

The operator runs as a service account bound to a ClusterRole that names exactly
what kopf needs, so the emulator's RBAC on the custom group is exercised too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.authn import service_account_user
from lsst_spawner.testing.kube.kopf_process import KopfProcess, peering_crds

from .widgets_crd import CRDS, GROUP, MERGE, WIDGETS, call, ok, wait_for, widget

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HANDLERS = Path(__file__).parent / "kopf_operators" / "widgets.py"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
OPERATOR_RULES = [
    {
        "apiGroups": [GROUP],
        "resources": ["widgets", "widgets/status"],
        "verbs": ["list", "watch", "patch"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings", "clusterkopfpeerings"],
        "verbs": ["list", "watch", "patch", "get"],
    },
]


def operator_kubeconfig(emulator: KubeEmulator, tmp_path: Path) -> Path:
    """A kubeconfig for service account ``ops/widget-operator`` with OPERATOR_RULES."""
    emulator.create_object(
        "clusterroles",
        {"metadata": {"name": "widget-operator"}, "rules": OPERATOR_RULES},
        None,
    )
    emulator.create_object(
        "clusterrolebindings",
        {
            "metadata": {"name": "widget-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "widget-operator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "widget-operator", "namespace": "ops"}],
        },
        None,
    )
    token = emulator.call(
        emulator.access.authn.issue, service_account_user("ops", "widget-operator")
    )
    return emulator.write_kubeconfig(tmp_path / "operator.kubeconfig", token=token)


def kopf(emulator: KubeEmulator, tmp_path: Path, *args: str, name: str = "kopf") -> KopfProcess:
    """kopf with the widget handlers; the first (``name="kopf"``) makes the kubeconfig."""
    return KopfProcess(
        [*args, "--namespace", "default", "--verbose", str(HANDLERS)],
        operator_kubeconfig(emulator, tmp_path)
        if name == "kopf"
        else tmp_path / "operator.kubeconfig",
        tmp_path / f"{name}.log",
        env={
            "WIDGET_DELETED_LOG": str(tmp_path / "deleted.log"),
            "WIDGET_HANDLED_LOG": str(tmp_path / "handled.log"),
            "WIDGET_OPERATOR": name,
        },
    )


def get_widget(emulator: KubeEmulator, name: str) -> Any:
    return emulator.get_object(f"widgets.{GROUP}", name)


def handled(emulator: KubeEmulator, name: str) -> Any:
    obj = get_widget(emulator, name)
    return obj if obj and (obj.get("status") or {}).get("created") else None


def test_kopf_handles_create_update_and_delete(emulator: KubeEmulator, tmp_path: Path) -> None:
    with kopf(emulator, tmp_path, "--standalone") as operator:
        ok(call(emulator, "POST", WIDGETS, widget("w1", 3)), 201)
        obj = wait_for(
            lambda: handled(emulator, "w1"), "kopf's create handler", log=lambda: operator.output
        )
        assert obj["status"]["created"] == {"size": 3, "doubled": 6}
        assert obj["metadata"]["annotations"]["example.test/seen-size"] == "3"
        assert FINALIZER in obj["metadata"]["finalizers"]
        # kopf's own progress storage: its last-handled-configuration annotation.
        assert "kopf.zalando.org/last-handled-configuration" in obj["metadata"]["annotations"]
        # The handler's Event, as core v1 Events kopf posts.
        events = wait_for(
            lambda: [
                e
                for e in emulator.list_objects("events", "default")
                if e["involvedObject"].get("name") == "w1" and e["reason"] == "Sized"
            ],
            "the handler's Event",
            log=lambda: operator.output,
        )
        assert events[0]["message"] == "widget w1 has size 3"
        assert events[0]["involvedObject"]["apiVersion"] == f"{GROUP}/v1"

        # An update of spec.size: the field handler sees it; generation moved on.
        ok(call(emulator, "PATCH", f"{WIDGETS}/w1", {"spec": {"size": 5}}, content_type=MERGE))
        obj = wait_for(
            lambda: (o := get_widget(emulator, "w1")) and o["status"].get("resized") == 5 and o,
            "kopf's update handler",
            log=lambda: operator.output,
        )
        assert obj["metadata"]["generation"] == 2

        # Delete: the finalizer holds the widget until kopf's delete handler has run.
        marked = ok(call(emulator, "DELETE", f"{WIDGETS}/w1"))
        assert marked["metadata"]["deletionTimestamp"]
        wait_for(
            lambda: get_widget(emulator, "w1") is None,
            "the widget to go",
            log=lambda: operator.output,
        )
        assert (tmp_path / "deleted.log").read_text() == "default/w1\n"
    assert "Traceback" not in operator.output, operator.output


def test_kopf_rewatches_after_the_server_ends_its_watches(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    """kopf#1276: a watch the server ends must be re-opened, or the operator freezes."""
    with kopf(emulator, tmp_path, "--standalone") as operator:
        ok(call(emulator, "POST", WIDGETS, widget("before")), 201)
        wait_for(
            lambda: handled(emulator, "before"), "the first widget", log=lambda: operator.output
        )
        watches = emulator.counters.get("watch", f"widgets.{GROUP}")
        emulator.run(emulator.drop_watches())
        ok(call(emulator, "POST", WIDGETS, widget("after")), 201)
        wait_for(
            lambda: handled(emulator, "after"),
            "a widget created after the drop",
            log=lambda: operator.output,
        )
        again = emulator.counters.get("watch", f"widgets.{GROUP}")
        assert again > watches


def test_kopf_peering_with_the_peering_crds(emulator: KubeEmulator, tmp_path: Path) -> None:
    """Without --standalone kopf uses its KopfPeering object (kopf.dev/v1 CRDs)."""
    for crd in peering_crds():
        ok(call(emulator, "POST", CRDS, crd), 201)
    ok(
        call(
            emulator,
            "POST",
            "/apis/kopf.dev/v1/namespaces/default/kopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}},
        ),
        201,
    )
    with kopf(emulator, tmp_path, "--peering", "default", "--priority", "10") as operator:
        peering = wait_for(
            lambda: (emulator.get_object("kopfpeerings.kopf.dev", "default") or {}).get("status"),
            "kopf to announce itself in the peering",
            log=lambda: operator.output,
        )
        ((_identity, announced),) = peering.items()
        assert announced["priority"] == 10
        ok(call(emulator, "POST", WIDGETS, widget("peered")), 201)
        wait_for(lambda: handled(emulator, "peered"), "the widget", log=lambda: operator.output)


def test_two_kopf_replicas_share_the_work_through_peering(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    """The lower-priority replica stays paused while the other runs, and takes over when it
    stops (its peering entry goes with it): each widget is handled once, by one replica."""
    for crd in peering_crds():
        ok(call(emulator, "POST", CRDS, crd), 201)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}}
    ok(call(emulator, "POST", "/apis/kopf.dev/v1/namespaces/default/kopfpeerings", peering), 201)
    first = kopf(emulator, tmp_path, "--peering", "default", "--priority", "20").start()
    second = kopf(emulator, tmp_path, "--peering", "default", "--priority", "10", name="second")
    try:
        second.start()

        def peers() -> Any:
            status = (emulator.get_object("kopfpeerings.kopf.dev", "default") or {}).get("status")
            return status if status and len(status) == 2 else None

        announced = wait_for(peers, "both replicas in the peering", log=lambda: second.output)
        assert sorted(p["priority"] for p in announced.values()) == [10, 20]
        ok(call(emulator, "POST", WIDGETS, widget("one")), 201)
        wait_for(lambda: handled(emulator, "one"), "the first widget", log=lambda: first.output)
        first.stop()
        wait_for(lambda: peers() is None, "the stopped replica to leave the peering")
        ok(call(emulator, "POST", WIDGETS, widget("two")), 201)
        wait_for(lambda: handled(emulator, "two"), "the second widget", log=lambda: second.output)
        assert (tmp_path / "handled.log").read_text().splitlines() == ["kopf one", "second two"]
        sized = [
            e["involvedObject"]["name"]
            for e in emulator.list_objects("events", "default")
            if e["reason"] == "Sized"
        ]
        assert sorted(sized) == ["one", "two"]
    finally:
        second.stop()
        first.stop()
