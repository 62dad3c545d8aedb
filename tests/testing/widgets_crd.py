"""A made-up CRD (``widgets.example.test``) and HTTP helpers for the CRD and kopf tests."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from lsst_spawner.testing import waiting
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.authn import ADMIN_TOKEN

T = TypeVar("T")
GROUP = "example.test"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "weight": {"type": "number"},
                "label": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {
                    "type": "array",
                    "maxItems": 3,
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
                "note": {"type": "string", "nullable": True},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def widget_crd(
    *, scope: str = "Namespaced", status: bool = True, schema: Any = None, **spec: Any
) -> dict[str, Any]:
    """The widgets CRD; ``spec`` overrides top-level spec fields."""
    plural = "widgets" if scope == "Namespaced" else "clusterwidgets"
    kind = "Widget" if scope == "Namespaced" else "ClusterWidget"
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": copy.deepcopy(schema or WIDGET_SCHEMA)},
        "additionalPrinterColumns": [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    }
    if status:
        version["subresources"] = {"status": {}}
    body: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": ["wd"] if scope == "Namespaced" else ["cwd"],
                "categories": ["all"],
            },
            "versions": [version],
        },
    }
    body["spec"].update(spec)
    return body


def widget(name: str, size: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


def call(
    emulator: KubeEmulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str = ADMIN_TOKEN,
    content_type: str = "application/json",
    accept: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One HTTP request to the emulator: (status, decoded JSON body, headers)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(  # noqa: S310 - loopback
        emulator.url + path, data, headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, got = error.read(), error.code, dict(error.headers)
    return status, (json.loads(raw) if raw else None), got


def ok(result: tuple[int, Any, dict[str, str]], status: int = 200) -> Any:
    code, body, _ = result
    assert code == status, body
    return body


def clear_finalizers(emulator: KubeEmulator, path: str) -> Any:
    """Merge-patch the object at ``path`` to have no finalizers (what a controller does last)."""
    return ok(call(emulator, "PATCH", path, {"metadata": {"finalizers": None}}, content_type=MERGE))


def wait_for(fn: Callable[[], T | None], what: str, timeout: float = 60, log: Any = None) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    detail = (lambda: f"--- operator output ---\n{log()}") if log is not None else None
    return waiting.wait_for(fn, what, timeout=timeout, detail=detail)
