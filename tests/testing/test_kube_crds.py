"""CustomResourceDefinitions in the emulator: discovery, verbs, status, finalizers (issue 15)."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.authn import ADMIN_TOKEN

from .widgets_crd import CRDS, GROUP, JSON_PATCH, MERGE, WIDGETS, call, ok, widget, widget_crd

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
CLUSTER_WIDGETS = f"/apis/{GROUP}/v1/clusterwidgets"


def watch_lines(
    emulator: KubeEmulator, path: str, out: list[dict[str, Any]], accept: str = "application/json"
) -> threading.Thread:
    """Read a watch stream into ``out`` in a thread (the stream ends at its timeoutSeconds)."""

    def run() -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": accept}
        request = urllib.request.Request(emulator.url + path, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            for line in response:
                out.append(json.loads(line))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# -- the CRD itself and discovery ---------------------------------------------------------


def test_a_crd_is_established_with_its_names_and_cleanup_finalizer(emulator: KubeEmulator) -> None:
    crd = ok(call(emulator, "GET", f"{CRDS}/widgets.{GROUP}"))
    status = crd["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "NamesAccepted": "True",
        "Established": "True",
    }
    assert status["acceptedNames"]["listKind"] == "WidgetList"
    assert status["storedVersions"] == ["v1"]
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    listed = ok(call(emulator, "GET", CRDS))
    assert listed["kind"] == "CustomResourceDefinitionList"
    assert [c["metadata"]["name"] for c in listed["items"]] == [f"widgets.{GROUP}"]


def test_discovery_lists_the_group_its_version_and_resources(emulator: KubeEmulator) -> None:
    groups = {g["name"]: g for g in ok(call(emulator, "GET", "/apis"))["groups"]}
    assert groups[GROUP]["preferredVersion"] == {"groupVersion": f"{GROUP}/v1", "version": "v1"}
    assert "apiextensions.k8s.io" in groups
    assert "coordination.k8s.io" in groups
    group = ok(call(emulator, "GET", f"/apis/{GROUP}"))
    assert group["kind"] == "APIGroup"
    assert group["versions"][0]["version"] == "v1"
    resources = ok(call(emulator, "GET", f"/apis/{GROUP}/v1"))["resources"]
    assert resources == [
        {
            "name": "widgets",
            "singularName": "widget",
            "namespaced": True,
            "kind": "Widget",
            "verbs": [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            "shortNames": ["wd"],
            "categories": ["all"],
        },
        {
            "name": "widgets/status",
            "singularName": "",
            "namespaced": True,
            "kind": "Widget",
            "verbs": ["get", "patch", "update"],
        },
    ]
    assert call(emulator, "GET", f"/apis/{GROUP}/v2")[0] == 404
    assert call(emulator, "GET", "/apis/nothing.example/v1")[0] == 404


def test_custom_kinds_are_not_served_under_the_core_path(emulator: KubeEmulator) -> None:
    for path in ("/api/v1/namespaces/default/widgets", "/api/v1/namespaces/default/leases"):
        assert call(emulator, "GET", path)[0] == 404
    no_rbac = KubeEmulator(rbac=False).start_in_thread()
    try:
        assert call(no_rbac, "GET", "/api/v1/namespaces/default/roles")[0] == 404
        assert call(no_rbac, "GET", "/api/v1/customresourcedefinitions")[0] == 404
    finally:
        no_rbac.stop_thread()


# -- verbs -----------------------------------------------------------------------------------


def test_create_get_list_update_delete_namespaced(emulator: KubeEmulator) -> None:
    created = ok(call(emulator, "POST", WIDGETS, widget("w1", 2)), 201)
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["namespace"] == "default"
    assert ok(call(emulator, "GET", f"{WIDGETS}/w1"))["spec"] == {"size": 2, "color": "red"}
    ok(call(emulator, "POST", f"/apis/{GROUP}/v1/namespaces/other/widgets", widget("w2")), 201)
    listed = ok(call(emulator, "GET", WIDGETS))
    assert listed["kind"] == "WidgetList"
    assert listed["apiVersion"] == f"{GROUP}/v1"
    assert [w["metadata"]["name"] for w in listed["items"]] == ["w1"]
    everywhere = ok(call(emulator, "GET", f"/apis/{GROUP}/v1/widgets"))
    assert sorted(w["metadata"]["name"] for w in everywhere["items"]) == ["w1", "w2"]
    assert call(emulator, "POST", WIDGETS, widget("w1"))[0] == 409
    created["spec"]["size"] = 4
    updated = ok(call(emulator, "PUT", f"{WIDGETS}/w1", created))
    assert updated["spec"]["size"] == 4
    assert updated["metadata"]["generation"] == 2
    stale = call(emulator, "PUT", f"{WIDGETS}/w1", created)  # the old resourceVersion
    assert stale[0] == 409
    assert stale[1]["reason"] == "Conflict"
    gone = ok(call(emulator, "DELETE", f"{WIDGETS}/w1"))
    assert gone["kind"] == "Status"
    assert gone["details"]["group"] == GROUP
    assert gone["details"]["kind"] == "widgets"
    missing = call(emulator, "GET", f"{WIDGETS}/w1")
    assert missing[0] == 404
    assert missing[1]["message"] == f'widgets.{GROUP} "w1" not found'
    assert call(emulator, "GET", f"/apis/{GROUP}/v1/widgets/w2")[0] == 404  # no namespace


def test_cluster_scoped_kind(emulator: KubeEmulator) -> None:
    ok(call(emulator, "POST", CRDS, widget_crd(scope="Cluster")), 201)
    body = {**widget("c1"), "kind": "ClusterWidget"}
    created = ok(call(emulator, "POST", CLUSTER_WIDGETS, body), 201)
    assert "namespace" not in created["metadata"]
    assert ok(call(emulator, "GET", f"{CLUSTER_WIDGETS}/c1"))["metadata"]["name"] == "c1"
    assert call(emulator, "GET", f"/apis/{GROUP}/v1/namespaces/default/clusterwidgets/c1")[0] == 404
    wrong_kind = call(emulator, "POST", CLUSTER_WIDGETS, widget("c2"))
    assert wrong_kind[0] == 400
    assert "does not match the expected kind" in wrong_kind[1]["message"]
    ok(call(emulator, "DELETE", f"{CLUSTER_WIDGETS}/c1"))


def test_watch_from_a_resource_version_with_bookmarks(emulator: KubeEmulator) -> None:
    emulator.bookmark_interval = 0.5
    rv = ok(call(emulator, "GET", WIDGETS))["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    thread = watch_lines(
        emulator,
        f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=3&allowWatchBookmarks=true",
        events,
    )
    other = watch_lines(
        emulator, f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=2", plain
    )
    ok(call(emulator, "POST", WIDGETS, widget("w1")), 201)
    ok(call(emulator, "PATCH", f"{WIDGETS}/w1", {"spec": {"size": 5}}, content_type=MERGE))
    ok(call(emulator, "DELETE", f"{WIDGETS}/w1"))
    thread.join(30)
    other.join(30)
    changes = [(e["type"], e["object"]["spec"]["size"]) for e in events if e["type"] != "BOOKMARK"]
    assert changes == [("ADDED", 3), ("MODIFIED", 5), ("DELETED", 5)]
    bookmarks = [e["object"] for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert bookmarks[-1]["kind"] == "Widget"
    assert bookmarks[-1]["apiVersion"] == f"{GROUP}/v1"
    assert int(bookmarks[-1]["metadata"]["resourceVersion"]) >= int(
        events[2]["object"]["metadata"]["resourceVersion"]
    )
    assert [e["type"] for e in plain] == ["ADDED", "MODIFIED", "DELETED"]  # none unasked


def test_the_kind_is_watched_from_the_first_list_and_through_a_table(
    emulator: KubeEmulator,
) -> None:
    ok(call(emulator, "POST", WIDGETS, widget("w1", 7)), 201)
    events: list[dict[str, Any]] = []
    thread = watch_lines(emulator, f"{WIDGETS}?watch=1&timeoutSeconds=1", events)
    thread.join(30)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1")]
    tables: list[dict[str, Any]] = []
    thread = watch_lines(emulator, f"{WIDGETS}?watch=1&timeoutSeconds=1", tables, accept=TABLE)
    thread.join(30)
    ((kind, table),) = [(e["type"], e["object"]) for e in tables]
    assert kind == "ADDED"
    assert table["kind"] == "Table"
    assert table["rows"][0]["cells"][:3] == ["w1", 7, "red"]


def test_networking_is_served_with_the_other_groups_watch_included(
    emulator: KubeEmulator,
) -> None:
    path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    rv = ok(call(emulator, "GET", path))["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []
    thread = watch_lines(emulator, f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=1", events)
    ok(call(emulator, "POST", path, policy), 201)
    thread.join(30)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "deny")]
    bad = call(
        emulator,
        "POST",
        path,
        {**policy, "metadata": {"name": "bad"}, "spec": {"podSelector": "all"}},
    )
    assert bad[0] == 422
    assert call(emulator, "GET", "/api/v1/namespaces/default/networkpolicies")[0] == 404


# -- status subresource, generation, patches ----------------------------------------------------


def test_status_subresource_splits_status_from_the_rest(emulator: KubeEmulator) -> None:
    created = ok(call(emulator, "POST", WIDGETS, {**widget("w1"), "status": {"phase": "set"}}), 201)
    assert "status" not in created  # create cannot set status
    main = ok(
        call(emulator, "PATCH", f"{WIDGETS}/w1", {"status": {"phase": "Main"}}, content_type=MERGE)
    )
    assert "status" not in main
    assert main["metadata"]["generation"] == 1
    status = ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1/status",
            {"status": {"phase": "Ready"}, "spec": {"size": 9}, "metadata": {"labels": {"a": "b"}}},
            content_type=MERGE,
        )
    )
    assert status["status"] == {"phase": "Ready"}
    assert status["spec"]["size"] == 3
    assert "labels" not in status["metadata"]
    assert status["metadata"]["generation"] == 1  # status is not the spec
    patched = ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1/status",
            [{"op": "replace", "path": "/status/phase", "value": "Done"}],
            content_type=JSON_PATCH,
        )
    )
    assert patched["status"] == {"phase": "Done"}
    got = ok(call(emulator, "GET", f"{WIDGETS}/w1/status"))
    assert got["status"] == {"phase": "Done"}
    put = ok(call(emulator, "PUT", f"{WIDGETS}/w1/status", {**got, "status": {"phase": "Put"}}))
    assert put["status"] == {"phase": "Put"}
    labelled = ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1",
            {"metadata": {"labels": {"a": "b"}}},
            content_type=MERGE,
        )
    )
    assert labelled["metadata"]["generation"] == 1  # metadata is not the spec either
    spec = ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1",
            [
                {"op": "test", "path": "/spec/size", "value": 3},
                {"op": "replace", "path": "/spec/size", "value": 4},
            ],
            content_type=JSON_PATCH,
        )
    )
    assert spec["metadata"]["generation"] == 2
    assert spec["status"] == {"phase": "Put"}
    failed = call(
        emulator,
        "PATCH",
        f"{WIDGETS}/w1",
        [{"op": "test", "path": "/spec/size", "value": 3}],
        content_type=JSON_PATCH,
    )
    assert failed[0] == 422


def test_without_a_status_subresource_status_is_part_of_the_object(emulator: KubeEmulator) -> None:
    ok(call(emulator, "DELETE", f"{CRDS}/widgets.{GROUP}"))
    ok(call(emulator, "POST", CRDS, widget_crd(status=False)), 201)
    created = ok(
        call(emulator, "POST", WIDGETS, {**widget("w1"), "status": {"phase": "kept"}}), 201
    )
    assert created["status"] == {"phase": "kept"}
    patched = ok(
        call(emulator, "PATCH", f"{WIDGETS}/w1", {"status": {"phase": "x"}}, content_type=MERGE)
    )
    assert patched["status"] == {"phase": "x"}
    assert patched["metadata"]["generation"] == 2
    assert call(emulator, "GET", f"{WIDGETS}/w1/status")[0] == 404
    assert call(emulator, "PATCH", f"{WIDGETS}/w1/status", {}, content_type=MERGE)[0] == 404
    resources = ok(call(emulator, "GET", f"/apis/{GROUP}/v1"))["resources"]
    assert [r["name"] for r in resources] == ["widgets"]


def test_strategic_merge_patch_is_refused_for_custom_resources(emulator: KubeEmulator) -> None:
    ok(call(emulator, "POST", WIDGETS, widget("w1")), 201)
    refused = call(
        emulator,
        "PATCH",
        f"{WIDGETS}/w1",
        {"spec": {"size": 2}},
        content_type="application/strategic-merge-patch+json",
    )
    assert refused[0] == 415
    assert "application/json-patch+json, application/merge-patch+json" in refused[1]["message"]


# -- finalizers and deletion -------------------------------------------------------------------


def test_finalizers_hold_a_custom_resource_until_removed(emulator: KubeEmulator) -> None:
    body = widget("w1")
    body["metadata"]["finalizers"] = ["example.test/hold"]
    ok(call(emulator, "POST", WIDGETS, body), 201)
    marked = ok(call(emulator, "DELETE", f"{WIDGETS}/w1"))
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert ok(call(emulator, "GET", f"{WIDGETS}/w1"))["metadata"]["deletionTimestamp"]
    added = call(
        emulator,
        "PATCH",
        f"{WIDGETS}/w1",
        {"metadata": {"finalizers": ["example.test/hold", "example.test/more"]}},
        content_type=MERGE,
    )
    assert added[0] == 422
    assert added[1]["message"] == (
        f'Widget.{GROUP} "w1" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"example.test/more"}'
    )
    changed = call(emulator, "PATCH", f"{WIDGETS}/w1", {"spec": {"size": 4}}, content_type=MERGE)
    assert changed[0] == 200  # a deleting object can still be changed
    ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1",
            {"metadata": {"finalizers": None}},
            content_type=MERGE,
        )
    )
    assert call(emulator, "GET", f"{WIDGETS}/w1")[0] == 404


def test_deleting_a_crd_deletes_its_objects_then_the_kind(emulator: KubeEmulator) -> None:
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.test/hold"]
    ok(call(emulator, "POST", WIDGETS, held), 201)
    ok(call(emulator, "POST", WIDGETS, widget("free")), 201)
    marked = ok(call(emulator, "DELETE", f"{CRDS}/widgets.{GROUP}"))
    assert marked["metadata"]["deletionTimestamp"]

    def names() -> list[str]:
        return [w["metadata"]["name"] for w in ok(call(emulator, "GET", WIDGETS))["items"]]

    # The free widget goes; the held one waits for its finalizer, and holds the CRD.
    assert names() == ["held"]
    assert ok(call(emulator, "GET", f"{WIDGETS}/held"))["metadata"]["deletionTimestamp"]
    refused = call(emulator, "POST", WIDGETS, widget("late"))
    assert refused[0] == 405
    assert (
        refused[1]["message"]
        == "create not allowed while custom resource definition is terminating"
    )
    assert ok(call(emulator, "GET", f"{CRDS}/widgets.{GROUP}"))["metadata"]["deletionTimestamp"]
    ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/held",
            {"metadata": {"finalizers": []}},
            content_type=MERGE,
        )
    )
    assert emulator.call(lambda: None) is None  # let the cleanup run on the emulator's loop
    assert call(emulator, "GET", f"{CRDS}/widgets.{GROUP}")[0] == 404
    assert call(emulator, "GET", WIDGETS)[0] == 404
    assert GROUP not in [g["name"] for g in ok(call(emulator, "GET", "/apis"))["groups"]]
    # Defined again, the kind starts empty.
    ok(call(emulator, "POST", CRDS, widget_crd()), 201)
    assert ok(call(emulator, "GET", WIDGETS))["items"] == []


# -- printer columns --------------------------------------------------------------------------


def test_printer_columns_in_tables(emulator: KubeEmulator) -> None:
    ok(call(emulator, "POST", WIDGETS, widget("w1", 4)), 201)
    ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1/status",
            {"status": {"phase": "Ready"}},
            content_type=MERGE,
        )
    )
    table = ok(call(emulator, "GET", WIDGETS, accept=TABLE))
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Size",
        "Color",
        "Phase",
        "Age",
    ]
    assert [c["type"] for c in table["columnDefinitions"]] == [
        "string",
        "integer",
        "string",
        "string",
        "date",
    ]
    (row,) = table["rows"]
    assert row["cells"][:4] == ["w1", 4, "red", "Ready"]
    assert row["cells"][4].endswith("s")  # the Age of a date column, as kubectl shows it
    one = ok(call(emulator, "GET", f"{WIDGETS}/w1", accept=TABLE))
    assert one["rows"][0]["cells"][0] == "w1"
    crds = ok(call(emulator, "GET", CRDS, accept=TABLE))
    assert [c["name"] for c in crds["columnDefinitions"]] == ["Name", "Created At"]


def test_a_crd_without_printer_columns_prints_name_and_age(emulator: KubeEmulator) -> None:
    ok(call(emulator, "POST", CRDS, widget_crd(scope="Cluster")), 201)
    crd = ok(call(emulator, "GET", f"{CRDS}/clusterwidgets.{GROUP}"))
    del crd["spec"]["versions"][0]["additionalPrinterColumns"]
    ok(call(emulator, "PUT", f"{CRDS}/clusterwidgets.{GROUP}", crd))
    ok(call(emulator, "POST", CLUSTER_WIDGETS, {**widget("c1"), "kind": "ClusterWidget"}), 201)
    table = ok(call(emulator, "GET", CLUSTER_WIDGETS, accept=TABLE))
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]


# -- RBAC and Leases -----------------------------------------------------------------------------


def test_rbac_decides_custom_resources_by_group_resource_and_subresource(
    emulator: KubeEmulator,
) -> None:
    ok(call(emulator, "POST", WIDGETS, widget("w1")), 201)
    token = emulator.call(
        lambda: emulator.access.grant_role(
            "default",
            "widget-reader",
            [{"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get", "list", "patch"]}],
            service_account=("default", "reader"),
        )
    )
    assert ok(call(emulator, "GET", f"{WIDGETS}/w1", token=token))["metadata"]["name"] == "w1"
    user = "system:serviceaccount:default:reader"
    created = call(emulator, "POST", WIDGETS, widget("w2"), token=token)
    assert created[0] == 403
    assert created[1]["message"] == (
        f'widgets.{GROUP} is forbidden: User "{user}" cannot create resource "widgets" in API '
        f'group "{GROUP}" in the namespace "default"'
    )
    status = call(
        emulator, "PATCH", f"{WIDGETS}/w1/status", {"status": {}}, token=token, content_type=MERGE
    )
    assert status[0] == 403
    assert 'cannot patch resource "widgets/status"' in status[1]["message"]
    elsewhere = call(emulator, "GET", f"/apis/{GROUP}/v1/namespaces/other/widgets", token=token)
    assert elsewhere[0] == 403
    crds = call(emulator, "GET", CRDS, token=token)
    assert crds[0] == 403
    assert (
        'cannot list resource "customresourcedefinitions" in API group "apiextensions.k8s.io"'
        in crds[1]["message"]
    )


LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


def lease(name: str, holder: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, **spec},
    }


def test_leases_are_served_watched_and_validated(emulator: KubeEmulator) -> None:
    resources = ok(call(emulator, "GET", "/apis/coordination.k8s.io/v1"))["resources"]
    assert [(r["name"], r["namespaced"], r["kind"]) for r in resources] == [
        ("leases", True, "Lease")
    ]
    rv = ok(call(emulator, "GET", LEASES))["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []
    thread = watch_lines(
        emulator, f"{LEASES}?watch=true&resourceVersion={rv}&timeoutSeconds=2", events
    )
    created = ok(
        call(emulator, "POST", LEASES, lease("op", "a", renewTime="2026-12-02T01:00:00.000000Z")),
        201,
    )
    # Taking the lease over: an update conditional on the resourceVersion read.
    created["spec"]["holderIdentity"] = "b"
    ok(call(emulator, "PUT", f"{LEASES}/op", created))
    lost = call(emulator, "PUT", f"{LEASES}/op", {**created, "spec": {"holderIdentity": "c"}})
    assert lost[0] == 409
    bad = call(emulator, "POST", LEASES, lease("bad", "a", leaseDurationSeconds="15"))
    assert bad[0] == 422
    assert bad[1]["message"].startswith(
        'Lease.coordination.k8s.io "bad" is invalid: spec.leaseDurationSeconds'
    )
    table = ok(call(emulator, "GET", LEASES, accept=TABLE))
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    assert table["rows"][0]["cells"][:2] == ["op", "b"]
    ok(call(emulator, "DELETE", f"{LEASES}/op"))
    thread.join(30)
    assert [(e["type"], e["object"]["spec"]["holderIdentity"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "b"),
        ("DELETED", "b"),
    ]


def test_watch_list_initial_events_are_refused_as_without_the_feature_gate(
    emulator: KubeEmulator,
) -> None:
    code, answer, _ = call(
        emulator,
        "GET",
        f"{WIDGETS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
    )
    assert code == 422
    assert (
        "sendInitialEvents is forbidden for watch unless the WatchList feature gate"
        in answer["message"]
    )
