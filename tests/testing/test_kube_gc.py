"""The emulator's garbage collector (issue 13 point 10): ownerReferences to a custom resource
cascade to pods and secrets, in the background, foreground and orphan policies."""

from __future__ import annotations

from typing import Any

from lsst_spawner.testing import waiting
from lsst_spawner.testing.kube import KubeEmulator

from .widgets_crd import (
    CRDS,
    GROUP,
    WIDGETS,
    call,
    clear_finalizers,
    ok,
    wait_for,
    widget,
    widget_crd,
)

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"


def owner_ref(owner: dict[str, Any], block: bool = False) -> dict[str, Any]:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def pod(name: str, *refs: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "ownerReferences": list(refs)},
        "spec": {"containers": [{"name": "c", "image": "lab:1"}]},
    }


def secret(name: str, *refs: dict[str, Any], finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "ownerReferences": list(refs)}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"k": "v"}}


def names(emulator: KubeEmulator, resource: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in emulator.list_objects(resource, "default"))


def labserver_like(emulator: KubeEmulator, name: str = "lab") -> dict[str, Any]:
    """A widget owning a pod and a secret, as an operator's custom resource owns its lab."""
    owner = ok(call(emulator, "POST", WIDGETS, widget(name)), 201)
    ok(call(emulator, "POST", PODS, pod(f"{name}-pod", owner_ref(owner))), 201)
    ok(call(emulator, "POST", SECRETS, secret(f"{name}-token", owner_ref(owner))), 201)
    return owner


def test_deleting_a_custom_resource_collects_its_pods_and_secrets(emulator: KubeEmulator) -> None:
    labserver_like(emulator, "lab")
    ok(call(emulator, "POST", SECRETS, secret("unowned")), 201)
    ok(call(emulator, "DELETE", f"{WIDGETS}/lab"))
    assert names(emulator, "pods") == []
    assert names(emulator, "secrets") == ["unowned"]


def test_a_dependent_with_another_owner_stays(emulator: KubeEmulator) -> None:
    first = labserver_like(emulator, "one")
    second = ok(call(emulator, "POST", WIDGETS, widget("two")), 201)
    shared = secret("shared", owner_ref(first), owner_ref(second))
    ok(call(emulator, "POST", SECRETS, shared), 201)
    ok(call(emulator, "DELETE", f"{WIDGETS}/one"))
    assert names(emulator, "secrets") == ["shared"]
    ok(call(emulator, "DELETE", f"{WIDGETS}/two"))
    assert names(emulator, "secrets") == []


def test_foreground_deletion_waits_for_blocking_dependents(emulator: KubeEmulator) -> None:
    owner = labserver_like(emulator, "lab")
    held = secret("held", owner_ref(owner, block=True), finalizers=["example.test/hold"])
    ok(call(emulator, "POST", SECRETS, held), 201)
    marked = ok(call(emulator, "DELETE", f"{WIDGETS}/lab?propagationPolicy=Foreground"))
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    # The non-blocking dependents are gone; the blocking one is deleting, and holds the owner.
    assert names(emulator, "pods") == []
    assert names(emulator, "secrets") == ["held"]
    assert emulator.get_object("secrets", "held")["metadata"]["deletionTimestamp"]
    waiting = emulator.get_object(f"widgets.{GROUP}", "lab")
    assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"]
    clear_finalizers(emulator, f"{SECRETS}/held")
    assert names(emulator, "secrets") == []
    assert emulator.get_object(f"widgets.{GROUP}", "lab") is None


def test_foreground_deletion_keeps_the_owners_own_finalizers(emulator: KubeEmulator) -> None:
    body = widget("lab")
    body["metadata"]["finalizers"] = ["example.test/operator"]
    owner = ok(call(emulator, "POST", WIDGETS, body), 201)
    ok(call(emulator, "POST", SECRETS, secret("token", owner_ref(owner, block=True))), 201)
    ok(call(emulator, "DELETE", f"{WIDGETS}/lab", {"propagationPolicy": "Foreground"}))
    assert names(emulator, "secrets") == []
    left = emulator.get_object(f"widgets.{GROUP}", "lab")
    assert left["metadata"]["finalizers"] == ["example.test/operator"]
    clear_finalizers(emulator, f"{WIDGETS}/lab")
    assert emulator.get_object(f"widgets.{GROUP}", "lab") is None


def test_orphan_deletion_strips_the_references(emulator: KubeEmulator) -> None:
    labserver_like(emulator, "lab")
    ok(call(emulator, "DELETE", f"{WIDGETS}/lab?propagationPolicy=Orphan"))
    assert emulator.get_object(f"widgets.{GROUP}", "lab") is None
    assert names(emulator, "pods") == ["lab-pod"]
    assert "ownerReferences" not in emulator.get_object("pods", "lab-pod")["metadata"]
    assert "ownerReferences" not in emulator.get_object("secrets", "lab-token")["metadata"]


def test_an_unknown_propagation_policy_is_refused(emulator: KubeEmulator) -> None:
    labserver_like(emulator, "lab")
    code, answer, _ = call(emulator, "DELETE", f"{WIDGETS}/lab?propagationPolicy=Sideways")
    assert code == 422
    assert answer["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
        '"Sideways": supported values: "Foreground", "Background", "Orphan"'
    )
    assert names(emulator, "pods") == ["lab-pod"]


def test_dependents_of_an_absent_owner_are_collected(emulator: KubeEmulator) -> None:
    ghost = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "ghost", "uid": "00000000-0000-4000-8000-000000000000"},
    }
    ok(call(emulator, "POST", SECRETS, secret("dangling", owner_ref(ghost))), 201)
    # An owner in another namespace does not count, as for the garbage collector.
    elsewhere = ok(
        call(emulator, "POST", f"/apis/{GROUP}/v1/namespaces/other/widgets", widget("far")), 201
    )
    ok(call(emulator, "POST", SECRETS, secret("cross-namespace", owner_ref(elsewhere))), 201)
    wait_for(lambda: names(emulator, "secrets") == [], "the dangling dependents to go")
    assert emulator.get_object(f"widgets.{GROUP}", "far", "other") is not None


def test_gc_delay_makes_collection_asynchronous(emulator: KubeEmulator) -> None:
    slow = KubeEmulator(gc_delay=5, rbac=False).start_in_thread()
    try:
        ok(call(slow, "POST", CRDS, widget_crd()), 201)
        labserver_like(slow, "lab")
        ok(call(slow, "DELETE", f"{WIDGETS}/lab"))
        assert names(slow, "secrets") == ["lab-token"]  # not yet
        waiting.wait_for(
            lambda: names(slow, "secrets") == [],
            "the slow emulator to delete lab-token",
            timeout=30,
            interval=0.05,
        )
    finally:
        slow.stop_thread()


def test_deleting_the_crd_cascades_through_its_objects(emulator: KubeEmulator) -> None:
    labserver_like(emulator, "lab")
    ok(call(emulator, "DELETE", f"{CRDS}/widgets.{GROUP}"))
    wait_for(lambda: call(emulator, "GET", f"{CRDS}/widgets.{GROUP}")[0] == 404, "the CRD to go")
    assert names(emulator, "pods") == []
    assert names(emulator, "secrets") == []


def test_the_collector_keeps_its_state_out_of_the_store() -> None:
    """The store's side of the seam: no GC bookkeeping on the store itself."""
    from lsst_spawner.testing.kube.store import ObjectStore

    store = ObjectStore()
    for private in ("_dependents", "_uids", "_timers", "_terminated"):
        assert not hasattr(store, private)
    assert store.gc.store is store
