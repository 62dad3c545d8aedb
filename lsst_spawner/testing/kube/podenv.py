"""A container's environment as the kubelet computes it, from the pod and the store."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .store import ObjectStore

__all__ = ["ContainerConfigError", "field_ref", "resolve_env", "resolve_lab_env"]

#: Finds the data of a Secret (``"secret"``, decoded) or ConfigMap (``"configmap"``) by its ref.
Lookup = Callable[[str, Mapping[str, Any]], "dict[str, str] | None"]

_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class ContainerConfigError(Exception):
    """The kubelet's CreateContainerConfigError (a missing secret, config map or key)."""


def expand(value: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` references to earlier variables; ``$$`` escapes ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(sub, value)


def field_ref(pod: Mapping[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    values = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    return str(values.get(path) or "")


def _data(obj: Mapping[str, Any] | None, kind: str, ref: Mapping[str, Any]) -> Any:
    if obj is None:
        if ref.get("optional"):
            return None
        raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
    data = dict(obj.get("data") or {})
    if kind == "secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    return data


def resolve_env(
    store: ObjectStore, pod: dict[str, Any], container: dict[str, Any]
) -> dict[str, str]:
    """``envFrom`` then ``env``, with secretKeyRef/configMapKeyRef/fieldRef resolved."""
    namespace = pod["metadata"]["namespace"]

    def lookup(kind: str, ref: Mapping[str, Any]) -> Any:
        resource = "secrets" if kind == "secret" else "configmaps"
        return _data(store.objects[resource].get((namespace, ref.get("name", ""))), kind, ref)

    return _resolve(pod, container, lookup)


def resolve_lab_env(
    objects: Iterable[Mapping[str, Any]], container: str = "notebook"
) -> dict[str, str]:
    """The environment the kubelet gives a lab's container, from the lab's objects alone.

    ``objects`` are the ConfigMap, Secret and Pod of a lab, as ``render-pod`` prints them
    and ``build_lab_objects`` returns them (any order; other objects are ignored).
    ``envFrom`` comes first, then ``env`` overrides it, with ``$(VAR)`` expanded and
    ``secretKeyRef``/``configMapKeyRef`` read from these objects, as Kubernetes does.
    """
    by_kind: dict[tuple[str, str], Mapping[str, Any]] = {}
    pod: Mapping[str, Any] | None = None
    for obj in objects:
        kind, name = obj.get("kind"), obj["metadata"]["name"]
        if kind == "Pod":
            pod = obj
        elif kind in ("Secret", "ConfigMap"):
            by_kind[(str(kind).lower(), name)] = obj
    if pod is None:
        raise ValueError("no Pod among the objects")
    containers = pod["spec"]["containers"]
    lab = next((c for c in containers if c.get("name") == container), containers[0])

    def lookup(kind: str, ref: Mapping[str, Any]) -> Any:
        return _data(by_kind.get((kind, ref.get("name", ""))), kind, ref)

    return _resolve(pod, lab, lookup)


def _resolve(
    pod: Mapping[str, Any], container: Mapping[str, Any], lookup: Lookup
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("secret", "secretRef"), ("configmap", "configMapRef")):
            if key in source:
                found = lookup(kind, source[key]) or {}
                env.update({prefix + k: v for k, v in found.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in source:
            resource = source["resourceFieldRef"].get("resource", "")
            kind, _, what = resource.partition(".")
            env[name] = str(((container.get("resources") or {}).get(kind) or {}).get(what, "0"))
        else:
            for kind, key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
                if key not in source:
                    continue
                ref = source[key]
                data = lookup(kind, ref)
                if data is None:
                    break
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    label = "Secret" if kind == "secret" else "ConfigMap"
                    namespace = pod["metadata"].get("namespace", "")
                    raise ContainerConfigError(
                        f"couldn't find key {ref.get('key')} in {label} "
                        f"{namespace}/{ref.get('name')}"
                    )
                env[name] = data[ref["key"]]
    return env
