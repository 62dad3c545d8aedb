"""openAPIV3Schema in the emulator: CRD schemas checked, custom resources pruned, defaulted,
validated with the API server's wording; CRDs with bad names or unmodelled features refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lsst_spawner.testing.kube import KubeEmulator

from .widgets_crd import CRDS, GROUP, MERGE, WIDGET_SCHEMA, WIDGETS, call, ok, widget, widget_crd


def refusal(emulator: KubeEmulator, body: dict[str, Any], path: str = WIDGETS) -> str:
    code, answer, _ = call(emulator, "POST", path, body)
    assert code == 422, answer
    assert answer["reason"] == "Invalid"
    return str(answer["message"])


# -- custom resources against their schema -----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"size": "3"},
            'spec.size: Invalid value: "string": spec.size in body must be of type integer: '
            '"string"',
        ),
        (
            {"size": 3.0},
            'spec.size: Invalid value: "number": spec.size in body must be of type integer',
        ),
        (
            {"size": 11},
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (
            {"size": 0},
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
        ),
        (
            {"size": 3, "color": "pink"},
            'spec.color: Unsupported value: "pink": supported values: "red", "blue"',
        ),
        ({"color": "red"}, "spec.size: Required value"),
        (
            {"size": 3, "label": "toolonglabel"},
            "spec.label: Too long: may not be more than 8 bytes",
        ),
        ({"size": 3, "label": "UPPER"}, "spec.label in body should match '^[a-z]+$'"),
        (
            {"size": 3, "port": 1.5},
            "spec.port: Invalid value: 1.5: spec.port in body must be of type integer or string",
        ),
        ({"size": 3, "tags": ["a", "a"]}, 'spec.tags[1]: Duplicate value: "a"'),
        (
            {"size": 3, "tags": ["a", "b", "c", "d"]},
            "spec.tags: Too many: 4: must have at most 3 items",
        ),
        ({"size": 3, "limits": {"cpu": "1"}}, "spec.limits.cpu in body must be of type integer"),
        ({"size": 3, "weight": "heavy"}, "spec.weight in body must be of type number"),
        ({"size": 3, "color": None}, None),  # null, not nullable: defaulted, so valid
    ],
)
def test_invalid_custom_resources_get_the_api_servers_422(
    emulator: KubeEmulator, spec: dict[str, Any], message: str | None
) -> None:
    body = widget("w1")
    body["spec"] = spec
    if message is None:
        assert ok(call(emulator, "POST", WIDGETS, body), 201)["spec"]["color"] == "red"
        return
    text = refusal(emulator, body)
    assert text.startswith(f'Widget.{GROUP} "w1" is invalid: ')
    assert message in text


def test_int32_and_int64_formats_bound_integers(emulator: KubeEmulator) -> None:
    schema = copy.deepcopy(WIDGET_SCHEMA)
    schema["properties"]["spec"]["properties"]["size"] = {"type": "integer", "format": "int32"}
    schema["properties"]["spec"]["properties"]["big"] = {"type": "integer", "format": "int64"}
    schema["properties"]["spec"]["properties"]["ratio"] = {"type": "number", "format": "float"}
    ok(call(emulator, "DELETE", f"{CRDS}/widgets.{GROUP}"))
    ok(call(emulator, "POST", CRDS, widget_crd(scope="Cluster", schema=schema)), 201)
    path = f"/apis/{GROUP}/v1/clusterwidgets"

    def body(**spec: Any) -> dict[str, Any]:
        return {**widget("c1"), "kind": "ClusterWidget", "spec": spec}

    assert "must be of type int32" in refusal(emulator, body(size=2**31), path)
    assert "must be of type int64" in refusal(emulator, body(size=1, big=2**63), path)
    assert "must be of type float" in refusal(emulator, body(size=1, ratio=1e39), path)
    ok(call(emulator, "POST", path, body(size=2**31 - 1, big=2**63 - 1, ratio=1.5)), 201)


def test_unknown_fields_are_pruned_with_the_field_validation_mode(emulator: KubeEmulator) -> None:
    body = widget("w1", 3, junk=1, extra={"anything": {"goes": True}})
    body["unknownTop"] = "x"
    code, created, headers = call(emulator, "POST", WIDGETS, body)
    assert code == 201
    assert created["spec"] == {"size": 3, "color": "red", "extra": {"anything": {"goes": True}}}
    assert "unknownTop" not in created
    assert (
        'unknown field \\"spec.junk\\"' in headers["Warning"] or "spec.junk" in headers["Warning"]
    )
    assert "unknownTop" in headers["Warning"]
    strict = call(emulator, "POST", WIDGETS + "?fieldValidation=Strict", widget("w2", 3, junk=1))
    assert strict[0] == 400
    assert strict[1]["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.junk"'
    )
    ignored = call(emulator, "POST", WIDGETS + "?fieldValidation=Ignore", widget("w3", 3, junk=1))
    assert ignored[0] == 201
    assert "Warning" not in ignored[2]
    # Pruning happens on updates too, and keeps nullable nulls.
    patched = ok(
        call(
            emulator,
            "PATCH",
            f"{WIDGETS}/w1",
            {"spec": {"junk": 2, "note": None}},
            content_type=MERGE,
        )
    )
    assert "junk" not in patched["spec"]
    assert "note" not in patched["spec"]  # a merge patch's null deletes
    put = ok(
        call(
            emulator, "PUT", f"{WIDGETS}/w1", {**patched, "spec": {**patched["spec"], "note": None}}
        )
    )
    assert put["spec"]["note"] is None


def test_metadata_is_checked_against_object_meta(emulator: KubeEmulator) -> None:
    body = widget("w1")
    body["metadata"]["labels"] = {"a": 1}
    assert "metadata.labels.a" in refusal(emulator, body)
    bad_name = widget("Not_A_Name")
    assert "metadata.name" in refusal(emulator, bad_name)
    code, created, headers = call(
        emulator, "POST", WIDGETS, {**widget("w2"), "metadata": {"name": "w2", "bogus": 1}}
    )
    assert code == 201
    assert "bogus" not in created["metadata"]
    assert "metadata.bogus" in headers["Warning"]


def test_defaults_fill_missing_fields_at_every_level(emulator: KubeEmulator) -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {},
                "properties": {
                    "replicas": {"type": "integer", "default": 1},
                    "ports": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "port": {"type": "integer"},
                                "protocol": {"type": "string", "default": "TCP"},
                            },
                        },
                    },
                },
            }
        },
    }
    ok(call(emulator, "POST", CRDS, widget_crd(scope="Cluster", schema=schema)), 201)
    path = f"/apis/{GROUP}/v1/clusterwidgets"
    empty = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterWidget", "metadata": {"name": "c1"}}
    assert ok(call(emulator, "POST", path, empty), 201)["spec"] == {"replicas": 1}
    ports = {
        **empty,
        "metadata": {"name": "c2"},
        "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]},
    }
    assert ok(call(emulator, "POST", path, ports), 201)["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP"},
        {"port": 53, "protocol": "UDP"},
    ]


# -- CRDs refused ---------------------------------------------------------------------------------


def crd_with(**changes: Any) -> dict[str, Any]:
    crd = widget_crd(scope="Cluster")
    version = crd["spec"]["versions"][0]
    for key, value in changes.items():
        if key == "schema":
            version["schema"]["openAPIV3Schema"] = value
        elif key in ("subresources", "additionalPrinterColumns", "selectableFields"):
            version[key] = value
        elif key == "names":
            crd["spec"]["names"].update(value)
        elif key == "name":
            crd["metadata"]["name"] = value
        else:
            crd["spec"][key] = value
    return crd


def with_spec_property(prop: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"x": prop}}},
    }


ROOT = "spec.versions[0].schema.openAPIV3Schema"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"schema": with_spec_property({"properties": {"y": {"type": "string"}}})},
            f"{ROOT}.properties[spec].properties[x].type: Required value: must not be empty for "
            "specified object fields",
        ),
        (
            {
                "schema": with_spec_property(
                    {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 3"}]}
                )
            },
            f"{ROOT}.properties[spec].properties[x].x-kubernetes-validations: Forbidden: the "
            "emulator does not evaluate CEL validation rules",
        ),
        (
            {"schema": with_spec_property({"$ref": "#/definitions/x"})},
            "$ref: Forbidden: $ref is not supported",
        ),
        (
            {
                "schema": with_spec_property(
                    {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}
                )
            },
            "additionalProperties and properties are mutual exclusive",
        ),
        (
            {"schema": with_spec_property({"type": "object", "additionalProperties": False})},
            "additionalProperties cannot be set to false",
        ),
        ({"schema": with_spec_property({"type": "array"})}, "properties[x].items: Required value"),
        (
            {"schema": with_spec_property({"type": "array", "items": [{"type": "string"}]})},
            "items must be a schema object and not an array",
        ),
        ({"schema": with_spec_property({"type": "null"})}, 'Unsupported value: "null"'),
        (
            {"schema": with_spec_property({"type": "string", "anyOf": [{"type": "string"}]})},
            "anyOf[0].type: Forbidden: must be empty to be structural",
        ),
        (
            {"schema": with_spec_property({"type": "integer", "default": "one"})},
            "properties[x].default: Invalid value",
        ),
        (
            {
                "schema": with_spec_property(
                    {"type": "object", "default": {"y": 1}, "properties": {}}
                )
            },
            "must not have unknown fields (y)",
        ),
        (
            {
                "schema": {
                    "type": "object",
                    "properties": {
                        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
                    },
                }
            },
            "must not specify anything other than name and generateName",
        ),
        (
            {"schema": {"type": "string"}},
            f'{ROOT}.type: Invalid value: "string": must be object at the root',
        ),
        (
            {
                "schema": with_spec_property(
                    {"type": "string", "x-kubernetes-embedded-resource": True}
                )
            },
            "does not model embedded resources",
        ),
        (
            {
                "schema": with_spec_property(
                    {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"}
                )
            },
            "x-kubernetes-list-map-keys: Required value",
        ),
        (
            {
                "schema": with_spec_property(
                    {"type": "string", "x-kubernetes-preserve-unknown-fields": False}
                )
            },
            "must be true",
        ),
        (
            {"group": "example"},
            'spec.group: Invalid value: "example": should be a domain with at least one dot',
        ),
        (
            {"group": "apps.k8s.io", "name": "clusterwidgets.apps.k8s.io"},
            "protected groups must have approval annotation",
        ),
        (
            {
                "group": "rbac.authorization.k8s.io",
                "name": "clusterwidgets.rbac.authorization.k8s.io",
            },
            "is served by the API server itself",
        ),
        (
            {"name": "gadgets.example.test"},
            'metadata.name: Invalid value: "gadgets.example.test": must be '
            'spec.names.plural+"."+spec.group',
        ),
        (
            {"names": {"plural": "Widgets"}, "name": f"Widgets.{GROUP}"},
            "a lowercase RFC 1123",
        ),
        ({"names": {"kind": ""}}, "spec.names.kind: Required value"),
        ({"names": {"listKind": "ClusterWidget"}}, "kind and listKind may not be the same"),
        ({"scope": "Global"}, 'spec.scope: Unsupported value: "Global"'),
        ({"versions": []}, "spec.versions: Required value"),
        (
            {
                "versions": [
                    {"name": "v1", "served": True, "storage": True},
                    {"name": "v2", "served": True, "storage": False},
                ]
            },
            "the emulator serves one version per CRD",
        ),
        ({"conversion": {"strategy": "Webhook"}}, "does not model conversion webhooks"),
        (
            {
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                    },
                }
            },
            "does not model the scale subresource",
        ),
        ({"selectableFields": [{"jsonPath": ".spec.size"}]}, "does not model selectable fields"),
        (
            {"preserveUnknownFields": True},
            "spec.preserveUnknownFields: Invalid value: true: must be false",
        ),
        (
            {"additionalPrinterColumns": [{"name": "X", "type": "time", "jsonPath": ".spec.x"}]},
            'additionalPrinterColumns[0].type: Unsupported value: "time"',
        ),
        (
            {"additionalPrinterColumns": [{"name": "X", "type": "string", "jsonPath": "spec.x"}]},
            "must be a simple json path starting with .",
        ),
        (
            {"additionalPrinterColumns": [{"name": "X", "type": "string", "jsonPath": ".spec.x{"}]},
            "jsonPath: Invalid value",
        ),
    ],
)
def test_bad_crds_are_refused(
    emulator: KubeEmulator, changes: dict[str, Any], message: str
) -> None:
    crd = crd_with(**changes)
    text = refusal(emulator, crd, CRDS)
    assert text.startswith(
        f'CustomResourceDefinition.apiextensions.k8s.io "{crd["metadata"]["name"]}" is invalid: '
    )
    assert message in text


def test_a_crd_without_any_schema_is_refused(emulator: KubeEmulator) -> None:
    crd = widget_crd(scope="Cluster")
    del crd["spec"]["versions"][0]["schema"]
    assert "schemas are required" in refusal(emulator, crd, CRDS)


def test_crd_names_taken_in_the_group_are_refused(emulator: KubeEmulator) -> None:
    crd = widget_crd(scope="Cluster")
    crd["spec"]["names"]["kind"] = "Widget"
    crd["spec"]["names"]["listKind"] = "ClusterWidgetList"
    assert 'spec.names.kind: Invalid value: "Widget": is already in use' in refusal(
        emulator, crd, CRDS
    )
    crd = widget_crd(scope="Cluster")
    crd["spec"]["names"]["shortNames"] = ["wd"]
    assert 'spec.names.shortNames: Invalid value: "wd": is already in use' in refusal(
        emulator, crd, CRDS
    )


def test_a_crds_group_scope_and_kind_cannot_change(emulator: KubeEmulator) -> None:
    crd = ok(call(emulator, "GET", f"{CRDS}/widgets.{GROUP}"))
    for field, value in (
        ("scope", "Cluster"),
        ("names", {**crd["spec"]["names"], "kind": "Gadget"}),
    ):
        changed = copy.deepcopy(crd)
        changed["spec"][field] = value
        code, answer, _ = call(emulator, "PUT", f"{CRDS}/widgets.{GROUP}", changed)
        assert code == 422
        assert "field is immutable" in answer["message"]
    # A new schema is taken, and applies to the next write.
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "size"
    ]["maximum"] = 2
    updated = ok(call(emulator, "PUT", f"{CRDS}/widgets.{GROUP}", crd))
    assert updated["metadata"]["generation"] == 2
    assert "should be less than or equal to 2" in refusal(emulator, widget("w1", 3))


def test_an_invalid_singular_is_refused_even_when_the_name_is_valid(emulator: KubeEmulator) -> None:
    crd = crd_with(names={"singular": "Widget_"})
    assert "spec.names.singular: Invalid value" in refusal(emulator, crd, CRDS)


def test_a_schemas_rules_for_metadata_name_apply(emulator: KubeEmulator) -> None:
    schema = {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 5}},
            }
        },
    }
    ok(call(emulator, "POST", CRDS, widget_crd(scope="Cluster", schema=schema)), 201)
    path = f"/apis/{GROUP}/v1/clusterwidgets"
    body = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterWidget", "metadata": {"name": "toolong"}}
    assert "metadata.name: Too long: may not be more than 5 bytes" in refusal(emulator, body, path)
    ok(call(emulator, "POST", path, {**body, "metadata": {"name": "short"}}), 201)
