"""The real kubectl against the emulator's CRDs: apply, get with printer columns, delete."""

from __future__ import annotations

from typing import Any

import pytest

from . import test_kubectl
from .test_kubectl import Kubectl, columns, row
from .widgets_crd import GROUP, widget, widget_crd

pytestmark = pytest.mark.integration
# The kubectl binaries (1.27 and the newest) over TLS, as test_kubectl.py runs them.
kubectl = test_kubectl.kubectl
kube_tls = test_kubectl.kube_tls


def test_apply_a_crd_and_its_custom_resources(kubectl: Kubectl, kube_api: Any) -> None:
    created = kubectl.apply(widget_crd())
    assert (
        created.stdout.strip()
        == f"customresourcedefinition.apiextensions.k8s.io/widgets.{GROUP} created"
    )
    applied = kubectl.apply(widget("w1", 4))
    assert applied.stdout.strip() == f"widget.{GROUP}/w1 created", applied.stderr
    got = kubectl.run("get", "widgets")
    assert columns(got.stdout) == ["NAME", "SIZE", "COLOR", "PHASE", "AGE"]
    assert row(got.stdout, "w1")[:3] == ["w1", "4", "red"]
    assert row(kubectl.run("get", "wd").stdout, "w1")[0] == "w1"  # the short name
    assert "widget.example.test/w1" in kubectl.run("get", "all").stdout  # category "all"
    again = kubectl.apply(widget("w1", 6))
    assert again.stdout.strip() == f"widget.{GROUP}/w1 configured", again.stderr
    stored = kube_api.emulator.get_object(f"widgets.{GROUP}", "w1", kube_api.namespace)
    assert stored["spec"]["size"] == 6
    assert stored["metadata"]["generation"] == 2
    refused = kubectl.apply(widget("w2", 99), check=False)
    assert refused.returncode != 0
    assert "spec.size in body should be less than or equal to 10" in refused.stderr
    crds = kubectl.run("get", "crd")
    assert columns(crds.stdout) == ["NAME", "CREATED AT"]
    assert row(crds.stdout, f"widgets.{GROUP}")[0] == f"widgets.{GROUP}"
    deleted = kubectl.run("delete", "widget", "w1")
    assert deleted.stdout.strip() == f'widget.{GROUP} "w1" deleted'


def test_explain_reads_the_crds_schema(kubectl: Kubectl, kube_api: Any) -> None:
    kubectl.apply(widget_crd())
    explained = kubectl.run("explain", "widgets.spec").stdout
    assert f"GROUP:      {GROUP}" in explained
    assert "FIELD: spec <Object>" in explained
    assert "size\t<integer> -required-" in explained
    assert "limits\t<map[string]integer>" in explained
    assert "tags\t<[]string>" in explained
    missing = kubectl.run("explain", "widgets.spec.nosuchfield", check=False)
    assert missing.returncode != 0
    assert "nosuchfield" in missing.stderr
